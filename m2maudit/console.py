"""What a person sees on stderr: progress while ingesting, then a per-file summary.

Reports (stdout) are the reporters' job; this module only talks about the run itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from m2maudit.ingest import FileReport, IngestReport, ProgressHook
from m2maudit.sources.base import InputFile
from m2maudit.timeutil import iso

MAX_REASONS_SHOWN = 10


def stderr_console() -> Console:
    return Console(stderr=True, no_color="NO_COLOR" in os.environ, highlight=False)


@contextmanager
def ingest_progress(
    console: Console, enabled: bool = True
) -> Iterator[tuple[ProgressHook, Callable[[list[InputFile]], None]]]:
    """A progress bar over files and bytes; silent when stderr is not a terminal."""
    show = enabled and console.is_terminal
    progress = Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[files]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show,
    )
    task = progress.add_task("ingest", total=None, files="")
    counter = {"done": 0, "total": 0}

    def on_start(files: list[InputFile]) -> None:
        counter["total"] = len(files)
        progress.update(task, total=sum(f.size for f in files), files=f"0/{len(files)} files")

    def on_file(file: InputFile, _report: FileReport) -> None:
        counter["done"] += 1
        progress.update(
            task, advance=file.size, files=f"{counter['done']}/{counter['total']} files"
        )

    with progress:
        yield on_file, on_start


def print_ingest_summary(
    console: Console, report: IngestReport, errors: list[tuple[str, int, str]], quiet: bool = False
) -> None:
    """The per-file table, then unreadable files, the first rejection reasons, and the totals."""
    if not quiet:
        table = Table(title="Ingest", title_justify="left", expand=False)
        for column in ("file", "format", "read", "loaded", "dup", "rejected", "window (UTC)"):
            table.add_column(
                column,
                justify="right" if column in ("read", "loaded", "dup", "rejected") else "left",
                overflow="fold",
            )
        for file in report.files:
            window = ""
            if file.first_ts and file.last_ts:
                window = f"{iso(file.first_ts)} .. {iso(file.last_ts)}"
            fmt = file.format or "-"
            if file.already_ingested:
                window = "already ingested"
            table.add_row(
                escape(file.source),
                fmt,
                str(file.read),
                str(file.loaded),
                str(file.duplicates),
                str(file.rejected),
                window,
            )
        console.print(table)
    print_problems(console, report, errors)
    files = len(report.files)
    console.print(
        f"{files} file{'' if files == 1 else 's'}: {sum(f.read for f in report.files)} records "
        f"read, {report.loaded} loaded, {sum(f.duplicates for f in report.files)} duplicates "
        f"skipped, {report.rejected} rejected, {len(report.failed_files)} files unreadable",
        soft_wrap=True,
    )


def print_problems(
    console: Console,
    report: IngestReport,
    errors: list[tuple[str, int, str]],
    show_files: bool = True,
) -> None:
    """Unreadable files, then the first rejected records with file, line and reason."""
    if show_files:
        for file in report.failed_files:
            console.print(
                f"[red]unreadable[/]: {escape(f'{file.source}: {file.error}')}", soft_wrap=True
            )
    for source, line, reason in errors[:MAX_REASONS_SHOWN]:
        console.print(
            f"[yellow]rejected[/]: {escape(f'{source}:{line}: {reason}')}", soft_wrap=True
        )
    hidden = report.rejected - min(len(errors), MAX_REASONS_SHOWN)
    if hidden > 0:
        console.print(
            f"... and {hidden} more rejected records (all of them are kept in the "
            "ingest_errors table of a --db store)",
            markup=False,
        )
