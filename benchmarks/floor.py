"""The floor of issue 7: what DuckDB alone needs to load a log and decode its distinct JWTs.

Why: `m2maudit scan` cannot be faster than reading its input and decoding its tokens, so its
time is judged as a ratio to this. The floor does only that, with nothing m2maudit adds (no
line numbers, no reject checks, no rules): a fresh connection, `CREATE TABLE AS SELECT * FROM
read_json(...)`, then the distinct `authorization` values split, base64url-decoded and a few
claims extracted, with the same 16-hex SHA-256 fingerprint m2maudit keys tokens by.

Run by `run.py` in a child process (so its peak memory is measured alone); by hand:

    python benchmarks/floor.py benchmarks/data/events-1000000.jsonl --memory-limit 4GB
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import duckdb

DECODE_SQL = """
CREATE TABLE tokens AS
WITH distinct_auth AS (
    SELECT DISTINCT "authorization" AS auth FROM events WHERE "authorization" IS NOT NULL
),
parts AS (
    SELECT regexp_replace(auth, '^[Bb]earer +', '') AS bare,
           string_split(bare, '.') AS seg
    FROM distinct_auth
),
decoded AS (
    SELECT left(sha256(bare), 16) AS token_fp,
           try(decode(from_base64(translate(rtrim(seg[1], '='), '-_', '+/')
               || repeat('=', (4 - strlen(rtrim(seg[1], '=')) % 4) % 4)))) AS header,
           try(decode(from_base64(translate(rtrim(seg[2], '='), '-_', '+/')
               || repeat('=', (4 - strlen(rtrim(seg[2], '=')) % 4) % 4)))) AS payload
    FROM parts
)
SELECT token_fp,
       CASE WHEN json_valid(header) THEN header ->> '$.alg' END AS alg,
       CASE WHEN json_valid(payload)
            THEN json_extract_string(payload, ['$.iss', '$.sub', '$.client_id', '$.scope',
                                               '$.jti', '$.aud'])
       END AS claims,
       CASE WHEN json_valid(payload) THEN try_cast(payload ->> '$.iat' AS BIGINT) END AS iat,
       CASE WHEN json_valid(payload) THEN try_cast(payload ->> '$.exp' AS BIGINT) END AS exp,
       CASE WHEN json_valid(payload) THEN payload -> '$.act' END AS act
FROM decoded
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def run_floor(path: str, memory_limit: str | None, threads: int | None) -> dict[str, Any]:
    """Load `path` and decode its tokens; the seconds of each step and the row counts."""
    started = time.perf_counter()
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = {_literal(memory_limit)}")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(
        "CREATE TABLE events AS SELECT * FROM read_json("
        f"{_literal(path)}, format = 'newline_delimited', ignore_errors = true)"
    )
    loaded = time.perf_counter()
    con.execute(DECODE_SQL)
    decoded = time.perf_counter()
    rows = con.execute("SELECT count(*) FROM events").fetchone()
    tokens = con.execute("SELECT count(*), count(claims) FROM tokens").fetchone()
    con.close()
    return {
        "read_s": round(loaded - started, 3),
        "decode_s": round(decoded - loaded, 3),
        "total_s": round(decoded - started, 3),
        "events": int(rows[0]) if rows else 0,
        "tokens": int(tokens[0]) if tokens else 0,
        "tokens_decoded": int(tokens[1]) if tokens else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DuckDB-only floor: load a log, decode its JWTs")
    parser.add_argument("path")
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    print(json.dumps(run_floor(args.path, args.memory_limit, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
