"""The benchmark scripts still run, on a tiny data set.

They are not tests of speed (nothing here is timed): they are tools the README documents,
and they reach into the library (`ablate_mapping.py` times the real `map_records` layers),
so a change to the library can break them without any other test noticing. One did: the
ablation script called `map_records` with an argument it no longer had.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EVENTS = "2000"


def run_script(name: str, *args: str) -> str:
    """Run `benchmarks/<name>` as the README does; its stdout, after checking it succeeded."""
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bench")
    run_script("generate.py", "--events", EVENTS, "--out", str(directory))
    return directory


def test_generate_writes_the_log_and_its_inventory(data_dir: Path) -> None:
    log = data_dir / f"events-{EVENTS}.jsonl"
    assert len(log.read_text(encoding="utf-8").splitlines()) == int(EVENTS)
    assert (data_dir / f"events-{EVENTS}-inventory.csv").stat().st_size > 0


def test_run_prints_the_floor_the_scan_and_their_ratio(data_dir: Path) -> None:
    out = run_script("run.py", "--events", EVENTS, "--data-dir", str(data_dir))
    row = next(line for line in out.splitlines() if line.split()[:1] == [EVENTS])
    floor, scan, ratio = (float(cell) for cell in row.split()[2:5])
    assert floor > 0 and scan > 0
    assert ratio == pytest.approx(scan / floor, rel=0.1)  # the seconds are printed rounded


def test_profile_phases_names_the_phases_and_the_rules(data_dir: Path) -> None:
    out = run_script("profile_phases.py", "--events", EVENTS, "--data-dir", str(data_dir))
    for phase in ("ingest_paths", "run_rules", "slowest SQL statements", "M2M"):
        assert phase in out


@pytest.mark.parametrize("path", [[], ["--careful"]], ids=["fast", "careful"])
def test_ablate_mapping_times_each_layer(data_dir: Path, path: list[str]) -> None:
    args = ["--events", EVENTS, "--data-dir", str(data_dir), "--repeat", "1", *path]
    out = run_script("ablate_mapping.py", *args)
    assert f"mapping {int(EVENTS):,} records" in out
    layers = re.findall(r"^  layer (\d+): ", out, flags=re.MULTILINE)
    assert layers and [int(n) for n in layers] == list(range(1, len(layers) + 1))
    assert re.search(r"^  whole mapping +\d+\.\d\d$", out, flags=re.MULTILINE)


def test_ablate_mapping_stage_only_reports_the_spill(data_dir: Path) -> None:
    out = run_script(
        "ablate_mapping.py", "--events", EVENTS, "--data-dir", str(data_dir), "--stage-only"
    )
    assert re.search(r"spill files peaked at \d+ MiB", out)


def test_many_files_scans_a_directory_of_objects(tmp_path: Path) -> None:
    out = run_script("many_files.py", "--files", "3", "--data-dir", str(tmp_path))
    row = out.splitlines()[-1].split()
    assert row[0] == "3" and int(row[1]) > 0
