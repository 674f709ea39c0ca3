"""The Entra ID sign-in adapter, on public samples and on hand-made edge cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.source_support import Loaded, load, real_logs_dir, write_jsonl


@pytest.fixture(scope="module")
def entra_dir() -> Path:
    return real_logs_dir() / "entra_signin"


@pytest.fixture(scope="module")
def panther(entra_dir: Path) -> Loaded:
    return load(entra_dir / "panther_azure_audit_signin_rule_tests.jsonl")


def _graph_sign_in(**overrides: Any) -> dict[str, Any]:
    """A Microsoft Graph `signIn` for a service principal (flat, no Azure Monitor envelope)."""
    record: dict[str, Any] = {
        "id": "66ea54eb-0000-0000-0000-000000000001",
        "createdDateTime": "2024-06-10T07:00:00Z",
        "appId": "11111111-2222-3333-4444-555555555555",
        "servicePrincipalId": "99999999-0000-0000-0000-000000000001",
        "servicePrincipalName": "nightly-export",
        "clientCredentialType": "clientSecret",
        "servicePrincipalCredentialKeyId": "7f0c0000-0000-0000-0000-00000000abcd",
        "resourceDisplayName": "Microsoft Graph",
        "ipAddress": "203.0.113.9",
        "correlationId": "c0ffee00-0000-0000-0000-000000000001",
        "status": {"errorCode": 0},
        "signInEventTypes": ["servicePrincipal"],
    }
    record.update(overrides)
    return record


def test_every_entra_sample_is_detected(entra_dir: Path) -> None:
    loaded = load(*sorted(entra_dir.iterdir()))
    assert {f.format for f in loaded.report.files} == {"entra-signin"}
    assert not loaded.report.failed_files


def test_service_principal_sign_in(entra_dir: Path) -> None:
    loaded = load(entra_dir / "elastic_azure_signinlogs_test-service-principal.log")
    event = loaded.event(1)
    assert event["principal"] == "ConfigMgrSvc_22222222-dfb4-4070-ad95-cf1e68280bb0"
    assert event["principal_type"] == "service"
    assert event["client_id"] == "22222222-ddf2-4ab6-b25f-f23d5d614338"
    assert (event["outcome"], event["status"]) == ("failure", "7000222")
    assert event["trace_id"] is None  # correlationId names one sign-in request
    assert event["resource"] == "Configuration Manager Microservice"
    assert event["source_ip"] == "11.22.33.44"
    assert event["ts"] == datetime(2021, 7, 30, 11, 29, 26, 673366, tzinfo=UTC)


def test_panther_mix_of_sign_ins_and_audit_events(panther: Loaded) -> None:
    assert (panther.file.loaded, panther.file.rejected) == (47, 0)
    machine = panther.event(35)
    assert machine["principal"] == "very-normal-service-principal"
    assert machine["principal_id"] == "4b6986ec-c49c-40c0-89ce-b2ac51213e39"
    assert machine["credential_id"] == "2afc776a-4e79-4588-b2ad-f62c94d6bea8"
    assert machine["credential_type"] == "client_credential"  # clientCredentialType "none"
    person = panther.event(34)
    assert (person["principal"], person["principal_type"]) == ("eve@lexcorp.com", "human")
    # The user's object id, not the app's: its servicePrincipalId is "".
    assert person["principal_id"] == "8105c513-d24b-4b8d-9035-f8d48854d703"
    assert person["credential_type"] is None  # the client app's credential, not the user's
    audit = panther.event(2)
    assert (audit["principal"], audit["action"]) == ("denethor@lotr.com", "Invite external user")
    assert audit["principal_id"] == "123456789"  # initiatedBy.user.id
    assert (audit["outcome"], audit["resource"]) == ("failure", "Zeus.Theboss")
    assert panther.event(14)["outcome"] == "success"  # resultType "Success" as a word


def test_graph_records_credential_kinds(tmp_path: Path) -> None:
    records = [
        _graph_sign_in(),
        _graph_sign_in(clientCredentialType="certificate"),
        _graph_sign_in(
            clientCredentialType="federatedIdentityCredential", servicePrincipalCredentialKeyId=None
        ),
        _graph_sign_in(
            managedIdentityType="systemAssigned",
            clientCredentialType="none",
            servicePrincipalCredentialKeyId=None,
            status={"errorCode": 50058},
        ),
    ]
    loaded = load(write_jsonl(tmp_path / "signins.jsonl", records))
    assert loaded.file.format == "entra-signin"
    kinds = [loaded.event(n)["credential_type"] for n in (1, 2, 3, 4)]
    assert kinds == [
        "client_secret",
        "client_certificate",
        "federated_credential",
        "managed_identity",
    ]
    first = loaded.event(1)
    assert first["credential_id"] == "7f0c0000-0000-0000-0000-00000000abcd"
    assert (first["principal"], first["outcome"]) == ("nightly-export", "success")
    assert loaded.event(4)["outcome"] == "failure"


@pytest.mark.parametrize("wrapper", ["value", "records"])
def test_graph_page_and_event_hub_batch_are_unwrapped(tmp_path: Path, wrapper: str) -> None:
    page = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns",
        wrapper: [_graph_sign_in(), _graph_sign_in(servicePrincipalName="other")],
    }
    path = tmp_path / "page.json"
    path.write_text(json.dumps(page, indent=2))
    loaded = load(path)
    assert (loaded.file.format, loaded.file.loaded) == ("entra-signin", 2)
    assert loaded.event(2)["principal"] == "other"


def test_edge_cases_are_rejected(tmp_path: Path) -> None:
    no_time = _graph_sign_in()
    del no_time["createdDateTime"]
    records = [
        _graph_sign_in(),
        no_time,
        _graph_sign_in(createdDateTime="not a date"),
        _graph_sign_in(
            servicePrincipalId=None,
            servicePrincipalName=None,
            appId=None,
            servicePrincipalCredentialKeyId=None,
        ),
        _graph_sign_in(signInEventTypes="servicePrincipal"),
        _graph_sign_in(createdDateTime=1718002800000),
    ]
    loaded = load(write_jsonl(tmp_path / "signins.jsonl", records))
    assert loaded.lines() == [1, 5, 6]
    assert loaded.event(6)["ts"] == datetime(2024, 6, 10, 7, 0, tzinfo=UTC)
    rejects = loaded.rejects()
    assert rejects[2] == "missing time / createdDateTime"
    assert rejects[3].startswith("unparseable time")
    assert rejects[4].startswith("no identity")


def test_a_service_principal_named_as_an_agent_is_an_agent(tmp_path: Path) -> None:
    """From a rules review: every service principal was a `service`, so M2M101 and M2M505
    never judged an AI agent in Entra's log. A machine is an agent by its name, as a name in
    a generic log is (`agent_patterns`), unless it is the platform's own daemon."""
    names = ["research-agent", "nightly-export", "datadog-agent"]
    records = [_graph_sign_in(servicePrincipalName=name) for name in names]
    loaded = load(write_jsonl(tmp_path / "signins.jsonl", records))
    kinds = [loaded.event(n)["principal_type"] for n in (1, 2, 3)]
    assert kinds == ["agent", "service", "service"]
