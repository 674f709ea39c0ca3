"""The SQL token decoder reads every token exactly as pyjwt does, once per distinct token."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import jwt
import pytest

from m2maudit.config import Config
from m2maudit.fingerprint import fingerprint, sha256_prefix
from m2maudit.ingest import ingest_paths
from m2maudit.store import Store
from m2maudit.token_claims import MAX_ACT_DEPTH, UNNAMED_ACTOR, decode_token
from m2maudit.tokens import claims_read_sql, create_token_views, decode_staged_tokens
from tests.jwt_factory import (
    decode_in_sql,
    generated_set,
    jwe_like,
    nested_act,
    raw_jwt,
    rows_by_fp,
    signed,
    write_log,
)


def _epoch(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _chain(claims: dict[str, Any]) -> list[str]:
    chain, node = [], claims.get("act")
    while node is not None:
        chain.append(node["sub"])
        node = node.get("act")
    return chain


def _may_act(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value["sub"]] if isinstance(value, dict) else [item["sub"] for item in value]


def expected_from_pyjwt(token: str) -> dict[str, Any]:
    """The tokens-table columns, written from pyjwt's own decode of the token."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    aud = claims.get("aud")
    scope = claims.get("scope", claims.get("scp"))
    chain = _chain(claims)
    may_act = _may_act(claims.get("may_act"))
    client = next((claims[n] for n in ("client_id", "azp", "cid") if n in claims), None)
    return {
        "decode_error": None,
        "token_length": len(token),
        "alg": header["alg"],
        "kid": header.get("kid"),
        "typ": header.get("typ"),
        "iss": claims.get("iss"),
        "sub": claims.get("sub"),
        "aud": [aud] if isinstance(aud, str) else aud,
        "client_id": client,
        "azp": claims.get("azp"),
        "scope": scope.split() if isinstance(scope, str) else scope,
        "iat": _epoch(claims.get("iat")),
        "nbf": _epoch(claims.get("nbf")),
        "exp": _epoch(claims.get("exp")),
        "jti": claims.get("jti"),
        "act_chain": chain,
        "chain_depth": len(chain),
        "root_subject": claims.get("sub"),
        "current_actor": chain[0] if chain else claims.get("sub"),
        "chain_has_cycle": len(set(chain)) < len(chain),
        "may_act": may_act,
        "chain_actor_not_allowed": None
        if may_act is None
        else next((a for a in chain[:1] if a not in may_act), None),
        "has_cnf": "cnf" in claims,
        "has_auth_time": "auth_time" in claims,
        "has_acr": "acr" in claims,
        "has_amr": "amr" in claims,
        "txn": claims.get("txn"),
        "req_wl": claims.get("req_wl"),
    }


@pytest.fixture(scope="module")
def generated() -> list[str]:
    return generated_set()


@pytest.fixture(scope="module")
def sql_rows(generated: list[str]) -> dict[str, dict[str, Any]]:
    return decode_in_sql(generated)


def test_generated_set_covers_what_the_issue_names(generated: list[str]) -> None:
    decoded = [jwt.decode(t, options={"verify_signature": False}) for t in generated]
    assert any(len(_chain(c)) >= 3 for c in decoded)
    assert any(isinstance(c.get("may_act"), list) for c in decoded)
    assert any(isinstance(c.get("may_act"), dict) for c in decoded)
    assert any(isinstance(c.get("aud"), list) and len(c["aud"]) > 1 for c in decoded)
    assert any(isinstance(c.get("scp"), list) for c in decoded)
    assert any(not c["sub"].isascii() for c in decoded)
    assert {jwt.get_unverified_header(t)["alg"] for t in generated} >= {"HS256", "RS256", "ES256"}


def test_sql_claims_equal_pyjwt_decode(generated: list[str], sql_rows: dict[str, Any]) -> None:
    assert len(sql_rows) == len(set(generated))
    for token in generated:
        row = sql_rows[fingerprint(token)]
        expected = expected_from_pyjwt(token)
        assert {k: row[k] for k in expected} == expected


