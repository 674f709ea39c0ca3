"""The fast read of a big JSON-lines file: DuckDB's `read_json`, numbered by a line index.

The careful path (`staging.read_lines`) reads every line as text and parses it with
`json_extract`: exact, but about twice what DuckDB needs to read the same file as JSON. Here
`read_json` parses each line straight into the typed columns an adapter names, and the
file's `LineIndex` makes the result as exact as the careful path:

- `read_json` gives one row per non-blank line, in file order, and a row of NULLs for a line
  it cannot parse. When the row count equals the file's line count nothing was skipped, so
  the n-th row (by `rowid`, counted from the table's first) is line n. Otherwise (blank
  lines) the caller falls back.
- A row of NULLs is a broken line or an object without any of the named keys. Those lines,
  few in any real log, are read again through the index and judged in Python, so the reject
  reason says which: not UTF-8, too big, not valid JSON, not an object. A rejected line's
  text is kept beside its reason, for the leak check: a line cut in half still holds the
  secret written in it.
- Keys beyond the adapter's (`other_keys`) are found in the first lines on a connection of
  their own, so that they can be read too.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence

import duckdb

from m2maudit.sources.base import MAX_RECORD_BYTES, LoadContext
from m2maudit.sources.jsonkeys import (
    FIRST_LINES_READ,
    keys_of_whole_lines,
    refuse_json_constant,
)
from m2maudit.sources.lineindex import LineIndex
from m2maudit.sources.mending import LONE_SURROGATE, NOT_UTF8
from m2maudit.sources.staging import create_empty_rejects, drop_relation, sql_path, sql_str

RAW_TABLE = "_raw"
VERDICT_TABLE = "_line_verdicts"
LINE_OF = "_line_of"  # a macro: a `_raw` rowid to its line number
# Distinct bearer tokens of the accepted records, decoded by ingest (never stored raw).
STAGED_TOKENS = "_staged_tokens"
# Beyond this many all-NULL rows the lines are not fetched one by one; they are reported
# with a reason that covers both cases.
_MAX_LINES_JUDGED = 10_000
_UNJUDGED = "not valid JSON, or an object without any field this format reads"
_UTF8_BOM = b"\xef\xbb\xbf"


class FastReadFailed(Exception):
    """`read_json` failed (a line over its object size limit, say). The failed statement
    aborted the file's transaction, so ingest rolls back and loads the file again with
    `fast_read` off."""


def can_read_fast(ctx: LoadContext) -> bool:
    """JSON lines (gzipped or not), with a line index coming, not starting with a BOM."""
    if not ctx.fast_read or ctx.line_index is None or ctx.sample.layout != "jsonl":
        return False
    try:
        opener = gzip.open if ctx.file.compressed else open
        with opener(ctx.file.path, "rb") as handle:
            return not handle.read(3).startswith(_UTF8_BOM)
    except (OSError, EOFError, zlib.error):
        return False


def stage_json_columns(
    ctx: LoadContext, columns: dict[str, str], derived: dict[str, str] | None = None
) -> bool:
    """Fill `_raw(source_line, <key>...)` with one typed column per top-level key.

    `columns` maps key names to DuckDB types (VARCHAR turns a number or object into its
    text; JSON keeps it as JSON). Also fills `_line_verdicts(source_line, reason,
    line_text)` for the lines that gave a row of NULLs. Returns False, leaving nothing
    behind, when the file cannot be numbered exactly (blank lines) or `read_json` fails:
    the caller reads it the careful way. Raises `FastReadFailed` when a failed `read_json`
    aborted the transaction. `derived` adds columns computed from the keys while reading
    (name -> SQL), such as a hash to join on instead of a long value.
    """
    extra = "".join(f", {expr} AS {name}" for name, expr in (derived or {}).items())
    spec = "{" + ", ".join(f"{sql_str(k)}: {sql_str(t)}" for k, t in columns.items()) + "}"
    try:
        ctx.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {RAW_TABLE} AS SELECT *{extra} FROM read_json("
            f"{sql_path(ctx.file)}, format = 'newline_delimited', records = true, "
            f"ignore_errors = true, columns = {spec}, compression = "
            f"'{'gzip' if ctx.file.compressed else 'none'}', "
            # The index sends a file with a line that may be over the record limit to the
            # careful path, so this limit is never met; a larger one costs 15 % of the read
            # (DuckDB's buffers grow with it).
            f"maximum_object_size = {MAX_RECORD_BYTES})"
        )
        # Row ids count from an offset inside a transaction: line n is rowid - first + 1.
        rows = ctx.con.execute(
            f"SELECT count(*), coalesce(min(rowid), 0), max(rowid) FROM {RAW_TABLE}"
        ).fetchone()
    except duckdb.Error as exc:
        raise FastReadFailed(str(exc)) from None
    index = ctx.line_index() if ctx.line_index else None
    count, first, last = rows if rows else (-1, 0, 0)
    # Blank lines but at the end (skipped), a line over the record limit (the careful path
    # rejects it), or row ids not in one run: the row number is not the line number.
    if (
        index is None
        or count != index.lines - index.trailing_blank_lines
        or index.may_have_line_over(MAX_RECORD_BYTES)
        or (count and last - first + 1 != count)
    ):
        drop_relation(ctx.con, RAW_TABLE)
        return False
    ctx.con.execute(f"CREATE OR REPLACE TEMP MACRO {LINE_OF}(row_id) AS row_id - {int(first)} + 1")
    _judge_empty_rows(ctx, index, list(columns))
    # Staging's contract: every line is a row here, so no line was rejected while reading.
    create_empty_rejects(ctx.con)
    return True


def raw_source(columns: dict[str, str], derived: Sequence[str] = ()) -> str:
    """`_raw` with its line number and its columns renamed to `f_<alias>` (see the caller).

    `columns` maps aliases to key names, so a user's key can never collide with a name the
    mapping uses; `derived` columns keep their names.
    """
    renamed = ", ".join(
        [*(f"r.{quoted(key)} AS f_{alias}" for alias, key in columns.items()), *derived]
    )
    return (
        f"SELECT _line_of(r.rowid) AS source_line, {renamed}, x.reason AS line_verdict, "
        f"x.line_text FROM {RAW_TABLE} r "
        f"LEFT JOIN {VERDICT_TABLE} x ON x.source_line = _line_of(r.rowid)"
    )


def staged_lines_sql() -> str:
    """The line numbers of the fast read's records, one row each, read from `_raw` alone.

    `_mapped` (a view over `_raw`) has one row per `_raw` row, so what concerns only its
    lines (how many, which) is asked of `_raw`: through the view, each pass maps every
    record again or at least joins each to its token and its line's verdict.
    """
    return f"SELECT {LINE_OF}(rowid) AS source_line FROM {RAW_TABLE}"


def quoted(name: str) -> str:
    """A column name as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def other_keys(ctx: LoadContext, known: set[str], limit: int = 500) -> list[str] | None:
    """Top-level keys of the file's records beyond `known`, as DuckDB finds them in its first
    20 000 lines and, in a file that is not compressed, `sampled_keys` finds further on;
    None when they cannot be told apart from the known ones (names equal but for case,
    which DuckDB's columns do not distinguish) or there are over `limit`.

    Asked on a connection of its own: a failed detection must not abort the file's
    transaction on the store's connection.
    """
    compression = "gzip" if ctx.file.compressed else "none"
    try:
        with duckdb.connect() as con:
            rows = con.execute(
                "SELECT DISTINCT unnest(json_keys(json)) FROM ("
                f"SELECT json FROM read_json_objects({sql_path(ctx.file)}, "
                "format = 'newline_delimited', ignore_errors = true, "
                f"compression = '{compression}') LIMIT {FIRST_LINES_READ}"
                ") WHERE json_type(json) = 'OBJECT' ORDER BY 1"
            ).fetchall()
    except duckdb.Error:
        return None
    return _keys_beyond(known, {str(row[0]) for row in rows} | sampled_keys(ctx), limit)


