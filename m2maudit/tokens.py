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
from m2maudit.private_jwk import private_jwk_secrets_sql
from m2maudit.secrets import (
    all_secrets_sql,
    breaks_spaced_sql,
    holds_secret_sql,
    leaked_secret_fp_sql,
    leaked_secret_kind_sql,
    secret_id_sql,
    secret_safe_id_sql,
)
from m2maudit.sources.sqlfrag import kind_by_name
from m2maudit.token_claims import (
    ACT_NOT_OBJECT,
    BAD_TIME,
    CLIENT_CLAIMS,
    HUMAN_EVIDENCE_CLAIMS,
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
    SUSPECT_JSON,
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
    "claims_secrets",
)
EVENT_TOKENS_VIEW = "event_tokens"
# A decoded subject no claim sorted (a client, a person) until its name is judged by the
# config's patterns, after the decoding (`decode_staged_tokens`).
KIND_BY_NAME = "by name"
ACT_FAST_LEVELS = 8
"""Levels of `act` every token pays for; deeper ones are read only when level 8 is there."""

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
    "uti",  # Entra ID's token identifier, its jti
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


def claims_read_sql(decode_error: str) -> str:
    """SQL: true when a token's claims were read, so that a NULL claim is missing or unusable.

    `decode_error` also holds reasons that leave the claims readable: an unsigned token, one
    with no `alg`, a broken `act`, a time claim that is not a number. A rule judging a claim's
    absence must not skip such a token: an `alg: none` token without `exp` still never
    expires, and one whose `exp` is `"never"` has no usable expiry either."""
    soft = ", ".join(
        lit(reason) for reason in (REASON_ALG_NONE, REASON_NO_ALG, REASON_ACT_TOO_DEEP)
    )
    act_prefix = ACT_NOT_OBJECT.split("{", 1)[0]
    bad_time = BAD_TIME.split("}", 1)[1]  # ` is not a NumericDate`
    reasons = f"string_split({decode_error}, '; ')"
    return (
        f"({decode_error} IS NULL OR list_bool_and(list_transform({reasons}, "
        f"lambda r: r IN ({soft}) OR starts_with(r, {lit(act_prefix)}) "
        f"OR ends_with(r, {lit(bad_time)}))))"
    )


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
    """Twin of `_b64url_decode`'s checks: the alphabet, at most `==`, a possible length.

    Padded, the length is a multiple of 4; unpadded, it is not 1 more than one.
    """
    return (
        f"coalesce(regexp_full_match({segment}, '[A-Za-z0-9_-]*={{0,2}}') "
        f"AND CASE WHEN ends_with({segment}, '=') THEN strlen({segment}) % 4 = 0 "
        f"ELSE strlen({segment}) % 4 <> 1 END, false)"
    )


def _b64url_text(segment: str) -> str:
    """base64url -> base64 with padding -> bytes -> UTF-8 text; NULL if any step fails.

    `replace` rather than `translate`, and `ends_with` rather than `rtrim`: several times
    faster on thousands of tokens.
    """
    standard = (
        f"replace(replace({segment}, '-', '+'), '_', '/') || CASE WHEN ends_with({segment}, '=') "
        f"THEN '' ELSE repeat('=', (4 - strlen({segment}) % 4) % 4) END"
    )
    return f"try(decode(from_base64({standard})))"


def _skeleton(text: str) -> str:
    """The JSON text with every string emptied, so brackets and words can be counted."""
    return f"regexp_replace({text}, '\"([^\"\\\\]|\\\\.)*\"', '\"\"', 'g')"


def _openers(text: str) -> str:
    """How many `{` and `[` the text holds, strings included: a cheap bound on its depth."""
    return f"(strlen({text}) - strlen(replace(replace({text}, '{{', ''), '[', '')))"


