"""The generic access log (design §4): JSON lines, a JSON array or CSV, optionally gzipped.

Field names are ours (`timestamp`, `principal`, ...) unless the config's `mapping:` renames
them. The raw `authorization` value is read only to fingerprint it (and to keep it out of
the leak check); it is never stored.
"""

from __future__ import annotations

import re
from typing import ClassVar

from m2maudit.config import GENERIC_LOG_FIELDS, Config
from m2maudit.fingerprint import bare_token_sql, fingerprint_sql
from m2maudit.secrets import leaked_secret_fp_sql, redact_secrets_sql
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
        "renamable with the config's mapping:"
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
        stage(ctx)
        paths: list[str] = []
        slot: dict[str, str] = {}
        for name in GENERIC_LOG_FIELDS:
            slots = []
            for path in field_paths(ctx.config, name):
                paths.append(path)
                slots.append(f"v[{len(paths)}]")
            slot[name] = slots[0] if len(slots) == 1 else f"coalesce({', '.join(slots)})"
        path_list = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        text = {name: q.json_text(slot[name]) for name in TEXT_FIELDS}
        auth = text["authorization"]
        bare = bare_token_sql(auth)
        leak_scope = f"CASE WHEN {auth} IS NULL THEN rec ELSE replace(rec, {auth}, '') END"
        # A secret written in clear elsewhere in the record (a URL's access_token=...) is
        # reported by kind and fingerprint; the stored text columns get it blanked out.
        clean = {
            name: f"CASE WHEN leak IS NULL THEN {value} ELSE {redact_secrets_sql(value)} END"
            for name, value in text.items()
        }
        columns = {
            "ts": q.json_timestamp(slot["timestamp"]),
            "principal": f"coalesce({clean['principal']}, {clean['client_id']})",
            "principal_type": f"lower({text['principal_type']})",
            "client_id": clean["client_id"],
            "credential_id": f"coalesce({clean['token_id']}, {fingerprint_sql(auth)})",
            "credential_type": (
                f"CASE WHEN {auth} IS NULL THEN NULL "
                f"WHEN regexp_full_match({bare}, '[^.]+\\.[^.]*\\.[^.]*') THEN 'jwt' "
                f"ELSE 'bearer' END"
            ),
            "token_fp": fingerprint_sql(auth),
            # The bare token stays in the staging table only, for decoding; never stored.
            "raw_token": f"nullif({bare}, '')",
            "on_behalf_of": clean["on_behalf_of"],
            "act_chain": "NULL::VARCHAR[]",
            "action": clean["action"],
            "resource": clean["resource"],
            "scopes_used": q.json_string_list(slot["scopes"]),
            "scopes_granted": "NULL::VARCHAR[]",
            "status": clean["status"],
            "outcome": q.outcome(text["status"]),
            "source_ip": clean["source_ip"],
            "user_agent": clean["user_agent"],
            "trace_id": clean["trace_id"],
            "session_id": clean["session_id"],
            "task_id": clean["task_id"],
            "credential_issued_at": "NULL::TIMESTAMPTZ",
            "credential_expires_at": "NULL::TIMESTAMPTZ",
            "leaked_secret": "leak",
            "leaked_secret_fp": (
                f"CASE WHEN leaked_secret IS NOT NULL THEN {leaked_secret_fp_sql(leak_scope)} END"
            ),
        }
        checks: list[tuple[str, str]] = []
        for name in TEXT_FIELDS:
            checks.append(
                (
                    q.is_composite(slot[name]),
                    f"'field {_label(ctx.config, name)} must be text, not an object or a list'",
                )
            )
        ts_label = _label(ctx.config, "timestamp")
        checks += [
            (
                f"coalesce(json_type({slot['timestamp']}), 'NULL') = 'NULL'",
                f"'missing {ts_label}'",
            ),
            (
                "ts IS NULL",
                f"'unparseable {ts_label}: ' || left(coalesce({slot['timestamp']}, ''), 40)",
            ),
            (
                q.bad_string_list(slot["scopes"]),
                f"'field {_label(ctx.config, 'scopes')} must be a list or a space-separated "
                "string'",
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
        map_records(
            ctx,
            columns,
            checks,
            prelude={"v": f"json_extract(rec, [{path_list}])", "leak": q.leak_check(leak_scope)},
        )


def _label(config: Config, canonical: str) -> str:
    name = field_name(config, canonical).replace("'", "''")
    return f'"{name}"' if name == canonical else f'"{name}" ({canonical})'
