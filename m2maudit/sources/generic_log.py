"""The generic access log (design §4): JSON lines, a JSON array or CSV, optionally gzipped.

Field names are ours (`timestamp`, `principal`, ...) unless the config's `mapping:` renames
them. The raw `authorization` value is read only to fingerprint it (and to keep it out of
the leak check); it is never stored.
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from m2maudit.canonical import CALL_TEXT_COLUMNS
from m2maudit.config import GENERIC_LOG_FIELDS, Config
from m2maudit.errors import shown
from m2maudit.fingerprint import bare_token_sql
from m2maudit.secrets import (
    SECRET_TEXTS,
    all_secrets_sql,
    breaks_spaced_sql,
    json_as_read_sql,
    leaked_secret_fp_sql,
    secret_needles,
    secret_texts_sql,
)
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.fast_jsonl import (
    FAST_STAGING,
    RAW_TABLE,
    STAGED_TOKENS,
    can_read_fast,
    keys_found_later,
    other_keys,
    quoted,
    raw_source,
    stage_json_columns,
)
from m2maudit.sources.mending import not_json_reason_sql
from m2maudit.sources.staging import StagedLoad, drop_relation, map_records, sql_str

IDENTITY_FIELDS = ("principal", "client_id", "token_id", "authorization")
# Beyond this many keys that the mapping does not use, a log is read the careful way.
MAX_OTHER_KEYS = 500
# The ids that tie a call to a trace, a session and a task: an object or a list there is no
# id (NULL, so the call counts as untraced), but no reason to lose the call either.
CALL_ID_FIELDS = ("trace_id", "session_id", "task_id")
# Fields that describe a call rather than name who made it: an object or a list there (a
# request body, `{"code": 200}`) is kept as its JSON text, not a reason to lose the call. The
# fast read could not tell such a value from a string holding JSON (a logged body) anyway.
FREE_TEXT_FIELDS = tuple(name for name in CALL_TEXT_COLUMNS if name not in CALL_ID_FIELDS)
_JSON_VALUED = ("timestamp", "scopes")  # a time may be a number, scopes a list
TEXT_FIELDS = tuple(name for name in GENERIC_LOG_FIELDS if name not in _JSON_VALUED)


def field_name(config: Config, canonical: str) -> str:
    """The user's name for a canonical field (after `mapping:`)."""
    return config.mapping.get(canonical, canonical)


def top_keys(config: Config, *canonicals: str) -> set[str]:
    """Top-level keys that hold these fields: `a.b` may be the key `a.b` (a CSV header) or
    `a`."""
    return set().union(*(_top_keys_of(config, canonical) for canonical in canonicals))


def _top_keys_of(config: Config, canonical: str) -> set[str]:
    name = field_name(config, canonical)
    if name.startswith("$"):
        rest = name[1:].lstrip(".")
        if rest.startswith('"'):
            return {rest[1:].split('"', 1)[0]}
        return {re.split(r"[.\[]", rest, maxsplit=1)[0]}
    return {name, name.split(".")[0]}


def field_paths(config: Config, canonical: str) -> list[str]:
    """JSON paths to read a field from, first found wins.

    A `$...` path is taken as given; a dotted name `a.b` is tried as the key "a.b" (a flat CSV
    header) and then as the nested path a -> b.
    """
    name = field_name(config, canonical)
    if name.startswith("$") or "." not in name:
        return [q.json_path(name)]
    return ['$."' + name.replace('"', '\\"') + '"', q.json_path(name)]


# The fields a mapping may rename whose value lands in one `events` column alone (NULL there
# when the record lacks it). `principal` and `token_id` are not: a record without them takes
# `client_id` or the token's fingerprint, and is rejected when it has neither.
STORED_AS = {
    "principal_type": "principal_type",
    "client_id": "client_id",
    "authorization": "token_fp",
    "on_behalf_of": "on_behalf_of",
    "action": "action",
    "resource": "resource",
    "scopes": "scopes_used",
    "status": "status",
    "source_ip": "source_ip",
    "user_agent": "user_agent",
    "trace_id": "trace_id",
    "session_id": "session_id",
    "task_id": "task_id",
}


