"""Decoding bearer tokens inside DuckDB: one `tokens` row per distinct token, never the token.

During ingest an adapter's staging table `_mapped` carries the bare token in `raw_token`.
`decode_staged_tokens` takes its DISTINCT tokens not yet in `tokens`, decodes them with one
vectorized SELECT (split on `.`, base64url to base64, `from_base64`, `json_extract`), and
inserts a row each. Decoding each distinct token once keeps a scan of millions of events at
DuckDB speed; the raw token never leaves the temporary staging table.

Every check, limit and `decode_error` wording comes from `m2maudit.token_claims`, the Python
twin used by `token inspect`, so a token reads the same in a scan and at the terminal. Rules
join events to their token with the `event_tokens` view (`create_token_views`).
"""

from __future__ import annotations

import string

import duckdb

from m2maudit.config import Config
from m2maudit.fingerprint import fingerprint_sql
from m2maudit.sources.sqlfrag import regex_any
from m2maudit.token_claims import (
    ACT_NOT_OBJECT,
    BAD_TIME,
    CLIENT_CLAIMS,
    HUMAN_EVIDENCE_CLAIMS,
    JSON_WORDS,
    MAX_ACT_DEPTH,
    MAX_EPOCH,
    MAX_JSON_DEPTH,
    MAX_TOKEN_BYTES,
    MIN_EPOCH,
    PART_DUPLICATES,
    PART_NOT_BASE64,
    PART_NOT_JSON,
    PART_NOT_OBJECT,
    PART_NOT_UTF8,
    PART_TOO_DEEP,
    REASON_ACT_TOO_DEEP,
    REASON_ALG_NONE,
    REASON_DETACHED,
    REASON_JWE,
    REASON_NO_ALG,
    SEGMENTS,
    TIME_CLAIMS,
    TOO_LONG,
    UNNAMED_ACTOR,
    reason_part,
)

TOKEN_COLUMNS = (
    "token_fp",
    "decode_error",
    "token_length",
    "alg",
    "kid",
    "typ",
    "iss",
    "sub",
    "aud",
    "client_id",
    "azp",
    "scope",
    "iat",
    "nbf",
    "exp",
    "jti",
    "act_chain",
    "chain_depth",
    "root_subject",
    "current_actor",
    "chain_has_cycle",
    "may_act",
    "chain_actor_not_allowed",
    "has_cnf",
    "has_auth_time",
    "has_acr",
    "has_amr",
    "txn",
    "req_wl",
    "subject_kind",
)
EVENT_TOKENS_VIEW = "event_tokens"

# Payload claims read with one json_extract call; their 1-based slot in the list.
_CLAIMS = (
    "iss",
    "sub",
    "aud",
    *CLIENT_CLAIMS,
    "scope",
    "scp",
    *TIME_CLAIMS,
    "jti",
    "may_act",
    "cnf",
    *HUMAN_EVIDENCE_CLAIMS,
    "txn",
    "req_wl",
)
_SLOT = {name: f"cv[{index + 1}]" for index, name in enumerate(_CLAIMS)}


def lit(text: str) -> str:
    """A SQL string literal for text m2maudit itself wrote (reasons, patterns, paths)."""
    return "'" + text.replace("'", "''") + "'"


def sql_template(template: str, **values: str) -> str:
    """A `token_claims` reason template as a SQL expression, its `{fields}` filled by SQL."""
    pieces: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        if literal:
            pieces.append(lit(literal))
        if name:
            pieces.append(f"({values[name]})")
    return " || ".join(pieces)


# --- SQL fragments: each takes SQL expressions and returns one -------------------------------


def json_scalar_text(value: str) -> str:
    """Twin of `claim_text`: a JSON scalar as text; object, array or null: NULL."""
    return (
        f"CASE WHEN json_type({value}) IN ('OBJECT', 'ARRAY', 'NULL') THEN NULL "
        f"ELSE {value} ->> '$' END"
    )


def _present(value: str) -> str:
    return f"coalesce(json_type({value}) <> 'NULL', false)"


