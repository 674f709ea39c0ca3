"""The shared views: `ev_groups` must answer every aggregate the rules take from it exactly as
the same aggregate over `ev` (one row per event) does.

Most rules read `ev_groups` for speed. Grouping must lose nothing a rule reads: a column left
out of the grouping key would merge calls that differ in it. The log here is random (seeded):
principals with and without a type, static keys and JWTs (some acting for a human, some
nested `act`, some without `jti`), traces, outcomes, leaked secrets, scopes, two files.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.scan import attribution
from m2maudit.store import Store
from m2maudit.views import create_views
from tests.jwt_factory import nested_act, signed

PRINCIPALS = ["agent-a", "agent-b", "svc-c", "alice@example.com", "batch-d", None]


def _tokens(rng: random.Random) -> list[str]:
    tokens = []
    for i in range(12):
        claims: dict[str, Any] = {"client_id": rng.choice(["agent-a", "agent-b", "svc-c"])}
        claims["sub"] = rng.choice([claims["client_id"], "alice@example.com", "bob@example.com"])
        if rng.random() < 0.6:
            claims["jti"] = f"jti-{i}"
        if rng.random() < 0.5:
            actors = rng.sample(["agent-a", "agent-b", "svc-c"], rng.randint(1, 3))
            claims["act"] = nested_act(actors)
        if rng.random() < 0.7:
            claims["scope"] = rng.choice(["read", "read write", "admin", "*"])
        claims["iat"], claims["exp"] = 1_763_600_000, 1_763_600_000 + rng.choice([600, 86_400])
        tokens.append(signed(claims))
    return tokens


def _event(rng: random.Random, tokens: list[str], n: int) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": 1_763_600_000 + rng.randint(0, 86_400)}
    principal = rng.choice(PRINCIPALS)
    if principal:
        event["principal"] = principal
    if rng.random() < 0.5:
        event["principal_type"] = rng.choice(["agent", "service", "human", "unknown"])
    if rng.random() < 0.5:
        event["authorization"] = "Bearer " + rng.choice(tokens)
    else:
        event["token_id"] = rng.choice(["key-1", "key-2", "key-3"])
        event.setdefault("principal", "svc-c")
    for field, values in (
        ("trace_id", [f"t{n}", None]),
        ("session_id", [f"s{n % 7}", None, None]),
        ("task_id", [f"task-{n % 5}", None]),
        ("on_behalf_of", ["carol@example.com", None, None, None]),
        ("status", [200, 201, 403, 500, "ok", None]),
        ("scopes", ["read", "read write", ["admin"], [], None]),
        ("action", ["GET /a", "POST /b", "DELETE /c"]),
    ):
        value = rng.choice(values)
        if value is not None:
            event[field] = value
    if rng.random() < 0.03:
        event["resource"] = "https://x.example/?api_key=abcdef0123456789abcdef" + str(n % 2)
    return event


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    rng = random.Random(20261129)
    tokens = _tokens(rng)
    folder = tmp_path_factory.mktemp("logs")
    paths = []
    for name in ("a.jsonl", "b.jsonl"):
        lines = [json.dumps(_event(rng, tokens, n)) for n in range(700)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(str(folder / name))
    inventory = folder / "inventory.csv"
    inventory.write_text(
        "token_id,type,principal,status\nkey-1,api_key,svc-c,active\nkey-2,api_key,agent-a,revoked\n",
        encoding="utf-8",
    )
    store = Store.open()
    ingest_paths(store, paths, [str(inventory)], Config())
    create_views(store.con, Config())
    return store


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return sorted(store.con.execute(sql).fetchall(), key=repr)


# (grouping columns, filter): the shapes of the rules that read ev_groups.
GROUPINGS = [
    ("actor, credential_group", "actor_kind = 'agent' AND human IS NULL"),
    ("actor, credential_group", "len(chain) > 0"),
    ("actor, credential", "NOT traced"),
    ("coalesce(token_client_id, actor), credential_group", "token_subject_kind = 'human'"),
    ("actor, credential_id", "credential_id IS NOT NULL"),
    ("leaked_secret_fp", "leaked_secret IS NOT NULL"),
    ("actor, token_fp, scopes_granted", "token_scope IS NOT NULL"),
    ("actor", "outcome = 'success'"),
    ("credential", "token_error IS NULL AND token_exp IS NOT NULL"),
]


@pytest.mark.parametrize(("keys", "where"), GROUPINGS)
def test_groups_aggregate_as_the_events_do(store: Store, keys: str, where: str) -> None:
    per_event = _rows(
        store,
        f"SELECT {keys}, count(*), min(ts), max(ts), m2m_locations(source_file, source_line), "
        f"count(DISTINCT credential), min(human), bool_or(traced) "
        f"FROM ev WHERE {where} GROUP BY ALL",
    )
    per_group = _rows(
        store,
        f"SELECT {keys}, sum(calls)::BIGINT, min(first_ts), max(last_ts), "
        f"m2m_group_locations(locations), count(DISTINCT credential), min(human), bool_or(traced) "
        f"FROM ev_groups WHERE {where} GROUP BY ALL",
    )
    assert per_event and per_group == per_event


def test_groups_are_fewer_than_the_events(store: Store) -> None:
    events = store.scalar("SELECT count(*) FROM events")
    groups = store.scalar("SELECT count(*) FROM ev_groups")
    assert store.scalar("SELECT sum(calls) FROM ev_groups") == events
    assert 0 < groups < events


def test_usage_counts_each_call_once_with_every_scope_it_used(store: Store) -> None:
    expected = _rows(
        store,
        """
        SELECT credential, count(*), min(ts), max(ts),
               list(DISTINCT actor ORDER BY actor) FILTER (WHERE actor IS NOT NULL),
               nullif(list_sort(list_distinct(flatten(
                   list(scopes_used) FILTER (WHERE scopes_used IS NOT NULL)))), [])
        FROM ev WHERE credential IS NOT NULL GROUP BY credential
        """,
    )
    assert expected and _rows(store, "SELECT * FROM usage") == expected


def test_attribution_counts_agent_actions(store: Store) -> None:
    row = store.con.execute(
        """
        SELECT count(*), count(human), count(actor), count(credential),
               count(*) FILTER (WHERE traced),
               count(*) FILTER (WHERE human IS NOT NULL AND actor IS NOT NULL
                                AND credential IS NOT NULL AND traced)
        FROM ev WHERE actor_kind = 'agent'
        """
    ).fetchone()
    assert row is not None and row[0] > 0
    keys = ("agent_actions", "human", "agent", "credential", "trace", "all")
    expected = {**dict(zip(keys, row, strict=True)), "min_attribution": 0.9}
    assert attribution(store, 0.9) == expected


def test_the_readme_lists_the_columns_of_ev_groups(store: Store) -> None:
    """A rule author learns the columns from the README: it must say what is there."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    ev_bullet = readme.split("- `ev`:", 1)[1].split("\n- `", 1)[0]
    groups_bullet = readme.split("- `ev_groups`:", 1)[1].split("\n- `", 1)[0]
    own = groups_bullet.split("Its columns:", 1)[1].split("and the same derived columns", 1)[0]
    named_here = set(re.findall(r"`(\w+)`", own))
    named_for_ev = set(re.findall(r"`(\w+)`", ev_bullet))
    columns = {row[0] for row in store.con.execute("DESCRIBE ev_groups").fetchall()}
    assert named_here <= columns  # nothing documented that is not there
    assert columns - named_here <= named_for_ev  # the rest are ev's derived columns


