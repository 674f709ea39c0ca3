"""The Kubernetes audit adapter: real vendor samples, the sample estate, hand-made edge cases."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from m2maudit.canonical import EVENT_COLUMNS
from m2maudit.config import Config
from m2maudit.scan import run_scan
from m2maudit.sources.base import Sample
from m2maudit.sources.k8s_audit import K8sAuditAdapter
from m2maudit.store import Store
from tests.cloud_fixtures import (
    SAMPLE_LOGS,
    event_at,
    load,
    real_log,
    rejects,
    rows,
    utc,
    write_jsonl,
)

ELASTIC = "k8s_audit/elastic_kubernetes_audit_logs_test-audit.log"
PANTHER = "k8s_audit/panther_eks_audit_rule_tests.jsonl"


def audit_event(
    username: str = "system:serviceaccount:agents:research-agent",
    *,
    verb: str = "get",
    resource: str = "pods",
    code: int = 200,
    when: str = "2026-11-20T08:00:00.000000Z",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"audit-{username}-{when}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/agents/{resource}",
        "verb": verb,
        "user": {"username": username, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.3.54", "10.0.0.1"],
        "userAgent": "client-go/v0.31",
        "objectRef": {"resource": resource, "namespace": "agents", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": when,
        "stageTimestamp": when,
        **extra,
    }


@pytest.fixture(scope="module")
def elastic() -> Store:
    store, report = load(real_log(ELASTIC))
    [file] = report.files
    assert (file.format, file.read, file.loaded, file.rejected) == ("k8s-audit", 5, 4, 1)
    return store


def test_elastic_plain_events(elastic: Store) -> None:
    event = event_at(elastic, ELASTIC, 2)
    assert event["principal"] == "system:serviceaccount:kube-system:elastic-agent"
    assert event["principal_type"] == "service"  # a log shipper (infrastructure_patterns)
    assert event["credential_type"] == "k8s_service_account_token"
    assert event["action"] == "get leases"
    assert event["resource"] == (
        "namespaces/kube-system/leases.coordination.k8s.io/elastic-agent-cluster-test"
    )
    assert (event["outcome"], event["status"]) == ("success", "200")
    assert event["trace_id"] is None  # auditID names one request, not a task
    assert event["ts"] == utc("2025-07-16T10:12:56.525137")


def test_elastic_aks_wrapper_and_gke_entry(elastic: Store) -> None:
    aks = event_at(elastic, ELASTIC, 5)  # properties.log holding the event as an object
    assert (aks["principal"], aks["principal_type"]) == ("aksService", "service")
    assert aks["action"] == "update leases"
    assert rejects(elastic) == {
        4: "a GKE Cloud Audit Log entry (protoPayload): load it as its own gcp-audit file"
    }


def test_ocsf_eks_event_with_iam_identity() -> None:
    path = real_log("k8s_audit/ocsf_examples_eks_audit.raw.json")
    store, report = load(path)
    assert [(f.format, f.loaded) for f in report.files] == [("k8s-audit", 1)]
    event = event_at(store, path.name, 1)
    # The node signed in with its instance role's session: the role, as CloudTrail names it.
    assert event["principal"] == (
        "arn:aws:iam::123456789012:role/example-test-161366663-NodeInstanceRole-abc12345678912"
    )
    assert event["principal_id"] == "ABCD1234567890EXAMPLE"
    assert event["principal_type"] == "service"  # the user name is a node's
    assert (event["credential_id"], event["credential_type"]) == ("EXAMPLEUIDTEST", "aws_session")
    assert event["session_id"] == "i-12345678901"
    assert (event["action"], event["status"]) == ("create nodes", "201")


def test_panther_partial_events_are_rejects_and_renamed_keys_read() -> None:
    path = real_log(PANTHER)
    store, report = load(path)
    [file] = report.files
    # Lines 5 and 6 are one watch request at two stages: one event (line 6).
    assert (file.read, file.loaded, file.rejected) == (185, 17, 168)
    assert set(rejects(store).values()) == {"missing requestReceivedTimestamp (and stageTimestamp)"}
    eks_admin = event_at(store, path.name, 2)
    assert (eks_admin["credential_id"], eks_admin["credential_type"]) == (
        "ASIARLIVEKVNN6Y6J5UW",
        "aws_session",
    )
    assert eks_admin["session_id"] == "1669660343296132000"
    assert eks_admin["principal"] == "arn:aws:iam::123412341234:role/DevAdministrator"
    # Kubernetes takes kubernetes-admin for a person, so the role acted for that person.
    assert (eks_admin["principal_type"], eks_admin["on_behalf_of"]) == ("human", "kubernetes-admin")
    assert eks_admin["action"] == "get pods/log"
    coredns = event_at(store, path.name, 6)  # Panther's authentication_kubernetes_io_slash_*
    assert coredns["session_id"] == "coredns-57ff979f67-bl27n"
    assert (coredns["outcome"], coredns["status"]) == ("failure", "403")
    anonymous = event_at(store, path.name, 11)
    assert (anonymous["principal_type"], anonymous["action"]) == ("unknown", "get /version")
    assert anonymous["principal"] == "system:anonymous"  # no IAM identity: the user name


def test_an_aws_key_used_by_kubectl_and_the_aws_api_is_one_principals(tmp_path: Path) -> None:
    """EKS named an IAM user's caller by the user name the cluster maps it to, CloudTrail by
    the user's ARN: the one key was "shared by 2 principals" (M2M504, high)."""
    key, arn = "AKIAIOSFODNN7EXAMPLE", "arn:aws:iam::123412341234:user/alice"
    extra = {"accessKeyId": [key], "arn": [arn], "canonicalArn": [arn]}
    kubectl = audit_event(
        "alice-admin",
        user={
            "username": "alice-admin",
            "uid": "aws-iam-authenticator:123412341234:AIDAEXAMPLEALICE",
            "groups": ["system:authenticated"],
            "extra": extra,
        },
    )
    identity = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLEALICE",
        "arn": arn,
        "accountId": "123412341234",
        "accessKeyId": key,
        "userName": "alice",
    }
    aws_api = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": "2026-11-20T09:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "10.0.3.54",
        "userAgent": "aws-cli/2.15",
        "eventID": "e-1",
        "eventType": "AwsApiCall",
    }
    (tmp_path / "trail.json").write_text(json.dumps({"Records": [aws_api]}))
    store, _ = load(write_jsonl(tmp_path / "audit.jsonl", [kubectl]), tmp_path / "trail.json")
    callers = "SELECT DISTINCT source_format, principal, principal_id FROM events ORDER BY 1"
    assert [tuple(row.values()) for row in rows(store, callers)] == [
        ("cloudtrail", arn, "AIDAEXAMPLEALICE"),
        ("k8s-audit", arn, "AIDAEXAMPLEALICE"),
    ]
    result = run_scan(store, Config(), utc("2026-11-21T00:00:00"))
    assert [f for f in result.findings if f.rule_id == "M2M504"] == []


