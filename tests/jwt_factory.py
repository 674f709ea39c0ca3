"""Test tokens, made at test time with pyjwt (no JWT literal is ever committed).

`generated_set()` is the varied, well-formed set the SQL decoder must read exactly as pyjwt
does: nested `act`, `may_act`, list `aud`, `scp` arrays, unicode claims, other algorithms.
`raw_jwt()` builds tokens pyjwt would refuse to sign (bad JSON, `alg: none`, odd segments).
"""

from __future__ import annotations

import base64
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from m2maudit.config import Config
from m2maudit.store import Store
from m2maudit.tokens import TOKEN_COLUMNS, decode_staged_tokens

HMAC_KEY = "m2maudit-test-hmac-key-" + "0123456789abcdef" * 4
BASE_TIME = 1_700_000_000


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def signed(
    claims: dict[str, Any], alg: str = "HS256", headers: dict[str, Any] | None = None
) -> str:
    key: Any = HMAC_KEY
    if alg.startswith(("RS", "PS")):
        key = rsa_key()
    elif alg.startswith("ES"):
        key = ec_key()
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_jwt(
    header: dict[str, Any] | bytes, payload: dict[str, Any] | bytes, signature: str = "c2lnbmF0dXJl"
) -> str:
    """A compact JWS from any header and payload bytes, signed with nothing."""

    def part(value: dict[str, Any] | bytes) -> str:
        return b64url(value if isinstance(value, bytes) else json.dumps(value).encode("utf-8"))

    return f"{part(header)}.{part(payload)}.{signature}"


def jwe_like() -> str:
    """Five segments with a JWE header: what an encrypted token looks like from outside."""
    header = b64url(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
    return ".".join([header, b64url(b"key"), b64url(b"iv"), b64url(b"ciphertext"), b64url(b"tag")])


def nested_act(actors: list[str]) -> dict[str, Any] | None:
    """`act` for actors listed outermost (current) first."""
    act: dict[str, Any] | None = None
    for actor in reversed(actors):
        act = {"sub": actor} if act is None else {"sub": actor, "act": act}
    return act


SUBJECTS = [
    "alice@example.com",
    "José.Núñez@exämple.org",
    "research-agent-7",
    "svc-billing",
    "planner-bot",
    "system:serviceaccount:ns:deployer",
    "client-42",
    "用户-λ",
]
ACTORS = ["assistant-agent", "mail-tool", "search-tool", "orchestrator", "Ågent-ü", "svc-queue"]
AUDIENCES: list[Any] = ["https://api.example.com", ["api", "files"], [], ["ünï"], None]
SCOPES: list[tuple[str, Any]] = [
    ("scope", "read write"),
    ("scope", "files:* admin  calendar.read"),
    ("scp", ["a", "b:c"]),
    ("scp", "mail.send mail.read"),
    ("scope", ""),
    ("scp", ["lire", "écrire"]),
    ("", None),
]


def _claims(rng: random.Random, index: int) -> dict[str, Any]:
    sub = rng.choice(SUBJECTS)
    claims: dict[str, Any] = {"sub": sub, "iss": rng.choice(["https://idp.example", "ïdp"])}
    if rng.random() < 0.3:
        claims["client_id"] = sub if rng.random() < 0.5 else "app-" + str(index)
    elif rng.random() < 0.2:
        claims[rng.choice(["azp", "cid"])] = rng.choice([sub, "spa-client"])
    audience = rng.choice(AUDIENCES)
    if audience is not None:
        claims["aud"] = audience
    name, value = rng.choice(SCOPES)
    if name:
        claims[name] = value
    issued = BASE_TIME + rng.randrange(0, 86_400)
    claims["iat"] = issued
    if rng.random() < 0.8:
        claims["exp"] = issued + rng.choice([300, 3600, 86_400 * 30])
    if rng.random() < 0.3:
        claims["nbf"] = issued + 0.5
    if rng.random() < 0.7:
        claims["jti"] = f"jti-{index}"
    depth = rng.choice([0, 0, 1, 2, 3, 5])
    actors = [rng.choice(ACTORS) for _ in range(depth)]
    if actors:
        claims["act"] = nested_act(actors)
    if rng.random() < 0.4:
        claims["may_act"] = (
            {"sub": rng.choice(ACTORS)}
            if rng.random() < 0.6
            else [{"sub": a} for a in rng.sample(ACTORS, 2)]
        )
    for optional, value in (
        ("cnf", {"jkt": "thumb"}),
        ("auth_time", issued - 60),
        ("acr", "urn:mfa"),
        ("amr", ["pwd", "otp"]),
        ("txn", f"txn-{index}"),
        ("req_wl", "spiffe://example/wl"),
    ):
        if rng.random() < 0.25:
            claims[optional] = value
    if rng.random() < 0.2:
        claims["note"] = 'ünïcødé ✓ "quoted" \\ back'
    return claims


def generated_set(count: int = 80, seed: int = 8693) -> list[str]:
    """Well-formed, varied tokens; deterministic for a seed."""
    rng = random.Random(seed)
    tokens = []
    for index in range(count):
        alg = rng.choice(["HS256", "HS256", "HS384", "RS256", "ES256"])
        headers: dict[str, Any] = {}
        if rng.random() < 0.6:
            headers["kid"] = f"key-{index % 3}"
        if rng.random() < 0.3:
            headers["typ"] = rng.choice(["at+jwt", "txntoken+jwt"])
        tokens.append(signed(_claims(rng, index), alg, headers or None))
    return tokens


def decode_in_sql(tokens: list[str], config: Config | None = None) -> dict[str, dict[str, Any]]:
    """Run the SQL decoder over `tokens`; rows keyed by token_fp."""
    store = Store.open()
    try:
        store.con.execute("CREATE TEMP TABLE _t (raw_token VARCHAR)")
        store.con.executemany("INSERT INTO _t VALUES (?)", [[t] for t in tokens])
        decode_staged_tokens(store.con, config or Config(), staging="_t")
        return rows_by_fp(store.con)
    finally:
        store.close()


def rows_by_fp(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    cursor = con.execute(f"SELECT {', '.join(TOKEN_COLUMNS)} FROM tokens")
    return {row[0]: dict(zip(TOKEN_COLUMNS, row, strict=True)) for row in cursor.fetchall()}


def write_log(path: Path, authorizations: list[str]) -> Path:
    """A generic access log (JSON lines) with one call per authorization value."""
    with path.open("w", encoding="utf-8") as handle:
        for index, authorization in enumerate(authorizations):
            record = {
                "timestamp": BASE_TIME + index,
                "principal": f"p{index % 5}",
                "authorization": authorization,
                "action": "GET /x",
            }
            handle.write(json.dumps(record) + "\n")
    return path
