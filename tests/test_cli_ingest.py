"""The `ingest` and `scan` commands end to end: exit codes, stderr summary, incremental store."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
import typer

from m2maudit import __version__
from m2maudit.cli import app
from tests.conftest import RunCli, query, write_bytes, write_csv, write_jsonl

TS = "2024-05-01T{:02d}:00:00Z"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGktdGVzdCJ9.Q2xpVGVzdFNpZ25hdHVyZVZhbHVlOTk5"


def ev(hour: int, name: str = "agent-a", **extra: Any) -> dict[str, Any]:
    return {"timestamp": TS.format(hour), "principal": name, **extra}


def count(db: Path, table: str = "events") -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


def summary(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if " read, " in line and " loaded, " in line]
    return line


# --- version and help -------------------------------------------------------------------


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert (result.code, result.stdout, result.stderr) == (0, f"m2maudit {__version__}\n", "")


def test_python_dash_m_help(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.code == 0
    assert "Usage:" in result.stdout
    assert "ingest" in result.stdout and "scan" in result.stdout


def _command_names() -> list[str]:
    group = typer.main.get_command(app)
    return sorted(group.commands)  # type: ignore[attr-defined]


def test_there_are_commands() -> None:
    assert {"ingest", "scan"} <= set(_command_names())


@pytest.mark.parametrize("name", _command_names())
def test_every_command_has_help(cli: RunCli, name: str) -> None:
    result = cli(name, "--help")
    assert result.code == 0, result.stderr
    assert "Usage: " in result.stdout and name in result.stdout
    docstring = typer.main.get_command(app).commands[name].help  # type: ignore[attr-defined]
    assert docstring and docstring.split()[0] in result.stdout


def _every_command_path() -> list[tuple[str, ...]]:
    """Each command and group, by the words that call it: (), ("scan",), ("token", "inspect")..."""
    paths: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return paths


@pytest.mark.parametrize("path", _every_command_path(), ids=" ".join)
def test_help_names_what_each_option_takes(cli: RunCli, path: tuple[str, ...]) -> None:
    """typer 0.29 showed `<bool>` after a flag (users typed `--strict true`, then read as a
    path) and `<list[str]>` or `<str>` after an option and an argument; a flag now shows
    nothing, an option its value's name (`--as-of TIME`), an argument its name alone."""
    result = cli(*path, "--help")
    assert result.code == 0, result.stderr
    assert "<bool>" not in result.stdout
    assert not re.search(r"--[a-z-]+ +(-[a-z] +)?<(str|path|list)", result.stdout)
    assert not re.search(r"<(str|path|list|int)", result.stdout), result.stdout
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    for option in command.params:
        if getattr(option, "is_flag", False) or option.param_type_name != "option":
            continue
        assert option.metavar and option.metavar.isupper(), option.opts


# --- ingest: summary and incremental loads ----------------------------------------------


def test_ingest_prints_a_per_file_summary_on_stderr(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "logs" / "a.jsonl", [ev(10), ev(12), "{broken"])
    write_csv(
        tmp_path / "logs" / "inv.csv",
        ["token_id", "principal", "status"],
        [["t1", "agent-a", "active"]],
    )
    result = cli("ingest", "logs", "--db", "s.duckdb")
    assert result.code == 0
    assert result.stdout == ""
    err = result.stderr
    for column in ("file", "format", "read", "loaded", "dup", "rejected", "window (UTC)"):
        assert column in err
    row = next(line for line in err.splitlines() if "a.jsonl" in line and "generic-log" in line)
    assert [cell.strip() for cell in row.split("│")[2:7]] == ["generic-log", "3", "2", "0", "1"]
    assert "2024-05-01T10:00:00Z .. 2024-05-01T12:00:00Z" in err
    assert any("inv.csv" in line and "generic-inventory" in line for line in err.splitlines())
    assert "rejected: logs/a.jsonl:3: not valid JSON" in err
    assert summary(err) == (
        "2 files: 4 records read, 3 loaded, 0 duplicates skipped, 1 rejected, 0 files unreadable"
    )
    assert result.error_lines() == []