def test_an_eks_callers_kind_is_its_user_names(tmp_path: Path) -> None:
    """From a review: matched against the IAM role's ARN, the config's service patterns made
    people signed in through an Identity Center role services, and an agent pattern made a
    node an agent. The user name decides; a person's is kept as whom the role acted for."""
    role = "arn:aws:iam::123412341234:role/AWSReservedSSO_AdministratorAccess_0123456789abcdef"
    node_role = "arn:aws:iam::123412341234:role/eks-node-agent-role"

    def signed_in(username: str, arn: str, when: str) -> dict[str, Any]:
        extra = {"accessKeyId": ["ASIAEXAMPLE0000000" + when[15]], "canonicalArn": [arn]}
        user = {"username": username, "groups": ["system:authenticated"], "extra": extra}
        return audit_event(username, user=user, when=when)

    path = write_jsonl(
        tmp_path / "audit.jsonl",
        [
            signed_in("alice@example.com", role, "2026-11-20T08:00:00.000000Z"),
            signed_in("system:node:ip-10-0-1-2.ec2.internal", node_role, "2026-11-20T08:01:00Z"),
        ],
    )
    store, _ = load(path)
    alice, node = event_at(store, "audit.jsonl", 1), event_at(store, "audit.jsonl", 2)
    assert (alice["principal"], alice["principal_type"]) == (role, "human")
    assert alice["on_behalf_of"] == "alice@example.com"
    assert (node["principal"], node["principal_type"], node["on_behalf_of"]) == (
        node_role,
        "service",
        None,
    )


