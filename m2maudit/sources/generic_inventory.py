"""The generic token inventory (design §4): CSV, JSON, JSON lines or YAML.

One row per credential the organisation knows about. Times may be dates or ISO 8601; scopes a
list or a space/comma-separated string.
"""

from __future__ import annotations

from typing import ClassVar

from m2maudit.canonical import CREDENTIAL_COLUMNS
from m2maudit.config import Config
from m2maudit.secrets import CLEANED, LEAK_TEXT, cleaning_sql, json_as_read_sql
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.generic_log import top_keys
from m2maudit.sources.staging import (
    INVENTORY_LIST_KEYS,
    inventory_rows,
    map_records,
    sql_str,
    stage,
)

TIME_FIELDS = ("created_at", "last_rotated_at", "expires_at", "last_used_at", "revoked_at")
# The fields that name a credential or someone: a secret in them becomes its fingerprint.
_NAMING_FIELDS = ("token_id", "principal", "owner")
TEXT_FIELDS = (
    "token_id",
    "type",
    "principal",
    "principal_type",
    "owner",
    "status",
    "principal_status",
    "environment",
)
ID_ALIASES = ("token_id", "credential_id")
# Fields of the generic access log that describe a call, which no inventory row has: a file
# with any of them (or the names the config's mapping gives them) is a log, without its
# `timestamp` perhaps, not an inventory. Read as one, its calls became credentials that
# "never expire".
CALL_FIELDS = frozenset(
    {
        "timestamp",
        "authorization",
        "action",
        "resource",
        "on_behalf_of",
        "source_ip",
        "user_agent",
        "trace_id",
        "session_id",
        "task_id",
    }
)
STATUSES = ("active", "revoked", "disabled")
PRINCIPAL_STATUSES = ("active", "decommissioned")
# What exports write for a status (any case): AWS's `Active`/`Inactive` access keys, Azure's
# and GCP's `enabled`/`disabled`, GitHub's `expired` tokens. Each rejected the whole row.
# An expired credential is out of force from its expiry (`revoked_at` when none is given).
STATUS_WORDS = {
    "enabled": "active",
    "valid": "active",
    "inactive": "disabled",
    "suspended": "disabled",
    "deactivated": "disabled",
    "expired": "revoked",
    "deleted": "revoked",
}


