"""`m2maudit scan` end to end on the sample estate: exit codes, formats, baseline round trip."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.reporters import REPORTERS, report_written_as
from m2maudit.reporters.csv_report import COLUMNS as CSV_COLUMNS
from tests.conftest import RunCli, write_jsonl

ROOT = Path(__file__).resolve().parent.parent
AS_OF = ["--as-of", "2026-11-28T00:00:00Z"]


def scan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scan", *args, *AS_OF, "-q"])
    return result.exit_code, result.stdout


@pytest.mark.parametrize(("fail_on", "code"), [("high", 1), ("critical", 1), ("never", 0)])
def test_exit_code_follows_fail_on(fail_on: str, code: int) -> None:
    assert scan(str(ROOT / "sample_logs" / "agents"), "--fail-on", fail_on, "-f", "json")[0] == code


def test_clean_estate_exits_0() -> None:
    code, out = scan(str(ROOT / "sample_logs" / "clean"), "-f", "json")
    assert code == 0
    assert json.loads(out)["findings"] == []


def test_format_never_changes_exit_code(tmp_path: Path) -> None:
    codes = {
        name: scan(str(ROOT / "sample_logs"), "-f", name, "-o", str(tmp_path / name))[0]
        for name in ("table", "json", "csv", "sarif", "junit", "markdown")
    }
    assert set(codes.values()) == {1}
    sarif = json.loads((tmp_path / "sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


def test_one_scan_writes_many_reports_each_as_its_own_run_would(tmp_path: Path) -> None:
    """A CI job that gates, uploads SARIF, keeps JUnit and comments Markdown ran the scan
    four times. `--report FORMAT:FILE` (repeatable) writes each beside the main report,
    byte for byte what `-f FORMAT -o FILE` writes."""
    logs = str(ROOT / "sample_logs")
    alone = {}
    for name in ("sarif", "junit", "markdown"):
        scan(logs, "-f", name, "-o", str(tmp_path / f"alone.{name}"))
        alone[name] = (tmp_path / f"alone.{name}").read_bytes()
    extra = [f"--report={name}:{tmp_path / f'many.{name}'}" for name in ("sarif", "junit")]
    code, _ = scan(logs, "-f", "markdown", "-o", str(tmp_path / "many.markdown"), *extra)
    assert code == 1
    for name in ("sarif", "junit", "markdown"):
        assert (tmp_path / f"many.{name}").read_bytes() == alone[name], name
    runner = CliRunner()
    for bad, said in (
        (["--report", "sarif"], "give FORMAT:FILE"),
        (["--report", "xml:r.xml"], "--report: unknown format 'xml'"),
        (["--report", "json:-"], "--report: a file"),
        (["-o", str(tmp_path / "r"), "--report", f"json:{tmp_path / 'r'}"], "same file as"),
    ):
        result = runner.invoke(app, ["scan", logs, *AS_OF, *bad])
        assert result.exit_code == 2 and said in result.stderr, (bad, result.stderr)


def test_reports_are_byte_identical_across_runs(tmp_path: Path) -> None:
    for run in ("a", "b"):
        scan(str(ROOT / "sample_logs"), "-f", "json", "-o", str(tmp_path / run))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_reports_do_not_depend_on_the_order_files_are_given_in(tmp_path: Path) -> None:
    """Nor on which of two files holding the same record comes first."""
    copy = tmp_path / "copy.jsonl"
    copy.write_text((ROOT / "sample_logs" / "clean" / "access.jsonl").read_text())
    folders = [str(ROOT / "sample_logs" / name) for name in ("k8s", "clean", "cloudtrail")]
    for run, order in (("a", [*folders, str(copy)]), ("b", [str(copy), *reversed(folders)])):
        scan(*order, "-f", "sarif", "-o", str(tmp_path / run))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_baseline_round_trip(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    agents = str(ROOT / "sample_logs" / "agents")
    code, out = scan(agents, "--write-baseline", str(base), "-f", "json")
    # The run that records the baseline adopts it: what it records is baselined, and passes.
    assert code == 0
    written = json.loads(out)["findings"]
    assert written and all(f["baselined"] or f["suppressed"] for f in written)
    assert scan(agents, "-f", "json")[0] == 1  # without the baseline, the gate fails
    # Checking against the old baseline while writing the new one still fails on new findings.
    k8s = str(ROOT / "sample_logs" / "k8s")
    updated = tmp_path / "updated.json"
    code, _ = scan(agents, k8s, "--baseline", str(base), "--write-baseline", str(updated))
    assert code == 1
    assert len(json.loads(updated.read_text())["findings"]) > len(
        json.loads(base.read_text())["findings"]
    )
    assert scan(agents, "--baseline", str(base), "-f", "json")[0] == 0
    extra = tmp_path / "new.jsonl"
    extra.write_text(
        '{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-new", '
        '"principal_type": "agent", "token_id": "key-new"}\n'
    )
    code, out = scan(agents, str(extra), "--baseline", str(base), "-f", "json")
    assert code == 1
    failing = {
        f["principal"]
        for f in json.loads(out)["findings"]
        if not f["baselined"] and f["severity"] in ("high", "critical")
    }
    assert failing == {"agent-new"}


def test_a_revoked_key_used_again_after_the_baseline_fails_the_gate(tmp_path: Path) -> None:
    """A baseline accepts the uses after revocation it saw; a later one is a new incident."""
    inventory = tmp_path / "tokens.csv"
    inventory.write_text(
        "credential_id,principal,credential_type,status,revoked_at,created_at\n"
        "key-1,svc-report,api_key,revoked,2026-11-01T00:00:00Z,2026-10-01T00:00:00Z\n"
    )
    call = (
        '{{"timestamp": "{ts}", "principal": "svc-report", "principal_type": "service", '
        '"token_id": "key-1", "trace_id": "t-{n}", "outcome": "success"}}\n'
    )
    log = tmp_path / "access.jsonl"
    log.write_text(call.format(ts="2026-11-05T00:00:00Z", n=1))
    base = tmp_path / "baseline.json"
    args = [str(log), "--inventory", str(inventory)]
    assert scan(*args, "--write-baseline", str(base), "-f", "json")[0] == 0
    assert scan(*args, "--baseline", str(base), "-f", "json")[0] == 0

    with log.open("a") as handle:
        handle.write(call.format(ts="2026-11-20T00:00:00Z", n=2))
    result = CliRunner().invoke(
        app, ["scan", *args, "--baseline", str(base), "-f", "sarif", *AS_OF, "-q"]
    )
    assert result.exit_code == 1
    assert "M2M406" in result.stderr and "active again" in result.stderr
    states = {
        r["ruleId"]: r.get("baselineState") for r in json.loads(result.stdout)["runs"][0]["results"]
    }
    assert states["M2M406"] == "updated"
    assert all(state == "unchanged" for rule, state in states.items() if rule != "M2M406")


def test_failed_scan_leaves_no_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, _ = scan(str(tmp_path / "missing.jsonl"), "-f", "json", "-o", str(out))
    assert code == 2
    assert not out.exists()


def test_ci_gate_writes_valid_sarif_with_the_right_exit_code(tmp_path: Path) -> None:
    import jsonschema

    from tests.source_support import shared_dir

    out = tmp_path / "m2maudit.sarif"
    code, _ = scan(
        str(ROOT / "sample_logs" / "agents" / "access.jsonl"),
        "--inventory",
        str(ROOT / "sample_logs" / "agents" / "inventory.csv"),
        "--fail-on",
        "high",
        "--format",
        "sarif",
        "--output",
        str(out),
    )
    assert code == 1
    schema = json.loads((shared_dir() / "schemas" / "sarif-schema-2.1.0.json").read_text())
    document = json.loads(out.read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    results = document["runs"][0]["results"]
    assert all(r["partialFingerprints"] for r in results)
    assert any(r.get("locations") for r in results)


@pytest.mark.parametrize(
    ("fail_on", "code"),
    [("info", 1), ("low", 1), ("medium", 1), ("high", 0), ("critical", 0), ("never", 0)],
)
def test_exit_code_table_on_a_medium_only_estate(tmp_path: Path, fail_on: str, code: int) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", "principal_type": "agent", '
        '"token_id": "k1", "on_behalf_of": "alice@example.com"}\n'
    )
    assert scan(str(log), "--fail-on", fail_on, "-f", "json")[0] == code


BAD_CONFIGS = {
    "no-reason": "suppressions:\n  - rule: M2M101\n    principal: x\n",
    "bad-expiry": "suppressions:\n  - rule: M2M101\n    principal: x\n    reason: r\n"
    "    expires: next tuesday\n",
}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "yaml"], "unknown format 'yaml'"),
        (["-o", "/nonexistent-dir/report.json"], "does not exist"),
        (["--baseline", "BASELINE"], "not an m2maudit baseline"),
        (["--config", "no-reason"], "needs a 'reason'"),
        (["--config", "bad-expiry"], "not a date"),
        (["--fail-on", "severe"], "--fail-on"),
    ],
)
def test_bad_gate_input_is_one_line_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"runs": []}')
    for name, text in BAD_CONFIGS.items():
        (tmp_path / name).write_text(text)
    args = [str(foreign) if a == "BASELINE" else a for a in args]
    args = [str(tmp_path / a) if a in BAD_CONFIGS else a for a in args]
    result = CliRunner().invoke(app, ["scan", str(ROOT / "sample_logs" / "clean"), *args, "-q"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_report_never_replaces_a_file_the_run_reads(tmp_path: Path) -> None:
    """`-o audit.jsonl` replaced the evidence log with the report, and `--baseline b.json
    -o b.json` the baseline (the next CI run then failed on it). Both are refused before the
    scan; `--write-baseline` over the `--baseline` still updates it in place. So is a report
    over the `--db` store or its write-ahead log (which DuckDB would read back as the store's
    changes next time)."""
    log = tmp_path / "audit.jsonl"
    log.write_bytes((ROOT / "sample_logs" / "k8s" / "audit.jsonl").read_bytes())
    config = tmp_path / "c.yaml"
    config.write_text("thresholds: {}\n")
    baseline = tmp_path / "b.json"
    runner = CliRunner()
    common = ["scan", str(log), "--as-of", "2026-11-28T00:00:00Z", "-q", "-f", "json"]
    assert runner.invoke(app, [*common, "--write-baseline", str(baseline)]).exit_code == 0
    before = {path: path.read_bytes() for path in (log, config, baseline)}
    for args, named in [
        (["-o", str(log)], "input"),
        (["--baseline", str(baseline), "-o", str(baseline)], "--baseline"),
        (["-c", str(config), "-o", str(config)], "the config"),
        (
            ["-o", str(tmp_path / "r.json"), "--write-baseline", str(tmp_path / "r.json")],
            "--write-baseline",
        ),
        (["--write-baseline", str(log)], "input"),
        (["--db", str(tmp_path / "s.db"), "-o", str(tmp_path / "s.db")], "--db"),
        (
            ["--db", str(tmp_path / "s.db"), "-o", str(tmp_path / "s.db.wal")],
            "the --db store's write-ahead log",
        ),
    ]:
        result = runner.invoke(app, [*common, *args])
        assert result.exit_code == 2, args
        assert f"is the same file as {named} " in result.output, result.output
        assert "Traceback" not in result.output
    assert {path: path.read_bytes() for path in before} == before
    assert not (tmp_path / "r.json").exists()
    again = runner.invoke(
        app, [*common, "--baseline", str(baseline), "--write-baseline", str(baseline)]
    )
    assert again.exit_code == 0, again.output


def test_a_report_never_replaces_an_input_found_by_a_pattern_or_read_from_stdin(
    tmp_path: Path,
) -> None:
    """A log found in a directory or by a pattern, a rule file and standard input's file
    were replaced by the report: only the files named on the command line were checked."""
    estate = tmp_path / "in"
    estate.mkdir()
    log = estate / "access.jsonl"
    log.write_bytes((ROOT / "sample_logs" / "agents" / "access.jsonl").read_bytes())
    rules = tmp_path / "rules"
    rules.mkdir()
    bundled = ROOT / "rules" / "M2M105-delegation-without-human-root.yaml"
    rule_file = rules / bundled.name  # an unchanged copy of a bundled rule: read once
    rule_file.write_bytes(bundled.read_bytes())
    evidence = {path: path.read_bytes() for path in (log, rule_file)}
    runner = CliRunner()
    flags = [*AS_OF, "-q", "-f", "json", "--fail-on", "never"]
    for args, named in [
        ([str(estate), "-o", str(log)], "input"),
        ([f"{estate}/*.jsonl", "-o", str(log)], "input"),
        ([str(log), "--rules", str(rules), "-o", str(rule_file)], "rule file"),
    ]:
        result = runner.invoke(app, ["scan", *args, *flags])
        assert result.exit_code == 2, (args, result.output)
        assert f"is the same file as {named} " in result.output
    with log.open("rb") as stdin:
        piped = subprocess.run(
            [sys.executable, "-m", "m2maudit", "scan", "-", "-o", str(log), *flags],
            stdin=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    assert piped.returncode == 2 and "is the same file as standard input" in piped.stderr
    assert {path: path.read_bytes() for path in evidence} == evidence
    # A new YAML file in a --rules directory would be read as a rule by the next run.
    new_rule = str(rules / "report.yaml")
    into_rules = runner.invoke(
        app, ["scan", str(log), "--rules", str(rules), "-o", new_rule, *flags]
    )
    assert into_rules.exit_code == 2 and "it would be read as a rule" in into_rules.output
    assert not (rules / "report.yaml").exists()
    to_stdout = runner.invoke(app, ["scan", str(log), "-o", "-", *flags])
    assert to_stdout.exit_code == 0 and json.loads(to_stdout.stdout)["findings"]
    assert not Path("-").exists()


def test_logs_of_which_no_event_loads_fail_the_gate(tmp_path: Path) -> None:
    """A mapping typo made every record of the only log a reject; the inventory alone was
    audited, and the gate passed with a green check. It now fails (exit 2) with the report
    written; a second log that loads makes it a partial read again, which `--strict` judges."""
    (tmp_path / "m.yaml").write_text("mapping:\n  timestamp: time\n")
    log = str(ROOT / "sample_logs" / "agents" / "access.jsonl")
    inventory = str(ROOT / "sample_logs" / "clean" / "inventory.csv")
    common = ["scan", "--inventory", inventory, "--as-of", "2026-11-28T00:00:00Z", "-q"]
    typo = CliRunner().invoke(
        app,
        [
            *common,
            log,
            "-c",
            str(tmp_path / "m.yaml"),
            "-f",
            "markdown",
            "-o",
            str(tmp_path / "pr.md"),
        ],
    )
    assert typo.exit_code == 2
    assert "no event could be loaded: 1 log unreadable" in typo.output
    assert (tmp_path / "pr.md").read_text().startswith("## ❌ m2maudit: no findings")
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"time": "2026-11-27T10:00:00Z", "principal": "agent-a"}) + "\n")
    partial = CliRunner().invoke(
        app, [*common, log, str(good), "-c", str(tmp_path / "m.yaml"), "-f", "json"]
    )
    assert partial.exit_code in (0, 1) and "no event could be loaded" not in partial.output
    assert (
        CliRunner().invoke(app, [*common, log, "-f", "json", "--fail-on", "never"]).exit_code == 0
    )


def test_a_stray_text_file_beside_an_inventory_does_not_fail_the_gate(tmp_path: Path) -> None:
    """Only logs count: notes beside an inventory failed the run as 'no event could be
    loaded'; records no format claims (a log with a wrong mapping, likely) still do."""
    estate = tmp_path / "estate"
    estate.mkdir()
    (estate / "inventory.csv").write_bytes(
        (ROOT / "sample_logs" / "clean" / "inventory.csv").read_bytes()
    )
    (estate / "notes.txt").write_text("rotate the keys on Friday\n")
    flags = [*AS_OF, "-q", "-f", "json", "--fail-on", "never"]
    assert CliRunner().invoke(app, ["scan", str(estate), *flags]).exit_code == 0
    (estate / "calls.jsonl").write_text('{"when": "2026-11-27T10:00:00Z", "who": "agent-a"}\n')
    unclaimed = CliRunner().invoke(app, ["scan", str(estate), *flags])
    assert unclaimed.exit_code == 2 and "1 log unreadable" in unclaimed.output


