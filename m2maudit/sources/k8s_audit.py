"""Kubernetes API server audit log (`audit.k8s.io/v1` `Event`), self-hosted or managed.

Read as JSON lines (the log backend), a JSON array, an `EventList` (the webhook backend), and
inside cloud envelopes: AKS diagnostic records (`properties.log`, an object or a JSON string,
batched under `records`), EKS audit logs exported from CloudWatch Logs (`logEvents[].message`
or a bare `message` string). Panther's renamed `user.extra` keys are read too.

The caller is `user`; with impersonation, `impersonatedUser` is whose authority the call used.
On EKS a caller that signed in with AWS credentials is named by its IAM identity
(`user.extra.canonicalArn`), as CloudTrail names it: the Kubernetes user name is only what the
cluster maps that identity to, and one AWS key used by `kubectl` and by the AWS API is one
principal's, not a key shared by two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.secrets import REDACTION_WORDS
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import InputFile, Kind, LoadContext, Sample
from m2maudit.sources.envelopes import (
    ENVELOPE_FIELDS,
    candidate_events,
    stage_events,
    stage_events_together,
    unwrap_prelude,
)
from m2maudit.sources.lifetimes import propagate_issued_lifetimes
from m2maudit.sources.staging import StagedLoad, map_records

BATCH_KEYS = ("items", "records", "logEvents", "events")
SERVICE_ACCOUNT = "system:serviceaccount:"


# The event's JSON: opened from its envelope (`ev`), else the record itself.
EVENT_JSON = "coalesce(ev::VARCHAR, rec)"
# The bodies that hold a Secret's values (`_secret_values`), taken out of the event...
_SECRET_BODIES = (
    '{"requestObject": {"data": null, "stringData": null}, '
    '"responseObject": {"data": null, "items": null}}'
)
# ...and put back as their values alone, with what else a SecretList's items and a JSON
# Patch's operations carry.
_SECRET_VALUE_PATHS = (
    "$.requestObject.data.*",
    "$.requestObject.stringData.*",
    "$.responseObject.data.*",
    "$.responseObject.items[*].data.*",
    "$.responseObject.items[*].metadata",
    "$.requestObject[*].value.*",
)


def _leak_scope() -> str:
    """What the leak check reads: the event, else (a line that is not one) the record. In an
    event that holds a Secret, its values without their keys: the Secret's fingerprint is
    that secret, and a key named `password` or `api_key` made the value one more secret
    (its base64 and plain forms two), while a JWT in `stringData` is still a JWT."""
    values = [f"json_extract({EVENT_JSON}, '{path}')" for path in _SECRET_VALUE_PATHS]
    patch_strings = (
        f"list_filter(json_extract({EVENT_JSON}, '$.requestObject[*].value'), "
        "lambda v: json_type(v) = 'VARCHAR')"
    )
    kept = f"json_merge_patch({EVENT_JSON}, '{_SECRET_BODIES}')::VARCHAR"
    return (
        f"CASE WHEN len(secret_values) > 0 THEN {kept} || chr(10) || "
        f"list_concat({', '.join(values)}, {patch_strings})::JSON::VARCHAR "
        f"ELSE {EVENT_JSON} END"
    )


def _extra(key: str) -> tuple[str, str]:
    """A `user.extra` key, as Kubernetes writes it and as Panther renames it."""
    panther = key.replace(".", "_").replace("/", "_slash_")
    return (f'$.user.extra."{key}"', f'$.user.extra."{panther}"')


_FIELDS: dict[str, str | tuple[str, ...]] = {
    "kind": "$.kind",
    "api_version": "$.apiVersion",
    "stage": "$.stage",
    "audit_id": "$.auditID",
    "time": ("$.requestReceivedTimestamp", "$.stageTimestamp", "$.p_event_time"),
    "verb": "$.verb",
    "request_uri": "$.requestURI",
    "username": "$.user.username",
    "credential_id": _extra("authentication.kubernetes.io/credential-id"),
    "pod_name": _extra("authentication.kubernetes.io/pod-name"),
    "aws_access_key": "$.user.extra.accessKeyId",
    "aws_session": "$.user.extra.sessionName",
    "iam_arn": "$.user.extra.canonicalArn",
    "uid": "$.user.uid",
    "impersonated": "$.impersonatedUser.username",
    "source_ip": "$.sourceIPs[0]",
    "user_agent": "$.userAgent",
    "resource": "$.objectRef.resource",
    "subresource": "$.objectRef.subresource",
    "namespace": "$.objectRef.namespace",
    "name": "$.objectRef.name",
    "api_group": "$.objectRef.apiGroup",
    "code": "$.responseStatus.code",
    "decision": '$.annotations."authorization.k8s.io/decision"',
    "issued_credential": '$.annotations."authentication.kubernetes.io/issued-credential-id"',
    "token_expiry": "$.responseObject.status.expirationTimestamp",
    "token_seconds": "$.requestObject.spec.expirationSeconds",
    "gke_payload": "$.protoPayload",
    **ENVELOPE_FIELDS,
}
SLOTS = q.json_slots(_FIELDS)
JSON_SLOTS = ("time", "token_expiry", "gke_payload")


def looks_like_k8s_audit(event: dict[str, Any]) -> bool:
    """An audit `Event`: its kind and API version, or a verb with a user and an object."""
    api_version = str(event.get("apiVersion", ""))
    if event.get("kind") == "Event" and api_version.startswith("audit.k8s.io"):
        return True
    if event.get("kind") == "EventList" and api_version.startswith("audit.k8s.io"):
        return True
    keys = set(event)
    return {"verb", "user"} <= keys and bool(keys & {"objectRef", "requestURI", "auditID"})


class K8sAuditAdapter(StagedLoad):
    name: ClassVar[str] = "k8s-audit"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "Kubernetes audit log (audit.k8s.io/v1 Event): JSON lines, EventList, and the AKS "
        "(properties.log) and EKS (CloudWatch Logs) envelopes"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "requestReceivedTimestamp, else stageTimestamp"),
        (
            "principal",
            "user.username (the authenticated caller); EKS callers signed in with AWS "
            "credentials: user.extra.canonicalArn (the IAM user or role, as CloudTrail names it)",
        ),
        (
            "principal_id",
            "EKS callers signed in with AWS credentials: the IAM user's or role's unique id "
            "(user.uid aws-iam-authenticator:ACCOUNT:ID)",
        ),
        (
            "principal_type",
            "infrastructure_patterns: service; "
            "agent_patterns: agent; system:serviceaccount:*: service; "
            "system:anonymous / system:unauthenticated: unknown; other system:*, "
            "eks:*, aksService: service; service_patterns: service; human_patterns: "
            "human; other users (Kubernetes 'normal users'): human",
        ),
        (
            "credential_id",
            "user.extra[authentication.kubernetes.io/credential-id] (JTI=... for "
            "bound service-account tokens, X509SHA256=... for certificates); "
            "EKS: user.extra.accessKeyId",
        ),
        (
            "credential_type",
            "k8s_service_account_token, k8s_client_certificate, k8s_token, or "
            "aws_access_key / aws_session for EKS IAM callers",
        ),
        (
            "on_behalf_of",
            "impersonatedUser.username when it is a human (the caller acted with "
            "that person's authority); else for an EKS caller named by its IAM identity, "
            "user.username when it is a human's",
        ),
        (
            "act_chain",
            "[user.username] when impersonating a human; [user.username, "
            "impersonatedUser.username] when impersonating a machine",
        ),
        (
            "action",
            "verb + ' ' + objectRef.resource[/subresource] (e.g. 'get secrets', "
            "'create serviceaccounts/token'); non-resource calls: verb + ' ' + path",
        ),
        ("resource", "namespaces/NS/RESOURCE[.GROUP]/NAME[/SUBRESOURCE], else the URI path"),
        ("scopes_used", "[action]: the RBAC verb on the resource the call needed"),
        (
            "outcome",
            "responseStatus.code 2xx/3xx: success, 4xx/5xx: failure; without a code, "
            "the authorization decision forbid: failure",
        ),
        ("status", "responseStatus.code, else the authorization decision"),
        ("source_ip", "sourceIPs[0] (the client; later entries are proxies)"),
        ("user_agent", "userAgent"),
        ("trace_id", "not in the log (auditID names one request, not a task)"),
        (
            "session_id",
            "user.extra[authentication.kubernetes.io/pod-name] (the pod whose token "
            "was used); EKS: user.extra.sessionName",
        ),
        (
            "credential_issued_at",
            "from the TokenRequest that issued the token "
            "(annotations[authentication.kubernetes.io/"
            "issued-credential-id])",
        ),
        (
            "credential_expires_at",
            "that TokenRequest's responseObject.status.expirationTimestamp, "
            "else its requestObject.spec.expirationSeconds",
        ),
        (
            "leaked_secret",
            "secret patterns anywhere in the event (e.g. a token in a RequestResponse-level body)",
        ),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return any(looks_like_k8s_audit(event) for event in candidate_events(sample.first_record))

    def stage_file(self, ctx: LoadContext) -> None:
        stage_events(ctx, BATCH_KEYS)

    def stage_files(self, ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]]) -> bool:
        return stage_events_together(ctx, members, BATCH_KEYS)

    def map_staged(self, ctx: LoadContext) -> None:
        layers = unwrap_prelude(SLOTS, ("kind", "verb", "username"))
        layers.append(SLOTS.named_columns(JSON_SLOTS))
        layers.append(_names())
        layers.append(_kinds(ctx.config))
        map_records(ctx, _columns(), _checks(), layers, leak_scope=_leak_scope())
        fold_stages(ctx)
        propagate_issued_lifetimes(ctx)


# A request is logged at each stage its policy keeps: `RequestReceived`, `ResponseStarted`
# (long-running requests such as `watch`), then `ResponseComplete` or `Panic`.
_STAGE_RANK = "CASE t_stage WHEN 'RequestReceived' THEN 1 WHEN 'ResponseStarted' THEN 2 ELSE 3 END"


def fold_stages(ctx: LoadContext) -> None:
    """Keep one row a request: drop each stage of a request that a later stage of it, loaded
    from the same file, follows. The later stage repeats the request and adds the response,
    so a policy that does not omit `RequestReceived` counted every call twice.

    A request is its `auditID` with the time it was received, its caller and its action,
    which every stage repeats: a client may send its own `Audit-ID` header, and several
    requests may share one. One set-based DELETE over `_mapped`, as Vault's requests are
    folded into responses."""
    batch = ", source_file" if ctx.batch_files else ""
    ctx.con.execute(
        f"""
        DELETE FROM _mapped WHERE rowid IN (
            SELECT rowid FROM (
                SELECT rowid, stage_rank < max(stage_rank) FILTER (reject_reason IS NULL)
                    OVER (PARTITION BY request_id, ts, principal, action{batch}) AS earlier
                FROM _mapped WHERE request_id IS NOT NULL
            ) WHERE earlier
        )
        """
    )


def _names() -> dict[str, str]:
    """Values several columns share: extra values (lists of one string), the resource."""
    resource = "t_resource || CASE WHEN t_api_group IS NOT NULL THEN '.' || t_api_group ELSE '' END"
    return {
        "ts": q.json_timestamp("j_time"),  # a column of its own: checks and lifetimes reuse it
        "cred_id": q.json_first_text(SLOTS.get("credential_id")),
        "pod": q.json_first_text(SLOTS.get("pod_name")),
        "aws_key": q.json_first_text(SLOTS.get("aws_access_key")),
        "aws_session_name": q.json_first_text(SLOTS.get("aws_session")),
        "iam_arn": q.json_first_text(SLOTS.get("iam_arn")),
        "secret_values": _secret_values(),
        "rbac": (
            "CASE WHEN t_resource IS NOT NULL "
            "THEN t_resource || coalesce('/' || t_subresource, '') "
            "ELSE nullif(split_part(t_request_uri, '?', 1), '') END"
        ),
        "object_path": (
            f"CASE WHEN t_resource IS NOT NULL THEN concat_ws('/', "
            f"'namespaces/' || t_namespace, {resource}, t_name, t_subresource) "
            f"ELSE nullif(split_part(t_request_uri, '?', 1), '') END"
        ),
    }


def _secret_values() -> str:
    """`k8s_secret:fingerprint` of each Secret the event holds: an audit policy that logs
    `secrets` above `Metadata` level writes their values in clear (base64 is no cipher), and
    no pattern tells base64 from other text. One fingerprint a Secret (of its keys and
    decoded values), so a Secret read, listed and updated unchanged is one finding, and a
    value changed is a new one."""
    as_map = "try(json_transform({}, '\"MAP(VARCHAR, VARCHAR)\"'))"
    request = _secret_fp(
        as_map.format(f"json_extract({EVENT_JSON}, '$.requestObject.data')"),
        as_map.format(f"json_extract({EVENT_JSON}, '$.requestObject.stringData')"),
    )
    response = _secret_fp(
        as_map.format(f"json_extract({EVENT_JSON}, '$.responseObject.data')"), "NULL"
    )
    listed = (  # a SecretList's items
        f"list_transform(json_extract({EVENT_JSON}, '$.responseObject.items[*].data'), "
        f"lambda item: {_secret_fp(as_map.format('item'), 'NULL')})"
    )
    patch = _secret_fp(_patched_values("/data"), _patched_values("/stringData"))
    return (
        "CASE WHEN t_resource = 'secrets' AND t_subresource IS NULL "
        "AND coalesce(t_api_group, '') = '' THEN list_sort(list_distinct(list_filter("
        f"list_concat([{request}, {response}, {patch}], {listed}), "
        "lambda fp: fp IS NOT NULL))) END"
    )


# A JSON Patch (RFC 6902) body, as `kubectl patch --type=json` sends one: a list of operations.
_PATCH_OPS = (
    f"try(from_json(json_extract({EVENT_JSON}, '$.requestObject'), "
    """'[{"op": "VARCHAR", "path": "VARCHAR", "value": "JSON"}]'))"""
)


def _patched_values(field: str) -> str:
    """SQL: the map of key to value a JSON Patch writes under `field` (`/data`,
    `/stringData`) of a Secret, by key (`/data/<key>`, `~1` for `/` and `~0` for `~`) or
    whole (`/data` with an object); empty when it writes none. A `test` carries the value it
    compares in clear too. The writes are applied in order, as the patch applies them: a key
    written twice keeps its last value, and a whole map replaces what came before it."""
    key = f"replace(replace(substr(o.path, {len(field) + 2}), '~1', '/'), '~0', '~')"
    writes = (
        f"list_filter({_PATCH_OPS}, lambda o: o.op IN ('add', 'replace', 'test') "
        f"AND (o.path = '{field}' OR starts_with(o.path, '{field}/')))"
    )
    empty = "MAP {}::MAP(VARCHAR, VARCHAR)"
    whole = """try(json_transform(o.value, '"MAP(VARCHAR, VARCHAR)"'))"""
    steps = (
        f"list_transform({writes}, lambda o: {{'whole': o.path = '{field}', 'map': "
        f"CASE WHEN o.path = '{field}' THEN {whole} ELSE map([{key}], [o.value ->> '$']) END}})"
    )
    applied = (
        f"list_reduce(list_prepend({{'whole': true, 'map': {empty}}}, coalesce({steps}, [])), "
        "lambda done, step: {'whole': step.whole, 'map': CASE WHEN step.whole "
        f"THEN coalesce(step.map, {empty}) ELSE map_concat(done.map, step.map) END}})"
    )
    return f"({applied}).map"


# A value a log pipeline put in a secret's place: `***`, `<redacted>`, `[REDACTED]`,
# `${VAR}`, or a word saying so (`REDACTED` is base64 too; `secrets.REDACTION_WORDS`).
_PLACEHOLDER = rf"^[*<\[{{($%]|^(?i:\W*({REDACTION_WORDS})\W*)$"


def _secret_fp(base64_values: str, plain_values: str) -> str:
    """SQL: `k8s_secret:` and the fingerprint of one Secret's values (maps of key to value:
    `data`, base64, and `stringData`, plain), NULL when it has none. A `data` value that is
    not base64 cannot be one Kubernetes wrote (it refuses them): a pipeline's redaction."""

    def values(of: str, kept: str) -> str:  # its entries with a value, not a placeholder
        return (
            f"list_filter(map_entries(coalesce({of}, MAP {{}})), lambda e: e.value <> '' "
            f"AND NOT regexp_matches(e.value, '{_PLACEHOLDER}') AND {kept})"
        )

    decoded = "try(from_base64(e.value))"
    entries = (
        f"list_concat(list_transform({values(base64_values, f'{decoded} IS NOT NULL')}, "
        f"lambda e: e.key || '=' || sha256({decoded})), "
        f"list_transform({values(plain_values, 'true')}, "
        "lambda e: e.key || '=' || sha256(e.value)))"
    )
    return (
        f"CASE WHEN len({entries}) > 0 THEN 'k8s_secret:' || "
        f"left(sha256(array_to_string(list_sort({entries}), chr(10))), 16) END"
    )