def test_ingest_twice_adds_nothing(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10), ev(11), ev(12, scopes=5)])
    first = cli("ingest", "a.jsonl", "--db", "s.duckdb")
    assert first.code == 0
    assert summary(first.stderr).startswith(
        "1 file: 3 records read, 2 loaded, 0 duplicates skipped, 1 rejected"
    )
    second = cli("ingest", "a.jsonl", "--db", "s.duckdb")
    assert second.code == 0
    assert "already ingested" in second.stderr
    assert summary(second.stderr).startswith(
        "1 file: 3 records read, 0 loaded, 2 duplicates skipped, 1 rejected"
    )
    db = tmp_path / "s.duckdb"
    assert (count(db), count(db, "ingest_errors"), count(db, "ingested_files")) == (2, 1, 1)


def test_a_file_of_rejects_reads_the_same_when_ingested_again(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    write_jsonl(tmp_path / "bad.jsonl", [{"timestamp": "never", "principal": "agent-a"}] * 2)
    runs = [cli("ingest", "a.jsonl", "bad.jsonl", "--db", "s.duckdb") for _ in range(2)]
    for result in runs:
        assert "bad.jsonl: no record could be loaded (2 rejected)" in result.stderr
        assert "1 file unreadable" in summary(result.stderr)


def test_an_unreadable_file_ingested_twice_is_one_error(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    (tmp_path / "notes.json").write_text('{"colour": "red"}\n', encoding="utf-8")
    for _ in range(3):
        result = cli("ingest", "a.jsonl", "notes.json", "--db", "s.duckdb")
        assert "notes.json: unrecognised format" in result.stderr
    assert count(tmp_path / "s.duckdb", "ingest_errors") == 1


def test_scan_in_memory_still_finds_a_copy_among_its_inputs(cli: RunCli, tmp_path: Path) -> None:
    """A scan without --db hashes only files that could be copies (same size): a copy is
    still reported as such, and a file of another size is loaded without a hash."""
    write_jsonl(tmp_path / "logs" / "a.jsonl", [ev(10), ev(11)])
    write_jsonl(tmp_path / "logs" / "b.jsonl", [ev(10), ev(11)])
    write_jsonl(tmp_path / "logs" / "c.jsonl", [ev(12, "agent-c")])
    result = cli("scan", "logs", "-f", "json", "--fail-on", "never")
    assert result.code == 0
    assert "already ingested" in result.stderr
    assert summary(result.stderr).startswith(
        "3 files: 5 records read, 3 loaded, 2 duplicates skipped, 0 rejected"
    )


def test_overlapping_file_counts_the_overlap_as_duplicates(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "day1.jsonl", [ev(9), ev(10), ev(11)])
    write_jsonl(tmp_path / "day1-again.jsonl", [ev(10), ev(11), ev(12), ev(13)])
    assert cli("ingest", "day1.jsonl", "--db", "s.duckdb").code == 0
    result = cli("ingest", "day1-again.jsonl", "--db", "s.duckdb")
    assert result.code == 0
    assert summary(result.stderr).startswith(
        "1 file: 4 records read, 2 loaded, 2 duplicates skipped, 0 rejected"
    )
    assert count(tmp_path / "s.duckdb") == 5


def test_same_size_file_changed_in_the_middle_is_ingested(cli: RunCli, tmp_path: Path) -> None:
    """A file is only 'already ingested' when every byte is the same."""
    records = [ev(h % 24, f"agent-{h:05d}", pad="p" * 2000) for h in range(2000)]  # ~4 MB
    path = write_jsonl(tmp_path / "big.jsonl", records)
    assert cli("ingest", "big.jsonl", "--db", "s.duckdb").code == 0
    data = bytearray(path.read_bytes())
    middle = data.index(b"agent-01000")
    data[middle : middle + 11] = b"agent-X1000"
    path.write_bytes(bytes(data))
    result = cli("ingest", "big.jsonl", "--db", "s.duckdb")
    assert summary(result.stderr).startswith(
        "1 file: 2,000 records read, 1 loaded, 1,999 duplicates skipped"
    )
    assert re.search(r"│ big\.jsonl +│ generic-log +│ 2,000 +│ +1 +│ 1,999 +│", result.stderr)
    assert count(tmp_path / "s.duckdb") == 2001


def test_inventory_option_on_the_command_line(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    write_csv(
        tmp_path / "looks-like-a-log.csv",
        ["timestamp", "principal", "token_id"],
        [[TS.format(1), "agent-a", "tok-9"]],
    )
    result = cli("ingest", "a.jsonl", "--inventory", "looks-like-a-log.csv", "--db", "s.duckdb")
    assert result.code == 0, result.stderr
    db = tmp_path / "s.duckdb"
    assert query(db, "SELECT credential_id FROM credentials") == [("tok-9",)]
    assert count(db) == 1


def test_stdin(run_cli: RunCli, tmp_path: Path) -> None:
    data = "\n".join(json.dumps(ev(h, authorization=f"Bearer {TOKEN}")) for h in (1, 2)) + "\n"
    result = run_cli("ingest", "-", "--db", "s.duckdb", input=data)
    assert result.code == 0, result.stderr
    assert query(tmp_path / "s.duckdb", "SELECT DISTINCT source_file FROM events") == [("<stdin>",)]
    assert count(tmp_path / "s.duckdb") == 2


@pytest.mark.parametrize("args", [["-", "-"], ["-", "--inventory", "-"]])
def test_stdin_twice_is_one_clear_error(run_cli: RunCli, args: list[str]) -> None:
    result = run_cli("ingest", *args, "--db", "s.duckdb", input="{}\n")
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: -: standard input is given more than once; it can be read only once"
    ]


def test_quiet_prints_only_the_summary(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10), "{broken"])
    result = cli("ingest", "a.jsonl", "--db", "s.duckdb", "-q")
    assert result.code == 0
    assert result.stderr.splitlines() == [
        "1 file: 2 records read, 1 loaded, 0 duplicates skipped, 1 rejected, 0 files unreadable"
    ]