def test_a_cut_gzip_log_beside_an_inventory_fails_the_gate(tmp_path: Path) -> None:
    """A partly downloaded CloudTrail object is the likeliest unreadable log in CI; with an
    inventory beside it the run passed, having audited no call."""
    whole = sorted((ROOT / "sample_logs" / "cloudtrail").glob("*.json.gz"))[0].read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole[:2000])
    inventory = str(ROOT / "sample_logs" / "agents" / "inventory.csv")
    result = CliRunner().invoke(
        app, ["scan", str(cut), "-i", inventory, *AS_OF, "-q", "-f", "json", "--fail-on", "never"]
    )
    assert result.exit_code == 2 and "no event could be loaded: 1 log unreadable" in result.output


def test_an_output_path_through_a_file_is_refused_from_the_command_line(tmp_path: Path) -> None:
    """typer made `-o report.json/` a Path, which dropped the slash: report.json was
    replaced. `--write-baseline -` wrote a file named `-`."""
    (tmp_path / "report.json").write_text("keep")
    log = str(ROOT / "sample_logs" / "k8s" / "audit.jsonl")
    for flag, path, message in [
        ("-o", str(tmp_path / "report.json") + "/", "a path ending in / names a directory"),
        ("--write-baseline", str(tmp_path / "report.json") + "/", "names a directory"),
        ("--write-baseline", "-", "a baseline is a file to commit"),
    ]:
        result = CliRunner().invoke(app, ["scan", log, *AS_OF, "-q", flag, path])
        assert result.exit_code == 2 and message in result.output, result.output
    assert (tmp_path / "report.json").read_text() == "keep"


