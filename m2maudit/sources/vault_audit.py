"""HashiCorp Vault audit device log (file, socket or syslog device: one JSON entry a line).

Vault writes a `request` entry when a call arrives and a `response` entry when it returns,
both with the same `request.id`. One call is one event here: a response is kept, and a
request only when its response is absent (e.g. the log was cut). The token that made the
call is described under `auth`: its accessor (our credential id, safe to keep), display name,
policies (`root` is the broadest scope Vault has), type, TTL and issue time. Values Vault
HMACs (`hmac-sha256:...`) are not secrets. See docs/formats/vault-audit.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.fingerprint import fingerprint_sql
from m2maudit.secrets import (
    LEAK_TEXT,
    SECRET_TEXTS,
    all_secrets_sql,
    leaked_secret_fp_sql,
    secret_texts_sql,
)
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import map_records, stage


def _auth(field: str) -> tuple[str, ...]:
    """`auth.X`, else `response.auth.X` (a login's response describes the token it issued)."""
    return (f"auth.{field}", f"response.auth.{field}")


FIELDS = q.JsonFields(
    {
        "time": "time",
        "type": "type",
        "accessor": (*_auth("accessor"), "request.client_token_accessor"),
        "display_name": _auth("display_name"),
        "entity_id": _auth("entity_id"),
        "policies": _auth("policies"),
        "token_policies": _auth("token_policies"),
        "identity_policies": _auth("identity_policies"),
        "token_type": _auth("token_type"),
        "token_ttl": _auth("token_ttl"),
        "token_issue_time": _auth("token_issue_time"),
        # A `lookup-self` response describes the caller's own token (its creation and TTL).
        "self_issue_time": ("response.data.issue_time", "response.data.creation_time"),
        "self_ttl": "response.data.creation_ttl",
        "client_token": (*_auth("client_token"), "request.client_token"),
        "role": (
            "auth.metadata.role_name",
            "auth.metadata.role",
            "response.auth.metadata.role_name",
            "response.auth.metadata.role",
        ),
        "operation": "request.operation",
        "path": "request.path",
        "namespace": "request.namespace.path",
        "remote_address": "request.remote_address",
        "user_agent": '$.request.headers."user-agent"[0]',
        # Logged when the audit device is told to (sys/config/auditing/request-headers).
        "traceparent": "$.request.headers.traceparent[0]",
        "error": "error",
    }
)

# W3C trace context: version-traceid-parentid-flags, lower-case hex.
TRACEPARENT = "[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}"

# auth.display_name is "<auth mount>-<name>" (or just the mount): the mount tells who logs in.
SERVICE_MOUNTS = (
    "approle",
    "token",
    "kubernetes",
    "k8s",
    "aws",
    "gcp",
    "azure",
    "cert",
    "jwt",
    "cf",
    "alicloud",
    "oci",
    "nomad",
    "tls",
    "spiffe",
)
HUMAN_MOUNTS = ("ldap", "oidc", "userpass", "okta", "github", "radius", "saml")
RAW_VAULT_TOKEN = "^(hv[sbr]|[sbr])\\.[A-Za-z0-9_-]{20,}$"
HMAC_VALUE = "hmac-sha256:[0-9a-f]+"


class VaultAuditAdapter:
    name: ClassVar[str] = "vault-audit"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "HashiCorp Vault audit device log (JSON lines of request/response entries)"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "time"),
        ("(one event a call)", "the response entry; the request entry only without a response"),
        (
            "principal",
            "auth.display_name (approle: approle-<metadata.role_name>), else auth.entity_id",
        ),
        (
            "principal_type",
            "display_name mount: approle/token/kubernetes/aws/jwt/cert... -> "
            "service (agent by name); ldap/oidc/userpass/okta/github... -> human",
        ),
        ("client_id", "auth.metadata.role_name, else auth.metadata.role"),
        ("credential_id", "auth.accessor (HMAC'd or not), else request.client_token_accessor"),
        ("credential_type", "auth.token_type: vault_token (service) | vault_batch_token"),
        ("token_fp", "fingerprint of auth.client_token, only when logged in clear"),
        ("scopes_granted", "auth.policies (e.g. root), else token_policies + identity_policies"),
        (
            "credential_issued_at",
            "auth.token_issue_time; for auth/token/lookup-self, the response's "
            "data.issue_time (else data.creation_time)",
        ),
        (
            "credential_expires_at",
            "issued + auth.token_ttl seconds (TTL 0: none); for lookup-self, data.creation_ttl",
        ),
        ("action", "request.operation"),
        ("resource", "request.namespace.path + request.path"),
        ("outcome / status", "error (non-empty: failure); a response without error: success"),
        ("source_ip", "request.remote_address"),
        ("user_agent", "request.headers.user-agent (unless HMAC'd)"),
        (
            "trace_id",
            "the trace id of request.headers.traceparent, when Vault audits that header "
            "(request.id names one request, not a task)",
        ),
        ("leaked_secret", "a Vault token logged in clear (hvs./s. ...), or any secret pattern"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return looks_like_vault_audit(sample.first_record)

    def load(self, ctx: LoadContext) -> None:
        stage(ctx)
        fold_requests_into_responses(ctx)  # one event a call (docs/formats/vault-audit.md)
        map_records(
            ctx,
            _columns(ctx.config),
            _checks(),
            prelude=[FIELDS.prelude(), *_value_layers()],
            # HMAC'd values (`hmac-sha256:...`) look like secrets and are not: left out.
            leak_scope=f"regexp_replace(rec, '{HMAC_VALUE}', 'hmac', 'g')",
        )


def _value_layers() -> list[dict[str, str]]:
    """Values the columns use several times, each computed once in a layer of its own:
    DuckDB expands a nested expression at every use, and inline these made the mapping
    67 KB of SQL that took 0.3 s to plan for any file, however small."""
    f = FIELDS
    return [
        {
            "client_token": f.text("client_token"),
            "self_lookup": f"coalesce({f.text('path')} = 'auth/token/lookup-self', false)",
        },
        {
            "issued_at": (
                f"coalesce({f.timestamp('token_issue_time')}, "
                f"CASE WHEN self_lookup THEN {f.timestamp('self_issue_time')} END)"
            ),
            "issue_time_given": f["token_issue_time"],  # the first spelling present
        },
        {
            "clear_vault_token": (
                f"CASE WHEN regexp_matches(client_token, '{RAW_VAULT_TOKEN}') THEN client_token END"
            ),
            "issue_time_given_parsed": q.json_timestamp("issue_time_given"),
        },
    ]


def _columns(config: Config) -> dict[str, str]:
    """Canonical columns as SQL over the staged records and `_value_layers`."""
    f = FIELDS
    machine = q.machine_kind("principal", config.agent_patterns, config.infrastructure_patterns)
    display = f"lower({f.text('display_name')})"
    mount = f"regexp_extract({display}, '^([a-z0-9_]+)', 1)"
    ttl = (
        f"coalesce({q.json_number(f['token_ttl'])}, "
        f"CASE WHEN self_lookup THEN {q.json_number(f['self_ttl'])} END)"
    )
    error = f.text("error")
    namespace = f"nullif(rtrim({f.text('namespace')}, '/'), '')"
    return {
        "ts": f.timestamp("time"),
        # Every AppRole token's display name is `approle`: its role names the caller, as
        # other mounts name theirs (`kubernetes-payments-api`).
        "principal": (
            f"CASE WHEN {display} = 'approle' AND {f.text('role')} IS NOT NULL "
            f"THEN 'approle-' || {f.text('role')} "
            f"ELSE coalesce({f.text('display_name')}, {f.text('entity_id')}) END"
        ),
        "principal_type": (
            f"CASE WHEN {display} IS NULL THEN NULL "
            f"WHEN {mount} IN {q.text_list(SERVICE_MOUNTS)} THEN {machine} "
            f"WHEN {mount} IN {q.text_list(HUMAN_MOUNTS)} THEN 'human' ELSE 'unknown' END"
        ),
        "client_id": f.text("role"),
        "credential_id": f.text("accessor"),
        "credential_type": (
            f"CASE WHEN lower({f.text('token_type')}) = 'batch' THEN 'vault_batch_token' "
            f"WHEN {f.text('token_type')} IS NOT NULL OR credential_id IS NOT NULL "
            f"THEN 'vault_token' END"
        ),
        "token_fp": fingerprint_sql("clear_vault_token"),
        "raw_token": "NULL::VARCHAR",
        "on_behalf_of": "NULL::VARCHAR",
        "act_chain": "NULL::VARCHAR[]",
        "action": f.text("operation"),
        "resource": (
            f"CASE WHEN {namespace} IS NULL THEN {f.text('path')} "
            f"ELSE {namespace} || '/' || coalesce({f.text('path')}, '') END"
        ),
        "scopes_used": "NULL::VARCHAR[]",
        "scopes_granted": (
            f"coalesce({q.json_string_list(f['policies'])}, "
            f"nullif(list_concat({q.json_string_list(f['token_policies'])}, "
            f"{q.json_string_list(f['identity_policies'])}), []))"
        ),
        "status": error,
        "outcome": (
            f"CASE WHEN {error} IS NOT NULL THEN 'failure' "
            f"WHEN {f.text('type')} = 'response' THEN 'success' ELSE 'unknown' END"
        ),
        "source_ip": f.text("remote_address"),
        "user_agent": (
            f"CASE WHEN starts_with({f.text('user_agent')}, 'hmac-') THEN NULL "
            f"ELSE {f.text('user_agent')} END"
        ),
        # request.id names one request; a W3C traceparent (version-traceid-spanid-flags),
        # when the audit device logs it, ties a task's calls together.
        # A header Vault HMACs (its default) is no trace id: only a traceparent in clear.
        "trace_id": q.placeholder_as_null(
            f"CASE WHEN regexp_full_match({f.text('traceparent')}, '{TRACEPARENT}') "
            f"THEN split_part({f.text('traceparent')}, '-', 2) END"
        ),
        "session_id": "NULL::VARCHAR",
        "task_id": "NULL::VARCHAR",
        "principal_id": "NULL::VARCHAR",
        "credential_issued_at": "issued_at",
        "credential_expires_at": q.add_seconds("credential_issued_at", ttl),
        "leaked_secret": (
            f"CASE WHEN clear_vault_token IS NOT NULL THEN 'vault_token' "
            f"ELSE {q.leak_check(LEAK_TEXT)} END"
        ),
        "leaked_secret_fp": (
            f"CASE WHEN clear_vault_token IS NOT NULL THEN token_fp "
            f"WHEN leaked_secret IS NOT NULL THEN {leaked_secret_fp_sql(LEAK_TEXT)} END"
        ),
        "leaked_secrets": (
            "CASE WHEN leaked_secret IS NOT NULL THEN "
            f"{all_secrets_sql(LEAK_TEXT, 'leaked_secret', 'leaked_secret_fp')} END"
        ),
        SECRET_TEXTS: f"CASE WHEN leaked_secret IS NOT NULL THEN {secret_texts_sql(LEAK_TEXT)} END",
    }


def _checks() -> list[tuple[str, str]]:
    """(condition, reason) pairs: the first true one rejects the record."""
    f = FIELDS
    ttl_json = f["token_ttl"]
    ttl = q.json_number(ttl_json)
    return [
        (f"NOT {f.present('time')}", "'missing time'"),
        ("ts IS NULL", "'unparseable time: ' || " + q.shown(f"{f['time']}::VARCHAR")),
        (
            f"{f.text('type')} NOT IN ('request', 'response')",
            "'type must be request or response, not ' || " + q.shown(f.text("type")),
        ),
        (q.bad_string_list(f["policies"]), "'auth.policies must be a list'"),
        (
            # The first spelling present must parse, as a time field's does everywhere.
            q.bad_timestamp("issue_time_given", "issue_time_given_parsed"),
            "'unparseable auth.token_issue_time: ' || " + q.shown("issue_time_given::VARCHAR"),
        ),
        (
            f"coalesce(json_type({ttl_json}) <> 'NULL', false) AND {ttl} IS NULL",
            "'auth.token_ttl must be a number of seconds'",
        ),
        # No Vault writes one; read as no expiry, it would be a token that never expires.
        (
            f"{ttl} < 0",
            "'auth.token_ttl must not be negative: ' || " + q.shown(f"{ttl_json}::VARCHAR"),
        ),
        (
            "principal IS NULL AND credential_id IS NULL",
            "'no auth: neither auth.display_name, auth.entity_id nor auth.accessor'",
        ),
    ]


def fold_requests_into_responses(ctx: LoadContext) -> None:
    """Drop each request entry whose response (same request.id) is in the file.

    The response repeats the request and adds the outcome, so keeping both would count every
    call twice. Done in one set-based DELETE over the staged records.
    """
    kind = "json_extract_string(rec, '$.type')"
    request_id = "json_extract_string(rec, '$.request.id')"
    ctx.con.execute(
        f"""
        DELETE FROM _records
        WHERE {kind} = 'request' AND {request_id} IN (
            SELECT {request_id} FROM _records
            WHERE {kind} = 'response' AND {request_id} IS NOT NULL
        )
        """
    )


def looks_like_vault_audit(record: dict[str, Any] | None) -> bool:
    """A Vault audit entry: `type` request/response with a `request` object."""
    if not isinstance(record, dict):
        return False
    return (
        record.get("type") in ("request", "response")
        and isinstance(record.get("request"), dict)
        and bool({"time", "auth"} & set(record))
    )