class GenericLogAdapter(StagedLoad):
    name: ClassVar[str] = "generic-log"
    kind: ClassVar[Kind] = "events"
    reads_line_index: ClassVar[bool] = True  # ingest builds one for its fast read
    validate_lines: ClassVar[bool] = False  # the mapping's own parse finds broken JSON
    description: ClassVar[str] = (
        "m2maudit's own access-log schema (JSON lines, JSON array or CSV; .gz too), "
        "with field names renamable in the config's mapping section"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "timestamp (ISO 8601, or epoch s/ms/us/ns from 2000 on)"),
        ("principal", "principal, else client_id"),
        ("principal_type", "principal_type (agent | service | human | unknown)"),
        ("client_id", "client_id"),
        ("credential_id", "token_id, else the fingerprint of authorization"),
        ("credential_type", "jwt or bearer, from the shape of authorization"),
        ("token_fp", "fingerprint of authorization (the raw token is never stored)"),
        ("on_behalf_of", "on_behalf_of"),
        ("action / resource", "action / resource"),
        ("scopes_used", "scopes (a list or a space/comma-separated string)"),
        ("outcome / status", "status (HTTP code or word)"),
        ("source_ip / user_agent", "source_ip / user_agent"),
        ("trace_id / session_id / task_id", "trace_id / session_id / task_id"),
        ("leaked_secret", "secret patterns in any value but the token, keys named too"),
    )

    def check_loaded(self, ctx: LoadContext, after_rowid: int | None) -> dict[str, list[str]]:
        """Fields the config's `mapping:` renames that no loaded record had: most likely a
        typo (`user.emial`), which would silently make every call lack, say, its human or its
        trace, and fire rules on data that has them. Said per file, after its insert (or its
        batch's), of the rows it inserted (those after `after_rowid`, the last before it)."""
        mapped = {name: column for name, column in STORED_AS.items() if name in ctx.config.mapping}
        if not mapped:
            return {}
        found = ctx.con.execute(
            f"SELECT source_file, count(*), "
            f"{', '.join(f'count({column})' for column in mapped.values())} "
            "FROM events WHERE rowid > ? GROUP BY source_file",
            [-1 if after_rowid is None else after_rowid],
        ).fetchall()
        return {
            str(source): [
                f"mapping.{name} reads {shown(ctx.config.mapping[name])}, which no record of the "
                f"{loaded:,} loaded has a value for (a typo?)"
                for name, count in zip(mapped, counts, strict=True)
                if count == 0
            ]
            for source, loaded, *counts in found
        }

    def detect(self, sample: Sample, config: Config) -> bool:
        keys = sample.keys()
        has_time = bool(top_keys(config, "timestamp") & keys)
        has_identity = any(top_keys(config, name) & keys for name in IDENTITY_FIELDS)
        return has_time and has_identity

    def load(self, ctx: LoadContext) -> None:
        """The fast read, else the careful one: `StagedLoad`'s two steps, which also let
        ingest stage many small files and map them with one statement (each statement over
        the mapping costs a tenth of a second to plan, which a small file paid four times)."""
        if not self._load_fast(ctx):
            super().load(ctx)

    def map_staged(self, ctx: LoadContext) -> None:
        map_records(
            ctx,
            _columns(),
            _checks(ctx.config),
            [
                *_careful_value_layers(ctx.config),
                # The scope once, then its text undone of JSON's escapes (which name it
                # four times) in the layer after.
                {"raw_scope": _careful_leak_scope(ctx.config)},
                *_derived_layers(json_as_read_sql("raw_scope")),
            ],
            record_key=None,  # from the values parsed (`_careful_record_key`)
        )

    def _load_fast(self, ctx: LoadContext) -> bool:
        """The fast read (see `fast_jsonl`), when the file and the mapping allow it.

        Keys the mapping does not read are read too, as JSON: the leak check looks at them,
        and the de-duplication key covers them, so two calls that differ only in, say, the
        host that logged them stay two calls. Keys that the line count found further on than
        the first lines (a field a deploy added at noon) mean a second read that names them.
        """
        keys = _plain_keys(ctx.config)
        if not keys or AUTH_HASH in keys.values() or not can_read_fast(ctx):
            return False
        known = {*keys.values(), AUTH_HASH}
        extras = other_keys(ctx, known, MAX_OTHER_KEYS)
        if extras is None or not _stage_fast(ctx, keys, extras):
            return False
        later = keys_found_later(ctx, known | set(extras), MAX_OTHER_KEYS - len(extras))
        if later is None or (later and not _stage_fast(ctx, keys, [*extras, *later])):
            drop_relation(ctx.con, *FAST_STAGING)
            return False
        extras += later
        _stage_tokens(ctx)
        map_records(
            ctx,
            # The tokens go to decoding from `_staged_tokens`, not copied onto every row.
            # Per distinct token, in _auth: the kind of credential too.
            {**_columns(), "raw_token": "NULL::VARCHAR", "credential_type": "auth_credential_type"},
            _checks(ctx.config, broken=("line_verdict IS NOT NULL", "line_verdict")),
            [
                *_fast_value_layers(extras, ctx.config),
                # Only a suspect's escaped line breaks are read as spaces: the needles are
                # found either way (`secrets.breaks_spaced_sql`).
                *_derived_layers(
                    f"CASE WHEN suspect THEN {breaks_spaced_sql('joined')} END", "suspect"
                ),
            ],
            source=_fast_source(keys, extras),
            record_key=_fast_record_key(extras),
            materialize=False,
        )
        return True