def test_sql_rows_equal_the_python_twin(generated: list[str], sql_rows: dict[str, Any]) -> None:
    for token in generated:
        assert sql_rows[fingerprint(token)] == asdict(decode_token(token).row)


def test_secrets_in_claims_are_listed_alike_by_sql_and_python() -> None:
    """`claims_secrets` (rule M2M605): kinds and fingerprints only, the same both ways."""
    upstream = signed({"sub": "upstream"})
    tokens = [
        signed({"sub": "a", "client_secret": "hunter2hunter2hunter2"}),
        signed({"sub": "b", "upstream_token": upstream, "note": "pwd=hunter22"}),
        signed({"sub": "c", "note": "no secret here", "password_age": 1234567}),
        signed({"sub": "d", "password": 987654321}),  # a PIN, as a JSON number
    ]
    rows = decode_in_sql(tokens)
    listed = [rows[fingerprint(token)]["claims_secrets"] for token in tokens]
    assert listed == [decode_token(token).row.claims_secrets for token in tokens]
    assert [len(item or []) for item in listed] == [1, 2, 0, 1]
    assert f"jwt:{fingerprint(upstream)}" in listed[1]


def test_private_json_web_keys_in_header_or_claims_are_listed_alike_by_sql_and_python() -> None:
    """From the last session's list: `token inspect` redacted a JWK's private members, but the
    scan did not look for them, so M2M605 missed a token carrying its holder's private key.
    Any object with `kty`, at any depth; its private members that hold something."""
    d, p, k = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X5fCEwVWRUk", "P" * 43, "c2VjcmV0LXNlY3JldA"
    oth = [{"r": "R" * 20, "d": "D" * 20, "t": "T" * 20}]
    ec = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}
    tokens = [
        raw_jwt({"alg": "ES256", "jwk": {**ec, "d": d}}, {"sub": "a"}),
        signed({"sub": "b", "cnf": {"jwk": {"kty": "RSA", "n": "sXch", "p": p, "oth": oth}}}),
        signed({"sub": "c", "keys": [{"kty": "oct", "k": k}, {"kty": "oct", "k": ""}]}),
        # written with escapes: `kty` and `d` are named all the same
        raw_jwt(
            {"alg": "HS256"},
            b'{"sub":"d","jwk":{"\\u006bty":"EC","\\u0064":"' + p.encode() + b'"}}',
        ),
        signed({"sub": "e", "cnf": {"jwk": ec}}),  # a public key alone
        signed({"sub": "f", "d": d, "k": k, "p": {"kty": "x"}}),  # no JWK holds these
    ]
    rows = decode_in_sql(tokens)
    listed = [rows[fingerprint(token)]["claims_secrets"] for token in tokens]
    assert listed == [decode_token(token).row.claims_secrets for token in tokens]
    oth_text = json.dumps(oth, separators=(",", ":"))
    assert listed[:4] == [
        [f"jwk_private_key:{sha256_prefix(d)}"],
        sorted(f"jwk_private_key:{sha256_prefix(v)}" for v in (p, oth_text)),
        [f"jwk_private_key:{sha256_prefix(k)}"],
        [f"jwk_private_key:{sha256_prefix(p)}"],
    ]
    assert listed[4:] == [None, None]


def test_a_claim_naming_someone_that_is_a_secret_is_kept_as_its_fingerprint() -> None:
    """From a trial: a token whose `sub` or `jti` was a GitHub or Vault token printed it as the
    principal or credential in every report. Such an id becomes `secret:<fp>`, both ways."""
    github, vault = "ghp_" + "A1b2" * 9, "hvs.CAESIAbcdefghijklmnopqrstuvwxyz012345"
    token = signed(
        {"sub": github, "jti": vault, "act": {"sub": "xoxb-1234567890-abcdefghij"}, "scope": "x"}
    )
    row = decode_in_sql([token])[fingerprint(token)]
    assert row == asdict(decode_token(token).row)
    assert row["sub"] == row["root_subject"] == f"secret:{fingerprint(github)}"
    assert row["jti"] == f"secret:{fingerprint(vault)}"
    assert row["current_actor"].startswith("secret:") and row["act_chain"] == [row["current_actor"]]
    assert row["scope"] == ["x"]
    assert not [value for value in map(str, row.values()) if github in value or vault in value]