def test_an_eks_callers_key_is_known_by_the_iam_credential_report(tmp_path: Path) -> None:
    """The report lists alice's active key slot by her ARN; named by the user name the
    cluster maps her to, her kubectl calls used a key "not in the inventory" (M2M503, high)."""
    key, arn = "AKIAIOSFODNN7EXAMPLE", "arn:aws:iam::123412341234:user/alice"
    user = {
        "username": "alice-admin",
        "groups": ["system:authenticated"],
        "extra": {"accessKeyId": [key], "arn": [arn], "canonicalArn": [arn]},
    }
    report = tmp_path / "credential_report.csv"
    header = (SAMPLE_LOGS / "aws" / "credential_report.csv").read_text().splitlines()[0]
    alice = (
        f"alice,{arn},2024-05-20T10:00:00+00:00,false,N/A,N/A,N/A,false,"
        "true,2026-10-01T00:00:00+00:00,2026-11-20T08:00:00+00:00,us-east-1,s3,"
        "false,N/A,N/A,N/A,N/A,false,N/A,false,N/A"
    )
    report.write_text(f"{header}\n{alice}\n")
    store, _ = load(
        write_jsonl(tmp_path / "audit.jsonl", [audit_event("alice-admin", user=user)]),
        inventories=[report],
    )
    result = run_scan(store, Config(), utc("2026-11-21T00:00:00"))
    assert [f.rule_id for f in result.findings if f.rule_id == "M2M503"] == []


def test_a_secrets_values_in_an_audit_body_are_a_secret_in_the_log(tmp_path: Path) -> None:
    """An audit policy that logs `secrets` at `Request` level or above writes each Secret's
    values in the log: base64, which no secret pattern tells from other text."""
    password = "s3cr3t-db-passw0rd"
    encoded = base64.b64encode(password.encode()).decode()
    body = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"}}
    read = audit_event(
        resource="secrets", responseObject={**body, "data": {"credentials": encoded}}
    )
    created = audit_event(  # the same Secret, as written: its values in clear
        verb="create",
        resource="secrets",
        when="2026-11-20T07:00:00.000000Z",
        requestObject={**body, "stringData": {"credentials": password}},
    )
    listed = audit_event(
        verb="list",
        resource="secrets",
        when="2026-11-20T09:00:00.000000Z",
        responseObject={"kind": "SecretList", "items": [{"data": {"token": encoded}}]},
    )
    metadata_only = audit_event(resource="secrets", when="2026-11-20T10:00:00.000000Z")
    redacted = audit_event(  # a pipeline's placeholders: no Kubernetes wrote these
        resource="secrets",
        when="2026-11-20T10:30:00.000000Z",
        responseObject={**body, "data": {"a": "***", "b": "REDACTED", "c": "<hidden>"}},
    )
    config_map = audit_event(
        resource="configmaps",
        when="2026-11-20T11:00:00.000000Z",
        responseObject={"kind": "ConfigMap", "data": {"credentials": encoded}},
    )
    events = [read, created, listed, metadata_only, redacted, config_map]
    path = write_jsonl(tmp_path / "audit.jsonl", events)
    store, _ = load(path)
    leaks = "SELECT leaked_secrets FROM events ORDER BY source_line"
    by_line = [row["leaked_secrets"] for row in rows(store, leaks)]
    assert by_line[0] == by_line[1] and len(by_line[0]) == 1  # one Secret, one fingerprint
    assert by_line[0][0].startswith("k8s_secret:")
    assert by_line[2] != by_line[0] and by_line[2][0].startswith("k8s_secret:")
    assert by_line[3:] == [None, None, None]
    result = run_scan(store, Config(), utc("2026-11-21T00:00:00"))
    exposures = [(f.token_id, f.count) for f in result.findings if f.rule_id == "M2M601"]
    assert sorted(exposures) == sorted(
        [(by_line[0][0].split(":")[1], 2), (by_line[2][0].split(":")[1], 1)]
    )
    dump = store.con.execute("SELECT * FROM events").fetchall()
    assert password not in str(dump) and encoded not in str(dump)