def _stage_fast(ctx: LoadContext, keys: dict[str, str], extras: list[str]) -> bool:
    """`stage_json_columns` of the mapping's keys and `extras`; False when the fast read
    cannot take them (see there)."""
    # A key named like DuckDB's row id would hide it, and the line numbers with it.
    if any(key.lower() == "rowid" for key in [*keys.values(), *extras]):
        return False
    types = {**_read_types(keys), **{key: "JSON" for key in extras}}
    return stage_json_columns(ctx, types, {AUTH_HASH: _auth_hash(keys)})


# The mapping is computed in layers (see `map_records`), each value once per record: DuckDB
# would otherwise expand every reuse of a name into its whole expression again (a JSON parse,
# a regex, a SHA-256 per use). Two readings fill the same names: `j_<field>` (the JSON value,
# or for the fast read the text of a text field), `k_<field>` (its JSON kind) and `t_<field>`
# (its text, trimmed); the layers after that are shared.

_TEXT_AND_TIME = (*TEXT_FIELDS, "timestamp")


def _careful_value_layers(config: Config) -> list[dict[str, str]]:
    """From each record's text: one `json_extract` of every field's paths."""
    paths: list[str] = []
    slot: dict[str, str] = {}
    for name in GENERIC_LOG_FIELDS:
        slots = []
        for path in field_paths(config, name):
            paths.append(path)
            slots.append(f"v[{len(paths)}]")
        slot[name] = slots[0] if len(slots) == 1 else f"coalesce({', '.join(slots)})"
    path_list = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    return [
        {"v": f"try(json_extract(rec, [{path_list}]))"},
        {f"j_{name}": slot[name] for name in GENERIC_LOG_FIELDS},
        {f"k_{name}": q.json_kind_fast(f"j_{name}") for name in GENERIC_LOG_FIELDS},
        {
            f"u_{name}": q.json_text_fast(f"j_{name}", f"k_{name}")
            for name in (*_TEXT_AND_TIME, "scopes")
        }
        | {f"u_{name}": _as_read_text(name) for name in FREE_TEXT_FIELDS}
        | _careful_record_key(config),
        {f"t_{name}": q.trim_padded(f"u_{name}") for name in _TEXT_AND_TIME},
        {"raw_token": f"nullif({bare_token_sql('t_authorization')}, '')"},
        {"fp": "left(sha256(raw_token), 16)"},
    ]


def _as_read_text(name: str) -> str:
    """A field's value as the fast read's VARCHAR column holds it: a string's text, a number
    or an object as its JSON, NULL for JSON's null."""
    return (
        f"CASE WHEN k_{name} IN ('OBJECT', 'ARRAY') THEN j_{name}::VARCHAR "
        f"ELSE {q.json_text_fast(f'j_{name}', f'k_{name}')} END"
    )


