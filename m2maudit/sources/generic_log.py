"""The generic access log (design §4): JSON lines, a JSON array or CSV, optionally gzipped.

Field names are ours (`timestamp`, `principal`, ...) unless the config's `mapping:` renames
them. The raw `authorization` value is read only to fingerprint it (and to keep it out of
the leak check); it is never stored.
"""

from __future__ import annotations

import re
from typing import ClassVar

from m2maudit.config import GENERIC_LOG_FIELDS, Config
from m2maudit.fingerprint import bare_token_sql
from m2maudit.secrets import (
    leaked_secret_fp_sql,
    redact_list_sql,
    redact_secrets_sql,
    secret_safe_id_sql,
)
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import map_records, stage

IDENTITY_FIELDS = ("principal", "client_id", "token_id", "authorization")
TEXT_FIELDS = (
    "principal",
    "principal_type",
    "client_id",
    "token_id",
    "authorization",
    "on_behalf_of",
    "action",
    "resource",
    "status",
    "source_ip",
    "user_agent",
    "trace_id",
    "session_id",
    "task_id",
)
PRINCIPAL_TYPES = ("agent", "service", "human", "unknown")


def field_name(config: Config, canonical: str) -> str:
    """The user's name for a canonical field (after `mapping:`)."""
    return config.mapping.get(canonical, canonical)


def _top_keys(config: Config, canonical: str) -> set[str]:
    """Top-level keys that hold a field: `a.b` may be the key `a.b` (a CSV header) or `a`."""
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


class GenericLogAdapter:
    name: ClassVar[str] = "generic-log"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "m2maudit's own access-log schema (JSON lines, JSON array or CSV; .gz too), "
        "with field names renamable in the config's mapping section"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "timestamp (ISO 8601 or epoch s/ms)"),
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
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        keys = sample.keys()
        has_time = bool(_top_keys(config, "timestamp") & keys)
        has_identity = any(_top_keys(config, name) & keys for name in IDENTITY_FIELDS)
        return has_time and has_identity

    def load(self, ctx: LoadContext) -> None:
        stage(ctx, validate=False)  # the mapping's own parse finds broken JSON (see _checks)
        map_records(ctx, _columns(), _checks(ctx.config), _layers(ctx.config))


# The mapping is computed in layers (see `map_records`), each value once per record: DuckDB
# would otherwise expand every reuse of a name into its whole expression again (a JSON parse,
# a regex, a SHA-256 per use).


def _layers(config: Config) -> list[dict[str, str]]:
    paths: list[str] = []
    slot: dict[str, str] = {}
    for name in GENERIC_LOG_FIELDS:
        slots = []
        for path in field_paths(config, name):
            paths.append(path)
            slots.append(f"v[{len(paths)}]")
        slot[name] = slots[0] if len(slots) == 1 else f"coalesce({', '.join(slots)})"
    path_list = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    fields = {f"j_{name}": slot[name] for name in GENERIC_LOG_FIELDS}
    kinds = {f"k_{name}": q.json_kind_fast(f"j_{name}") for name in GENERIC_LOG_FIELDS}
    untrimmed = {
        f"u_{name}": q.json_text_fast(f"j_{name}", f"k_{name}")
        for name in (*TEXT_FIELDS, "timestamp")
    }
    texts = {f"t_{name}": q.trim_padded(f"u_{name}") for name in (*TEXT_FIELDS, "timestamp")}
    leak_scope = (
        "CASE WHEN t_authorization IS NULL THEN rec ELSE replace(rec, t_authorization, '') END"
    )
    return [
        {"v": f"try(json_extract(rec, [{path_list}]))"},
        fields,
        kinds,
        untrimmed,
        texts,
        {
            "raw_token": f"nullif({bare_token_sql('t_authorization')}, '')",
            "leak": q.leak_check(leak_scope),
            "ts": (
                "CASE WHEN k_timestamp IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
                f"THEN {q.epoch_to_timestamp('try_cast(j_timestamp AS DOUBLE)')} "
                f"WHEN k_timestamp = 'VARCHAR' THEN {q.text_timestamp('t_timestamp')} END"
            ),
        },
        {
            "fp": "left(sha256(raw_token), 16)",
            "leak_fp": f"CASE WHEN leak IS NOT NULL THEN {leaked_secret_fp_sql(leak_scope)} END",
            **{
                f"c_{name}": (
                    f"CASE WHEN leak IS NULL THEN t_{name} "
                    f"ELSE {redact_secrets_sql(f't_{name}')} END"
                )
                for name in TEXT_FIELDS
                if name not in ("authorization", "principal_type")
            },
        },
        {
            "principal": "coalesce(c_principal, c_client_id)",
            "principal_type": "lower(t_principal_type)",
            "credential_id": (
                "coalesce(CASE WHEN leak IS NULL THEN t_token_id "
                f"ELSE {secret_safe_id_sql('t_token_id')} END, fp)"
            ),
        },
    ]