def test_ingest_requires_db(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    result = cli("ingest", "a.jsonl")
    assert result.code == 2
    assert "--db" in result.stderr and "Traceback" not in result.stderr


# --- strictness, partial failure, exit codes --------------------------------------------


def test_rejections_exit_0_unless_strict(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10), ev(11, timestamp="yesterday")])
    assert cli("scan", "--fail-on", "never", "a.jsonl").code == 0
    result = cli("scan", "a.jsonl", "--strict")
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: --strict: 1 record rejected, 0 files unreadable"
    ]


def test_strict_still_reports_what_could_be_read(cli: RunCli, tmp_path: Path) -> None:
    """A CI job failed by one bad line still uploads the findings of the rest; it writes no
    baseline from inputs it was told to refuse."""
    write_jsonl(tmp_path / "a.jsonl", [ev(10), ev(11, timestamp="yesterday")])
    result = cli(
        "scan", "a.jsonl", "--strict", "-f", "sarif", "-o", "r.sarif", "--write-baseline", "b.json"
    )
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: --strict: 1 record rejected, 0 files unreadable; "
        "no baseline written to b.json"
    ]
    assert "; exit 2" in result.stderr
    run = json.loads((tmp_path / "r.sarif").read_text())["runs"][0]
    # The uploaded report says the run failed, and why.
    invocation = run["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0] == {
        "level": "error",
        "message": {
            "text": "--strict: 1 record rejected, 0 files unreadable; no baseline written to b.json"
        },
    }
    results = run["results"]
    assert results  # the good record's findings, active: no baseline adopted them
    assert not any("baselineState" in item for item in results)
    assert not (tmp_path / "b.json").exists()


def test_the_ci_line_counts_in_words_and_names_what_filters_left_out(
    cli: RunCli, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    everything = cli("scan", "a.jsonl", "-f", "json", "-o", "r.json", "--fail-on", "never")
    findings = len(json.loads((tmp_path / "r.json").read_text())["findings"])
    assert findings > 1
    assert (
        f"m2maudit: {findings} findings ({findings} active: " in everything.stderr
        and "0 suppressed, 0 baselined); 0 failing (--fail-on never); exit 0 (report in r.json)"
        in everything.stderr
    )
    one = cli("scan", "a.jsonl", "-f", "json", "--problem", "missing-user-context")
    kept = len(json.loads(one.stdout)["findings"])
    line = next(text for text in one.stderr.splitlines() if text.endswith(f"exit {one.code}"))
    noun = "finding" if kept == 1 else "findings"
    assert line.startswith(f"m2maudit: {kept} {noun} ({kept} active: ")
    assert (
        f"{findings - kept} finding" in line
        and "left out by --problem missing-user-context" in line
    )


def test_unreadable_file_among_good_ones(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in" / "a.jsonl", [ev(10)])
    write_bytes(tmp_path / "in" / "b.jsonl", b"\x00\x01\x02")
    result = cli("ingest", "in", "--db", "s.duckdb")
    assert result.code == 0
    assert "unreadable: in/b.jsonl: not a text file (binary content)" in result.stderr
    assert result.error_lines() == []
    assert summary(result.stderr).endswith("1 file unreadable")
    strict = cli("ingest", "in", "--db", "s.duckdb", "--strict")
    assert strict.code == 2
    assert strict.error_lines() == [
        "m2maudit: error: --strict: 0 records rejected, 1 file unreadable"
    ]


def test_file_whose_every_record_is_rejected(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10, scopes=1), ev(11, scopes=2)])
    result = cli("scan", "--fail-on", "never", "a.jsonl")
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: a.jsonl: no record could be loaded (2 rejected)"
    ]
    assert 'rejected: a.jsonl:1: field "scopes"' in result.stderr  # the reasons are shown


