"""Output formats: the one registry `--format` chooses from.

    from m2maudit.reporters import get_reporter, ReportOptions
    reporter = get_reporter("sarif")              # AuditError for an unknown name
    text = reporter.render(result, ReportOptions.for_stream(None, fail_on="high"))

`ReportOptions.for_stream(sys.stdout, verbose=..., quiet=..., fail_on=...)` styles the table
for a terminal; `for_stream(None, ...)` gives the plain, 80-column text used for `--output`.
Write the returned text as is (`sys.stdout.write(text)` or `m2maudit.output_file.write_output`),
not through rich or `typer.echo`, so its bytes stay exactly as rendered. Every format is
deterministic: the same result and options give the same bytes.
"""

from __future__ import annotations

from m2maudit.errors import AuditError
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.csv_report import CsvReporter
from m2maudit.reporters.json_report import JsonReporter
from m2maudit.reporters.junit import JunitReporter
from m2maudit.reporters.markdown import MarkdownReporter
from m2maudit.reporters.sarif import SarifReporter
from m2maudit.reporters.table import TableReporter

DEFAULT_FORMAT = "table"

REPORTERS: dict[str, Reporter] = {
    reporter.name: reporter
    for reporter in (
        TableReporter(),
        JsonReporter(),
        CsvReporter(),
        SarifReporter(),
        JunitReporter(),
        MarkdownReporter(),
    )
}


def report_written_as(head: str) -> str | None:
    """The format of the m2maudit report whose text starts with `head`, else None.

    Why: a report written into the directory that a later scan reads is this tool's output,
    not an input. A CSV report has `principal` and `token_id` columns, so it was read as a
    token inventory, and the next scan's findings changed (a high one went missing).
    """
    text = head.removeprefix("\ufeff")  # a spreadsheet saved it again
    for reporter in REPORTERS.values():
        if reporter.signature.match(text):
            return reporter.name
    return None


def get_reporter(name: str, option: str = "--format") -> Reporter:
    """The reporter registered as `name`; an unknown name is one clear error line, naming the
    `option` that gave it."""
    try:
        return REPORTERS[name.lower()]
    except KeyError:
        raise AuditError(
            f"{option}: unknown format {name!r}; known formats: {', '.join(REPORTERS)}"
        ) from None


__all__ = [
    "DEFAULT_FORMAT",
    "REPORTERS",
    "ReportOptions",
    "Reporter",
    "get_reporter",
    "report_written_as",
]