def _kind_of(user: str, config: Config) -> str:
    """agent | service | human | unknown for one Kubernetes user name. On EKS too the user
    name decides: an IAM role's name says little (an Identity Center role is people's, a
    node's role is a node's), and the config's service patterns name every role a service."""
    return (
        f"CASE WHEN {user} IS NULL THEN NULL "
        f"WHEN {q.matches_any([user], config.infrastructure_patterns)} THEN 'service' "
        f"WHEN {q.matches_any([user], config.agent_patterns)} THEN 'agent' "
        f"WHEN starts_with({user}, '{SERVICE_ACCOUNT}') THEN 'service' "
        f"WHEN {user} IN ('system:anonymous', 'system:unauthenticated') THEN 'unknown' "
        f"WHEN starts_with({user}, 'system:') OR starts_with({user}, 'eks:') "
        f"OR {user} = 'aksService' THEN 'service' "
        f"WHEN {q.matches_any([user], config.service_patterns)} THEN 'service' "
        f"WHEN {q.matches_any([user], config.human_patterns)} THEN 'human' "
        f"ELSE 'human' END"
    )


def _kinds(config: Config) -> dict[str, str]:
    return {
        "kind": _kind_of("t_username", config),
        "impersonated_kind": _kind_of("t_impersonated", config),
        "caller": "coalesce(iam_arn, t_username)",
    }


