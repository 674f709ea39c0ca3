"""Which expressions of the generic log's careful mapping cost the most, by ablation.

The careful path is the one for files the fast `read_json` path cannot number exactly (blank
lines, a line over the record limit): lines read as text, each parsed with `json_extract`.
Staging here gives no line index, so the adapter takes that path.

Why: `profile_phases.py` shows one statement, `CREATE TEMP TABLE _mapped AS SELECT ...`,
taking most of the ingest. It is one projection, so EXPLAIN ANALYZE cannot split it. This
script stages a log exactly as the adapter does, then times the real mapping SQL again and
again: first with every column a typed NULL, then with only the JSON parse (the prelude),
then with the parse plus one column (or the reject checks, or the record key) at a time. The
time added is that expression's own cost. Times are CPU seconds of all DuckDB threads, the
least of a few runs, which a busy shared machine disturbs far less than wall time.
It also splits `decode_staged_tokens` into picking the distinct tokens and decoding them.

    python benchmarks/ablate_mapping.py --events 1000000 --rows 100000
    python benchmarks/ablate_mapping.py --events 5000000 --stage-only --memory-limit 4GB
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

from generate import DATA_DIR, generate  # noqa: E402

from m2maudit.config import Config  # noqa: E402
from m2maudit.sources import generic_log, staging  # noqa: E402
from m2maudit.sources.base import LoadContext  # noqa: E402
from m2maudit.sources.discover import expand_inputs, sniff  # noqa: E402
from m2maudit.store import Store, StoreOptions  # noqa: E402
from m2maudit.tokens import decode_staged_tokens  # noqa: E402

Captured = dict[str, Any]


OPTIONS: dict[str, Any] = {}  # the adapter's other map_records arguments (key_columns)


def stage_and_capture(store: Store, log: Path, config: Config) -> tuple[LoadContext, Captured]:
    """Stage `log` into `_records` and capture the mapping instead of running it."""
    file = expand_inputs([str(log)])[0]
    ctx = LoadContext(store.con, file, sniff(file), config, generic_log.GenericLogAdapter.name)
    captured: Captured = {}

    def capture(
        _ctx: LoadContext,
        columns: dict[str, str],
        checks: list[tuple[str, str]],
        prelude: dict[str, str] | None = None,
        **options: Any,
    ) -> None:
        captured.update(columns=columns, checks=checks, prelude=prelude, options=options)

    real = getattr(generic_log, "map_records")  # noqa: B009 (the name the adapter calls)
    setattr(generic_log, "map_records", capture)  # noqa: B010
    try:
        generic_log.GenericLogAdapter().load(ctx)
    finally:
        setattr(generic_log, "map_records", real)  # noqa: B010
    return ctx, captured


def timed_map(
    ctx: LoadContext,
    columns: dict[str, str],
    checks: list[tuple[str, str]],
    prelude: dict[str, str] | None,
    record_key: bool = True,
    repeat: int = 3,
) -> float:
    """CPU seconds (all DuckDB threads) of the real `map_records`, the least of `repeat` runs.

    CPU time rather than wall time: on a shared machine other processes stretch wall time
    far more than they change the work done, and the least of a few runs drops outliers.
    """
    con = ctx.con
    options = dict(OPTIONS)
    if not record_key:  # a key of one cheap column instead of all the mapped ones
        options["key_columns"] = ("source_line",)
    best = float("inf")
    for _ in range(repeat):
        staging.drop_relation(con, "_records")  # a view over the lines after staging
        con.execute("CREATE TEMP TABLE _records AS SELECT * FROM _records_keep")
        before = cpu_seconds()
        staging.map_records(ctx, columns, checks, prelude, **options)
        best = min(best, cpu_seconds() - before)
    return best


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class SpillWatch:
    """Polls DuckDB's temporary files from a second cursor: how much the staging spilled."""

    def __init__(self, store: Store) -> None:
        self.cursor = store.con.cursor()
        self.peak = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self.done.wait(0.5):
            row = self.cursor.execute(
                "SELECT coalesce(sum(size), 0) FROM duckdb_temporary_files()"
            ).fetchone()
            self.peak = max(self.peak, int(row[0]) if row else 0)

    def __enter__(self) -> SpillWatch:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.done.set()
        self.thread.join()