def _careful_record_key(config: Config) -> dict[str, str]:
    """The fast read's de-duplication key (`_fast_record_key`) from the careful read's
    values, so that a call is one call whichever way each file holding it was read (a big
    file and a small one mapped in a batch, JSON lines and a JSON array, a file with a blank
    line). The keys beyond the format's count by name and value, as the fast read reads
    them. A mapping that names a nested path has no fast read: the record's text is its key.
    """
    keys = _plain_keys(config)
    if keys is None:
        return {"record_key": "hash(rec)"}
    values = [
        f"CASE WHEN k_{name} <> 'NULL' THEN j_{name} END"
        if name in _JSON_VALUED
        else _as_read_text(name)
        for name in GENERIC_LOG_FIELDS
        if name != "authorization"
    ]
    token = _as_read_text("authorization")
    known = ", ".join(sql_str(key) for key in keys.values())
    # Each key beside its value, in the record's order: two parses of the record, where a
    # `json_extract` per key would parse it once per key.
    pairs = "try(list_zip(json_keys(rec), json_extract(rec, '$.*')))"
    present = (
        f"list_sort(list_transform(list_filter({pairs}, "
        f"lambda e: e[1] NOT IN ({known}) AND e[2] <> 'null'), "
        "lambda e: {'k': e[1], 'v': e[2]::VARCHAR}))"
    )
    # Read only for a record with keys beyond the format's: more keys than the format's
    # found in it (`v`, one per key, NULL when absent).
    present = f"CASE WHEN len(try(json_keys(rec))) > list_aggregate(v, 'count') THEN {present} END"
    return {
        "record_key": (
            f"hash({', '.join(values)}, CASE WHEN {token} IS NOT NULL THEN hash({token}) END, "
            f"coalesce({present}, []::STRUCT(k VARCHAR, v VARCHAR)[]))"
        )
    }


def _careful_leak_scope(config: Config) -> str:
    """What the careful read's leak check reads: the whole record but its bearer token
    (which is fingerprinted, not leaked).

    The token's field is removed by its path, not every copy of its value (a copy in a URL
    is a leak). The caller undoes JSON's escapes, which would hide a secret from its pattern
    (`json_as_read_sql`). A line that is not JSON is read as it is, its token's field
    emptied by its key (`_without_token_text`).
    """
    without = "rec"
    for path in field_paths(config, "authorization"):  # json_remove takes one path
        without = f"json_remove({without}, {q.path_literal(path)})"
    # Most records need no rewrite: no copy of them then (a copy of every record of a big
    # log did not fit a small --memory-limit).
    return (
        f"CASE WHEN t_authorization IS NOT NULL AND json_valid(rec) THEN {without}::VARCHAR "
        # `v` (the record's values, `_careful_value_layers`) is NULL only for text that is
        # not JSON: a second parse of every line to tell (`json_valid`) did not fit a small
        # --memory-limit.
        f"WHEN v IS NULL THEN {_without_token_text('rec', config)} ELSE rec END"
    )


def _without_token_text(text: str, config: Config) -> str:
    """SQL: a line that is not valid JSON (cut in half, say), its token's field emptied by
    the field's key: the token is the call's credential, fingerprinted, not a leak, in a
    broken record as in a whole one. A cut value runs to the line's end."""
    keys = "|".join(re.escape(key) for key in _last_keys(config, "authorization"))
    pattern = f'(?i)("(?:{keys})"\\s*:\\s*)"(?:[^"\\\\]|\\\\.)*"?'
    return f"regexp_replace({text}, {q.sql_regex_literal(pattern)}, '\\1\"\"', 'g')"


def _last_keys(config: Config, canonical: str) -> list[str]:
    """The key that holds a field in its record, at the end of each of its paths."""
    keys = []
    for path in field_paths(config, canonical):
        found = re.search(r'(?:"((?:[^"\\]|\\.)*)"|([^."\[\]]+))$', path)
        if found:
            keys.append(found.group(1) or found.group(2))
    return keys


def _plain_keys(config: Config) -> dict[str, str] | None:
    """Field -> top-level key for the fast read; None when a field is a nested path."""
    keys = {name: field_name(config, name) for name in GENERIC_LOG_FIELDS}
    plain = all(
        not key.startswith("$") and "." not in key and '"' not in key for key in keys.values()
    )
    return keys if plain and len(set(keys.values())) == len(keys) else None


def _read_types(keys: dict[str, str]) -> dict[str, str]:
    return {key: "JSON" if name in _JSON_VALUED else "VARCHAR" for name, key in keys.items()}