def test_a_log_rejected_whole_fails_the_gate_with_a_store_too(tmp_path: Path) -> None:
    """Read into a `--db` store before, the log counted as read: the gate passed."""
    log = tmp_path / "rejected.jsonl"
    log.write_text('{"timestamp": "not a time", "principal": "agent-a"}\n')
    inventory = str(ROOT / "sample_logs" / "clean" / "inventory.csv")
    db = str(tmp_path / "s.duckdb")
    CliRunner().invoke(app, ["ingest", "--db", db, str(log), "-q"])
    result = CliRunner().invoke(
        app, ["scan", "--db", db, str(log), "-i", inventory, *AS_OF, "-q", "-f", "json"]
    )
    assert result.exit_code == 2 and "no event could be loaded" in result.output


def test_a_scan_of_the_store_alone_fails_as_the_run_that_read_the_log(tmp_path: Path) -> None:
    """The store kept an unreadable file's error but not whether it was a log, so `scan --db`
    alone audited the inventory, passed, and said nothing of the log. A stray note beside
    the inventory still does not fail it."""
    unclaimed = tmp_path / "calls.jsonl"
    unclaimed.write_text('{"when": "2026-11-27T10:00:00Z", "who": "agent-a"}\n')
    notes = tmp_path / "notes.txt"
    notes.write_text("rotate the keys on Friday\n")
    inventory = str(ROOT / "sample_logs" / "clean" / "inventory.csv")
    flags = [*AS_OF, "-q", "-f", "json", "--fail-on", "never"]
    for log, exit_code in [(unclaimed, 2), (notes, 0)]:
        db = str(tmp_path / f"{log.stem}.duckdb")
        first = CliRunner().invoke(app, ["scan", "--db", db, str(log), "-i", inventory, *flags])
        again = CliRunner().invoke(app, ["scan", "--db", db, *flags])
        assert (first.exit_code, again.exit_code) == (exit_code, exit_code), again.output
        failed = f"no event could be loaded: 1 log unreadable ({unclaimed})" in again.output
        assert failed == (exit_code == 2), again.output
    # A store made before the column: reading the log into it again sets what it lacked.
    db = str(tmp_path / "calls.duckdb")
    with duckdb.connect(db) as con:
        con.execute("UPDATE ingest_errors SET unreadable_log = NULL")
    assert CliRunner().invoke(app, ["scan", "--db", db, *flags]).exit_code == 0
    CliRunner().invoke(app, ["scan", "--db", db, str(unclaimed), *flags])
    assert CliRunner().invoke(app, ["scan", "--db", db, *flags]).exit_code == 2


