"""What ingest shows on stderr: a progress bar that moves with bytes (by whole files, and
inside a big file by DuckDB's progress of the statement reading it), and a per-file table
that stays short for a directory of thousands of files."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from m2maudit.console import NEXT_STATEMENT_DROP, _ProgressState, _StatementPoller
from m2maudit.sources.base import InputFile


def input_file(size: int) -> InputFile:
    return InputFile(Path(f"f{size}"), f"f{size}", size, compressed=False)


def test_the_bar_counts_finished_files_and_the_share_read_of_the_current_one() -> None:
    big, small = input_file(1000), input_file(500)
    state = _ProgressState(files=[big, small])
    assert state.within_file(0.5) == 250  # the read of the file: its first half
    assert state.within_file(0.9) == 450
    assert state.within_file(0.2) == 550  # DuckDB's next statement: half the rest
    assert state.within_file(1.0) == 750
    assert state.within_file(0.0) == 750  # a third statement: the bar never moves back
    for _ in range(10):  # however many statements follow,
        state.within_file(0.0)
        state.within_file(1.0)
    assert state.within_file(1.0) == 990  # a file is done only when ingest says so
    state.file_done(big)
    assert state.within_file(0.4) == 1000 + 100  # the next file starts at its first statement
    state.file_done(small)
    assert state.within_file(0.7) == 1500


def test_the_bar_moves_as_the_files_of_a_batch_are_read() -> None:
    """A batch of small files is committed at once; reading each into it moves the bar by
    half its bytes, DuckDB's progress adds nothing on top, and the commit brings the rest."""
    files = [input_file(100 + n) for n in range(4)]
    state = _ProgressState(files=files)
    state.file_staged(files[0])
    state.file_staged(files[1])
    assert state.position() == 50 + 50
    assert state.within_file(0.9) == 100  # the first file is staged: no double count
    state.file_staged(files[0])  # a failed batch is split and staged again
    assert state.position() == 100
    for file in files[:2]:
        state.file_done(file)
    assert state.position() == 100 + 101
    assert state.within_file(0.5) == 201 + 25  # the next file is not staged: DuckDB's share


class ScriptedConnection:
    """Answers `query_progress` from a script, as DuckDB does from another thread."""

    def __init__(self, answers: list[float]) -> None:
        self.answers = answers
        self.settings: list[str] = []
        self.drained = threading.Event()

    def execute(self, sql: str) -> None:
        self.settings.append(sql)

    def query_progress(self) -> float:
        if not self.answers:
            self.drained.set()
            raise duckdb.InvalidInputException("no statement running")
        return self.answers.pop(0)


def test_the_poller_reports_duckdb_progress_as_a_fraction() -> None:
    con = ScriptedConnection([-1.0, 25.0, 80.0])
    reported: list[float] = []
    poller = _StatementPoller(con, reported.append)  # type: ignore[arg-type]
    poller.start()
    assert con.drained.wait(5)
    poller.stop()
    assert reported == [0.25, 0.8]  # -1 (nothing running) and errors are not progress
    assert any("enable_progress_bar = true" in sql for sql in con.settings)


def test_duckdb_answers_progress_while_a_statement_runs() -> None:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = true")
    con.execute("SET enable_progress_bar_print = false")
    answers: list[Any] = []
    finished = threading.Event()

    def ask() -> None:
        while not finished.wait(0.01):
            answers.append(con.query_progress())

    asker = threading.Thread(target=ask)
    asker.start()
    con.execute("SELECT count(*) FROM range(300000000) t(i) WHERE i % 7 = 3").fetchall()
    finished.set()
    asker.join()
    assert answers and all(isinstance(a, float) and -1 <= a <= 100 for a in answers)


def test_a_big_directory_shows_its_troubled_files_and_sums_the_rest() -> None:
    from m2maudit.console import MAX_FILES_SHOWN, _rest_row, files_to_show
    from m2maudit.ingest_report import FileReport

    files = [FileReport(f"f{i}", 10, format="cloudtrail", read=3, loaded=3) for i in range(100)]
    files[70].rejected = 1
    files[90].error = "truncated or corrupt gzip data"
    shown, rest = files_to_show(files)
    assert shown == [files[70], files[90]] and len(rest) == 98  # problems are never summed
    row = _rest_row(rest)
    assert row[0] == "... 98 more files" and row[2] == str(3 * 98)
    clean = [FileReport(f"f{i}", 10, format="cloudtrail", read=3) for i in range(30)]
    assert files_to_show(clean) == ([], clean)  # nothing listed above: "all", not "more"
    assert _rest_row(clean, alone=True)[0] == "all 30 files"
    assert files_to_show(files[:MAX_FILES_SHOWN]) == (files[:MAX_FILES_SHOWN], [])
    for file in files:
        file.rejected = 1
    assert len(files_to_show(files)[0]) == MAX_FILES_SHOWN