def test_a_secrets_values_are_one_secret_not_also_a_password_pattern(tmp_path: Path) -> None:
    """A Secret's key named `password` also matches the `password = value` pattern: its value
    was reported twice, and its base64 and plain forms as two different passwords. The
    Secret's fingerprint covers its values; a secret elsewhere in the event is still found."""
    password = "s3cr3t-db-passw0rd"
    encoded = base64.b64encode(password.encode()).decode()
    body = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "db"}}
    read = audit_event(resource="secrets", responseObject={**body, "data": {"password": encoded}})
    created = audit_event(
        verb="create",
        resource="secrets",
        when="2026-11-20T07:00:00.000000Z",
        requestObject={**body, "stringData": {"password": password}},
    )
    listed = audit_event(
        verb="list",
        resource="secrets",
        when="2026-11-20T09:00:00.000000Z",
        responseObject={"kind": "SecretList", "items": [{"data": {"api_key": encoded}}]},
    )
    annotated = {"name": "db", "annotations": {"note": "password=hunter2-hunter2"}}
    with_another = audit_event(  # a password in an annotation is no value of the Secret
        verb="update",
        resource="secrets",
        when="2026-11-20T10:00:00.000000Z",
        requestObject={**body, "metadata": annotated, "stringData": {"password": password}},
    )
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    with_a_jwt = audit_event(  # a value a pattern knows in clear keeps its own kind too
        verb="create",
        resource="secrets",
        when="2026-11-20T11:00:00.000000Z",
        requestObject={**body, "stringData": {"token": jwt}},
    )
    events = [read, created, listed, with_another, with_a_jwt]
    store, _ = load(write_jsonl(tmp_path / "audit.jsonl", events))
    leaks = "SELECT leaked_secrets FROM events ORDER BY source_line"
    by_line = [row["leaked_secrets"] for row in rows(store, leaks)]
    assert by_line[0] == by_line[1] and len(by_line[0]) == 1
    assert by_line[0][0].startswith("k8s_secret:")
    assert len(by_line[2]) == 1 and by_line[2][0].startswith("k8s_secret:")
    kinds = sorted(secret.split(":")[0] for secret in by_line[3])
    assert kinds == ["k8s_secret", "password_or_key"] and by_line[0][0] in by_line[3]
    assert sorted(secret.split(":")[0] for secret in by_line[4]) == ["jwt", "k8s_secret"]
    result = run_scan(store, Config(), utc("2026-11-21T00:00:00"))
    exposures = sorted(f.count for f in result.findings if f.rule_id == "M2M601")
    assert exposures == [1, 1, 1, 1, 3]  # the Secret in three records; the others once


