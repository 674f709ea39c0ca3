"""The HashiCorp Vault audit adapter, on the public sample and on hand-made edge cases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from m2maudit.config import Config
from m2maudit.fingerprint import fingerprint
from m2maudit.scan import run_scan
from tests.source_support import Loaded, load, real_logs_dir, write_jsonl

SAMPLE = "elastic_hashicorp_vault_audit_test-faked-all-fields.log"
RAW_TOKEN = "hvs.CAESIexampleNotARealVaultTokenValue0"


@pytest.fixture(scope="module")
def sample() -> Loaded:
    return load(real_logs_dir() / "vault_audit" / SAMPLE)


def _entry(kind: str, request_id: str, **auth: Any) -> dict[str, Any]:
    """An audit entry as Vault's file device writes it (HMAC'd token, clear accessor)."""
    return {
        "time": "2024-06-10T08:00:00.5Z" if kind == "request" else "2024-06-10T08:00:00.7Z",
        "type": kind,
        "auth": {
            "client_token": "hmac-sha256:1f2e3d",
            "accessor": "acc-" + request_id,
            "display_name": "approle",
            "policies": ["default", "app-read"],
            "metadata": {"role_name": "billing"},
            "token_type": "service",
            "token_ttl": 2592000,
            "token_issue_time": "2024-06-01T00:00:00Z",
            **auth,
        },
        "request": {
            "id": request_id,
            "operation": "read",
            "path": "secret/data/billing",
            "remote_address": "10.0.0.8",
            "namespace": {"id": "root"},
        },
        **({"response": {"data": {"value": "hmac-sha256:aa"}}} if kind == "response" else {}),
    }


def test_sample_is_detected_and_one_call_is_one_event(sample: Loaded) -> None:
    assert sample.file.format == "vault-audit"
    # Two request/response pairs: the responses are kept, their requests folded into them.
    assert (sample.file.loaded, sample.file.rejected) == (2, 0)
    assert sample.lines() == [2, 4]


def test_root_policy_and_ttl_give_scope_and_expiry(sample: Loaded) -> None:
    event = sample.event(4)
    assert event["scopes_granted"] == ["root"]
    assert event["credential_id"] == "bar"
    assert event["credential_type"] == "vault_token"
    assert event["principal"] == "testtoken"
    assert event["credential_issued_at"] == datetime(2020, 5, 28, 18, 40, 18, tzinfo=UTC)
    assert event["credential_expires_at"] == datetime(2020, 5, 28, 22, 40, 18, tzinfo=UTC)
    assert (event["outcome"], event["status"]) == ("failure", "this is an error")
    assert event["trace_id"] is None  # request.id names one request, not a task
    assert (event["action"], event["resource"]) == ("update", "secrets/foo")
    assert event["source_ip"] == "127.0.0.1"
    assert event["user_agent"] is None  # HMAC'd in the response entry


def test_a_lookup_self_response_gives_the_callers_token_its_lifetime(sample: Loaded) -> None:
    """Line 2: `auth/token/lookup-self` answers with the caller's own token: issued in 2018 with
    a TTL of 180 000 000 s (5.7 years). A trial found it unreported while a 4 h token was."""
    event = sample.event(2)
    assert event["resource"] == "auth/token/lookup-self"
    assert event["credential_issued_at"] == datetime(2018, 4, 9, 21, 1, 22, 892962, tzinfo=UTC)
    lifetime = event["credential_expires_at"] - event["credential_issued_at"]
    assert lifetime.total_seconds() == 180_000_000


def test_hmac_values_are_ids_not_secrets(sample: Loaded) -> None:
    event = sample.event(2)
    assert event["credential_id"].startswith("hmac-sha256:f5a8798113bb")
    assert event["scopes_granted"] == ["default", "sudo", "surf-admin"]
    assert (event["principal"], event["principal_type"]) == ("token", "service")
    assert event["outcome"] == "success"
    assert event["leaked_secret"] is None
    assert event["token_fp"] is None


def test_login_kinds_token_types_and_orphan_requests(tmp_path: Path) -> None:
    records = [
        _entry("request", "r1"),
        _entry("response", "r1"),
        _entry(
            "request", "r2", display_name="userpass-alice", token_type="batch", policies=["admin"]
        ),
        _entry("response", "r3", display_name="kubernetes-payments-api", token_ttl=0),
    ]
    loaded = load(write_jsonl(tmp_path / "audit.log", records))
    assert loaded.lines() == [2, 3, 4]
    approle = loaded.event(2)
    assert (approle["principal_type"], approle["client_id"]) == ("service", "billing")
    assert approle["credential_expires_at"] == datetime(2024, 7, 1, tzinfo=UTC)  # + 30 days
    assert approle["credential_id"] == "acc-r1"
    orphan = loaded.event(3)  # a request whose response is not in the file: kept
    assert (orphan["principal_type"], orphan["credential_type"]) == ("human", "vault_batch_token")
    assert orphan["outcome"] == "unknown"
    never = loaded.event(4)
    assert never["credential_expires_at"] is None  # TTL 0: the token does not expire
    assert never["credential_issued_at"] == datetime(2024, 6, 1, tzinfo=UTC)


def test_token_logged_in_clear_is_a_leak_fingerprinted_never_kept(tmp_path: Path) -> None:
    record = _entry("response", "r9", client_token=RAW_TOKEN)
    loaded = load(write_jsonl(tmp_path / "audit.log", [record]))
    event = loaded.event(1)
    assert event["leaked_secret"] == "vault_token"
    assert event["leaked_secret_fp"] == fingerprint(RAW_TOKEN)
    assert event["token_fp"] == fingerprint(RAW_TOKEN)
    stored = loaded.store.con.execute("SELECT * FROM events").fetchall()
    assert RAW_TOKEN not in repr(stored)


def test_edge_cases_are_rejected(tmp_path: Path) -> None:
    no_time = _entry("response", "e3")
    del no_time["time"]
    no_auth = _entry("response", "e6")
    no_auth["auth"] = {}
    records = [
        _entry("response", "e1"),
        _entry("response", "e2", policies={"root": True}),
        no_time,
        _entry("response", "e4", token_ttl="forever"),
        _entry("response", "e5", token_issue_time="last tuesday"),
        no_auth,
        {**_entry("response", "e7"), "type": "audit-test"},
        _entry("response", "e8", token_ttl="3600"),
        # The first spelling present must parse; a later one does not stand in for it.
        {
            **_entry("response", "e9", token_issue_time="garbage"),
            "response": {"auth": {"token_issue_time": "2024-06-01T00:00:00Z"}},
        },
        _entry("response", "e10", token_ttl=-5),  # read as no TTL, it would never expire
    ]
    loaded = load(write_jsonl(tmp_path / "audit.log", records))
    assert loaded.lines() == [1, 8]
    assert loaded.rejects()[9] == 'unparseable auth.token_issue_time: "garbage"'
    assert loaded.rejects()[10] == "auth.token_ttl must not be negative: -5"
    assert loaded.event(8)["credential_expires_at"] == datetime(2024, 6, 1, 1, tzinfo=UTC)
    rejects = loaded.rejects()
    assert rejects[2] == "auth.policies must be a list"
    assert rejects[3] == "missing time"
    assert rejects[4] == "auth.token_ttl must be a number of seconds"
    assert rejects[5].startswith("unparseable auth.token_issue_time")
    assert rejects[6].startswith("no auth")
    assert rejects[7] == "type must be request or response, not audit-test"


def test_evidence_the_broad_scope_and_lifetime_rules_query(sample: Loaded) -> None:
    """The canonical columns alone show a root token living longer than the 1 h default."""
    flagged = sample.store.con.execute(
        """
        SELECT source_line FROM events
        WHERE list_contains(scopes_granted, 'root')
          AND credential_expires_at - credential_issued_at > INTERVAL 1 HOUR
        """
    ).fetchall()
    assert flagged == [(4,)]


def test_an_approle_is_named_by_its_role_and_an_agent_by_its_name(tmp_path: Path) -> None:
    """From a rules review: every AppRole token is `approle` in Vault's log, so all roles were
    one principal (a finding for `etl-nightly`'s admin policy named `approle`); and a machine
    login was a `service` whatever its name, so M2M101 never judged an AI agent."""
    records = [
        _entry("response", "r1"),  # role billing
        _entry("response", "r2", metadata={"role_name": "research-agent"}),
        _entry("response", "r3", display_name="kubernetes-ai-research-agent", metadata={}),
        _entry("response", "r4", display_name="ldap-agent.smith", metadata={}),
    ]
    loaded = load(write_jsonl(tmp_path / "audit.log", records))
    named = [
        (loaded.event(n)["principal"], loaded.event(n)["principal_type"]) for n in (1, 2, 3, 4)
    ]
    assert named == [
        ("approle-billing", "service"),
        ("approle-research-agent", "agent"),
        ("kubernetes-ai-research-agent", "agent"),
        ("ldap-agent.smith", "human"),
    ]


def test_a_traceparent_vault_audits_in_clear_is_the_trace(tmp_path: Path) -> None:
    """request.id names one request, so it is no trace (a rules review: M2M501 could never
    fire on Vault). A W3C traceparent the audit device is told to log ties a task's calls;
    one Vault HMACs (its default for an audited header) ties nothing readable."""
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced, hashed = _entry("response", "r1"), _entry("response", "r2")
    traced["request"]["headers"] = {"traceparent": [f"00-{trace}-00f067aa0ba902b7-01"]}
    hashed["request"]["headers"] = {"traceparent": ["hmac-sha256:5e3c0a"]}
    loaded = load(write_jsonl(tmp_path / "audit.log", [traced, hashed, _entry("response", "r3")]))
    assert [loaded.event(n)["trace_id"] for n in (1, 2, 3)] == [trace, None, None]


def test_a_token_vault_logs_without_a_ttl_never_expires(tmp_path: Path) -> None:
    """Vault leaves `token_ttl` out at 0 (`omitempty`): a root token's entries carry its issue
    time and no TTL. Such a token was judged by nothing of long-lifetime (M2M201 saw its
    `root` policy only); a token with a TTL, and an entry of a Vault that logs neither,
    are not it."""
    root = _entry("response", "r1", display_name="root", policies=["root"], metadata={})
    del root["auth"]["token_ttl"]
    old_vault = _entry("response", "r3", display_name="token-ci", metadata={})
    del old_vault["auth"]["token_ttl"], old_vault["auth"]["token_issue_time"]
    log = write_jsonl(tmp_path / "audit.log", [root, _entry("response", "r2"), old_vault])
    loaded = load(log)
    result = run_scan(loaded.store, Config(), datetime(2024, 6, 11, tzinfo=UTC))
    no_expiry = [(f.principal, f.token_id) for f in result.findings if f.rule_id == "M2M402"]
    assert no_expiry == [("root", "acc-r1")]
