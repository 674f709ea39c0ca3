"""The GCP Cloud Audit Logs adapter: real vendor samples and hand-made edge cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from m2maudit.canonical import EVENT_COLUMNS
from m2maudit.config import Config
from m2maudit.sources.base import Sample
from m2maudit.sources.gcp_audit import GcpAuditAdapter
from m2maudit.store import Store
from tests.cloud_fixtures import event_at, load, real_log, rejects, utc, write_jsonl

PANTHER = "gcp_audit/panther_gcp_auditlog_rule_tests.jsonl"
SA = "{}@agents-prod.iam.gserviceaccount.com"


def entry(
    principal: str | None = SA.format("research-agent"),
    *,
    delegation: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
    when: str = "2026-11-20T08:00:00.123456789Z",
    **auth: Any,
) -> dict[str, Any]:
    authentication: dict[str, Any] = dict(auth)
    if principal:
        authentication["principalEmail"] = principal
    if delegation is not None:
        authentication["serviceAccountDelegationInfo"] = delegation
    payload: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "authenticationInfo": authentication,
        "authorizationInfo": [
            {"permission": "storage.objects.get", "granted": True},
            {"permission": "storage.objects.list", "granted": True},
            {"permission": "storage.objects.get", "granted": True},
        ],
        "methodName": "storage.objects.get",
        "resourceName": "projects/_/buckets/research-corpus/objects/paper.pdf",
        "serviceName": "storage.googleapis.com",
        "requestMetadata": {"callerIp": "10.128.0.7", "callerSuppliedUserAgent": "gcloud/490"},
    }
    if status is not None:
        payload["status"] = status
    return {
        "protoPayload": payload,
        "insertId": f"id-{principal}-{when}",
        "timestamp": when,
        "logName": "projects/agents-prod/logs/cloudaudit.googleapis.com%2Fdata_access",
    }


def person(email: str) -> dict[str, Any]:
    return {"firstPartyPrincipal": {"principalEmail": email}}


@pytest.fixture(scope="module")
def panther() -> Store:
    store, report = load(real_log(PANTHER))
    [file] = report.files
    assert (file.format, file.read, file.loaded, file.rejected) == ("gcp-audit", 196, 127, 69)
    return store


def test_panther_partial_entries_are_counted_rejects(panther: Store) -> None:
    reasons = rejects(panther)
    assert reasons[1] == "missing timestamp"
    assert reasons[17].startswith("no principal in protoPayload.authenticationInfo")
    assert set(reasons.values()) <= {
        "missing timestamp",
        'unparseable timestamp: "..."',
        "no principal in protoPayload.authenticationInfo (principalEmail, principalSubject)",
    }


def test_panther_service_account_key_call(panther: Store) -> None:
    event = event_at(panther, PANTHER, 7)
    assert event["principal"] == "terraform@platform.iam.gserviceaccount.com"
    assert event["principal_type"] == "service"
    assert event["credential_id"] == (
        "//iam.googleapis.com/projects/platform/serviceAccounts/"
        "terraform@platform.iam.gserviceaccount.com/keys/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
    )
    assert event["credential_type"] == "gcp_service_account_key"
    assert event["action"] == "SetIamPolicy"
    assert event["scopes_used"] == ["resourcemanager.organizations.setIamPolicy"]
    assert event["outcome"] == "success"


def test_a_service_account_with_a_personal_looking_email_is_not_a_person(panther: Store) -> None:
    """Line 18: principalEmail `user@example.com`, but principalSubject says
    `serviceAccount:` and a service-account key signed the call: a machine."""
    event = event_at(panther, PANTHER, 18)
    assert event["principal"] == "user@example.com"
    assert event["credential_type"] == "gcp_service_account_key"
    assert event["principal_type"] == "service"
    person = event_at(panther, PANTHER, 19)  # the same address with no such sign: a person
    assert (person["principal"], person["principal_type"]) == ("user@runpanther.com", "human")


def test_panther_lower_cased_top_level_keys(panther: Store) -> None:
    event = event_at(panther, PANTHER, 78)  # protopayload, insertid, callerIP
    assert (event["principal"], event["principal_type"]) == ("user@domain.com", "human")
    assert event["action"] == "google.appengine.v1.Firewall.CreateIngressRule"
    assert event["source_ip"] == "12.12.12.12"
    assert event["trace_id"] is None  # insertId names one entry, not a task
    assert event["ts"] == utc("2023-05-23T19:28:35.049")


def test_panther_permission_denied(panther: Store) -> None:
    event = event_at(panther, PANTHER, 94)
    assert (event["outcome"], event["status"]) == ("failure", "7")


def test_elastic_workload_identity_federation() -> None:
    path = real_log("gcp_audit/elastic_gcp_audit_test-iamcredentials-googleapis-com.log")
    store, report = load(path)
    assert [(f.format, f.loaded) for f in report.files] == [("gcp-audit", 1)]
    event = event_at(store, path.name, 1)
    assert event["principal"].startswith(
        "principal://iam.googleapis.com/projects/project-id/locations/global/workloadIdentityPools/"
    )
    assert (event["principal_type"], event["credential_type"]) == ("service", "gcp_oauth")
    assert event["act_chain"] is None  # its one delegation entry is empty
    assert event["scopes_used"] == ["iam.serviceAccounts.getAccessToken"]
    assert event["trace_id"] == "<id>"  # operation.id


def test_delegation_chain_from_a_person(tmp_path: Path) -> None:
    chain = [person("alice@example.com"), person(SA.format("gateway"))]
    machine_only = [{"principalSubject": "serviceAccount:" + SA.format("scheduler")}]
    store, _ = load(
        write_jsonl(
            tmp_path / "audit.jsonl",
            [
                entry(delegation=chain),
                entry(delegation=machine_only, when="2026-11-20T08:01:00Z"),
                entry(None, principalSubject="user:bob@example.com", when="2026-11-20T08:02:00Z"),
            ],
        )
    )
    delegated = event_at(store, "audit.jsonl", 1)
    assert delegated["principal"] == SA.format("research-agent")
    assert delegated["principal_type"] == "agent"
    assert delegated["on_behalf_of"] == "alice@example.com"
    assert delegated["act_chain"] == [SA.format("research-agent"), SA.format("gateway")]
    assert delegated["scopes_used"] == ["storage.objects.get", "storage.objects.list"]
    assert delegated["credential_type"] == "gcp_oauth"
    assert delegated["ts"] == utc("2026-11-20T08:00:00.123456")
    machine = event_at(store, "audit.jsonl", 2)
    assert machine["on_behalf_of"] is None
    assert machine["act_chain"] == [SA.format("research-agent"), SA.format("scheduler")]
    subject_only = event_at(store, "audit.jsonl", 3)
    assert (subject_only["principal"], subject_only["principal_type"]) == (
        "bob@example.com",
        "human",
    )


def test_gcloud_json_array_and_failures(tmp_path: Path) -> None:
    denied = entry(status={"code": 7, "message": "PERMISSION_DENIED"})
    no_auth = entry(None, when="2026-11-20T08:03:00Z")
    path = tmp_path / "read.json"
    path.write_text(json.dumps([entry(status={}), denied, no_auth], indent=2))
    store, report = load(path)
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [("gcp-audit", 2, 1)]
    assert event_at(store, "read.json", 1)["outcome"] == "success"
    assert (
        event_at(store, "read.json", 2)["outcome"],
        event_at(store, "read.json", 2)["status"],
    ) == ("failure", "7")
    assert rejects(store) == {
        3: "no principal in protoPayload.authenticationInfo (principalEmail, principalSubject)"
    }


def test_field_map_documents_canonical_columns() -> None:
    documented = [column for column, _ in GcpAuditAdapter.field_map]
    assert len(documented) == len(set(documented))
    assert set(documented) <= set(EVENT_COLUMNS)
    assert {"ts", "principal", "credential_id", "on_behalf_of", "act_chain", "trace_id"} <= set(
        documented
    )


def test_detection() -> None:
    adapter, config = GcpAuditAdapter(), Config()
    record = entry()
    assert adapter.detect(Sample(json.dumps(record), "jsonl", record), config)
    lowered = {"protopayload": {"methodName": "x"}, "insertid": "1"}
    assert adapter.detect(Sample(json.dumps(lowered), "jsonl", lowered), config)
    k8s = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get"}
    assert not adapter.detect(Sample(json.dumps(k8s), "jsonl", k8s), config)


def test_a_user_account_by_googles_word_is_a_person_whatever_its_name(tmp_path: Path) -> None:
    """`user:` is Google's statement of a user account: the name patterns read
    `claude.dupont@...` (`.*claude.*`), `hanna.allmann@...` (`.*llm.*`) and a domain like
    `travelagents.example` (`.*agent.*`) as AI agents', which made a person a high M2M101.
    Without the statement, the name still decides."""
    names = ["claude.dupont@example.fr", "hanna.allmann@example.de", "sam@travelagents.example"]
    stated = [entry(name, principalSubject=f"user:{name}") for name in names]
    unstated = entry("research-agent@example.com")
    path = write_jsonl(tmp_path / "users.jsonl", [*stated, unstated])
    store, _ = load(path)
    kinds = [event_at(store, "users.jsonl", line)["principal_type"] for line in (1, 2, 3, 4)]
    assert kinds == ["human", "human", "human", "agent"]