def test_a_json_patch_of_a_secret_writes_its_values_in_the_log(tmp_path: Path) -> None:
    """`kubectl patch secret --type=json` sends a list of operations, not an object: each
    `add` or `replace` of a value under `/data` (base64) or `/stringData` (plain) is the
    Secret's value in clear. The same value read in a Secret is the same fingerprint."""
    password = "s3cr3t-db-passw0rd"
    encoded = base64.b64encode(password.encode()).decode()
    read = audit_event(
        resource="secrets",
        responseObject={"kind": "Secret", "data": {"credentials": encoded}},
    )
    patched = audit_event(
        verb="patch",
        resource="secrets",
        when="2026-11-20T07:00:00.000000Z",
        requestObject=[
            {"op": "replace", "path": "/data/credentials", "value": encoded},
            {"op": "remove", "path": "/data/old"},
        ],
    )
    plain = audit_event(  # a key with `/` is written `~1` in a JSON pointer
        verb="patch",
        resource="secrets",
        when="2026-11-20T07:30:00.000000Z",
        requestObject=[{"op": "add", "path": "/stringData/api~1key", "value": "k-0123456789"}],
    )
    whole = audit_event(  # the whole map replaced at once
        verb="patch",
        resource="secrets",
        when="2026-11-20T07:45:00.000000Z",
        requestObject=[{"op": "replace", "path": "/data", "value": {"credentials": encoded}}],
    )
    removed_only = audit_event(
        verb="patch",
        resource="secrets",
        when="2026-11-20T08:00:00.000000Z",
        requestObject=[{"op": "remove", "path": "/data/credentials"}],
    )
    twice = audit_event(  # a key written twice: its last value; a `test` shows the value
        verb="patch",
        resource="secrets",
        when="2026-11-20T08:10:00.000000Z",
        requestObject=[
            {"op": "test", "path": "/data/credentials", "value": encoded},
            {"op": "add", "path": "/data/credentials", "value": "b2xk"},
            {"op": "replace", "path": "/data/credentials", "value": encoded},
        ],
    )
    whole_twice = audit_event(
        verb="patch",
        resource="secrets",
        when="2026-11-20T08:20:00.000000Z",
        requestObject=[
            {"op": "replace", "path": "/data", "value": {}},
            {"op": "replace", "path": "/data", "value": {"credentials": encoded}},
        ],
    )
    key_then_whole = audit_event(  # the writes in order: the whole map replaces the key's
        verb="patch",
        resource="secrets",
        when="2026-11-20T08:25:00.000000Z",
        requestObject=[
            {"op": "add", "path": "/data/credentials", "value": "b2xk"},
            {"op": "replace", "path": "/data", "value": {"credentials": encoded}},
        ],
    )
    config_map = audit_event(
        verb="patch",
        resource="configmaps",
        when="2026-11-20T08:30:00.000000Z",
        requestObject=[{"op": "replace", "path": "/data/credentials", "value": encoded}],
    )
    events = [
        *(read, patched, plain, whole, removed_only, config_map),
        *(twice, whole_twice, key_then_whole),
    ]
    store, _ = load(write_jsonl(tmp_path / "audit.jsonl", events))
    leaks = "SELECT leaked_secrets FROM events ORDER BY source_line"
    by_line = [row["leaked_secrets"] for row in rows(store, leaks)]
    assert by_line[0][0].startswith("k8s_secret:")
    assert by_line[1] == by_line[0] == by_line[3]
    assert by_line[2] is not None and by_line[2] != by_line[0]
    assert by_line[4:6] == [None, None]
    assert by_line[6] == by_line[7] == by_line[8] == by_line[0]
    dump = store.con.execute("SELECT * FROM events").fetchall()
    assert password not in str(dump) and encoded not in str(dump)
    assert "k-0123456789" not in str(dump)


def test_bound_token_credential_id_and_pod(tmp_path: Path) -> None:
    extra = {
        "authentication.kubernetes.io/credential-id": ["JTI=1f2e3d"],
        "authentication.kubernetes.io/pod-name": ["research-agent-7c9d5"],
    }
    event = audit_event()
    event["user"]["extra"] = extra
    cert = audit_event("ops-robot", when="2026-11-20T08:01:00.000000Z")
    cert["user"]["extra"] = {"authentication.kubernetes.io/credential-id": ["X509SHA256=ab12"]}
    store, _ = load(write_jsonl(tmp_path / "audit.log", [event, cert]))
    first = event_at(store, "audit.log", 1)
    assert (first["credential_id"], first["credential_type"]) == (
        "JTI=1f2e3d",
        "k8s_service_account_token",
    )
    assert first["session_id"] == "research-agent-7c9d5"
    assert first["source_ip"] == "10.0.3.54"
    second = event_at(store, "audit.log", 2)
    assert second["credential_type"] == "k8s_client_certificate"
    assert second["principal_type"] == "human"  # a Kubernetes "normal user"