def test_format_names_are_read_in_any_case(tmp_path: Path) -> None:
    """As `--fail-on HIGH` is: `-f JSON` is the json report, on scan, formats and token."""
    clean = str(ROOT / "sample_logs" / "clean")
    assert scan(clean, "-f", "JSON") == scan(clean, "-f", "json")
    runner = CliRunner()
    assert json.loads(runner.invoke(app, ["formats", "-f", "Json"]).stdout)
    inspected = runner.invoke(
        app, ["token", "inspect", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", "-f", "JSON"]
    )
    assert json.loads(inspected.stdout)["schema_version"] == "1.0"


def test_calls_after_as_of_are_said_to_be_judged_too(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"timestamp": "2026-11-01T00:00:00Z", "principal": "agent-a"}\n')
    args = ["scan", str(log), "-q", "--fail-on", "never", "-f", "json"]
    early = CliRunner().invoke(app, [*args, "--as-of", "2026-10-01T00:00:00Z"])
    assert early.exit_code == 0
    assert (
        "m2maudit: warning: the logs hold calls after the scan's clock 2026-10-01T00:00:00Z "
        "(the last at 2026-11-01T00:00:00Z)" in early.stderr
    )
    later = CliRunner().invoke(app, [*args, "--as-of", "2026-11-01T00:00:00Z"])
    assert later.exit_code == 0 and "warning" not in later.stderr


def test_calls_after_now_name_the_clock_without_as_of(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"timestamp": "2099-01-01T00:00:00Z", "principal": "agent-a"}\n')
    result = CliRunner().invoke(app, ["scan", str(log), "-q", "--fail-on", "never", "-f", "json"])
    [warning] = [
        line for line in result.stderr.splitlines() if line.startswith("m2maudit: warning:")
    ]
    assert "after the scan's clock 20" in warning and "(default now)" in warning
    assert "." not in warning.split("clock ", 1)[1].split(" ", 1)[0]  # whole seconds


def test_a_principal_of_megabytes_is_cut_short_in_reports(tmp_path: Path) -> None:
    """A log may name a caller with megabytes of text; each report would copy it once per
    finding. Reports show its start, its length and a fingerprint; the finding ids are of
    the whole values, so two long names that differ stay two findings."""
    from m2maudit.findings import finding_id

    names = ["agent-" + "x" * 5_000_000, "agent-" + "x" * 4_999_999 + "y"]
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(
            json.dumps({"timestamp": "2026-11-20T10:00:00Z", "principal": name}) + "\n"
            for name in names
        )
    )
    report = tmp_path / "report.json"
    args = ["scan", str(log), "--as-of", "2026-11-21T00:00:00Z", "-f", "json", "-o", str(report)]
    result = CliRunner().invoke(app, [*args, "--fail-on", "never", "-q"])
    assert result.exit_code == 0, result.output
    assert report.stat().st_size < 100_000
    findings = json.loads(report.read_text())["findings"]
    assert findings
    shown = {f["principal"] for f in findings}
    assert len(shown) == 2
    assert all(p.startswith("agent-xxx") and "5,000,006 characters, sha256 " in p for p in shown)
    by_rule: dict[str, set[str]] = {}
    for finding in findings:
        by_rule.setdefault(finding["rule_id"], set()).add(finding["id"])
    assert all(len(ids) == 2 for ids in by_rule.values())
    missing_user = {finding_id("M2M101", name, None) for name in names}
    assert by_rule["M2M101"] == missing_user


