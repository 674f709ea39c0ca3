"""Microsoft Entra ID sign-in logs (and, best effort, directory audit logs).

Read in the two shapes Microsoft emits: the Azure Monitor diagnostic export (an envelope with
`time`, `category`, `operationName` and the sign-in under `properties`; Event Hub batches
wrap them in `{"records": [...]}`) and the Microsoft Graph `signIns` resource (flat records,
or a `{"value": [...]}` page). Service-principal and managed-identity sign-ins are the machine
credentials: `servicePrincipalId`/`appId`, `clientCredentialType` and
`servicePrincipalCredentialKeyId` name the principal, the kind of secret and which one.
See docs/formats/entra-signin.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import map_records, stage, stage_json_document


def _prop(field: str, *more: str) -> tuple[str, ...]:
    """`properties.X` (Azure Monitor) then `X` (Graph), then any other spellings."""
    return (f"properties.{field}", field, *more)


_INIT = "properties.initiatedBy"
FIELDS = q.JsonFields(
    {
        "time": ("time", *_prop("createdDateTime"), *_prop("activityDateTime")),
        "category": "category",
        "properties": "properties",
        "operation": ("operationName", "operationname"),
        "sp_id": _prop("servicePrincipalId"),
        "sp_name": _prop("servicePrincipalName"),
        "app_id": _prop("appId"),
        "upn": _prop("userPrincipalName"),
        "user_id": _prop("userId"),
        "credential_kind": _prop("clientCredentialType"),
        "key_id": _prop("servicePrincipalCredentialKeyId"),
        "mi_type": _prop("managedIdentityType"),
        "event_types": _prop("signInEventTypes"),
        "resource_name": _prop("resourceDisplayName"),
        "resource_id_props": "properties.resourceId",
        "resource_id_flat": "resourceId",
        "error_code": (*_prop("status.errorCode"), "resultType", "resulttype"),
        "result": "properties.result",
        "ip": (
            *_prop("ipAddress"),
            "callerIpAddress",
            "calleripaddress",
            f"{_INIT}.user.ipAddress",
        ),
        "user_agent": _prop("userAgent"),
        "session": _prop("sessionId"),
        "activity": "properties.activityDisplayName",
        "initiated_by": _INIT,
        "init_upn": f"{_INIT}.user.userPrincipalName",
        "init_user_id": f"{_INIT}.user.id",
        "init_app_name": (f"{_INIT}.app.servicePrincipalName", f"{_INIT}.app.displayName"),
        "init_app_id": f"{_INIT}.app.appId",
        "init_sp_id": f"{_INIT}.app.servicePrincipalId",
        "target_name": "$.properties.targetResources[0].displayName",
        "target_id": "$.properties.targetResources[0].id",
    }
)

MACHINE_CATEGORIES = ("ServicePrincipalSignInLogs", "ManagedIdentitySignInLogs")
ENTRA_CATEGORIES = (
    "SignInLogs",
    "NonInteractiveUserSignInLogs",
    *MACHINE_CATEGORIES,
    "ADFSSignInLogs",
    "ProvisioningLogs",
    "AuditLogs",
    "MicrosoftGraphActivityLogs",
)
# clientCredentialType (Graph signIn resource) -> our credential type.
CREDENTIAL_KINDS: tuple[tuple[str, str], ...] = (
    ("clientsecret", "client_secret"),
    ("certificate", "client_certificate"),
    ("clientassertion", "client_assertion"),
    ("federatedidentitycredential", "federated_credential"),
    ("managedidentity", "managed_identity"),
)
_WRAPPERS = ("value", "records")


class EntraSignInAdapter:
    name: ClassVar[str] = "entra-signin"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "Microsoft Entra ID sign-in logs, incl. service principals and managed identities "
        "(Azure Monitor export or Graph signIns); directory audit logs best effort"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "time, else createdDateTime (else activityDateTime for audit logs)"),
        (
            "principal",
            "servicePrincipalName/servicePrincipalId (machine sign-ins); "
            "userPrincipalName/userId (users); initiatedBy.user/app (audit)",
        ),
        ("principal_id", "the principal's object id: servicePrincipalId, userId, initiatedBy's id"),
        (
            "principal_type",
            "service (agent by name: agent_patterns) for service-principal and managed-identity "
            "sign-ins and app-initiated audit events; human for users",
        ),
        ("client_id", "appId (audit: initiatedBy.app.appId)"),
        ("credential_id", "servicePrincipalCredentialKeyId (machine sign-ins)"),
        (
            "credential_type",
            "clientCredentialType: client_secret, client_certificate, "
            "client_assertion, federated_credential; managed_identity",
        ),
        ("action", "operationName (audit: activityDisplayName)"),
        ("resource", "resourceDisplayName, else resourceId (audit: first targetResource)"),
        (
            "outcome / status",
            "status.errorCode / resultType: 0 success, other failure (audit: result)",
        ),
        ("source_ip", "ipAddress, else callerIpAddress"),
        ("user_agent", "userAgent"),
        ("trace_id", "not in the log (correlationId names one sign-in request, not a task)"),
        ("session_id", "sessionId"),
        ("leaked_secret", "secret patterns anywhere in the record"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        record = sample.first_record
        return looks_like_entra(record) or _wrapper_key(record) is not None

    def load(self, ctx: LoadContext) -> None:
        wrapper = _wrapper_key(ctx.sample.first_record)
        if wrapper:
            stage_json_document(ctx, unwrap=wrapper)
        else:
            stage(ctx)
        map_records(
            ctx,
            self._columns(ctx.config),
            self._checks(),
            prelude=FIELDS.prelude(),
            leak_scope="rec",
        )

    @staticmethod
    def _columns(config: Config) -> dict[str, str]:
        f = FIELDS
        machine = q.machine_kind("principal", config.agent_patterns, config.infrastructure_patterns)
        category = f.text("category")
        event_types = q.json_string_list(f["event_types"])
        is_audit = (
            f"({f.present('initiated_by')} OR {f.present('activity')} OR {category} = 'AuditLogs')"
        )
        is_mi = (
            f"({category} = 'ManagedIdentitySignInLogs' "
            f"OR coalesce(lower({f.text('mi_type')}) NOT IN ('none', ''), false) "
            f"OR list_contains({event_types}, 'managedIdentity'))"
        )
        is_machine = (
            f"({is_mi} OR {category} IN {q.text_list(MACHINE_CATEGORIES)} "
            f"OR list_contains({event_types}, 'servicePrincipal') "
            f"OR ({f.text('upn')} IS NULL AND {f.text('user_id')} IS NULL "
            f"AND coalesce({f.text('sp_id')}, {f.text('sp_name')}) IS NOT NULL))"
        )
        credential_kind = f"lower({f.text('credential_kind')})"
        error_code = f.text("error_code")
        return {
            "_shape": (
                f"CASE WHEN {is_audit} THEN 'audit' WHEN {is_machine} THEN 'machine' "
                f"ELSE 'user' END"
            ),
            "ts": f.timestamp("time"),
            "principal": (
                f"CASE _shape WHEN 'audit' THEN coalesce({f.text('init_upn')}, "
                f"{f.text('init_app_name')}, {f.text('init_user_id')}, {f.text('init_sp_id')}, "
                f"{f.text('init_app_id')}) "
                f"WHEN 'machine' THEN coalesce({f.text('sp_name')}, {f.text('sp_id')}, "
                f"{f.text('app_id')}) "
                f"ELSE coalesce({f.text('upn')}, {f.text('user_id')}) END"
            ),
            # The object id of the one named, not of the app a user signed in to.
            "principal_id": (
                f"nullif(CASE WHEN principal IS NULL THEN NULL "
                f"WHEN _shape = 'audit' THEN CASE WHEN coalesce({f.text('init_upn')}, "
                f"{f.text('init_user_id')}) IS NOT NULL THEN {f.text('init_user_id')} "
                f"ELSE {f.text('init_sp_id')} END "
                f"WHEN _shape = 'machine' THEN {f.text('sp_id')} "
                f"ELSE {f.text('user_id')} END, '')"
            ),
            "principal_type": (
                f"CASE WHEN principal IS NULL THEN NULL "
                f"WHEN _shape = 'machine' THEN {machine} "
                f"WHEN _shape = 'audit' AND coalesce({f.text('init_upn')}, "
                f"{f.text('init_user_id')}) IS NULL THEN {machine} ELSE 'human' END"
            ),
            "client_id": (
                f"CASE _shape WHEN 'audit' THEN {f.text('init_app_id')} ELSE {f.text('app_id')} END"
            ),
            "credential_id": f"CASE WHEN _shape = 'machine' THEN {f.text('key_id')} END",
            "credential_type": (
                f"CASE WHEN _shape <> 'machine' THEN NULL "
                f"WHEN {is_mi} THEN 'managed_identity' "
                + " ".join(
                    f"WHEN {credential_kind} = '{kind}' THEN '{ours}'"
                    for kind, ours in CREDENTIAL_KINDS
                )
                + " WHEN credential_id IS NOT NULL THEN 'client_credential' END"
            ),
            "token_fp": "NULL::VARCHAR",
            "raw_token": "NULL::VARCHAR",
            "on_behalf_of": "NULL::VARCHAR",
            "act_chain": "NULL::VARCHAR[]",
            "action": (
                f"CASE _shape WHEN 'audit' THEN coalesce({f.text('activity')}, "
                f"{f.text('operation')}) "
                f"ELSE coalesce({f.text('operation')}, 'Sign-in activity') END"
            ),
            "resource": (
                f"CASE _shape WHEN 'audit' THEN coalesce({f.text('target_name')}, "
                f"{f.text('target_id')}) "
                f"ELSE coalesce({f.text('resource_name')}, {f.text('resource_id_props')}, "
                f"CASE WHEN NOT {f.present('properties')} THEN {f.text('resource_id_flat')} END) "
                f"END"
            ),
            "scopes_used": "NULL::VARCHAR[]",
            "scopes_granted": "NULL::VARCHAR[]",
            "status": f"coalesce({error_code}, {f.text('result')})",
            "outcome": (
                f"CASE WHEN try_cast({error_code} AS BIGINT) = 0 THEN 'success' "
                f"WHEN try_cast({error_code} AS BIGINT) IS NOT NULL THEN 'failure' "
                f"ELSE {q.outcome('status')} END"
            ),
            "source_ip": f.text("ip"),
            "user_agent": f.text("user_agent"),
            # correlationId is the client's id for one sign-in request: it ties no task's
            # calls together.
            "trace_id": "NULL::VARCHAR",
            "session_id": f.text("session"),
            "task_id": "NULL::VARCHAR",
            "credential_issued_at": "NULL::TIMESTAMPTZ",
            "credential_expires_at": "NULL::TIMESTAMPTZ",
            **q.leak_columns(),
        }

    @staticmethod
    def _checks() -> list[tuple[str, str]]:
        f = FIELDS
        return [
            (f"NOT {f.present('time')}", "'missing time / createdDateTime'"),
            (
                "ts IS NULL",
                "'unparseable time / createdDateTime: ' || " + q.shown(f"{f['time']}::VARCHAR"),
            ),
            (
                f"{f.present('properties')} AND json_type({f['properties']}) <> 'OBJECT'",
                "'field \"properties\" must be an object'",
            ),
            (q.bad_string_list(f["event_types"]), "'signInEventTypes must be a list'"),
            (
                "principal IS NULL AND client_id IS NULL AND credential_id IS NULL",
                "'no identity: no service principal, user, appId or initiatedBy'",
            ),
        ]


def looks_like_entra(record: dict[str, Any] | None) -> bool:
    """An Entra record: the Azure Monitor envelope with an Entra category, or a Graph signIn."""
    if not isinstance(record, dict) or "class_uid" in record:
        return False
    if isinstance(record.get("properties"), dict):
        resource = str(record.get("resourceId", record.get("resourceid", ""))).lower()
        return record.get("category") in ENTRA_CATEGORIES or "microsoft.aadiam" in resource
    keys = set(record)
    return (
        "createdDateTime" in keys
        and bool(keys & {"appId", "servicePrincipalId", "userPrincipalName"})
        and bool(keys & {"status", "ipAddress", "correlationId"})
    )


def _wrapper_key(record: dict[str, Any] | None) -> str | None:
    """`value` (a Graph page) or `records` (an Event Hub batch) holding Entra records."""
    if not isinstance(record, dict):
        return None
    for key in _WRAPPERS:
        items = record.get(key)
        if isinstance(items, list) and items and looks_like_entra(items[0]):
            return key
    return None
