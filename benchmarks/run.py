"""The benchmark of issue 7: `m2maudit scan` end to end against the DuckDB-only floor.

For each event count N it generates the data set if missing (`generate.py`), then measures,
each in a fresh child process so wall time and peak RSS belong to that run alone:

  (a) the floor (`floor.py`): DuckDB reads the log into a table and decodes its distinct JWTs;
  (b) `python -m m2maudit scan LOG --inventory INV --as-of ... -f json -o OUT --fail-on never
      --memory-limit 4GB` from this checkout (PYTHONPATH = the repo root).

and prints N, both wall times, their ratio, events/s of the scan, peak RSS and CPU seconds
(user + system, all threads: less disturbed than wall time on a shared machine). It is not
part of the test suite: it takes minutes and several GB of disk at 5 M events.

    python benchmarks/run.py --events 1000000
    python benchmarks/run.py --events 100000,1000000,5000000 --repeat 2 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate import AS_OF, DATA_DIR, generate  # noqa: E402

# Runs one command and reports its wall time and peak RSS. It is a process of its own, so
# RUSAGE_CHILDREN holds exactly the one command it waited for (ru_maxrss is in KB on Linux).
_MEASURE = """
import json, resource, subprocess, sys, time
spec = json.loads(sys.argv[1])
with open(spec["stdout"], "wb") as out, open(spec["stderr"], "wb") as err:
    started = time.perf_counter()
    rc = subprocess.run(
        spec["cmd"], stdout=out, stderr=err, env=spec["env"], cwd=spec["cwd"]
    ).returncode
    wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc, "wall_s": wall, "peak_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


@dataclass
class Measure:
    wall_s: float
    peak_mb: float
    rc: int
    cpu_s: float = 0.0
    stdout: str = ""
    stderr_tail: str = ""


@dataclass
class Row:
    events: int
    file_mb: float
    floor: Measure
    scan: Measure
    floor_detail: dict[str, Any] = field(default_factory=dict)
    findings: int | None = None

    @property
    def ratio(self) -> float:
        return self.scan.wall_s / self.floor.wall_s if self.floor.wall_s else float("nan")

    @property
    def events_per_s(self) -> float:
        return self.events / self.scan.wall_s if self.scan.wall_s else float("nan")


def measure(cmd: list[str], workdir: Path, env: dict[str, str] | None = None) -> Measure:
    """Run `cmd` under the measuring child; its stdout is kept, stderr's tail on failure."""
    workdir.mkdir(parents=True, exist_ok=True)
    out, err = workdir / "stdout.txt", workdir / "stderr.txt"
    spec = {
        "cmd": cmd,
        "stdout": str(out),
        "stderr": str(err),
        "env": env or dict(os.environ),
        "cwd": str(workdir),
    }
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    stderr = err.read_text(encoding="utf-8", errors="replace")
    return Measure(
        wall_s=result["wall_s"],
        peak_mb=result["peak_mb"],
        rc=result["rc"],
        cpu_s=result["cpu_s"],
        stdout=out.read_text(encoding="utf-8", errors="replace"),
        stderr_tail="" if result["rc"] == 0 else "\n".join(stderr.strip().splitlines()[-5:]),
    )