def test_unreadable_files_beyond_the_first_are_counted_not_listed() -> None:
    import io

    from rich.console import Console

    from m2maudit.console import MAX_FILES_SHOWN, print_problems
    from m2maudit.ingest_report import FileReport, IngestReport

    report = IngestReport([FileReport(f"bad{i}.gz", 1, error="truncated") for i in range(40)])
    out = io.StringIO()
    print_problems(Console(file=out, width=200), report, [])
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("unreadable: ") for line in lines) == MAX_FILES_SHOWN
    assert lines[-1].startswith(f"... and {40 - MAX_FILES_SHOWN} more unreadable files")


def test_the_ingest_table_in_a_log_has_no_trailing_spaces() -> None:
    import io

    from rich.console import Console

    from m2maudit.console import print_ingest_summary
    from m2maudit.ingest_report import FileReport, IngestReport

    report = IngestReport([FileReport("a.jsonl", 10, format="generic-log", loaded=3)])
    out = io.StringIO()
    print_ingest_summary(Console(file=out, width=160), report, [])
    lines = out.getvalue().splitlines()
    assert lines[0] == "Ingest" and any("a.jsonl" in line for line in lines)
    assert all(line == line.rstrip() for line in lines)


def test_the_bar_never_moves_back() -> None:
    """DuckDB's progress may show most of a small file before it is staged into a batch,
    which counts only half of it: the bar stays where it was."""
    first, second = input_file(1000), input_file(1001)
    state = _ProgressState(files=[first, second])
    assert state.within_file(0.9) == 450
    assert state.within_file(0.9 - NEXT_STATEMENT_DROP - 0.1) == 500 + 137
    assert state.within_file(0.9) == 725
    state.file_staged(first)
    assert state.position() == 725  # not 500
    state.file_staged(second)
    assert state.position() == 500 + 500
    state.file_done(first)
    state.file_done(second)
    assert state.position() == 2001


def test_a_log_gets_a_wide_summary_unless_it_says_its_width(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CI log is not a terminal: 80 columns folded the file paths of the ingest table."""
    from m2maudit.console import LOG_WIDTH, stderr_console

    monkeypatch.delenv("COLUMNS", raising=False)
    assert stderr_console().width == LOG_WIDTH
    monkeypatch.setenv("COLUMNS", "100")
    assert stderr_console().width == 100


def test_the_scan_bar_names_the_shared_views_then_each_rule(tmp_path: Path) -> None:
    """On millions of events the views and some rules take seconds each: the bar says which
    one runs, and how many of them are done."""
    import io

    from rich.console import Console

    from m2maudit.config import Config
    from m2maudit.console import scan_progress
    from m2maudit.ingest import ingest_paths
    from m2maudit.rules import load_rules
    from m2maudit.scan import RuleSelection, run_scan
    from m2maudit.store import Store
    from m2maudit.timeutil import parse_instant

    log = tmp_path / "a.jsonl"
    log.write_text('{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"}\n')
    store = Store.open()
    ingest_paths(store, [str(log)])
    rules = load_rules([])
    heard: list[str] = []
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with scan_progress(console, len(rules) + 1) as on_step:

        def step(name: str) -> None:
            heard.append(name)
            on_step(name)
            console.file.flush()

        chosen = RuleSelection(rules, [])
        run_scan(store, Config(), parse_instant("2026-11-21T00:00:00Z"), rules=chosen, on_step=step)
    assert heard == ["shared views", *(rule.id for rule in rules)]
    shown = out.getvalue()
    assert "scan" in shown and f"/{len(rules) + 1}" in shown
    quiet = io.StringIO()
    with scan_progress(Console(file=quiet, force_terminal=False), 3) as on_step:
        on_step("shared views")
    assert quiet.getvalue() == ""  # not a terminal: nothing