def _too_deep(text: str) -> str:
    """Twin of `_depth(...) > MAX_JSON_DEPTH`; only texts with many brackets are walked."""
    brackets = f"regexp_replace({_skeleton(text)}, '[^\\[\\]{{}}]', '', 'g')"
    steps = (
        f"list_transform(string_split({brackets}, ''), "
        f"lambda ch: CASE WHEN ch IN ('{{', '[') THEN 1 ELSE -1 END)"
    )
    deepest = (
        f"list_reduce({steps}, lambda acc, x: {{'d': acc.d + x, 'm': greatest(acc.m, acc.d + x)}}, "
        f"{{'d': 0, 'm': 0}}).m"
    )
    return (
        f"CASE WHEN {_openers(text)} <= {MAX_JSON_DEPTH} THEN false "
        f"ELSE {deepest} > {MAX_JSON_DEPTH} END"
    )


def _strict_json(text: str) -> str:
    """Twin of `_strict_json`: valid JSON with no trailing comma and no NaN or Infinity.

    DuckDB's parser takes both; outside strings they are the only way `nan`, `inf` or `,]`
    can appear, so only texts where they appear at all pay for emptying the strings.
    """
    suspect = lit(SUSPECT_JSON)
    return (
        f"CASE WHEN NOT coalesce(json_valid({text}), false) THEN false "
        f"WHEN NOT regexp_matches({text}, {suspect}) THEN true "
        f"ELSE NOT regexp_matches({_skeleton(text)}, {suspect}) END"
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
        (_too_deep(f"{prefix}_txt"), lit(reason_part(part, PART_TOO_DEEP))),
        (f"NOT {prefix}_strict", lit(reason_part(part, PART_NOT_JSON))),
        (f"{valid} IS NOT NULL AND {prefix}_keys IS NULL", lit(reason_part(part, PART_NOT_OBJECT))),
        (
            f"len({prefix}_keys) <> list_unique({prefix}_keys)",
            lit(reason_part(part, PART_DUPLICATES)),
        ),
    ]


def _act_paths(suffixes: tuple[str, ...], first: int, last: int) -> str:
    """`$.act…` paths for levels first..last, one per suffix, interleaved level by level."""
    paths = ", ".join(
        lit("$" + ".act" * depth + suffix)
        for depth in range(first, last + 1)
        for suffix in suffixes
    )
    return f"[{paths}]"


# --- the decoding SELECT -----------------------------------------------------------------------


def _layered(source: str, layers: list[dict[str, str]]) -> str:
    """Stack `SELECT *, expr AS name FROM (...)` layers over `source`.

    A column is computed once in its layer and read by name above it. (An alias reused in the
    SELECT that defines it is expanded by DuckDB and computed again at every use.)
    """
    sql = source
    for layer in layers:
        columns = ", ".join(f"{expr} AS {name}" for name, expr in layer.items())
        sql = f"SELECT *, {columns} FROM ({sql})"
    return sql


