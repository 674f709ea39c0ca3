"""OCSF events: API Activity (class 6003) and Authentication (class 3002).

The Open Cybersecurity Schema Framework is what AWS Security Lake and several SIEMs and
pipelines emit whatever the original source. An OCSF event names its class in `class_uid`;
API Activity puts who called in `actor` (`actor.user`, `actor.session`, `actor.app_*`), what was
called in `api`, and the HTTP request in `http_request`; Authentication puts the authenticated
identity in `user` and its session in `session`. Events of other classes in the same file are
counted rejections. See docs/formats/ocsf.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import StagedLoad, map_records

API_ACTIVITY, AUTHENTICATION = 6003, 3002
SUPPORTED_CLASSES = (API_ACTIVITY, AUTHENTICATION)


def _subject(field: str) -> tuple[str, ...]:
    """Authentication's `user.X` first (the identity authenticated), then `actor.user.X`."""
    return (f"user.{field}", f"actor.user.{field}")


def _session(field: str) -> tuple[str, ...]:
    return (f"session.{field}", f"actor.session.{field}")


FIELDS = q.JsonFields(
    {
        "class_uid": "class_uid",
        "time": ("time", "time_dt"),
        "actor_user_name": "actor.user.name",
        "actor_user_uid": "actor.user.uid",
        "actor_user_email": "actor.user.email_addr",
        "actor_user_type": "actor.user.type",
        "actor_user_type_id": "actor.user.type_id",
        "actor_credential": "actor.user.credential_uid",
        "subject_name": _subject("name"),
        "subject_uid": _subject("uid"),
        "subject_email": _subject("email_addr"),
        "subject_type": _subject("type"),
        "subject_type_id": _subject("type_id"),
        "subject_credential": _subject("credential_uid"),
        "app_name": "actor.app_name",
        "app_uid": "actor.app_uid",
        "session_uid": _session("uid"),
        "session_credential": _session("credential_uid"),
        "session_created": (*_session("created_time"), *_session("created_time_dt")),
        "session_expires": (*_session("expiration_time"), *_session("expiration_time_dt")),
        "operation": "api.operation",
        "activity_name": "activity_name",
        "type_name": "type_name",
        "resource": (
            "$.resources[0].uid",
            "$.resources[0].name",
            "api.service.name",
            "service.name",
            "dst_endpoint.svc_name",
            "dst_endpoint.hostname",
        ),
        "status": ("status", "status_code", "api.response.code"),
        "status_id": "status_id",
        "ip": "src_endpoint.ip",
        "user_agent": "http_request.user_agent",
        "trace": "metadata.correlation_uid",
    }
)

SERVICE_TYPES = "system|service|app|machine|bot|workload|managed"
HUMAN_TYPES = ("user", "admin", "identitycenteruser")


