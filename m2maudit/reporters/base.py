"""The one interface every output format implements, and the options it is rendered with.

A reporter turns a finished `ScanResult` into text; it never writes files, prints, or decides
the exit code. That keeps every format testable as a pure function and lets the CLI write the
report only after the scan succeeded (`m2maudit.output_file.write_output`).

To add a format: subclass `Reporter` in its own module (with the `signature` its output
starts with), then register an instance in `m2maudit.reporters.REPORTERS`.
`tests/test_reporters.py` renders every registered format, and `tests/test_cli_scan.py`
checks that a scan passes over every format's report.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, TextIO

from m2maudit import __version__
from m2maudit.findings import ScanResult

DEFAULT_WIDTH = 80


@dataclass(frozen=True)
class ReportOptions:
    """How to render: detail level, terminal styling, and the context the CLI knows.

    `ansi` turns on terminal escape codes at all (only when writing to a terminal); `color`
    adds colours on top (off under `NO_COLOR`). `fail_on` is the `--fail-on` threshold, shown
    in summaries and used to count failing findings; it never changes which findings are
    reported. `verbose`, `quiet`, `ansi`, `color` and `width` only shape the terminal report:
    machine formats (json, csv, sarif, junit, markdown) are the same bytes whatever they are.
    """

    verbose: bool = False
    quiet: bool = False
    ansi: bool = False
    color: bool = False
    width: int = DEFAULT_WIDTH
    tool_version: str = __version__
    fail_on: str = "high"
    # Why `--strict` will end the run with exit 2 once the report is written (None: it
    # will not); a machine report says the run failed.
    strict_failure: str | None = None

    @classmethod
    def for_stream(
        cls,
        stream: TextIO | None,
        *,
        verbose: bool = False,
        quiet: bool = False,
        fail_on: str = "high",
        strict_failure: str | None = None,
    ) -> ReportOptions:
        """Options for a report written to `stream`; `None` means a file (`--output`).

        A terminal gets its own width and escape codes, coloured unless `NO_COLOR` is set to
        a non-empty value; a pipe or a file gets plain text 80 columns wide, so the bytes do
        not depend on who ran the command.
        """
        terminal = stream is not None and _isatty(stream)
        width = shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns if terminal else DEFAULT_WIDTH
        return cls(
            verbose=verbose,
            quiet=quiet,
            ansi=terminal,
            color=terminal and not os.environ.get("NO_COLOR"),
            width=max(40, width),
            fail_on=fail_on,
            strict_failure=strict_failure,
        )


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Reporter(ABC):
    """One output format: a name for `--format`, a file extension, a media type, `render`."""

    name: ClassVar[str]
    extension: ClassVar[str]
    media_type: ClassVar[str]
    description: ClassVar[str]
    # What the start of this format's output matches, and nothing else does: a report
    # written among the logs a later scan reads is passed over as this tool's own output
    # (see `m2maudit.reporters.report_written_as`).
    signature: ClassVar[re.Pattern[str]]

    @abstractmethod
    def render(self, result: ScanResult, options: ReportOptions) -> str:
        """The whole report as text, ending with a newline; deterministic for one input."""

    def warnings(self, result: ScanResult) -> list[str]:
        """What the person should know about this report before using it (stderr)."""
        return []
