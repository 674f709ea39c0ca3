"""Moving a file's mapped records (`_mapped`) into the store, one file or a batch at a time.

The accepted rows go to their table (unless already stored), the rejected ones to
`ingest_errors`, the accepted records' tokens are decoded, and the file's report gets its
counts and time window. For the fast JSON-lines read, `_mapped` is a view that maps every
record again at each pass over it, so its outcome is taken after the insert from the few
lines left out (see `_outcome_after_insert`).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from m2maudit.canonical import CREDENTIAL_COLUMNS, EVENT_COLUMNS
from m2maudit.ingest_report import FileReport
from m2maudit.sources.base import Kind, LoadContext
from m2maudit.sources.fast_jsonl import RAW_TABLE, STAGED_TOKENS, staged_lines_sql
from m2maudit.sources.staging import temp_relations
from m2maudit.sources.standins import CUT_LINE_REASON
from m2maudit.store import Store
from m2maudit.tokens import decode_staged_tokens


def target(kind: Kind) -> tuple[str, tuple[str, ...]]:
    """The store table a kind of record goes to, and its mapped columns."""
    if kind == "events":
        return "events", tuple(EVENT_COLUMNS)
    return "credentials", tuple(CREDENTIAL_COLUMNS)


def not_stored(store: Store, table: str, key: str) -> str:
    """SQL to AND onto a filter: the record is not in `table` yet (nothing, while it is empty)."""
    if not store.has_rows(table):
        return ""
    return f" AND {key} NOT IN (SELECT record_key FROM {table})"


_ACCEPTED = "reject_reason IS NULL"
_ACCEPTED_FPS = f"list(DISTINCT token_fp) FILTER ({_ACCEPTED} AND token_fp IS NOT NULL)"
# Beyond this many lines not inserted, the fast read's outcome is taken by one more full pass.
MAX_LINES_LEFT_OUT = 10_000


def commit_file(store: Store, ctx: LoadContext, kind: Kind, report: FileReport) -> None:
    """Move the accepted rows of `_mapped` into the store, the rejected ones into
    `ingest_errors`, and decode the accepted records' tokens.

    What is not inserted (counts, the time window, the rejects and the accepted tokens)
    goes to `_outcome`. When `_mapped` is a view (the fast JSON-lines read) each pass over it
    maps every record again, so the outcome is taken after the insert: from the rows just
    inserted, and from the few lines left out (rejected, or already stored), mapped again
    alone. See `_outcome_after_insert`.
    """
    table, columns = target(kind)
    con = store.con
    relations = temp_relations(con)
    staged_tokens = STAGED_TOKENS in relations
    # The fast read's mapping: a view over its staged table, one row a line.
    after_insert = (
        kind == "events" and relations.get("_mapped") == "VIEW" and RAW_TABLE in relations
    )
    last_rowid = _last_rowid(con, table)
    if not after_insert:
        _outcome_pass(con, kind, staged_tokens)
    fresh = _ACCEPTED + not_stored(store, table, "record_key")
    column_list = ", ".join(columns)
    report.loaded = _count(
        con.execute(
            f"""
        INSERT INTO {table} ({column_list}, source_format, source_file, source_line, record_key)
        SELECT {column_list}, ?, ?, source_line, record_key FROM {_rows_to_keep(kind)}
        WHERE {fresh}
        """,
            [ctx.format_name, ctx.file.display],
        )
    )
    if after_insert and not _outcome_after_insert(con, last_rowid, report.loaded):
        _outcome_pass(con, kind, staged_tokens)
    if kind == "inventory" and report.loaded:
        replace_older_credentials(store, last_rowid)
    row = con.execute("SELECT accepted, first_ts, last_ts FROM _outcome").fetchone()
    accepted_count, first_ts, last_ts = (int(row[0]), row[1], row[2]) if row else (0, None, None)
    if staged_tokens:  # only the accepted records' tokens
        con.execute(
            f"DELETE FROM {STAGED_TOKENS} "
            "WHERE token_fp NOT IN (SELECT unnest(fps) FROM _outcome WHERE fps IS NOT NULL)"
        )
    # The raw tokens are in _mapped (or _staged_tokens) only until it is dropped.
    decode_staged_tokens(con, ctx.config, STAGED_TOKENS if staged_tokens else "_mapped")
    if kind == "inventory":  # read again each time it is given: its rejects, once
        con.execute(
            "DELETE FROM ingest_errors WHERE source_file = ? AND source_line > 0",
            [ctx.file.display],
        )
    report.rejected = _count(
        con.execute(
            """
        INSERT INTO ingest_errors
            (source_file, source_line, source_format, reason, leaked_secrets, principal)
        SELECT ?, source_line, ?, reason, secrets, principal FROM (
            SELECT source_line, reason, leaked_secrets AS secrets, NULL AS principal
            FROM _staging_rejects
            UNION ALL
            SELECT r.line, r.reason, r.secrets, r.principal
            FROM (SELECT unnest(rejects) AS r FROM _outcome)
        )
        """,
            [ctx.file.display, ctx.format_name],
        )
    )
    _settle(store, report, accepted_count, (first_ts, last_ts))


def _rows_to_keep(kind: Kind) -> str:
    """The rows of `_mapped` to insert: all of them, but for an inventory (a snapshot) only
    the last line of an id listed more than once. Chosen by line number: the order in which
    DuckDB staged a CSV's rows is not the file's."""
    if kind != "inventory":
        return "_mapped"
    return (
        f"(SELECT * FROM _mapped WHERE {_ACCEPTED} "
        "QUALIFY row_number() OVER (PARTITION BY credential_id ORDER BY source_line DESC) = 1)"
    )


def replace_older_credentials(store: Store, last_rowid: int) -> None:
    """Drop the rows stored up to `last_rowid` of the ids the file just inserted.

    An inventory is a snapshot. Loading a newer one into a `--db` store (a key rotated, a
    token revoked) must replace what the older one said, not sit beside it: two rows for
    one id gave the rotation rules both dates, and each rule over the inventory two
    findings with one id. Rows a transaction adds come after every row before it.
    """
    store.con.execute(
        "DELETE FROM credentials WHERE rowid <= $last AND credential_id IN "
        "(SELECT credential_id FROM credentials WHERE rowid > $last)",
        {"last": last_rowid},
    )


def _outcome_pass(con: duckdb.DuckDBPyConnection, kind: Kind, staged_tokens: bool) -> None:
    """`_outcome(accepted, first_ts, last_ts, rejects, fps)` from one pass over `_mapped`."""
    first, last = _window(kind)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _outcome AS SELECT
            count(*) FILTER ({_ACCEPTED}) AS accepted, {first} AS first_ts, {last} AS last_ts,
            {_rejects(kind)} AS rejects,
            {_ACCEPTED_FPS if staged_tokens else "NULL"} AS fps
        FROM _mapped
        """
    )


