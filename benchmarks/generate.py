"""A seeded generator of generic access logs (JSON lines) and a matching token inventory.

Why it exists: issue 7 asks how m2maudit scales to millions of events, and that needs inputs
shaped like a real estate rather than one line repeated: a few thousand principals with a
skewed call volume, tens of thousands of distinct JWTs (hourly tokens for busy principals,
longer-lived ones for quiet ones), delegated tokens with nested `act` chains, static API keys,
fields that are sometimes missing, and a few malformed lines.

How it stays fast: only the small tables (principals, ~35 k JWTs, keys) are built in Python
(the JWTs with pyjwt); the N event lines are assembled by one DuckDB `COPY (SELECT ... FROM
range(N))`, every per-event choice drawn from `hash(i, seed, salt)`, so the same seed gives
the same bytes whatever the thread count.

    python benchmarks/generate.py --events 1000000   # -> benchmarks/data/events-1000000.jsonl
    python benchmarks/generate.py --events 100000 --seed 7 --force
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import jwt
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data"
WINDOW_START = datetime(2026, 11, 20, tzinfo=UTC)
WINDOW = timedelta(days=1)
AS_OF = "2026-11-21T01:00:00Z"  # one hour after the last event: the clock scans use
HOURS = 24
SKEW = 2.2  # principal index = floor(P * u ** SKEW): a few principals make most calls
SIGNING_KEY = "benchmark-signing-key-not-a-secret-0123456789"
ISSUER = "https://auth.bench.example"

RESOURCES = (
    "tickets",
    "invoices",
    "billing",
    "deploy",
    "builds",
    "repos",
    "warehouse",
    "exports",
    "customers",
    "orders",
    "payments",
    "search",
    "docs",
    "calendar",
    "mail",
    "crm",
    "inventory",
    "shipping",
    "analytics",
    "models",
    "prompts",
    "vectors",
    "secrets",
    "logs",
    "metrics",
    "alerts",
    "users",
    "groups",
    "audit",
    "reports",
    "storage",
    "queues",
    "events",
    "jobs",
    "schedules",
    "webhooks",
    "contracts",
    "claims",
    "kyc",
    "ledger",
)
ACTIONS = ("GET", "GET", "GET", "POST", "PUT", "PATCH", "DELETE")
USER_AGENTS = (
    "python-requests/2.32.3",
    "langchain/0.3.7",
    "openai-agents/0.4.1",
    "Go-http-client/2.0",
    "okhttp/4.12.0",
    "aws-sdk-go-v2/1.30.3",
    "curl/8.5.0",
    "node-fetch/3.3.2",
    "crewai/0.80.0",
    "axios/1.7.7",
)
KEY_TYPES = ("api_key", "api_key", "client_secret", "github_pat", "aws_access_key")
AGENT_WORDS = (
    "support",
    "billing",
    "deploy",
    "triage",
    "research",
    "sales",
    "ops",
    "coder",
    "review",
    "scheduler",
    "finance",
    "hr",
    "legal",
    "data",
    "security",
)
SERVICE_WORDS = (
    "etl",
    "report",
    "sync",
    "backup",
    "indexer",
    "gateway",
    "mailer",
    "cron",
    "ledger",
    "search",
)


@dataclass(frozen=True)
class Shape:
    """How big each part of the estate is for N events."""

    events: int
    principals: int
    tokens: int
    humans: int

    @classmethod
    def for_events(cls, events: int) -> Shape:
        """~35 k distinct JWTs at 5 M events (0.7 %), 550-3000 principals, 500 humans max."""
        return cls(
            events=events,
            principals=min(3000, 500 + events // 2000),
            tokens=max(50, round(events * 0.007)),
            humans=min(500, 50 + events // 10000),
        )


@dataclass
class Principal:
    idx: int
    name: str
    kind: str  # agent | service | human | unknown
    mode: str  # jwt | key
    scopes: list[str]
    delegated: bool  # its tokens name a human subject with an act chain
    traced: int  # per mille of its calls with a trace id
    human: str | None = None
    token_start: int = 0
    token_count: int = 0
    key_start: int = 0
    key_count: int = 0


def event_shares(count: int) -> list[float]:
    """Expected share of events of principal k when k = floor(P * u ** SKEW)."""
    edges = [((k / count) ** (1 / SKEW)) for k in range(count + 1)]
    return [edges[k + 1] - edges[k] for k in range(count)]


def make_principals(rng: random.Random, shape: Shape) -> list[Principal]:
    """Principals in random order, so busy and quiet ones are of every kind."""
    out: list[Principal] = []
    for idx in range(shape.principals):
        roll = rng.random()
        if roll < 0.55:
            kind, name = "agent", f"agent-{rng.choice(AGENT_WORDS)}-{idx}"
        elif roll < 0.90:
            kind, name = "service", f"svc-{rng.choice(SERVICE_WORDS)}-{idx}"
        elif roll < 0.95:
            kind, name = "human", f"user{idx}@corp.example"
        else:
            kind, name = "unknown", f"batch-runner-{idx}"
        mode = "key" if kind == "human" or rng.random() < 0.22 else "jwt"
        scopes = sorted(
            {
                f"{rng.choice(RESOURCES)}:{rng.choice(('read', 'write'))}"
                for _ in range(rng.randint(2, 7))
            }
        )
        if rng.random() < 0.03:
            scopes.append(f"{rng.choice(RESOURCES)}:*")
        if rng.random() < 0.02:
            scopes += [f"{r}:read" for r in rng.sample(RESOURCES, 9)]
        out.append(
            Principal(
                idx=idx,
                name=name,
                kind=kind,
                mode=mode,
                scopes=sorted(set(scopes)),
                delegated=kind == "agent" and rng.random() < 0.7,
                traced=1000 if rng.random() < 0.85 else 500,
            )
        )
    return out


def allocate_tokens(principals: list[Principal], target: int) -> None:
    """Busy JWT principals get a token an hour; quiet ones fewer, longer-lived tokens."""
    shares = event_shares(len(principals))
    users = [p for p in principals if p.mode == "jwt"]
    low, high = 0.0, float(target) * 50
    for _ in range(60):  # bisect the scale that gives about `target` tokens in all
        mid = (low + high) / 2
        total = sum(min(HOURS, max(1, round(mid * shares[p.idx]))) for p in users)
        low, high = (mid, high) if total < target else (low, mid)
    start = 0
    for p in users:
        p.token_start = start
        p.token_count = min(HOURS, max(1, round(high * shares[p.idx])))
        start += p.token_count


def act_claim(rng: random.Random, agent: str, depth: int) -> dict[str, Any]:
    """RFC 8693 `act`: the current actor outermost, earlier actors nested inside."""
    claim: dict[str, Any] = {"sub": agent}
    inner = claim
    for level in range(1, depth):
        inner["act"] = (
            {"sub": f"agent-orchestrator-{rng.randint(1, 40)}"}
            if level % 2
            else {"client_id": f"agent-planner-{rng.randint(1, 40)}"}
        )
        inner = inner["act"]
    return claim


def token_payload(rng: random.Random, p: Principal, slot: int, humans: list[str]) -> dict[str, Any]:
    """Claims of token `slot` of principal `p`, valid for its share of the day."""
    hours = HOURS / p.token_count
    iat = WINDOW_START + timedelta(hours=slot * hours)
    lifetime = timedelta(hours=hours)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "client_id": p.name,
        "sub": p.name,
        "iat": int(iat.timestamp()),
    }
    if p.delegated:
        claims["sub"] = p.human or rng.choice(humans)
        roll = rng.random()
        depth = 1 if roll < 0.85 else 2 if roll < 0.95 else 3 if roll < 0.99 else 6
        claims["act"] = act_claim(rng, p.name, depth)
        if rng.random() < 0.05:
            claims["may_act"] = {"sub": p.name}
    if rng.random() < 0.92:
        claims["aud"] = (
            "https://api.bench.example"
            if rng.random() < 0.8
            else ["https://api.bench.example", f"https://{rng.choice(RESOURCES)}.bench.example"]
        )
    claims["scope"] = " ".join(p.scopes)
    if rng.random() > 0.01:  # 1 % never expire
        claims["exp"] = int((iat + lifetime).timestamp())
    if rng.random() < 0.95:
        claims["jti"] = f"{rng.getrandbits(64):016x}"
    if rng.random() < 0.1:
        claims["cnf"] = {"jkt": f"{rng.getrandbits(128):032x}"}
    return claims


def make_tokens(rng: random.Random, principals: list[Principal], humans: list[str]) -> list[str]:
    """Every JWT, in token index order; a few alg=none and a few that do not decode."""
    tokens: list[str] = []
    for p in principals:
        if p.mode != "jwt":
            continue
        if p.delegated:
            p.human = rng.choice(humans)
        for slot in range(p.token_count):
            payload = token_payload(rng, p, slot, humans)
            roll = rng.random()
            if roll < 0.002:
                tokens.append(jwt.encode(payload, "", algorithm="none"))
            elif roll < 0.004:
                tokens.append("eyJhbGciOiJIUzI1NiJ9.not*base64!.c2ln")
            else:
                tokens.append(
                    jwt.encode(payload, SIGNING_KEY, algorithm="HS256", headers={"kid": "bench-1"})
                )
    return tokens


def allocate_keys(rng: random.Random, principals: list[Principal]) -> list[str]:
    """Static credentials of key-mode principals, 1-3 each, in key index order."""
    keys: list[str] = []
    for p in principals:
        if p.mode != "key":
            continue
        p.key_start, p.key_count = len(keys), rng.choice((1, 1, 2, 3))
        keys += [f"key-{p.idx}-{k}-{rng.getrandbits(32):08x}" for k in range(p.key_count)]
    return keys


def inventory_rows(
    rng: random.Random, principals: list[Principal], keys: list[str]
) -> list[dict[str, str]]:
    """The inventory: most keys (3 % missing), every JWT client, some dormant extras."""
    as_of = datetime.fromisoformat(AS_OF)
    rows: list[dict[str, str]] = []
    owner = {p.idx: f"team-{p.idx % 60}" for p in principals}

    def day(ago: int) -> str:
        return (as_of - timedelta(days=ago)).date().isoformat()

    def row(token_id: str, ctype: str, p: Principal, last_used: str) -> dict[str, str]:
        created = rng.randint(20, 400)
        rotated = (
            rng.randint(1, created) if rng.random() < 0.3 else rng.randint(1, min(created, 80))
        )
        valid = rng.randint(30, 90) if rng.random() < 0.8 else 365
        expires = "" if rng.random() < 0.1 else day(rotated - valid)
        decommissioned = rng.random() < 0.02
        revoked = not decommissioned and rng.random() < 0.02
        return {
            "token_id": token_id,
            "type": ctype,
            "principal": p.name,
            "principal_type": p.kind,
            "owner": owner[p.idx],
            "scopes": " ".join(p.scopes),
            "created_at": day(created),
            "last_rotated_at": day(rotated),
            "expires_at": expires,
            "last_used_at": last_used,
            "status": "revoked" if revoked else "active",
            "revoked_at": "2026-11-20T12:00:00Z" if revoked else "",
            "principal_status": "decommissioned" if decommissioned else "active",
            "environment": rng.choice(("prod", "prod", "prod", "staging", "dev")),
        }

    for p in principals:
        if p.mode == "jwt":
            rows.append(row(f"client-{p.name}", "client_secret", p, day(1)))
            continue
        for key in keys[p.key_start : p.key_start + p.key_count]:
            if rng.random() >= 0.03:
                rows.append(row(key, rng.choice(KEY_TYPES), p, ""))
        if rng.random() < 0.2:  # an old key nobody uses any more
            rows.append(
                row(
                    f"key-{p.idx}-old-{rng.getrandbits(32):08x}",
                    "api_key",
                    p,
                    day(rng.randint(50, 300)),
                )
            )
    return rows


def write_inventory(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def principal_frame(principals: list[Principal]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "idx": [p.idx for p in principals],
            "name": [p.name for p in principals],
            "kind": [p.kind for p in principals],
            "scopes": [p.scopes for p in principals],
            "human": [p.human for p in principals],
            "delegated": [p.delegated for p in principals],
            "traced": [p.traced for p in principals],
            "token_start": [p.token_start for p in principals],
            "token_count": [p.token_count for p in principals],
            "key_start": [p.key_start for p in principals],
            "key_count": [p.key_count for p in principals],
        }
    )


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def events_sql(shape: Shape, seed: int, path: Path) -> str:
    """One COPY writing every event line; `a`..`f`, `g`..`m` are per-mille draws per event.

    (No draw is called `i`: that is the row number.)

    Lines are built as text (not `FORMAT JSON`) so absent fields are left out, as real
    producers do, rather than written as null. Every field value is generated by us and
    holds no quote or backslash, so plain concatenation is valid JSON.
    """
    n, start = shape.events, int(WINDOW_START.timestamp())
    draws = ", ".join(
        f"((h1 // {1000**k}) % 1000)::INTEGER AS {name}" for k, name in enumerate("abcdef")
    )
    draws += ", " + ", ".join(
        f"((h2 // {1000**k}) % 1000)::INTEGER AS {name}" for k, name in enumerate("ghjklm")
    )
    iso = "strftime(to_timestamp(epoch), '%Y-%m-%dT%H:%M:%SZ')"
    line = f"""'{{' || concat_ws(', ',
        '"timestamp": ' || CASE WHEN i % 199999 = 3 THEN '"not-a-time"'
                                WHEN f < 30 THEN (epoch * 1000 + g)::VARCHAR
                                WHEN f < 60 THEN epoch::VARCHAR
                                ELSE '"' || {iso} || '"' END,
        CASE WHEN a >= 40 OR (tok IS NULL AND key IS NULL) THEN '"principal": "' || name || '"' END,
        CASE WHEN i % 499979 = 11 THEN '"principal_type": {{"kind": "agent"}}'
             WHEN b < 700 THEN '"principal_type": "' || kind || '"' END,
        CASE WHEN c < 450 THEN '"client_id": "' || name || '"' END,
        CASE WHEN tok IS NOT NULL THEN '"authorization": "Bearer ' || tok || '"' END,
        CASE WHEN key IS NOT NULL THEN '"token_id": "' || key || '"' END,
        CASE WHEN human IS NOT NULL AND d < 600 THEN '"on_behalf_of": "' || human || '"' END,
        '"action": "' || {_list(ACTIONS)}[1 + e % {len(ACTIONS)}] || ' /' ||
            split_part(scope, ':', 1) || '"',
        CASE WHEN i % 250007 = 5
             THEN '"resource": "https://api.bench.example/export?api_key=' || md5(i::VARCHAR) || '"'
             WHEN g < 800 THEN '"resource": "https://api.bench.example/' ||
                  split_part(scope, ':', 1) || '/' || (h % 5000) || '"' END,
        CASE WHEN h < 100 THEN '"scopes": ["' || scope || '"]'
             WHEN h < 850 THEN '"scopes": "' || scope || '"' END,
        '"status": ' || CASE WHEN j < 20 THEN '403' WHEN j < 30 THEN '500'
                             WHEN j < 40 THEN '"denied"' ELSE '200' END,
        CASE WHEN k < 950 THEN '"source_ip": "10.' || (idx % 250) || '.' || (k % 250) || '.' ||
             (l % 250) || '"' END,
        CASE WHEN l < 900 THEN '"user_agent": "' ||
             {_list(USER_AGENTS)}[1 + idx % {len(USER_AGENTS)}] || '"' END,
        CASE WHEN a < traced
             THEN '"trace_id": "' || md5(idx::VARCHAR || '-' || (i // 4)) || '"' END,
        CASE WHEN b < 300 THEN '"session_id": "s-' || idx || '-' || (epoch // 3600) || '"' END,
        CASE WHEN c < 200 THEN '"task_id": "t-' || idx || '-' || (epoch // 1800) || '"' END
    ) || '}}'"""
    return f"""
    COPY (
        WITH r AS (
            SELECT i, hash(i, {seed}, 1) AS h1, hash(i, {seed}, 2) AS h2,
                   {start} + (i * {int(WINDOW.total_seconds())}) // {n} AS epoch
            FROM range({n}) t(i)
        ),
        drawn AS (
            SELECT i, epoch, (epoch - {start}) // 3600 AS hour, {draws},
                   least({shape.principals - 1},
                         floor({shape.principals}
                               * pow((h1 % 1000003) / 1000003.0, {SKEW})))::INTEGER AS pidx
            FROM r
        ),
        picked AS (
            SELECT d.*, p.*,
                   p.scopes[1 + (d.e * 7 + d.g) % len(p.scopes)] AS scope,
                   CASE WHEN p.token_count > 0 THEN
                       -- 0.5 % of calls present the previous hour's token (use after expiry)
                       p.token_start + greatest(0, (d.hour * p.token_count) // {HOURS}
                                                   - (d.k < 5)::INTEGER)
                   END AS tidx,
                   CASE WHEN p.key_count > 0 THEN p.key_start + d.l % p.key_count END AS kidx
            FROM drawn d JOIN principals p ON p.idx = d.pidx
        ),
        lines AS (
            SELECT x.i, {line} AS line
            FROM picked x LEFT JOIN (SELECT idx AS tidx, tok FROM tokens) USING (tidx)
                   LEFT JOIN (SELECT idx AS kidx, key FROM keys) USING (kidx)
        )
        SELECT CASE WHEN i % 99991 = 17 THEN left(line, 60) ELSE line END
        FROM lines ORDER BY i
    ) TO {_q(str(path))} (FORMAT CSV, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')
    """


@dataclass(frozen=True)
class Dataset:
    events: Path
    inventory: Path
    meta: Path


def dataset_paths(events: int, seed: int, data_dir: Path = DATA_DIR) -> Dataset:
    stem = f"events-{events}" + ("" if seed == 1 else f"-seed{seed}")
    return Dataset(
        data_dir / f"{stem}.jsonl",
        data_dir / f"{stem}-inventory.csv",
        data_dir / f"{stem}.meta.json",
    )


def generate(
    events: int, seed: int = 1, data_dir: Path = DATA_DIR, force: bool = False, log: Any = print
) -> Dataset:
    """Write the event log, inventory and a small meta file; skip if they already exist."""
    paths = dataset_paths(events, seed, data_dir)
    if not force and all(p.exists() for p in (paths.events, paths.inventory, paths.meta)):
        return paths
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shape = Shape.for_events(events)
    rng = random.Random(seed)
    principals = make_principals(rng, shape)
    allocate_tokens(principals, shape.tokens)
    humans = [
        f"{rng.choice(('alice', 'bob', 'carol', 'dan', 'erin'))}.{h}@corp.example"
        for h in range(shape.humans)
    ]
    tokens = make_tokens(rng, principals, humans)
    keys = allocate_keys(rng, principals)
    inventory = inventory_rows(rng, principals, keys)
    write_inventory(paths.inventory, inventory)
    con = duckdb.connect()
    con.register("principals_df", principal_frame(principals))
    con.execute("CREATE TABLE principals AS SELECT * FROM principals_df")
    con.register("tokens_df", pd.DataFrame({"idx": range(len(tokens)), "tok": tokens}))
    con.execute("CREATE TABLE tokens AS SELECT * FROM tokens_df")
    con.register("keys_df", pd.DataFrame({"idx": range(len(keys)), "key": keys}))
    con.execute("CREATE TABLE keys AS SELECT * FROM keys_df")
    tmp = paths.events.with_suffix(".jsonl.tmp")
    con.execute(events_sql(shape, seed, tmp))
    con.close()
    tmp.replace(paths.events)
    meta = {
        "events": events,
        "seed": seed,
        "as_of": AS_OF,
        "principals": shape.principals,
        "jwt_principals": sum(p.mode == "jwt" for p in principals),
        "distinct_jwts": len(tokens),
        "static_keys": len(keys),
        "inventory_rows": len(inventory),
        "bytes": paths.events.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }
    paths.meta.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    log(f"generated {paths.events.name}: {json.dumps(meta)}")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--events", default="100000", help="comma-separated event counts, e.g. 100000,1000000"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=DATA_DIR, help="directory for the data (benchmarks/data)"
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if present")
    args = parser.parse_args(argv)
    for n in (int(x.replace("_", "")) for x in args.events.split(",")):
        paths = generate(n, args.seed, args.out, force=args.force)
        print(paths.events, paths.inventory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
