"""Okta System Log (the `/api/v1/logs` LogEvent, as exported, streamed or copied by a SIEM).

Who acted is `actor` (a `User`, or an app / OAuth client such as `PublicClientApp`); a call
made with an Okta API token carries its id in `transaction.detail.requestApiTokenId`; OAuth
grant events carry the grant type and the granted scopes in `debugContext.debugData`.
Panther-style exports lower-case some top-level keys (`eventtype`, `debugcontext`, ...), so
both spellings are read. See docs/formats/okta.md for the mapping and its caveats.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import StagedLoad, map_records

_DEBUG = ("debugContext.debugData", "debugcontext.debugData")
_AUTH = ("authenticationContext", "authenticationcontext")

FIELDS = q.JsonFields(
    {
        "published": "published",
        "event_time": "p_event_time",  # Panther's normalised copy of `published`
        "actor": "actor",
        "actor_id": "actor.id",
        "actor_type": "actor.type",
        "actor_alt": "actor.alternateId",
        "actor_name": "actor.displayName",
        "client_id": "client.id",
        "ip": ("client.ipAddress", "$.request.ipChain[0].ip"),
        "user_agent": "client.userAgent.rawUserAgent",
        "event_type": ("eventType", "eventtype"),
        "session": tuple(f"{a}.externalSessionId" for a in _AUTH),
        "api_token": "transaction.detail.requestApiTokenId",
        "grant_type": tuple(f"{d}.grantType" for d in _DEBUG),
        "granted": tuple(f"{d}.grantedScopes" for d in _DEBUG),
        "request_uri": tuple(f"{d}.requestUri" for d in _DEBUG),
        "debug_user": tuple(f"{d}.userId" for d in _DEBUG),
        "result": "outcome.result",
        "reason": "outcome.reason",
        "target": "target",
    }
)

SERVICE_ACTOR = "(app|client|system|service|principal)"


class OktaSystemLogAdapter(StagedLoad):
    name: ClassVar[str] = "okta"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "Okta System Log events (LogEvent JSON from /api/v1/logs, JSON lines or arrays)"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "published (else Panther's p_event_time)"),
        ("principal", "actor.alternateId, else actor.displayName, else actor.id"),
        ("principal_id", "actor.id (a renamed login keeps it)"),
        (
            "principal_type",
            "actor.type: User -> human; *App*/*Client*/System* -> service, or agent by name",
        ),
        ("client_id", "client.id (not on API-token calls), else actor.id of an app actor"),
        ("credential_id", "transaction.detail.requestApiTokenId; client id on client_credentials"),
        ("credential_type", "okta_api_token | okta_oauth_client"),
        ("on_behalf_of", "app.oauth2.* by an app: the target of type User (else debugData.userId)"),
        ("action", "eventType"),
        ("resource", "debugContext.debugData.requestUri, else the first target"),
        ("scopes_granted", "debugContext.debugData.grantedScopes"),
        ("outcome / status", "outcome.result (SUCCESS/ALLOW, FAILURE/DENY) and outcome.reason"),
        ("source_ip", "client.ipAddress, else request.ipChain[0].ip"),
        ("user_agent", "client.userAgent.rawUserAgent"),
        ("trace_id", "not in the log (transaction.id names one request, not a task)"),
        ("session_id", "authenticationContext.externalSessionId"),
        ("leaked_secret", "secret patterns anywhere in the record (e.g. a token in debugData.url)"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return looks_like_okta(sample.first_record)

    def map_staged(self, ctx: LoadContext) -> None:
        map_records(
            ctx, _columns(ctx.config), _checks(), prelude=FIELDS.prelude(), leak_scope="rec"
        )


def _columns(config: Config) -> dict[str, str]:
    """Canonical columns as SQL over the staged records."""
    f = FIELDS
    machine = q.machine_kind("principal", config.agent_patterns, config.infrastructure_patterns)
    actor_type = f.text("actor_type")
    grant = f"lower({f.text('grant_type')})"
    api_token = f.text("api_token")
    user_target = q.json_array_find(f["target"], "type", "'User'")
    first_target = q.member(f["target"], "$[0]")
    return {
        "ts": f"coalesce({f.timestamp('published')}, {f.timestamp('event_time')})",
        "principal": "coalesce("
        + ", ".join(
            q.placeholder_as_null(f.text(name)) for name in ("actor_alt", "actor_name", "actor_id")
        )
        + ")",
        "principal_id": q.placeholder_as_null(f.text("actor_id")),
        "principal_type": (
            f"CASE WHEN {actor_type} IS NULL THEN NULL "
            f"WHEN regexp_matches(lower({actor_type}), 'user') THEN 'human' "
            f"WHEN regexp_matches(lower({actor_type}), '{SERVICE_ACTOR}') THEN {machine} "
            f"ELSE 'unknown' END"
        ),
        "client_id": (
            f"coalesce(CASE WHEN {api_token} IS NULL THEN {f.text('client_id')} END, "
            f"CASE WHEN principal_type IN ('service', 'agent') THEN {f.text('actor_id')} END)"
        ),
        "credential_id": (
            f"coalesce({api_token}, CASE WHEN {grant} = 'client_credentials' THEN client_id END)"
        ),
        "credential_type": (
            f"CASE WHEN {api_token} IS NOT NULL THEN 'okta_api_token' "
            f"WHEN {grant} = 'client_credentials' AND client_id IS NOT NULL "
            f"THEN 'okta_oauth_client' END"
        ),
        "token_fp": "NULL::VARCHAR",
        "raw_token": "NULL::VARCHAR",
        "on_behalf_of": (
            f"CASE WHEN principal_type IN ('service', 'agent') "
            f"AND {f.text('event_type')} LIKE 'app.oauth2.%' "
            f"AND {grant} IS DISTINCT FROM 'client_credentials' THEN coalesce("
            f"{q.placeholder_as_null(q.json_text(q.member(user_target, 'alternateId')))}, "
            f"{q.json_text(q.member(user_target, 'id'))}, "
            f"{f.text('debug_user')}) END"
        ),
        "act_chain": "NULL::VARCHAR[]",
        "action": f.text("event_type"),
        "resource": (
            f"coalesce({f.text('request_uri')}, "
            f"{q.placeholder_as_null(q.json_text(q.member(first_target, 'alternateId')))}, "
            f"{q.json_text(q.member(first_target, 'displayName'))}, "
            f"{q.json_text(q.member(first_target, 'id'))})"
        ),
        "scopes_used": "NULL::VARCHAR[]",
        "scopes_granted": q.json_string_list(f["granted"]),
        "status": (
            f"CASE WHEN {f.text('reason')} IS NULL THEN {f.text('result')} "
            f"ELSE concat_ws(': ', {f.text('result')}, {f.text('reason')}) END"
        ),
        "outcome": q.outcome(f.text("result")),
        "source_ip": f.text("ip"),
        "user_agent": f.text("user_agent"),
        # transaction.id names one request: it ties no task's calls together.
        "trace_id": "NULL::VARCHAR",
        "session_id": q.placeholder_as_null(f.text("session")),
        "task_id": "NULL::VARCHAR",
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        **q.leak_columns(),
    }


def _checks() -> list[tuple[str, str]]:
    """(condition, reason) pairs: the first true one rejects the record."""
    f = FIELDS
    return [
        (
            f"NOT ({f.present('published')} OR {f.present('event_time')})",
            "'missing published (the event time)'",
        ),
        (
            "ts IS NULL",
            "'unparseable published: ' || "
            + q.shown(f"coalesce({f['published']}, {f['event_time']})::VARCHAR"),
        ),
        (
            f"json_type({f['actor']}) NOT IN ('OBJECT', 'NULL')",
            "'field \"actor\" must be an object'",
        ),
        (
            q.bad_string_list(f["granted"]),
            "'debugData.grantedScopes must be a list or a space/comma-separated string'",
        ),
        (
            "principal IS NULL AND credential_id IS NULL AND client_id IS NULL",
            "'no actor: none of actor.alternateId, actor.displayName, actor.id, "
            "requestApiTokenId or client.id'",
        ),
    ]


def looks_like_okta(record: dict[str, Any] | None) -> bool:
    """An Okta LogEvent: an `actor` object, an event type, and Okta's own envelope fields."""
    if not isinstance(record, dict) or "class_uid" in record:
        return False
    if str(record.get("p_log_type", "")).lower().startswith("okta."):
        return True
    actor = record.get("actor")
    has_event_type = any(key in record for key in ("eventType", "eventtype"))
    envelope = any(
        key in record
        for key in (
            "published",
            "uuid",
            "legacyEventType",
            "legacyeventtype",
            "displayMessage",
            "displaymessage",
        )
    )
    return (
        isinstance(actor, dict)
        and bool({"alternateId", "type"} & set(actor))
        and has_event_type
        and envelope
    )
