"""A gzip file cut short in transfer: its whole lines load, the line it breaks off in is
rejected, and nothing is left behind.

DuckDB's readers refuse such a file whole; `standins` decompresses what it can into a
stand-in file that ingest reads under the original name.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from m2maudit.config import Config
from m2maudit.errors import GZIP_BROKEN
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.sources.standins import CUT_LINE_REASON
from m2maudit.store import Store
from tests.conftest import RunCli, query
from tests.test_source_k8s import audit_event

TS = "2026-11-20T10:00:00Z"


pytestmark = pytest.mark.usefixtures("stand_ins_removed")


def lines(start: int, stop: int, pad: int = 0) -> bytes:
    return "".join(
        json.dumps({"timestamp": TS, "principal": f"agent-{i}", "pad": f"{i:x}" * pad}) + "\n"
        for i in range(start, stop)
    ).encode()


def ingest(store: Store, path: Path) -> IngestReport:
    return ingest_paths(store, [str(path)], [], Config())


def principals(store: Store) -> list[str]:
    rows = store.con.execute("SELECT principal FROM events ORDER BY source_line").fetchall()
    return [str(row[0]) for row in rows]


def rejects(store: Store) -> list[tuple[int, str]]:
    rows = store.con.execute("SELECT source_line, reason FROM ingest_errors ORDER BY 1")
    return [(int(line), str(reason)) for line, reason in rows.fetchall()]


def whole_lines_before_the_cut(data: bytes, cut: int) -> int:
    """How many whole lines the first `cut` bytes of gzip `data` decompress to."""
    inflater = zlib.decompressobj(wbits=31)
    return inflater.decompress(data[:cut]).count(b"\n")


@pytest.mark.parametrize("pad", [0, 200], ids=["cut-inside-the-head", "cut-after-the-head"])
def test_a_cut_json_lines_log_keeps_its_whole_lines(tmp_path: Path, pad: int) -> None:
    """Cut inside the sniffed head (the sniff fails) or far after it (DuckDB's read fails)."""
    data = gzip.compress(lines(0, 20_000, pad))
    cut = len(data) // 2 if pad == 0 else len(data) - 5000
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(data[:cut])
    whole = whole_lines_before_the_cut(data, cut)
    assert 100 < whole < 20_000
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.source, file.loaded, file.rejected) == (None, str(path), whole, 1)
    assert principals(store) == [f"agent-{i}" for i in range(whole)]
    assert rejects(store) == [(whole + 1, CUT_LINE_REASON)]
    assert query_files(store) == [(str(path), whole + 1, whole, 1)]


def query_files(store: Store) -> list[tuple[str, int, int, int]]:
    return [
        (str(a), int(b), int(c), int(d))
        for a, b, c, d in store.con.execute(
            "SELECT source_file, records_read, loaded, rejected FROM ingested_files"
        ).fetchall()
    ]


def test_a_cut_csv_counts_its_header_line(tmp_path: Path) -> None:
    text = "timestamp,principal,action\n" + "".join(
        f"{TS},agent-{i},s3:GetObject\n" for i in range(30_000)
    )
    data = gzip.compress(text.encode())
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(data[:-100])
    whole = whole_lines_before_the_cut(data, len(data) - 100)
    store = Store.open()
    [file] = ingest(store, path).files
    assert file.loaded == whole - 1  # the header is line 1
    assert rejects(store) == [(whole + 1, CUT_LINE_REASON)]
    assert principals(store)[-1] == f"agent-{whole - 2}"


def test_a_cut_at_a_line_break_rejects_the_next_line(tmp_path: Path) -> None:
    """The second member of a gzip made of two is cut inside its header: the data ends
    right after a whole line, and the line after it is the one lost."""
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(lines(0, 50)) + gzip.compress(lines(50, 60))[:8])
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.loaded, file.rejected) == (50, 1)
    assert rejects(store) == [(51, CUT_LINE_REASON)]


