"""Generate the small CloudTrail, IAM credential report, Kubernetes and GitHub audit estate.

    python scripts/make_cloud_samples.py [OUTPUT_DIR]   (default: sample_logs/)

Deterministic: a seeded random source, fixed times and gzip headers without a timestamp, so
re-running it rewrites byte-identical files. The estate's "as of" is 2026-11-28T00:00:00Z
(`m2maudit scan sample_logs/cloudtrail --inventory sample_logs/aws/credential_report.csv
--as-of 2026-11-28`). What it holds, on purpose:

CloudTrail (account 111122223333, two S3-delivered `.json.gz` Records files):
- `research-agent`, an ECS task role: sessions issued by ecs-tasks.amazonaws.com, calls with
  no source identity (no human behind them), and AccessDenied on secrets and key creation;
- `support-agent`: assumed by the `agent-gateway` role with a SourceIdentity (the ticket's
  requester), so every call names the human it served;
- `ci-deployer`, an IAM user with a long-term AKIA key, assuming `deploy-role` for 12 hours;
- `legacy-batch`, an IAM user whose AKIA key has not been rotated since March;
- `bob@example.com`, a person in an IAM Identity Center (SSO) console session.
IAM credential report: the same users; `legacy-batch` not rotated for > 90 days,
`reporting-export` never used, a disabled old key, and a console-only person with no keys.
Kubernetes (`audit.jsonl`): agent pods' service accounts with bound tokens, a 24-hour token
request, an agent impersonating a person, a CI service account on a legacy token, a person
with kubectl, forbidden calls and an anonymous probe.
GitHub audit log (`github/audit.jsonl`, the org's streamed events): secret scanning found an
OpenAI key committed to `acme/agent-tools` (still open) and a personal access token in
`acme/support-bot` (resolved the same day by a person).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261128
ACCOUNT = "111122223333"
REGION = "us-east-1"
Json = dict[str, Any]
KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

rng = random.Random(SEED)


def uid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def key_id(prefix: str) -> str:
    return prefix + "".join(rng.choice(KEY_ALPHABET) for _ in range(16))


def unique_id(prefix: str) -> str:
    return prefix + "".join(rng.choice(KEY_ALPHABET) for _ in range(17))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def aws_expiration(moment: datetime) -> str:
    """The way STS responses are written in CloudTrail: `Nov 18, 2026, 2:00:00 PM`."""
    hour = moment.hour % 12 or 12
    return moment.strftime(f"%b {moment.day}, %Y, {hour}:%M:%S %p")


# --- CloudTrail ---------------------------------------------------------------------------

ROLE_IDS = {
    name: unique_id("AROA")
    for name in (
        "research-agent",
        "support-agent",
        "agent-gateway",
        "deploy-role",
        "AWSReservedSSO_AdministratorAccess_5f1c2a9e",
    )
}
USER_IDS = {name: unique_id("AIDA") for name in ("ci-deployer", "legacy-batch")}
USER_KEYS = {"ci-deployer": key_id("AKIA"), "legacy-batch": key_id("AKIA")}


def iam_user(name: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": USER_IDS[name],
        "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "accountId": ACCOUNT,
        "accessKeyId": USER_KEYS[name],
        "userName": name,
    }


def role_session(
    role: str, session: str, key: str, created: datetime, source_identity: str | None = None
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "principalId": ROLE_IDS[role],
            "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
            "accountId": ACCOUNT,
            "userName": role,
        },
        "attributes": {"creationDate": iso(created), "mfaAuthenticated": "false"},
    }
    if source_identity:
        context["sourceIdentity"] = source_identity
    return {
        "type": "AssumedRole",
        "principalId": f"{ROLE_IDS[role]}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": key,
        "sessionContext": context,
    }


def aws_service(service: str) -> dict[str, Any]:
    return {"type": "AWSService", "invokedBy": service}


def event(
    when: datetime,
    identity: dict[str, Any],
    source: str,
    name: str,
    *,
    ip: str = "10.20.4.17",
    agent: str = "Boto3/1.35.50 Python/3.12.3 Linux/6.8",
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    error: str | None = None,
    read_only: bool = True,
    resources: list[dict[str, str]] | None = None,
    console: bool = False,
    category: str = "Management",
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": iso(when),
        "eventSource": f"{source}.amazonaws.com",
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip if identity.get("type") != "AWSService" else identity["invokedBy"],
        "userAgent": agent if identity.get("type") != "AWSService" else identity["invokedBy"],
    }
    if error:
        record["errorCode"] = error
        record["errorMessage"] = f"User is not authorized to perform: {source}:{name}"
    record["requestParameters"] = request
    record["responseElements"] = None if error else response
    record["requestID"] = uid()
    record["eventID"] = uid()
    record["readOnly"] = read_only
    if resources:
        record["resources"] = resources
    record["eventType"] = "AwsApiCall"
    record["managementEvent"] = category == "Management"
    record["recipientAccountId"] = ACCOUNT
    record["eventCategory"] = category
    if console:
        record["sessionCredentialFromConsole"] = "true"
    return record


def assume_role(
    when: datetime,
    caller: dict[str, Any],
    role: str,
    session: str,
    seconds: int,
    source_identity: str | None = None,
    send_duration: bool = True,
) -> tuple[dict[str, Any], str]:
    """An sts:AssumeRole call and the temporary key it issued."""
    issued = key_id("ASIA")
    request: dict[str, Any] = {
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
        "roleSessionName": session,
    }
    if send_duration:
        request["durationSeconds"] = seconds
    if source_identity:
        request["sourceIdentity"] = source_identity
    response: dict[str, Any] = {
        "credentials": {
            "accessKeyId": issued,
            "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
            "expiration": aws_expiration(when + timedelta(seconds=seconds)),
        },
        "assumedRoleUser": {
            "assumedRoleId": f"{ROLE_IDS[role]}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        },
    }
    if source_identity:
        response["sourceIdentity"] = source_identity
    resources = [
        {
            "accountId": ACCOUNT,
            "type": "AWS::IAM::Role",
            "ARN": f"arn:aws:iam::{ACCOUNT}:role/{role}",
        }
    ]
    return event(
        when, caller, "sts", "AssumeRole", request=request, response=response, resources=resources
    ), issued


MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


def research_agent_run(start: datetime, session: str, deny_key_creation: bool) -> list[Json]:
    issuing, key = assume_role(
        start,
        aws_service("ecs-tasks.amazonaws.com"),
        "research-agent",
        session,
        3600,
        send_duration=False,
    )
    me = role_session("research-agent", session, key, start)
    step = timedelta(seconds=41)
    calls = [
        issuing,
        event(start + step, me, "bedrock", "InvokeModel", request={"modelId": MODEL}),
        event(
            start + 2 * step,
            me,
            "s3",
            "ListObjects",
            category="Data",
            request={"bucketName": "research-corpus", "prefix": "papers/"},
        ),
        event(
            start + 3 * step,
            me,
            "s3",
            "GetObject",
            category="Data",
            request={"bucketName": "research-corpus", "key": "papers/2026/llm-evals.pdf"},
        ),
        event(
            start + 4 * step,
            me,
            "s3",
            "GetObject",
            category="Data",
            request={"bucketName": "research-corpus", "key": "papers/2026/agents.pdf"},
        ),
        event(start + 5 * step, me, "dynamodb", "Query", request={"tableName": "research-notes"}),
        event(
            start + 6 * step,
            me,
            "secretsmanager",
            "GetSecretValue",
            error="AccessDenied",
            request={"secretId": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db"},
        ),
        event(start + 7 * step, me, "bedrock", "InvokeModel", request={"modelId": MODEL}),
    ]
    if deny_key_creation:
        calls.append(
            event(
                start + 8 * step,
                me,
                "iam",
                "CreateAccessKey",
                error="AccessDenied",
                request={"userName": "research-agent-bot"},
                read_only=False,
            )
        )
        calls.append(event(start + 9 * step, me, "iam", "ListRoles", error="AccessDenied"))
    return calls


def support_agent_run(start: datetime, ticket: int, requester: str) -> list[Json]:
    gateway = role_session(
        "agent-gateway", "ecs-task-7d41", key_id("ASIA"), start - timedelta(minutes=50)
    )
    session = f"support-ticket-{ticket}"
    issuing, key = assume_role(start, gateway, "support-agent", session, 900, requester)
    me = role_session("support-agent", session, key, start, source_identity=requester)
    step = timedelta(seconds=23)
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:refund-calculator"
    return [
        issuing,
        event(
            start + step,
            me,
            "dynamodb",
            "GetItem",
            request={"tableName": "tickets", "key": {"id": {"N": str(ticket)}}},
        ),
        event(
            start + 2 * step,
            me,
            "s3",
            "GetObject",
            category="Data",
            request={"bucketName": "support-attachments", "key": f"{ticket}/invoice.pdf"},
        ),
        event(
            start + 3 * step,
            me,
            "lambda",
            "Invoke",
            category="Data",
            request={"functionName": function},
        ),
        event(
            start + 4 * step,
            me,
            "ses",
            "SendEmail",
            read_only=False,
            request={"source": "support@example.com"},
        ),
    ]


def sso_console(start: datetime) -> list[Json]:
    role = "AWSReservedSSO_AdministratorAccess_5f1c2a9e"
    me = role_session(role, "bob@example.com", key_id("ASIA"), start - timedelta(minutes=3))
    browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Safari/605.1.15"
    return [
        event(start, me, "iam", "ListUsers", ip="198.51.100.24", agent=browser, console=True),
        event(
            start + timedelta(seconds=40),
            me,
            "iam",
            "GetRole",
            ip="198.51.100.24",
            agent=browser,
            console=True,
            request={"roleName": "research-agent"},
        ),
        event(
            start + timedelta(seconds=95),
            me,
            "cloudtrail",
            "LookupEvents",
            ip="198.51.100.24",
            agent=browser,
            console=True,
        ),
    ]


def ci_deployer_day(start: datetime) -> list[Json]:
    me = iam_user("ci-deployer")
    cli = "aws-cli/2.17.40 Python/3.11.9 Linux/6.5 exe/x86_64.ubuntu.22 command/s3.cp"
    return [
        event(start, me, "sts", "GetCallerIdentity", ip="203.0.113.40", agent=cli),
        event(
            start + timedelta(seconds=12),
            me,
            "s3",
            "PutObject",
            ip="203.0.113.40",
            agent=cli,
            category="Data",
            read_only=False,
            request={"bucketName": "acme-build-artifacts", "key": "web/1.42.0.zip"},
        ),
        event(
            start + timedelta(seconds=30),
            me,
            "cloudformation",
            "DescribeStacks",
            ip="203.0.113.40",
            agent=cli,
            request={"stackName": "web-prod"},
        ),
    ]


def legacy_batch_run(start: datetime) -> list[Json]:
    me = iam_user("legacy-batch")
    agent = "aws-sdk-java/1.12.261 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.8"
    return [
        event(
            start,
            me,
            "s3",
            "GetObject",
            ip="192.0.2.77",
            agent=agent,
            category="Data",
            request={"bucketName": "finance-exports", "key": "daily/ledger.csv"},
        ),
        event(
            start + timedelta(seconds=64),
            me,
            "s3",
            "PutObject",
            ip="192.0.2.77",
            agent=agent,
            category="Data",
            read_only=False,
            request={"bucketName": "finance-reports", "key": "daily/summary.csv"},
        ),
    ]


def twelve_hour_deploy(start: datetime) -> list[Json]:
    """ci-deployer's long-term key assumes deploy-role for 12 hours; the session is still in
    use eleven hours later."""
    cli = "aws-cli/2.17.40 Python/3.11.9 Linux/6.5 exe/x86_64.ubuntu.22"
    issuing, key = assume_role(
        start, iam_user("ci-deployer"), "deploy-role", "ci-deploy-8841", 43200
    )
    issuing["sourceIPAddress"], issuing["userAgent"] = "203.0.113.40", cli
    me = role_session("deploy-role", "ci-deploy-8841", key, start)
    stack = {"stackName": "web-prod"}

    def call(offset: timedelta, source: str, name: str, **kw: Any) -> Json:
        return event(start + offset, me, source, name, ip="203.0.113.40", agent=cli, **kw)

    return [
        issuing,
        call(
            timedelta(seconds=20), "cloudformation", "UpdateStack", request=stack, read_only=False
        ),
        call(
            timedelta(seconds=50),
            "lambda",
            "UpdateFunctionCode20150331v2",
            read_only=False,
            request={"functionName": "web-prod-api"},
        ),
        call(
            timedelta(minutes=3),
            "ecs",
            "UpdateService",
            read_only=False,
            request={"cluster": "prod", "service": "web"},
        ),
        call(
            timedelta(hours=11, minutes=2),
            "ecs",
            "DescribeServices",
            request={"cluster": "prod", "services": ["web"]},
        ),
    ]


def cloudtrail_files() -> dict[str, list[Json]]:
    october = (
        research_agent_run(at("2026-10-21T09:00:02"), "research-agent-task-3f9a", False)
        + support_agent_run(at("2026-10-21T09:30:10"), 4821, "alice@example.com")
        + sso_console(at("2026-10-21T10:05:00"))
        + ci_deployer_day(at("2026-10-21T11:00:00"))
        + legacy_batch_run(at("2026-10-21T11:02:00"))
    )
    november = (
        legacy_batch_run(at("2026-11-18T00:30:00"))
        + twelve_hour_deploy(at("2026-11-18T02:00:00"))
        + research_agent_run(at("2026-11-18T08:15:00"), "research-agent-task-91c2", True)
        + support_agent_run(at("2026-11-18T09:00:05"), 5307, "carol@example.com")
    )
    return {
        f"{ACCOUNT}_CloudTrail_{REGION}_20261021T0900Z_7QxKp2.json.gz": october,
        f"{ACCOUNT}_CloudTrail_{REGION}_20261118T0000Z_Lm4Zr8.json.gz": november,
    }


def write_gzip_json(path: Path, value: Any) -> None:
    raw = json.dumps(value, separators=(",", ":")).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(raw)
    path.write_bytes(buffer.getvalue())


# --- IAM credential report ----------------------------------------------------------------

REPORT_COLUMNS = (
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
)
NO_KEY = ("false", "N/A", "N/A", "N/A", "N/A")
NO_CERTS = ("false", "N/A", "false", "N/A")


def report_rows() -> list[tuple[str, ...]]:
    def user(name: str) -> tuple[str, str]:
        return name, f"arn:aws:iam::{ACCOUNT}:user/{name}"

    return [
        (
            "<root_account>",
            f"arn:aws:iam::{ACCOUNT}:root",
            "2023-02-06T15:12:09+00:00",
            "not_supported",
            "2026-09-14T08:03:51+00:00",
            "not_supported",
            "not_supported",
            "true",
            # A root access key made for a backup script in 2023 (rule M2M204).
            "true",
            "2023-02-06T15:20:11+00:00",
            "2026-11-03T02:14:00+00:00",
            "us-east-1",
            "s3",
            *NO_KEY,
            *NO_CERTS,
        ),
        (
            *user("alice.nguyen"),
            "2024-05-20T10:00:00+00:00",
            "true",
            "2026-11-27T16:40:02+00:00",
            "2026-08-30T09:12:44+00:00",
            "N/A",
            "true",
            *NO_KEY,
            *NO_KEY,
            *NO_CERTS,
        ),
        (
            *user("ci-deployer"),
            "2025-01-08T12:30:00+00:00",
            "false",
            "N/A",
            "N/A",
            "N/A",
            "false",
            "true",
            "2026-09-28T07:45:10+00:00",
            "2026-11-18T02:00:00+00:00",
            "us-east-1",
            "sts",
            *NO_KEY,
            *NO_CERTS,
        ),
        (
            *user("legacy-batch"),
            "2021-06-11T09:20:00+00:00",
            "false",
            "N/A",
            "N/A",
            "N/A",
            "false",
            "true",
            "2026-03-02T14:05:33+00:00",
            "2026-11-18T00:31:04+00:00",
            "us-east-1",
            "s3",
            "false",
            "2025-11-20T10:11:12+00:00",
            "2026-02-27T23:58:00+00:00",
            "us-east-1",
            "s3",
            *NO_CERTS,
        ),
        (
            *user("reporting-export"),
            "2026-07-14T13:00:00+00:00",
            "false",
            "N/A",
            "N/A",
            "N/A",
            "false",
            "true",
            "2026-07-14T13:02:41+00:00",
            "N/A",
            "N/A",
            "N/A",
            *NO_KEY,
            *NO_CERTS,
        ),
    ]


def write_report(path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    writer.writerows(report_rows())
    path.write_text(buffer.getvalue(), encoding="utf-8")


# --- Kubernetes audit log -----------------------------------------------------------------

NODE = "system:node:ip-10-0-3-17.eu-west-1.compute.internal"
RESEARCH_POD = "research-agent-7c9d5f8b6-x2kqp"
RESEARCH_JTI = uid()
SUPPORT_JTI = uid()
SA_GROUPS = ["system:serviceaccounts", "system:authenticated"]


def sa_user(
    namespace: str, name: str, pod: str | None = None, jti: str | None = None
) -> dict[str, Any]:
    user: dict[str, Any] = {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "uid": uid(),
        "groups": [*SA_GROUPS[:1], f"system:serviceaccounts:{namespace}", SA_GROUPS[1]],
    }
    if pod:
        user["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={jti}"],
            "authentication.kubernetes.io/node-name": [NODE.removeprefix("system:node:")],
            "authentication.kubernetes.io/node-uid": [uid()],
            "authentication.kubernetes.io/pod-name": [pod],
            "authentication.kubernetes.io/pod-uid": [uid()],
        }
    return user


def k8s_event(
    when: datetime,
    user: dict[str, Any],
    verb: str,
    resource: str | None,
    namespace: str | None = None,
    name: str | None = None,
    *,
    code: int = 200,
    group: str = "",
    subresource: str | None = None,
    ip: str = "10.0.3.54",
    agent: str = "python-requests/2.32.3",
    impersonated: Json | None = None,
    level: str = "Metadata",
    request_object: Json | None = None,
    annotations: dict[str, str] | None = None,
    path: str | None = None,
) -> Json:
    version = "v1"
    prefix = f"/apis/{group}/{version}" if group else "/api/v1"
    if resource:
        uri = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
        uri += (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")
    else:
        uri = path or "/"
    decision = "allow" if code < 400 or code == 404 else "forbid"
    reason = "" if decision == "forbid" else "RBAC: allowed by RoleBinding"
    record: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": uid(),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": user,
    }
    if impersonated:
        record["impersonatedUser"] = impersonated
    record["sourceIPs"] = [ip]
    record["userAgent"] = agent
    if resource:
        ref: dict[str, Any] = {"resource": resource}
        if namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        ref["apiGroup"] = group
        ref["apiVersion"] = version
        if subresource:
            ref["subresource"] = subresource
        record["objectRef"] = ref
    status: dict[str, Any] = {"metadata": {}, "code": code}
    if code >= 400:
        status.update(
            {
                "status": "Failure",
                "reason": "Forbidden" if code == 403 else "Unauthorized",
                "message": f"{verb} {resource or uri} is forbidden",
            }
        )
    record["responseStatus"] = status
    if request_object is not None:
        record["requestObject"] = request_object
    record["requestReceivedTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record["stageTimestamp"] = (when + timedelta(milliseconds=7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    record["annotations"] = {
        "authorization.k8s.io/decision": decision,
        "authorization.k8s.io/reason": reason,
        **(annotations or {}),
    }
    return record


def k8s_events() -> list[Json]:
    day = at("2026-11-20T07:58:00")
    kubelet = {"username": NODE, "groups": ["system:nodes", "system:authenticated"]}
    token_request = k8s_event(
        day,
        kubelet,
        "create",
        "serviceaccounts",
        "agents",
        "research-agent",
        subresource="token",
        code=201,
        ip="10.0.3.17",
        level="Request",
        agent="kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
        request_object={
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "spec": {
                "audiences": ["https://kubernetes.default.svc"],
                "expirationSeconds": 86400,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": RESEARCH_POD},
            },
        },
        annotations={"authentication.kubernetes.io/issued-credential-id": f"JTI={RESEARCH_JTI}"},
    )
    research = sa_user("agents", "research-agent", RESEARCH_POD, RESEARCH_JTI)
    agent_ua = "research-agent/0.9 kubernetes-client/python/31.0.0"

    def r(
        minutes: float,
        verb: str,
        resource: str | None,
        namespace: str | None = "agents",
        name: str | None = None,
        **kw: Any,
    ) -> Json:
        return k8s_event(
            day + timedelta(minutes=minutes),
            research,
            verb,
            resource,
            namespace,
            name,
            agent=agent_ua,
            **kw,
        )

    events = [token_request]
    events += [
        r(2, "list", "pods"),
        r(2.5, "get", "configmaps", name="research-agent-config"),
        r(3, "create", "jobs", group="batch", code=201, name=None),
        r(3.2, "get", "jobs", name="crawl-2026-11-20", group="batch"),
        r(4, "list", "secrets", namespace="kube-system", code=403),
        r(4.1, "get", "secrets", namespace="kube-system", name="aws-credentials", code=403),
        r(6, "list", "pods"),
        r(9, "get", "pods", name="crawl-2026-11-20-8kq2d", subresource="log"),
        r(9 * 60 + 30, "list", "pods"),
        r(14 * 60, "delete", "jobs", name="crawl-2026-11-20", group="batch"),
        r(20 * 60 + 5, "list", "pods"),
    ]
    support = sa_user("agents", "support-agent", "support-agent-5b8f7c9d4-hq7vm", SUPPORT_JTI)
    alice = {"username": "alice@example.com", "groups": ["support-team"]}
    support_ua = "support-agent/1.4 client-go/v0.31.2"
    # The support agent acts as the person whose ticket it works (kubectl --as): three calls
    # with alice's authority, then one with its own.
    for minutes, verb, resource, name, group, sub, as_alice in [
        (31, "list", "pods", None, "", None, True),
        (31.2, "get", "deployments", "ticket-router", "apps", None, True),
        (31.5, "get", "pods", "ticket-router-6f9c8-2xw9z", "", None, True),
        (31.6, "get", "pods", "ticket-router-6f9c8-2xw9z", "", "log", False),
    ]:
        events.append(
            k8s_event(
                day + timedelta(minutes=minutes),
                support,
                verb,
                resource,
                "support",
                name,
                group=group,
                subresource=sub,
                agent=support_ua,
                impersonated=alice if as_alice else None,
            )
        )
    events.append(
        k8s_event(
            day + timedelta(minutes=33),
            support,
            "list",
            "secrets",
            "support",
            agent=support_ua,
            code=403,
        )
    )
    deployer = sa_user("ci", "deployer")  # a legacy Secret-based token: no credential id
    ci_ua = "argocd-application-controller/v2.12.4"
    for minutes, verb, resource, name, code in [
        (45, "get", "deployments", "web", 200),
        (45.1, "patch", "deployments", "web", 200),
        (45.3, "get", "secrets", "web-tls", 200),
        (45.4, "list", "secrets", None, 200),
        (46, "delete", "pods", "web-7d9b5c6f4-k2m8p", 200),
    ]:
        events.append(
            k8s_event(
                day + timedelta(minutes=minutes),
                deployer,
                verb,
                resource,
                "prod",
                name,
                group="apps" if resource == "deployments" else "",
                code=code,
                ip="10.0.7.12",
                agent=ci_ua,
            )
        )
    bob = {"username": "bob@example.com", "groups": ["platform-admins", "system:authenticated"]}
    kubectl = "kubectl/v1.31.2 (darwin/arm64) kubernetes/5864a46"
    for minutes, verb, resource, namespace, name in [
        (70, "get", "pods", "agents", None),
        (70.4, "get", "serviceaccounts", "agents", "research-agent"),
        (71, "delete", "pods", "agents", RESEARCH_POD),
    ]:
        events.append(
            k8s_event(
                day + timedelta(minutes=minutes),
                bob,
                verb,
                resource,
                namespace,
                name,
                ip="198.51.100.24",
                agent=kubectl,
            )
        )
    controller = sa_user("kube-system", "replicaset-controller")
    events.append(
        k8s_event(
            day + timedelta(minutes=71.1),
            controller,
            "create",
            "pods",
            "agents",
            code=201,
            ip="10.0.0.10",
            agent="kube-controller-manager/v1.31.2 (linux/amd64)",
        )
    )
    anonymous = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    events.append(
        k8s_event(
            day + timedelta(minutes=90),
            anonymous,
            "get",
            None,
            code=403,
            ip="203.0.113.200",
            agent="Go-http-client/1.1",
            path="/api/v1/secrets",
        )
    )
    events.sort(key=lambda e: e["requestReceivedTimestamp"])
    return events


def github_event(moment: datetime, action: str, actor: str, actor_id: int, **fields: Any) -> Json:
    """One event as GitHub's audit log streaming writes it (times in epoch milliseconds)."""
    millis = int(moment.timestamp() * 1000)
    return {
        "@timestamp": millis,
        "_document_id": uid().replace("-", "")[:22],
        "action": action,
        "actor": actor,
        "actor_id": actor_id,
        "business": "acme",
        "created_at": millis,
        "operation_type": "create" if action.endswith("create") else "modify",
        "org": "acme",
        **fields,
    }


def github_events() -> list[Json]:
    """Secret scanning alerts: one still open, one resolved (by `dana`)."""
    open_alert = {"repo": "acme/agent-tools", "number": 7, "secret_type": "openai_api_key"}
    resolved = {
        "repo": "acme/support-bot",
        "number": 2,
        "secret_type": "github_personal_access_token",
    }
    return [
        github_event(
            at("2026-11-03T14:12:09"), "secret_scanning_alert.create", "github", 9919, **open_alert
        ),
        github_event(
            at("2026-11-10T09:30:41"), "secret_scanning_alert.create", "github", 9919, **resolved
        ),
        github_event(
            at("2026-11-10T11:02:17"), "secret_scanning_alert.resolve", "dana", 5012, **resolved
        ),
    ]


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path("sample_logs")
    for folder in ("cloudtrail", "aws", "k8s", "github"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for name, records in cloudtrail_files().items():
        write_gzip_json(out / "cloudtrail" / name, {"Records": records})
    write_report(out / "aws" / "credential_report.csv")
    lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in k8s_events())
    (out / "k8s" / "audit.jsonl").write_text(lines, encoding="utf-8")
    lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in github_events())
    (out / "github" / "audit.jsonl").write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
