"""Where a scan's time goes: the phases of `m2maudit scan`, its SQL statements and each rule.

Why: the end-to-end number in `run.py` says how far the scan is from the floor, not what to
fix. This script runs the same steps as the CLI's `scan` command (open the store, ingest,
`run_scan`, policy, save findings, render JSON) by calling the library, with

- a timer around each step and around the functions they call (wrapped by name at run time;
  nothing in `m2maudit/` is edited), printed as a tree of cumulative seconds;
- every SQL statement on the store's connection timed and attributed to the function that
  ran it (a thin proxy around the DuckDB connection);
- each rule's time (its query plus turning its rows into findings).

    python benchmarks/profile_phases.py --events 1000000
    python benchmarks/profile_phases.py --log my.jsonl --inventory inv.csv \
        --as-of 2026-11-21T01:00:00Z
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(HERE))

from generate import AS_OF, DATA_DIR, generate  # noqa: E402


@dataclass
class Profile:
    """Cumulative seconds per call path, per SQL statement, per rule."""

    phases: dict[tuple[str, ...], float] = field(default_factory=lambda: defaultdict(float))
    # CPU seconds of every thread of the process (DuckDB's and the line counter's too): wall
    # time on two cores says how long a step took, CPU time how much work it was.
    cpu: dict[tuple[str, ...], float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[tuple[str, ...], int] = field(default_factory=lambda: defaultdict(int))
    stack: list[str] = field(default_factory=list)
    statements: list[tuple[str, str, float]] = field(default_factory=list)
    rules: list[tuple[str, float, float, int]] = field(default_factory=list)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.stack.append(name)
        path = tuple(self.stack)
        self.phases[path] += 0.0  # listed in the order phases start, parents first
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[path] += time.perf_counter() - started
            self.cpu[path] += time.process_time() - cpu_started
            self.calls[path] += 1
            self.stack.pop()

    def wrap(self, owner: Any, attr: str, label: str | None = None) -> None:
        """Replace `owner.attr` by a timed twin (the name callers look up at call time)."""
        original = getattr(owner, attr)
        name = label or attr

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)


def _first_words(sql: str, width: int = 70) -> str:
    return " ".join(sql.split())[:width]


class TimedConnection:
    """Delegates to a DuckDB connection, timing each `execute` by its calling function."""

    def __init__(self, con: Any, profile: Profile) -> None:
        self._con = con
        self._profile = profile

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        frame = sys._getframe(1)
        caller = f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name}"
        started = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            self._profile.statements.append(
                (caller, _first_words(sql), time.perf_counter() - started)
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def instrument(profile: Profile) -> None:
    """Wrap the functions a scan goes through, by the names their callers use."""
    from m2maudit import commit, engine, ingest, scan
    from m2maudit.sources import generic_inventory, generic_log

    for fn in (
        "sniff",
        "choose_adapter",
        "commit_file",
        "_record_file",
        "_drop_staging",
        "ingest_file",
    ):
        profile.wrap(ingest, fn)
    profile.wrap(commit, "decode_staged_tokens")
    # The generic log stages the careful way as a `StagedLoad` (its `stage_file`).
    profile.wrap(generic_log.GenericLogAdapter, "stage_file", "stage (generic_log)")
    profile.wrap(generic_inventory, "stage", "stage (generic_inventory)")
    for module, label in ((generic_log, "generic_log"), (generic_inventory, "generic_inventory")):
        profile.wrap(module, "map_records", f"map_records ({label})")
    profile.wrap(generic_log, "stage_json_columns", "read_json (generic_log, fast)")
    profile.wrap(generic_log, "_stage_tokens", "distinct tokens (generic_log, fast)")
    for fn in (
        "load_rules",
        "check_rules_against_schema",
        "create_views",
        "attribution",
        "lock_down",
        "run_rules",
    ):
        profile.wrap(scan, fn)

    original = engine.run_rule

    def timed_rule(con: Any, rule: Any, *args: Any, **kwargs: Any) -> Any:
        before = len(profile.statements)
        started = time.perf_counter()
        with profile.phase(f"rule {rule.id}"):
            findings = original(con, rule, *args, **kwargs)
        total = time.perf_counter() - started
        sql = sum(s[2] for s in profile.statements[before:])
        profile.rules.append((rule.id, total, sql, len(findings)))
        return findings

    engine.run_rule = timed_rule


def profile_scan(
    log: Path, inventory: Path, as_of: str, memory_limit: str, threads: int | None
) -> tuple[Profile, int]:
    """The CLI's `scan` steps, timed; returns the profile and the number of findings."""
    profile = Profile()
    with profile.phase("import m2maudit"):
        from m2maudit import policy
        from m2maudit.config import load_config
        from m2maudit.ingest import ingest_paths
        from m2maudit.reporters import ReportOptions, get_reporter
        from m2maudit.scan import input_summaries, run_scan
        from m2maudit.store import Store, StoreOptions
        from m2maudit.timeutil import parse_instant
    instrument(profile)
    import gc

    from m2maudit.cli import GC_THRESHOLDS

    gc.set_threshold(*GC_THRESHOLDS)  # as the CLI does
    with profile.phase("scan (total)"):
        config = load_config(None)
        with profile.phase("Store.open"):
            store = Store.open(None, StoreOptions(threads=threads, memory_limit=memory_limit))
        store.con = TimedConnection(store.con, profile)  # type: ignore[assignment]
        with profile.phase("ingest_paths"):
            report = ingest_paths(store, [str(log)], [str(inventory)], config, one_shot=True)
        with profile.phase("run_scan"):
            result = run_scan(
                store, config, parse_instant(as_of), [], inputs=input_summaries(report)
            )
        with profile.phase("apply_policy"):
            policy.apply_policy(result)
        # No save_findings: the CLI keeps findings only in a --db store, and this one is
        # in memory.
        with profile.phase("close store"):
            store.close()
        with profile.phase("render json"):
            text = get_reporter("json").render(result, ReportOptions.for_stream(None))
        with profile.phase("write report"):
            Path("/dev/null").write_text(text, encoding="utf-8")
    return profile, len(result.findings)


