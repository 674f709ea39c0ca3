"""A secret pasted into a vendor log's free text (a user agent, a URL) is reported by kind
and fingerprint, and cut out of every stored column: vendor adapters too, not only the
generic log's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest

from m2maudit.ingest import ingest_paths
from m2maudit.store import Store
from tests.source_support import real_logs_dir

TOKEN = jwt.encode({"sub": "agent-x", "client_id": "agent-x", "jti": "j-9"}, "k" * 32)
PLANTED = f"kubectl/v1.30 Bearer {TOKEN}"
DATA = Path(__file__).resolve().parent / "data"

# (format, a public sample of it, where its user agent is written)
SAMPLES = [
    ("cloudtrail", "cloudtrail/panther_cloudtrail_rule_tests.jsonl", ["userAgent"]),
    ("k8s-audit", "k8s_audit/panther_eks_audit_rule_tests.jsonl", ["userAgent"]),
    (
        "gcp-audit",
        "gcp_audit/panther_gcp_auditlog_rule_tests.jsonl",
        ["protoPayload", "requestMetadata", "callerSuppliedUserAgent"],
    ),
    (
        "okta",
        "okta/panther_okta_systemlog_rule_tests.jsonl",
        ["client", "userAgent", "rawUserAgent"],
    ),
    ("github-audit", "github_audit/panther_github_audit_rule_tests.jsonl", ["user_agent"]),
    (
        "entra-signin",
        "entra_signin/panther_azure_audit_signin_rule_tests.jsonl",
        ["properties", "userAgent"],
    ),
    (
        "vault-audit",
        "vault_audit/elastic_hashicorp_vault_audit_test-faked-all-fields.log",
        ["request", "headers", "user-agent"],
    ),
    ("ocsf", str(DATA / "ocsf" / "api_and_auth.jsonl"), ["http_request", "user_agent"]),
]


def _planted(record: dict[str, Any], path: list[str], fmt: str) -> dict[str, Any]:
    node = record
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
    node[path[-1]] = [PLANTED] if fmt == "vault-audit" else PLANTED
    return record


@pytest.mark.parametrize(("fmt", "sample", "path"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_a_token_in_a_vendor_user_agent_is_not_stored(
    tmp_path: Path, fmt: str, sample: str, path: list[str]
) -> None:
    source = Path(sample) if sample.startswith("/") else real_logs_dir() / sample
    records = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    log = tmp_path / "planted.jsonl"
    log.write_text("".join(json.dumps(_planted(r, path, fmt)) + "\n" for r in records))
    store = Store.open()
    report = ingest_paths(store, [str(log)], [])
    assert report.files[0].format == fmt
    stored = store.con.execute(
        "SELECT to_json(e)::VARCHAR, leaked_secret, user_agent FROM events e"
    ).fetchall()
    store.close()
    assert stored, f"no {fmt} event loaded"
    signature = TOKEN.rsplit(".", 1)[1]
    assert [text for text, _, _ in stored if signature in text] == []
    planted = [(kind, agent) for _, kind, agent in stored if agent and "kubectl" in agent]
    assert planted and all(kind == "jwt" and "[redacted]" in agent for kind, agent in planted)


def test_every_stored_text_column_is_cleaned_or_written_by_m2maudit() -> None:
    """A new text column of `events` must be added to what is cleaned of secrets, or to what
    m2maudit writes itself: the delegation chain was once left out, and kept a planted token."""
    from m2maudit.sources import staging

    store = Store.open()
    text_columns = {
        name
        for name, kind in store.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('events', 'issued_credentials')"
        ).fetchall()
        if kind in ("VARCHAR", "VARCHAR[]")
    }
    store.close()
    covered = {
        *staging.STORED_EVENT_TEXT,
        *staging.STORED_EVENT_IDS,
        *staging.STORED_EVENT_LISTS,
        *staging.NOT_FROM_THE_RECORD,
    }
    assert text_columns - covered == set()


def test_cleaning_reads_every_value_back_in_place() -> None:
    """Texts, ids and lists (NULL, empty, two of them) are cleaned as one list, then each is
    read back by index and slice: nothing shifts."""
    import duckdb

    from m2maudit.secrets import CLEANED, cleaning_sql

    cleaned, picks = cleaning_sql(["a", "b"], ["i"], ["l1", "l2"])
    select = ", ".join(f"{pick} AS {name}" for name, pick in picks.items())
    rows = duckdb.sql(
        f"SELECT {select} FROM (SELECT *, {cleaned} AS {CLEANED} FROM (VALUES "
        f"('x', NULL, 'id-1', NULL, ['p', '{TOKEN}']), "
        f"('{TOKEN}', 'y', '{TOKEN}', []::VARCHAR[], ['q']), "
        f"(NULL, NULL, NULL, ['r', 's'], NULL)) t(a, b, i, l1, l2))"
    ).fetchall()
    secret_id = rows[1][2]
    assert secret_id.startswith("secret:") and TOKEN not in secret_id
    assert rows == [
        ("x", None, "id-1", None, ["p", "[redacted]"]),
        ("[redacted]", "y", secret_id, [], ["q"]),
        (None, None, None, ["r", "s"], None),
    ]


def _chain_records(fmt: str) -> list[dict[str, Any]]:
    """Records whose delegation chain holds the planted token: CloudTrail's `invokedBy`, a
    Kubernetes caller impersonating a machine."""
    if fmt == "cloudtrail":
        sample = real_logs_dir() / "cloudtrail/panther_cloudtrail_rule_tests.jsonl"
        records = [json.loads(line) for line in sample.read_text().splitlines()]
        return [_planted(r, ["userIdentity", "invokedBy"], fmt) for r in records]
    from tests.test_source_k8s import audit_event

    return [audit_event(impersonatedUser={"username": f"svc-deploy {PLANTED}"})]


@pytest.mark.parametrize("fmt", ["cloudtrail", "k8s-audit"])
def test_a_token_in_a_delegation_chain_is_not_stored(tmp_path: Path, fmt: str) -> None:
    log = tmp_path / "planted.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _chain_records(fmt)))
    store = Store.open()
    ingest_paths(store, [str(log)], [])
    chains = store.con.execute(
        "SELECT act_chain::VARCHAR FROM events WHERE act_chain IS NOT NULL"
    ).fetchall()
    everything = store.con.execute(
        "SELECT (SELECT list(e)::VARCHAR FROM events e), "
        "(SELECT list(c)::VARCHAR FROM issued_credentials c)"
    ).fetchone()
    store.close()
    assert any("[redacted]" in chain for (chain,) in chains)
    assert TOKEN.rsplit(".", 1)[1] not in str(everything)


def test_a_private_key_split_into_scopes_is_not_stored(tmp_path: Path) -> None:
    """A scope string is split on spaces: no item of a split key matches a pattern alone."""
    body = "MIIEpAIBAAKCAQEAplantedKeyBody0123456789"
    scopes = f"read -----BEGIN RSA PRIVATE KEY----- {body} -----END RSA PRIVATE KEY----- write"
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps({"timestamp": "2026-11-01T00:00:00Z", "principal": "agent-a", "scopes": scopes})
        + "\n"
    )
    inventory = tmp_path / "inv.csv"
    inventory.write_text(f'token_id,principal,scopes\nk1,agent-a,"{scopes}"\n')
    store = Store.open()
    ingest_paths(store, [str(log)], [str(inventory)])
    stored = store.con.execute(
        "SELECT (SELECT list(scopes_used) FROM events), (SELECT list(scopes) FROM credentials)"
    ).fetchone()
    store.close()
    assert body not in str(stored) and "[redacted]" in str(stored)
    assert stored == ([["read", "[redacted]", "write"]], [["read", "[redacted]", "write"]])


def test_a_secret_in_one_item_keeps_the_other_items_as_they_were() -> None:
    """Items with spaces and NULL items stay; only the secret's item changes."""
    import duckdb

    from m2maudit.secrets import CLEANED, cleaning_sql

    cleaned, picks = cleaning_sql(["a"], [], ["l"])
    [(items,)] = duckdb.sql(
        f"SELECT {picks['l']} FROM (SELECT *, {cleaned} AS {CLEANED} FROM (VALUES "
        f"('x', ['read write', NULL, '{TOKEN}', 'repo:admin'])) t(a, l))"
    ).fetchall()
    assert items == ["read write", None, "[redacted]", "repo:admin"]


GITHUB_TOKEN = "ghp_" + "Z" * 36


@pytest.mark.parametrize(("fmt", "sample", "path"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_every_secret_of_a_vendor_record_is_listed(
    tmp_path: Path, fmt: str, sample: str, path: list[str]
) -> None:
    """A record with two secrets lists both in `leaked_secrets` (M2M601 reports each): the
    first alone once left the second unrotated."""
    source = Path(sample) if sample.startswith("/") else real_logs_dir() / sample
    records = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    two = f"{PLANTED} token={GITHUB_TOKEN}"
    log = tmp_path / "planted.jsonl"
    log.write_text(
        "".join(json.dumps(_planted(r, path, fmt)).replace(PLANTED, two) + "\n" for r in records)
    )
    store = Store.open()
    ingest_paths(store, [str(log)], [])
    planted = store.con.execute(
        "SELECT leaked_secret, leaked_secrets FROM events WHERE contains(user_agent, 'kubectl')"
    ).fetchall()
    store.close()
    assert planted
    for first, listed in planted:
        assert first == "jwt"
        assert sorted(item.split(":")[0] for item in listed) == ["github_token", "jwt"]
