"""Bad rule files: each is a clear error naming the file, and no rule runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from m2maudit import engine
from m2maudit.cli import app
from m2maudit.config import Config
from m2maudit.engine import check_rules_against_schema
from m2maudit.rules import RuleErrors, default_pack_dir, load_rules
from m2maudit.ruletest import run_rule_tests
from m2maudit.timeutil import parse_instant

GOOD = """\
id: X100
name: demo
title: Demo
problem: broad-scopes
severity: low
confidence: high
description: d
remediation: r
query: |
  SELECT principal, credential_id AS token_id, 1::BIGINT AS count,
         NULL::TIMESTAMPTZ AS first_seen, NULL::TIMESTAMPTZ AS last_seen,
         [{'file': source_file, 'line': source_line}] AS locations
  FROM cred
message: "{principal}"
tests:
  - name: fires
    credentials: [{credential_id: k1, principal: p}]
    expect: [{principal: p, token_id: k1}]
  - name: quiet
    expect: []
"""


def write_rule(tmp_path: Path, text: str, name: str = "X100-demo.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def scan_with_rules(rules: Path, *flags: str) -> Result:
    """`scan --rules DIR` of a one-call log beside the directory: what a user runs next."""
    log = rules.parent / "one-call.jsonl"
    log.write_text('{"timestamp": "2026-11-01T00:00:00Z", "principal": "agent-a"}\n')
    return CliRunner().invoke(app, ["scan", str(log), "--rules", str(rules), "-q", *flags])


def errors_for(directory: Path) -> str:
    with pytest.raises(RuleErrors) as caught:
        rules = load_rules([directory], include_pack=False)
        check_rules_against_schema(rules, Config(), parse_instant("2026-11-28"))
    return "\n".join(caught.value.errors)


def test_good_rule_loads_and_tests_pass(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["rules", "test", str(write_rule(tmp_path, GOOD))])
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.output


QUIET_CASE = "  - name: quiet\n    expect: []\n"


@pytest.mark.parametrize(
    ("text", "lacking"),
    [
        (GOOD.replace(QUIET_CASE, ""), "no case that expects none"),
        (GOOD[: GOOD.index("  - name: fires")] + QUIET_CASE, "no case that expects a finding"),
        (GOOD[: GOOD.index("tests:")], "no test case"),
    ],
    ids=["fires only", "quiet only", "no case"],
)
def test_a_rule_needs_a_case_that_fires_and_one_that_does_not(
    tmp_path: Path, text: str, lacking: str
) -> None:
    """As the README says: a quiet case alone passed a rule that never fires. Both commands
    refuse the file (exit 2) as they refuse any other problem lint finds; the library's
    `run_rule_tests` fails the rule too."""
    path = write_rule(tmp_path, text)
    tested = CliRunner().invoke(app, ["rules", "test", str(path)])
    linted = CliRunner().invoke(app, ["rules", "lint", str(path)])
    assert (tested.exit_code, linted.exit_code) == (2, 2), tested.output + linted.output
    needed = f"{lacking}: a rule needs a case that fires and one that does not"
    assert needed in tested.output and needed in linted.output
    [result] = [r for r in run_rule_tests(load_rules([path], include_pack=False)) if not r.passed]
    assert result.detail == needed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id: [unclosed\n", "invalid YAML"),
        (GOOD.replace("severity: low", "severity: 5"), "severity must be one of"),
        (GOOD.replace("SELECT principal", "SELEC principal"), "does not parse"),
        (GOOD.replace("FROM cred", "FROM cred; DROP TABLE events"), "exactly one SELECT"),
        (GOOD.replace("FROM cred", "FROM read_csv('secrets.csv')"), "may not read files"),
        # From a trial: refused only by DuckDB's "Table ... does not exist", and readable.
        (GOOD.replace("FROM cred", "FROM '/etc/passwd'"), "environment ('/etc/passwd')"),
        (GOOD.replace("FROM cred", 'FROM cred, "/etc/hosts"'), "environment ('/etc/hosts')"),
        (GOOD.replace("FROM cred", "FROM cred, duckdb_settings()"), "(duckdb_settings)"),
        (GOOD.replace("FROM cred", "FROM cred, duckdb_databases"), "('duckdb_databases')"),
        (GOOD.replace("FROM cred", "FROM cred, pragma_database_list"), "('pragma_database_list')"),
        (GOOD.replace("FROM cred", "FROM cred, nosuchtable"), "query does not run"),
        (GOOD.replace("AS locations", "AS places"), "lacks required column(s): locations"),
        (GOOD + "colour: red\n", "unknown key 'colour'"),
        (GOOD.replace('message: "{principal}"', 'message: "{nope}"'), "message uses nope"),
        (GOOD.replace("problem: broad-scopes", "problem: Bad Vibes"), "problem must be one of"),
        (GOOD + "incident: 'yes'\n", "X100-demo.yaml:21: incident must be true or false"),
        (GOOD + "severity: high\n", "X100-demo.yaml:21: invalid YAML: the key 'severity' is given"),
        (
            GOOD.replace("NULL::TIMESTAMPTZ AS last_seen", "'x' AS last_seen"),
            "last_seen must be a time (TIMESTAMPTZ), not VARCHAR",
        ),
    ],
)
def test_bad_rule_is_a_clear_error_naming_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = errors_for(write_rule(tmp_path, text))
    assert "X100-demo.yaml" in message
    assert expected in message


@pytest.mark.parametrize(
    "where",
    [
        "WHERE principal <> 'calls from ' || 'x'",
        "WHERE extract(epoch FROM '2026-01-01'::TIMESTAMP) > 0",
        "WHERE trim(both FROM ' x') = 'x'",
        "-- not FROM 'x'\n",
    ],
)
def test_a_quoted_text_after_from_that_is_no_table_is_allowed(tmp_path: Path, where: str) -> None:
    """From a review: a pattern over the query's text refused these."""
    text = GOOD.replace("FROM cred", f"FROM cred {where}")
    rules = load_rules([write_rule(tmp_path, text)], include_pack=False)
    check_rules_against_schema(rules, Config(), parse_instant("2026-11-28"))  # raises if not