def test_ids_in_any_case_and_keys_split_into_scopes_stay_out_of_the_tokens_table() -> None:
    """From a review: `X-API-Key: ...` as `sub` passed the SQL needles (case) and printed in a
    report; a private key split into scopes was stored in `scope` item by item."""
    key = (
        "-----BEGIN RSA PRIVATE KEY----- MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX "
        "-----END RSA PRIVATE KEY-----"
    )
    tokens = [
        signed({"sub": "X-API-Key: 0123456789abcdefABCD"}),
        signed(
            {"sub": "a", "APIKey": "0123456789abcdefABCD", "AccessTOKEN": "0123456789abcdefABCD"}
        ),
        signed({"sub": "b", "scope": f"read {key}"}),
    ]
    rows = decode_in_sql(tokens)
    for token in tokens:
        assert rows[fingerprint(token)] == asdict(decode_token(token).row)
    first, second, third = (rows[fingerprint(token)] for token in tokens)
    assert first["sub"].startswith("secret:")
    assert len(second["claims_secrets"]) == 2
    assert len(third["scope"]) == 1 and third["scope"][0].startswith("secret:")
    assert "MIIBOgIB" not in str(third)


def test_escaped_secrets_in_the_claims_are_found_alike_by_sql_and_python() -> None:
    """`\\u0067hp_...` and a password written in `\\u00fc` escapes (pyjwt escapes non-ASCII)
    are secrets all the same: the payload is judged as JSON writes it again."""
    payload = (
        b'{"sub":"agent-u","db_password":"Gr\\u00fc\\u00dfe-Passw\\u00f6rt-2026",'
        b'"note":"\\u0067hp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"}'
    )
    token = raw_jwt({"alg": "HS256"}, payload)
    row = decode_in_sql([token])[fingerprint(token)]
    assert row["claims_secrets"] == decode_token(token).row.claims_secrets
    assert sorted(item.split(":")[0] for item in row["claims_secrets"]) == [
        "github_token",
        "password_or_key",
    ]


def test_three_level_chain_is_flattened_outermost_first() -> None:
    token = signed(
        {
            "sub": "alice@example.com",
            "act": nested_act(["mail-tool", "assistant-agent", "orchestrator"]),
        }
    )
    row = decode_in_sql([token])[fingerprint(token)]
    assert row["act_chain"] == ["mail-tool", "assistant-agent", "orchestrator"]
    assert row["chain_depth"] == 3
    assert row["root_subject"] == "alice@example.com"
    assert row["current_actor"] == "mail-tool"
    assert row["chain_has_cycle"] is False
    assert row["chain_actor_not_allowed"] is None


def test_no_act_means_an_empty_chain_and_the_subject_acts() -> None:
    token = signed({"sub": "svc-billing"})
    row = decode_in_sql([token])[fingerprint(token)]
    assert (row["act_chain"], row["chain_depth"], row["current_actor"]) == ([], 0, "svc-billing")