NAMES_OF_EVERY_KIND = [
    "elastic-agent",
    "system:serviceaccount:ci:jenkins-agent",
    "agent-planner-1",
    "Support-Bot",
    "ci-bot",
    "dependabot[bot]",
    "agent-ci-bot",
    "system:serviceaccount:ci:build-bot",
    "etl@proj-1.iam.gserviceaccount.com",
    "service-agent-manager@system.gserviceaccount.com",
    "alice@example.com",
    "svc-agent-gateway",
    "system:serviceaccount:ai:research-agent",
    "00u1abc",
]


def kinds_by_name(config: Config, names: list[str]) -> dict[str, str]:
    """`m2m_kind` of each name: how the rules' views judge a principal."""
    from m2maudit.views import macro_sql

    store = Store.open()
    for sql in macro_sql(config):
        store.con.execute(sql)
    kinds = {name: store.con.execute("SELECT m2m_kind(?)", [name]).fetchone() for name in names}
    store.close()
    return {name: row[0] for name, row in kinds.items() if row is not None}


def test_a_name_is_one_kind_as_principal_and_as_token_subject() -> None:
    """`actor_kind` of a call and `subject_kind` of a token judge a name the same way."""
    from m2maudit.fingerprint import fingerprint
    from m2maudit.token_claims import decode_token
    from tests.jwt_factory import decode_in_sql

    config = Config()
    as_principal = kinds_by_name(config, NAMES_OF_EVERY_KIND)
    tokens = {name: signed({"sub": name}) for name in NAMES_OF_EVERY_KIND}
    decoded = decode_in_sql(list(tokens.values()), config)
    as_subject = {name: decoded[fingerprint(t)]["subject_kind"] for name, t in tokens.items()}
    inspected = {name: decode_token(t).row.subject_kind for name, t in tokens.items()}
    assert as_principal == as_subject == inspected
    assert as_principal == {
        "elastic-agent": "service",
        "system:serviceaccount:ci:jenkins-agent": "service",
        "agent-planner-1": "agent",
        "Support-Bot": "agent",
        "ci-bot": "service",  # a CI runner's bot, not an AI agent
        "dependabot[bot]": "service",
        "agent-ci-bot": "agent",  # an AI agent whose name ends like a CI bot's
        "system:serviceaccount:ci:build-bot": "service",
        "etl@proj-1.iam.gserviceaccount.com": "service",
        "service-agent-manager@system.gserviceaccount.com": "service",
        "alice@example.com": "human",
        "svc-agent-gateway": "agent",  # the agent in a name wins over a service's shape
        "system:serviceaccount:ai:research-agent": "agent",
        "00u1abc": "unknown",
    }