def test_failed_first_ingest_leaves_no_database(cli: RunCli, tmp_path: Path) -> None:
    write_bytes(tmp_path / "binary.jsonl", b"\x00\x01\x02")
    result = cli("ingest", "binary.jsonl", "--db", "new.duckdb")
    assert result.code == 2
    assert not list(tmp_path.glob("new.duckdb*"))
    result = cli("ingest", "missing.jsonl", "--db", "new.duckdb")
    assert result.code == 2
    assert not list(tmp_path.glob("new.duckdb*"))


def test_failed_ingest_leaves_an_existing_database_as_it_was(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10), ev(11)])
    assert cli("ingest", "a.jsonl", "--db", "s.duckdb").code == 0
    write_bytes(tmp_path / "bad.jsonl", b"\x00\x01")
    result = cli("ingest", "bad.jsonl", "--db", "s.duckdb")
    assert result.code == 2
    assert count(tmp_path / "s.duckdb") == 2


def test_bad_flags_exit_2_without_traceback(run_cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    for args in (
        ["scan", "a.jsonl", "--threads", "0"],
        ["scan", "a.jsonl", "--bogus"],
        ["scan", "a.jsonl", "--format-hint", "nope"],
        ["scan"],
    ):
        result = run_cli(*args)
        assert result.code == 2, args
        assert "Traceback" not in result.stderr


def test_unknown_format_hint_is_named(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    result = cli("scan", "a.jsonl", "--format-hint", "nope")
    assert result.code == 2
    [line] = result.error_lines()
    assert line.startswith("m2maudit: error: --format-hint: unknown format 'nope'; known: ")


def test_a_format_hint_the_content_contradicts_is_a_warning(cli: RunCli, tmp_path: Path) -> None:
    """`--format-hint okta` on a generic log made every record a reject with no word of why
    (a vendor-format trial): the hint is named as the likelier mistake, as a warning that
    --strict fails on. A hint on content no format claims (what a hint is for) is quiet."""
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    wrong = cli("scan", "a.jsonl", "--format-hint", "okta", "--fail-on", "never")
    assert "a.jsonl: --format-hint okta, but its content reads as generic-log" in wrong.stderr
    strict = cli("scan", "a.jsonl", "--format-hint", "okta", "--fail-on", "never", "--strict")
    assert strict.code == 2
    write_jsonl(tmp_path / "odd.jsonl", [{"when": "2024-05-01T10:00:00Z", "who": "agent-a"}])
    (tmp_path / "map.yaml").write_text("mapping: {timestamp: when, principal: who}\n")
    quiet = cli("scan", "odd.jsonl", "--format-hint", "generic-log", "-c", "map.yaml", "--strict")
    assert "--format-hint" not in quiet.stderr and quiet.code in (0, 1), quiet.stderr


# --- scan -------------------------------------------------------------------------------


def test_scan_in_memory_writes_no_files(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli("scan", "--fail-on", "never", "a.jsonl", "--as-of", "2024-06-01T00:00:00+02:00")
    assert result.code == 0, result.stderr
    assert "2024-05-31T22:00:00Z" in result.stdout  # the report header shows the clock
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_scan_with_db_and_inventory(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    write_jsonl(tmp_path / "inv.jsonl", [{"token_id": "t1", "status": "active"}])
    result = cli(
        "scan",
        "--fail-on",
        "never",
        "a.jsonl",
        "--inventory",
        "inv.jsonl",
        "--db",
        "s.duckdb",
        "--as-of",
        "2024-06-01",
    )
    assert result.code == 0, result.stderr
    assert (count(tmp_path / "s.duckdb"), count(tmp_path / "s.duckdb", "credentials")) == (1, 1)


def test_a_newer_inventory_replaces_what_the_older_said(cli: RunCli, tmp_path: Path) -> None:
    header = "token_id,principal,created_at,last_rotated_at,status"
    (tmp_path / "inv.csv").write_text(
        f"{header}\nk1,svc-a,2025-01-01,2025-01-01,active\nk2,svc-b,2026-01-01,,active\n"
    )
    assert cli("ingest", "--inventory", "inv.csv", "--db", "s.duckdb").code == 0
    # The next day's export, written over the same file: k1 rotated, k2 revoked.
    (tmp_path / "inv.csv").write_text(
        f"{header}\nk1,svc-a,2025-01-01,2026-11-25,active\nk2,svc-b,2026-01-01,,revoked\n"
    )
    assert cli("ingest", "--inventory", "inv.csv", "--db", "s.duckdb").code == 0
    rows = query(
        tmp_path / "s.duckdb",
        "SELECT credential_id, last_rotated_at::DATE::VARCHAR, status FROM credentials ORDER BY 1",
    )
    assert rows == [("k1", "2026-11-25", "active"), ("k2", None, "revoked")]

    result = cli("scan", "--db", "s.duckdb", "--as-of", "2026-11-28", "-f", "json")
    findings = json.loads(result.stdout)["findings"]
    assert not [f for f in findings if f["rule_id"] == "M2M301"]  # k1 was rotated
    ids = [f["id"] for f in findings]
    assert len(ids) == len(set(ids))


def test_an_older_snapshot_read_again_wins_again(cli: RunCli, tmp_path: Path) -> None:
    """Monday's export, Tuesday's (the key disabled), then Monday's bytes again (re-enabled):
    content seen before is passed over for logs, but an inventory is read again."""
    (tmp_path / "day1.csv").write_text("token_id,principal,status\nk1,svc-a,active\n")
    (tmp_path / "day2.csv").write_text("token_id,principal,status\nk1,svc-a,disabled\n")
    (tmp_path / "day3.csv").write_bytes((tmp_path / "day1.csv").read_bytes())
    for day in ("day1", "day2", "day3"):
        assert cli("ingest", "--inventory", f"{day}.csv", "--db", "s.duckdb").code == 0
    rows = query(tmp_path / "s.duckdb", "SELECT credential_id, status FROM credentials")
    assert rows == [("k1", "active")]
    again = cli("ingest", "--inventory", "day3.csv", "--db", "s.duckdb")
    assert "0 loaded, 1 duplicate skipped" in again.stderr
    # A scan of the store says what it holds from each export, not what the last read added.
    scanned = cli("scan", "--db", "s.duckdb", "-f", "json", "--fail-on", "never", "-q")
    inputs = {item["source"]: item["loaded"] for item in json.loads(scanned.stdout)["inputs"]}
    assert inputs == {"day2.csv": 0, "day3.csv": 1}  # day1's bytes are day3's: one content


def test_an_inventory_read_again_keeps_its_rejects_once(cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "inv.csv").write_text("token_id,principal,status\nk1,svc-a,active\nk2,x,bogus\n")
    for _ in range(3):
        result = cli("ingest", "--inventory", "inv.csv", "--db", "s.duckdb")
        assert result.stderr.count("rejected: inv.csv:3:") == 1
    assert count(tmp_path / "s.duckdb", "ingest_errors") == 1


def test_an_id_listed_twice_in_one_inventory_keeps_its_last_line(
    cli: RunCli, tmp_path: Path
) -> None:
    """By line number: DuckDB stages a CSV of thousands of rows in parallel, not in order."""
    ids = [f"k{n}" for n in range(3000)]
    rows = [f"{i},svc-a,active" for i in ids] + [f"{i},svc-a,revoked" for i in ids]
    (tmp_path / "inv.csv").write_text("token_id,principal,status\n" + "\n".join(rows) + "\n")
    result = cli("ingest", "--inventory", "inv.csv", "--db", "s.duckdb")
    assert result.code == 0
    assert "3,000 loaded, 3,000 duplicates skipped" in result.stderr
    rows_kept = query(tmp_path / "s.duckdb", "SELECT status, count(*) FROM credentials GROUP BY 1")
    assert rows_kept == [("revoked", 3000)]


def test_more_rejections_than_shown_say_where_they_all_are(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10), *[{**ev(11), "timestamp": "soon"}] * 15])
    result = cli("scan", "a.jsonl", "--fail-on", "never", "-f", "json")
    assert "(a --db store keeps all of them in its ingest_errors table)" in result.stderr
    result = cli("ingest", "a.jsonl", "--db", "s.duckdb")
    assert "(all of them are in the ingest_errors table of s.duckdb)" in result.stderr
    assert count(tmp_path / "s.duckdb", "ingest_errors") == 15


def test_scan_bad_as_of(cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [ev(10)])
    result = cli("scan", "a.jsonl", "--as-of", "last week")
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: --as-of: not an ISO 8601 date or time: 'last week'"
    ]


# --- secrets stay out of what the CLI prints --------------------------------------------


def test_no_raw_token_on_stdout_or_stderr(run_cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            ev(10, authorization=f"Bearer {TOKEN}"),
            ev(11, authorization=f"Bearer {TOKEN}", scopes={"bad": 1}),
            '{"timestamp": "x", "authorization": "Bearer ' + TOKEN + '"',
        ],
    )
    write_bytes(tmp_path / "nohead.csv", f"{TS.format(1)},agent,Bearer {TOKEN}\n".encode())
    write_jsonl(tmp_path / "inv.jsonl", [{"token_id": {"raw": TOKEN}, "status": "active"}])
    result = run_cli(
        "scan", "--fail-on", "never", "a.jsonl", "nohead.csv", "--inventory", "inv.jsonl"
    )
    assert result.code == 0
    assert "rejected:" in result.stderr and "unreadable:" in result.stderr
    signature = TOKEN.rsplit(".", 1)[1]
    assert signature not in result.stderr and signature not in result.stdout