def test_duplicate_ids_and_file_names_are_caught(tmp_path: Path) -> None:
    write_rule(tmp_path, GOOD)
    write_rule(tmp_path, GOOD.replace("name: demo", "name: other"), name="X100-other.yaml")
    write_rule(tmp_path, GOOD.replace("id: X100", "id: X200"), name="X200-misnamed.yaml")
    message = errors_for(tmp_path)
    assert "duplicate rule id X100" in message
    assert "file must be named X200-demo.yaml" in message


def test_ids_that_differ_only_in_case_are_duplicates(tmp_path: Path) -> None:
    """A config names rules in any case: `ignore: [x100]` must not have two to choose from."""
    write_rule(tmp_path, GOOD)
    write_rule(
        tmp_path,
        GOOD.replace("id: X100", "id: x100").replace("name: demo", "name: other"),
        name="x100-other.yaml",
    )
    assert "duplicate rule id x100 (also in" in errors_for(tmp_path)


def test_cli_lint_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = write_rule(tmp_path, GOOD.replace("FROM cred", "FROM cred; DROP TABLE events"))
    result = CliRunner().invoke(app, ["rules", "lint", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "X100-demo.yaml" in result.output


def test_scan_refuses_a_bad_custom_rule_before_running_any(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    rules = write_rule(tmp_path / "rules", GOOD.replace("FROM cred", "FROM read_text('/etc/x')"))
    result = scan_with_rules(rules)
    assert result.exit_code == 2
    assert "may not read files" in result.output


def test_cli_lint_lists_every_problem_where_scan_shows_the_first(tmp_path: Path) -> None:
    write_rule(tmp_path, GOOD.replace("severity: low", "severity: 5"))
    other = GOOD.replace("id: X100", "id: X200").replace("problem: broad-scopes", "problem: X Y")
    write_rule(tmp_path, other.replace("name: demo", "name: other"), name="X200-other.yaml")
    result = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("m2maudit: error:")]
    assert len(lines) == 2
    assert "X100-demo.yaml" in lines[0] and "severity must be one of" in lines[0]
    assert "X200-other.yaml" in lines[1] and "problem must be one of" in lines[1]
    scan = scan_with_rules(tmp_path)
    assert scan.exit_code == 2 and "(and 1 more: `m2maudit rules lint DIR`" in scan.output


def test_a_wrong_expected_count_says_which_count(tmp_path: Path) -> None:
    rule = GOOD.replace(
        "    expect: [{principal: p, token_id: k1}]\n",
        "    expect: [{principal: p, token_id: k1}]\n    expect_count: 5\n",
    )
    directory = write_rule(tmp_path, rule)
    result = CliRunner().invoke(app, ["rules", "test", str(directory)])
    assert result.exit_code == 1
    assert (
        f"FAIL {directory / 'X100-demo.yaml'}: X100 'fires': expected one finding of count 5, "
        "got counts [1]"
    ) in result.output


def test_an_impossible_date_in_a_rule_file_is_a_lint_error_not_a_crash(tmp_path: Path) -> None:
    write_rule(tmp_path, "id: X100\ntitle: t\ndate: 2026-02-30\n")
    result = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 2
    assert "internal error" not in result.output
    assert "X100-demo.yaml:1: missing required key" in result.output


def test_lint_reports_every_file_even_after_one_that_does_not_load(tmp_path: Path) -> None:
    """A broken file used to stop the schema checks of all the others."""
    write_rule(tmp_path, "id: [unclosed\n", name="X100-broken.yaml")
    write_rule(
        tmp_path,
        GOOD.replace("id: X100", "id: X200").replace("AS locations", "AS places"),
        name="X200-demo.yaml",
    )
    write_rule(
        tmp_path,
        GOOD.replace("id: X100", "id: X300").replace('"{principal}"', '"{nope}"'),
        name="X300-demo.yaml",
    )
    result = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 2
    assert "X100-broken.yaml:2: invalid YAML" in result.output
    assert "X200-demo.yaml:9: query output lacks required column(s): locations" in result.output
    [line] = [line for line in result.output.splitlines() if "message uses nope" in line]
    assert "X300-demo.yaml:" in line and "(it gives principal, token_id, count" in line


def test_lint_refuses_an_id_the_bundled_pack_uses(tmp_path: Path) -> None:
    write_rule(tmp_path, GOOD.replace("id: X100", "id: M2M201"), name="M2M201-demo.yaml")
    result = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 2
    assert "M2M201-demo.yaml:1: rule id M2M201 is the bundled pack's" in result.output
    bundled = CliRunner().invoke(app, ["rules", "lint"])
    assert bundled.exit_code == 0, bundled.output
    # Its own cases still run, and `rules test` warns of what `scan --rules` would refuse.
    tested = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert tested.exit_code == 0 and "2 passed" in tested.stdout
    assert "m2maudit: warning: " in tested.stderr and "is the bundled pack's" in tested.stderr


def test_copies_of_bundled_rules_are_no_clash_for_lint_or_scan(tmp_path: Path) -> None:
    """A checkout's `rules/` used with an installed m2maudit holds the same files: lint and
    scan both read a byte-for-byte copy of a bundled rule once. A changed copy is a clash
    for both."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for rule in sorted(default_pack_dir().glob("*.yaml")):
        (rules_dir / rule.name).write_bytes(rule.read_bytes())
    assert CliRunner().invoke(app, ["rules", "lint", str(rules_dir)]).exit_code == 0
    scanned = scan_with_rules(rules_dir, "--fail-on", "never")
    assert scanned.exit_code == 0, scanned.output
    first = sorted(rules_dir.glob("*.yaml"))[0]
    first.write_text(first.read_text(encoding="utf-8").replace("title: ", "title: Changed "))
    linted = CliRunner().invoke(app, ["rules", "lint", str(rules_dir)])
    assert linted.exit_code == 2 and f"{first}:1: rule id" in linted.output
    scanned = scan_with_rules(rules_dir, "--fail-on", "never")
    assert scanned.exit_code == 2 and "duplicate rule id" in scanned.output


@pytest.mark.parametrize(
    ("case_params", "expected"),
    [
        ("{owner: 12}", "case 'fires': params.owner: expected text; put it in quotes"),
        ("{nope: 1}", "case 'fires': params: rule has no parameter 'nope'"),
        ("[1]", "case 'fires': params must be a mapping of name: value"),
    ],
)
def test_a_bad_case_parameter_names_the_rule_file_and_case(
    tmp_path: Path, case_params: str, expected: str
) -> None:
    """Lint finds it, so `rules test` stops before running any case."""
    rule = GOOD.replace("  FROM cred\n", "  FROM cred WHERE principal = $owner\n").replace(
        "remediation: r\n", "remediation: r\nparams: {owner: p}\n"
    )
    rule = rule.replace("  - name: fires\n", f"  - name: fires\n    params: {case_params}\n")
    directory = write_rule(tmp_path, rule)
    for command in ("lint", "test"):
        result = CliRunner().invoke(app, ["rules", command, str(directory)])
        assert result.exit_code == 2
        assert f"{directory / 'X100-demo.yaml'}:17: {expected}" in result.output  # its line
        assert "config" not in result.output


def test_a_rule_name_used_twice_is_an_error_for_lint_and_scan(tmp_path: Path) -> None:
    """`ignore: [name]` would drop both rules without a word."""
    write_rule(tmp_path, GOOD.replace("id: X100", "id: X200"), name="X200-demo.yaml")
    write_rule(tmp_path, GOOD)
    write_rule(
        tmp_path,
        GOOD.replace("id: X100", "id: X300").replace("name: demo", "name: dormant-credential"),
        name="X300-dormant-credential.yaml",
    )
    linted = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert linted.exit_code == 2
    assert "X200-demo.yaml:1: duplicate rule name demo (also X100" in linted.output
    assert (
        "X300-dormant-credential.yaml:1: duplicate rule name dormant-credential (also M2M302"
        in (linted.output)
    )
    scanned = scan_with_rules(tmp_path)
    assert scanned.exit_code == 2 and "duplicate rule name" in scanned.output


def test_an_id_or_name_of_the_pack_in_another_case_is_a_clash(tmp_path: Path) -> None:
    """Ids and names are taken in any case: `id: m2m201` is the pack's M2M201 (lint said OK
    while `scan --rules` refused it), and a rule named `m2m201` is named like it."""
    write_rule(
        tmp_path,
        GOOD.replace("id: X100", "id: m2m201").replace("name: demo", "name: own-scope"),
        name="m2m201-own-scope.yaml",
    )
    write_rule(tmp_path, GOOD.replace("name: demo", "name: m2m202"), name="X100-m2m202.yaml")
    linted = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert linted.exit_code == 2
    assert "rule id m2m201 is the bundled pack's (M2M201-" in linted.output
    assert "X100-m2m202.yaml:1: duplicate rule name m2m202 (also M2M202" in linted.output


def test_a_rules_directory_without_rule_files_is_an_error(tmp_path: Path) -> None:
    """A mistyped `--rules` path (or a directory of something else) is said, not an empty pack."""
    (tmp_path / "notes.txt").write_text("not a rule")
    linted = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert linted.exit_code == 2 and "no rule files (*.yaml) in this directory" in linted.output
    scanned = scan_with_rules(tmp_path)
    assert scanned.exit_code == 2 and "no rule files" in scanned.output


def test_a_rules_directory_given_twice_runs_each_rule_once(tmp_path: Path) -> None:
    write_rule(tmp_path, GOOD)
    twice = load_rules([tmp_path, tmp_path], include_pack=False)
    assert [rule.id for rule in twice] == ["X100"]


@pytest.mark.parametrize(
    "placeholder", ["{count|}", "{count|call|calls|x}", "{ count }", "{count|call", "count}"]
)
def test_a_malformed_placeholder_is_a_lint_error(tmp_path: Path, placeholder: str) -> None:
    """Otherwise the report would print it as it is: `made {count|call|calls|x}`."""
    write_rule(
        tmp_path, GOOD.replace('message: "{principal}"', f'message: "{{principal}} {placeholder}"')
    )
    errors = errors_for(tmp_path)
    if placeholder.count("{") == placeholder.count("}"):
        assert f"message: {placeholder} is not a placeholder" in errors
    else:
        assert "message: a { or } without its pair" in errors


def test_lint_lists_every_problem_of_one_file(tmp_path: Path) -> None:
    """An unknown key no longer hides the rest: a user fixes the file in one round."""
    text = (
        GOOD.replace("severity: low", "severty: low\nseverity: loud")
        .replace("FROM cred", "FROM cred WHERE nope IS NULL")
        .replace('message: "{principal}"', 'message: "{principal} {count|time"')
    )
    result = CliRunner().invoke(app, ["rules", "lint", str(write_rule(tmp_path, text))])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("m2maudit: error:")]
    assert len(errors) == 4, result.output
    for expected in (
        "unknown key 'severty'",
        "severity must be one of",
        "a { or } without its pair",
        'Referenced column "nope" not found',
    ):
        assert sum(expected in line for line in errors) == 1, expected


def test_a_custom_problem_key_is_explained_when_it_is_not_kebab_case(tmp_path: Path) -> None:
    own = GOOD.replace("id: X100", "id: ACME001").replace("name: demo", "name: acme")
    write_rule(
        tmp_path, own.replace("problem: broad-scopes", "problem: my_problem"), "ACME001-acme.yaml"
    )
    assert "or, for this id, a kebab-case key of your own" in errors_for(tmp_path)
    (tmp_path / "ACME001-acme.yaml").write_text(
        own.replace("problem: broad-scopes", "problem: my-problem")
    )
    assert load_rules([tmp_path], include_pack=False)[0].problem == "my-problem"


def test_a_test_row_with_a_column_typo_is_a_lint_error(tmp_path: Path) -> None:
    text = GOOD.replace(
        "[{credential_id: k1, principal: p}]", "[{credential_id: k1, principle: p}]"
    )
    path = write_rule(tmp_path, text) / "X100-demo.yaml"
    linted = CliRunner().invoke(app, ["rules", "lint", str(tmp_path)])
    assert linted.exit_code == 2
    assert f"{path}:16: case 'fires': credentials[0]: principle: not a column of credentials" in (
        linted.output
    )


def test_rules_test_says_the_file_and_what_was_found(tmp_path: Path) -> None:
    text = GOOD.replace(
        "expect: [{principal: p, token_id: k1}]", "expect: [{principal: q, token_id: k1}]"
    )
    path = write_rule(tmp_path, text) / "X100-demo.yaml"
    result = CliRunner().invoke(app, ["rules", "test", str(path)])  # one file, not a directory
    assert result.exit_code == 1
    assert f"FAIL {path}: X100 'fires': expected q / k1; got p / k1 saying 'p'" in result.output


def test_rules_test_names_five_of_many_findings(tmp_path: Path) -> None:
    """A rule that gives a row per event would print every finding on one line."""
    rows = "\n".join(f"      - {{credential_id: k{i}, principal: p}}" for i in range(40))
    text = GOOD.replace(
        "    credentials: [{credential_id: k1, principal: p}]", f"    credentials:\n{rows}"
    )
    result = CliRunner().invoke(app, ["rules", "test", str(write_rule(tmp_path, text))])
    assert result.exit_code == 1
    [failed] = [line for line in result.output.splitlines() if "'fires'" in line]
    assert failed.count(" saying ") == 5 and failed.endswith("; and 35 more")


@pytest.mark.parametrize(
    ("expect", "passes"),
    [
        ("{principal: p, token_id: k1, message: p}", True),
        ("{principal: p, token_id: k1, message: q}", False),
        ("{principal: p, token_id: k1, evidence: {extra: 7}}", True),
        ("{principal: p, token_id: k1, evidence: {extra: 8}}", False),
        ("{principal: p, token_id: k1, evidence: {seen: 2026-11-01T10:00:00Z}}", True),
        ("{principal: p, token_id: k1, evidence: {seen: 2026-11-01T10:00:01Z}}", False),
    ],
)
def test_a_case_may_pin_the_message_and_evidence(tmp_path: Path, expect: str, passes: bool) -> None:
    text = GOOD.replace(
        "AS locations\n", "AS locations, 7 AS extra, TIMESTAMPTZ '2026-11-01 10:00:00+00' AS seen\n"
    ).replace("expect: [{principal: p, token_id: k1}]", f"expect: [{expect}]")
    result = CliRunner().invoke(app, ["rules", "test", str(write_rule(tmp_path, text))])
    assert result.exit_code == (0 if passes else 1), result.output


def test_lint_names_a_case_typo_of_a_rule_whose_query_is_refused(tmp_path: Path) -> None:
    """The query is never bound, but the cases need no query: one run lists every problem
    a fix needs, not one round each."""
    text = GOOD.replace("FROM cred", "FROM cred; DROP TABLE events").replace(
        "credentials: [{credential_id: k1, principal: p}]",
        "credentials: [{credential_id: k1, principal: p, actoin: x}]",
    )
    result = CliRunner().invoke(app, ["rules", "lint", str(write_rule(tmp_path, text))])
    assert result.exit_code == 2
    assert "query must be exactly one SELECT" in result.output
    assert "case 'fires': credentials[0]: actoin: not a column of credentials" in result.output


def test_an_unknown_key_in_an_expected_finding_is_a_lint_error(tmp_path: Path) -> None:
    write_rule(
        tmp_path,
        GOOD.replace("expect: [{principal: p, token_id: k1}]", "expect: [{principal: p, msg: x}]"),
    )
    assert "case 'fires': expect[0]: unknown key(s) msg; one of principal" in errors_for(tmp_path)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('expect_count: "x"', "expect_count must be a whole number, got 'x'"),
        ("expect_count: [1]", "expect_count must be a whole number, got [1]"),
        ("expect_count: 1.5", "expect_count must be a whole number, got 1.5"),
        ("expect_count: -1", "expect_count must be 0 or more"),
        ("as_of: notadate", "as_of must be an ISO 8601 time, got 'notadate'"),
        (
            "expect: []\n    expect_count: 0",
            "expect_count is the count of one finding: give exactly one in expect",
        ),
    ],
)
def test_a_case_with_a_bad_count_or_clock_is_a_lint_error(
    tmp_path: Path, extra: str, problem: str
) -> None:
    """`rules lint` passed them; `rules test` then ended in "internal error: ValueError" (or
    TypeError), passed 1.5 against a count of 1, or failed a case without saying why."""
    one_expected = "expect: [{principal: p, token_id: k1}]"
    case = extra if extra.startswith("expect:") else f"{one_expected}\n    {extra}"
    write_rule(tmp_path, GOOD.replace(one_expected, case))
    assert f"case 'fires': {problem}" in errors_for(tmp_path)
    result = CliRunner().invoke(app, ["rules", "test", str(tmp_path)])
    assert result.exit_code == 2 and problem in result.output
    assert "internal error" not in result.output


def test_a_deprecated_rule_is_reported_as_skipped_not_run(tmp_path: Path) -> None:
    """`status: deprecated` changed nothing: the rule ran and failed the gate."""
    rules = tmp_path / "rules"
    rules.mkdir()
    on_events = GOOD.replace("FROM cred", "FROM ev").replace(
        "credential_id AS token_id", "NULL AS token_id"
    )
    write_rule(rules, on_events)
    write_rule(
        rules,
        on_events.replace("id: X100", "id: X101").replace(
            "name: demo", "name: old\nstatus: deprecated"
        ),
        "X101-old.yaml",
    )
    result = scan_with_rules(rules, "-f", "json", "--fail-on", "never")
    document = json.loads(result.stdout)
    assert {f["rule_id"] for f in document["findings"]} >= {"X100"}
    assert "X101" not in {f["rule_id"] for f in document["findings"]}
    skipped = {item["rule_id"]: item["reason"] for item in document["skipped_rules"]}
    assert skipped["X101"] == "its status is deprecated (name it in the config's select: to run it)"
    # Asked for by name, it runs: a config selecting only it passed on nothing checked.
    (tmp_path / "select.yaml").write_text("select: [X101]\n")
    chosen = scan_with_rules(
        rules, "-f", "json", "--fail-on", "never", "-c", str(tmp_path / "select.yaml")
    )
    assert {f["rule_id"] for f in json.loads(chosen.stdout)["findings"]} == {"X101"}
    # Chosen by its problem key alone, it does not run: a gate that checks nothing is an error.
    only_deprecated = on_events.replace("id: X100", "id: X102").replace(
        "name: demo", "name: lone\nstatus: deprecated"
    )
    lone = tmp_path / "lone"
    lone.mkdir()
    write_rule(lone, only_deprecated.replace("broad-scopes", "acme-only"), "X102-lone.yaml")
    (tmp_path / "by-key.yaml").write_text("select: [acme-only]\n")
    refused = scan_with_rules(lone, "-c", str(tmp_path / "by-key.yaml"))
    assert refused.exit_code == 2
    assert "leave no rule to run, all deprecated" in refused.output
    shown = CliRunner().invoke(app, ["rules", "show", "X101", "--rules", str(rules)])
    assert "status: deprecated" in shown.output
    listed = CliRunner().invoke(app, ["rules", "list", "--rules", str(rules), "--format", "json"])
    assert {r["id"]: r["status"] for r in json.loads(listed.stdout)}["X101"] == "deprecated"
    # The table says which rules are not stable (the bundled pack's are).
    table = CliRunner().invoke(app, ["rules", "list", "--rules", str(rules)]).output
    assert table.splitlines()[-1] == "not stable: X101 deprecated"
    assert "not stable" not in CliRunner().invoke(app, ["rules", "list"]).output


def test_rules_show_and_list_print_a_rules_text_as_text(tmp_path: Path) -> None:
    """A rule file is untrusted: `[/]` in its title stopped `rules show` with an internal
    error (rich markup), and `[link=...]` would have made a link of its description."""
    text = (
        GOOD.replace("title: Demo", "title: 'Demo [/] [bold red]x'")
        .replace("description: d", "description: 'see [link=http://evil.example]here[/link]'")
        .replace("remediation: r", "remediation: 'fix [/] it'")
        .replace("confidence: high", "confidence: high\nowasp_nhi: ['[bold]NHI1']")
        .replace("remediation: 'fix [/] it'", "remediation: |\n  fix [/] it\n  then test\n")
    )
    start, end = text.index("query: |"), text.index("message:")
    query = " ".join(text[start + len("query: |") : end].split())
    # YAML takes an escape code only as an escape in a quoted string.
    text = text[:start] + f'query: "{query} /* \\e[31mred */"\n' + text[end:]
    rules = write_rule(tmp_path, text)
    shown = CliRunner().invoke(app, ["rules", "show", "X100", "--rules", str(rules)])
    assert shown.exit_code == 0, shown.output
    for literal in (
        "X100 demo: Demo [/] [bold red]x",
        "see [link=http://evil.example]here[/link]",
        "Remediation: fix [/] it\nthen test",  # its lines kept
        "OWASP: [bold]NHI1",
        "FROM cred /* \ufffd[31mred */",  # no escape code reaches the terminal
    ):
        assert literal in shown.output
    assert "\x1b" not in shown.output
    listed = CliRunner().invoke(app, ["rules", "list", "--rules", str(rules)])
    assert listed.exit_code == 0 and "[bold]N" in listed.output  # folded, but as text


def test_a_file_that_is_not_yaml_is_not_a_rules_directory(tmp_path: Path) -> None:
    (tmp_path / "rules.txt").write_text("x")
    result = CliRunner().invoke(app, ["rules", "lint", str(tmp_path / "rules.txt")])
    assert result.exit_code == 2
    assert "not a rules directory or a rule file (*.yaml)" in result.output
    single = CliRunner().invoke(
        app, ["rules", "lint", str(write_rule(tmp_path, GOOD) / "X100-demo.yaml")]
    )
    assert single.exit_code == 0 and single.output.strip() == "1 rule OK"


def test_lint_never_runs_a_query_it_refused(tmp_path: Path) -> None:
    """Binding wraps the query in `SELECT * FROM (...)`: text that closes the bracket would
    run statements of its own. A query that is not one SELECT is never bound."""
    breakout = (
        "SELECT 1 AS principal) AS t; SELECT error('SECOND STATEMENT RAN'); SELECT * FROM (SELECT 1"
    )
    text = GOOD.replace(
        GOOD[GOOD.index("query: |") : GOOD.index("message:")], f'query: "{breakout}"\n'
    )
    result = CliRunner().invoke(app, ["rules", "lint", str(write_rule(tmp_path, text))])
    assert result.exit_code == 2 and "query does not parse" in result.output
    assert "SECOND STATEMENT RAN" not in result.output


def test_a_placeholder_in_braces_is_no_lone_brace(tmp_path: Path) -> None:
    write_rule(tmp_path, GOOD.replace('message: "{principal}"', 'message: "key {{token_id}}"'))
    assert load_rules([tmp_path], include_pack=False)[0].message == "key {{token_id}}"


def test_an_expected_evidence_column_the_finding_lacks_fails(tmp_path: Path) -> None:
    text = GOOD.replace(
        "expect: [{principal: p, token_id: k1}]",
        "expect: [{principal: p, token_id: k1, evidence: {typo_column: null}}]",
    )
    result = CliRunner().invoke(app, ["rules", "test", str(write_rule(tmp_path, text))])
    assert result.exit_code == 1 and "typo_column" in result.output


def test_an_incident_rule_with_a_plain_timestamp_baselines(tmp_path: Path) -> None:
    """A custom rule's TIMESTAMP (not TIMESTAMPTZ) is UTC, as the store's clock is."""
    rules = tmp_path / "rules"
    rules.mkdir()
    text = GOOD.replace(
        "NULL::TIMESTAMPTZ AS last_seen", "TIMESTAMP '2026-11-01 10:00:00' AS last_seen"
    )
    write_rule(rules, text.replace("confidence: high", "confidence: high\nincident: true"))
    inventory = tmp_path / "inv.csv"
    inventory.write_text("credential_id,principal\nk1,p\n")
    base = tmp_path / "b.json"
    flags = ["--inventory", str(inventory), "--as-of", "2026-11-28T00:00:00Z", "-f", "json"]
    first = scan_with_rules(rules, *flags, "--write-baseline", str(base))
    assert first.exit_code == 0, first.output
    [entry] = [e for e in json.loads(base.read_text())["findings"] if e["rule_id"] == "X100"]
    assert entry["last_seen"] == "2026-11-01T10:00:00Z"
    again = scan_with_rules(rules, *flags, "--baseline", str(base), "--fail-on", "never")
    assert again.exit_code == 0, again.output


def test_a_failed_evidence_check_shows_the_evidence_found(tmp_path: Path) -> None:
    text = GOOD.replace("AS locations\n", "AS locations, 7 AS extra\n").replace(
        "expect: [{principal: p, token_id: k1}]",
        "expect: [{principal: p, token_id: k1, evidence: {extra: 8}}]",
    )
    result = CliRunner().invoke(app, ["rules", "test", str(write_rule(tmp_path, text))])
    assert result.exit_code == 1 and "with evidence {'extra': 7}" in result.output


@pytest.mark.parametrize("when", ["2026-13-05T00:00:00Z", "20261120T100000Z", "2026-W47-5"])
def test_an_impossible_time_in_a_test_row_is_a_lint_error(tmp_path: Path, when: str) -> None:
    """Nor a form Python reads but DuckDB does not (`rules test` would fail to insert it)."""
    text = GOOD.replace(
        "[{credential_id: k1, principal: p}]",
        f"[{{credential_id: k1, principal: p, created_at: '{when}'}}]",
    )
    path = write_rule(tmp_path, text) / "X100-demo.yaml"
    result = CliRunner().invoke(app, ["rules", "lint", str(path)])
    assert result.exit_code == 2
    assert f"case 'fires': credentials[0]: created_at: '{when}' is not an ISO" in result.output


def test_a_column_named_with_an_underscore_is_for_the_message_only(tmp_path: Path) -> None:
    """A rule composes text for its message from evidence it also gives: shown once."""
    rules = tmp_path / "rules"
    rules.mkdir()
    text = GOOD.replace("AS locations\n", "AS locations, 'two words' AS _note, 3 AS n\n").replace(
        'message: "{principal}"', 'message: "{principal}: {_note}"'
    )
    write_rule(rules, text)
    inventory = tmp_path / "inv.csv"
    inventory.write_text("credential_id,principal\nk1,p\n")
    result = scan_with_rules(
        rules, "--inventory", str(inventory), "-f", "json", "--fail-on", "never"
    )
    assert result.exit_code == 0, result.output
    [finding] = [f for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "X100"]
    assert finding["message"] == "p: two words"
    assert finding["evidence"] == {"n": 3}


RUNAWAY = GOOD.replace(
    """  SELECT principal, credential_id AS token_id, 1::BIGINT AS count,
         NULL::TIMESTAMPTZ AS first_seen, NULL::TIMESTAMPTZ AS last_seen,
         [{'file': source_file, 'line': source_line}] AS locations
  FROM cred
""",
    """  SELECT e.principal || r.range::VARCHAR AS principal, NULL::VARCHAR AS token_id,
         count(*)::BIGINT AS count, NULL::TIMESTAMPTZ AS first_seen,
         NULL::TIMESTAMPTZ AS last_seen, [] AS locations
  FROM ev e, range($rows) r
  GROUP BY ALL
""",
).replace("description: d\n", "description: d\nparams:\n  rows: 1\n")


def test_a_rule_that_runs_away_is_stopped_and_named(tmp_path: Path) -> None:
    """Rule SQL is untrusted: a join that would run for hours is stopped after
    `--rule-timeout`, and the scan fails naming the rule's file and line."""
    (tmp_path / "rules").mkdir()
    rules = write_rule(tmp_path / "rules", RUNAWAY.replace("rows: 1", "rows: 100000000000"))
    started = time.monotonic()
    result = scan_with_rules(rules, "--rule-timeout", "0.5")
    assert time.monotonic() - started < 60
    assert result.exit_code == 2
    assert "X100-demo.yaml:" in result.output
    assert "rule X100 was stopped after 0.5 s (--rule-timeout)" in result.output


def test_a_rule_of_a_row_per_event_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule must aggregate: millions of rows would be millions of findings in memory."""
    monkeypatch.setattr(engine, "MAX_FINDINGS_PER_RULE", 10)
    (tmp_path / "rules").mkdir()
    rules = write_rule(tmp_path / "rules", RUNAWAY)
    assert scan_with_rules(rules, "--fail-on", "never").exit_code == 0
    write_rule(tmp_path / "rules", RUNAWAY.replace("rows: 1", "rows: 11"))
    result = scan_with_rules(rules, "--fail-on", "never")
    assert result.exit_code == 2
    assert "rule X100 gave over 10 findings: a rule must aggregate" in result.output


def test_a_rule_of_ones_own_key_can_be_suppressed_by_its_key(tmp_path: Path) -> None:
    """`--problem acme-only` and `select: [acme-only]` took a rule's own key; a suppression
    by `problem: acme-only` was refused as an unknown problem."""
    rules = tmp_path / "rules"
    rules.mkdir()
    on_events = GOOD.replace("FROM cred", "FROM ev").replace(
        "credential_id AS token_id", "NULL AS token_id"
    )
    write_rule(rules, on_events.replace("broad-scopes", "acme-only"))
    config = tmp_path / "c.yaml"
    config.write_text(
        "suppressions:\n"
        "  - {problem: acme-only, principal: agent-a, reason: accepted}\n"
        "  - {problem: acme-typo, principal: agent-a, reason: accepted}\n"
    )
    result = scan_with_rules(rules, "-f", "json", "--fail-on", "never", "-c", str(config))
    assert result.exit_code == 0, result.output
    ours = [f for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "X100"]
    assert ours and all(f["suppression"]["problem"] == "acme-only" for f in ours)
    assert "(problem acme-typo, principal agent-a) names no problem of this run" in result.output
