"""AWS CloudTrail: every management or data event is one call by one AWS identity.

Read as delivered to S3 (`{"Records": [...]}`, usually `.json.gz`), as JSON lines of events (or
of `Records` documents), a JSON array, one pretty-printed event, a CloudWatch Logs export or an
EventBridge event (see envelopes.py), and with the lower-cased field names of Athena or
CloudTrail Lake exports. The principal of a role session is its role; the session name, the
session's source identity and the Identity Center user say who the session served.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from m2maudit.config import Config
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

BATCH_KEYS = ("Records", "logEvents")
# The head of a `{"Records": [...]}` file of CloudTrail events (not S3 `aws:s3` notifications).
# The head of a Records file whose first record cannot be parsed from the sample (too big, or
# cut off): CloudTrail's own wrapper, then an AWS event source in the same head.
_BIG_RECORDS_HEAD = re.compile(r'\s*\{\s*"Records"\s*:\s*\[\s*\{')
_AWS_EVENT_SOURCE = re.compile(r'"eventSource"\s*:\s*"[a-z0-9.-]+\.amazonaws\.com"')

# STS calls that issue temporary credentials, with the lifetime AWS gives when none is asked.
ISSUING_CALLS: dict[str, int] = {
    "AssumeRole": 3600,
    "AssumeRoleWithSAML": 3600,
    "AssumeRoleWithWebIdentity": 3600,
    "AssumeRoot": 900,
    "GetSessionToken": 43200,
    "GetFederationToken": 43200,
}
# `responseElements.credentials.expiration` is written like `Oct 2, 2019, 11:12:29 PM`.
AWS_TIME_FORMATS = ("%b %d, %Y, %I:%M:%S %p", "%b %d, %Y %I:%M:%S %p", "%Y%m%dT%H%M%SZ")
SESSION_TYPES = (
    "AssumedRole",
    "FederatedUser",
    "WebIdentityUser",
    "SAMLUser",
    "IdentityCenterUser",
)
MACHINE_TYPES = (
    "IAMUser",
    "AssumedRole",
    "Role",
    "AWSAccount",
    "FederatedUser",
    "WebIdentityUser",
    "SAMLUser",
)

_PATHS = {
    "time": "$.eventTime",
    "identity": "$.userIdentity",
    "type": "$.userIdentity.type",
    "arn": "$.userIdentity.arn",
    "principal_id": "$.userIdentity.principalId",
    "user_name": "$.userIdentity.userName",
    "account_id": "$.userIdentity.accountId",
    "access_key": "$.userIdentity.accessKeyId",
    "issuer_arn": "$.userIdentity.sessionContext.sessionIssuer.arn",
    "issuer_name": "$.userIdentity.sessionContext.sessionIssuer.userName",
    "session_context": "$.userIdentity.sessionContext",
    "session_created": "$.userIdentity.sessionContext.attributes.creationDate",
    "source_identity": "$.userIdentity.sessionContext.sourceIdentity",
    "behalf_user": "$.userIdentity.onBehalfOf.userId",
    "invoked_by": "$.userIdentity.invokedBy",
    "event_source": "$.eventSource",
    "event_name": "$.eventName",
    "error_code": "$.errorCode",
    "console_login": "$.responseElements.ConsoleLogin",
    "from_console": "$.sessionCredentialFromConsole",
    "event_type": "$.eventType",
    "source_ip": "$.sourceIPAddress",
    "user_agent": "$.userAgent",
    "resource_arn": "$.resources[0].ARN",
    "role_arn": "$.requestParameters.roleArn",
    "policy_arn": "$.requestParameters.policyArn",
    "function": "$.requestParameters.functionName",
    "secret": "$.requestParameters.secretId",
    "model": "$.requestParameters.modelId",
    "bucket": "$.requestParameters.bucketName",
    "target_user": "$.requestParameters.userName",
    "duration": "$.requestParameters.durationSeconds",
    "issued_key": "$.responseElements.credentials.accessKeyId",
    "issued_expiration": "$.responseElements.credentials.expiration",
}


# What the leak check reads: the event, else (a line that is not one) the record.
LEAK_SCOPE = "coalesce(ev::VARCHAR, rec)"


def _slots() -> q.Slots:
    fields: dict[str, tuple[str, ...]] = {
        name: q.lowercase_variants(path) for name, path in _PATHS.items()
    }
    fields["time"] += ("$.p_event_time",)  # Panther data-lake exports
    fields.update(ENVELOPE_FIELDS)
    return q.json_slots(fields)


SLOTS = _slots()
# Slots kept as JSON (objects, or times read by the time parser); the rest are read as text.
STS_KEY_ID = "(ASIA|AKIA)[A-Z0-9]{12,124}"
JSON_SLOTS = ("time", "identity", "session_context", "session_created", "issued_expiration")


def looks_like_cloudtrail(event: dict[str, Any]) -> bool:
    """A CloudTrail event names an AWS API (`eventName`) and who called it or when, and its
    `eventSource` is an AWS endpoint (S3/SQS event notifications, `aws:s3`, are not)."""
    keys = {key.lower() for key in event}
    source = str(event.get("eventSource", event.get("eventsource", "")))
    if "eventname" not in keys or source.startswith("aws:"):
        return False
    return source.endswith(".amazonaws.com") or bool(
        keys & {"useridentity", "recipientaccountid", "eventtime"}
    )


class CloudTrailAdapter(StagedLoad):
    name: ClassVar[str] = "cloudtrail"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "AWS CloudTrail events: S3 Records files (.json.gz), JSON lines, arrays, single "
        "events, CloudWatch Logs and EventBridge envelopes"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "eventTime"),
        (
            "principal",
            "role session: sessionContext.sessionIssuer.arn (the role; without an ARN, the "
            "role id before ':' in principalId, then userName, accountId); "
            "AWSService: invokedBy; Unknown (Identity Center): userName; "
            "else userIdentity.arn, principalId, userName",
        ),
        (
            "principal_id",
            "principalId of an IAMUser or an Identity Center user (Unknown) unless it is the "
            "account id; of a role session, its role's part (before ':')",
        ),
        (
            "principal_type",
            "AWSService: service; Root, IdentityCenterUser, console sessions (and calls "
            "invokedBy signin.amazonaws.com), "
            "AWSReservedSSO_* roles: human; infrastructure_patterns: service; "
            "agent_patterns: agent; "
            "human_patterns on user/session: human; other IAM identities: service",
        ),
        ("credential_id", "userIdentity.accessKeyId"),
        (
            "credential_type",
            "AKIA...: aws_access_key; ASIA...: aws_session; else by userIdentity.type "
            "and session context",
        ),
        (
            "on_behalf_of",
            "sessionContext.sourceIdentity, onBehalfOf.userId, "
            "or the session name of a human (SSO) role session",
        ),
        (
            "act_chain",
            "[invokedBy, userIdentity.arn] when a human or an AWS service is behind the call",
        ),
        ("action", "eventSource service prefix + ':' + eventName (e.g. s3:GetObject)"),
        (
            "resource",
            "resources[0].ARN, else requestParameters roleArn, policyArn, "
            "functionName, secretId, modelId, bucketName (as an S3 ARN), userName",
        ),
        ("scopes_used", "[action]: the IAM action the call exercised"),
        ("outcome", "errorCode or responseElements.ConsoleLogin = Failure: failure; else success"),
        ("status", "errorCode, else responseElements.ConsoleLogin"),
        ("source_ip", "sourceIPAddress (an AWS service name for calls made by AWS)"),
        ("user_agent", "userAgent"),
        ("trace_id", "not in the log (requestID and eventID name one call, not a task)"),
        (
            "session_id",
            "role session name (from the assumed-role ARN or principalId), federated user name",
        ),
        ("credential_issued_at", "sessionContext.attributes.creationDate; issuing call time"),
        (
            "credential_expires_at",
            "from the AssumeRole*/GetSessionToken call that issued the "
            "key: responseElements.credentials.expiration, else eventTime "
            "+ requestParameters.durationSeconds (AWS default if absent)",
        ),
        ("leaked_secret", "secret patterns anywhere in the event"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        if sample.first_record is not None:
            return any(looks_like_cloudtrail(e) for e in candidate_events(sample.first_record))
        # A Records file too big for its first record to be parsed from the sample.
        return (
            bool(_BIG_RECORDS_HEAD.match(sample.text))
            and '"userIdentity"' in sample.text
            and bool(_AWS_EVENT_SOURCE.search(sample.text))
        )

    def stage_file(self, ctx: LoadContext) -> None:
        stage_events(ctx, BATCH_KEYS)

    def stage_files(self, ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]]) -> bool:
        return stage_events_together(ctx, members, BATCH_KEYS)

    def map_staged(self, ctx: LoadContext) -> None:
        layers = unwrap_prelude(SLOTS, ("time", "identity", "event_name"))
        layers.append(SLOTS.named_columns(JSON_SLOTS))
        layers += _derived(ctx.config)
        map_records(ctx, _columns(), _checks(), layers, leak_scope=LEAK_SCOPE)
        propagate_issued_lifetimes(ctx)


def _derived(config: Config) -> list[dict[str, str]]:
    """Names the columns are built from: role, session, principal and its kind (in layers)."""
    assumed = r"^arn:(aws[a-z-]*):sts::(\d+):assumed-role/([^/]+)/(.+)$"
    names = ["principal", "t_user_name", "session_name"]
    first = {
        "ts": q.json_timestamp("j_time"),  # a column of its own: checks and lifetimes reuse it
        "role_name": (
            f"coalesce(t_issuer_name, nullif(regexp_extract(t_arn, '{assumed}', 3), ''))"
        ),
        "session_name": (
            f"CASE WHEN t_type = 'AssumedRole' THEN coalesce("
            f"nullif(regexp_extract(t_arn, '{assumed}', 4), ''), "
            f"nullif(regexp_extract(t_principal_id, ':(.+)$', 1), '')) "
            f"WHEN t_type = 'FederatedUser' THEN coalesce("
            f"nullif(regexp_extract(t_arn, 'federated-user/(.+)$', 1), ''), t_user_name) END"
        ),
        "principal": (
            # Without an ARN (cross-account calls, trimmed records): the role's unique id,
            # the part of principalId before the session; then as for any identity.
            f"CASE WHEN t_type = 'AssumedRole' THEN coalesce(t_issuer_arn, "
            f"CASE WHEN regexp_matches(t_arn, '{assumed}') "
            f"THEN regexp_replace(t_arn, '{assumed}', 'arn:\\1:iam::\\2:role/\\3') END, "
            f"t_arn, nullif(split_part(t_principal_id, ':', 1), ''), t_user_name, t_account_id) "
            f"WHEN t_type = 'AWSService' THEN coalesce(t_invoked_by, t_principal_id) "
            # An Identity Center user (`Unknown`) has no ARN; its principalId is an opaque
            # id (or the account's), its userName the person's name.
            f"WHEN t_type = 'Unknown' THEN coalesce(t_arn, t_behalf_user, t_user_name, "
            f"t_principal_id, t_invoked_by, t_account_id) "
            f"ELSE coalesce(t_arn, t_behalf_user, t_principal_id, t_user_name, t_invoked_by, "
            f"t_account_id) END"
        ),
    }
    second = {
        # A person at the console: a console session's credentials, a sign-in, or a call
        # the console made for an IAM user or the root user (`invokedBy` the sign-in service).
        "console": (
            "(lower(coalesce(t_from_console, '')) = 'true' OR t_event_type = 'AwsConsoleSignIn' "
            "OR coalesce(t_event_name = 'ConsoleLogin', false) "
            "OR coalesce(t_invoked_by = 'signin.amazonaws.com', false))"
        ),
        "kind": (
            f"CASE WHEN t_type = 'AWSService' OR (t_type IS NULL AND t_arn IS NULL "
            f"AND t_invoked_by IS NOT NULL) THEN 'service' "
            f"WHEN t_type IN ('Root', 'IdentityCenterUser') OR console THEN 'human' "
            f"WHEN {q.matches_any(names, config.infrastructure_patterns)} THEN 'service' "
            f"WHEN {q.matches_any(names, config.agent_patterns)} THEN 'agent' "
            f"WHEN t_type = 'AssumedRole' AND starts_with(role_name, 'AWSReservedSSO_') "
            f"THEN 'human' "
            f"WHEN t_source_identity IS NOT NULL OR t_behalf_user IS NOT NULL THEN 'service' "
            f"WHEN {q.matches_any(['t_user_name', 'session_name'], config.human_patterns)} "
            f"THEN 'human' "
            f"WHEN t_type IN {MACHINE_TYPES} THEN 'service' ELSE 'unknown' END"
        ),
    }
    return [first, second]


def _columns() -> dict[str, str]:
    issuing = ", ".join(f"'{name}'" for name in ISSUING_CALLS)
    defaults = " ".join(f"WHEN '{name}' THEN {seconds}" for name, seconds in ISSUING_CALLS.items())
    # STS grants 1 s to 36 h (GetFederationToken's longest); a duration outside that was not
    # granted as written (a negative one made a critical "used after expiry" of every call).
    duration = (
        "CASE WHEN try_cast(t_duration AS BIGINT) BETWEEN 1 AND 129600 "
        "THEN try_cast(t_duration AS BIGINT) END"
    )
    return {
        "ts": "ts",
        "principal": "principal",
        # IAM's unique id of the user or role named: a user renamed keeps it. A role's
        # principalId is `AROA...:session`; its first part is the role's, and it names the
        # principal only when that is the role, not a session.
        "principal_id": (
            "CASE WHEN t_type = 'IAMUser' THEN nullif(t_principal_id, '') "
            "WHEN t_type = 'AssumedRole' "
            "AND (regexp_matches(principal, '^arn:[^:]+:iam::[0-9]*:role/') "
            "OR principal = split_part(t_principal_id, ':', 1)) "
            "THEN nullif(split_part(t_principal_id, ':', 1), '') "
            # Unless it is the account's id, which every Identity Center user shares.
            "WHEN t_type = 'Unknown' AND principal = t_user_name "
            "THEN nullif(nullif(t_principal_id, ''), t_account_id) END"
        ),
        "principal_type": "kind",
        "client_id": "NULL::VARCHAR",
        "credential_id": "t_access_key",
        "credential_type": (
            f"CASE WHEN t_access_key IS NULL THEN NULL "
            f"WHEN starts_with(t_access_key, 'AKIA') THEN 'aws_access_key' "
            f"WHEN starts_with(t_access_key, 'ASIA') THEN 'aws_session' "
            f"WHEN t_type IN {SESSION_TYPES} THEN 'aws_session' "
            # Only temporary credentials carry a session context (a console sign-in's).
            f"WHEN t_type IN ('IAMUser', 'Root') "
            f"AND (coalesce(json_type(j_session_context) = 'OBJECT', false) OR console) "
            f"THEN 'aws_session' "
            f"WHEN t_type IN ('IAMUser', 'Root') THEN 'aws_access_key' "
            f"ELSE 'aws_credential' END"
        ),
        "token_fp": "NULL::VARCHAR",
        "on_behalf_of": (
            "coalesce(t_source_identity, t_behalf_user, "
            "CASE WHEN kind = 'human' AND t_type = 'AssumedRole' THEN session_name END)"
        ),
        "act_chain": (
            "CASE WHEN (on_behalf_of IS NOT NULL AND kind <> 'human') "
            "OR (t_invoked_by IS NOT NULL AND t_type IS DISTINCT FROM 'AWSService') "
            "THEN list_filter([CASE WHEN t_type IS DISTINCT FROM 'AWSService' "
            "THEN t_invoked_by END, coalesce(t_arn, principal)], lambda a: a IS NOT NULL) END"
        ),
        "action": (
            "CASE WHEN t_event_name IS NULL THEN NULL "
            "WHEN t_event_source IS NULL THEN t_event_name "
            "ELSE regexp_replace(t_event_source, '\\.amazonaws\\.com$', '') || ':' "
            "|| t_event_name END"
        ),
        "resource": (
            "coalesce(t_resource_arn, t_role_arn, t_policy_arn, t_function, t_secret, t_model, "
            "'arn:aws:s3:::' || t_bucket, t_target_user)"
        ),
        "scopes_used": "CASE WHEN action IS NOT NULL THEN [action] END",
        "scopes_granted": "NULL::VARCHAR[]",
        "outcome": (
            "CASE WHEN t_error_code IS NOT NULL OR lower(t_console_login) = 'failure' "
            "THEN 'failure' ELSE 'success' END"
        ),
        "status": "coalesce(t_error_code, t_console_login)",
        "source_ip": "t_source_ip",
        "user_agent": "t_user_agent",
        # requestID and eventID name one call: they tie no task's calls together.
        "trace_id": "NULL::VARCHAR",
        "session_id": "session_name",
        "task_id": "NULL::VARCHAR",
        "credential_issued_at": q.json_timestamp_any("j_session_created", AWS_TIME_FORMATS),
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        **q.leak_columns(),
        # Staging only (not stored): the credential an issuing call handed out, for lifetimes.
        "issued_credential_id": (
            f"CASE WHEN t_event_name IN ({issuing}) AND t_error_code IS NULL "
            # A key id as STS issues them: a placeholder (`REDACTED`, `SAMPLE_ACCESS_KEY`)
            # names no credential, and would lend its lifetime to unrelated calls.
            f"AND regexp_full_match(t_issued_key, '{STS_KEY_ID}') THEN t_issued_key END"
        ),
        "issued_at": "CASE WHEN issued_credential_id IS NOT NULL THEN ts END",
        "issued_expires_at": (
            f"CASE WHEN issued_credential_id IS NOT NULL THEN coalesce("
            f"{q.json_timestamp_any('j_issued_expiration', AWS_TIME_FORMATS)}, "
            f"ts + to_seconds(coalesce({duration}, CASE t_event_name {defaults} END))) END"
        ),
    }


def _checks() -> list[tuple[str, str]]:
    time, identity = "j_time", "j_identity"
    return [
        (f"json_type({time}) IS NULL OR json_type({time}) = 'NULL'", "'missing eventTime'"),
        ("ts IS NULL", "'unparseable eventTime: ' || " + q.shown(f"{time}::VARCHAR")),
        (f"coalesce(json_type({identity}), 'NULL') = 'NULL'", "'missing userIdentity'"),
        (f"json_type({identity}) <> 'OBJECT'", "'userIdentity must be an object'"),
        (
            "principal IS NULL",
            "'userIdentity names no principal (no arn, principalId, userName or invokedBy)'",
        ),
    ]