class GenericInventoryAdapter:
    name: ClassVar[str] = "generic-inventory"
    kind: ClassVar[Kind] = "inventory"
    description: ClassVar[str] = (
        "m2maudit's own token inventory (CSV, JSON, JSON lines or YAML): one credential a row"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("credential_id", "token_id, else credential_id"),
        ("type / principal / principal_type / owner", "type / principal / principal_type / owner"),
        ("scopes", "scopes (a list or a space/comma-separated string)"),
        (
            "created_at / last_rotated_at / expires_at / last_used_at / revoked_at",
            "the same names (dates or ISO 8601; 0, blank, never, N/A...: not set)",
        ),
        ("status", "status: active | revoked | disabled (default active)"),
        ("principal_status", "principal_status: active | decommissioned (default active)"),
        ("environment", "environment"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        keys = _row_keys(sample)
        if not any(alias in keys for alias in ID_ALIASES):
            return False
        return not (keys & top_keys(config, *CALL_FIELDS)) and bool(
            keys
            & {
                "created_at",
                "last_rotated_at",
                "expires_at",
                "status",
                "scopes",
                "type",
                "owner",
                "principal",
            }
        )

    def load(self, ctx: LoadContext) -> None:
        stage(ctx, unwrap=INVENTORY_LIST_KEYS)  # JSON `{"tokens": [...]}`, as YAML `tokens:`
        fields = [f for f in CREDENTIAL_COLUMNS if f != "credential_id"]  # token_id: below
        paths = ", ".join(q.path_literal(name) for name in fields)
        slot = {name: f"v[{index + 1}]" for index, name in enumerate(fields)}
        slot["token_id"] = "coalesce(rec -> '$.token_id', rec -> '$.credential_id')"
        # Each field's value is computed once, in a layer of its own: the expressions below
        # use it many times, and DuckDB expands a nested expression at each use. Written
        # inline, the mapping was 240 KB of SQL that took DuckDB 0.8 s to plan.
        values = {f"text_{name}": q.json_text(slot[name]) for name in TEXT_FIELDS}
        values |= {f"time_{name}": _time(slot[name]) for name in TIME_FIELDS}
        values["scope_list"] = q.json_string_list(slot["scopes"])
        # A secret pasted into an inventory (a token as its id, a key in a note) is never
        # stored: ids and names become `secret:<fingerprint>`, other text and scopes are
        # redacted.
        cleaned, picks = cleaning_sql(
            [f"text_{name}" for name in TEXT_FIELDS if name not in _NAMING_FIELDS],
            [f"text_{name}" for name in _NAMING_FIELDS],
            ["scope_list"],
        )
        times = {f"parsed_{name}": q.json_timestamp(f"time_{name}") for name in TIME_FIELDS}
        times[CLEANED] = f"CASE WHEN leak IS NOT NULL THEN {cleaned} END"
        text = {
            name: f"CASE WHEN leak IS NULL THEN text_{name} ELSE {picks[f'text_{name}']} END"
            for name in TEXT_FIELDS
        }
        columns = {
            "credential_id": text["token_id"],
            "type": f"lower({text['type']})",
            "principal": text["principal"],
            "principal_type": q.stated_principal_type(text["principal_type"]),
            "owner": text["owner"],
            "scopes": f"CASE WHEN leak IS NULL THEN scope_list ELSE {picks['scope_list']} END",
            **{name: f"parsed_{name}" for name in TIME_FIELDS},
            "revoked_at": (
                f"CASE WHEN lower({text['status']}) = 'expired' "
                "THEN coalesce(parsed_revoked_at, parsed_expires_at) ELSE parsed_revoked_at END"
            ),
            "status": _status(text["status"]),
            "principal_status": f"coalesce(lower({text['principal_status']}), 'active')",
            "environment": text["environment"],
        }
        checks: list[tuple[str, str]] = [
            (q.is_composite(slot[name]), f"'field \"{name}\" must be text'") for name in TEXT_FIELDS
        ]
        checks.append(("credential_id IS NULL", "'missing token_id'"))
        checks += [
            (
                q.bad_timestamp(f"time_{name}", f"parsed_{name}"),
                f"'unparseable {name}: ' || {q.shown(f'{slot[name]}::VARCHAR')}",
            )
            for name in TIME_FIELDS
        ]
        checks += [
            (
                q.bad_string_list(slot["scopes"]),
                "'field \"scopes\" must be a list or a space- or comma-separated string'",
            ),
            (
                f"status NOT IN {STATUSES}",
                "'status must be active, revoked or disabled (or "
                f"{', '.join(STATUS_WORDS)}), not ' || {q.shown(text['status'])}",
            ),
            (
                f"principal_status NOT IN {PRINCIPAL_STATUSES}",
                "'principal_status must be active or decommissioned, not ' || "
                f"{q.shown(text['principal_status'])}",
            ),
        ]
        # The record's text undone of its escapes once, in a layer before the leak check.
        prelude = {"v": f"json_extract(rec, [{paths}])", LEAK_TEXT: json_as_read_sql("rec")}
        leak = {"leak": q.leak_check(LEAK_TEXT)}
        map_records(ctx, columns, checks, [prelude, leak, values, times])


def _status(text: str) -> str:
    """SQL: a credential's status as the rules know it (`STATUSES`), from the words exports
    use too (`STATUS_WORDS`); active when none is given."""
    words = " ".join(
        f"WHEN {sql_str(word)} THEN {sql_str(to)}" for word, to in STATUS_WORDS.items()
    )
    return f"coalesce(CASE lower({text}) {words} ELSE lower({text}) END, 'active')"


def _row_keys(sample: Sample) -> set[str]:
    """The fields of the first row: of the first record, or of the first item of a JSON
    document's list under `tokens` or `credentials` (YAML's is found when sniffing)."""
    rows = inventory_rows(sample.first_record)
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return set(rows[0])
    return sample.keys()


# Words exports and people write in a time field for "no time" (`last_used_at: never`,
# `expires_at: N/A`). Each rejected the whole row, and with it every rule's view of the key.
NO_TIME_WORDS = ("never", *q.PLACEHOLDER_WORDS)


def _time(value: str) -> str:
    """A time field's JSON value, absent when it is 0 or "0": exports write 0 for "never"
    (expires, last used), which read as seconds since the epoch is 1970. So is a blank
    text (`""`, `" "`): what an empty CSV cell is, and JSON exports write for "not set"; and
    so is a word for none (`NO_TIME_WORDS`, any case)."""
    text = q.json_text(value)
    none = f"{text} IS NULL OR lower({text}) IN {q.text_list(NO_TIME_WORDS)}"
    blank = f"(json_type({value}) = 'VARCHAR' AND ({none}))"
    return (
        f"CASE WHEN coalesce({q.json_number(value)} = 0 OR {blank}, false) THEN NULL "
        f"ELSE {value} END"
    )