def _columns() -> dict[str, str]:
    code = "t_code"
    issued = q.json_first_text(SLOTS.get("issued_credential"))
    return {
        "ts": "ts",
        "principal": "caller",
        "principal_type": "kind",
        "client_id": "NULL::VARCHAR",
        "credential_id": "coalesce(cred_id, aws_key)",
        "credential_type": (
            f"CASE WHEN starts_with(cred_id, 'X509SHA256=') THEN 'k8s_client_certificate' "
            f"WHEN starts_with(t_username, '{SERVICE_ACCOUNT}') THEN 'k8s_service_account_token' "
            f"WHEN cred_id IS NOT NULL THEN 'k8s_token' "
            f"WHEN starts_with(aws_key, 'AKIA') THEN 'aws_access_key' "
            f"WHEN aws_key IS NOT NULL THEN 'aws_session' END"
        ),
        "token_fp": "NULL::VARCHAR",
        # The person a call was for: an impersonated person, else on EKS the person whose
        # IAM identity signed the call, by the user name the cluster gives them (as
        # CloudTrail names the person of an Identity Center session).
        "on_behalf_of": (
            "CASE WHEN impersonated_kind = 'human' THEN t_impersonated "
            "WHEN iam_arn IS NOT NULL AND kind = 'human' AND t_username <> iam_arn "
            "THEN t_username END"
        ),
        "act_chain": (
            "CASE WHEN t_impersonated IS NULL THEN NULL "
            "WHEN impersonated_kind = 'human' THEN [caller] "
            "ELSE list_filter([caller, t_impersonated], lambda u: u IS NOT NULL) END"
        ),
        "action": "CASE WHEN t_verb IS NOT NULL THEN concat_ws(' ', t_verb, rbac) END",
        "resource": "object_path",
        "scopes_used": "CASE WHEN action IS NOT NULL THEN [action] END",
        "scopes_granted": "NULL::VARCHAR[]",
        "outcome": (
            f"CASE WHEN {code} IS NOT NULL THEN {q.outcome(code)} "
            f"WHEN lower(t_decision) = 'forbid' THEN 'failure' ELSE 'unknown' END"
        ),
        "status": f"coalesce({code}, t_decision)",
        "source_ip": "t_source_ip",
        "user_agent": "t_user_agent",
        # auditID names one request (and its stages): it ties no task's calls together.
        "trace_id": "NULL::VARCHAR",
        "session_id": "coalesce(pod, aws_session_name)",
        "task_id": "NULL::VARCHAR",
        # IAM's unique id of the user or role (as CloudTrail's), from the authenticator's uid
        # `aws-iam-authenticator:ACCOUNT:AIDA...`: a user renamed keeps it.
        "principal_id": (
            "CASE WHEN iam_arn IS NOT NULL THEN nullif(regexp_extract(t_uid, '^(?:aws-iam-"
            "authenticator|heptio-authenticator-aws):[0-9]+:(A[A-Z0-9]+)$', 1), '') END"
        ),
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        **q.leak_columns(found_otherwise="secret_values"),
        # Staging only (not stored): the request and its stage, to keep one row a request
        # (`fold_stages`); a TokenRequest's issued token, for lifetimes.
        "request_id": "t_audit_id",
        "stage_rank": _STAGE_RANK,
        "issued_credential_id": f"CASE WHEN outcome <> 'failure' THEN {issued} END",
        "issued_at": "CASE WHEN issued_credential_id IS NOT NULL THEN ts END",
        "issued_expires_at": (
            "CASE WHEN issued_credential_id IS NOT NULL THEN coalesce("
            f"{q.json_timestamp('j_token_expiry')}, "
            "ts + to_seconds(try_cast(t_token_seconds AS BIGINT))) END"
        ),
    }


def _checks() -> list[tuple[str, str]]:
    return [
        (
            "j_gke_payload IS NOT NULL",
            "'a GKE Cloud Audit Log entry (protoPayload): load it as its own gcp-audit file'",
        ),
        (
            "json_type(j_time) IS NULL OR json_type(j_time) = 'NULL'",
            "'missing requestReceivedTimestamp (and stageTimestamp)'",
        ),
        ("ts IS NULL", "'unparseable requestReceivedTimestamp: ' || " + q.shown("j_time::VARCHAR")),
        ("principal IS NULL", "'missing user.username'"),
    ]
