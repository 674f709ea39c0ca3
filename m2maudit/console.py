"""What a person sees on stderr: progress while ingesting, then a per-file summary.

Reports (stdout) are the reporters' job; this module only talks about the run itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from m2maudit.findings import Location
from m2maudit.ingest import ProgressHook, StagedHook
from m2maudit.ingest_report import FileReport, IngestReport
from m2maudit.reporters.serialize import clean_text
from m2maudit.sources.base import InputFile
from m2maudit.timeutil import iso_seconds
from m2maudit.wording import counted, noun_for

MAX_REASONS_SHOWN = 10


# Stderr that is not a terminal (a CI log, a file) and says no width of its own: wide enough
# that the per-file table does not fold file paths into pieces, as 80 columns did.
LOG_WIDTH = 160


def stderr_console() -> Console:
    """Progress and the ingest summary. No emoji codes: `file:100: reason` must not become
    `file💯 reason`."""
    console = Console(stderr=True, no_color="NO_COLOR" in os.environ, highlight=False, emoji=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = LOG_WIDTH
    return console


def print_trimmed(console: Console, renderable: Table) -> None:
    """A table as rich lays it out, without the spaces it pads each line with when the
    output is a log or a file, not a terminal (where they do no harm)."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


@contextmanager
def ingest_progress(
    console: Console, enabled: bool = True, con: duckdb.DuckDBPyConnection | None = None
) -> Iterator[tuple[ProgressHook, Callable[[list[InputFile]], None], StagedHook]]:
    """A progress bar over files and bytes; silent when stderr is not a terminal.

    With the store's connection, the bar also moves inside a file: a thread reads DuckDB's
    progress of the running statement (reading a big log is most of its load).
    """
    show = enabled and console.is_terminal
    progress = _bar(console, "ingest", DownloadColumn(), "files", show)
    task = progress.add_task("ingest", total=None, files="")
    state = _ProgressState()

    def on_start(files: list[InputFile]) -> None:
        state.files = files
        progress.update(task, total=sum(f.size for f in files), files=f"0/{len(files):,} files")

    def on_file(file: InputFile, _report: FileReport) -> None:
        state.file_done(file)
        progress.update(
            task, completed=state.position(), files=f"{state.done:,}/{len(state.files):,} files"
        )

    def on_staged(file: InputFile) -> None:
        state.file_staged(file)
        progress.update(task, completed=state.position())

    poller = (
        _StatementPoller(
            con, lambda fraction: progress.update(task, completed=state.within_file(fraction))
        )
        if show and con is not None
        else None
    )
    with progress:
        if poller:
            poller.start()
        try:
            yield on_file, on_start, on_staged
        finally:
            if poller:
                poller.stop()


@contextmanager
def scan_progress(
    console: Console, steps: int, enabled: bool = True
) -> Iterator[Callable[[str], None]]:
    """A bar over the scan's steps (the shared views, then each rule), naming the one
    running; silent when stderr is not a terminal. Yields the `on_step` for `run_scan`."""
    progress = _bar(console, "scan", MofNCompleteColumn(), "step", enabled and console.is_terminal)
    task = progress.add_task("scan", total=steps, step="")
    started = 0

    def on_step(name: str) -> None:
        nonlocal started
        progress.update(task, completed=started, step=escape(name))
        started += 1

    with progress:
        yield on_step


def _bar(console: Console, label: str, amount: ProgressColumn, field: str, show: bool) -> Progress:
    """`label  ━━━━━╸━━━  amount  <the task's field>  elapsed`, gone when done."""
    return Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        amount,
        TextColumn(f"{{task.fields[{field}]}}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show,
    )


# A small file read into a batch counts for this share of its bytes; mapping and committing
# the batch, all its files at once, earns the rest.
STAGED_SHARE = 0.5


