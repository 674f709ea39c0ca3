"""Reading a file into a uniform temporary table of JSON records, keeping each record's line.

Every layout ends up as `_records(source_line BIGINT, rec VARCHAR)` holding JSON objects, plus
`_staging_rejects(source_line, reason, leaked_secrets)` for lines that are not. Adapters then
map `_records` to canonical columns with SQL (see `map_records`). Reading lines through
DuckDB's CSV reader WITH ORDINALITY gives exact 1-based line numbers at full speed, and a
malformed line is a rejected row, not a failed file.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import duckdb
import yaml

from m2maudit.canonical import CALL_TEXT_COLUMNS
from m2maudit.errors import GZIP_BROKEN, BrokenGzip, InputError, first_line, yaml_problem
from m2maudit.secrets import CLEANED, LEAK_TEXT, SECRET_TEXTS, cleaning_sql, json_as_read_sql
from m2maudit.sources.base import MAX_RECORD_BYTES, InputFile, LoadContext, Sample
from m2maudit.sources.csv_quotes import (
    any_odd_line_sql,
    continuation_sql,
    judged_lines_sql,
    quote_states_sql,
    unclosed_after_blanking_sql,
    unclosed_sql,
)
from m2maudit.sources.jsonkeys import refuse_json_constant
from m2maudit.sources.lineindex import digest_and_index
from m2maudit.sources.mending import NOT_UTF8, not_json_reason_sql
from m2maudit.sources.sqlfrag import opens_object, with_secrets_sql
from m2maudit.sources.standins import (
    CUT_LINE_REASON,
    StandInFailed,
    with_lf_line_breaks,
    with_lines_blanked,
)
from m2maudit.yamlsafe import compose_yaml, node_value

_YAML_NODE_LIMIT = 100_000
_READER_LINE_LIMIT = 256 * 1024 * 1024
_MIN_READER_LIMIT = 1024 * 1024
_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
# A key (or keys, first match wins) whose array holds the records of an envelope document.
Unwrap = str | Sequence[str] | None


def sql_str(value: str) -> str:
    """A SQL string literal. Only for values m2maudit itself controls, such as file paths."""
    return "'" + value.replace("'", "''") + "'"


def reader_path(file: InputFile) -> str:
    """The path DuckDB's readers are given, and give back in their `filename` column: absolute
    and without `..`, as their globbing returns the paths it matches."""
    return os.path.abspath(file.path)


def sql_path(file: InputFile) -> str:
    """`reader_path` as a SQL literal that DuckDB's readers take literally: to them `*`, `?`
    and `[` are glob characters, so `x*.json` would also read `xa.json`. Each is escaped as a
    one-character class (`[*]`). Not in a path with a backslash, which DuckDB's globbing
    reads as an escape: such a path is found as it is."""
    path = reader_path(file)
    if "\\" not in path:
        path = re.sub(r"[\[*?]", lambda match: f"[{match.group()}]", path)
    return sql_str(path)


def _compression(file: InputFile) -> str:
    return "gzip" if file.compressed else "none"


# `_staging_rejects`: a rejected line, why, and the secrets it holds in clear (NULL when it
# was not read for them): a record the audit cannot use still puts its secret in the log.
REJECTS_COLUMNS = "source_line BIGINT, reason VARCHAR, leaked_secrets VARCHAR[]"


def temp_relations(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The temporary tables and views there are, by name: 'TABLE' or 'VIEW'.

    A lookup in DuckDB's catalog takes half a millisecond: ask once for every name needed,
    not once per name (a batch of thousands of small files drops a dozen names per file).
    """
    rows = con.execute(
        "SELECT view_name, 'VIEW' FROM duckdb_views() WHERE temporary "
        "UNION ALL SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE temporary"
    ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def create_empty_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """`_staging_rejects` with no rows, for the ways of staging that reject what has no text
    to read for secrets (CSV rows, YAML documents, the fast read). The line split fills it
    with each rejected line's secrets (`_split_lines`); every way gives the same columns."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _staging_rejects ({REJECTS_COLUMNS})")


def drop_relation(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop the staging tables or views of these names that exist, whichever kind each is
    (DuckDB's DROP names the kind, and a failed statement would abort the transaction)."""
    present = temp_relations(con)
    for name in names:
        if name in present:
            con.execute(f"DROP {present[name]} {name}")


def _run(ctx: LoadContext, sql: str, params: Sequence[Any] | None = None) -> None:
    try:
        ctx.con.execute(sql, list(params or []))
    except duckdb.Error as exc:
        raise read_error(ctx.file, exc) from None


# DuckDB's words for a JSON document it cannot parse. Its byte offset is not always from the
# start of the file (in a JSON array it counts within the record), so the line comes from
# Python's own parse of the file instead.
_MALFORMED_JSON = re.compile(r"Malformed JSON in file .*, at byte \d+ in record/value \d+: (.+)")
# A file up to this size is parsed again to find the line of its first error.
_REPARSE_BYTES = 64 << 20


class MendableDocument(InputError):
    """A JSON document with bytes that are not UTF-8 or a lone surrogate escape, which DuckDB
    refuses whole. The failed statement aborted the file's transaction: ingest rolls back and
    reads `mending.mended_copy` of the file instead (`ingest.ingest_file`)."""


def read_error(file: InputFile, exc: BaseException) -> InputError:
    """The file's error in our words, with the line of the first JSON error when known."""
    malformed = _MALFORMED_JSON.search(first_line(exc))
    if malformed:
        reason = malformed.group(1).strip().rstrip(".")
        if "invalid UTF-8" in reason or "surrogate" in reason:  # a mended copy reads it
            return MendableDocument(file.display, f"not valid JSON ({reason})")
        return InputError(file.display, f"not valid JSON ({reason})", json_error_line(file))
    reason = describe_read_error(exc)
    if reason == GZIP_BROKEN:
        return BrokenGzip(file.display)
    return InputError(file.display, reason)


def _read_again(file: InputFile) -> bytes | None:
    """A file DuckDB refused, uncompressed, to look at in Python; None when it is too big
    (`_REPARSE_BYTES`) or cannot be read."""
    try:
        with (gzip.open if file.compressed else open)(file.path, "rb") as handle:
            data: bytes = handle.read(_REPARSE_BYTES + 1)
    except (OSError, EOFError, zlib.error):
        return None
    return data if len(data) <= _REPARSE_BYTES else None


def json_error_line(file: InputFile) -> int | None:
    """The line of the first JSON error in a file DuckDB could not parse; None when the file
    is too big to read again, unreadable, or valid to Python (NaN is refused, as DuckDB does).
    """
    data = _read_again(file)
    if data is None:
        return None
    try:
        json.loads(data.decode("utf-8-sig"), parse_constant=refuse_json_constant)
    except json.JSONDecodeError as error:
        return error.lineno
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return None


def describe_read_error(exc: BaseException) -> str:
    """Turn a DuckDB reader error into one line a user can act on."""
    text = str(exc)
    lowered = text.lower()
    if "gzip" in lowered or "zlib" in lowered or "inflate" in lowered or "compress" in lowered:
        return GZIP_BROKEN
    if "utf-8" in lowered or "unicode" in lowered:
        return "not UTF-8 text"
    if "out of memory" in lowered:
        return "DuckDB ran out of memory reading it (raise --memory-limit)"
    size = re.search(r'"maximum_object_size" of (\d+) bytes exceeded', text)
    if size:
        return (
            f"a JSON document over the reader's limit of {size.group(1)} bytes "
            "(a larger --memory-limit raises it, up to 256 MiB)"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.split("Error: ", 1)[-1]
    return first[:300]


def reader_limit(con: duckdb.DuckDBPyConnection) -> int:
    """The longest line or JSON document the readers take: 256 MiB, less under a small
    `--memory-limit`.

    DuckDB's line reader holds two read buffers of twice this size while it reads (one it
    reserves before reading a byte), and with a memory limit that cannot hold them the read
    fails ("could not allocate block of size 150 MiB"): every file at all, or, when only the
    first fits, a file as long as the second buffer. An eighth of the limit leaves half of
    it for the rest of the load.
    """
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    match = re.fullmatch(r"([0-9.]+)\s*(\w+)", str(row[0]) if row else "")
    if not match or match.group(2) not in _UNITS:
        return _READER_LINE_LIMIT
    memory = float(match.group(1)) * _UNITS[match.group(2)]
    return int(max(_MIN_READER_LIMIT, min(_READER_LINE_LIMIT, memory // 8)))


def _line_reader(
    ctx: LoadContext, files: Sequence[InputFile] | None = None, limit: int | None = None
) -> str:
    """DuckDB's CSV reader as a line splitter: one VARCHAR column, no quoting, every line kept.

    `\\r\\n` as the newline also splits plain `\\n` lines, so LF, CRLF and mixed files number
    alike. Lines the reader cannot take (not UTF-8, over-long) are left out and recorded in
    `reject_errors`, instead of failing the whole file. `files` (of `ctx.file`'s compression)
    are read at once, each row with its `filename`.
    """
    path = sql_path(ctx.file)
    if files is not None:
        path = "[" + ", ".join(sql_path(f) for f in files) + "], filename = true"
    limit = limit or reader_limit(ctx.con)
    return (
        f"read_csv({path}, columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '', "
        f"escape = '', header = false, auto_detect = false, strict_mode = false, "
        f"new_line = '\\r\\n', null_padding = false, ignore_errors = true, "
        f"store_rejects = true, max_line_size = {limit}, "
        f"buffer_size = {2 * limit}, compression = '{_compression(ctx.file)}')"
    )


def _drop_reader_rejects(ctx: LoadContext) -> None:
    """DuckDB keeps a reader's rejected lines (raw text) in these temp tables: drop them."""
    ctx.con.execute("DROP TABLE IF EXISTS reject_errors")
    ctx.con.execute("DROP TABLE IF EXISTS reject_scans")


def _renumber(
    ctx: LoadContext, table: str, ordinal: str, skipped: str, result: str, position: str
) -> None:
    """`result` is `table` with `ordinal` (1-based among kept items) turned into `position`.

    A reader that leaves items out (rejected lines, a header, blank lines) numbers the rest
    1, 2, 3, ...; `skipped` (a query of one column `pos`) lists the positions left out, so
    the k-th kept item sits at k plus the number of skipped positions before it. An ASOF join
    on `pos - rank` finds that number without a sort of every row when nothing was skipped.
    """
    count = ctx.con.execute(f"SELECT count(*) FROM ({skipped})").fetchone()
    if not count or not count[0]:
        # Nothing skipped: rename in place rather than copy every line (gigabytes at scale).
        _run(ctx, f"DROP TABLE IF EXISTS {result}")
        _run(ctx, f"ALTER TABLE {table} RENAME COLUMN {ordinal} TO {position}")
        _run(ctx, f"ALTER TABLE {table} RENAME TO {result}")
        return
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE {result} AS
        WITH skipped AS (
            SELECT pos, row_number() OVER (ORDER BY pos) AS rank
            FROM (SELECT DISTINCT pos FROM ({skipped}) WHERE pos IS NOT NULL)
        ),
        gaps AS (SELECT pos - rank AS kept_before, max(rank) AS rank FROM skipped GROUP BY ALL)
        SELECT t.* EXCLUDE ({ordinal}), t.{ordinal} + coalesce(g.rank, 0) AS {position}
        FROM {table} t ASOF LEFT JOIN gaps g ON t.{ordinal} > g.kept_before
        """,
    )


def read_lines(ctx: LoadContext) -> None:
    """`_lines(source_line, line)`: every physical line, blank ones NULL, numbered exactly.

    Lines the reader could not take go to `_line_rejects(source_line, reason)` with their own
    number, and the lines after them keep theirs.

    DuckDB's line reader (2.0) can drop, without a word, the line that starts at a multiple
    of its line limit. A file whose text may be longer than that limit has its lines counted
    too; if the reader's rows fall short, it is read again with a slightly smaller limit,
    which moves those boundaries, and refused if that does not help.
    """
    limit = reader_limit(ctx.con)
    rows = _read_lines_once(ctx, limit)
    # Counted once, and only for a file that can reach a boundary.
    expected = _line_count(ctx.file) if text_size(ctx.file) > limit else None
    attempt = 1
    while expected is not None and rows != expected:
        if attempt == _LINE_READ_ATTEMPTS:
            raise InputError(
                ctx.file.display,
                f"DuckDB's line reader read {rows} of its {expected} lines (a known DuckDB "
                f"issue at {limit}-byte boundaries); a larger --memory-limit may read it",
            )
        rows = _read_lines_once(ctx, limit - attempt * _LIMIT_STEP)
        attempt += 1


_LINE_READ_ATTEMPTS = 3
_LIMIT_STEP = 64 * 1024


def _read_lines_once(ctx: LoadContext, limit: int) -> int:
    """Fill `_lines` (see `read_lines`) with this line limit; the rows read and rejected."""
    # Under a small --memory-limit the limit is lower than usual: say how to raise it.
    raise_it = " (a larger --memory-limit raises it)" if limit < _READER_LINE_LIMIT else ""
    _drop_reader_rejects(ctx)
    _run(
        ctx,
        f"CREATE OR REPLACE TEMP TABLE _kept_lines AS "
        f"SELECT ordinality AS kept, line FROM {_line_reader(ctx, limit=limit)} WITH ORDINALITY",
    )
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _line_rejects AS
        SELECT line::BIGINT AS source_line,
               CASE min(error_type::VARCHAR)
                   WHEN 'INVALID ENCODING' THEN '{NOT_UTF8}'
                   WHEN 'LINE SIZE OVER MAXIMUM'
                       THEN 'line is over the limit of {limit} bytes{raise_it}'
                   ELSE 'unreadable line: ' || lower(min(error_type::VARCHAR))
               END AS reason
        FROM reject_errors GROUP BY line
        """,
    )
    _drop_reader_rejects(ctx)
    row = ctx.con.execute(
        "SELECT (SELECT count(*) FROM _kept_lines) + (SELECT count(*) FROM _line_rejects)"
    ).fetchone()
    _renumber(
        ctx,
        "_kept_lines",
        "kept",
        "SELECT source_line AS pos FROM _line_rejects",
        "_lines",
        "source_line",
    )
    _run(ctx, "DROP TABLE IF EXISTS _kept_lines")
    return int(row[0]) if row else 0


def text_size(file: InputFile) -> int:
    """How long a file's text is: its size, or for gzip the size its trailer records (that of
    the last member, modulo 4 GiB), whichever is larger."""
    if not file.compressed:
        return file.size
    try:
        with open(file.path, "rb") as handle:
            handle.seek(-4, os.SEEK_END)
            recorded = int.from_bytes(handle.read(4), "little")
    except OSError:
        return file.size
    return max(recorded, file.size)


def _line_count(file: InputFile) -> int | None:
    """The lines of a file's text as the reader counts them; None if it cannot be read."""
    try:
        _, index = digest_and_index(
            file.path, file.compressed, hash_content=False, for_fast_read=False
        )
    except OSError:
        return None
    return index.lines if index is not None else None


def stage_json_lines(ctx: LoadContext, unwrap: Unwrap = None, validate: bool = True) -> None:
    """One JSON object per line (JSON lines / NDJSON), blank lines ignored.

    With `unwrap`, a line holding an object whose `unwrap` key is an array (one CloudTrail
    file per line, say) gives one record per element, all with that line's number.
    """
    read_lines(ctx)
    _split_lines(ctx, extra_rejects="_line_rejects", validate=validate)
    if unwrap_keys(unwrap):
        _unwrap_records(ctx, unwrap_keys(unwrap))


def unwrap_keys(unwrap: Unwrap) -> tuple[str, ...]:
    if not unwrap:
        return ()
    return (unwrap,) if isinstance(unwrap, str) else tuple(unwrap)


def _items_sql(doc: str, keys: Sequence[str]) -> str:
    """The records of one JSON document as JSON[]: the array under the first of `keys` it
    holds, else the document itself."""
    whens = []
    for key in keys:
        path = "'$.\"" + key.replace("'", "''").replace('"', '\\"') + "\"'"
        whens.append(
            f"WHEN json_type({doc}, {path}) = 'ARRAY' THEN json_extract({doc}, {path[:-1]}[*]')"
        )
    return f"CASE {' '.join(whens)} ELSE [{doc}::JSON] END"


def _split_lines(
    ctx: LoadContext, extra_rejects: str | None = None, validate: bool = True, by_file: bool = False
) -> None:
    """Sort `_lines` into JSON-object records and rejected lines with a reason.

    `validate=False` leaves the full JSON check to the adapter, which parses each record
    anyway (`try(json_extract(...))` is NULL for a broken one): parsing every line twice was
    the largest single cost of ingest. The cheap checks (size, blank, not an object) stay.
    `by_file`: `_lines` holds many files, told apart by `source_file`, which both results keep.
    """
    where = _position(by_file)
    valid = "NOT json_valid(line)" if validate else "false"
    reason = f"""CASE
        WHEN strlen(line) > {MAX_RECORD_BYTES} THEN 'record is ' || strlen(line)
            || ' bytes, over the limit of {MAX_RECORD_BYTES}'
        WHEN {valid} THEN {not_json_reason_sql("line")}
        WHEN NOT {opens_object("line")}
            -- `[1, 2]` is JSON but not an object; `not json at all` is not JSON (checked only
            -- for these few lines: validating every line cost a parse of each).
            THEN CASE WHEN json_valid(line) THEN 'not a JSON object' ELSE 'not valid JSON' END
        END"""
    # Anchored regexes stop at the first character that decides; trim() would copy each line.
    present = "line IS NOT NULL AND regexp_matches(line, '[^ \\t\\r\\n]')"
    if validate:
        _run(
            ctx,
            "CREATE OR REPLACE TEMP TABLE _classified AS "
            f"SELECT {where}, line, {reason} AS reason FROM _lines WHERE {present}",
        )
        source = "_classified"
    else:
        source = f"(SELECT {where}, line, {reason} AS reason FROM _lines WHERE {present})"
    # Without validation the checks are cheap, so `_records` is a view over `_lines`: no second
    # copy of every line (gigabytes at millions of events, and the cause of spilling to disk).
    drop_relation(ctx.con, "_records")
    _run(
        ctx,
        f"CREATE TEMP {'TABLE' if validate else 'VIEW'} _records AS "
        f"SELECT {where}, line AS rec FROM {source} WHERE reason IS NULL",
    )
    # A line rejected here is still read for secrets (a line of plain text, a list): it is
    # not audited, but it is in the log. A line over the record limit is not.
    extra = (
        f" UNION ALL SELECT {where}, reason, NULL::VARCHAR[] FROM {extra_rejects}"
        if extra_rejects
        else ""
    )
    rejected = (
        f"SELECT {where}, reason, CASE WHEN strlen(line) <= {MAX_RECORD_BYTES} THEN line END "
        f"AS line FROM {source} WHERE reason IS NOT NULL"
    )
    _run(
        ctx,
        "CREATE OR REPLACE TEMP TABLE _staging_rejects AS "
        f"SELECT {where}, reason, leaked_secrets FROM ({with_secrets_sql(rejected, 'line')})"
        f"{extra}",
    )
    _run(ctx, "DROP TABLE IF EXISTS _classified")
    if validate:
        _run(ctx, "DROP TABLE _lines")
    if extra_rejects:
        _run(ctx, f"DROP TABLE {extra_rejects}")


def _position(by_file: bool) -> str:
    """The columns that place a staged row: its line, and its file when many are staged."""
    return "source_file, source_line" if by_file else "source_line"


def _unwrap_records(ctx: LoadContext, keys: Sequence[str], by_file: bool = False) -> None:
    """Replace each record whose envelope key holds an array by that array's elements.

    A record without the key stays a record (the adapter's checks judge it), so a file mixing
    wrapped and plain records loses nothing; an element that is not an object is rejected.
    """
    where = _position(by_file)
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _unwrapped AS
        SELECT {where}, item::VARCHAR AS rec, json_type(item) = 'OBJECT' AS is_object
        FROM (SELECT {where}, unnest({_items_sql("rec", keys)}) AS item FROM _records)
        """,
    )
    _run(
        ctx,
        f"INSERT INTO _staging_rejects ({where}, reason) SELECT {where}, "
        "'not a JSON object' FROM _unwrapped WHERE NOT is_object",
    )
    drop_relation(ctx.con, "_records")
    _run(
        ctx,
        "CREATE OR REPLACE TEMP TABLE _records AS "
        f"SELECT {where}, rec FROM _unwrapped WHERE is_object",
    )
    _run(ctx, "DROP TABLE _unwrapped")


def stage_json_document(ctx: LoadContext, unwrap: Unwrap = None) -> None:
    """A JSON array of records, or whole JSON documents (pretty-printed, concatenated).

    `read_json_objects` hands over each record's own text: `read_json` would guess a STRUCT
    type, turn times into timestamps and render the record back as something that is not JSON.

    `unwrap` names a key whose array holds the records (CloudTrail's `Records`); a document
    without it is a record itself. Without line positions from the reader, `source_line` is
    the 1-based record number within the file.
    """
    _stage_documents(ctx, [ctx.file], unwrap, by_file=False)


def stage_json_documents(
    ctx: LoadContext, files: Sequence[InputFile], unwrap: Unwrap = None
) -> None:
    """`stage_json_document` for many small files of `ctx`'s layout and compression in one
    read: `_records` and `_staging_rejects` get a `source_file` column (the file's display
    name), and each file's records are numbered from 1 as if it were staged alone.

    Each statement costs about a millisecond however small its input, and staging a file
    takes eight: thousands of five-minute CloudTrail objects spent most of their time there.
    """
    _stage_documents(ctx, files, unwrap, by_file=True)


def _stage_documents(
    ctx: LoadContext, files: Sequence[InputFile], unwrap: Unwrap, by_file: bool
) -> None:
    ctx.positions.by_record = True
    paths = "[" + ", ".join(sql_path(f) for f in files) + "]"
    reader = (
        f"read_json_objects({paths}, format = '{_document_format(ctx.sample)}', filename = true, "
        f"maximum_object_size = {reader_limit(ctx.con)}, "
        f"compression = '{_compression(ctx.file)}') WITH ORDINALITY"
    )
    if by_file:
        reader = _named_by_file(reader, files)
    file_column = "source_file, " if by_file else ""
    per_file = "PARTITION BY source_file " if by_file else ""
    # The reader keeps the order of the files and of the documents within each.
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _documents AS
        SELECT {file_column}row_number() OVER ({per_file}ORDER BY ordinality) AS doc_number,
               json::VARCHAR AS doc
        FROM {reader}
        """,
    )
    keys = unwrap_keys(unwrap)
    if keys:
        _run(
            ctx,
            f"""
            CREATE OR REPLACE TEMP TABLE _lines AS
            SELECT {file_column}row_number() OVER (
                       {per_file}ORDER BY doc_number, item_number) AS source_line,
                   item AS line
            FROM (
                SELECT {file_column}doc_number, unnest(items) AS item,
                       unnest(generate_series(1, len(items))) AS item_number
                FROM (SELECT {file_column}doc_number, {_items_sql("doc", keys)}::VARCHAR[] AS items
                      FROM _documents)
            )
            """,
        )
    else:
        _run(
            ctx,
            "CREATE OR REPLACE TEMP TABLE _lines AS "
            f"SELECT {file_column}doc_number AS source_line, doc AS line FROM _documents",
        )
    if by_file:
        _check_every_row_named(ctx, "_documents")
    _run(ctx, "DROP TABLE _documents")
    _split_lines(ctx, by_file=by_file)


def _named_by_file(reader: str, files: Sequence[InputFile]) -> str:
    """A multi-file read whose rows also say their file's display name, as `source_file`."""
    names = ", ".join(f"({sql_str(reader_path(f))}, {sql_str(f.display)})" for f in files)
    return f"{reader} r LEFT JOIN (VALUES {names}) f(path, source_file) ON f.path = r.filename"


def _check_every_row_named(ctx: LoadContext, table: str) -> None:
    """A file that came back under another name than it was read by (a filesystem that
    ignores case, say) would lose its records: the batch is loaded again in smaller parts."""
    row = ctx.con.execute(f"SELECT count(*) FROM {table} WHERE source_file IS NULL").fetchone()
    if row != (0,):
        raise InputError(ctx.file.display, "the reader named a file differently; read alone")


def stage_json_lines_together(
    ctx: LoadContext,
    members: Sequence[tuple[InputFile, Sample]],
    unwrap: Unwrap = None,
    validate: bool = True,
) -> bool:
    """`stage_json_lines` for many small JSON-lines files of one compression in one read.

    Each file's n-th row is its n-th line unless the reader left a line out (not UTF-8,
    over the limit): then nothing is staged and False says to stage the files one by one,
    where each file's line numbers are mended around the lines left out.
    """
    files = [file for file, _ in members]
    if len({file.compressed for file in files}) != 1:
        return False
    limit = reader_limit(ctx.con)
    if any(text_size(file) > limit for file in files):
        return False  # such a file needs `read_lines`' check of its line count
    _drop_reader_rejects(ctx)
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT source_file,
               row_number() OVER (PARTITION BY source_file ORDER BY ordinality) AS source_line,
               line
        FROM {_named_by_file(f"{_line_reader(ctx, files, limit)} WITH ORDINALITY", files)}
        """,
    )
    left_out = ctx.con.execute("SELECT count(*) FROM reject_errors").fetchone()
    _drop_reader_rejects(ctx)
    if left_out != (0,):
        drop_relation(ctx.con, "_lines")
        return False
    _check_every_row_named(ctx, "_lines")
    _split_lines(ctx, validate=validate, by_file=True)
    if unwrap_keys(unwrap):
        _unwrap_records(ctx, unwrap_keys(unwrap), by_file=True)
    return True


def _document_format(sample: Sample) -> str:
    """How `read_json_objects` reads a file: as one JSON array, or as JSON documents."""
    return "array" if sample.layout == "json_array" else "unstructured"


def stage_documents_together(
    ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]], unwrap: Unwrap = None
) -> bool:
    """Stage `members` with one read (`stage_json_documents`) when they are all read alike
    (JSON arrays, or JSON documents) with one compression; False, staging nothing, when not."""
    readings = {(_document_format(sample), file.compressed) for file, sample in members}
    if len(readings) != 1:
        return False
    stage_json_documents(ctx, [file for file, _ in members], unwrap)
    return True


_CSV_LINE = "_m2maudit_line"
_CSV_REASONS = {
    "TOO MANY COLUMNS": "too many columns",
    "MISSING COLUMNS": "too few columns",
    "UNQUOTED VALUE": "bad quoting",
    "LINE SIZE OVER MAXIMUM": "line too long",
    "INVALID ENCODING": "not UTF-8",
    "INVALID UNICODE": "not UTF-8",
}


# A quote that never closes makes the rest of a CSV file one cell: DuckDB rejects that row and
# reads nothing after it. The file is read again with that line blank, and with the lines that
# blanking it would leave the same way: up to this many lines a file.
_UNCLOSED_QUOTES = 100
UNCLOSED_QUOTE_REASON = "malformed CSV row: a quote opened on this line is never closed"


def stage_csv(ctx: LoadContext) -> None:
    """A CSV file with a header row; all cells are read as text and become JSON records.

    Rows DuckDB rejects (wrong column count, bad quoting, not UTF-8) are kept as rejects. Every
    record keeps the physical line it starts on: DuckDB numbers good rows only among good
    rows, so the numbers step over the header, blank lines, rejected rows and the extra lines
    of quoted cells that span lines (see `csv_quotes`).

    A file whose lines end in both LF and CRLF is read from a stand-in that ends them all in
    LF (see `standins`): DuckDB's reader fails on it.
    """
    reading = ctx
    if _mixed_line_breaks(ctx.sample.text):
        with contextlib.suppress(StandInFailed):  # no room for it: read as it is
            reading = replace(ctx, file=with_lf_line_breaks(ctx.file))
    try:
        _stage_csv_past_unclosed_quotes(reading)
    finally:  # the stand-in may hold raw tokens
        if reading is not ctx:
            reading.file.path.unlink(missing_ok=True)


def _mixed_line_breaks(text: str) -> bool:
    return "\r\n" in text and re.search(r"(?<!\r)\n", text) is not None


def _stage_csv_past_unclosed_quotes(ctx: LoadContext) -> None:
    """`_stage_csv_once`, again and again while a row's quote never closes: that row is
    rejected, and the file read again from a stand-in with its line blank (see `standins`),
    so that the lines after it are not lost."""
    blanked: set[int] = set()
    reading = ctx
    try:
        while unclosed := _stage_csv_once(reading):
            if not _read_past(ctx, unclosed[0], len(blanked)):
                break
            # The first is checked against DuckDB's rejects; the rest are what the quote
            # model says blanking it leaves, which the next reading checks in turn.
            more = set(unclosed[: _UNCLOSED_QUOTES - len(blanked)])
            try:
                stand_in = with_lines_blanked(ctx.file, blanked | more)
            except StandInFailed:  # no room for it: the rest of the file stays one cell
                break
            blanked |= more
            if reading is not ctx:
                reading.file.path.unlink()
            reading = replace(ctx, file=stand_in)
            drop_relation(ctx.con, "_records", "_staging_rejects")
    finally:  # the stand-in may hold raw tokens
        if reading is not ctx:
            reading.file.path.unlink(missing_ok=True)
    if blanked:
        ctx.con.executemany(
            "INSERT INTO _staging_rejects (source_line, reason) VALUES (?, ?)",
            [(line, UNCLOSED_QUOTE_REASON) for line in sorted(blanked)],
        )


def _read_past(ctx: LoadContext, unclosed: int, blanked: int) -> bool:
    """Whether to read the file again with the line of a quote never closed blank: not when
    it is the header's (an error), nor in a gzip file cut short (the cut is inside that
    record's cell: it is the record cut), nor when DuckDB did not reject that record or
    `_UNCLOSED_QUOTES` lines were blanked already."""
    if unclosed <= _leading_blank_lines(ctx.sample.text) + 1:
        raise InputError(ctx.file.display, "the CSV header opens a quote it never closes", unclosed)
    if ctx.file.cut_after_line is not None:
        ctx.con.execute(
            "UPDATE _staging_rejects SET reason = ? WHERE source_line = ?",
            [CUT_LINE_REASON, unclosed],
        )
        return False
    rejected = ctx.con.execute(
        "SELECT count(*) FROM _staging_rejects WHERE source_line = ?", [unclosed]
    ).fetchone()
    return blanked < _UNCLOSED_QUOTES and bool(rejected and rejected[0])


def _stage_csv_once(ctx: LoadContext) -> list[int]:
    """`stage_csv` with the file as it is; the lines of quotes that never close (see
    `_unclosed_lines`)."""
    header = _csv_columns(ctx)
    leading = _leading_blank_lines(ctx.sample.text)
    # Cells are read into columns c1..cN and named by the header only in the JSON record, so
    # that no header (`ordinality`, say) can clash with the columns staging adds.
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(1, len(header) + 1)) + "}"
    record = ", ".join(f"{sql_str(name)}, c{i}" for i, name in enumerate(header, start=1))
    path = sql_path(ctx.file)
    limit = reader_limit(ctx.con)
    delimiter = sql_str(ctx.sample.csv_delimiter)
    _drop_reader_rejects(ctx)
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _csv AS
        SELECT * FROM read_csv({path}, columns = {columns}, header = true, auto_detect = false,
                               skip = {leading},
                               delim = {delimiter}, quote = '"', escape = '"', comment = '',
                               ignore_errors = true, store_rejects = true, null_padding = false,
                               max_line_size = {limit},
                               buffer_size = {2 * limit},
                               compression = '{_compression(ctx.file)}') WITH ORDINALITY
        """,
    )
    reasons = " ".join(f"WHEN {sql_str(k)} THEN {sql_str(v)}" for k, v in _CSV_REASONS.items())
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _csv_rejects AS
        SELECT line::BIGINT AS record_number,
               'malformed CSV row: ' || CASE min(error_type::VARCHAR) {reasons}
                   ELSE lower(min(error_type::VARCHAR)) END AS reason,
               NULL::VARCHAR[] AS leaked_secrets
        FROM reject_errors GROUP BY line
        """,
    )
    _drop_reader_rejects(ctx)
    unclosed = _csv_line_map(ctx)
    # Good rows: ordinal among good rows -> record number -> physical line.
    # Records before the header (blank lines DuckDB is told to skip) and the header itself.
    _renumber(
        ctx,
        "_csv",
        "ordinality",
        f"SELECT range AS pos FROM range(1, {leading + 2}) "
        "UNION ALL SELECT record_number FROM _blank_records "
        "UNION ALL SELECT record_number FROM _csv_rejects",
        "_csv_numbered",
        "record_number",
    )
    _renumber(
        ctx,
        "_csv_numbered",
        "record_number",
        "SELECT pos FROM _continuation",
        "_csv_lines",
        _CSV_LINE,
    )
    _run(
        ctx,
        "CREATE OR REPLACE TEMP TABLE _records AS "
        f"SELECT {_CSV_LINE} AS source_line, json_object({record})::VARCHAR AS rec "
        "FROM _csv_lines",
    )
    _renumber(
        ctx,
        "_csv_rejects",
        "record_number",
        "SELECT pos FROM _continuation",
        "_staging_rejects",
        "source_line",
    )
    for table in (
        "_csv",
        "_csv_numbered",
        "_csv_lines",
        "_csv_rejects",
        "_continuation",
        "_blank_records",
    ):
        _run(ctx, f"DROP TABLE IF EXISTS {table}")
    return unclosed


def _leading_blank_lines(text: str) -> int:
    """Blank lines before a CSV header: DuckDB would take the first of them as the header."""
    count = 0
    for line in text.split("\n"):
        if line.strip("\ufeff \t\r"):
            break
        count += 1
    return count


def _csv_columns(ctx: LoadContext) -> list[str]:
    """The header's column names, made unique and non-empty as DuckDB would name them."""
    names: list[str] = []
    for index, raw in enumerate(ctx.sample.csv_header):
        name = raw.strip() or f"column{index}"
        base, suffix = name, 1
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    if not names:
        raise InputError(ctx.file.display, "CSV without a header row")
    return names


def _unclosed_lines(ctx: LoadContext) -> list[int]:
    """The line of a quoted cell still open at the end of the file, then those the file would
    have one after another as each is blanked: one reading of the file serves them all
    (see `_stage_csv_past_unclosed_quotes`)."""
    found: list[int] = []
    while len(found) < _UNCLOSED_QUOTES:
        query = (
            unclosed_after_blanking_sql("_judged_lines", found)
            if found
            else unclosed_sql("_quote_states")
        )
        row = ctx.con.execute(query).fetchone()
        if not row or row[0] is None:
            break
        found.append(int(row[0]))
    return found


def _cells_may_span_lines(ctx: LoadContext) -> bool:
    """Whether a quoted cell may span lines: a line has an odd number of quotes, or DuckDB
    read fewer rows than the file has lines that are not blank (besides its header). The
    quote model judges every line with a quote, which costs 12 % of reading a CSV with every
    cell quoted: most files need neither (see `csv_quotes.any_odd_line_sql`)."""
    odd = ctx.con.execute(any_odd_line_sql("_lines")).fetchone()
    if odd and odd[0]:
        return True
    counts = ctx.con.execute(
        "SELECT (SELECT count(*) FROM _csv) + (SELECT count(*) FROM _csv_rejects), "
        "(SELECT count(line) FROM _lines) + (SELECT count(*) FROM _line_rejects) - 1"
    ).fetchone()
    return bool(counts and counts[0] != counts[1])


def _csv_line_map(ctx: LoadContext) -> list[int]:
    """`_continuation(pos)`: physical lines inside a quoted cell that began on an earlier line
    (see `csv_quotes`); `_blank_records(record_number)`: empty lines, which DuckDB skips but
    still counts. Returns the lines of quoted cells still open at the end of the file (see
    `_unclosed_lines`).
    """
    read_lines(ctx)
    judged = judged_lines_sql("_lines", ctx.sample.csv_delimiter, _cells_may_span_lines(ctx))
    _run(ctx, f"CREATE OR REPLACE TEMP TABLE _judged_lines AS {judged}")
    _run(ctx, f"CREATE OR REPLACE TEMP TABLE _quote_states AS {quote_states_sql('_judged_lines')}")
    last_line = (
        "SELECT greatest((SELECT max(source_line) FROM _lines), "
        "(SELECT max(source_line) FROM _line_rejects))"
    )
    continuation = continuation_sql("_quote_states", last_line)
    _run(ctx, f"CREATE OR REPLACE TEMP TABLE _continuation AS {continuation}")
    unclosed = _unclosed_lines(ctx)
    _run(
        ctx,
        """
        CREATE OR REPLACE TEMP TABLE _blank_physical AS
        SELECT source_line AS kept FROM _lines
        WHERE line IS NULL AND source_line NOT IN (SELECT pos FROM _continuation)
        """,
    )
    # A blank line's record number: its physical line less the continuation lines before it.
    _run(
        ctx,
        """
        CREATE OR REPLACE TEMP TABLE _blank_records AS
        SELECT b.kept - coalesce(c.before, 0) AS record_number
        FROM _blank_physical b ASOF LEFT JOIN (
            SELECT pos, row_number() OVER (ORDER BY pos) AS before FROM _continuation
        ) c ON b.kept > c.pos
        """,
    )
    for table in ("_blank_physical", "_lines", "_line_rejects", "_quote_states", "_judged_lines"):
        _run(ctx, f"DROP TABLE {table}")
    return unclosed


@dataclass(frozen=True)
class YamlRecord:
    line: int
    record: Any


# An inventory is a list of records, or one such list under one of these keys.
INVENTORY_LIST_KEYS = ("tokens", "credentials")


def inventory_rows(value: Any) -> Any:
    """The list an inventory document holds under `tokens` or `credentials`, else `value`."""
    if isinstance(value, dict):
        for key in INVENTORY_LIST_KEYS:
            if isinstance(value.get(key), list):
                return value[key]
    return value


def stage_yaml(ctx: LoadContext, list_keys: Sequence[str] = INVENTORY_LIST_KEYS) -> None:
    """A YAML list of records, or a mapping with one list under e.g. `tokens:`.

    YAML is for hand-kept inventories (small): it is parsed in Python, with each record's line
    taken from the YAML node marks.
    """

    try:
        text = ctx.file.path.read_text(encoding="utf-8")
        root = compose_yaml(text)
    except yaml.YAMLError as exc:
        raise InputError(ctx.file.display, *yaml_problem(exc)) from None
    except UnicodeDecodeError:
        raise InputError(ctx.file.display, "not UTF-8 text") from None
    items = _yaml_items(root, list_keys)
    if items is None:
        raise InputError(
            ctx.file.display,
            f"expected a YAML list of records (or one under {', '.join(list_keys)})",
        )
    records: list[tuple[int, str]] = []
    rejects: list[tuple[int, str]] = []
    for node in items:
        line = node.start_mark.line + 1
        if _yaml_size(node, _YAML_NODE_LIMIT) > _YAML_NODE_LIMIT:
            rejects.append(
                (
                    line,
                    f"record is too large (over {_YAML_NODE_LIMIT} values, "
                    "counting what YAML aliases repeat)",
                )
            )
            continue
        try:
            value = node_value(node) if isinstance(node, yaml.Node) else None
        except yaml.YAMLError as exc:  # a key given twice, say
            rejects.append((line, yaml_problem(exc)[0]))
            continue
        if isinstance(value, dict):
            records.append((line, json.dumps(value, default=str)))
        else:
            rejects.append((line, "not a mapping"))
    ctx.con.execute("CREATE OR REPLACE TEMP TABLE _records (source_line BIGINT, rec VARCHAR)")
    create_empty_rejects(ctx.con)
    if records:
        ctx.con.executemany("INSERT INTO _records VALUES (?, ?)", records)
    if rejects:
        ctx.con.executemany(
            "INSERT INTO _staging_rejects (source_line, reason) VALUES (?, ?)", rejects
        )


def _yaml_size(root: yaml.Node, limit: int) -> int:
    """How many values a node expands to, counting aliased nodes each time they are used.

    Stops counting past `limit`: a few lines of nested aliases ("billion laughs") would
    otherwise expand to gigabytes when the record is turned into JSON.
    """
    count, stack = 0, [root]
    while stack and count <= limit:
        node = stack.pop()
        count += 1
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return count


def _yaml_items(root: yaml.Node | None, list_keys: Sequence[str]) -> list[yaml.Node] | None:
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if key_node.value in list_keys and isinstance(value_node, yaml.SequenceNode):
                return list(value_node.value)
    return None


def stage(ctx: LoadContext, unwrap: Unwrap = None, validate: bool = True) -> None:
    """Stage a file by its sniffed layout."""
    layout = ctx.sample.layout
    if layout == "jsonl":
        stage_json_lines(ctx, unwrap, validate)
    elif layout in ("json_array", "json_object"):
        stage_json_document(ctx, unwrap)
    elif layout == "csv":
        stage_csv(ctx)
    elif layout == "yaml":
        stage_yaml(ctx)
    else:
        raise InputError(ctx.file.display, "cannot tell how records are laid out in this file")


class StagedLoad(ABC):
    """An adapter's `load` as `stage_file` then `map_staged`: the split that lets ingest stage
    many small files and map them together (see `BatchableAdapter`). `stage_file` stages by
    the sniffed layout unless the format needs more (an envelope to unwrap)."""

    # Whether staging checks each JSON line is valid JSON; False for a mapping whose own
    # parse finds broken JSON (the generic log's checks), which spares a parse of each line.
    validate_lines: ClassVar[bool] = True

    def load(self, ctx: LoadContext) -> None:
        self.stage_file(ctx)
        self.map_staged(ctx)

    def stage_file(self, ctx: LoadContext) -> None:
        stage(ctx, validate=self.validate_lines)

    def stage_files(self, ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]]) -> bool:
        """JSON lines, arrays and documents, as `stage` reads them, are staged together."""
        layouts = {sample.layout for _, sample in members}
        if layouts <= {"json_array", "json_object"}:
            return stage_documents_together(ctx, members)
        return layouts == {"jsonl"} and stage_json_lines_together(
            ctx, members, validate=self.validate_lines
        )

    @abstractmethod
    def map_staged(self, ctx: LoadContext) -> None:
        """Map `_records` into `_mapped` (and whatever the format needs after that)."""


# Text columns of `events` a secret in the record could have been copied into, and the ids
# and names among them, which keep grouping as `secret:<fingerprint>` (see
# `secrets.secret_safe_id_sql`): two principals that are different secrets stay two, as the
# claims of a token that name someone do.
STORED_EVENT_TEXT = CALL_TEXT_COLUMNS
# `issued_credential_id` is staged only, for `issued_credentials` (see `lifetimes`).
STORED_EVENT_IDS = (
    "principal",
    "principal_id",
    "client_id",
    "on_behalf_of",
    "credential_id",
    "issued_credential_id",
)
STORED_EVENT_LISTS = ("act_chain", "scopes_used", "scopes_granted")
# The other text columns hold only what m2maudit writes: fixed words, fingerprints, names.
NOT_FROM_THE_RECORD = (
    "source_format",
    "principal_type",
    "credential_type",
    "token_fp",
    "outcome",
    "leaked_secret",
    "leaked_secret_fp",
    "leaked_secrets",
    "source_file",
)


def _without_secrets(query: str, columns: dict[str, str]) -> str:
    """`query` with the secret cut out of the stored text of a record that holds one."""
    texts = [name for name in STORED_EVENT_TEXT if name in columns]
    ids = [name for name in STORED_EVENT_IDS if name in columns]
    lists = [name for name in STORED_EVENT_LISTS if name in columns]
    if not (texts or ids or lists):
        return query
    found = SECRET_TEXTS if SECRET_TEXTS in columns else None
    cleaned, picks = cleaning_sql(texts, ids, lists, found)
    replaced = ", ".join(
        f"CASE WHEN leaked_secret IS NULL THEN {name} ELSE {pick} END AS {name}"
        for name, pick in picks.items()
    )
    dropped = ", ".join([CLEANED, *([SECRET_TEXTS] if found else [])])
    return (
        f"SELECT * EXCLUDE ({dropped}) REPLACE ({replaced}) FROM "
        f"(SELECT *, CASE WHEN leaked_secret IS NOT NULL THEN {cleaned} END AS {CLEANED} "
        f"FROM ({query}))"
    )


def _as_layers(prelude: dict[str, str] | Sequence[dict[str, str]] | None) -> list[dict[str, str]]:
    """A prelude as a list of layers: one dict is one layer."""
    return [prelude] if isinstance(prelude, dict) else list(prelude or [])


def mapping_layers(
    source: str,
    record_key: str | None,
    prelude: dict[str, str] | Sequence[dict[str, str]] | None,
) -> list[str]:
    """The subqueries `map_records` nests, innermost first: the source with its record key
    (None: a prelude layer names `record_key`), then each prelude layer over the one before.
    Apart so that `benchmarks/ablate_mapping.py` can time the real layers one by one.
    """
    layers = _as_layers(prelude)
    # The de-duplication key: DuckDB's 64-bit hash of the record text, ten times cheaper than
    # md5 here. It is only compared within one store, written by one DuckDB version.
    key = f", {record_key} AS record_key" if record_key is not None else ""
    nested = [f"(SELECT *{key} FROM ({source}))"]
    for layer in layers:
        pre = "".join(f", {expr} AS {name}" for name, expr in layer.items())
        nested.append(f"(SELECT *{pre} FROM {nested[-1]})")
    return nested


def map_records(
    ctx: LoadContext,
    columns: dict[str, str],
    checks: Sequence[tuple[str, str]],
    prelude: dict[str, str] | Sequence[dict[str, str]] | None = None,
    source: str | None = None,
    record_key: str | None = "hash(rec)",
    materialize: bool = True,
    leak_scope: str | None = None,
) -> None:
    """Map `_records` to canonical columns in `_mapped`, with a reject reason per row.

    `prelude` columns are computed first from `rec` (e.g. one `json_extract` of many paths, so
    each record is parsed once); `columns` may use them and each other (DuckDB resolves
    earlier aliases); `checks` are `(condition, reason)` SQL pairs, the first true one wins.
    A sequence of preludes is computed layer by layer, each in its own subquery: DuckDB
    expands an alias into its expression at every use, so names built from names built from
    one parsed record need layers to stay computed once.

    `source` replaces `_records` by a query with a `source_line` column (the fast JSON-lines
    read), and `record_key` is then the de-duplication key over its columns (None: a
    `prelude` layer computes it from the values it parsed). With
    `materialize=False`, `_mapped` is a view: cheaper when the source is already a table
    and the mapping is read about once (ingest inserts from it, then maps again only the
    lines left out; see `commit.commit_file`).

    Events whose record holds a secret (`leaked_secret`) have it cut out of every text
    column that is stored. `leak_scope`: the record's JSON text the leak check reads
    (`sqlfrag.leak_columns`), undone of JSON's escapes in a last layer (`LEAK_TEXT`).
    """
    batch = ", source_file" if ctx.batch_files else ""
    source = source or f"SELECT source_line{batch}, rec FROM _records"
    layers = _as_layers(prelude)
    if leak_scope is not None:  # the scope once, then its text undone of escapes once
        layers += [{"_leak_scope": leak_scope}, {LEAK_TEXT: json_as_read_sql("_leak_scope")}]
    inner = mapping_layers(source, record_key, layers)[-1]
    cols = ",\n".join(f"{expr} AS {name}" for name, expr in columns.items())
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {msg}" for cond, msg in checks) + " END"
    if not checks:
        reason = "NULL::VARCHAR"
    query = f"SELECT source_line{batch}, {cols}, {reason} AS reject_reason, record_key FROM {inner}"
    if "leaked_secret" in columns:
        query = _without_secrets(query, columns)
    drop_relation(ctx.con, "_mapped")
    _run(ctx, f"CREATE TEMP {'TABLE' if materialize else 'VIEW'} _mapped AS {query}")
    drop_relation(ctx.con, "_records", "_lines")
