"""Reading a file into a uniform temporary table of JSON records, keeping each record's line.

Every layout ends up as `_records(source_line BIGINT, rec VARCHAR)` holding JSON objects, plus
`_staging_rejects(source_line, reason)` for lines that are not. Adapters then map `_records`
to canonical columns with SQL (see `map_records`). Reading lines through DuckDB's CSV reader
WITH ORDINALITY gives exact 1-based line numbers at full speed, and a malformed line is a
rejected row, not a failed file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import yaml

from m2maudit.errors import InputError
from m2maudit.sources.base import InputFile, LoadContext

MAX_RECORD_BYTES = 16 * 1024 * 1024
# A key (or keys, first match wins) whose array holds the records of an envelope document.
Unwrap = str | Sequence[str] | None
_READER_LINE_LIMIT = 256 * 1024 * 1024


def sql_str(value: str) -> str:
    """A SQL string literal. Only for values m2maudit itself controls, such as file paths."""
    return "'" + value.replace("'", "''") + "'"


def _compression(file: InputFile) -> str:
    return "gzip" if file.compressed else "none"


def _run(ctx: LoadContext, sql: str, params: Sequence[Any] | None = None) -> None:
    try:
        ctx.con.execute(sql, list(params or []))
    except duckdb.Error as exc:
        raise InputError(ctx.file.display, describe_read_error(exc)) from None


def describe_read_error(exc: BaseException) -> str:
    """Turn a DuckDB reader error into one line a user can act on."""
    text = str(exc)
    lowered = text.lower()
    if "gzip" in lowered or "zlib" in lowered or "inflate" in lowered or "compress" in lowered:
        return "truncated or corrupt gzip data"
    if "utf-8" in lowered or "unicode" in lowered:
        return "not UTF-8 text"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = first.split("Error: ", 1)[-1]
    return first[:300]


def stage_json_lines(ctx: LoadContext, unwrap: Unwrap = None) -> None:
    """One JSON object per line (JSON lines / NDJSON), blank lines ignored.

    With `unwrap`, a line holding an envelope (e.g. `{"Records": [...]}`) becomes its records,
    each keeping the line number of the envelope.
    """
    path = sql_str(str(ctx.file.path))
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT ordinality AS source_line, line
        FROM read_csv({path}, columns = {{'line': 'VARCHAR'}}, delim = '\x01', quote = '',
                      escape = '', header = false, auto_detect = false, strict_mode = false,
                      max_line_size = {_READER_LINE_LIMIT},
                      buffer_size = {2 * _READER_LINE_LIMIT},
                      compression = '{_compression(ctx.file)}') WITH ORDINALITY
        """,
    )
    _split_lines(ctx)
    keys = unwrap_keys(unwrap)
    if keys:
        _unwrap_records(ctx, keys)


def unwrap_keys(unwrap: Unwrap) -> tuple[str, ...]:
    if not unwrap:
        return ()
    return (unwrap,) if isinstance(unwrap, str) else tuple(unwrap)


def _items_sql(doc: str, keys: Sequence[str]) -> str:
    """The records of one JSON document: the array under the first of `keys` it holds, else
    the document itself (so one pretty-printed event in a `Records`-style format still loads)."""
    whens = []
    for key in keys:
        name = key.replace("'", "''").replace('"', '\\"')
        whens.append(
            f"WHEN contains({doc}, '\"{name}\"') AND json_type({doc}, '$.\"{name}\"') = 'ARRAY' "
            f"THEN json_extract({doc}, '$.\"{name}\"[*]')"
        )
    return f"CASE {' '.join(whens)} ELSE [{doc}::JSON] END"


def _unwrap_records(ctx: LoadContext, keys: Sequence[str]) -> None:
    """Replace each envelope in `_records` by the records it holds; rejects are added to."""
    quoted_keys = [sql_str('"' + key + '"') for key in keys]
    mentions = " OR ".join(f"contains(rec, {key})" for key in quoted_keys)
    found = ctx.con.execute(f"SELECT count(*) FROM _records WHERE {mentions}").fetchone()
    if not found or not found[0]:
        return  # no envelope anywhere: spare the second pass over every record
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT source_line, unnest(items)::VARCHAR AS line
        FROM (SELECT source_line, {_items_sql('rec', keys)} AS items FROM _records)
        """,
    )
    _run(ctx, "CREATE OR REPLACE TEMP TABLE _outer_rejects AS SELECT * FROM _staging_rejects")
    _split_lines(ctx)
    _run(ctx, "INSERT INTO _staging_rejects SELECT * FROM _outer_rejects")
    _run(ctx, "DROP TABLE _outer_rejects")


def _split_lines(ctx: LoadContext) -> None:
    """Sort `_lines` into JSON-object records and rejected lines with a reason."""
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _classified AS
        SELECT source_line, line,
            CASE
                WHEN strlen(line) > {MAX_RECORD_BYTES}
                    THEN 'record is ' || strlen(line) || ' bytes, over the limit of {MAX_RECORD_BYTES}'
                WHEN NOT json_valid(line) THEN 'not valid JSON'
                WHEN left(ltrim(line), 1) <> '{{' THEN 'not a JSON object'
            END AS reason
        FROM _lines
        WHERE line IS NOT NULL AND trim(line) <> ''
        """,
    )
    _run(ctx, "CREATE OR REPLACE TEMP TABLE _records AS "
              "SELECT source_line, line AS rec FROM _classified WHERE reason IS NULL")
    _run(ctx, "CREATE OR REPLACE TEMP TABLE _staging_rejects AS "
              "SELECT source_line, reason FROM _classified WHERE reason IS NOT NULL")
    _run(ctx, "DROP TABLE _classified")
    _run(ctx, "DROP TABLE _lines")


