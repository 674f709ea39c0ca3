"""Where the generic log's mapping spends its time, layer by layer.

Why: `profile_phases.py` shows the mapping as one statement (the INSERT into `events` for
the fast read, `CREATE TEMP TABLE _mapped` for the careful one). `map_records` builds it as
nested subqueries, one per layer of names (`staging.mapping_layers`), so that each value is
computed once. This script runs a real ingest of the log and, at the moment the adapter
calls `map_records`, times the real layers: first the source with its record key, then each
layer on top of the ones before, then the whole mapping (columns, reject checks, secrets cut
out). The time a layer adds is its own cost. It then stops: nothing is committed.

Each step counts the values of every column it has (`count(COLUMNS(*))`), so that DuckDB
cannot skip a column nothing reads, and writes nothing. The last step is the real
`map_records`, which writes `_mapped`: its share includes that write. Times are CPU seconds of
all DuckDB threads, the least of a few runs: a busy shared machine disturbs them far less than
wall time.

    python benchmarks/ablate_mapping.py --events 1000000            # the fast read_json path
    python benchmarks/ablate_mapping.py --events 1000000 --careful  # lines parsed as text
    python benchmarks/ablate_mapping.py --events 5000000 --stage-only --memory-limit 4GB
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

import duckdb  # noqa: E402
from generate import DATA_DIR, generate  # noqa: E402

from m2maudit.ingest import ingest_paths  # noqa: E402
from m2maudit.sources import generic_log, staging  # noqa: E402
from m2maudit.sources.base import LoadContext  # noqa: E402
from m2maudit.store import Store, StoreOptions  # noqa: E402


class _Profiled(Exception):
    """Raised once the mapping is timed: the ingest stops and rolls back."""


@contextmanager
def adapter_mapping(replacement: Callable[..., None], careful: bool) -> Iterator[None]:
    """The generic-log adapter calls `replacement` instead of `map_records`; with `careful`,
    it also takes the careful path (lines parsed as text). Both are undone after."""
    saved = {name: getattr(generic_log, name) for name in ("map_records", "can_read_fast")}
    setattr(generic_log, "map_records", replacement)  # noqa: B010 (the name the adapter calls)
    if careful:
        setattr(generic_log, "can_read_fast", lambda _ctx: False)  # noqa: B010
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(generic_log, name, value)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def least_cpu(run: Callable[[], object], repeat: int) -> float:
    """The least CPU seconds of `repeat` calls of `run`."""
    best = float("inf")
    for _ in range(repeat):
        before = cpu_seconds()
        run()
        best = min(best, cpu_seconds() - before)
    return best


def compute(con: duckdb.DuckDBPyConnection, query: str) -> Callable[[], object]:
    """Compute every column of `query` (counting each one's values), writing nothing."""
    return lambda: con.execute(f"SELECT count(COLUMNS(*)) FROM {query}").fetchall()


def added_names(layer: dict[str, str]) -> str:
    names = ", ".join(layer)
    return names if len(names) <= 70 else names[:67] + "..."


def profile_mapping(
    ctx: LoadContext,
    columns: dict[str, str],
    checks: Sequence[tuple[str, str]],
    prelude: dict[str, str] | Sequence[dict[str, str]] | None,
    source: str | None,
    record_key: str,
    rows: int | None,
    repeat: int,
) -> None:
    """Time the source, each layer over it, and the whole mapping; print each one's share."""
    con = ctx.con
    if source is None:  # the careful path: map_records drops `_records`, so keep a copy
        con.execute("CREATE OR REPLACE TEMP TABLE _records_kept AS SELECT * FROM _records")
        source = "SELECT source_line, rec FROM _records_kept"
    if rows:
        source = f"SELECT * FROM ({source}) LIMIT {int(rows)}"
    layers = [prelude] if isinstance(prelude, dict) else list(prelude or [])
    nested = staging.mapping_layers(source, record_key, layers)
    mapped = con.execute(f"SELECT count(*) FROM ({source})").fetchone()
    print(f"mapping {mapped[0] if mapped else 0:,} records; CPU s, least of {repeat} runs\n")

    steps = [("source and record key", least_cpu(compute(con, nested[0]), repeat))]
    for index, layer in enumerate(layers, start=1):
        seconds = least_cpu(compute(con, nested[index]), repeat)
        steps.append((f"layer {index}: {added_names(layer)}", seconds))

    def whole_mapping() -> None:
        staging.map_records(
            ctx, columns, checks, layers, source=source, record_key=record_key, materialize=True
        )

    steps.append(("columns, checks, secrets cut out", least_cpu(whole_mapping, repeat)))
    full = steps[-1][1]
    before = 0.0
    for label, seconds in steps:
        own = seconds - before
        print(f"  {label:<80} +{own:6.2f}  ({100 * own / full:5.1f} %)")
        before = seconds
    print(f"  {'whole mapping':<80} {full:7.2f}")


def run(log: Path, args: argparse.Namespace) -> None:
    """Ingest `log` until the adapter maps it; profile the mapping there."""

    def profiled(
        ctx: LoadContext,
        columns: dict[str, str],
        checks: Sequence[tuple[str, str]],
        prelude: Any = None,
        source: str | None = None,
        record_key: str = "hash(rec)",
        materialize: bool = True,
    ) -> None:
        del materialize  # the whole mapping is timed as a table
        profile_mapping(ctx, columns, checks, prelude, source, record_key, args.rows, args.repeat)
        raise _Profiled

    store = Store.open(None, StoreOptions(memory_limit=args.memory_limit))
    try:
        with adapter_mapping(profiled, args.careful):
            ingest_paths(store, [str(log)], one_shot=True)
    except _Profiled:
        return
    finally:
        store.close()
    raise SystemExit(f"{log}: the generic-log adapter never mapped it")


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


def stage_only(log: Path, args: argparse.Namespace) -> None:
    """Time the whole ingest up to the mapping, with the peak of DuckDB's spill files and of
    this process's RSS."""

    def stop(*_args: Any, **_options: Any) -> None:
        raise _Profiled

    store = Store.open(None, StoreOptions(memory_limit=args.memory_limit))
    cpu, started = cpu_seconds(), time.perf_counter()
    try:
        with SpillWatch(store) as watch, adapter_mapping(stop, args.careful):
            ingest_paths(store, [str(log)], one_shot=True)
    except _Profiled:
        pass
    finally:
        store.close()
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{log.name}: staged with memory_limit {args.memory_limit} in {wall:.1f} s wall, "
        f"{cpu:.1f} CPU s; spill files peaked at {watch.peak / 2**20:.0f} MiB; "
        f"peak RSS {rss:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cost of each layer of the generic-log mapping.")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=None, help="map only the first N records")
    parser.add_argument("--repeat", type=int, default=2, help="runs per step, least counts")
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument(
        "--careful", action="store_true", help="the careful path (lines parsed as text)"
    )
    parser.add_argument(
        "--stage-only", action="store_true", help="only time staging, with its spill to disk"
    )
    args = parser.parse_args(argv)
    data = generate(args.events, 1, args.data_dir, log=lambda m: print(m, file=sys.stderr))
    path = "careful" if args.careful else "fast read_json"
    print(f"{data.events.name} ({path} path)")
    (stage_only if args.stage_only else run)(data.events, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