def test_infrastructure_patterns_come_from_the_config() -> None:
    from m2maudit.config import parse_config

    config = parse_config({"infrastructure_patterns": ["support-agent"]})
    # The list replaces the built-in one.
    assert kinds_by_name(config, ["support-agent", "elastic-agent"]) == {
        "support-agent": "service",
        "elastic-agent": "agent",
    }


def test_platform_daemons_named_agent_are_services() -> None:
    names = [
        "system:serviceaccount:kube-system:konnectivity-agent",
        "ip-masq-agent",
        "omsagent",
        "dynatrace-oneagent",
        "arn:aws:sts::123456789012:assumed-role/CloudWatchAgentServerRole/i-0abc",
    ]
    assert kinds_by_name(Config(), names) == dict.fromkeys(names, "service")


def _okta_call(login: str, actor_id: str, published: str) -> dict[str, Any]:
    return {
        "published": published,
        "eventType": "system.org.rate_limit.warning",
        "actor": {"id": actor_id, "type": "User", "alternateId": login},
        "transaction": {"id": "txn-1", "detail": {"requestApiTokenId": "00T-shared"}},
        "outcome": {"result": "SUCCESS"},
    }


def test_a_renamed_login_is_one_actor_named_as_it_is_now(tmp_path: Any) -> None:
    """Okta's `actor.alternateId` (a login) changes when a user is renamed; `actor.id` does
    not. Calls before and after, in two files, are one actor under the latest login, in `ev`
    and `ev_groups` alike; another user on the same token stays another actor."""
    days = [
        [_okta_call("alice@old.example", "00u1", "2026-11-20T10:00:00Z")],
        [
            _okta_call("alice@new.example", "00u1", "2026-11-21T10:00:00Z"),
            _okta_call("bob@example", "00u2", "2026-11-21T11:00:00Z"),
        ],
    ]
    paths = []
    for day, records in enumerate(days):
        path = tmp_path / f"okta-{day}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        paths.append(str(path))
    store = Store.open()
    try:
        ingest_paths(store, paths, [], Config())
        create_views(store.con, Config())
        per_event = store.con.execute("SELECT actor, count(*) FROM ev GROUP BY 1 ORDER BY 1")
        assert per_event.fetchall() == [("alice@new.example", 2), ("bob@example", 1)]
        grouped = store.con.execute(
            "SELECT actor, sum(calls)::INT FROM ev_groups GROUP BY 1 ORDER BY 1"
        )
        assert grouped.fetchall() == [("alice@new.example", 2), ("bob@example", 1)]
        assert store.con.execute("SELECT actors FROM usage").fetchall() == [
            (["alice@new.example", "bob@example"],)
        ]
    finally:
        store.close()


def test_the_person_a_renamed_login_acted_for_is_named_as_it_is_now() -> None:
    """From a review: GitHub logs an OAuth token's user as both the actor and the person
    acted for; `actor` took the latest login, `human` kept the one logged."""
    store = Store.open()
    try:
        for hour, login in ((10, "octo-old"), (11, "octo")):
            store.con.execute(
                "INSERT INTO events (ts, source_format, principal, principal_id, on_behalf_of, "
                "credential_id, source_file, source_line, record_key) VALUES "
                "(?, 'github-audit', ?, '42', ?, 'tok-1', 'a.jsonl', ?, ?)",
                [f"2026-11-20T{hour}:00:00Z", login, login, hour, hour],
            )
        create_views(store.con, Config())
        rows = store.con.execute("SELECT DISTINCT actor, human FROM ev").fetchall()
        assert rows == [("octo", "octo")]
    finally:
        store.close()
