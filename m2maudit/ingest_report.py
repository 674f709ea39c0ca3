"""What ingest says about each input file: the counts the summary, reports and `--strict` read.

Filled by `m2maudit.commit` as a file is committed; for a scan of a `--db` store given no new
files, read back from what the store recorded (`stored_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from m2maudit.sources.base import Kind
from m2maudit.store import Store


@dataclass
class FileReport:
    """What happened to one input file."""

    source: str
    size: int
    format: str | None = None
    kind: Kind | None = None
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    error: str | None = None
    already_ingested: bool = False
    skipped: str | None = None  # why a file with nothing to audit was passed over
    cut_short: bool = False  # a gzip file cut short: its whole lines were read (`standins`)
    # Unreadable, yet most likely a log: records no format claims (a wrong mapping), or a
    # gzip file cut short or corrupt. See `cli.no_event_read`.
    likely_log: bool = False
    # Its records' `source_line` is their position in the file, not a line (a JSON document).
    by_record: bool = False
    # What loaded but looks wrong (a mapped field no record had); `--strict` fails on it.
    warnings: list[str] = field(default_factory=list)

    @property
    def counts_as_log(self) -> bool:
        """A file of a log format, or most likely a log: if it is unreadable and no event
        loaded, the run audited no call (`cli.no_event_read`)."""
        return self.kind == "events" or self.likely_log


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def record_files(self) -> set[str]:
        """The files whose positions are records, not lines (see `Location.text`)."""
        return {f.source for f in self.files if f.by_record}

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.error]

    @property
    def skipped_files(self) -> list[FileReport]:
        return [f for f in self.files if f.skipped]

    @property
    def anything_read(self) -> bool:
        return any(f.loaded or f.duplicates or f.already_ingested for f in self.files)


# The rejected records of each file that `ingest_errors` still holds. A user who has dealt
# with a file's rejects deletes them there; a complete copy of a file cut short clears its cut.
HELD_REJECTS = (
    "SELECT source_file, count(*) AS held_rejects FROM ingest_errors "
    "WHERE source_line > 0 GROUP BY source_file"
)
# A row of `ingested_files` (f), joined to `HELD_REJECTS` (r): the rejects it counted that
# are still held, and the records it read but for the rejects no longer held.
STILL_REJECTED = "least(f.rejected, coalesce(r.held_rejects, 0))"
STILL_READ = f"f.records_read - f.rejected + {STILL_REJECTED}"
# Each file's own error (line 0 of `ingest_errors`), and whether the file counts as a log.
_FILE_ERRORS = (
    "SELECT source_file, min(source_format) AS source_format, min(reason) AS reason, "
    "bool_or(unreadable_log) AS log FROM ingest_errors WHERE source_line = 0 GROUP BY source_file"
)


def stored_report(store: Store) -> IngestReport:
    """What a store says it ingested before, as a report: for a scan of a `--db` store given
    no new files, so its inputs and `--strict` read as they did when the files came in.

    Files that could not be read at all are only in `ingest_errors` (as line 0), with whether
    they count as a log (`FileReport.counts_as_log`, NULL in a store older than that). An inventory
    read again says what the store holds from it, not what its last reading added (nothing,
    when the export had not changed). Rejects are counted as `ingest_errors` still holds
    them (see `STILL_REJECTED`).
    """
    rows = store.con.execute(
        f"""
        SELECT f.source_file, f.source_format, f.kind, {STILL_READ},
               CASE WHEN f.kind = 'inventory' THEN coalesce(c.held, 0) ELSE f.loaded END,
               CASE WHEN f.kind = 'inventory'
                    THEN greatest(f.records_read - f.rejected - coalesce(c.held, 0), 0)
                    ELSE f.duplicates END,
               {STILL_REJECTED}, f.first_ts, f.last_ts, e.reason, coalesce(e.log, false)
        FROM ingested_files f
        LEFT JOIN ({_FILE_ERRORS}) e USING (source_file)
        LEFT JOIN (SELECT source_file, count(*) AS held FROM credentials
                   GROUP BY source_file) c USING (source_file)
        LEFT JOIN ({HELD_REJECTS}) r USING (source_file)
        UNION ALL
        SELECT source_file, source_format, NULL, 0, 0, 0, 0, NULL, NULL, reason,
               coalesce(log, false)
        FROM ({_FILE_ERRORS})
        WHERE source_file NOT IN (SELECT source_file FROM ingested_files)
        ORDER BY 1
        """
    ).fetchall()
    report = IngestReport()
    for source, fmt, kind, read, loaded, duplicates, rejected, first, last, error, log in rows:
        report.files.append(
            FileReport(
                source=str(source),
                size=0,
                format=fmt,
                kind=kind,
                read=int(read),
                loaded=int(loaded),
                duplicates=int(duplicates),
                rejected=int(rejected),
                first_ts=first,
                last_ts=last,
                error=error,
                likely_log=bool(log),
            )
        )
    return report