def test_cycle_and_may_act_are_detected() -> None:
    cycle = signed(
        {"sub": "alice@example.com", "act": nested_act(["agent-a", "agent-b", "agent-a"])}
    )
    refused = signed(
        {
            "sub": "bob@example.com",
            "may_act": {"sub": "agent-a"},
            "act": nested_act(["rogue-tool", "agent-a"]),
        }
    )
    allowed = signed(
        {
            "sub": "bob@example.com",
            "may_act": [{"sub": "agent-a"}, {"sub": "rogue-tool"}],
            "act": nested_act(["agent-a", "rogue-tool"]),
        }
    )
    # From a rules review: an earlier actor outside `may_act` was reported, but RFC 8693
    # §4.1 makes nested actors informational; `may_act` says who may become the actor.
    earlier = signed(
        {
            "sub": "bob@example.com",
            "may_act": {"sub": "search-tool"},
            "act": nested_act(["search-tool", "research-agent"]),
        }
    )
    tokens = [cycle, refused, allowed, earlier]
    rows = decode_in_sql(tokens)
    assert rows[fingerprint(cycle)]["chain_has_cycle"] is True
    assert rows[fingerprint(refused)]["chain_has_cycle"] is False
    assert rows[fingerprint(refused)]["chain_actor_not_allowed"] == "rogue-tool"
    assert rows[fingerprint(refused)]["may_act"] == ["agent-a"]
    assert rows[fingerprint(allowed)]["chain_actor_not_allowed"] is None
    assert rows[fingerprint(earlier)]["chain_actor_not_allowed"] is None
    assert [rows[fingerprint(t)] for t in tokens] == [asdict(decode_token(t).row) for t in tokens]


def test_actor_named_by_client_id_or_unnamed() -> None:
    token = signed(
        {"sub": "alice@example.com", "act": {"client_id": "app-1", "act": {"iss": "https://idp"}}}
    )
    row = decode_in_sql([token])[fingerprint(token)]
    assert row["act_chain"] == ["app-1", UNNAMED_ACTOR]


@pytest.mark.parametrize(
    ("claims", "kind"),
    [
        ({"sub": "app-1", "client_id": "app-1"}, "client"),
        ({"sub": "spa", "azp": "spa", "client_id": "other"}, "client"),
        ({"sub": "okta-app", "cid": "okta-app"}, "client"),
        ({"sub": "alice@example.com", "client_id": "app-1"}, "human"),
        ({"sub": "00u1abc", "acr": "urn:mfa"}, "human"),
        ({"sub": "00u1abc", "amr": ["pwd"]}, "human"),
        ({"sub": "research-agent-7"}, "agent"),
        ({"sub": "svc-billing"}, "service"),
        # Names are matched ignoring case, by the SQL decoder and `token inspect` alike.
        ({"sub": "Research-Agent-7"}, "agent"),
        # Infrastructure agents are services, and so are e-mail shaped service accounts:
        # service patterns are tried before agent and human ones.
        ({"sub": "elastic-agent"}, "service"),
        ({"sub": "system:serviceaccount:monitoring:datadog-agent"}, "service"),
        ({"sub": "etl@proj-1.iam.gserviceaccount.com"}, "service"),
        ({"sub": "00u1abc"}, "unknown"),
        # The opaque user ids of two identity providers: a person's, whatever else the
        # token says (Okta's `00u` + 17; Auth0's `<connection>|<id>`, `<id>@clients` for a
        # client's own token). An Okta app (`0oa`) is no person.
        ({"sub": "00u1fh2z6vYuP4Qbx5d7"}, "human"),
        ({"sub": "auth0|5f7c8ec7c33c6c004bbafe82"}, "human"),
        ({"sub": "google-oauth2|103547991597142817347"}, "human"),
        ({"sub": "samlp|acme-okta|jdoe"}, "human"),  # an enterprise connection: three parts
        ({"sub": "waad|contoso|2f0c0f5e-8a4b-4f6a-9d2b-6c1e0f3a9b7d"}, "human"),
        ({"sub": "WfT2pqz6AbCdEfGh@clients"}, "unknown"),
        ({"sub": "0oa1fh2z6vYuP4Qbx5d7"}, "unknown"),
        ({"iss": "https://idp"}, "unknown"),
    ],
)
def test_subject_kind_with_default_patterns(claims: dict[str, Any], kind: str) -> None:
    token = signed(claims)
    assert decode_in_sql([token])[fingerprint(token)]["subject_kind"] == kind
    assert decode_token(token).row.subject_kind == kind