def stage_only(store: Store, log: Path, config: Config, memory_limit: str) -> None:
    """Time staging alone, with the peak of DuckDB's spill files and of this process's RSS."""
    cpu, started = cpu_seconds(), time.perf_counter()
    with SpillWatch(store) as watch:
        stage_and_capture(store, log, config)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{log.name}: staged with memory_limit {memory_limit} in {wall:.1f} s wall, "
        f"{cpu:.1f} CPU s; spill files peaked at {watch.peak / 2**20:.0f} MiB; "
        f"peak RSS {rss:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost of each generic-log mapping expression.")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000, help="records to map per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant, least counts")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument(
        "--stage-only", action="store_true", help="only time staging, with its spill to disk"
    )
    args = parser.parse_args(argv)
    data = generate(args.events, 1, DATA_DIR, log=lambda m: print(m, file=sys.stderr))
    store = Store.open(None, StoreOptions(memory_limit=args.memory_limit))
    config = Config()
    if args.stage_only:
        stage_only(store, data.events, config, args.memory_limit)
        store.close()
        return 0
    started = time.perf_counter()
    ctx, cap = stage_and_capture(store, data.events, config)
    staged = time.perf_counter() - started
    total = store.scalar("SELECT count(*) FROM _records")
    store.con.execute(
        f"CREATE TEMP TABLE _records_keep AS SELECT * FROM _records LIMIT {int(args.rows)}"
    )
    columns, checks, prelude = cap["columns"], cap["checks"], cap["prelude"]
    OPTIONS.update(cap["options"])
    print(
        f"{data.events.name}: staged {total} records in {staged:.2f} s; "
        f"mapping {args.rows} of them per run"
    )

    full = timed_map(ctx, columns, checks, prelude, repeat=args.repeat)
    types = dict(
        store.con.execute("SELECT column_name, column_type FROM (DESCRIBE _mapped)").fetchall()
    )
    nulls = {name: f"NULL::{types[name]}" for name in columns}
    n = args.repeat
    empty = timed_map(ctx, nulls, [], prelude, record_key=False, repeat=n)
    parse = timed_map(
        ctx, nulls | {"principal": "v[2] ->> '$'"}, [], prelude, record_key=False, repeat=n
    )
    print(
        f"full mapping: {full:.2f} CPU s for {args.rows} rows "
        f"(~{full * total / args.rows:.1f} CPU s for the whole file)"
    )
    print(f"  every column NULL, no checks, no record key:   {empty:6.2f} CPU s")
    print(f"  + the json_extract of {len(columns)} paths (prelude): {parse:6.2f} CPU s")
    print("  the rest, one part at a time on top of the prelude (noise ~0.05 s):")

    results: list[tuple[str, float]] = []
    for name in columns:
        alone = nulls | {name: columns[name]}
        if name != "principal":
            alone["principal"] = "v[2] ->> '$'"  # keeps the prelude in the plan
        results.append((f"column {name}", timed_map(ctx, alone, [], prelude, False, n) - parse))
    keyed = nulls | {"principal": "v[2] ->> '$'"}
    results.append(("record_key hash", timed_map(ctx, keyed, [], prelude, True, n) - parse))
    results.append(("reject checks", timed_map(ctx, keyed, checks, prelude, False, n) - parse))
    for label, seconds in sorted(results, key=lambda r: -r[1]):
        print(f"    {label:<34} +{seconds:6.2f} CPU s ({100 * seconds / full:5.1f} % of full)")
    parts = parse + sum(r[1] for r in results)
    print(
        f"  sum of parts {parts:.2f} CPU s vs full {full:.2f} (the difference is sharing "
        f"or interaction)"
    )

    timed_map(ctx, columns, checks, prelude, repeat=1)  # leave a full _mapped for the token split
    fp = "coalesce(token_fp, left(sha256(raw_token), 16))"
    t0 = time.perf_counter()
    distinct = store.scalar(
        f"SELECT count(*) FROM (SELECT {fp} AS fp, any_value(raw_token) FROM _mapped "
        "WHERE raw_token IS NOT NULL AND raw_token <> '' AND reject_reason IS NULL GROUP BY fp)"
    )
    t1 = time.perf_counter()
    decode_staged_tokens(store.con, config)
    t2 = time.perf_counter()
    print(
        f"\ndecode_staged_tokens on {args.rows} records: {t2 - t1:.2f} s, of which picking "
        f"{distinct} distinct tokens ~{t1 - t0:.2f} s"
    )
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