def test_impersonation_of_a_person_and_of_a_service_account(tmp_path: Path) -> None:
    caller = "system:serviceaccount:agents:support-agent"
    as_person = audit_event(caller, impersonatedUser={"username": "alice@example.com"})
    as_machine = audit_event(
        caller,
        when="2026-11-20T08:02:00.000000Z",
        impersonatedUser={"username": "system:serviceaccount:ci:deployer"},
    )
    store, _ = load(write_jsonl(tmp_path / "audit.log", [as_person, as_machine]))
    person = event_at(store, "audit.log", 1)
    assert person["principal"] == caller
    assert person["on_behalf_of"] == "alice@example.com"
    assert person["act_chain"] == [caller]
    machine = event_at(store, "audit.log", 2)
    assert machine["on_behalf_of"] is None
    assert machine["act_chain"] == [caller, "system:serviceaccount:ci:deployer"]


def test_aks_records_with_the_event_as_a_string(tmp_path: Path) -> None:
    events = [audit_event(when=f"2026-11-20T08:0{i}:00.000000Z") for i in range(3)]
    del events[1]["user"]
    batch = {
        "records": [
            {
                "category": "kube-audit",
                "time": "2026-11-20T08:00:01Z",
                "properties": {
                    "log": json.dumps(event),
                    "stream": "stdout",
                    "pod": "kube-apiserver",
                },
            }
            for event in events
        ]
    }
    path = tmp_path / "PT1H.json"
    path.write_text(json.dumps(batch))
    store, report = load(path)
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [("k8s-audit", 2, 1)]
    assert rejects(store) == {2: "missing user.username"}
    assert event_at(store, "PT1H.json", 3)["ts"] == utc("2026-11-20T08:02:00")


def test_eks_cloudwatch_export(tmp_path: Path) -> None:
    export = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "/aws/eks/prod/cluster",
        "logStream": "kube-apiserver-audit-1",
        "logEvents": [
            {"id": "1", "timestamp": 1, "message": json.dumps(audit_event())},
            {"id": "2", "timestamp": 2, "message": "not json at all"},
        ],
    }
    path = write_jsonl(tmp_path / "firehose.jsonl", [export])
    store, report = load(path)
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [("k8s-audit", 1, 1)]
    assert event_at(store, "firehose.jsonl", 1)["action"] == "get pods"
    assert rejects(store) == {2: "missing requestReceivedTimestamp (and stageTimestamp)"}


def test_field_map_documents_canonical_columns() -> None:
    documented = [column for column, _ in K8sAuditAdapter.field_map]
    assert len(documented) == len(set(documented))
    assert set(documented) <= set(EVENT_COLUMNS)
    assert {"ts", "principal", "credential_id", "on_behalf_of", "act_chain", "trace_id"} <= set(
        documented
    )


def test_detection() -> None:
    adapter, config = K8sAuditAdapter(), Config()
    event = audit_event()
    assert adapter.detect(Sample(json.dumps(event), "jsonl", event), config)
    aks = {"category": "kube-audit", "properties": {"log": json.dumps(event)}}
    assert adapter.detect(Sample(json.dumps(aks), "jsonl", aks), config)
    gcp = {"protoPayload": {"methodName": "io.k8s.core.v1.pods.get"}, "timestamp": "x"}
    assert not adapter.detect(Sample(json.dumps(gcp), "jsonl", gcp), config)
    cloudtrail = {"eventName": "GetObject", "eventSource": "s3.amazonaws.com"}
    assert not adapter.detect(Sample(json.dumps(cloudtrail), "jsonl", cloudtrail), config)


