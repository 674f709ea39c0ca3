"""How fast are bearer tokens decoded? N events carrying D distinct JWTs (not a test).

    /work/venv/bin/python benchmarks/bench_tokens.py --events 1000000 --distinct 35000

Everything lives in an in-memory DuckDB; nothing is written to disk. Timed:

- decode step: `decode_staged_tokens` over a staging table whose `token_fp` the adapter has
  already computed (what ingest adds per file);
- full path: fingerprint every raw `Authorization` value, then the decode step (what a scan
  pays for tokens, adapter share included);
- pyjwt, batch: the D distinct tokens decoded once with pyjwt and joined back (the reference);
- pyjwt, per row: a sample decoded row by row, scaled to N (what must not be done).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import jwt
import pandas as pd

from m2maudit.config import Config
from m2maudit.fingerprint import fingerprint_sql
from m2maudit.store import Store, StoreOptions
from m2maudit.tokens import decode_staged_tokens

KEY = "benchmark-hmac-key-" + "0" * 48
PER_ROW_SAMPLE = 20_000


def make_tokens(count: int, seed: int = 7) -> list[str]:
    """Realistic agent tokens (~700 bytes): a two-level act chain, scopes, may_act."""
    rng = random.Random(seed)
    tokens = []
    for index in range(count):
        human = f"user{rng.randrange(5000)}@example.com"
        claims = {
            "iss": "https://idp.example.com/oauth2/default",
            "sub": human,
            "aud": ["https://api.example.com", "https://files.example.com"],
            "client_id": f"agent-app-{rng.randrange(300)}",
            "scope": " ".join(
                rng.sample(
                    ["read", "write", "mail.send", "files:*", "admin", "calendar.read", "search"], 3
                )
            ),
            "iat": 1_700_000_000 + index,
            "exp": 1_700_003_600 + index,
            "jti": f"jti-{index:08d}",
            "act": {
                "sub": f"tool-{rng.randrange(50)}",
                "act": {"sub": f"agent-{rng.randrange(200)}"},
            },
            "may_act": {"sub": f"tool-{rng.randrange(50)}"},
        }
        tokens.append(jwt.encode(claims, KEY, algorithm="HS256", headers={"kid": "k1"}))
    return tokens


@contextmanager
def timed(label: str, events: int, results: dict[str, float]) -> Iterator[None]:
    start = time.perf_counter()
    yield
    elapsed = time.perf_counter() - start
    results[label] = elapsed
    print(f"{label:<34} {elapsed:8.2f} s   {events / elapsed:>12,.0f} events/s")


def stage(store: Store, tokens: list[str], events: int) -> None:
    """`_auth(authorization)`: N calls, each carrying one of the tokens, `Bearer ` prefixed."""
    store.con.register("token_list", pd.DataFrame({"n": range(len(tokens)), "t": tokens}))
    store.con.execute("CREATE TABLE _dict AS SELECT * FROM token_list")
    store.con.execute(
        f"""CREATE TEMP TABLE _auth AS
        SELECT 'Bearer ' || t AS auth
        FROM range({events}) r(i) JOIN _dict d ON d.n = hash(r.i) % {len(tokens)}"""
    )


def run(events: int, distinct: int, threads: int | None) -> None:
    print(f"{events:,} events, {distinct:,} distinct tokens, threads={threads or 'all'}")
    tokens = make_tokens(distinct)
    print(f"mean token length {sum(map(len, tokens)) / len(tokens):.0f} bytes")
    results: dict[str, float] = {}
    store = Store.open(options=StoreOptions(threads=threads))
    stage(store, tokens, events)
    bare = "regexp_replace(auth, '^Bearer ', '')"
    store.con.execute(
        f"CREATE TEMP TABLE _mapped AS SELECT {fingerprint_sql('auth')} AS token_fp, "
        f"{bare} AS raw_token, NULL::VARCHAR AS reject_reason FROM _auth"
    )
    with timed("decode step (token_fp staged)", events, results):
        added = decode_staged_tokens(store.con, Config())
    assert added == store.scalar("SELECT count(DISTINCT token_fp) FROM _mapped")
    store.con.execute("DELETE FROM tokens")
    store.con.execute("DROP TABLE _mapped")
    with timed("full path (fingerprint + decode)", events, results):
        store.con.execute(
            f"CREATE TEMP TABLE _mapped AS SELECT {fingerprint_sql('auth')} AS token_fp, "
            f"{bare} AS raw_token, NULL::VARCHAR AS reject_reason FROM _auth"
        )
        decode_staged_tokens(store.con, Config())
    print(f"  tokens rows: {store.scalar('SELECT count(*) FROM tokens'):,}")
    with timed("pyjwt batch (distinct, join back)", events, results):
        distinct_rows = store.con.execute(
            "SELECT token_fp, any_value(raw_token) FROM _mapped GROUP BY 1"
        ).fetchall()
        subs = [
            (fp, jwt.decode(raw, options={"verify_signature": False}).get("sub"))
            for fp, raw in distinct_rows
        ]
        store.con.register("py_subs", pd.DataFrame(subs, columns=["token_fp", "sub"]))
        store.con.execute(
            "SELECT count(s.sub) FROM _mapped m LEFT JOIN py_subs s USING (token_fp)"
        ).fetchone()
    per_row(store, events, results)
    store.close()


def per_row(store: Store, events: int, results: dict[str, float]) -> None:
    sample = [
        r
        for (r,) in store.con.execute(
            f"SELECT raw_token FROM _mapped LIMIT {min(PER_ROW_SAMPLE, events)}"
        ).fetchall()
    ]
    decode: Callable[[str], object] = lambda t: jwt.decode(t, options={"verify_signature": False})  # noqa: E731
    start = time.perf_counter()
    for token in sample:
        decode(token)
    rate = len(sample) / (time.perf_counter() - start)
    print(f"{'pyjwt per row (extrapolated)':<34} {events / rate:8.2f} s   {rate:>12,.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=35_000)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    run(args.events, args.distinct, args.threads)


if __name__ == "__main__":
    main()