def keys_found_later(ctx: LoadContext, read: set[str], limit: int) -> list[str] | None:
    """Keys beyond `read` that the line count saw in pieces of the whole file, gzipped too
    (`LineIndex.sampled_keys`): a read that named only `read` missed their values. None, as
    for `other_keys`, when they cannot be read fast."""
    index = ctx.line_index() if ctx.line_index else None
    return _keys_beyond(read, set(index.sampled_keys) if index else set(), limit)


def _keys_beyond(known: set[str], found: set[str], limit: int) -> list[str] | None:
    """The keys of `found` not in `known`, sorted; None when a name equals another but for
    case (DuckDB's columns do not tell them apart) or there are over `limit`."""
    lowered = {name.lower() for name in known | found}
    if len(lowered) < len(known) + len(found - known):
        return None
    extra = sorted(found - known)
    return extra if len(extra) <= limit else None


# Where the keys first seen after the first lines are looked for: a field a deploy added
# halfway through a day's log is in every later line, so it is in some of these pieces.
SAMPLED_PIECES = 32
SAMPLED_PIECE_BYTES = 128 * 1024


def sampled_keys(ctx: LoadContext) -> set[str]:
    """Top-level keys of the whole lines in `SAMPLED_PIECES` pieces spread over the file
    (its end included), read by seeking: a few MiB of any file. A gzipped file cannot be
    sought in, so it gives none."""
    if ctx.file.compressed:
        return set()
    keys: set[str] = set()
    try:
        size = ctx.file.path.stat().st_size
        starts = {
            max(0, size * piece // SAMPLED_PIECES - SAMPLED_PIECE_BYTES)
            for piece in range(1, SAMPLED_PIECES + 1)
        }
        with open(ctx.file.path, "rb") as handle:
            for start in sorted(starts):  # a small file is read once, from its start
                handle.seek(start)
                data = handle.read(SAMPLED_PIECE_BYTES)
                keys |= keys_of_whole_lines(data, start > 0, start + len(data) < size)
    except OSError:
        return set()
    return keys


def _judge_empty_rows(ctx: LoadContext, index: LineIndex, keys: list[str]) -> None:
    all_null = " AND ".join(f"{quoted(key)} IS NULL" for key in keys)
    numbers = [
        int(row[0])
        for row in ctx.con.execute(
            f"SELECT _line_of(rowid) FROM {RAW_TABLE} WHERE {all_null} ORDER BY 1 LIMIT ?",
            [_MAX_LINES_JUDGED + 1],
        ).fetchall()
    ]
    ctx.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {VERDICT_TABLE} "
        "(source_line BIGINT, reason VARCHAR, line_text VARCHAR)"
    )
    if len(numbers) > _MAX_LINES_JUDGED:
        ctx.con.execute(
            f"INSERT INTO {VERDICT_TABLE} "
            f"SELECT _line_of(rowid), ?, NULL FROM {RAW_TABLE} WHERE {all_null}",
            [_UNJUDGED],
        )
        return
    lines = index.read_lines(numbers)
    verdicts = [(n, judge_line(lines.get(n, b""))) for n in numbers]
    deep = [n for n, reason in verdicts if reason == TOO_DEEP_FOR_PYTHON]
    if deep:  # judged together: one DuckDB connection, not one a line
        texts = [lines[n].decode("utf-8") for n in deep]
        judged = dict(zip(deep, _judge_deep(texts), strict=True))
        verdicts = [(n, judged.get(n, reason)) for n, reason in verdicts]
    rejected = [
        (n, reason, lines.get(n, b"").decode("utf-8", "replace"))
        for n, reason in verdicts
        if reason is not None
    ]
    if rejected:
        ctx.con.executemany(f"INSERT INTO {VERDICT_TABLE} VALUES (?, ?, ?)", rejected)