def _string_list(value: str) -> str:
    """Twin of `string_list`: `aud` as VARCHAR[]."""
    return (
        f"CASE WHEN json_type({value}) IS NULL OR json_type({value}) IN ('NULL', 'OBJECT') "
        f"THEN NULL WHEN json_type({value}) = 'ARRAY' "
        f"THEN list_filter(from_json({value}, '[\"VARCHAR\"]'), lambda s: s IS NOT NULL) "
        f"ELSE [{json_scalar_text(value)}] END"
    )


def _scope_list(value: str) -> str:
    """Twin of `scope_list`: a space-separated string is split on spaces."""
    return (
        f"CASE WHEN json_type({value}) = 'VARCHAR' "
        f"THEN list_filter(string_split({value} ->> '$', ' '), lambda s: s <> '') "
        f"ELSE {_string_list(value)} END"
    )


def _numeric_date(value: str) -> str:
    """Twin of `numeric_date`: a JSON number of seconds within years 1..9999, else NULL."""
    seconds = f"try_cast({value} AS DOUBLE)"
    return (
        f"CASE WHEN json_type({value}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
        f"AND isfinite({seconds}) AND {seconds} BETWEEN {MIN_EPOCH} AND {MAX_EPOCH} "
        f"THEN to_timestamp({seconds}) END"
    )


def _actor(sub: str, client_id: str) -> str:
    """Twin of `actor_name` for an `act`/`may_act` object given its `sub` and `client_id`."""
    return f"coalesce({json_scalar_text(sub)}, {json_scalar_text(client_id)}, {lit(UNNAMED_ACTOR)})"


def _may_act(value: str) -> str:
    """Twin of `_may_act`: one object (RFC 8693 §4.4), or a list of them, as names."""
    named = _actor("m -> '$.sub'", "m -> '$.client_id'")
    element = f"CASE WHEN json_type(m) = 'OBJECT' THEN {named} ELSE {json_scalar_text('m')} END"
    member = _actor(f"{value} -> '$.sub'", f"{value} -> '$.client_id'")
    return (
        f"CASE WHEN json_type({value}) IS NULL OR json_type({value}) = 'NULL' THEN NULL "
        f"WHEN json_type({value}) = 'OBJECT' THEN [{member}] "
        f"WHEN json_type({value}) = 'ARRAY' THEN list_filter(list_transform("
        f"from_json({value}, '[\"JSON\"]'), lambda m: {element}), lambda nm: nm IS NOT NULL) "
        f"ELSE [{json_scalar_text(value)}] END"
    )


def _b64url_ok(segment: str) -> str:
    """Twin of `_b64url_decode`'s checks: the alphabet, at most `==`, a possible length."""
    stripped = f"rtrim({segment}, '=')"
    return (
        f"coalesce(regexp_full_match({segment}, '[A-Za-z0-9_-]*={{0,2}}') "
        f"AND strlen({stripped}) % 4 <> 1 "
        f"AND (strlen({stripped}) = strlen({segment}) OR strlen({segment}) % 4 = 0), false)"
    )


def _b64url_text(segment: str) -> str:
    """base64url -> base64 with padding -> bytes -> UTF-8 text; NULL if any step fails."""
    stripped = f"rtrim({segment}, '=')"
    standard = f"translate({stripped}, '-_', '+/') || repeat('=', (4 - strlen({stripped}) % 4) % 4)"
    return f"try(decode(from_base64({standard})))"


def _skeleton(text: str) -> str:
    """The JSON text with every string emptied, so brackets and words can be counted."""
    return f"regexp_replace({text}, '\"([^\"\\\\]|\\\\.)*\"', '\"\"', 'g')"


def _too_deep(skeleton: str) -> str:
    """Twin of `json_depth(...) > MAX_JSON_DEPTH`; only long bracket runs pay for the walk."""
    brackets = f"regexp_replace({skeleton}, '[^\\[\\]{{}}]', '', 'g')"
    steps = (
        f"list_transform(string_split({brackets}, ''), "
        f"lambda ch: CASE WHEN ch IN ('{{', '[') THEN 1 ELSE -1 END)"
    )
    deepest = (
        f"list_reduce({steps}, lambda acc, x: {{'d': acc.d + x, 'm': greatest(acc.m, acc.d + x)}}, "
        f"{{'d': 0, 'm': 0}}).m"
    )
    return (
        f"CASE WHEN strlen({brackets}) > {MAX_JSON_DEPTH} "
        f"THEN {deepest} > {MAX_JSON_DEPTH} ELSE false END"
    )