def _hard_error() -> str:
    """The first reason the claims cannot be read at all, in the Python twin's order."""
    checks = [
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
    return "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"


def _structure_layers() -> list[dict[str, str]]:
    """From the raw token to `hj`/`pj`: header and payload JSON, or NULL and `hard_error`."""
    return [
        {
            "token_length": "strlen(raw_token)::INTEGER",
            "parts": f"CASE WHEN strlen(raw_token) <= {MAX_TOKEN_BYTES} "
            f"THEN string_split(raw_token, '.') END",
        },
        {"segment_count": "len(parts)"},
        {
            f"{prefix}_b64": f"segment_count = 3 AND {_b64url_ok(f'parts[{index}]')}"
            for index, prefix in ((1, "h"), (2, "p"), (3, "s"))
        },
        {
            f"{prefix}_txt": f"CASE WHEN {prefix}_b64 THEN {_b64url_text(f'parts[{index}]')} END"
            for index, prefix in ((1, "h"), (2, "p"))
        },
        {f"{p}_strict": _strict_json(f"{p}_txt") for p in ("h", "p")},
        {f"{p}_json": f"CASE WHEN {p}_strict THEN {p}_txt END" for p in ("h", "p")},
        {
            f"{p}_keys": f"CASE WHEN json_type({p}_json) = 'OBJECT' THEN json_keys({p}_json) END"
            for p in ("h", "p")
        },
        {"hard_error": _hard_error()},
        {
            "hj": "CASE WHEN hard_error IS NULL THEN h_json END",
            "pj": "CASE WHEN hard_error IS NULL THEN p_json END",
        },
    ]


def _claim_layers(config: Config) -> list[dict[str, str]]:
    """From `hj`/`pj` to the tokens-table columns."""
    claim_paths = ", ".join(lit(f"$.{name}") for name in _CLAIMS)
    text = {name: json_scalar_text(_SLOT[name]) for name in _CLAIMS}
    scope_value = (
        f"CASE WHEN {_present(_SLOT['scope'])} THEN {_SLOT['scope']} ELSE {_SLOT['scp']} END"
    )
    time_errors = ", ".join(
        f"CASE WHEN {_present(_SLOT[n])} AND {_numeric_date(_SLOT[n])} IS NULL "
        f"THEN {lit(BAD_TIME.format(claim=n))} END"
        for n in TIME_CLAIMS
    )
    human_evidence = " OR ".join(f"has_{name}" for name in HUMAN_EVIDENCE_CLAIMS)
    not_null = "act_stop_type IS NOT NULL AND act_stop_type <> 'NULL'"
    ids = (".sub", ".client_id")
    return [
        {
            "hv": "json_extract(hj, ['$.alg', '$.kid', '$.typ'])",
            "cv": f"json_extract(pj, [{claim_paths}])",
            "act_types_near": f"json_type(pj, {_act_paths(('',), 1, ACT_FAST_LEVELS)})",
            "act_ids_near": f"json_extract(pj, {_act_paths(ids, 1, ACT_FAST_LEVELS)})",
        },
        {
            "act_types": f"CASE WHEN act_types_near[{ACT_FAST_LEVELS}] = 'OBJECT' "
            f"THEN list_concat(act_types_near, json_type(pj, "
            f"{_act_paths(('',), ACT_FAST_LEVELS + 1, MAX_ACT_DEPTH + 1)})) "
            f"ELSE act_types_near END",
            "act_ids": f"CASE WHEN act_types_near[{ACT_FAST_LEVELS}] = 'OBJECT' "
            f"THEN list_concat(act_ids_near, json_extract(pj, "
            f"{_act_paths(ids, ACT_FAST_LEVELS + 1, MAX_ACT_DEPTH)})) "
            f"ELSE act_ids_near END",
        },
        {
            "alg": json_scalar_text("hv[1]"),
            "kid": json_scalar_text("hv[2]"),
            "typ": json_scalar_text("hv[3]"),
            **{name: text[name] for name in ("iss", "sub", "azp", "txn", "req_wl")},
            "jti": f"coalesce({text['jti']}, {text['uti']})",
            "aud": _string_list(_SLOT["aud"]),
            "client_names": f"[{', '.join(text[name] for name in CLIENT_CLAIMS)}]",
            "scope": _scope_list(scope_value),
            **{name: _numeric_date(_SLOT[name]) for name in TIME_CLAIMS},
            "time_errors": f"nullif(concat_ws('; ', {time_errors}), '')",
            "may_act": _may_act(_SLOT["may_act"]),
            "has_cnf": _present(_SLOT["cnf"]),
            **{f"has_{name}": _present(_SLOT[name]) for name in HUMAN_EVIDENCE_CLAIMS},
            "act_stop": "list_position(list_transform(act_types, "
            "lambda t: t IS NULL OR t <> 'OBJECT'), true)",
        },
        {
            "client_id": "list_filter(client_names, lambda c: c IS NOT NULL)[1]",
            "act_stop_type": "act_types[act_stop]",
            "chain_depth": f"least(coalesce(act_stop, {MAX_ACT_DEPTH + 2}) - 1, {MAX_ACT_DEPTH})",
            "alg_error": f"CASE WHEN alg IS NULL THEN {lit(REASON_NO_ALG)} "
            f"WHEN lower(alg) = 'none' THEN {lit(REASON_ALG_NONE)} END",
            "subject_kind_": f"CASE WHEN sub IS NULL THEN 'unknown' "
            f"WHEN coalesce(list_contains(client_names, sub), false) THEN 'client' "
            f"WHEN {human_evidence} THEN 'human' "
            f"ELSE {lit(KIND_BY_NAME)} END",
        },
        {
            "act_chain_": "list_transform(range(1, chain_depth + 1), "
            f"lambda i: {_actor('act_ids[2 * i - 1]', 'act_ids[2 * i]')})",
            "act_error": f"CASE WHEN act_stop IS NULL OR (act_stop > {MAX_ACT_DEPTH} "
            f"AND {not_null}) THEN {lit(REASON_ACT_TOO_DEEP)} "
            f"WHEN {not_null} THEN {sql_template(ACT_NOT_OBJECT, depth='act_stop')} END",
        },
        {
            "named_actors": f"list_filter(act_chain_, lambda a: a <> {lit(UNNAMED_ACTOR)})",
        },
    ]


# Claims that name someone or something, kept as text (`_safe_ids[n]` below, in this order).
SAFE_ID_CLAIMS = ("alg", "kid", "typ", "iss", "sub", "client_id", "azp", "jti", "txn", "req_wl")


def _secret_layers() -> list[dict[str, str]]:
    """Secrets in the claims: listed (a client secret, an upstream token, judged as a log
    record is: `secrets.all_secrets_sql`), and kept out of the names the store holds.

    The payload is judged as DuckDB writes it again (`json(pj)`): `\\u0067hp_...` or a
    password in `\\u00fc` escapes is a secret all the same. A claim that names someone or
    something (`sub`, `client_id`, `jti`, an actor, a scope) that is itself a secret becomes
    `secret:<fingerprint>`, as a log's ids do: it is a principal or a credential in every
    report. A JSON Web Key's private members, in the header or the claims, are listed too
    (`private_jwk`)."""
    return [
        {"payload_text": breaks_spaced_sql("json(pj)::VARCHAR")},  # `\\nghp_...` is found
        {
            "claims_secret": (
                f"CASE WHEN pj IS NOT NULL THEN {leaked_secret_kind_sql('payload_text')} END"
            ),
        },
        {
            "claims_secret_fp": (
                "CASE WHEN claims_secret IS NOT NULL "
                f"THEN {leaked_secret_fp_sql('payload_text')} END"
            ),
            # Every name in one list, so that the long secret test is written once.
            "_names": (
                f"flatten([[{', '.join(SAFE_ID_CLAIMS)}], "
                + ", ".join(f"coalesce({name}, []::VARCHAR[])" for name in _SAFE_LISTS)
                + "])"
            ),
        },
        {
            "claims_secrets": (
                "nullif(list_sort(list_distinct(list_concat("
                "CASE WHEN claims_secret IS NOT NULL THEN "
                f"{all_secrets_sql('payload_text', 'claims_secret', 'claims_secret_fp')} END, "
                f"{private_jwk_secrets_sql('json(hj)::VARCHAR')}, "
                f"{private_jwk_secrets_sql('payload_text')}))), [])"
            ),
            "_safe_names": f"list_transform(_names, lambda v: {secret_safe_id_sql('v')})",
        },
        _safe_slices(),
    ]


# The lists of names among the claims, in `_names` after the SAFE_ID_CLAIMS.
_SAFE_LISTS = ("act_chain_", "may_act", "aud", "scope")


def _safe_slices() -> dict[str, str]:
    """`_safe_ids` and each list's `_safe_<name>` read back from `_safe_names` (NULL stays
    NULL). A scope string is split on spaces: a private key in it is judged whole too, and
    the scopes are one `secret:<fp>` when their items joined hold a secret
    (`secrets.secret_safe_list`)."""
    slices = {"_safe_ids": f"_safe_names[1:{len(SAFE_ID_CLAIMS)}]"}
    start = str(len(SAFE_ID_CLAIMS) + 1)
    for name in _SAFE_LISTS:
        end = f"{start} + len(coalesce({name}, [])) - 1"
        slices[f"_safe_{name}"] = (
            f"CASE WHEN {name} IS NOT NULL THEN _safe_names[{start}:{end}] END"
        )
        start = f"{end} + 1"
    joined = "array_to_string(scope, ' ')"
    slices["_safe_scope"] = (
        f"CASE WHEN {holds_secret_sql(joined)} THEN [{secret_id_sql(joined)}] "
        f"ELSE {slices['_safe_scope']} END"
    )
    return slices


def decode_select(source: str, config: Config) -> str:
    """One SELECT decoding every `(token_fp, raw_token)` row of `source` into TOKEN_COLUMNS."""
    decoded = _layered(source, _structure_layers() + _claim_layers(config) + _secret_layers())
    ok = "hard_error IS NULL"
    ids = ", ".join(f"_safe_ids[{n}] AS {name}" for n, name in enumerate(SAFE_ID_CLAIMS, 1))
    safe_sub = f"_safe_ids[{SAFE_ID_CLAIMS.index('sub') + 1}]"
    return f"""
    SELECT token_fp,
           coalesce(hard_error, nullif(concat_ws('; ', alg_error, time_errors, act_error), ''))
               AS decode_error,
           token_length, {ids}, _safe_aud AS aud, _safe_scope AS scope, iat, nbf, exp,
           CASE WHEN {ok} THEN _safe_act_chain_ END AS act_chain,
           CASE WHEN {ok} THEN chain_depth END AS chain_depth,
           {safe_sub} AS root_subject,
           CASE WHEN {ok} THEN coalesce(_safe_act_chain_[1], {safe_sub}) END AS current_actor,
           CASE WHEN {ok} THEN len(list_distinct(named_actors)) < len(named_actors) END
               AS chain_has_cycle,
           _safe_may_act AS may_act,
           -- Only the current actor: earlier ones are informational (RFC 8693 §4.1).
           CASE WHEN may_act IS NOT NULL
                     AND NOT list_contains(_safe_may_act, _safe_act_chain_[1])
                THEN _safe_act_chain_[1]
           END AS chain_actor_not_allowed,
           CASE WHEN {ok} THEN has_cnf END AS has_cnf,
           CASE WHEN {ok} THEN has_auth_time END AS has_auth_time,
           CASE WHEN {ok} THEN has_acr END AS has_acr,
           CASE WHEN {ok} THEN has_amr END AS has_amr,
           CASE WHEN {ok} THEN subject_kind_ END AS subject_kind,
           claims_secrets
    FROM ({decoded})
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
    if "token_fp" in columns:  # CASE, not coalesce: DuckDB would compute the fallback anyway
        fp = f"CASE WHEN token_fp IS NULL THEN {fp} ELSE token_fp END"
    accepted = " AND reject_reason IS NULL" if "reject_reason" in columns else ""
    source = f"""
        SELECT * FROM (
            SELECT fp AS token_fp, any_value(raw_token) AS raw_token
            FROM (SELECT {fp} AS fp, raw_token FROM {staging}
                  WHERE raw_token IS NOT NULL AND raw_token <> ''{accepted})
            GROUP BY fp
        ) WHERE token_fp NOT IN (SELECT token_fp FROM tokens)
    """
    column_list = ", ".join(TOKEN_COLUMNS)
    decoded = decode_select(source, config)
    row = con.execute(
        f"INSERT INTO tokens ({column_list}) SELECT {column_list} FROM ({decoded})"
    ).fetchone()
    added = int(row[0]) if row else 0
    # The subjects no claim sorted, by their name: once per new token, in a statement of its
    # own, as the name patterns (kilobytes of them) would make the decoding's much longer.
    if added:  # a file with no new token (most of a log's files) needs no pass over `tokens`
        con.execute(
            f"UPDATE tokens SET subject_kind = {kind_by_name('sub', config.name_kinds())} "
            f"WHERE subject_kind = {lit(KIND_BY_NAME)}"
        )
    return added


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