def test_file_names_with_markup_characters_are_printed_as_they_are(
    cli: RunCli, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "[red]x[/].jsonl", [ev(10), "{broken"])
    result = cli("ingest", "[red]x[/].jsonl", "--db", "s.duckdb")
    assert result.code == 0, result.stderr
    assert "rejected: [red]x[/].jsonl:2: not valid JSON" in result.stderr


def test_persisted_db_holds_no_raw_token(run_cli: RunCli, tmp_path: Path) -> None:
    marker = "principal-marker-5e8d1c0b9a7f4e3d2c1b0a99"
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            ev(10, marker, authorization=f"Bearer {TOKEN}"),
            ev(11, "b", authorization=TOKEN, scopes={"bad": 1}),  # rejected
        ],
    )
    write_csv(
        tmp_path / "b.csv",
        ["timestamp", "principal", "authorization"],
        [[TS.format(12), "c", f"Bearer {TOKEN}"]],
    )
    result = run_cli("ingest", "a.jsonl", "b.csv", "--db", "s.duckdb")
    assert result.code == 0, result.stderr
    data = b"".join(p.read_bytes() for p in tmp_path.glob("s.duckdb*"))
    signature = TOKEN.rsplit(".", 1)[1]
    assert marker.encode() in data  # stored text is visible to this scan
    assert signature.encode() not in data
    con = duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type LIKE 'VARCHAR%'"
        ).fetchall()
        for table, column in columns:
            hits = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                [f"%{signature}%"],
            ).fetchall()
            assert hits == [(0,)], f"{table}.{column}"
    finally:
        con.close()