def test_corrupt_data_keeps_only_the_members_before_it(tmp_path: Path) -> None:
    """gzip checks a member's data only at its end: what a corrupt member decompressed to
    before the error may be garbage, so none of it is read."""
    second = bytearray(gzip.compress(lines(100, 3000)))
    second[len(second) // 2] ^= 0xFF
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(lines(0, 100)) + bytes(second))
    store = Store.open()
    [file] = ingest(store, path).files
    assert principals(store) == [f"agent-{i}" for i in range(100)]
    assert (file.loaded, rejects(store)) == (100, [(101, CUT_LINE_REASON)])


def test_bytes_after_the_last_member_lose_nothing_before_them(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(lines(0, 10)) + gzip.compress(lines(10, 20)) + b"junk")
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.loaded, rejects(store)) == (20, [(21, CUT_LINE_REASON)])


def test_zero_padding_after_the_data_is_whole(tmp_path: Path) -> None:
    """gzip allows zeros after its members (DuckDB's reader does not): nothing is lost, and
    a last line without a line break is read too."""
    data = lines(0, 30)[:-1]
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(data) + b"\x00" * 512)
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded, file.rejected) == (None, 30, 0)
    assert rejects(store) == []


def cloudtrail_object(count: int) -> bytes:
    records = [{"eventTime": TS, "eventName": "GetObject", "eventSource": "s3.amazonaws.com"}]
    return json.dumps({"Records": records * count}).encode()


@pytest.mark.parametrize(
    ("name", "cut"),
    [
        # A CloudTrail object cut short is not JSON, whatever of it is decompressed.
        ("trail.json.gz", gzip.compress(cloudtrail_object(3000))[:-200]),
        ("log.jsonl.gz", gzip.compress(lines(0, 500))[:40]),  # inside the first line
    ],
    ids=["a-document", "no-whole-line"],
)
def test_a_cut_file_without_whole_lines_stays_unreadable(
    tmp_path: Path, name: str, cut: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(cut)
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded) == (GZIP_BROKEN, 0)
    assert rejects(store) == [(0, GZIP_BROKEN)]


def test_a_cut_file_among_small_ones_of_a_batch(tmp_path: Path) -> None:
    """Kubernetes audit files are staged in batches; the cut one is read alone."""
    logs = tmp_path / "audit"
    logs.mkdir()
    for n in range(4):
        events = [audit_event(when=f"2026-11-20T08:{n:02}:{s:02}Z") for s in range(60)]
        text = "".join(json.dumps(e) + "\n" for e in events).encode()
        data = gzip.compress(text)
        (logs / f"audit-{n}.log.gz").write_bytes(data if n != 2 else data[:-50])
    store = Store.open()
    report = ingest_paths(store, [str(logs)], [], Config())
    by_name = {Path(f.source).name: f for f in report.files}
    assert [f.error for f in by_name.values()] == [None] * 4
    cut = by_name["audit-2.log.gz"]
    assert (cut.format, cut.rejected) == ("k8s-audit", 1)
    assert 0 < cut.loaded < 60
    [(source, line, reason)] = store.con.execute(
        "SELECT source_file, source_line, reason FROM ingest_errors"
    ).fetchall()
    assert (source, line, reason) == (cut.source, cut.loaded + 1, CUT_LINE_REASON)


def test_a_store_says_the_same_of_the_cut_file_again(cli: RunCli, tmp_path: Path) -> None:
    """Read again into a `--db` store, the cut file adds nothing and is still cut:
    `--strict` fails on it both times, on the run that read it and on the store alone."""
    (tmp_path / "log.jsonl.gz").write_bytes(gzip.compress(lines(0, 3000))[:-300])
    first = cli("ingest", "log.jsonl.gz", "--db", "s.duckdb", "--strict")
    assert first.code == 2 and "1 record rejected" in first.stderr
    again = cli("ingest", "log.jsonl.gz", "--db", "s.duckdb")
    assert again.code == 0 and "already ingested" in again.stderr
    scan = cli("scan", "--db", "s.duckdb", "--strict", "-f", "json", "--fail-on", "never")
    assert scan.code == 2 and "1 record rejected" in scan.stderr
    [(count,)] = query(tmp_path / "s.duckdb", "SELECT count(*) FROM ingest_errors")
    assert count == 1