def _strict_json(text: str, skeleton: str) -> str:
    """Twin of `_strict_json`: valid JSON, no trailing comma, no NaN/Infinity/inf words."""
    words = ", ".join(lit(word) for word in JSON_WORDS)
    return (
        f"coalesce(json_valid({text}) "
        f"AND NOT regexp_matches({skeleton}, ',[ \\t\\r\\n]*[\\]}}]') "
        f"AND len(list_filter(regexp_extract_all({skeleton}, '[A-Za-z]+'), "
        f"lambda w: w NOT IN ({words}))) = 0, false)"
    )


def _parsed_columns(prefix: str) -> str:
    """`{p}_skel`, `{p}_strict` and `{p}_json` (strict JSON text or NULL) for `{p}_txt`."""
    text, skeleton = f"{prefix}_txt", f"{prefix}_skel"
    return (
        f"{_skeleton(text)} AS {skeleton}, "
        f"{_strict_json(text, skeleton)} AS {prefix}_strict, "
        f"CASE WHEN {prefix}_strict THEN {text} END AS {prefix}_json"
    )


def _part_checks(part: str, prefix: str) -> list[tuple[str, str]]:
    """(condition, reason) pairs for a header or payload, in the Python twin's order.

    JSON functions only ever see `{p}_json` (strict JSON or NULL), so no check can raise,
    whatever order DuckDB evaluates them in.
    """
    valid = f"{prefix}_json"
    return [
        (f"NOT {prefix}_b64", lit(reason_part(part, PART_NOT_BASE64))),
        (f"{prefix}_txt IS NULL", lit(reason_part(part, PART_NOT_UTF8))),
        (_too_deep(f"{prefix}_skel"), lit(reason_part(part, PART_TOO_DEEP))),
        (f"NOT {prefix}_strict", lit(reason_part(part, PART_NOT_JSON))),
        (f"json_type({valid}) <> 'OBJECT'", lit(reason_part(part, PART_NOT_OBJECT))),
        (
            f"len(json_keys({valid})) <> len(list_distinct(json_keys({valid})))",
            lit(reason_part(part, PART_DUPLICATES)),
        ),
    ]


def _act_paths(suffix: str, levels: int) -> str:
    paths = ", ".join(lit("$" + ".act" * depth + suffix) for depth in range(1, levels + 1))
    return f"[{paths}]"


# --- the decoding SELECT -----------------------------------------------------------------------