@dataclass
class _ProgressState:
    files: list[InputFile] = field(default_factory=list)
    done: int = 0
    bytes_done: int = 0
    staged: dict[InputFile, int] = field(default_factory=dict)  # batched files not done yet
    staged_bytes: int = 0  # their sum, which the poller thread reads
    shown: int = 0  # the furthest the bar went: it never moves back
    # Which of the current file's statements DuckDB is on (the poller thread's own).
    statement_of: int = -1  # the index of the file they belong to
    statement: int = 0
    last_fraction: float = 0.0

    def file_done(self, file: InputFile) -> None:
        self.done += 1
        self.bytes_done += file.size
        self.staged_bytes -= self.staged.pop(file, 0)

    def file_staged(self, file: InputFile) -> None:
        """A file read into a batch; a batch split and staged again counts it once."""
        if file not in self.staged:
            self.staged[file] = int(file.size * STAGED_SHARE)
            self.staged_bytes += self.staged[file]

    def position(self) -> int:
        return self._forward(self.bytes_done + self.staged_bytes)

    def _forward(self, value: int) -> int:
        """The bar never moves back: DuckDB moves on to a statement with less progress, and
        a staged file's share may be below what DuckDB's progress showed of it before."""
        self.shown = max(self.shown, value)
        return self.shown

    def within_file(self, fraction: float) -> int:
        """Called from the poller thread while ingest moves on: read each field once.
        A file in a batch already counts by its staging, not by DuckDB's progress.

        A big file is loaded by a few long statements (read it, then map and insert its
        records), each with its own progress from 0 to 1. The first moves the bar over the
        first half of the file, the next over half the rest, and so on: the bar keeps
        moving through the load instead of waiting at the end of the read.
        """
        done, files, position = self.done, self.files, self.bytes_done + self.staged_bytes
        if done >= len(files) or files[done] in self.staged:
            return self._forward(position)
        if done != self.statement_of:
            self.statement_of, self.statement = done, 0
        elif fraction < self.last_fraction - NEXT_STATEMENT_DROP:
            self.statement += 1
        self.last_fraction = fraction
        share = 1 - 0.5**self.statement + 0.5 ** (self.statement + 1) * fraction
        return self._forward(position + int(files[done].size * min(share, 0.99)))


# DuckDB's progress falling by this much means it is on the file's next statement.
NEXT_STATEMENT_DROP = 0.25