def test_a_scan_with_a_db_keeps_its_findings_there(cli: RunCli, tmp_path: Path) -> None:
    logs = Path(__file__).resolve().parent.parent / "sample_logs" / "agents"
    result = cli(
        "scan",
        str(logs),
        "--db",
        "s.duckdb",
        "-f",
        "json",
        "--fail-on",
        "never",
        "--as-of",
        "2026-11-28T00:00:00Z",
    )
    assert result.code == 0, result.stderr
    reported = sorted(f["id"] for f in json.loads(result.stdout)["findings"])
    kept = sorted(row[0] for row in query(tmp_path / "s.duckdb", "SELECT id FROM findings"))
    assert kept == reported and len(kept) > 10


def test_a_scan_of_a_db_alone_checks_what_it_holds(cli: RunCli, tmp_path: Path) -> None:
    """`scan --db FILE` without a PATH runs the rules again on the store: the same findings
    as the scan that filled it, the files it ingested listed as inputs, nothing loaded."""
    logs = Path(__file__).resolve().parent.parent / "sample_logs" / "agents"
    common = ["--db", "s.duckdb", "-f", "json", "--fail-on", "never"]
    common += ["--as-of", "2026-11-28T00:00:00Z"]
    first = cli("scan", str(logs), *common)
    again = cli("scan", *common)
    assert again.code == 0, again.stderr
    findings = [json.loads(r.stdout)["findings"] for r in (first, again)]
    assert [f["id"] for f in findings[1]] == [f["id"] for f in findings[0]]
    inputs = json.loads(again.stdout)["inputs"]
    assert [i["source"] for i in inputs] == [
        i["source"] for i in json.loads(first.stdout)["inputs"]
    ]
    assert "records read" not in again.stderr  # nothing was ingested