@pytest.mark.parametrize("output_format", sorted(REPORTERS))
@pytest.mark.parametrize("quiet", [False, True], ids=["full", "quiet"])
@pytest.mark.parametrize("sample", ["agents", "clean"])  # with findings, and with none
def test_a_report_written_among_the_logs_is_passed_over(
    tmp_path: Path, output_format: str, quiet: bool, sample: str
) -> None:
    """The next scan of the folder is the scan before it: the CSV report (with `principal`
    and `token_id` columns) had been read as an inventory, and a high finding went missing."""
    estate = tmp_path / "estate"
    shutil.copytree(ROOT / "sample_logs" / sample, estate)
    before = json.loads(scan(str(estate), "-f", "json")[1])
    report = estate / f"m2maudit-report.{output_format}"
    args = ["-f", output_format, "-o", str(report)]
    CliRunner().invoke(app, ["scan", str(estate), *args, *AS_OF, *(["-q"] if quiet else [])])
    assert report.stat().st_size > 0
    after = json.loads(scan(str(estate), "-f", "json", "--strict")[1])
    assert [f["id"] for f in after["findings"]] == [f["id"] for f in before["findings"]]
    (entry,) = [i for i in after["inputs"] if i["source"].endswith(report.name)]
    assert (
        entry["skipped"] == f"an m2maudit {output_format} report (this tool's output, not an input)"
    )