def _stage_tokens(ctx: LoadContext) -> None:
    """`_auth`: each distinct `authorization` value once, with its bare token and fingerprint.

    A log holds millions of calls but thousands of tokens: stripping `Bearer` and hashing per
    distinct value, then joining, is what the floor's own decode costs.
    """
    column = quoted(field_name(ctx.config, "authorization"))
    bare = f"nullif({bare_token_sql(q.trim_padded('a'))}, '')"
    ctx.con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _auth AS
        SELECT {AUTH_HASH}, raw_token, left(sha256(raw_token), 16) AS fp, auth_kind,
               {_CREDENTIAL_TYPE} AS auth_credential_type
        FROM (SELECT {AUTH_HASH}, {bare} AS raw_token, {_text_kind("a")} AS auth_kind
              FROM (SELECT {AUTH_HASH}, any_value({column}) AS a FROM {RAW_TABLE}
                    WHERE {AUTH_HASH} IS NOT NULL GROUP BY {AUTH_HASH}))
        """
    )
    # The values are in _auth now: free the gigabytes of tokens, one per call, at once.
    ctx.con.execute(f"ALTER TABLE {RAW_TABLE} DROP COLUMN {column}")
    # Ingest keeps those of accepted records and decodes them.
    ctx.con.execute(
        f"CREATE OR REPLACE TEMP TABLE {STAGED_TOKENS} AS "
        "SELECT DISTINCT fp AS token_fp, raw_token FROM _auth WHERE raw_token IS NOT NULL"
    )


# The column of that hash in `_raw`; a file with a key of this name is read carefully.
AUTH_HASH = "_m2m_auth_hash"


def _auth_hash(keys: dict[str, str]) -> str:
    """Tokens are joined back to their calls by a 64-bit hash computed while reading, not by
    the 500-byte value: two distinct tokens of one log sharing a hash is a 1 in 10^10 chance
    at 100 000 tokens. The values themselves are dropped from `_raw` once `_auth` holds
    each of them once."""
    column = quoted(keys["authorization"])
    return f"CASE WHEN {column} IS NOT NULL THEN hash({column}) END"


def _fast_source(keys: dict[str, str], extras: list[str]) -> str:
    kept = {name: key for name, key in keys.items() if name != "authorization"}
    kept |= {f"extra_{i}": key for i, key in enumerate(extras)}
    return (
        "SELECT s.*, t.raw_token, t.fp, t.auth_kind, t.auth_credential_type "
        f"FROM ({raw_source(kept, [AUTH_HASH])}) s "
        f"LEFT JOIN _auth t ON t.{AUTH_HASH} = s.{AUTH_HASH}"
    )


def _fast_record_key(extras: list[str]) -> str:
    """A hash of every value read, the token by its hash. The other keys count by name and
    value, in name order and only when present, so that files whose first lines show
    different sets of keys still give a record the same key."""
    values = [f"f_{name}" for name in GENERIC_LOG_FIELDS if name != "authorization"]
    pairs = ", ".join(
        "{'k': " + sql_str(key) + f", 'v': f_extra_{i}::VARCHAR}}" for i, key in enumerate(extras)
    )
    present = (
        f"list_sort(list_filter([{pairs}], lambda e: e.v IS NOT NULL))"
        if extras
        else "[]::STRUCT(k VARCHAR, v VARCHAR)[]"
    )
    return f"hash({', '.join(values)}, {AUTH_HASH}, {present})"


def _fast_value_layers(extras: list[str], config: Config) -> list[dict[str, str]]:
    """From `read_json`'s columns: text fields arrive as text (an object as its JSON), the
    time and the scopes as JSON.

    Nearly every value is already clean text, and the full checks on fifteen of them (an
    object? padded? empty?) cost more than reading the file. So a few integer and prefix
    tests per value find the rare record with a value that starts with a space, `[` or
    `{`, ends with a space or is empty (`odd`); only such a record has its values checked
    in full. The leak check reads all values but the token, joined by newlines, and only
    when one regex pass finds a literal needle of the secret patterns in them (`suspect`).
    The keys beyond the format's are joined with their names, as the record has them:
    `"password": "..."` is a secret by its name.
    """
    texts = [f"f_{name}" for name in TEXT_FIELDS if name != "authorization"]
    others = [f"f_{name}::VARCHAR" for name in _JSON_VALUED]
    others += [
        f"{sql_str(json.dumps(key) + ': ')} || {json_as_read_sql(f'f_extra_{i}::VARCHAR')}"
        for i, key in enumerate(extras)
    ]
    # A line `read_json` could not parse gave no values: its text, as the careful read's
    # leak check reads it (the record is rejected; its secret is not): a line that opens an
    # object with its token's field emptied, any other line (which the careful read rejects
    # before mapping, `staging._split_lines`) as it is.
    broken = (
        f"CASE WHEN {q.opens_object('line_text')} "
        f"THEN {_without_token_text('line_text', config)} ELSE line_text END"
    )
    joined = (
        f"CASE WHEN line_verdict IS NOT NULL THEN {json_as_read_sql(broken)} "
        f"ELSE concat_ws(chr(10), {', '.join([*texts, *others])}) END"
    )
    values = {f"j_{name}": f"f_{name}" for name in GENERIC_LOG_FIELDS if name != "authorization"}
    suspect = "|".join(secret_needles())
    kinds = {
        "k_timestamp": q.json_kind_fast("j_timestamp"),
        "k_scopes": q.json_kind_fast("j_scopes"),
        "k_authorization": "auth_kind",  # judged once per distinct value, in _auth
        **{
            f"k_{name}": f"CASE WHEN odd THEN {_text_kind(f'j_{name}')} END"
            for name in TEXT_FIELDS
            if name != "authorization"
        },
    }
    untrimmed = {
        "u_timestamp": q.json_text_fast("j_timestamp", "k_timestamp"),
        "u_scopes": q.json_text_fast("j_scopes", "k_scopes"),
    }
    texts_trimmed = {
        "t_timestamp": q.trim_padded("u_timestamp"),
        **{
            f"t_{name}": f"CASE WHEN odd THEN {_checked_text(name)} ELSE j_{name} END"
            for name in TEXT_FIELDS
            if name != "authorization"
        },
    }
    return [
        {**values, "joined": joined},
        {
            "suspect": f"regexp_matches(joined, {q.sql_regex_literal(suspect)}, 'i')",
            "odd": "coalesce(" + " OR ".join(_odd_text(f) for f in texts) + ", false)",
        },
        kinds,
        untrimmed,
        texts_trimmed,
    ]


def _odd_text(text: str) -> str:
    """True when a text value starts with a space, `[` or `{`, ends with a space or is empty:
    it needs the full checks. Integer and prefix tests only, no copy of the value."""
    return f"(ascii({text}) IN (32, 91, 123) OR ends_with({text}, ' ') OR {text} = '')"


def _checked_text(name: str) -> str:
    """A text field's value, trimmed, NULL when empty or (but for free text) an object or list."""
    if name in FREE_TEXT_FIELDS:
        return q.trim_padded(f"j_{name}")
    return q.trim_padded(f"CASE WHEN k_{name} = 'VARCHAR' THEN j_{name} END")