def cli_startup_seconds() -> float:
    """`python -m m2maudit --version`: interpreter plus CLI imports, paid by every scan."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "m2maudit", "--version"], cwd=REPO, check=True, capture_output=True
    )
    return time.perf_counter() - started


def print_profile(profile: Profile, findings: int, top: int) -> None:
    total = profile.phases.get(("scan (total)",), 0.0)
    print(
        f"\nphases (cumulative wall seconds, then CPU seconds of all threads; indented = "
        f"inside the line above; total {total:.2f} s)"
    )
    for path, seconds in profile.phases.items():
        if len(path) > 4 or (seconds < 0.01 and not path[-1].startswith("run_")):
            continue
        if path[-1].startswith("rule "):
            continue  # rules get their own table below
        calls = profile.calls[path]
        share = f"{100 * seconds / total:5.1f} %" if total and path[0] == "scan (total)" else ""
        times = f" x{calls}" if calls > 1 else ""
        print(
            f"  {'  ' * (len(path) - 1)}{path[-1]:<{44 - 2 * len(path)}} {seconds:8.2f} s "
            f"{profile.cpu[path]:7.2f} cpu {share}{times}"
        )
    by_caller: dict[str, float] = defaultdict(float)
    for caller, _sql, seconds in profile.statements:
        by_caller[caller] += seconds
    print(f"\nSQL time by calling function (top {top})")
    for caller, seconds in sorted(by_caller.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {caller:<48} {seconds:8.2f} s")
    print(f"\nslowest SQL statements (top {top})")
    for caller, text, seconds in sorted(profile.statements, key=lambda s: -s[2])[:top]:
        print(f"  {seconds:7.2f} s  {caller.rsplit('.', 1)[-1]:<28} {text}")
    rules_total = sum(r[1] for r in profile.rules)
    print(
        f"\nrules: {len(profile.rules)} run in {rules_total:.2f} s, {findings} findings; "
        f"slowest {top} (total = SQL + rows to findings)"
    )
    for rule_id, seconds, in_sql, count in sorted(profile.rules, key=lambda r: -r[1])[:top]:
        print(f"  {rule_id:<8} {seconds:7.2f} s  (SQL {in_sql:6.2f} s)  {count:>6} findings")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time the phases of one m2maudit scan.")
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="generate (if missing) and profile this data set",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, help="profile this log instead")
    parser.add_argument("--inventory", type=Path, help="with --log: its inventory")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the profile here")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    if args.log:
        if not args.inventory:
            parser.error("--log needs --inventory")
        log, inventory = args.log, args.inventory
    else:
        data = generate(
            args.events, args.seed, args.data_dir, log=lambda m: print(m, file=sys.stderr)
        )
        log, inventory = data.events, data.inventory
    startup = cli_startup_seconds()
    profile, findings = profile_scan(log, inventory, args.as_of, args.memory_limit, args.threads)
    print(
        f"profile of {log.name} ({log.stat().st_size / 2**20:.0f} MB), "
        f"memory_limit {args.memory_limit}"
    )
    print(f"CLI start-up (python -m m2maudit --version): {startup:.2f} s")
    print_profile(profile, findings, args.top)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS of this process: {peak:.0f} MB")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "log": str(log),
                    "startup_s": startup,
                    "peak_mb": peak,
                    "findings": findings,
                    "phases": [
                        {
                            "path": list(p),
                            "seconds": s,
                            "cpu_seconds": profile.cpu[p],
                            "calls": profile.calls[p],
                        }
                        for p, s in profile.phases.items()
                    ],
                    "statements": [
                        {"caller": c, "sql": q, "seconds": s} for c, q, s in profile.statements
                    ],
                    "rules": [
                        {"rule": r, "seconds": s, "sql_seconds": q, "findings": n}
                        for r, s, q, n in profile.rules
                    ],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