def test_a_baseline_written_among_the_logs_is_passed_over(tmp_path: Path) -> None:
    estate = tmp_path / "estate"
    shutil.copytree(ROOT / "sample_logs" / "agents", estate)
    baseline = estate / "baseline.json"
    scan(str(estate), "-f", "json", "--write-baseline", str(baseline))
    code, out = scan(str(estate), "-f", "json", "--strict", "--baseline", str(baseline))
    assert code == 0  # every finding baselined, and no input refused
    (entry,) = [i for i in json.loads(out)["inputs"] if i["source"].endswith("baseline.json")]
    assert entry["skipped"] == "an m2maudit baseline (this tool's output, not an input)"


@pytest.mark.parametrize(
    "head",
    [
        "id,severity,principal,token_id,scopes\n",  # an inventory that shares a few columns
        '{"schema_version": "1.0", "tool": {"name": "other"}}\n',
        '{"timestamp": "2026-11-20T10:00:00Z", "principal": "m2maudit: 3 findings"}\n',
        "## m2maudit notes\n",
    ],
)
def test_an_input_that_looks_a_little_like_a_report_is_still_read(head: str) -> None:
    assert report_written_as(head) is None


def test_a_csv_report_saved_again_with_a_bom_and_crlf_is_still_a_report() -> None:
    header = ",".join(CSV_COLUMNS)
    assert report_written_as(f"\ufeff{header}\r\nabc,high\r\n") == "csv"