def test_subject_kind_follows_configured_patterns() -> None:
    config = Config(
        human_patterns=[r"emp-\d+"], agent_patterns=[r"ai/.*"], service_patterns=[r"batch-.*"]
    )
    tokens = {
        name: signed({"sub": name})
        for name in ("emp-17", "ai/planner", "batch-nightly", "alice@example.com")
    }
    rows = decode_in_sql(list(tokens.values()), config)
    kinds = {name: rows[fingerprint(t)]["subject_kind"] for name, t in tokens.items()}
    assert kinds == {
        "emp-17": "human",
        "ai/planner": "agent",
        "batch-nightly": "service",
        "alice@example.com": "unknown",
    }


def test_scope_string_splits_on_spaces_and_scp_list_is_kept() -> None:
    spaced = signed({"sub": "a", "scope": " read  write:all "})
    listed = signed({"sub": "a", "scp": ["read write", "x"]})
    both = signed({"sub": "a", "scope": "one", "scp": ["two"]})
    rows = decode_in_sql([spaced, listed, both])
    assert rows[fingerprint(spaced)]["scope"] == ["read", "write:all"]
    assert rows[fingerprint(listed)]["scope"] == ["read write", "x"]
    assert rows[fingerprint(both)]["scope"] == ["one"]


def test_numeric_claims_as_text_match_the_twin() -> None:
    token = raw_jwt(
        {"alg": "HS256", "kid": 7},
        {"sub": 12345, "jti": True, "aud": [1, "x"], "iat": 1.7e9, "exp": 1700003600},
    )
    row = decode_in_sql([token])[fingerprint(token)]
    assert (row["kid"], row["sub"], row["jti"], row["aud"]) == ("7", "12345", "true", ["1", "x"])
    assert row == asdict(decode_token(token).row)


def test_staging_without_raw_token_adds_nothing() -> None:
    store = Store.open()
    store.con.execute("CREATE TEMP TABLE _m (token_fp VARCHAR)")
    assert decode_staged_tokens(store.con, Config(), staging="_m") == 0
    assert store.scalar("SELECT count(*) FROM tokens") == 0


def _ingest(store: Store, path: Path) -> None:
    report = ingest_paths(store, [str(path)])
    assert not report.failed_files


def test_ingest_decodes_each_distinct_token_once_and_events_link(tmp_path: Path) -> None:
    tokens = generated_set(count=6, seed=1)
    authorizations = [prefix + t for t in tokens for prefix in ("Bearer ", "bearer  ", "")]
    store = Store.open()
    _ingest(store, write_log(tmp_path / "calls.jsonl", authorizations))
    assert store.scalar("SELECT count(*) FROM tokens") == len(tokens)
    assert store.scalar("SELECT count(*) FROM events") == len(authorizations)
    linked = store.scalar("SELECT count(*) FROM events e JOIN tokens t USING (token_fp)")
    assert linked == len(authorizations)
    create_token_views(store.con)
    subs = store.con.execute("SELECT DISTINCT token_sub FROM event_tokens ORDER BY 1").fetchall()
    expected = sorted({jwt.decode(t, options={"verify_signature": False})["sub"] for t in tokens})
    assert [s for (s,) in subs] == expected
    assert store.scalar("SELECT count(*) FROM event_tokens") == len(authorizations)


def test_a_second_file_adds_only_new_tokens(tmp_path: Path) -> None:
    first, second = generated_set(count=4, seed=2), generated_set(count=6, seed=3)
    store = Store.open()
    _ingest(store, write_log(tmp_path / "a.jsonl", first))
    _ingest(store, write_log(tmp_path / "b.jsonl", first[:2] + second))
    assert store.scalar("SELECT count(*) FROM tokens") == len(set(first + second))
    decoded_twice = store.scalar(
        "SELECT count(*) FROM (SELECT token_fp FROM tokens GROUP BY 1 HAVING count(*) > 1)"
    )
    assert decoded_twice == 0


def test_tokens_of_rejected_records_are_not_decoded(tmp_path: Path) -> None:
    good, rejected = signed({"sub": "good"}), signed({"sub": "rejected"})
    path = tmp_path / "calls.jsonl"
    path.write_text(
        f'{{"timestamp": 1700000000, "authorization": "Bearer {good}"}}\n'
        f'{{"timestamp": "not a time", "authorization": "Bearer {rejected}"}}\n',
        encoding="utf-8",
    )
    store = Store.open()
    _ingest(store, path)
    assert set(rows_by_fp(store.con)) == {fingerprint(good)}