def test_a_scan_without_a_path_says_what_it_needs(cli: RunCli, tmp_path: Path) -> None:
    result = cli("scan")
    assert result.code == 2
    assert result.error_lines() == [
        "m2maudit: error: scan: give a log PATH, or --db with a store that already holds events"
    ]
    empty = cli("scan", "--db", "new.duckdb")
    assert empty.code == 2
    assert empty.error_lines() == [
        "m2maudit: error: new.duckdb: the store holds nothing yet; give a log PATH to ingest"
    ]
    assert not (tmp_path / "new.duckdb").exists()  # a store this failed run made is removed


def test_an_interrupted_first_ingest_leaves_no_store_behind(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C or SIGTERM (`timeout`, a cancelled CI job) half-way: one line, exit 130, and
    the --db file this run created is gone, as after any failed first run."""
    from m2maudit import cli as cli_module

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "ingest_paths", interrupted)
    _ingest_is_interrupted_and_leaves_no_store(cli, tmp_path)


def test_an_interrupt_while_the_store_is_made_leaves_no_file(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the schema was being written (a trial hit it 3 times in 12) left an
    empty or half-made store: the store was not yet the run's to remove."""
    from m2maudit.store import Store

    def interrupted(self: Store) -> None:
        self.con.execute("CREATE TABLE m2maudit_meta (key VARCHAR, value VARCHAR)")
        raise KeyboardInterrupt

    monkeypatch.setattr(Store, "_create_schema", interrupted)
    _ingest_is_interrupted_and_leaves_no_store(cli, tmp_path)


def _ingest_is_interrupted_and_leaves_no_store(cli: RunCli, tmp_path: Path) -> None:
    """A first `ingest` into a new store, interrupted where the caller made it: one line,
    exit 130, and no store file left."""
    write_jsonl(tmp_path / "a.jsonl", [{"timestamp": "2026-11-20T10:00:00Z", "principal": "a"}])
    result = cli("ingest", "--db", "new.duckdb", "a.jsonl")
    assert (result.code, result.error_lines()) == (130, ["m2maudit: error: interrupted"])
    assert not (tmp_path / "new.duckdb").exists()


def test_a_scan_of_a_db_alone_is_strict_as_the_ingest_was(cli: RunCli, tmp_path: Path) -> None:
    """--strict judges the stored files as it judged them when they came in: their rejected
    records, and files that could not be read at all, are still in the store."""
    write_jsonl(tmp_path / "a.jsonl", [ev(10), ev(11)])
    (tmp_path / "b.jsonl").write_text(
        '{"timestamp": "2024-05-01T12:00:00Z", "principal": "x"}\n{bad\n'
    )
    (tmp_path / "c.json.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    assert cli("ingest", "a.jsonl", "b.jsonl", "c.json.gz", "--db", "s.duckdb").code == 0
    common = ["--db", "s.duckdb", "-f", "json", "--fail-on", "never"]
    strict = cli("scan", *common, "--strict")
    assert strict.code == 2
    assert strict.error_lines() == [
        "m2maudit: error: --strict: 1 record rejected, 1 file unreadable when the store's "
        "files were ingested (see its ingest_errors table)"
    ]
    lenient = cli("scan", *common)
    assert lenient.code == 0
    inputs = {Path(i["source"]).name: i for i in json.loads(lenient.stdout)["inputs"]}
    assert sorted(inputs) == ["a.jsonl", "b.jsonl", "c.json.gz"]
    assert inputs["b.jsonl"]["rejected"] == 1 and inputs["c.json.gz"]["error"]


def test_a_file_read_fine_again_is_no_longer_unreadable_in_the_store(
    cli: RunCli, tmp_path: Path
) -> None:
    """A gzip cut off in transfer and fetched again, or a file an older version could not
    read (as a CloudTrail digest once was): the store forgets its old error."""
    cut = tmp_path / "c.json.gz"
    cut.write_bytes(gzip.compress(json.dumps(ev(10)).encode())[:20])
    digest = tmp_path / "trail_CloudTrail-Digest.json"
    digest.write_text(
        json.dumps(
            {
                "awsAccountId": "111122223333",
                "digestStartTime": "2026-11-18T00:00:00Z",
                "digestEndTime": "2026-11-18T01:00:00Z",
                "digestS3Bucket": "trail-bucket",
                "logFiles": [{"s3Object": "AWSLogs/x.json.gz", "hashValue": "ab12"}],
            }
        )
    )
    write_jsonl(tmp_path / "a.jsonl", [ev(11)])
    assert cli("ingest", "a.jsonl", "c.json.gz", "--db", "s.duckdb").code == 0
    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:  # as an older version left it
        con.execute(
            "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
            "VALUES (?, 0, NULL, 'no format recognised')",
            [str(digest)],
        )
    common = ["--db", "s.duckdb", "-f", "json", "--fail-on", "never"]
    assert cli("scan", *common, "--strict").code == 2
    cut.write_bytes(gzip.compress(json.dumps(ev(10)).encode()))
    assert cli("ingest", "c.json.gz", str(digest), "--db", "s.duckdb").code == 0
    again = cli("scan", *common, "--strict")
    assert again.code == 0, again.stderr
    assert [i["source"] for i in json.loads(again.stdout)["inputs"]] == ["a.jsonl", "c.json.gz"]
    assert query(tmp_path / "s.duckdb", "SELECT count(*) FROM ingest_errors") == [(0,)]


def test_standard_input_read_fine_does_not_clear_another_inputs_error(
    cli: RunCli, tmp_path: Path
) -> None:
    """Standard input is "<stdin>" whatever it holds: good input on it is not the broken
    input that failed before under the same name."""
    write_jsonl(tmp_path / "a.jsonl", [ev(11)])
    assert cli("ingest", "a.jsonl", "--db", "s.duckdb").code == 0
    broken = cli("ingest", "-", "--db", "s.duckdb", input=b"\x1f\x8b\x08\x00garbage")
    assert "<stdin>" in broken.stderr
    good = json.dumps(ev(12)) + "\n"
    assert cli("ingest", "-", "--db", "s.duckdb", input=good).code == 0
    strict = cli("scan", "--db", "s.duckdb", "--strict", "-f", "json", "--fail-on", "never")
    assert strict.code == 2
    assert "1 file unreadable" in strict.stderr


def test_a_rejected_line_keeps_its_number_whatever_it_is(cli: RunCli, tmp_path: Path) -> None:
    """`:100:` is an emoji code to the terminal library: `a.jsonl:100:` must stay as it is."""
    lines = [json.dumps(ev(n % 24, f"agent-{n}")) for n in range(99)] + ["{bad"]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    result = cli("ingest", "a.jsonl", "--db", "s.duckdb")
    assert result.code == 0
    assert "rejected: a.jsonl:100: not valid JSON" in result.stderr


def test_rejects_deleted_from_the_store_no_longer_fail_strict(cli: RunCli, tmp_path: Path) -> None:
    """The README's remedy for rejects dealt with: delete them from `ingest_errors`, and a
    scan of the store alone judges what it still holds."""
    write_jsonl(tmp_path / "day1.jsonl", [ev(10), ev(11)])
    with (tmp_path / "day1.jsonl").open("a") as log:
        log.write("{bad\n")
    assert cli("ingest", "day1.jsonl", "--db", "s.duckdb").code == 0
    common = ["--db", "s.duckdb", "-f", "json", "--fail-on", "never", "--strict"]
    assert cli("scan", *common).code == 2
    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        con.execute("DELETE FROM ingest_errors WHERE source_file = 'day1.jsonl'")
    result = cli("scan", *common)
    assert result.code == 0, result.stderr
    [given] = json.loads(result.stdout)["inputs"]
    assert (given["loaded"], given["rejected"]) == (2, 0)
    again = cli("ingest", "day1.jsonl", "--db", "s.duckdb", "--strict")
    assert again.code == 0 and "already ingested" in again.stderr


def test_the_summary_lists_only_the_rejects_of_this_run(cli: RunCli, tmp_path: Path) -> None:
    """A fixed copy read into a store that holds the broken one's rejects: the summary's
    list agrees with its count of none."""
    log = tmp_path / "day1.jsonl"
    write_jsonl(log, [ev(10)])
    with log.open("a") as handle:
        handle.write("{bad\n")
    first = cli("ingest", "day1.jsonl", "--db", "s.duckdb")
    assert "rejected: day1.jsonl:2: " in first.stderr
    write_jsonl(log, [ev(10), ev(11)])
    again = cli("ingest", "day1.jsonl", "--db", "s.duckdb")
    assert again.code == 0 and "0 rejected" in again.stderr
    assert "rejected: day1.jsonl" not in again.stderr
