"""The config's effect on a scan: selection, severity overrides, params and suppressions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m2maudit.cli import app

ROOT = Path(__file__).resolve().parent.parent
AGENTS = str(ROOT / "sample_logs" / "agents")


def scan_json(tmp_path: Path, config: str) -> dict:
    path = tmp_path / "m2maudit.yaml"
    path.write_text(config, encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "scan",
            AGENTS,
            "--config",
            str(path),
            "--as-of",
            "2026-11-28T00:00:00Z",
            "-f",
            "json",
            "--fail-on",
            "never",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def rule_ids(report: dict) -> set[str]:
    return {f["rule_id"] for f in report["findings"]}


def test_select_a_problem(tmp_path: Path) -> None:
    report = scan_json(tmp_path, "select: [stale-rotation]\n")
    assert rule_ids(report) and all(r.startswith("M2M3") for r in rule_ids(report))


def test_ignore_a_rule_and_override_severity(tmp_path: Path) -> None:
    report = scan_json(tmp_path, "ignore: [M2M203]\nseverity: {M2M501: critical}\n")
    assert "M2M203" not in rule_ids(report)
    assert {f["severity"] for f in report["findings"] if f["rule_id"] == "M2M501"} == {"critical"}


def test_params_override_beats_threshold(tmp_path: Path) -> None:
    default = scan_json(tmp_path, "{}\n")
    relaxed = scan_json(tmp_path, "params: {M2M408: {max_tasks_per_token: 10}}\n")
    assert "M2M408" in rule_ids(default)
    assert "M2M408" not in rule_ids(relaxed)


def test_threshold_changes_a_rule(tmp_path: Path) -> None:
    report = scan_json(tmp_path, "thresholds: {max_token_lifetime: 60d}\n")
    assert "M2M401" not in rule_ids(report)


def test_suppression_keeps_the_finding_marked(tmp_path: Path) -> None:
    report = scan_json(
        tmp_path,
        (
            "suppressions:\n"
            "  - rule: M2M303\n    principal: svc-*\n    reason: rotation in flight\n"
            "    expires: 2027-01-31\n"
        ),
    )
    etl = [f for f in report["findings"] if f["rule_id"] == "M2M303"]
    assert etl and all(f["suppressed"] for f in etl)


def test_unknown_param_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "m2maudit.yaml"
    path.write_text("params: {M2M408: {nope: 1}}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", AGENTS, "--config", str(path), "-q"])
    assert result.exit_code == 2
    assert "no parameter 'nope'" in result.output


def test_a_param_of_the_wrong_type_names_the_config_not_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "m2maudit.yaml"
    path.write_text('params: {M2M408: {max_tasks_per_token: "five"}}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", AGENTS, "--config", str(path), "-q"])
    assert result.exit_code == 2
    assert (
        f"{path}: params.M2M408.max_tasks_per_token: expected a number (the default is 3), "
        "not 'five'"
    ) in result.output


def test_a_text_param_written_as_a_number_must_be_quoted() -> None:
    """YAML reads an account id like 012345670123 as an octal number: its text is lost."""
    from dataclasses import replace

    import pytest

    from m2maudit.config import Config
    from m2maudit.engine import rule_params
    from m2maudit.errors import AuditError
    from m2maudit.rules import load_rules
    from m2maudit.timeutil import parse_instant

    rule = replace(load_rules([])[0], params={"account": "111122223333"})
    as_of = parse_instant("2026-11-28")
    quoted = Config(params={rule.id: {"account": "012345670123"}})
    assert rule_params(rule, quoted, as_of)["account"] == "012345670123"
    with pytest.raises(
        AuditError, match=r"params\.M2M101\.account: expected text; put it in quotes"
    ):
        rule_params(rule, Config(params={rule.id: {"account": 1402433619}}), as_of)


def test_a_severity_or_params_key_naming_no_rule_is_an_error(tmp_path: Path) -> None:
    for config, message in (
        ("severity: {M2M999: high}\n", "severity: no rule or problem named 'M2M999'"),
        ("params: {M2M999: {x: 1}}\n", "params: no rule named 'M2M999'"),
    ):
        path = tmp_path / "m2maudit.yaml"
        path.write_text(config, encoding="utf-8")
        result = CliRunner().invoke(app, ["scan", AGENTS, "--config", str(path), "-q"])
        assert result.exit_code == 2
        assert message in result.output


def test_init_writes_a_config_that_loads_with_its_examples_uncommented(tmp_path: Path) -> None:
    import re

    from m2maudit.config import load_config

    path = tmp_path / ".m2maudit.yaml"
    assert CliRunner().invoke(app, ["init", str(path)]).exit_code == 0
    again = CliRunner().invoke(app, ["init", str(path)])
    assert again.exit_code == 2 and "already exists" in again.output
    assert load_config(path).thresholds.rotation_days == 90
    threshold_comments = {
        line.index("#") for line in path.read_text().splitlines() if line.startswith("  ")
    }
    assert len(threshold_comments) == 1, "the thresholds' comments line up"
    # The pattern examples, uncommented, must mean what they show.
    text = re.sub(r"^# (\w+_(patterns|scopes): )", r"\1", path.read_text(), flags=re.M)
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert re.fullmatch(config.wildcard_scopes[0], "*")
    assert re.fullmatch(config.wildcard_scopes[1], "billing:*")
    assert re.fullmatch(config.human_patterns[0], "alice@example.com")
    assert not re.fullmatch(config.human_patterns[0], "alice@exampleXcom")


def test_init_given_a_directory_writes_the_config_inside_it(tmp_path: Path) -> None:
    """`init somedir` said 'already exists (use --force to overwrite)', and with --force
    failed with 'Is a directory'."""
    first = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert (tmp_path / ".m2maudit.yaml").read_text().startswith("#")
    again = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 2
    assert f"{tmp_path / '.m2maudit.yaml'}: already exists (use --force" in again.output
    assert CliRunner().invoke(app, ["init", str(tmp_path), "--force"]).exit_code == 0


def test_init_given_a_directory_that_is_not_there_writes_no_file_of_its_name(
    tmp_path: Path,
) -> None:
    """From a trial: `init newdir/` wrote the config as a file named `newdir`."""
    missing = tmp_path / "newdir"
    result = CliRunner().invoke(app, ["init", f"{missing}/"])
    assert result.exit_code == 2
    assert not missing.exists()
    assert f"{missing / '.m2maudit.yaml'}: directory '{missing}' does not exist" in result.output
    missing.mkdir()
    assert CliRunner().invoke(app, ["init", f"{missing}/"]).exit_code == 0
    assert (missing / ".m2maudit.yaml").read_text().startswith("#")


def test_the_attribution_threshold_reaches_the_report(tmp_path: Path) -> None:
    """The terminal report colours shares below it; JSON carries it beside the counts."""
    report = scan_json(tmp_path, "thresholds: {min_attribution: 0.5}\n")
    assert report["summary"]["attribution"]["min_attribution"] == 0.5


def test_rule_ids_names_and_problems_are_taken_in_any_case(tmp_path: Path) -> None:
    """`rules show m2m406` finds M2M406; a config that writes it so must not fail (select,
    severity, params) or quietly change nothing (ignore, suppressions)."""
    exact = scan_json(
        tmp_path,
        "select: [stale-rotation, long-lifetime, untraceable-action]\n"
        "ignore: [M2M303, wildcard-or-admin-scope]\n"
        "severity: {M2M501: critical}\n"
        "params: {M2M408: {max_tasks_per_token: 10}}\n"
        "suppressions:\n"
        "  - {rule: M2M30*, principal: '*', reason: r}\n"
        "  - {problem: long-lifetime, principal: '*', reason: r}\n",
    )
    any_case = scan_json(
        tmp_path,
        "select: [Stale-Rotation, LONG-LIFETIME, Untraceable-Action]\n"
        "ignore: [m2m303, Wildcard-Or-Admin-Scope]\n"
        "severity: {m2m501: critical}\n"
        "params: {m2m408: {max_tasks_per_token: 10}}\n"
        "suppressions:\n"
        "  - {rule: m2m30*, principal: '*', reason: r}\n"
        "  - {problem: Long-Lifetime, principal: '*', reason: r}\n",
    )

    def without_entry(report: dict) -> list[dict]:  # the entry as each config wrote it
        return [{**f, "suppression": None} for f in report["findings"]]

    assert without_entry(exact) == without_entry(any_case)
    ids = rule_ids(exact)
    assert "M2M303" not in ids and "M2M408" not in ids and "M2M501" in ids
    assert {f["severity"] for f in exact["findings"] if f["rule_id"] == "M2M501"} == {"critical"}
    suppressed = {f["rule_id"] for f in exact["findings"] if f["suppressed"]}
    assert {"M2M301", "M2M401"} <= suppressed


def test_problem_option_in_any_case_reports_the_problem(tmp_path: Path) -> None:
    runs = [
        CliRunner().invoke(
            app,
            [
                *("scan", AGENTS, "--as-of", "2026-11-28T00:00:00Z", "-f", "json", "-q"),
                "--fail-on",
                "never",
                "--problem",
                problem,
            ],
        )
        for problem in ("broad-scopes", "Broad-Scopes")
    ]
    assert [run.exit_code for run in runs] == [0, 0], runs[1].output
    reports = [json.loads(run.stdout)["findings"] for run in runs]
    assert reports[0] and reports[0] == reports[1]
    assert {f["problem"] for f in reports[1]} == {"broad-scopes"}


@pytest.mark.parametrize(
    "section",
    [
        "severity: {M2M501: low, m2m501: high}",
        "params: {M2M408: {max_tasks_per_token: 5}, m2m408: {max_tasks_per_token: 9}}",
    ],
)
def test_a_rule_named_twice_in_two_cases_is_an_error(tmp_path: Path, section: str) -> None:
    """Which value won would depend on the keys' order in the file."""
    path = tmp_path / "m2maudit.yaml"
    path.write_text(section + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", AGENTS, "--config", str(path), "-q"])
    assert result.exit_code == 2
    assert "name the same rule (names are taken in any case); give it once" in result.output


def test_every_report_says_which_rules_the_config_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config found in the working directory that ignores rules made a gate pass on fewer
    checks, and no report said so (a CI user's trial): a pull request could switch a check
    off unseen. The rules it leaves out, and the file, are in every report."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".m2maudit.yaml").write_text("ignore: [m2m101, untraceable-action]\n")
    left_out = ["M2M101", "M2M501", "M2M502", "M2M503", "M2M504", "M2M505"]
    note = "6 rules left out by the config (.m2maudit.yaml)"

    def report(fmt: str) -> str:
        args = ["scan", AGENTS, "--as-of", "2026-11-28T00:00:00Z", "--fail-on", "never"]
        result = CliRunner().invoke(app, [*args, "-f", fmt])
        assert result.exit_code == 0, result.output
        return result.stdout

    document = json.loads(report("json"))
    assert document["config"] == {"file": ".m2maudit.yaml", "rules_left_out": left_out}
    assert note in report("table") and note in report("markdown").splitlines()[0]
    junit = report("junit")
    assert junit.count('message="left out by the config (.m2maudit.yaml)"') == len(left_out)
    run = json.loads(report("sarif"))["runs"][0]["invocations"][0]
    noted = [
        n["associatedRule"]["id"]
        for n in run["toolExecutionNotifications"]
        if n["message"]["text"] == "rule left out by the config (.m2maudit.yaml)"
    ]
    assert noted == left_out
    (tmp_path / ".m2maudit.yaml").unlink()
    plain = json.loads(report("json"))
    assert plain["config"] == {"file": None, "rules_left_out": []}
    assert "left out by the config" not in report("table")