def decode_select(source: str, config: Config) -> str:
    """One SELECT decoding every `(token_fp, raw_token)` row of `source` into TOKEN_COLUMNS."""
    hard_checks = [
        (f"token_length > {MAX_TOKEN_BYTES}", sql_template(TOO_LONG, length="token_length")),
        ("segment_count = 5", lit(REASON_JWE)),
        (
            "segment_count <> 3",
            sql_template(
                SEGMENTS,
                count="segment_count",
                plural="CASE WHEN segment_count = 1 THEN '' ELSE 's' END",
            ),
        ),
        *_part_checks("header", "h"),
        (
            "json_type(h_json, '$.b64') = 'BOOLEAN' AND (h_json ->> '$.b64') = 'false'",
            lit(REASON_DETACHED),
        ),
        *_part_checks("payload", "p"),
        ("NOT s_b64", lit(reason_part("signature", PART_NOT_BASE64))),
    ]
    hard = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in hard_checks) + " END"
    claim_paths = ", ".join(lit(f"$.{name}") for name in _CLAIMS)
    text = {name: json_scalar_text(_SLOT[name]) for name in _CLAIMS}
    clients = ", ".join(text[name] for name in CLIENT_CLAIMS)
    scope_value = (
        f"CASE WHEN {_present(_SLOT['scope'])} THEN {_SLOT['scope']} ELSE {_SLOT['scp']} END"
    )
    time_errors = ", ".join(
        f"CASE WHEN {_present(_SLOT[n])} AND {_numeric_date(_SLOT[n])} IS NULL "
        f"THEN {lit(BAD_TIME.format(claim=n))} END"
        for n in TIME_CLAIMS
    )
    human = " OR ".join(
        [regex_any("sub", config.human_patterns), "has_auth_time", "has_acr", "has_amr"]
    )
    named = f"list_filter(act_chain, lambda a: a <> {lit(UNNAMED_ACTOR)})"
    return f"""
    WITH seg AS (
        SELECT token_fp, strlen(raw_token)::INTEGER AS token_length,
               CASE WHEN strlen(raw_token) <= {MAX_TOKEN_BYTES}
                    THEN string_split(raw_token, '.') END AS parts
        FROM ({source})
    ),
    txt AS (
        SELECT token_fp, token_length, len(parts) AS segment_count,
               segment_count = 3 AND {_b64url_ok("parts[1]")} AS h_b64,
               segment_count = 3 AND {_b64url_ok("parts[2]")} AS p_b64,
               segment_count = 3 AND {_b64url_ok("parts[3]")} AS s_b64,
               CASE WHEN h_b64 THEN {_b64url_text("parts[1]")} END AS h_txt,
               CASE WHEN p_b64 THEN {_b64url_text("parts[2]")} END AS p_txt
        FROM seg
    ),
    checked AS (
        SELECT token_fp, token_length, {hard} AS hard_error,
               CASE WHEN hard_error IS NULL THEN h_json END AS hj,
               CASE WHEN hard_error IS NULL THEN p_json END AS pj
        FROM (SELECT *, {_parsed_columns("h")}, {_parsed_columns("p")} FROM txt)
    ),
    extracted AS (
        SELECT token_fp, token_length, hard_error,
               json_extract(hj, ['$.alg', '$.kid', '$.typ']) AS hv,
               json_extract(pj, [{claim_paths}]) AS cv,
               json_type(pj, {_act_paths("", MAX_ACT_DEPTH + 1)}) AS act_types,
               json_extract(pj, {_act_paths(".sub", MAX_ACT_DEPTH)}) AS act_subs,
               json_extract(pj, {_act_paths(".client_id", MAX_ACT_DEPTH)}) AS act_cids
        FROM checked
    ),
    claims AS (
        SELECT token_fp, token_length, hard_error,
               {json_scalar_text("hv[1]")} AS alg,
               {json_scalar_text("hv[2]")} AS kid,
               {json_scalar_text("hv[3]")} AS typ,
               {text["iss"]} AS iss, {text["sub"]} AS sub,
               {_string_list(_SLOT["aud"])} AS aud,
               coalesce({clients}) AS client_id, {text["azp"]} AS azp,
               list_contains([{clients}], sub) AS sub_is_client,
               {_scope_list(scope_value)} AS scope,
               {_numeric_date(_SLOT["iat"])} AS iat,
               {_numeric_date(_SLOT["nbf"])} AS nbf,
               {_numeric_date(_SLOT["exp"])} AS exp,
               concat_ws('; ', {time_errors}) AS time_errors,
               {text["jti"]} AS jti,
               {_may_act(_SLOT["may_act"])} AS may_act,
               {_present(_SLOT["cnf"])} AS has_cnf,
               {_present(_SLOT["auth_time"])} AS has_auth_time,
               {_present(_SLOT["acr"])} AS has_acr,
               {_present(_SLOT["amr"])} AS has_amr,
               {text["txn"]} AS txn, {text["req_wl"]} AS req_wl,
               list_position(list_transform(act_types,
                   lambda t: t IS NULL OR t <> 'OBJECT'), true) AS act_stop,
               act_types[act_stop] AS act_stop_type,
               least(coalesce(act_stop, {MAX_ACT_DEPTH + 2}) - 1, {MAX_ACT_DEPTH}) AS chain_depth,
               list_transform(range(1, chain_depth + 1),
                   lambda i: {_actor("act_subs[i]", "act_cids[i]")}) AS act_chain
        FROM extracted
    ),
    chains AS (
        SELECT *,
               CASE WHEN act_stop IS NULL OR (act_stop > {MAX_ACT_DEPTH}
                         AND act_stop_type IS NOT NULL AND act_stop_type <> 'NULL')
                    THEN {lit(REASON_ACT_TOO_DEEP)}
                    WHEN act_stop_type IS NOT NULL AND act_stop_type <> 'NULL'
                    THEN {sql_template(ACT_NOT_OBJECT, depth="act_stop")}
               END AS act_error,
               CASE WHEN alg IS NULL THEN {lit(REASON_NO_ALG)}
                    WHEN lower(alg) = 'none' THEN {lit(REASON_ALG_NONE)} END AS alg_error
        FROM claims
    )
    SELECT token_fp,
           CASE WHEN hard_error IS NOT NULL THEN hard_error
                ELSE nullif(concat_ws('; ', alg_error, nullif(time_errors, ''), act_error), '')
           END AS decode_error,
           token_length, alg, kid, typ, iss, sub, aud, client_id, azp, scope, iat, nbf, exp, jti,
           CASE WHEN hard_error IS NULL THEN act_chain END AS act_chain,
           CASE WHEN hard_error IS NULL THEN chain_depth END AS chain_depth,
           sub AS root_subject,
           CASE WHEN hard_error IS NULL THEN coalesce(act_chain[1], sub) END AS current_actor,
           CASE WHEN hard_error IS NULL
                THEN len(list_distinct({named})) < len({named}) END AS chain_has_cycle,
           may_act,
           CASE WHEN may_act IS NOT NULL
                THEN list_filter(act_chain, lambda a: NOT list_contains(may_act, a))[1]
           END AS chain_actor_not_allowed,
           CASE WHEN hard_error IS NULL THEN has_cnf END AS has_cnf,
           CASE WHEN hard_error IS NULL THEN has_auth_time END AS has_auth_time,
           CASE WHEN hard_error IS NULL THEN has_acr END AS has_acr,
           CASE WHEN hard_error IS NULL THEN has_amr END AS has_amr,
           txn, req_wl,
           CASE WHEN hard_error IS NOT NULL THEN NULL
                WHEN sub IS NULL THEN 'unknown'
                WHEN coalesce(sub_is_client, false) THEN 'client'
                WHEN {human} THEN 'human'
                WHEN {regex_any("sub", config.agent_patterns)} THEN 'agent'
                WHEN {regex_any("sub", config.service_patterns)} THEN 'service'
                ELSE 'unknown' END AS subject_kind
    FROM chains
    """