@pytest.mark.parametrize(
    ("head", "written_as"),
    [
        ("m2maudit 0.1.0 credential audit\r\n  as of  2026-11-28\r\n", "table"),
        ('\n<testsuites name="m2maudit" tests="3">', "junit"),
        ('<?xml version="1.0"?>\r\n<testsuites name="m2maudit">', "junit"),
    ],
    ids=["table-crlf", "junit-no-declaration", "junit-crlf"],
)
def test_a_report_checked_out_with_crlf_or_rewritten_is_still_a_report(
    head: str, written_as: str
) -> None:
    """Committed and checked out on Windows (CRLF), or written again by an XML tool without
    the declaration: such a report failed the next `--strict` scan as unreadable."""
    assert report_written_as(head) == written_as


@pytest.mark.parametrize(
    "first_line",
    [
        '{"m2maudit_baseline": true}',
        '{"schema_version": "1.0", "tool": {"name": "m2maudit"}}',
        "m2maudit: 1 finding",
    ],
)
def test_a_log_below_a_line_like_a_report_is_not_passed_over(
    tmp_path: Path, first_line: str
) -> None:
    """One line must not hide a log from the audit: the file is unreadable, not skipped,
    so --strict still fails."""
    log = tmp_path / "calls.jsonl"
    calls = (ROOT / "sample_logs" / "agents" / "access.jsonl").read_text()
    log.write_text(first_line + "\n" + calls)
    code, _ = scan(str(log), "-f", "json", "--strict")
    assert code == 2


@pytest.mark.parametrize(
    "header",
    [
        ",".join(CSV_COLUMNS[:-2]),  # columns dropped in a spreadsheet
        ",".join([*CSV_COLUMNS, "notes"]),  # a column added
        ",".join(f'"{c}"' for c in CSV_COLUMNS),  # every cell quoted
    ],
    ids=["dropped", "added", "quoted"],
)
def test_a_csv_report_edited_a_little_is_still_a_report(header: str) -> None:
    assert report_written_as(f"{header}\n1,high,high,broad-scopes,M2M201\n") == "csv"