def stage_json_document(ctx: LoadContext, unwrap: Unwrap = None) -> None:
    """A JSON array of records, or whole JSON documents (pretty-printed, concatenated).

    `unwrap` names a key (or keys, first match wins) whose array holds the records
    (CloudTrail's `Records`); a document without it is one record. Without line positions
    from the reader, `source_line` is the 1-based record number within the file.
    """
    path = sql_str(str(ctx.file.path))
    fmt = "array" if ctx.sample.layout == "json_array" else "unstructured"
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _documents AS
        SELECT ordinality AS doc_number, json::VARCHAR AS doc
        FROM read_json({path}, format = '{fmt}', records = false, columns = {{'json': 'JSON'}},
                       maximum_object_size = {_READER_LINE_LIMIT},
                       compression = '{_compression(ctx.file)}') WITH ORDINALITY
        """,
    )
    keys = unwrap_keys(unwrap)
    if keys:
        _run(
            ctx,
            f"""
            CREATE OR REPLACE TEMP TABLE _lines AS
            SELECT row_number() OVER (ORDER BY doc_number, item_number) AS source_line,
                   item::VARCHAR AS line
            FROM (
                SELECT doc_number, unnest(items) AS item,
                       unnest(generate_series(1, len(items))) AS item_number
                FROM (SELECT doc_number, coalesce({_items_sql('doc', keys)}, []::JSON[]) AS items
                      FROM _documents)
            )
            """,
        )
    else:
        _run(
            ctx,
            "CREATE OR REPLACE TEMP TABLE _lines AS "
            "SELECT doc_number AS source_line, doc AS line FROM _documents",
        )
    _run(ctx, "DROP TABLE _documents")
    _split_lines(ctx)


def stage_csv(ctx: LoadContext) -> None:
    """A CSV file with a header row; all cells are read as text and become JSON records.

    Rows DuckDB rejects (wrong column count, bad quoting) are kept as rejects with their line.
    Lines are counted as physical lines, so a quoted cell spanning lines shifts later numbers.
    """
    path = sql_str(str(ctx.file.path))
    ctx.con.execute("DROP TABLE IF EXISTS reject_errors")
    ctx.con.execute("DROP TABLE IF EXISTS reject_scans")
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _csv AS
        SELECT * FROM read_csv({path}, header = true, all_varchar = true, auto_detect = true,
                               ignore_errors = true, store_rejects = true, null_padding = false,
                               max_line_size = {_READER_LINE_LIMIT},
                               buffer_size = {2 * _READER_LINE_LIMIT},
                               compression = '{_compression(ctx.file)}') WITH ORDINALITY
        """,
    )
    rejected_lines = [
        (int(line), f"malformed CSV row: {_csv_reason(error_type)}")
        for line, error_type in ctx.con.execute(
            # One reason per line: DuckDB writes a row per missing or extra column.
            "SELECT line, min(error_type) FROM reject_errors GROUP BY line ORDER BY line"
        ).fetchall()
    ]
    reject_values = ", ".join(f"({line})" for line, _ in rejected_lines) or "(NULL)"
    # A good row's ordinal counts only good rows: step over the header and every rejected line.
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _records AS
        WITH rejected(line) AS (VALUES {reject_values}),
        physical AS (
            SELECT line, row_number() OVER (ORDER BY line) AS good_ordinal
            FROM range(2, (SELECT count(*) FROM _csv) + {len(rejected_lines)} + 2) t(line)
            WHERE line NOT IN (SELECT line FROM rejected WHERE line IS NOT NULL)
        )
        SELECT p.line AS source_line, to_json(c)::VARCHAR AS rec
        FROM (SELECT * EXCLUDE (ordinality), ordinality FROM _csv) c
        JOIN physical p ON p.good_ordinal = c.ordinality
        """,
    )
    ctx.con.execute(
        "CREATE OR REPLACE TEMP TABLE _staging_rejects (source_line BIGINT, reason VARCHAR)"
    )
    if rejected_lines:
        ctx.con.executemany("INSERT INTO _staging_rejects VALUES (?, ?)", rejected_lines)
    _run(ctx, "UPDATE _records SET rec = json_remove(rec, '$.ordinality')")
    ctx.con.execute("DROP TABLE _csv")


def _csv_reason(error_type: str) -> str:
    return {
        "TOO MANY COLUMNS": "too many columns",
        "MISSING COLUMNS": "too few columns",
        "UNQUOTED VALUE": "bad quoting",
        "LINE SIZE OVER MAXIMUM": "line too long",
        "INVALID UNICODE": "not UTF-8",
    }.get(str(error_type).upper(), str(error_type).lower())


@dataclass(frozen=True)
class YamlRecord:
    line: int
    record: Any


def stage_yaml(ctx: LoadContext, list_keys: Sequence[str] = ("tokens", "credentials")) -> None:
    """A YAML list of records, or a mapping with one list under e.g. `tokens:`.

    YAML is for hand-kept inventories (small): it is parsed in Python, with each record's line
    taken from the YAML node marks.
    """
    import json

    try:
        text = ctx.file.path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            ctx.file.display,
            f"invalid YAML: {getattr(exc, 'problem', None) or exc}",
            mark.line + 1 if mark is not None else None,
        ) from None
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
        value = yaml.safe_load(yaml.serialize(node)) if isinstance(node, yaml.Node) else None
        if isinstance(value, dict):
            records.append((line, json.dumps(value, default=str)))
        else:
            rejects.append((line, "not a mapping"))
    ctx.con.execute("CREATE OR REPLACE TEMP TABLE _records (source_line BIGINT, rec VARCHAR)")
    ctx.con.execute(
        "CREATE OR REPLACE TEMP TABLE _staging_rejects (source_line BIGINT, reason VARCHAR)"
    )
    if records:
        ctx.con.executemany("INSERT INTO _records VALUES (?, ?)", records)
    if rejects:
        ctx.con.executemany("INSERT INTO _staging_rejects VALUES (?, ?)", rejects)


def _yaml_items(root: yaml.Node | None, list_keys: Sequence[str]) -> list[yaml.Node] | None:
    if isinstance(root, yaml.SequenceNode):
        return list(root.value)
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if key_node.value in list_keys and isinstance(value_node, yaml.SequenceNode):
                return list(value_node.value)
    return None


def stage(ctx: LoadContext, unwrap: Unwrap = None) -> None:
    """Stage a file by its sniffed layout; `unwrap` applies to the JSON layouts."""
    layout = ctx.sample.layout
    if layout == "jsonl":
        stage_json_lines(ctx, unwrap)
    elif layout in ("json_array", "json_object"):
        stage_json_document(ctx, unwrap)
    elif layout == "csv":
        stage_csv(ctx)
    elif layout == "yaml":
        stage_yaml(ctx)
    else:
        raise InputError(ctx.file.display, "cannot tell how records are laid out in this file")


def map_records(
    ctx: LoadContext,
    columns: dict[str, str],
    checks: Sequence[tuple[str, str]],
    prelude: dict[str, str] | Sequence[dict[str, str]] | None = None,
) -> None:
    """Map `_records` to canonical columns in `_mapped`, with a reject reason per row.

    `prelude` columns are computed first from `rec` (e.g. one `json_extract` of many paths, so
    each record is parsed once); `columns` may use them and each other (DuckDB resolves
    earlier aliases); `checks` are `(condition, reason)` SQL pairs, the first true one wins.
    A sequence of preludes is computed layer by layer, each in its own subquery: DuckDB
    expands an alias into its expression at every use, so names built from names built from
    one parsed record need layers to stay computed once.
    """
    layers = [prelude] if isinstance(prelude, dict) else list(prelude or [])
    source = "(SELECT source_line, md5_number_lower(rec) AS record_key, rec FROM _records)"
    for layer in layers:
        pre = "".join(f", {expr} AS {name}" for name, expr in layer.items())
        source = f"(SELECT *{pre} FROM {source})"
    cols = ",\n".join(f"{expr} AS {name}" for name, expr in columns.items())
    reason = "CASE " + " ".join(f"WHEN {cond} THEN {msg}" for cond, msg in checks) + " END"
    if not checks:
        reason = "NULL::VARCHAR"
    _run(
        ctx,
        f"""
        CREATE OR REPLACE TEMP TABLE _mapped AS
        SELECT source_line, record_key, {cols}, {reason} AS reject_reason
        FROM {source}
        """,
    )
    ctx.con.execute("DROP TABLE _records")