def _columns() -> dict[str, str]:
    return {
        "ts": "ts",
        "principal": "principal",
        "principal_type": "principal_type",
        "client_id": "c_client_id",
        "credential_id": "credential_id",
        "credential_type": (
            # Three dot-separated segments, the first not empty: a JWT (no regex per event).
            "CASE WHEN raw_token IS NULL THEN NULL "
            "WHEN length(raw_token) - length(replace(raw_token, '.', '')) = 2 "
            "AND NOT starts_with(raw_token, '.') THEN 'jwt' ELSE 'bearer' END"
        ),
        "token_fp": "fp",
        # The bare token stays in the staging table only, for decoding; never stored.
        "raw_token": "raw_token",
        "on_behalf_of": "c_on_behalf_of",
        "act_chain": "NULL::VARCHAR[]",
        "action": "c_action",
        "resource": "c_resource",
        "scopes_used": (
            f"CASE WHEN leak IS NULL THEN {q.json_string_list('j_scopes')} "
            f"ELSE {redact_list_sql(q.json_string_list('j_scopes'))} END"
        ),
        "scopes_granted": "NULL::VARCHAR[]",
        "status": "c_status",
        "outcome": q.outcome("t_status"),
        "source_ip": "c_source_ip",
        "user_agent": "c_user_agent",
        "trace_id": "c_trace_id",
        "session_id": "c_session_id",
        "task_id": "c_task_id",
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        "leaked_secret": "leak",
        "leaked_secret_fp": "leak_fp",
    }


def _checks(config: Config) -> list[tuple[str, str]]:
    checks = [
        (
            f"coalesce(k_{name} IN ('OBJECT', 'ARRAY'), false)",
            f"'field {_label(config, name)} must be text, not an object or a list'",
        )
        for name in TEXT_FIELDS
    ]
    ts_label = _label(config, "timestamp")
    return [
        ("v IS NULL", "'not valid JSON'"),
        *checks,
        ("coalesce(k_timestamp, 'NULL') = 'NULL'", f"'missing {ts_label}'"),
        ("ts IS NULL", f"'unparseable {ts_label}: ' || left(coalesce(j_timestamp, ''), 40)"),
        (
            "coalesce(k_scopes IN ('OBJECT', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN'), false)",
            f"'field {_label(config, 'scopes')} must be a list or a space-separated string'",
        ),
        (
            "principal IS NULL AND credential_id IS NULL",
            "'no principal, client_id, token_id or authorization'",
        ),
        (
            f"principal_type IS NOT NULL AND principal_type NOT IN {PRINCIPAL_TYPES}",
            "'principal_type must be one of agent, service, human, unknown'",
        ),
    ]


def _label(config: Config, canonical: str) -> str:
    name = field_name(config, canonical).replace("'", "''")
    return f'"{name}"' if name == canonical else f'"{name}" ({canonical})'
