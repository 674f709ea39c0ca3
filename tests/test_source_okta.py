"""The Okta System Log adapter, on public samples and on hand-made edge cases."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.source_support import Loaded, load, real_logs_dir, write_jsonl

PANTHER = "panther_okta_systemlog_rule_tests.jsonl"


@pytest.fixture(scope="module")
def okta_dir() -> Path:
    return real_logs_dir() / "okta"


@pytest.fixture(scope="module")
def panther(okta_dir: Path) -> Loaded:
    return load(okta_dir / PANTHER)


def _event(**overrides: object) -> dict[str, object]:
    """A service app's client-credentials token grant, as Okta documents the LogEvent."""
    event: dict[str, object] = {
        "uuid": "5d1e7a40-0000-11ef-0000-000000000001",
        "published": "2024-06-01T10:00:00.000Z",
        "eventType": "app.oauth2.as.token.grant.access_token",
        "actor": {
            "id": "0oa1svcclient",
            "type": "PublicClientApp",
            "alternateId": "reporting-bot",
            "displayName": "Reporting Bot",
        },
        "client": {
            "id": "0oa1svcclient",
            "ipAddress": "198.51.100.10",
            "userAgent": {"rawUserAgent": "python-requests/2.31"},
        },
        "debugContext": {
            "debugData": {
                "grantType": "client_credentials",
                "grantedScopes": "okta.users.read okta.apps.manage",
                "requestUri": "/oauth2/default/v1/token",
            }
        },
        "outcome": {"result": "SUCCESS"},
        "transaction": {"id": "txn-1", "type": "WEB", "detail": {}},
        "target": [{"id": "AT.x1", "type": "access_token"}],
    }
    event.update(overrides)
    return event


def test_every_okta_sample_is_detected(okta_dir: Path) -> None:
    loaded = load(*sorted(okta_dir.iterdir()))
    assert {f.format for f in loaded.report.files} == {"okta"}
    assert not loaded.report.failed_files


def test_panther_samples_load_or_are_rejected_with_reasons(panther: Loaded) -> None:
    assert (panther.file.loaded, panther.file.rejected) == (60, 13)
    rejects = panther.rejects()
    assert rejects[3] == 'unparseable published: "redacted"'
    assert rejects[72] == "missing published (the event time)"  # an enrichment-only stub


def test_oauth_event_by_an_app_names_client_user_and_scopes(panther: Loaded) -> None:
    event = panther.event(1)
    assert event["principal"] == "123456"
    assert event["principal_type"] == "service"
    assert event["client_id"] == "okta.1234"
    assert event["on_behalf_of"] == "abcd123"  # the User target of the authorization
    assert event["scopes_granted"] == ["openid", "profile", "email", "okta.users.read.self"]
    assert event["action"] == "app.oauth2.authorize.code"
    assert (event["trace_id"], event["session_id"]) == (None, "123456789")
    assert (event["outcome"], event["source_ip"]) == ("success", "1.2.3.4")
    assert event["ts"] == datetime(2022, 12, 13, 15, 22, 58, 759000, tzinfo=UTC)


def test_api_token_call_is_a_human_using_a_static_token(panther: Loaded) -> None:
    event = panther.event(8)
    assert event["principal"] == "alice.beaver@company.com"
    assert event["principal_id"] == "00u99ped55av2JpGs5d7"  # line 60 renames this login
    assert panther.event(60)["principal_id"] == "00u99ped55av2JpGs5d7"
    assert event["principal_type"] == "human"
    assert event["credential_id"] == "00T1bjatrp6Nl1dOc5d7"
    assert event["credential_type"] == "okta_api_token"
    assert event["client_id"] is None  # client.id on an SSWS call is an agent, not a client


def test_odd_actors_and_outcomes(panther: Loaded) -> None:
    threat = panther.event(64)
    assert (threat["principal_type"], threat["outcome"]) == ("unknown", "failure")
    challenge = panther.event(26)
    assert challenge["outcome"] == "unknown"
    assert challenge["status"] == "CHALLENGE: Sign-on policy evaluation resulted in CHALLENGE"
    assert panther.event(6)["ts"].year == 2021  # Panther's p_event_time when published is absent


def test_pretty_printed_okta_event(okta_dir: Path) -> None:
    loaded = load(okta_dir / "ocsf_examples_okta_authentication.raw.json")
    event = loaded.event(1)
    assert (event["principal"], event["principal_type"]) == ("john.doe@example.com", "human")
    assert event["session_id"] == "idxBager62CSveUkTxvgRtonA"
    assert event["trace_id"] is None  # transaction.id names one request
    assert event["resource"] == "/idp/idx/authenticators/poll"


def test_client_credentials_grant_uses_the_client_as_credential(tmp_path: Path) -> None:
    loaded = load(write_jsonl(tmp_path / "okta.jsonl", [_event()]))
    event = loaded.event(1)
    assert (event["credential_id"], event["credential_type"]) == (
        "0oa1svcclient",
        "okta_oauth_client",
    )
    assert event["scopes_granted"] == ["okta.users.read", "okta.apps.manage"]
    assert event["on_behalf_of"] is None
    assert event["user_agent"] == "python-requests/2.31"


def test_edge_cases_are_rejected_or_parsed(tmp_path: Path) -> None:
    records = [
        _event(),
        _event(actor="reporting-bot"),
        _event(actor=None, client=None),
        _event(published=1717236000123),
        "{not json",
        _event(debugContext={"debugData": {"grantedScopes": {"a": 1}}}),
    ]
    loaded = load(write_jsonl(tmp_path / "okta.jsonl", records))
    assert loaded.file.format == "okta"
    assert loaded.lines() == [1, 4]
    assert loaded.event(4)["ts"] == datetime(2024, 6, 1, 10, 0, 0, 123000, tzinfo=UTC)
    rejects = loaded.rejects()
    assert rejects[2] == 'field "actor" must be an object'
    assert rejects[3].startswith("no actor")
    assert rejects[5] == "not valid JSON"
    assert rejects[6].startswith("debugData.grantedScopes must be")


def test_json_array_of_events(tmp_path: Path) -> None:
    path = tmp_path / "okta.json"
    path.write_text(json.dumps([_event(uuid=str(n)) for n in range(3)], indent=2))
    loaded = load(path)
    assert (loaded.file.format, loaded.file.loaded) == ("okta", 3)


def test_format_hint_reads_events_detection_would_not(tmp_path: Path) -> None:
    bare = {"published": "2024-06-01T10:00:00Z", "actor": {"id": "00u1", "type": "User"}}
    path = write_jsonl(tmp_path / "bare.jsonl", [bare])
    assert load(path).file.error is not None  # no event type: not recognisably Okta
    hinted = load(path, hint="okta")
    assert (hinted.file.format, hinted.event(1)["principal"]) == ("okta", "00u1")


def test_an_app_named_as_an_agent_is_an_agent(tmp_path: Path) -> None:
    """From a rules review: every Okta app was a `service`, so M2M101 and M2M505 never judged
    an AI agent. An app is an agent by its name (`agent_patterns`); a person stays a person."""
    agent = _event()  # `reporting-bot`
    app = _event(actor={"id": "0oa2", "type": "PublicClientApp", "alternateId": "billing-sync"})
    person = _event(actor={"id": "00u1", "type": "User", "alternateId": "agent.smith@example.com"})
    loaded = load(write_jsonl(tmp_path / "okta.jsonl", [agent, app, person]))
    kinds = [loaded.event(n)["principal_type"] for n in (1, 2, 3)]
    assert kinds == ["agent", "service", "human"]
