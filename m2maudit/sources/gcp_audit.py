"""Google Cloud Audit Logs: `LogEntry` records whose `protoPayload` is an `AuditLog`.

Read as exported to Cloud Storage or by `gcloud logging read --format=json` (JSON lines, JSON
arrays, single pretty-printed entries), including GKE's Kubernetes audit entries, and with the
lower-cased top-level keys of some SIEM exports (`protopayload`, `insertid`).

`authenticationInfo.principalEmail` is who made the call; `serviceAccountDelegationInfo` lists
who delegated to it, the original authority first (as the AuditLog proto documents).
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import StagedLoad, map_records

_AUTH = "$.protoPayload.authenticationInfo"
_PATHS: dict[str, str | tuple[str, ...]] = {
    "time": ("$.timestamp", "$.p_event_time", "$.receiveTimestamp"),
    "payload": "$.protoPayload",
    "principal_email": f"{_AUTH}.principalEmail",
    "principal_subject": f"{_AUTH}.principalSubject",
    "key_name": f"{_AUTH}.serviceAccountKeyName",
    "delegation": f"{_AUTH}.serviceAccountDelegationInfo",
    "oauth_client": f"{_AUTH}.oauthInfo.oauthClientId",
    "method": "$.protoPayload.methodName",
    "resource_name": "$.protoPayload.resourceName",
    "authorization": "$.protoPayload.authorizationInfo",
    "status": "$.protoPayload.status",
    "status_code": "$.protoPayload.status.code",
    "caller_ip": (
        "$.protoPayload.requestMetadata.callerIp",
        "$.protoPayload.requestMetadata.callerIP",
    ),
    "user_agent": "$.protoPayload.requestMetadata.callerSuppliedUserAgent",
    "trace": "$.trace",
    "operation_id": "$.operation.id",
}


def _slots() -> q.Slots:
    fields: dict[str, tuple[str, ...]] = {}
    for name, paths in _PATHS.items():
        options = (paths,) if isinstance(paths, str) else paths
        fields[name] = tuple(
            variant for path in options for variant in q.lowercase_variants(path, True)
        )
    return q.json_slots(fields)


SLOTS = _slots()
JSON_SLOTS = ("time", "payload", "delegation", "authorization", "status")
SUBJECT_PREFIX = r"^(user|serviceAccount|group|domain):"


def looks_like_gcp_audit(event: dict[str, Any]) -> bool:
    """A LogEntry with a `protoPayload` object (Cloud Audit Logs' AuditLog)."""
    payload = event.get("protoPayload", event.get("protopayload"))
    return isinstance(payload, dict)


class GcpAuditAdapter(StagedLoad):
    name: ClassVar[str] = "gcp-audit"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "Google Cloud Audit Logs (LogEntry with an AuditLog protoPayload), GKE included"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "timestamp, else receiveTimestamp"),
        (
            "principal",
            "authenticationInfo.principalEmail, else principalSubject (without its "
            "user:/serviceAccount: prefix)",
        ),
        (
            "principal_type",
            "infrastructure_patterns: service; "
            "agent_patterns: agent; *.gserviceaccount.com, system:*, "
            "workload identity pools: service; workforce pools, user:, "
            "service_patterns: service; human_patterns: human; else unknown; "
            "a serviceAccount: principalSubject or a service-account key: never human; "
            "a user: principalSubject (a Google user account): human",
        ),
        ("client_id", "authenticationInfo.oauthInfo.oauthClientId"),
        (
            "credential_id",
            "authenticationInfo.serviceAccountKeyName "
            "(//iam.googleapis.com/projects/P/serviceAccounts/SA/keys/KEY)",
        ),
        (
            "credential_type",
            "gcp_service_account_key with a key name; else gcp_oauth "
            "(short-lived OAuth or federated token)",
        ),
        (
            "on_behalf_of",
            "the first serviceAccountDelegationInfo entry (principalSubject or "
            "firstPartyPrincipal.principalEmail) when it is a human",
        ),
        (
            "act_chain",
            "principalEmail, then the delegation entries newest first (the human "
            "root, if any, is on_behalf_of instead)",
        ),
        ("action", "protoPayload.methodName"),
        ("resource", "protoPayload.resourceName"),
        ("scopes_used", "authorizationInfo[].permission (the IAM permissions checked)"),
        ("outcome", "status.code absent or 0: success; any other code: failure"),
        ("status", "status.code (google.rpc.Code: 7 PERMISSION_DENIED, 16 UNAUTHENTICATED...)"),
        ("source_ip", "requestMetadata.callerIp"),
        ("user_agent", "requestMetadata.callerSuppliedUserAgent"),
        ("trace_id", "trace, else operation.id (ties a long-running operation's entries)"),
        ("session_id", "not in the log"),
        ("credential_issued_at", "not in the log"),
        ("credential_expires_at", "not in the log"),
        ("leaked_secret", "secret patterns anywhere in the entry"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        record = sample.first_record
        return record is not None and looks_like_gcp_audit(record)

    def map_staged(self, ctx: LoadContext) -> None:
        layers = [
            {"v": SLOTS.extract("rec")},
            SLOTS.named_columns(JSON_SLOTS),
            _delegation(),
            {
                "name_kind": _kind_of("principal", ctx.config),
                "root_kind": _kind_of("delegators[1]", ctx.config),
            },
            {"kind": _caller_kind()},
        ]
        map_records(ctx, _columns(), _checks(), layers, leak_scope="rec")


def _subject(text: str) -> str:
    """A principal subject without its IAM member prefix (`user:`, `serviceAccount:`)."""
    return f"nullif(regexp_replace(trim({text}), '{SUBJECT_PREFIX}', ''), '')"


def _delegation() -> dict[str, str]:
    """The principal and its delegators, original authority first."""
    subject = _subject("(d ->> '$.principalSubject')")
    entry = f"coalesce({subject}, nullif(trim(d ->> '$.firstPartyPrincipal.principalEmail'), ''))"
    return {
        "ts": q.json_timestamp("j_time"),  # a column of its own: the checks reuse it
        "principal": f"coalesce(t_principal_email, {_subject('t_principal_subject')})",
        "delegators": (
            f"CASE WHEN json_type(j_delegation) = 'ARRAY' THEN list_filter(list_transform("
            f"from_json(j_delegation, '[\"JSON\"]'), lambda d: {entry}), "
            f"lambda p: p IS NOT NULL) END"
        ),
    }


def _caller_kind() -> str:
    """The caller's kind: by its name (`name_kind`), but a caller that Google says is a service
    account (`principalSubject: serviceAccount:...`) or that signed in with a service-account
    key is a machine whatever its e-mail looks like, and one Google says is a user account
    (`user:...`) a person: the name patterns read `claude.dupont@...` or a domain such as
    `travelagents.example` as an AI agent's."""
    machine = (
        "(coalesce(starts_with(trim(t_principal_subject), 'serviceAccount:'), false) "
        "OR t_key_name IS NOT NULL)"
    )
    user = "coalesce(starts_with(trim(t_principal_subject), 'user:'), false)"
    return (
        f"CASE WHEN {machine} AND name_kind NOT IN ('agent', 'service') THEN 'service' "
        f"WHEN {user} AND NOT {machine} THEN 'human' "
        "ELSE name_kind END"
    )


def _kind_of(principal: str, config: Config) -> str:
    """agent | service | human | unknown for one Google principal."""
    return (
        f"CASE WHEN {principal} IS NULL THEN NULL "
        f"WHEN {q.matches_any([principal], config.infrastructure_patterns)} THEN 'service' "
        f"WHEN {q.matches_any([principal], config.agent_patterns)} THEN 'agent' "
        f"WHEN ends_with({principal}, '.gserviceaccount.com') "
        f"OR starts_with({principal}, 'system:') "
        f"OR contains({principal}, '/workloadIdentityPools/') THEN 'service' "
        f"WHEN contains({principal}, '/workforcePools/') THEN 'human' "
        f"WHEN {q.matches_any([principal], config.service_patterns)} THEN 'service' "
        f"WHEN {q.matches_any([principal], config.human_patterns)} THEN 'human' "
        f"ELSE 'unknown' END"
    )


def _columns() -> dict[str, str]:
    human_root = "coalesce(root_kind = 'human', false)"
    return {
        "ts": "ts",
        "principal": "principal",
        "principal_type": "kind",
        "client_id": "t_oauth_client",
        "credential_id": "t_key_name",
        "credential_type": (
            "CASE WHEN t_key_name IS NOT NULL THEN 'gcp_service_account_key' "
            "WHEN principal IS NOT NULL THEN 'gcp_oauth' END"
        ),
        "token_fp": "NULL::VARCHAR",
        "on_behalf_of": f"CASE WHEN {human_root} THEN delegators[1] END",
        "act_chain": (
            f"CASE WHEN len(delegators) > 0 THEN [principal] || list_reverse("
            f"CASE WHEN {human_root} THEN delegators[2:] ELSE delegators END) END"
        ),
        "action": "t_method",
        "resource": "t_resource_name",
        "scopes_used": (
            "nullif(list_sort(list_distinct(list_filter(json_extract_string(j_authorization, "
            "'$[*].permission'), lambda p: p IS NOT NULL AND p <> ''))), [])"
        ),
        "scopes_granted": "NULL::VARCHAR[]",
        "outcome": (
            "CASE WHEN t_status_code IS NULL OR t_status_code = '0' THEN 'success' "
            "ELSE 'failure' END"
        ),
        "status": "t_status_code",
        "source_ip": "t_caller_ip",
        "user_agent": "t_user_agent",
        # Not insertId: it names one entry, and ties no task's calls together.
        "trace_id": "coalesce(t_trace, t_operation_id)",
        "session_id": "NULL::VARCHAR",
        "task_id": "NULL::VARCHAR",
        "principal_id": "NULL::VARCHAR",
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        **q.leak_columns(),
    }


def _checks() -> list[tuple[str, str]]:
    return [
        ("json_type(j_time) IS NULL OR json_type(j_time) = 'NULL'", "'missing timestamp'"),
        ("ts IS NULL", "'unparseable timestamp: ' || " + q.shown("j_time::VARCHAR")),
        (
            "json_type(j_payload) IS DISTINCT FROM 'OBJECT'",
            "'no protoPayload: not a Cloud Audit Log entry'",
        ),
        (
            "principal IS NULL",
            "'no principal in protoPayload.authenticationInfo (principalEmail, principalSubject)'",
        ),
    ]