def scan_env() -> dict[str, str]:
    """The m2maudit of this checkout, whatever is installed in the interpreter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("NO_COLOR", "1")
    return env


def run_floor(log: Path, memory_limit: str, threads: int | None, workdir: Path) -> Measure:
    cmd = [sys.executable, str(HERE / "floor.py"), str(log), "--memory-limit", memory_limit]
    if threads:
        cmd += ["--threads", str(threads)]
    return measure(cmd, workdir)


def run_scan(
    log: Path, inventory: Path, memory_limit: str, threads: int | None, workdir: Path
) -> Measure:
    """`m2maudit scan` as a user runs it; DuckDB spills to `workdir/.tmp` beyond the limit."""
    report = workdir / "report.json"
    cmd = [
        sys.executable,
        "-m",
        "m2maudit",
        "scan",
        str(log),
        "--inventory",
        str(inventory),
        "--as-of",
        AS_OF,
        "-f",
        "json",
        "-o",
        str(report),
        "--fail-on",
        "never",
        "--memory-limit",
        memory_limit,
    ]
    if threads:
        cmd += ["--threads", str(threads)]
    return measure(cmd, workdir, scan_env())


def count_findings(report: Path) -> int | None:
    try:
        return len(json.loads(report.read_text(encoding="utf-8"))["findings"])
    except (OSError, ValueError, KeyError):
        return None


def best(runs: list[Measure]) -> Measure:
    """The fastest successful run: on a shared machine the minimum is the least disturbed."""
    ok = [m for m in runs if m.rc == 0] or runs
    return min(ok, key=lambda m: m.wall_s)


def bench_one(events: int, args: argparse.Namespace) -> Row:
    data = generate(events, args.seed, args.data_dir, log=lambda m: print(m, file=sys.stderr))
    work = args.data_dir / "work" / str(events)
    floors, scans = [], []
    for attempt in range(args.repeat):
        print(f"[{events}] run {attempt + 1}/{args.repeat}: floor ...", file=sys.stderr)
        floors.append(run_floor(data.events, args.memory_limit, args.threads, work / "floor"))
        print(f"[{events}] run {attempt + 1}/{args.repeat}: scan ...", file=sys.stderr)
        scans.append(
            run_scan(data.events, data.inventory, args.memory_limit, args.threads, work / "scan")
        )
    floor, scan = best(floors), best(scans)
    detail: dict[str, Any] = {}
    if floor.rc == 0 and floor.stdout.strip():
        detail = json.loads(floor.stdout.strip().splitlines()[-1])
    return Row(
        events=events,
        file_mb=data.events.stat().st_size / 2**20,
        floor=floor,
        scan=scan,
        floor_detail=detail,
        findings=count_findings(work / "scan" / "report.json"),
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on: they mean little without it."""
    import duckdb

    mem_kb = 0
    cpu = platform.processor()
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'events':>9} {'file MiB':>8} {'floor s':>8} {'scan s':>8} {'ratio':>6} "
        f"{'events/s':>10} {'floor MiB':>9} {'scan MiB':>8} {'floor cpu':>9} "
        f"{'scan cpu':>9} {'findings':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.events:>9} {r.file_mb:>8.0f} {r.floor.wall_s:>8.2f} {r.scan.wall_s:>8.2f} "
            f"{r.ratio:>6.2f} {r.events_per_s:>10,.0f} {r.floor.peak_mb:>9.0f} "
            f"{r.scan.peak_mb:>8.0f} {r.floor.cpu_s:>9.1f} {r.scan.cpu_s:>9.1f} "
            f"{r.findings if r.findings is not None else '-':>8}"
        )
    for r in rows:
        if r.floor_detail:
            d = r.floor_detail
            print(
                f"  floor {r.events}: read {d['read_s']} s + decode {d['decode_s']} s of "
                f"{d['tokens']} distinct tokens (in-process, without interpreter start-up)"
            )
        for name, m in (("floor", r.floor), ("scan", r.scan)):
            if m.rc != 0:
                print(f"  {name} {r.events} FAILED (exit {m.rc}): {m.stderr_tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark m2maudit scan against the floor.")
    parser.add_argument(
        "--events", default="1000000", help="comma-separated event counts (default 1000000)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB memory_limit for both")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs each; the fastest counts")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--json", type=Path, default=None, help="also write results here")
    args = parser.parse_args(argv)
    info = machine()
    print(f"machine: {json.dumps(info)}", file=sys.stderr)
    rows = []
    for n in (int(x.replace("_", "")) for x in args.events.split(",")):
        started = time.perf_counter()
        rows.append(bench_one(n, args))
        print(f"[{n}] done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print_table(rows)
    if args.json:
        payload = {
            "machine": info,
            "memory_limit": args.memory_limit,
            "repeat": args.repeat,
            "rows": [asdict(r) | {"ratio": r.ratio, "events_per_s": r.events_per_s} for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if all(r.scan.rc == 0 and r.floor.rc == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