def test_sample_estate() -> None:
    store, report = load(SAMPLE_LOGS / "k8s")
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [("k8s-audit", 27, 0)]
    research = rows(
        store,
        """
        SELECT min(credential_issued_at) AS issued, max(credential_expires_at) AS expires,
               count(*) FILTER (WHERE outcome = 'failure') AS denied
        FROM events WHERE principal = 'system:serviceaccount:agents:research-agent'""",
    )[0]
    assert research["expires"] - research["issued"] == timedelta(hours=24)  # TokenRequest
    assert research["denied"] == 2
    impersonated = rows(
        store, "SELECT DISTINCT on_behalf_of, act_chain FROM events WHERE on_behalf_of IS NOT NULL"
    )
    assert impersonated == [
        {
            "on_behalf_of": "alice@example.com",
            "act_chain": ["system:serviceaccount:agents:support-agent"],
        }
    ]
    legacy = rows(
        store,
        "SELECT DISTINCT credential_id, credential_type FROM events "
        "WHERE principal = 'system:serviceaccount:ci:deployer'",
    )
    assert legacy == [{"credential_id": None, "credential_type": "k8s_service_account_token"}]


@pytest.mark.parametrize(
    ("username", "kind"),
    [
        ("system:serviceaccount:agents:research-agent", "agent"),  # an AI agent's account
        ("system:serviceaccount:kube-system:elastic-agent", "service"),  # a log shipper
        ("system:serviceaccount:ci:jenkins-agent", "service"),  # a CI runner
        ("system:serviceaccount:etl:loader", "service"),
        # Security and monitoring vendors' default names (a new user's trial).
        ("system:serviceaccount:amazon-guardduty:aws-guardduty-agent", "service"),
        ("system:serviceaccount:azure-arc:clusterconnect-agent", "service"),
        ("system:serviceaccount:signalfx:splunk-otel-collector-agent", "service"),
        ("system:serviceaccount:sysdig:sysdig-agent", "service"),
        ("system:serviceaccount:newrelic:nri-bundle-nrk8s-agent", "service"),
        ("system:serviceaccount:tfc:tfc-agent", "service"),
        ("system:serviceaccount:cattle-system:cattle-cluster-agent", "service"),  # Rancher
        # ... but not a word an AI agent may be named by.
        ("system:serviceaccount:sales:sales-insight-agent", "agent"),
        ("system:serviceaccount:etl:data-collector-agent", "agent"),
    ],
)
def test_a_service_account_is_an_agent_by_its_name_unless_infrastructure(
    tmp_path: Path, username: str, kind: str
) -> None:
    store, _ = load(write_jsonl(tmp_path / "audit.log", [audit_event(username)]))
    assert rows(store, "SELECT principal_type FROM events") == [{"principal_type": kind}]


def test_a_request_logged_at_each_stage_is_one_event(tmp_path: Path) -> None:
    """A policy that does not omit `RequestReceived` logs each request twice (a `watch` at
    `ResponseStarted` too): each stage was an event, so every call counted twice or three
    times. The last stage in the file stands for the request, as Vault's response does."""
    watch = audit_event(verb="watch", when="2026-11-20T08:00:01.000000Z")
    get = audit_event(when="2026-11-20T08:00:02.000000Z")
    received_only = audit_event(when="2026-11-20T08:00:03.000000Z", stage="RequestReceived")
    records = [
        {**watch, "stage": "RequestReceived", "responseStatus": None},
        {**get, "stage": "RequestReceived", "responseStatus": None},
        {**watch, "stage": "ResponseStarted"},
        get,
        {**watch, "stage": "ResponseComplete"},
        received_only,  # a request still running when the file was cut: kept
        # From a review: a client's own Audit-ID names other requests too; each is kept.
        {**audit_event("system:serviceaccount:ai:other", when=get["stageTimestamp"])}
        | {"auditID": get["auditID"]},
        audit_event(verb="list", resource="secrets", when=get["stageTimestamp"])
        | {"auditID": get["auditID"], "stage": "RequestReceived"},
    ]
    store, report = load(write_jsonl(tmp_path / "audit.jsonl", records))
    assert (report.files[0].loaded, report.files[0].rejected) == (5, 0)
    kept = rows(store, "SELECT source_line, action FROM events ORDER BY source_line")
    assert [row["source_line"] for row in kept] == [4, 5, 6, 7, 8]
