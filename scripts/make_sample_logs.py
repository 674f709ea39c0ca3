"""Regenerate `sample_logs/`: the demo estate of Northwind, a small company running AI agents.

Seeded and deterministic: running it twice writes the same bytes. The estate spans
2026-10-29 .. 2026-11-27 (scan it `--as-of 2026-11-28T00:00:00Z`), with a handful of older
calls of a legacy service. `sample_logs/clean/` holds the well-behaved part of the estate,
which must give no findings; the top level adds one example of every problem in the pack.

    python scripts/make_sample_logs.py
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parent.parent / "sample_logs"
START = datetime(2026, 10, 29, tzinfo=UTC)
DAYS = 30
DEMO_KEY = "m2maudit-demo-signing-key-not-a-secret"  # the demo tokens are HS256 with this key
ISSUER = "https://auth.northwind.example"
API = "https://api.northwind.example"
HUMANS = [
    "alice@northwind.example",
    "bob@northwind.example",
    "dana@northwind.example",
    "erin@northwind.example",
]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def token(claims: dict[str, Any], alg: str = "HS256") -> str:
    if alg == "none":
        return jwt.encode(claims, key=None, algorithm="none")
    return jwt.encode(claims, DEMO_KEY, algorithm=alg)


class Estate:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events: list[dict[str, Any]] = []

    def moment(self) -> datetime:
        return START + timedelta(seconds=self.rng.randrange(DAYS * 86400))

    def trace(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    def add(self, **fields: Any) -> None:
        self.events.append({k: v for k, v in fields.items() if v is not None})


def clean_estate(estate: Estate) -> list[dict[str, Any]]:
    """The support agent does everything right: delegated, short-lived, traced tokens."""
    rng = estate.rng
    inventory = []
    for _ in range(400):
        when = estate.moment()
        human = rng.choice(HUMANS)
        task = f"task-{rng.randrange(10**8):08d}"
        claims = {
            "iss": ISSUER,
            "sub": human,
            "aud": API,
            "client_id": "agent-support",
            "scope": "tickets:read tickets:write",
            "iat": epoch(when - timedelta(minutes=1)),
            "exp": epoch(when + timedelta(minutes=9)),
            "jti": f"jti-{rng.getrandbits(64):016x}",
            "act": {"sub": "agent-support"},
        }
        estate.add(
            timestamp=stamp(when),
            principal="agent-support",
            principal_type="agent",
            authorization=f"Bearer {token(claims)}",
            on_behalf_of=human,
            action=rng.choice(["GET /tickets", "POST /tickets/comment", "GET /kb/search"]),
            resource=f"{API}/tickets/{rng.randrange(1000, 9999)}",
            scopes=rng.choice(["tickets:read", "tickets:write"]),
            status=200,
            source_ip="10.20.0.15",
            user_agent="support-agent/2.3",
            trace_id=estate.trace(),
            task_id=task,
        )
    # The sync service's key: rotated recently, expires within 90 days, used for all it holds.
    for day in range(DAYS):
        when = START + timedelta(days=day, hours=2)
        estate.add(
            timestamp=stamp(when),
            principal="svc-sync",
            principal_type="service",
            token_id="key-sync-2026-11",
            action="POST /sync",
            resource=f"{API}/sync",
            scopes="sync:write",
            status=200,
            source_ip="10.20.0.30",
            trace_id=estate.trace(),
        )
    inventory.append(
        {
            "token_id": "key-sync-2026-11",
            "type": "api_key",
            "principal": "svc-sync",
            "principal_type": "service",
            "owner": "platform-team",
            "scopes": "sync:write",
            "created_at": "2026-10-20",
            "last_rotated_at": "2026-10-20",
            "expires_at": "2027-01-15",
            "last_used_at": "2026-11-27",
            "status": "active",
            "principal_status": "active",
            "environment": "prod",
        }
    )
    return inventory


def problem_estate(estate: Estate) -> list[dict[str, Any]]:
    """One or more examples of every problem the rule pack knows."""
    rng = estate.rng
    inv: list[dict[str, Any]] = []

    def cred(**fields: Any) -> None:
        base = {
            "type": "api_key",
            "principal_type": "agent",
            "owner": "ml-platform",
            "status": "active",
            "principal_status": "active",
            "environment": "prod",
        }
        inv.append({**base, **fields})

    # agent-billing: client-credentials JWT, no human, 24 h, wildcard scope, no jti, no aud.
    billing = token(
        {
            "iss": ISSUER,
            "sub": "agent-billing",
            "client_id": "agent-billing",
            "scope": "billing:* invoices:read",
            "iat": epoch(START),
            "exp": epoch(START + timedelta(days=40)),
        }
    )
    for _ in range(250):
        estate.add(
            timestamp=stamp(estate.moment()),
            principal="agent-billing",
            principal_type="agent",
            authorization=f"Bearer {billing}",
            action=rng.choice(["GET /invoices", "POST /refunds", "GET /customers"]),
            resource=f"{API}/billing",
            scopes="invoices:read",
            status=200,
            trace_id=estate.trace() if rng.random() < 0.5 else None,
        )
    # agent-deploy: a static API key, untraced; a person borrows it once.
    for _ in range(120):
        estate.add(
            timestamp=stamp(estate.moment()),
            principal="agent-deploy",
            principal_type="agent",
            token_id="key-deploy-1",
            action="GET /deployments",
            resource=f"{API}/deploy",
            scopes="deploy:read",
            status=200,
            on_behalf_of=rng.choice(HUMANS),
        )
    estate.add(
        timestamp="2026-11-21T22:14:05Z",
        principal="carol@northwind.example",
        principal_type="human",
        token_id="key-deploy-1",
        action="POST /deployments",
        resource=f"{API}/deploy/prod",
        scopes="deploy:write",
        status=201,
        user_agent="curl/8.5.0",
        trace_id=estate.trace(),
    )
    cred(
        token_id="key-deploy-1",
        principal="agent-deploy",
        scopes="deploy:read deploy:write deploy:admin",
        created_at="2025-09-01",
        last_rotated_at="2025-09-01",
        last_used_at="2026-11-27",
    )
    # agent-research: presents a human's token without an act claim (impersonation).
    for _ in range(60):
        when = estate.moment()
        human = rng.choice(HUMANS)
        claims = {
            "iss": ISSUER,
            "sub": human,
            "aud": API,
            "client_id": "agent-research",
            "scope": "docs:read",
            "iat": epoch(when),
            "exp": epoch(when + timedelta(minutes=5)),
            "jti": f"jti-{rng.getrandbits(64):016x}",
            "auth_time": epoch(when),
        }
        estate.add(
            timestamp=stamp(when),
            authorization=token(claims),
            action="GET /docs",
            resource=f"{API}/docs",
            scopes="docs:read",
            status=200,
            trace_id=estate.trace(),
        )
    # agent-planner: a five-hop chain, and a chain whose actor the subject never allowed.
    for depth_actor in range(30):
        when = estate.moment()
        act: dict[str, Any] = {"sub": "tool-search"}
        for hop in ["agent-researcher", "agent-writer", "agent-reviewer", "agent-planner"]:
            act = {"sub": hop, "act": act}
        claims = {
            "iss": ISSUER,
            "sub": "dana@northwind.example",
            "aud": API,
            "client_id": "agent-planner",
            "scope": "plans:write",
            "iat": epoch(when),
            "exp": epoch(when + timedelta(minutes=10)),
            "jti": f"jti-plan-{depth_actor}",
            "act": act,
        }
        estate.add(
            timestamp=stamp(when),
            principal="agent-planner",
            principal_type="agent",
            authorization=token(claims),
            on_behalf_of="dana@northwind.example",
            action="POST /plans",
            resource=f"{API}/plans",
            scopes="plans:write",
            status=200,
            trace_id=estate.trace(),
        )
    when = START + timedelta(days=12, hours=9)
    rogue = {
        "iss": ISSUER,
        "sub": "erin@northwind.example",
        "aud": API,
        "client_id": "agent-unvetted",
        "scope": "mail:send",
        "iat": epoch(when),
        "exp": epoch(when + timedelta(minutes=10)),
        "jti": "jti-rogue-1",
        "may_act": {"sub": "agent-support"},
        "act": {"sub": "agent-unvetted"},
    }
    estate.add(
        timestamp=stamp(when),
        principal="agent-unvetted",
        principal_type="agent",
        authorization=token(rogue),
        action="POST /mail",
        resource=f"{API}/mail",
        scopes="mail:send",
        status=200,
        trace_id=estate.trace(),
    )
    # agent-report: a chain rooted in a scheduler's client-credentials token (no human root).
    for _ in range(20):
        when = estate.moment()
        claims = {
            "iss": ISSUER,
            "sub": "svc-scheduler",
            "client_id": "svc-scheduler",
            "aud": API,
            "scope": "reports:run",
            "iat": epoch(when),
            "exp": epoch(when + timedelta(minutes=10)),
            "jti": f"jti-{rng.getrandbits(64):016x}",
            "act": {"sub": "agent-report"},
        }
        estate.add(
            timestamp=stamp(when),
            principal="agent-report",
            principal_type="agent",
            authorization=token(claims),
            action="POST /reports",
            status=200,
            scopes="reports:run",
            trace_id=estate.trace(),
        )
    # agent-triage: one token (8 h lifetime) reused across many tasks.
    when = START + timedelta(days=20, hours=8)
    triage = token(
        {
            "iss": ISSUER,
            "sub": "agent-triage",
            "client_id": "agent-triage",
            "aud": API,
            "scope": "alerts:read",
            "iat": epoch(when),
            "exp": epoch(when + timedelta(hours=8)),
            "jti": "jti-triage-1",
        }
    )
    for task in range(6):
        estate.add(
            timestamp=stamp(when + timedelta(minutes=20 * task)),
            principal="agent-triage",
            principal_type="agent",
            authorization=f"Bearer {triage}",
            on_behalf_of="bob@northwind.example",
            action="GET /alerts",
            scopes="alerts:read",
            status=200,
            trace_id=estate.trace(),
            task_id=f"triage-{task}",
        )
    # Used after expiry, and an unsigned token.
    old = START + timedelta(days=3)
    expired = token(
        {
            "iss": ISSUER,
            "sub": "agent-sync-bot",
            "client_id": "agent-sync-bot",
            "aud": API,
            "scope": "sync:read",
            "iat": epoch(old),
            "exp": epoch(old + timedelta(minutes=30)),
            "jti": "jti-expired-1",
        }
    )
    estate.add(
        timestamp=stamp(old + timedelta(days=2)),
        principal="agent-sync-bot",
        principal_type="agent",
        authorization=f"Bearer {expired}",
        on_behalf_of="alice@northwind.example",
        action="GET /sync",
        scopes="sync:read",
        status=200,
        trace_id=estate.trace(),
    )
    unsigned = token(
        {
            "iss": ISSUER,
            "sub": "agent-mallory",
            "client_id": "agent-mallory",
            "aud": API,
            "scope": "admin",
            "iat": epoch(old),
            "exp": epoch(old + timedelta(minutes=5)),
            "jti": "jti-none-1",
        },
        alg="none",
    )
    estate.add(
        timestamp=stamp(old + timedelta(minutes=1)),
        principal="agent-mallory",
        principal_type="agent",
        authorization=unsigned,
        action="DELETE /users/42",
        status=403,
        trace_id=estate.trace(),
        on_behalf_of="erin@northwind.example",
    )
    # agent-ci-bot: a token that never expires.
    forever = token(
        {
            "iss": ISSUER,
            "sub": "agent-ci-bot",
            "client_id": "agent-ci-bot",
            "aud": API,
            "scope": "builds:read",
            "iat": epoch(old),
            "jti": "jti-forever-1",
        }
    )
    for day in range(0, DAYS, 3):
        estate.add(
            timestamp=stamp(START + timedelta(days=day, hours=5)),
            principal="agent-ci-bot",
            principal_type="agent",
            authorization=f"Bearer {forever}",
            on_behalf_of="bob@northwind.example",
            action="GET /builds",
            scopes="builds:read",
            status=200,
            trace_id=estate.trace(),
        )
    # svc-etl: twelve scopes and three active keys.
    scopes12 = " ".join(f"warehouse:{s}" for s in "abcdefghijkl")
    for n in (1, 2, 3):
        cred(
            token_id=f"key-etl-{n}",
            principal="svc-etl",
            principal_type="service",
            scopes=scopes12,
            created_at="2026-10-01",
            last_rotated_at="2026-10-01",
            expires_at="2026-12-20",
            last_used_at="2026-11-26",
        )
    # agent-legacy: dormant, and its agent was decommissioned but the key is active.
    cred(
        token_id="key-legacy-1",
        principal="agent-legacy",
        scopes="crm:read",
        created_at="2026-02-01",
        expires_at="2026-12-31",
        last_used_at="2026-06-30",
        principal_status="decommissioned",
    )
    # svc-report: a static access key in use since August (over the rotation period).
    for when in ("2026-08-03T04:00:00Z", "2026-09-14T04:00:00Z", "2026-11-16T04:00:00Z"):
        estate.add(
            timestamp=when,
            principal="svc-report",
            principal_type="service",
            token_id="key-report-7",
            action="GET /exports",
            scopes="exports:read",
            status=200,
            trace_id=estate.trace(),
        )
    cred(
        token_id="key-report-7",
        type="api_key",
        principal="svc-report",
        principal_type="service",
        scopes="exports:read",
        created_at="2026-08-01",
        last_rotated_at="2026-08-01",
        expires_at="2028-08-01",
        last_used_at="2026-11-16",
    )
    # A revoked key still accepted, an unknown key, a key shared by two agents.
    cred(
        token_id="key-ops-old",
        principal="agent-ops",
        scopes="ops:read",
        created_at="2026-05-01",
        expires_at="2026-12-01",
        status="revoked",
        revoked_at="2026-11-10T00:00:00Z",
    )
    estate.add(
        timestamp="2026-11-15T03:12:44Z",
        principal="agent-ops",
        principal_type="agent",
        token_id="key-ops-old",
        action="GET /ops/status",
        scopes="ops:read",
        status=200,
        trace_id=estate.trace(),
        on_behalf_of="bob@northwind.example",
    )
    for _ in range(15):
        estate.add(
            timestamp=stamp(estate.moment()),
            principal="agent-shadow",
            principal_type="agent",
            token_id="key-shadow-9",
            action="GET /customers",
            scopes="crm:read",
            status=200,
            trace_id=estate.trace(),
            on_behalf_of="alice@northwind.example",
        )
    for name in ("agent-mailer", "agent-notifier"):
        for _ in range(10):
            estate.add(
                timestamp=stamp(estate.moment()),
                principal=name,
                principal_type="agent",
                token_id="key-shared-1",
                action="POST /notify",
                scopes="notify:send",
                status=202,
                trace_id=estate.trace(),
                on_behalf_of="dana@northwind.example",
            )
    cred(
        token_id="key-shared-1",
        principal="agent-mailer",
        scopes="notify:send",
        created_at="2026-10-15",
        last_rotated_at="2026-10-15",
        expires_at="2026-12-15",
        last_used_at="2026-11-27",
    )
    # A secret pasted into a URL by a badly written tool.
    estate.add(
        timestamp="2026-11-09T11:00:00Z",
        principal="agent-crawler",
        principal_type="agent",
        token_id="key-crawler-1",
        action="GET /export",
        resource=f"{API}/export?api_key=sk_live_{rng.getrandbits(96):024x}",
        status=200,
        trace_id=estate.trace(),
        on_behalf_of="bob@northwind.example",
    )
    # agent-relay: its issuer put the partner's API key in the token's claims (M2M605).
    issued = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    relay = token(
        {
            "iss": ISSUER,
            "sub": "dana@northwind.example",
            "act": {"sub": "agent-relay"},
            "client_id": "agent-relay",
            "aud": API,
            "scope": "partners:read",
            "iat": epoch(issued),
            "exp": epoch(issued + timedelta(minutes=15)),
            "jti": "jti-relay-1",
            "partner_api_key": "sk_live_" + "0123456789abcdef" * 2,
        }
    )
    for minute in (1, 4, 9):
        estate.add(
            timestamp=stamp(issued + timedelta(minutes=minute)),
            principal="agent-relay",
            principal_type="agent",
            authorization=f"Bearer {relay}",
            action="GET /partners/orders",
            scopes="partners:read",
            status=200,
            trace_id=estate.trace(),
        )
    cred(
        token_id="key-crawler-1",
        principal="agent-crawler",
        scopes="export:read",
        created_at="2026-10-01",
        last_rotated_at="2026-10-01",
        expires_at="2026-12-01",
        last_used_at="2026-11-09",
    )
    return inv


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    events = sorted(events, key=lambda e: (e["timestamp"], json.dumps(e, sort_keys=True)))
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events), encoding="utf-8")


def write_inventory(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = [
        "token_id",
        "type",
        "principal",
        "principal_type",
        "owner",
        "scopes",
        "created_at",
        "last_rotated_at",
        "expires_at",
        "last_used_at",
        "status",
        "revoked_at",
        "principal_status",
        "environment",
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})


def main() -> None:
    clean = Estate(seed=20261128)
    clean_inventory = clean_estate(clean)
    write_jsonl(ROOT / "clean" / "access.jsonl", clean.events)
    write_inventory(ROOT / "clean" / "inventory.csv", clean_inventory)
    problems = Estate(seed=7)
    inventory = problem_estate(problems)
    write_jsonl(ROOT / "agents" / "access.jsonl", problems.events)
    write_inventory(ROOT / "agents" / "inventory.csv", inventory)
    print(f"wrote {len(clean.events)} clean and {len(problems.events)} problem events")


if __name__ == "__main__":
    main()