def test_the_raw_token_reaches_no_table(tmp_path: Path) -> None:
    tokens = generated_set(count=5, seed=4)
    store = Store.open()
    _ingest(store, write_log(tmp_path / "calls.jsonl", ["Bearer " + t for t in tokens]))
    tables = [t for (t,) in store.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    dumped = " ".join(str(store.con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
    assert "tokens" in tables and fingerprint(tokens[0]) in dumped
    for token in tokens:
        _header, payload, signature = token.split(".")
        assert signature not in dumped
        assert payload not in dumped


def test_claims_read_tells_an_unreadable_token_from_an_odd_one() -> None:
    """`m2m_claims_read` (rules M2M402, M2M502, M2M603): true for a token whose claims the
    decoder read (an unsigned one, one with no `alg`, a broken `act`, a time claim that is not
    a number: then it has no usable value), false where it read none."""
    read = {
        "plain": signed({"sub": "a"}),
        "alg none": raw_jwt({"alg": "none"}, b'{"sub": "a"}', ""),
        "no alg": raw_jwt({"typ": "JWT"}, b'{"sub": "a"}'),
        "act not an object": signed({"sub": "a", "act": "agent-z"}),
        "act too deep": signed(
            {"sub": "a", "act": nested_act([f"x{n}" for n in range(MAX_ACT_DEPTH + 2)])}
        ),
        "iat not a number": signed({"sub": "a", "iat": "yesterday"}),
        "exp not a number": signed({"sub": "a", "exp": "tomorrow"}),
    }
    unread = {
        "not a JWT": "not-a-token",
        "encrypted": jwe_like(),
        "payload not JSON": raw_jwt({"alg": "HS256"}, b"{nope"),
    }
    rows = decode_in_sql([*read.values(), *unread.values()])
    con = duckdb.connect()
    for name, token in [*read.items(), *unread.items()]:
        error = rows[fingerprint(token)]["decode_error"]
        assert (name == "plain") == (error is None), name
        [(claims_read,)] = con.execute(
            f"SELECT {claims_read_sql('$e::VARCHAR')}", {"e": error}
        ).fetchall()
        assert claims_read == (name in read), (name, error)


def test_a_scan_reports_a_token_carrying_a_private_json_web_key(tmp_path: Path) -> None:
    """M2M605 from a log: the finding names the key's fingerprint, never the key."""
    from m2maudit.scan import run_scan

    d = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X5fCEwVWRUk"
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"}
    holder = signed({"sub": "agent-1", "client_id": "agent-1", "cnf": {"jwk": {**jwk, "d": d}}})
    public = signed({"sub": "agent-2", "client_id": "agent-2", "cnf": {"jwk": jwk}})
    store = Store.open()
    _ingest(store, write_log(tmp_path / "calls.jsonl", [f"Bearer {holder}", f"Bearer {public}"]))
    findings = run_scan(store, Config(), datetime(2026, 11, 21, tzinfo=UTC)).findings
    leaks = [f for f in findings if f.rule_id == "M2M605"]
    assert [f.token_id for f in leaks] == ["client:agent-1"]
    assert f"jwk_private_key {sha256_prefix(d)}" in leaks[0].message
    assert d not in repr(findings)


def test_an_entra_token_is_named_by_its_uti() -> None:
    """From a rules review: M2M502 (no jti) fired on every Entra ID token, which names itself
    by `uti`; a `jti` still wins when both are there."""
    entra = signed({"sub": "AAAb", "oid": "8f2a", "appid": "1111", "uti": "u1", "aud": "api://x"})
    both = signed({"sub": "a", "jti": "j1", "uti": "u2"})
    rows = decode_in_sql([entra, both])
    assert [rows[fingerprint(t)]["jti"] for t in (entra, both)] == ["u1", "j1"]
    assert [decode_token(t).row.jti for t in (entra, both)] == ["u1", "j1"]