def test_a_person_reads_times_to_the_second_a_machine_every_digit(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """From a trial: a window from a log with milliseconds to one without read
    `2015-03-18T19:04:42Z .. 2026-02-18T07:34:37.443000Z`."""
    calls = [
        {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", "action": "GET /a"},
        {"timestamp": "2026-11-20T11:00:00.443Z", "principal": "agent-a", "action": "GET /b"},
    ]
    write_jsonl(tmp_path / "a.jsonl", calls)
    table = run_cli("scan", "a.jsonl", "--as-of", "2026-11-28T00:00:00Z", "--fail-on", "never")
    person = table.stdout + table.stderr
    assert "2026-11-20T10:00:00Z .. 2026-11-20T11:00:00Z" in person
    assert ".443" not in person
    machine = run_cli("scan", "a.jsonl", "--as-of", "2026-11-28T00:00:00Z", "-f", "json")
    assert json.loads(machine.stdout)["window"]["end"] == "2026-11-20T11:00:00.443000Z"


def test_a_json_document_gives_record_positions_not_lines(tmp_path: Path) -> None:
    """A JSON array's reader gives no lines: its records' positions were written `file:2`
    and as SARIF's `startLine`, which pointed an editor at the wrong record."""
    import csv
    import io

    import jsonschema

    from tests.source_support import shared_dir

    def records(name: str) -> list[dict[str, str]]:
        rows = [
            {"timestamp": f"2026-11-01T10:00:0{i}Z", "principal": f"{name}-{i}", "token_id": name}
            for i in range(3)
        ]
        rows[1]["timestamp"] = "bogus"
        return rows

    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(records("agent-p"), indent=2), encoding="utf-8")
    lines = tmp_path / "lines.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records("agent-l")) + "\n")
    runs = {}
    for output_format in ("sarif", "csv", "json"):
        out = tmp_path / f"report.{output_format}"
        result = CliRunner().invoke(
            app,
            [
                *("scan", str(pretty), str(lines), *AS_OF, "--fail-on", "never"),
                "-f",
                output_format,
                "-o",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        runs[output_format] = (out.read_text(encoding="utf-8"), result.stderr)
    sarif_text, stderr = runs["sarif"]
    assert f"rejected: {pretty} record 2: unparseable" in stderr
    assert f"rejected: {lines}:2: unparseable" in stderr
    document = json.loads(sarif_text)
    schema = json.loads((shared_dir() / "schemas" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(document)
    physical = [r["locations"][0]["physicalLocation"] for r in document["runs"][0]["results"]]
    from_pretty = [p for p in physical if p["artifactLocation"]["uri"].endswith("pretty.json")]
    from_lines = [p for p in physical if p["artifactLocation"]["uri"].endswith("lines.jsonl")]
    assert from_pretty and all("region" not in p and p["properties"]["record"] for p in from_pretty)
    assert from_lines and all(p["region"]["startLine"] >= 1 for p in from_lines)
    located = [r["locations"] for r in csv.DictReader(io.StringIO(runs["csv"][0]))]
    assert any(f"{pretty} record " in cell for cell in located)
    assert any(f"{lines}:" in cell for cell in located)
    inputs = json.loads(runs["json"][0])["inputs"]
    assert {i["source"]: i["by_record"] for i in inputs} == {str(pretty): True, str(lines): False}
    # A `--db` store remembers it for a file it already holds; one made before the column
    # (an empty column added) reads it as lines, as it was shown then.
    db = str(tmp_path / "store.duckdb")
    for _ in range(2):
        again = CliRunner().invoke(
            app, ["scan", "--db", db, str(pretty), *AS_OF, "--fail-on", "never", "-f", "json"]
        )
        assert [i["by_record"] for i in json.loads(again.stdout)["inputs"]] == [True]
    with duckdb.connect(db) as con:
        con.execute("ALTER TABLE ingested_files DROP COLUMN by_record")
    old = CliRunner().invoke(
        app, ["scan", "--db", db, str(pretty), *AS_OF, "--fail-on", "never", "-f", "json"]
    )
    assert old.exit_code == 0, old.output
    assert [i["by_record"] for i in json.loads(old.stdout)["inputs"]] == [False]
