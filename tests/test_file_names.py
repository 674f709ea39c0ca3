"""File names are read literally, though DuckDB's readers take `*`, `?` and `[` as globs.

`x*.jsonl` next to `xa.jsonl` must load its own records only, by every reader m2maudit
hands a path to: the fast JSON-lines read, the careful line reader, JSON documents read
together in a batch, and CSV.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.store import Store
from tests.test_ingest_batch import five_minute_objects

NAMES = ["x*", "x?", "x[a]", "[x]"]


def _loaded(store: Store) -> dict[str, int]:
    rows = store.con.execute(
        "SELECT source_file, count(*) FROM events GROUP BY 1 UNION ALL "
        "SELECT source_file, count(*) FROM credentials GROUP BY 1"
    ).fetchall()
    return {Path(name).name: int(count) for name, count in rows}


def _generic(path: Path, count: int, blank_line: bool = False) -> None:
    lines = [
        json.dumps({"timestamp": "2026-11-20T10:00:00Z", "principal": f"{path.name}-{n}"})
        for n in range(count)
    ]
    path.write_text("\n".join(lines) + ("\n\n" if blank_line else "\n"), encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("blank_line", [False, True])  # the fast read, or the careful one
def test_a_json_lines_log_named_like_a_glob(tmp_path: Path, name: str, blank_line: bool) -> None:
    _generic(tmp_path / f"{name}.jsonl", 2, blank_line)
    _generic(tmp_path / "xa.jsonl", 3)
    _generic(tmp_path / "x.jsonl", 4)
    store = Store.open()
    report = ingest_paths(store, [str(tmp_path)], [], Config())
    assert not any(f.error for f in report.files)
    assert _loaded(store) == {f"{name}.jsonl": 2, "xa.jsonl": 3, "x.jsonl": 4}


@pytest.mark.parametrize("name", NAMES)
def test_cloudtrail_objects_named_like_a_glob_read_together(tmp_path: Path, name: str) -> None:
    logs = five_minute_objects(tmp_path / "logs", 3)
    first, second, _ = sorted(logs.iterdir())
    first.rename(logs / f"{name}.json.gz")
    second.rename(logs / "xa.json.gz")
    store = Store.open()
    ingest_paths(store, [str(logs)], [], Config())
    per_file = len(json.loads(gzip.decompress((logs / "xa.json.gz").read_bytes()))["Records"])
    counts = _loaded(store)
    assert counts[f"{name}.json.gz"] == counts["xa.json.gz"] == per_file
    assert sum(counts.values()) == 3 * per_file


@pytest.mark.parametrize("name", NAMES)
def test_an_inventory_named_like_a_glob(tmp_path: Path, name: str) -> None:
    header = "token_id,type,principal,status\n"
    (tmp_path / f"{name}.csv").write_text(header + "k1,api_key,svc-a,active\n", encoding="utf-8")
    (tmp_path / "xa.csv").write_text(header + "k2,api_key,svc-b,active\n" * 1, encoding="utf-8")
    store = Store.open()
    report = ingest_paths(store, [], [str(tmp_path / f"{name}.csv")], Config())
    assert not any(f.error for f in report.files)
    assert _loaded(store) == {f"{name}.csv": 1}


def test_files_found_through_a_dotdot_path_keep_their_records(tmp_path: Path) -> None:
    # Read together, the files come back from DuckDB under the path it globbed: `..` gone.
    logs = five_minute_objects(tmp_path / "logs", 3)
    for number, path in enumerate(sorted(logs.iterdir())):
        path.rename(logs / f"export [{number}].json.gz")
    store = Store.open()
    report = ingest_paths(store, [str(tmp_path / "logs" / ".." / "logs")], [], Config())
    assert not any(f.error for f in report.files)
    assert len(_loaded(store)) == 3 and all(f.loaded for f in report.files)


@pytest.mark.parametrize("name", ["app\\[prod]", "q\\?", "x\\*"])
def test_a_name_with_a_backslash_and_a_glob_character(tmp_path: Path, name: str) -> None:
    _generic(tmp_path / f"{name}.jsonl", 2)
    _generic(tmp_path / "other.jsonl", 3)
    store = Store.open()
    report = ingest_paths(store, [str(tmp_path)], [], Config())
    assert not any(f.error for f in report.files)
    assert _loaded(store) == {f"{name}.jsonl": 2, "other.jsonl": 3}


def test_a_file_named_twice_is_read_once(tmp_path: Path) -> None:
    log = tmp_path / "calls.jsonl"
    _generic(log, 1)
    report = ingest_paths(Store.open(), [str(log), str(tmp_path), str(log)], [], Config())
    assert [(f.source, f.loaded, f.duplicates) for f in report.files] == [(str(log), 1, 0)]


def test_a_recursive_pattern_through_a_symbolic_link_loop_reads_each_file_once(
    tmp_path: Path,
) -> None:
    """`glob.glob` followed each link round its loop to the system's limit: 41 inputs for one
    link, and with two (here) 2^40 paths, a scan that never ended."""
    for name in ("sub", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "loop").symlink_to("..")
    _generic(tmp_path / "sub" / "calls.jsonl", 1)
    report = ingest_paths(Store.open(), [str(tmp_path / "**" / "*.jsonl")], [], Config())
    assert [(Path(f.source).name, f.loaded, f.duplicates) for f in report.files] == [
        ("calls.jsonl", 1, 0)
    ]


def test_a_file_and_a_link_to_it_keep_the_same_name_in_either_order(tmp_path: Path) -> None:
    real = tmp_path / "b-real.jsonl"
    _generic(real, 1)
    (tmp_path / "a-link.jsonl").symlink_to(real.name)
    names = [
        [f.source for f in ingest_paths(Store.open(), order, [], Config()).files]
        for order in ([str(real), str(tmp_path / "a-link.jsonl")], [str(tmp_path)])
    ]
    assert names == [[str(tmp_path / "a-link.jsonl")]] * 2


def test_two_broken_links_to_one_missing_file_are_both_named(tmp_path: Path) -> None:
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).symlink_to("gone.jsonl")
    report = ingest_paths(Store.open(), [str(tmp_path)])
    assert [(Path(f.source).name, f.error is not None) for f in report.files] == [
        ("a.jsonl", True),
        ("b.jsonl", True),
    ]


def test_a_secret_in_a_file_name_is_cut_out_of_every_name_shown(tmp_path: Path) -> None:
    """A log saved under its presigned URL (`wget` keeps the query) carries a session token
    in its name, and reports, the store and errors name the file: it was printed in full."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    token = "FwoGZXIvYXdzEFNLEAK0123456789abcdef"
    name = f"access.jsonl?X-Amz-Security-Token={token}&X-Amz-Signature=9f2c0ffee0123456789abc"
    logs = tmp_path / "logs"
    logs.mkdir()
    record = {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", "action": "x"}
    (logs / name).write_text(json.dumps(record) + "\n{broken\n")
    db = tmp_path / "s.duckdb"
    for target in (logs, logs / name):
        args = ["scan", str(target), "--db", str(db), "-f", "json", "--fail-on", "never"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert token not in result.stdout + result.stderr
        assert "X-Amz-Security-Token=[redacted]" in result.stdout
    store = Store.open(db)
    stored = str(store.con.execute("SELECT * FROM ingested_files").fetchall())
    stored += str(store.con.execute("SELECT * FROM ingest_errors").fetchall())
    stored += str(store.con.execute("SELECT source_file FROM events").fetchall())
    store.close()
    assert token not in stored and "[redacted]" in stored
