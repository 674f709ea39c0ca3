"""Issue 7's other big input: a directory of thousands of small files, scanned end to end.

Why: a day of CloudTrail is 288 five-minute S3 objects per account and region, each a few
kilobytes; what costs there is work per file, not per event. This generates N gzipped
CloudTrail objects (seeded, 30-80 events each, built from the sample object in
`sample_logs/cloudtrail/`), then times `m2maudit scan DIR -f json` in a child process as
`run.py` does: wall seconds, CPU seconds, peak RSS, files and events per second.

    python benchmarks/many_files.py --files 2000
    python benchmarks/many_files.py --files 500,2000 --repeat 3
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from generate import DATA_DIR  # noqa: E402
from run import best, count_findings, measure, scan_env  # noqa: E402

SAMPLE = next((REPO / "sample_logs" / "cloudtrail").glob("*20261118T0000Z*.json.gz"))
START = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = "2026-11-28T00:00:00Z"


def generate_objects(count: int, seed: int, data_dir: Path) -> tuple[Path, int]:
    """`count` five-minute objects in `data_dir/cloudtrail-<count>` (kept if complete)."""
    directory = data_dir / f"cloudtrail-{count}-seed{seed}"
    # Beside the directory, not in it: the scan would read it as one more (unreadable) input.
    done = data_dir / f"{directory.name}.events"
    if done.exists():
        return directory, int(done.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    records = json.loads(gzip.decompress(SAMPLE.read_bytes()))["Records"]
    events = 0
    for i in range(count):
        start = START + timedelta(minutes=5 * i)
        batch = []
        for _ in range(rng.randint(30, 80)):
            record = dict(rng.choice(records))
            moment = start + timedelta(seconds=rng.randint(0, 299))
            record["eventTime"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            record["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
            record["requestID"] = str(uuid.UUID(int=rng.getrandbits(128)))
            batch.append(record)
        events += len(batch)
        name = f"111122223333_CloudTrail_us-east-1_{start:%Y%m%dT%H%M}Z_{i:05d}.json.gz"
        text = json.dumps({"Records": batch}).encode()
        (directory / name).write_bytes(gzip.compress(text, mtime=0))
    done.write_text(str(events))
    return directory, events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time a scan of many small CloudTrail files.")
    parser.add_argument("--files", default="2000", help="comma-separated counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs each; the fastest is kept")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    print(
        f"{'files':>7} {'events':>8} {'scan s':>7} {'cpu s':>6} {'files/s':>8} {'events/s':>9} "
        f"{'peak MiB':>8} {'findings':>8}"
    )
    for count in (int(n) for n in args.files.split(",")):
        directory, events = generate_objects(count, args.seed, args.data_dir)
        work = args.data_dir / "work" / f"files-{count}"
        report = work / "report.json"
        cmd = [
            sys.executable, "-m", "m2maudit", "scan", str(directory), "--as-of", AS_OF,
            "-f", "json", "-o", str(report), "--fail-on", "never",
        ]  # fmt: skip
        runs = [measure(cmd, work, scan_env()) for _ in range(args.repeat)]
        run = best(runs)
        if run.rc != 0:
            print(f"scan failed (exit {run.rc}):\n{run.stderr_tail}", file=sys.stderr)
            return 1
        print(
            f"{count:>7} {events:>8} {run.wall_s:>7.2f} {run.cpu_s:>6.1f} "
            f"{count / run.wall_s:>8.0f} {events / run.wall_s:>9.0f} {run.peak_mb:>8.0f} "
            f"{count_findings(report) or 0:>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