def _text_kind(text: str) -> str:
    """The JSON kind behind a value `read_json` gave as text: an object or list arrives as its
    JSON text (so a string holding such JSON text counts as one)."""
    return (
        f"CASE WHEN {text} IS NULL THEN NULL "
        f"WHEN starts_with({text}, '{{') AND json_valid({text}) THEN 'OBJECT' "
        f"WHEN starts_with({text}, '[') AND json_valid({text}) THEN 'ARRAY' "
        "ELSE 'VARCHAR' END"
    )


def _derived_layers(leak_scope: str, suspect: str = "true") -> list[dict[str, str]]:
    """From the texts and the token: time, leak check, redaction, identity."""
    return [
        {
            "scope": leak_scope,
            "ts": (
                "CASE WHEN k_timestamp IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                f"THEN {q.epoch_to_timestamp('try_cast(j_timestamp AS DOUBLE)')} "
                f"WHEN k_timestamp = 'VARCHAR' THEN {q.text_timestamp('t_timestamp')} END"
            ),
        },
        {"leak": f"CASE WHEN {suspect} THEN {q.leak_check('scope')} END"},
        {
            # A secret is cut out of the stored text by `map_records` (`_without_secrets`).
            "leak_fp": f"CASE WHEN leak IS NOT NULL THEN {leaked_secret_fp_sql('scope')} END",
        },
        {
            "leak_all": (
                f"CASE WHEN leak IS NOT NULL THEN {all_secrets_sql('scope', 'leak', 'leak_fp')} END"
            ),
        },
        {
            "principal": "coalesce(t_principal, t_client_id)",
            "principal_type": q.stated_principal_type("t_principal_type"),
            "credential_id": "coalesce(t_token_id, fp)",
        },
    ]


# Three dot-separated segments, the first not empty: a JWT (no regex per event).
_CREDENTIAL_TYPE = (
    "CASE WHEN raw_token IS NULL THEN NULL "
    "WHEN length(raw_token) - length(replace(raw_token, '.', '')) = 2 "
    "AND NOT starts_with(raw_token, '.') THEN 'jwt' ELSE 'bearer' END"
)