# `judge_line`'s word for a line nested deeper than Python's parser goes (see `_judge_deep`).
TOO_DEEP_FOR_PYTHON = "nested too deeply for Python to judge"


def judge_line(line: bytes) -> str | None:
    """Why a line that read_json could not use is rejected, in the careful path's words and
    order; None for a valid JSON object (it just has none of the fields read, and the
    adapter's own checks say so); `TOO_DEEP_FOR_PYTHON` for DuckDB to judge."""
    if len(line) > MAX_RECORD_BYTES:
        return f"record is {len(line)} bytes, over the limit of {MAX_RECORD_BYTES}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_UTF8
    try:
        value = json.loads(text, parse_constant=refuse_json_constant)
    except ValueError:
        return "not valid JSON" if _opens_object(text) or not _lenient_json(text) else _NOT_OBJECT
    except RecursionError:
        return TOO_DEEP_FOR_PYTHON
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape: JSON to Python, not text to DuckDB
        return LONE_SURROGATE
    except RecursionError:
        return TOO_DEEP_FOR_PYTHON
    return None if isinstance(value, dict) else _NOT_OBJECT


def _judge_deep(texts: list[str]) -> list[str | None]:
    """`judge_line` for lines nested deeper than Python's parser goes: DuckDB, which reads
    the records (and the careful path's judge), takes any depth, so it judges them, on a
    connection of its own (a failure must not abort the file's transaction)."""
    with duckdb.connect() as con:
        row = con.execute(
            "SELECT list_transform($texts::VARCHAR[], lambda t: CASE "
            "WHEN NOT json_valid(t) THEN 'not valid JSON' "
            "WHEN json_type(t) <> 'OBJECT' THEN $not_object END)",
            {"texts": texts, "not_object": _NOT_OBJECT},
        ).fetchone()
    return list(row[0]) if row else [None] * len(texts)


_NOT_OBJECT = "not a JSON object"


def _opens_object(text: str) -> bool:
    return text.lstrip(" \t\r\n\ufeff").startswith("{")


def _lenient_json(text: str) -> bool:
    """Whether a line that is no object is JSON as DuckDB's `json_valid` (the careful path's
    judge) reads it: `[NaN]` is, for it, JSON that is not an object."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# What the fast read stages; ingest drops these (with `drop_line_macro`) once the file is
# committed, as the `_mapped` view reads them.
FAST_STAGING = (RAW_TABLE, VERDICT_TABLE, "_auth")


def drop_line_macro(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP MACRO IF EXISTS {LINE_OF}")
