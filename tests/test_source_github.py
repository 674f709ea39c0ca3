"""The GitHub audit log adapter, on public samples and on hand-made edge cases."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from m2maudit.fingerprint import fingerprint
from tests.source_support import Loaded, load, real_logs_dir, write_jsonl


@pytest.fixture(scope="module")
def github_dir() -> Path:
    return real_logs_dir() / "github_audit"


@pytest.fixture(scope="module")
def panther(github_dir: Path) -> Loaded:
    return load(github_dir / "panther_github_audit_rule_tests.jsonl")


def _event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "@timestamp": 1718000000123,
        "_document_id": "doc-1",
        "action": "repo.download_zip",
        "actor": "octo-dev",
        "actor_id": 42,
        "org": "acme",
        "repo": "acme/widgets",
        "actor_ip": "198.51.100.4",
        "user_agent": "curl/8.5",
        "request_id": "C0DE:1234:5678",
    }
    event.update(overrides)
    return event


def test_every_github_sample_is_detected(github_dir: Path) -> None:
    loaded = load(*sorted(github_dir.iterdir()))
    assert {f.format for f in loaded.report.files} == {"github-audit"}
    assert not loaded.report.failed_files


def test_api_request_with_a_token(github_dir: Path) -> None:
    loaded = load(github_dir / "elastic_github_audit_test-api-request-events.log")
    assert (loaded.file.loaded, loaded.file.rejected) == (2, 0)
    event = loaded.event(1)
    assert (event["principal"], event["principal_type"]) == ("user_actor", "human")
    assert event["principal_id"] == "11111"  # actor_id: a renamed login keeps it
    assert event["credential_id"] == "555555"
    assert event["credential_type"] == "github_token"  # token data but no access type logged
    assert event["scopes_granted"] == ["repo", "read:org"]
    assert (event["outcome"], event["status"]) == ("success", "200")
    assert event["resource"] == "/repos/{owner}/{repo}/pulls"
    assert event["ts"] == datetime(2025, 3, 10, 12, 57, 45, 102000, tzinfo=UTC)
    # hashed_token is base64(SHA-256(token)): the same digest as m2maudit's own fingerprint.
    assert (
        event["token_fp"]
        == base64.b64decode("E8Fzcgs3TQXqhrKKC/qNR+2XZnaK3ykQBSAt1kPMiJs=").hex()[:16]
    )


def test_panther_samples_load_or_are_rejected_with_reasons(panther: Loaded) -> None:
    # Line 98 has Panther's p_event_time alone: read, as the other adapters read it.
    assert (panther.file.loaded, panther.file.rejected) == (64, 34)
    assert panther.event(98)["ts"] == datetime(2025, 10, 15, 18, 45, 47, 48000, tzinfo=UTC)
    rejects = panther.rejects()
    assert rejects[1] == "no actor, token_id or hashed_token"
    assert rejects[21] == "missing @timestamp / created_at"
    assert rejects[84].startswith("unparseable @timestamp / created_at")


def test_app_server_to_server_token_is_a_service(panther: Loaded) -> None:
    event = panther.event(97)
    assert (event["principal"], event["principal_type"]) == ("github-actions[bot]", "service")
    assert event["principal_id"] == "12345678"
    assert event["credential_type"] == "github_app_token"
    assert event["credential_id"] == "1111111111111"


def test_github_itself_and_machine_users_are_not_people(panther: Loaded, tmp_path: Path) -> None:
    """Line 90: `secret_scanning_alert.create` by actor `github` (GitHub's own scanner) was
    stored as a person. A machine user named as a service is one; a login that merely contains
    an agent word (`claude-martin`, `magenta-dev`) is still a person's handle."""
    assert (panther.event(90)["principal"], panther.event(90)["principal_type"]) == (
        "github",
        "service",
    )
    # The alert is its repository and number (rule M2M606 follows it to its resolution).
    assert panther.event(90)["resource"] == "acme-inc/crown-jewels#12"
    calls = [
        {"action": "git.clone", "actor": actor, "@timestamp": 1700000000000 + n}
        for n, actor in enumerate(["GitHub", "svc-mirror", "claude-martin", "magenta-dev"])
    ]
    loaded = load(write_jsonl(tmp_path / "audit.jsonl", calls))
    kinds = [loaded.event(line)["principal_type"] for line in (1, 2, 3, 4)]
    assert kinds == ["service", "service", "human", "human"]


def test_oauth_token_acts_for_its_user(panther: Loaded) -> None:
    event = panther.event(16)
    assert (event["credential_type"], event["credential_id"]) == ("oauth_token", "0123456789")
    assert event["on_behalf_of"] == "acme-inc-user"
    assert (event["source_ip"], event["user_agent"]) == ("5.6.7.8", "git/2.30.2")
    assert panther.event(4)["principal_type"] == "service"  # secret-scanning[bot]
    assert panther.event(2)["principal_type"] == "human"


def test_ssh_key_push_has_no_token_fingerprint(github_dir: Path) -> None:
    event = load(github_dir / "ocsf_examples_github_api_activity.raw.json").event(1)
    assert event["credential_type"] == "github_ssh_key"
    assert event["credential_id"] == "tO8qpNGhmNe8OMdEXAMPLE"  # token_id 0 means none
    assert event["token_fp"] is None


@pytest.mark.parametrize(
    ("access_type", "credential_type", "principal_type"),
    [
        ("Personal access token (classic)", "github_pat", "human"),
        ("Fine-grained personal access token", "github_pat_fine_grained", "human"),
        ("GitHub App server-to-server token", "github_app_token", "service"),
        ("GitHub App user-to-server token", "github_app_user_token", "human"),
        ("OAuth access token", "oauth_token", "human"),
        ("Deploy key", "github_deploy_key", "service"),
        ("Something New", "something_new", "human"),
    ],
)
def test_access_types(
    tmp_path: Path, access_type: str, credential_type: str, principal_type: str
) -> None:
    record = _event(programmatic_access_type=access_type, token_id=9)
    event = load(write_jsonl(tmp_path / "gh.jsonl", [record])).event(1)
    assert (event["credential_type"], event["principal_type"]) == (credential_type, principal_type)


def test_hashed_token_matches_m2maudit_fingerprint(tmp_path: Path) -> None:
    token = "example-token-not-a-real-secret"
    hashed = base64.b64encode(hashlib.sha256(token.encode()).digest()).decode()
    record = _event(
        programmatic_access_type="OAuth access token",
        hashed_token=hashed,
        oauth_application_id=1234,
        token_scopes="repo,workflow",
    )
    event = load(write_jsonl(tmp_path / "gh.jsonl", [record])).event(1)
    assert event["token_fp"] == fingerprint(token)
    assert event["credential_id"] == fingerprint(token)  # no token_id: the fingerprint names it
    assert event["client_id"] == "1234"
    assert event["scopes_granted"] == ["repo", "workflow"]
    assert event["trace_id"] is None  # request_id names one request, not a task


def test_edge_cases_are_rejected_or_parsed(tmp_path: Path) -> None:
    records = [
        _event(),
        _event(actor={"login": "octo-dev"}),
        _event(actor="", token_id=0),
        {k: v for k, v in _event(created_at="2024-06-10T06:00:00Z").items() if k != "@timestamp"},
        _event(token_scopes=7),
        _event(**{"@timestamp": "yesterday"}),
    ]
    loaded = load(write_jsonl(tmp_path / "gh.jsonl", records))
    assert loaded.file.format == "github-audit"
    assert loaded.lines() == [1, 4]
    assert loaded.event(1)["ts"] == datetime(2024, 6, 10, 6, 13, 20, 123000, tzinfo=UTC)
    assert loaded.event(4)["ts"] == datetime(2024, 6, 10, 6, 0, tzinfo=UTC)
    assert loaded.event(1)["resource"] == "acme/widgets"
    rejects = loaded.rejects()
    assert rejects[2] == 'field "actor" must be text'
    assert rejects[3] == "no actor, token_id or hashed_token"
    assert rejects[5].startswith('field "token_scopes" must be')
    assert rejects[6].startswith("unparseable @timestamp")


def test_a_secret_scanning_alert_is_its_repository_and_number(tmp_path: Path) -> None:
    """The alert's kind of secret is kept as its status (never the secret: the log has none);
    an alert without a number is its repository; other events keep their status code."""
    base = {"actor": "github", "@timestamp": 1700000000000, "repo": "acme/api"}
    records = [
        {**base, "action": "secret_scanning_alert.create", "number": 4, "secret_type": "slack"},
        {**base, "action": "secret_scanning_alert.resolve"},
        {**base, "action": "api.request", "number": 4, "status_code": 404},
    ]
    loaded = load(write_jsonl(tmp_path / "audit.jsonl", records))
    shown = [(loaded.event(n)["resource"], loaded.event(n)["status"]) for n in (1, 2, 3)]
    assert shown == [("acme/api#4", "slack"), ("acme/api", None), ("acme/api", "404")]


def test_an_app_named_as_an_agent_is_an_agent_without_its_bot_suffix(tmp_path: Path) -> None:
    """From a rules review: `copilot-swe-agent[bot]` was a `service`, so M2M101 and M2M505
    never judged it. GitHub gives every app's actor `[bot]`: the name before it decides, so
    `dependabot[bot]` stays a service, and a person's login is never judged by the patterns."""
    actors = ["copilot-swe-agent[bot]", "dependabot[bot]", "secret-scanning[bot]", "agent-smith"]
    records = [_event(actor=actor, _document_id=f"doc-{n}") for n, actor in enumerate(actors)]
    # A deploy key is logged under the login that added it: a machine's, not judged by name.
    records.append(
        _event(actor="claude-martin", programmatic_access_type="Deploy key", _document_id="d")
    )
    loaded = load(write_jsonl(tmp_path / "audit.jsonl", records))
    kinds = [loaded.event(n)["principal_type"] for n in (1, 2, 3, 4, 5)]
    assert kinds == ["agent", "service", "service", "human", "service"]
    assert loaded.event(5)["credential_type"] == "github_deploy_key"


def test_an_actor_github_calls_an_ai_agent_is_one_acting_for_no_named_person(
    tmp_path: Path,
) -> None:
    """`actor_is_agent: true` (Copilot) loaded as a human acting for itself through a user
    token: `on_behalf_of` named the agent as the person behind it."""
    path = write_jsonl(
        tmp_path / "audit.jsonl",
        [
            _event(
                actor="Copilot",
                actor_is_agent=True,
                programmatic_access_type="GitHub App user-to-server token",
            ),
            _event(
                actor="octo-dev",
                actor_is_agent=False,
                programmatic_access_type="GitHub App user-to-server token",
            ),
        ],
    )
    loaded = load(path)
    agent, person = loaded.event(1), loaded.event(2)
    assert (agent["principal_type"], agent["on_behalf_of"]) == ("agent", None)
    assert (person["principal_type"], person["on_behalf_of"]) == ("human", "octo-dev")