def _columns() -> dict[str, str]:
    return {
        "ts": "ts",
        "principal": "principal",
        "principal_id": "NULL::VARCHAR",
        "principal_type": "principal_type",
        "client_id": "t_client_id",
        "credential_id": "credential_id",
        "credential_type": _CREDENTIAL_TYPE,
        "token_fp": "fp",
        # The bare token stays in the staging table only, for decoding; never stored.
        "raw_token": "raw_token",
        "on_behalf_of": q.placeholder_as_null("t_on_behalf_of"),
        "act_chain": "NULL::VARCHAR[]",
        "action": "t_action",
        "resource": "t_resource",
        "scopes_used": _scope_list(),
        "scopes_granted": "NULL::VARCHAR[]",
        "status": "t_status",
        "outcome": q.outcome("t_status"),
        "source_ip": "t_source_ip",
        "user_agent": "t_user_agent",
        "trace_id": q.placeholder_as_null("t_trace_id"),
        "session_id": q.placeholder_as_null("t_session_id"),
        "task_id": q.placeholder_as_null("t_task_id"),
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        "leaked_secret": "leak",
        "leaked_secret_fp": "leak_fp",
        "leaked_secrets": "leak_all",
        SECRET_TEXTS: f"CASE WHEN leak IS NOT NULL THEN {secret_texts_sql('scope')} END",
    }


def _scope_list() -> str:
    """`scopes` as VARCHAR[]: a JSON list, or a string split on white space and commas.

    A string without separators (one scope, the usual case) skips the regex split.
    """
    separators = " OR ".join(
        f"contains(u_scopes, {sep})" for sep in ("' '", "','", "chr(9)", "chr(10)", "chr(13)")
    )
    return (
        "CASE k_scopes "
        "WHEN 'ARRAY' THEN list_filter(from_json(j_scopes, '[\"VARCHAR\"]'), "
        "lambda s: s IS NOT NULL AND trim(s) <> '') "
        "WHEN 'VARCHAR' THEN CASE WHEN u_scopes = '' THEN []::VARCHAR[] "
        f"WHEN NOT ({separators}) THEN [u_scopes] "
        f"ELSE {q.split_list('u_scopes')} END END"
    )


# A careful read's record that does not parse: a lone surrogate escape is said as such, for
# ingest to read the file again mended (`mending`).
_NOT_JSON = ("v IS NULL", not_json_reason_sql("rec"))


def _checks(config: Config, broken: tuple[str, str] = _NOT_JSON) -> list[tuple[str, str]]:
    """Reject reasons, first true wins; `broken` finds a record that is not a JSON object."""
    checks = [
        (
            f"coalesce(k_{name} IN ('OBJECT', 'ARRAY'), false)",
            f"'field {_label(config, name)} must be text, not an object or a list'",
        )
        for name in TEXT_FIELDS
        if name not in (*FREE_TEXT_FIELDS, *CALL_ID_FIELDS)
    ]
    ts_label = _label(config, "timestamp")
    return [
        broken,
        *checks,
        ("coalesce(k_timestamp, 'NULL') = 'NULL'", f"'missing {ts_label}'"),
        (
            # A number that is no time from 2000 on: a counter, a duration, a status?
            "ts IS NULL AND isfinite(try_cast(t_timestamp AS DOUBLE))",
            f"'unparseable {ts_label}: ' || {q.shown('j_timestamp::VARCHAR')} "
            "|| ' (an epoch number must be a time from 2000 on)'",
        ),
        (
            "ts IS NULL",
            f"'unparseable {ts_label}: ' || {q.shown('j_timestamp::VARCHAR')}",
        ),
        (
            "coalesce(k_scopes IN ('OBJECT', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN'), false)",
            f"'field {_label(config, 'scopes')} must be a list or a space- or comma-separated "
            "string'",
        ),
        (
            # The texts, not `principal` and `credential_id`: the same test, without making
            # the check wait for the leak scan their redaction needs.
            "t_principal IS NULL AND t_client_id IS NULL AND t_token_id IS NULL AND fp IS NULL",
            "'no principal, client_id, token_id or authorization'",
        ),
    ]


def _label(config: Config, canonical: str) -> str:
    name = field_name(config, canonical).replace("'", "''")
    return f'"{name}"' if name == canonical else f'"{name}" ({canonical})'