class OcsfAdapter(StagedLoad):
    name: ClassVar[str] = "ocsf"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "OCSF API Activity (6003) and Authentication (3002) events, e.g. from AWS Security Lake"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "time (epoch ms), else time_dt"),
        ("(class)", "class_uid 6003 or 3002; any other class is a counted rejection"),
        (
            "principal",
            "3002: user.name/uid/email_addr; 6003: actor.user.name/uid/email_addr; "
            "else actor.app_name",
        ),
        (
            "principal_type",
            "user.type_id 3 (System) or a service-like type -> service; "
            "type_id 1/2 (User/Admin) -> human",
        ),
        ("client_id", "actor.app_uid"),
        ("credential_id", "user.credential_uid, else session.credential_uid"),
        ("credential_type", "aws_access_key (AKIA...) | aws_session (ASIA...)"),
        (
            "credential_issued_at / _expires_at",
            "session.created_time / expiration_time, when the session carries a credential_uid",
        ),
        ("action", "api.operation, else activity_name, else type_name"),
        ("resource", "resources[0].uid/name, else api.service.name, service.name, dst_endpoint"),
        ("outcome / status", "status_id 1 success, 2 failure; status, status_code"),
        ("source_ip", "src_endpoint.ip"),
        ("user_agent", "http_request.user_agent"),
        ("trace_id", "metadata.correlation_uid (not a request's uid: it names one call)"),
        ("session_id", "actor.session.uid (3002: session.uid)"),
        ("leaked_secret", "secret patterns anywhere in the event"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return looks_like_ocsf(sample.first_record)

    def map_staged(self, ctx: LoadContext) -> None:
        map_records(ctx, _columns(), _checks(), prelude=FIELDS.prelude(), leak_scope="rec")


def _columns() -> dict[str, str]:
    f = FIELDS
    is_auth = f"(_class = {AUTHENTICATION})"

    def who(subject: str, actor: str) -> str:
        """In Authentication the identity is `user`; in API Activity it is `actor.user`."""
        return f"CASE WHEN {is_auth} THEN {f.text(subject)} ELSE {f.text(actor)} END"

    user_type = f"lower({who('subject_type', 'actor_user_type')})"
    type_id = f"try_cast({who('subject_type_id', 'actor_user_type_id')} AS INTEGER)"
    credential = who("subject_credential", "actor_credential")
    session_credential = f.text("session_credential")
    return {
        "_class": f"try_cast({f.text('class_uid')} AS INTEGER)",
        "ts": f.timestamp("time"),
        "_user": (
            f"coalesce({who('subject_name', 'actor_user_name')}, "
            f"{who('subject_uid', 'actor_user_uid')}, {who('subject_email', 'actor_user_email')})"
        ),
        "principal": f"coalesce(_user, {f.text('app_name')})",
        "principal_type": (
            f"CASE WHEN principal IS NULL THEN NULL "
            f"WHEN _user IS NULL THEN 'service' "
            f"WHEN {type_id} = 3 OR regexp_matches({user_type}, '{SERVICE_TYPES}') "
            f"THEN 'service' "
            f"WHEN {type_id} IN (1, 2) OR {user_type} IN {q.text_list(HUMAN_TYPES)} THEN 'human' "
            f"ELSE 'unknown' END"
        ),
        "client_id": f.text("app_uid"),
        "credential_id": f"coalesce({credential}, {session_credential})",
        "credential_type": (
            "CASE WHEN regexp_full_match(credential_id, 'AKIA[A-Z0-9]{12,}') "
            "THEN 'aws_access_key' "
            "WHEN regexp_full_match(credential_id, 'ASIA[A-Z0-9]{12,}') "
            "THEN 'aws_session' END"
        ),
        "token_fp": "NULL::VARCHAR",
        "raw_token": "NULL::VARCHAR",
        "on_behalf_of": "NULL::VARCHAR",
        "act_chain": "NULL::VARCHAR[]",
        "action": (
            f"coalesce({f.text('operation')}, {f.text('activity_name')}, {f.text('type_name')})"
        ),
        "resource": f.text("resource"),
        "scopes_used": "NULL::VARCHAR[]",
        "scopes_granted": "NULL::VARCHAR[]",
        "status": f.text("status"),
        "outcome": (
            f"CASE try_cast({f.text('status_id')} AS INTEGER) WHEN 1 THEN 'success' "
            f"WHEN 2 THEN 'failure' ELSE {q.outcome('status')} END"
        ),
        "source_ip": f.text("ip"),
        "user_agent": f.text("user_agent"),
        "trace_id": f.text("trace"),
        "session_id": f.text("session_uid"),
        "task_id": "NULL::VARCHAR",
        "principal_id": "NULL::VARCHAR",
        "credential_issued_at": (
            f"CASE WHEN {session_credential} IS NOT NULL THEN {f.timestamp('session_created')} END"
        ),
        "credential_expires_at": (
            f"CASE WHEN {session_credential} IS NOT NULL THEN {f.timestamp('session_expires')} END"
        ),
        **q.leak_columns(),
    }


def _checks() -> list[tuple[str, str]]:
    f = FIELDS
    return [
        (
            f"_class IS NULL OR _class NOT IN {SUPPORTED_CLASSES}",
            f"'OCSF class ' || {q.shown(f.text('class_uid'))} || "
            "' is neither API Activity (6003) nor Authentication (3002)'",
        ),
        (f"NOT {f.present('time')}", "'missing time'"),
        ("ts IS NULL", "'unparseable time: ' || " + q.shown(f"{f['time']}::VARCHAR")),
        (
            "principal IS NULL AND credential_id IS NULL AND client_id IS NULL",
            "'no identity: no user, actor.user, actor.app_name or credential_uid'",
        ),
    ]


def looks_like_ocsf(record: dict[str, Any] | None) -> bool:
    """An OCSF event: an integer `class_uid` and OCSF's `metadata` object (version, product)."""
    if not isinstance(record, dict):
        return False
    class_uid = record.get("class_uid")
    metadata = record.get("metadata")
    return (
        isinstance(class_uid, int)
        and not isinstance(class_uid, bool)
        and isinstance(metadata, dict)
        and bool({"version", "product"} & set(metadata))
    )