# --- entry points ------------------------------------------------------------------------------


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {str(row[0]) for row in con.execute(f"DESCRIBE {table}").fetchall()}


def decode_staged_tokens(
    con: duckdb.DuckDBPyConnection, config: Config, staging: str = "_mapped"
) -> int:
    """Decode the distinct `raw_token`s of a staging table not yet in `tokens`; rows added.

    Called by ingest inside the file's transaction. A staging table without `raw_token` (an
    adapter that never sees bearer tokens) adds nothing. Only accepted records count.
    """
    columns = _columns(con, staging)
    if "raw_token" not in columns:
        return 0
    fp = fingerprint_sql("raw_token")
    if "token_fp" in columns:
        fp = f"coalesce(token_fp, {fp})"
    accepted = " AND reject_reason IS NULL" if "reject_reason" in columns else ""
    source = f"""
        SELECT fp AS token_fp, any_value(raw_token) AS raw_token
        FROM (SELECT {fp} AS fp, raw_token FROM {staging}
              WHERE raw_token IS NOT NULL AND raw_token <> ''{accepted})
        WHERE fp NOT IN (SELECT token_fp FROM tokens)
        GROUP BY fp
    """
    column_list = ", ".join(TOKEN_COLUMNS)
    decoded = decode_select(source, config)
    row = con.execute(
        f"INSERT INTO tokens ({column_list}) SELECT {column_list} FROM ({decoded})"
    ).fetchone()
    return int(row[0]) if row else 0


def create_token_views(con: duckdb.DuckDBPyConnection) -> None:
    """`event_tokens`: every event with its decoded token's columns, prefixed `token_`.

    The same as `events e LEFT JOIN tokens t USING (token_fp)`, with the token's columns
    renamed so none collides with an event column (both have `client_id`, `act_chain`).
    """
    renamed = ", ".join(
        f't."{name}" AS "{name if name.startswith("token_") else "token_" + name}"'
        for name in TOKEN_COLUMNS
        if name != "token_fp"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {EVENT_TOKENS_VIEW} AS "
        f"SELECT e.*, {renamed} FROM events e LEFT JOIN tokens t USING (token_fp)"
    )