def _rejects(kind: Kind) -> str:
    """SQL for the list of rejected records of `_mapped`: each one's line, why, and for
    events the secrets it holds and who it names (see `_reject_details`)."""
    fields = f"'line': source_line, 'reason': reject_reason, {_reject_details(kind)}"
    return f"list({{{fields}}} ORDER BY source_line) FILTER (reject_reason IS NOT NULL)"


def _reject_details(kind: Kind) -> str:
    """SQL (struct fields) for the secrets a mapped record holds in clear and who it names:
    a rejected record's go to `ingest_errors`, for the file holds them whatever else is
    wrong with the record, and M2M601 says who logged them. Only events are read for
    secrets."""
    if kind == "events":
        return "'secrets': leaked_secrets, 'principal': principal"
    return "'secrets': NULL::VARCHAR[], 'principal': NULL::VARCHAR"


def _window(kind: Kind) -> tuple[str, str]:
    """SQL for the first and last time of the accepted records; events only have times."""
    if kind != "events":
        return "NULL::TIMESTAMPTZ", "NULL::TIMESTAMPTZ"
    return f"min(ts) FILTER ({_ACCEPTED})", f"max(ts) FILTER ({_ACCEPTED})"


def _last_rowid(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT coalesce(max(rowid), -1) FROM {table}").fetchone()
    return int(row[0]) if row else -1


def _outcome_after_insert(con: duckdb.DuckDBPyConnection, last_rowid: int, inserted: int) -> bool:
    """`_outcome` for a file of events just inserted from the `_mapped` view, without a
    second full pass over the view; False when too many lines were left out for that.

    When every line went in (`inserted` of them), nothing is left to judge. Otherwise: rows
    added by this transaction come after every row before it, so the inserted rows are
    those past `last_rowid`. The lines of `_mapped` not among them are rejected or already
    stored: only those are mapped again, found by their line number, which DuckDB reads
    from the staging table's row id without mapping the other lines.
    """
    inserted_rows = f"SELECT ts, token_fp, source_line FROM events WHERE rowid > {last_rowid}"
    left_out = _lines_left_out(con, inserted_rows, inserted)
    if len(left_out) > MAX_LINES_LEFT_OUT:
        return False
    lines = ", ".join(str(line) for line in left_out) or "NULL"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _left_out AS SELECT source_line, reject_reason, ts, "
        f"token_fp, leaked_secrets, principal FROM _mapped WHERE source_line IN ({lines})"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _outcome AS
        WITH accepted AS (
            SELECT ts, token_fp FROM ({inserted_rows})
            UNION ALL SELECT ts, token_fp FROM _left_out WHERE reject_reason IS NULL
        )
        SELECT a.*, r.rejects FROM (
            SELECT count(*) AS accepted, min(ts) AS first_ts, max(ts) AS last_ts,
                   list(DISTINCT token_fp) FILTER (token_fp IS NOT NULL) AS fps
            FROM accepted
        ) a, (
            SELECT {_rejects("events")} AS rejects FROM _left_out
        ) r
        """
    )
    return True


def _lines_left_out(con: duckdb.DuckDBPyConnection, inserted_rows: str, inserted: int) -> list[int]:
    """Lines of `_mapped` not among `inserted_rows`, up to one more than can be judged; read
    from the staged table the view maps (`staged_lines_sql`), one row a line as the view."""
    lines = staged_lines_sql()
    row = con.execute(f"SELECT count(*) FROM ({lines})").fetchone()
    if row is not None and int(row[0]) == inserted:  # every line went in
        return []
    return [
        int(line)
        for (line,) in con.execute(
            f"SELECT source_line FROM ({lines}) ANTI JOIN "
            f"({inserted_rows}) USING (source_line) ORDER BY source_line LIMIT ?",
            [MAX_LINES_LEFT_OUT + 1],
        ).fetchall()
    ]


def _settle(
    store: Store,
    report: FileReport,
    accepted: int,
    window: tuple[datetime | None, datetime | None],
) -> None:
    """The counts that follow from loaded and rejected, and the error of a file without any
    record loaded."""
    report.duplicates = accepted - report.loaded
    report.read = accepted + report.rejected
    if report.kind == "events":
        report.first_ts, report.last_ts = window
    report.error = report.error or nothing_loaded(report.read, report.rejected)
    report.skipped = report.skipped or no_records(report.read, report.error)
    if report.error:
        record_file_error(store, report)


def nothing_loaded(read: int, rejected: int) -> str | None:
    """The error of a file none of whose records could be loaded, if so."""
    if read and read == rejected:
        return f"no record could be loaded ({rejected} rejected)"
    return None


def no_records(read: int, error: str | None) -> str | None:
    """Why a readable file of a known format holds nothing to audit: an export of a quiet
    hour (a CSV header alone, `[]`) is normal, not an unreadable file."""
    return "no records (an empty export)" if not read and not error else None


def record_file_error(store: Store, report: FileReport) -> None:
    """A file's own error, in `ingest_errors` as line 0 (the whole file); once, however
    often the same file fails the same way in a `--db` store. Whether the file counts as a
    log is set on the row an older store wrote without it, too."""
    values = {
        "source": report.source,
        "format": report.format,
        "error": report.error,
        "log": report.counts_as_log,
    }
    same = "source_file = $source AND source_line = 0 AND reason = $error"
    store.con.execute(
        f"UPDATE ingest_errors SET unreadable_log = $log WHERE {same} AND unreadable_log IS NULL",
        {key: values[key] for key in ("source", "error", "log")},
    )
    store.con.execute(
        "INSERT INTO ingest_errors (source_file, source_line, source_format, reason, "
        "unreadable_log) SELECT $source, 0, $format, $error, $log "
        f"WHERE NOT EXISTS (SELECT 1 FROM ingest_errors WHERE {same})",
        values,
    )


# The errors of a file that a later good read of it clears (see `clear_file_errors`): its
# file-level error, and the line where an earlier copy was cut short.
CLEARED_BY_A_GOOD_READ = f"(source_line = 0 OR reason = '{CUT_LINE_REASON}')"


def clear_file_errors(store: Store, sources: list[str]) -> None:
    """Forget the file-level error (line 0) of each file that was read fine this time, and
    the line where an earlier copy of it was cut short (see `standins`).

    A `--db` store keeps the error of a file that failed once: a gzip cut off in transfer
    and fetched again, or a CloudTrail digest file that an older version could not read.
    Without this, a scan of the store alone would call such a file unreadable (or cut) for
    ever, and `--strict` would fail on it. Ingest calls it after each group of files, so a
    run that is interrupted keeps what it cleared. Errors are kept by the file's name as
    given: the same relative name read from another directory counts as the same file.
    """
    if sources:
        store.con.execute(
            f"DELETE FROM ingest_errors WHERE {CLEARED_BY_A_GOOD_READ} "
            "AND source_file IN (SELECT unnest($sources::VARCHAR[]))",
            {"sources": sources},
        )


def commit_batch(
    store: Store, ctx: LoadContext, kind: Kind, reports: dict[str, FileReport]
) -> None:
    """`commit_file` for a batch of small files, whose `_mapped` says each row's file.

    The outcome is what loading the files one by one would give: a record already in an
    earlier file of the batch is a duplicate, a record repeated within one file is not.
    """
    table, columns = target(kind)
    con = store.con
    con.execute("CREATE OR REPLACE TEMP TABLE _batch_files (source_file VARCHAR, file_no INT)")
    con.executemany(
        "INSERT INTO _batch_files VALUES (?, ?)", [(name, i) for i, name in enumerate(reports)]
    )
    known = not_stored(store, table, "m.record_key")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fresh AS
        SELECT m.*, b.file_no FROM _mapped m JOIN _batch_files b USING (source_file)
        WHERE m.{_ACCEPTED}{known}
        QUALIFY min(b.file_no) OVER (PARTITION BY m.record_key) = b.file_no
        """
    )
    column_list = ", ".join(columns)
    con.execute(
        f"""
        INSERT INTO {table} ({column_list}, source_format, source_file, source_line, record_key)
        SELECT {column_list}, ?, source_file, source_line, record_key FROM _fresh
        """,
        [ctx.format_name],
    )
    decode_staged_tokens(con, ctx.config, "_mapped")
    con.execute(
        f"""
        INSERT INTO ingest_errors
            (source_file, source_line, source_format, reason, leaked_secrets, principal)
        SELECT source_file, source_line, ?, reason, r.secrets, r.principal FROM (
            SELECT source_file, source_line, reason,
                   {{'secrets': leaked_secrets, 'principal': NULL::VARCHAR}} AS r
            FROM _staging_rejects
            UNION ALL
            SELECT source_file, source_line, reject_reason, {{{_reject_details(kind)}}}
            FROM _mapped WHERE reject_reason IS NOT NULL
        )
        """,
        [ctx.format_name],
    )
    first, last = _window(kind)
    rows = con.execute(
        f"""
        SELECT b.source_file, coalesce(m.accepted, 0), coalesce(f.loaded, 0),
               coalesce(m.rejected, 0) + coalesce(r.rejected, 0), m.first_ts, m.last_ts
        FROM _batch_files b
        LEFT JOIN (SELECT source_file, count(*) FILTER ({_ACCEPTED}) AS accepted,
                          count(*) FILTER (NOT {_ACCEPTED}) AS rejected,
                          {first} AS first_ts, {last} AS last_ts
                   FROM _mapped GROUP BY source_file) m USING (source_file)
        LEFT JOIN (SELECT source_file, count(*) AS loaded FROM _fresh GROUP BY source_file) f
            USING (source_file)
        LEFT JOIN (SELECT source_file, count(*) AS rejected FROM _staging_rejects
                   GROUP BY source_file) r USING (source_file)
        """
    ).fetchall()
    for source, accepted_count, loaded, rejected, first_ts, last_ts in rows:
        report = reports[source]
        report.loaded, report.rejected = int(loaded), int(rejected)
        _settle(store, report, int(accepted_count), (first_ts, last_ts))


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0