class _StatementPoller:
    """Calls `report(fraction)` four times a second with DuckDB's progress of the statement
    running on `con` (another thread may ask; DuckDB answers without waiting for it)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, report: Callable[[float], None]) -> None:
        self._con = con
        self._report = report
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="m2maudit-progress", daemon=True)

    def start(self) -> None:
        self._con.execute("SET enable_progress_bar = true")
        self._con.execute("SET enable_progress_bar_print = false")
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(0.25):
            try:
                percent = self._con.query_progress()
                if percent >= 0:
                    self._report(percent / 100)
            except Exception:  # a progress bar must never fail the ingest
                continue


def print_ingest_summary(
    console: Console,
    report: IngestReport,
    errors: list[tuple[str, int, str]],
    quiet: bool = False,
    store_path: str | None = None,
) -> None:
    """The per-file table, then unreadable files, the first rejection reasons, and the totals.

    `store_path`: the `--db` file that keeps every rejection, if any."""
    if not quiet:
        table = Table(title="Ingest", title_justify="left", expand=False)
        for column in ("file", "format", "read", "loaded", "dup", "rejected", "window (UTC)"):
            table.add_column(
                column,
                justify="right" if column in ("read", "loaded", "dup", "rejected") else "left",
                overflow="fold",
            )
        shown, rest = files_to_show(report.files)
        for file in shown:
            table.add_row(*_file_row(file))
        if rest:
            table.add_row(*_rest_row(rest, alone=not shown))
        print_trimmed(console, table)
    # Quiet: the summary line and unreadable files only; the rejects are counted there.
    print_problems(
        console, report, [] if quiet else errors, hide_count=quiet, store_path=store_path
    )
    read = sum(f.read for f in report.files)
    duplicates = sum(f.duplicates for f in report.files)
    console.print(
        f"{counted(len(report.files), 'file')}: {read:,} {noun_for(read, 'record')} read, "
        f"{report.loaded:,} loaded, {duplicates:,} {noun_for(duplicates, 'duplicate')} skipped, "
        f"{report.rejected:,} rejected, {counted(len(report.failed_files), 'file')} unreadable"
        + (
            f", {len(report.skipped_files):,} with nothing to audit" if report.skipped_files else ""
        ),
        soft_wrap=True,
    )


MAX_FILES_SHOWN = 25


def files_to_show(files: list[FileReport]) -> tuple[list[FileReport], list[FileReport]]:
    """Every file, up to MAX_FILES_SHOWN; beyond that only files with a problem (up to as
    many), the rest summed in one row: a directory may hold thousands of files."""
    if len(files) <= MAX_FILES_SHOWN:
        return files, []
    troubled = [f for f in files if f.error or f.rejected][:MAX_FILES_SHOWN]
    shown = {id(f) for f in troubled}
    return troubled, [f for f in files if id(f) not in shown]


def _file_row(file: FileReport) -> tuple[str, ...]:
    window = ""
    if file.first_ts and file.last_ts:
        window = f"{iso_seconds(file.first_ts)} .. {iso_seconds(file.last_ts)}"
    if file.already_ingested:
        window = "already ingested"
    if file.skipped:
        window = f"skipped: {file.skipped}"
    return (
        escape(clean_text(file.source)),
        file.format or "-",
        f"{file.read:,}",
        f"{file.loaded:,}",
        f"{file.duplicates:,}",
        f"{file.rejected:,}",
        window,
    )


def _rest_row(rest: list[FileReport], alone: bool = False) -> tuple[str, ...]:
    """The files not listed, summed in one row; `alone` when no file is listed above it."""
    starts = [f.first_ts for f in rest if f.first_ts]
    ends = [f.last_ts for f in rest if f.last_ts]
    window = f"{iso_seconds(min(starts))} .. {iso_seconds(max(ends))}" if starts and ends else ""
    formats = sorted({f.format or "-" for f in rest})
    return (
        f"all {len(rest):,} files" if alone else f"... {len(rest):,} more files",
        ", ".join(formats),
        f"{sum(f.read for f in rest):,}",
        f"{sum(f.loaded for f in rest):,}",
        f"{sum(f.duplicates for f in rest):,}",
        f"{sum(f.rejected for f in rest):,}",
        window,
    )


def print_problems(
    console: Console,
    report: IngestReport,
    errors: list[tuple[str, int, str]],
    show_files: bool = True,
    hide_count: bool = False,
    store_path: str | None = None,
) -> None:
    """Unreadable files, then the first rejected records with file, line and reason, and
    where to find the rest."""
    if show_files:
        failed = report.failed_files
        for file in failed[:MAX_FILES_SHOWN]:
            console.print(
                f"[red]unreadable[/]: {escape(clean_text(f'{file.source}: {file.error}'))}",
                soft_wrap=True,
            )
        if len(failed) > MAX_FILES_SHOWN:
            in_store = f", and as line 0 in the ingest_errors table of {store_path}"
            console.print(
                f"... and {len(failed) - MAX_FILES_SHOWN} more unreadable files (all of them "
                f"are in the inputs of a json report{in_store if store_path else ''})",
                markup=False,
            )
    for file in report.files:
        for warning in file.warnings:
            console.print(
                f"[yellow]warning[/]: {escape(clean_text(f'{file.source}: {warning}'))}",
                soft_wrap=True,
            )
    record_files = report.record_files
    for source, line, reason in errors[:MAX_REASONS_SHOWN]:
        where = Location(source, line).text(record_files)
        console.print(
            f"[yellow]rejected[/]: {escape(clean_text(f'{where}: {reason}'))}",
            soft_wrap=True,
        )
    hidden = report.rejected - min(len(errors), MAX_REASONS_SHOWN)
    if hidden > 0 and not hide_count:
        where = (
            f"all of them are in the ingest_errors table of {store_path}"
            if store_path
            else "a --db store keeps all of them in its ingest_errors table"
        )
        console.print(f"... and {counted(hidden, 'more rejected record')} ({where})", markup=False)
