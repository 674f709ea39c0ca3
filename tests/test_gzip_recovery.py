"""A gzip file cut short in transfer: its whole lines load, the line it breaks off in is
rejected, and nothing is left behind.

DuckDB's readers refuse such a file whole; `standins` decompresses what it can into a
stand-in file that ingest reads under the original name.
"""

from __future__ import annotations

import gzip
import json
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest

from m2maudit import ingest as ingest_module
from m2maudit.config import Config
from m2maudit.errors import GZIP_BROKEN
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.sources import lineindex, standins
from m2maudit.sources.base import InputFile
from m2maudit.sources.generic_log import GenericLogAdapter
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


def with_crc_flipped(member: bytes) -> bytes:
    """A gzip member whose data is whole but whose CRC-32 (its trailer's first 4 bytes) says
    otherwise: DuckDB reads it without a word, as it reads a member corrupted inside its
    data without breaking the deflate stream."""
    broken = bytearray(member)
    broken[-8] ^= 0xFF
    return bytes(broken)


@pytest.mark.parametrize("in_background", [False, True], ids=["small", "checked-while-read"])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("log.jsonl.gz", lines(0, 8000)),
        ("calls.csv.gz", b"timestamp,principal\n" + f"{TS},agent-1\n".encode() * 20_000),
        ("audit.jsonl.gz", "".join(json.dumps(audit_event()) + "\n" for _ in range(800)).encode()),
    ],
    ids=["fast-json-lines", "csv", "k8s-audit"],
)
def test_a_member_that_fails_its_crc_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, text: bytes, in_background: bool
) -> None:
    """DuckDB does not check gzip's CRC: every line of a corrupt member that still parsed
    loaded as a record. Whatever reads it, the file is now one unreadable input. Each text
    is longer than the head that sniffing reads, whose gzip reader checks the CRC of a
    file it reads to the end."""
    assert len(text) > 256 * 1024
    if in_background:
        monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 1)
    path = tmp_path / name
    path.write_bytes(with_crc_flipped(gzip.compress(text)))
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded) == (GZIP_BROKEN, 0)
    assert store.scalar("SELECT count(*) FROM events") == 0


def test_a_byte_flipped_inside_the_only_member_loads_nothing(tmp_path: Path) -> None:
    """The garbage DuckDB read after the flipped byte had loaded beside the good lines,
    thousands of them rejected as "not valid JSON" and the rest kept as records."""
    data = bytearray(gzip.compress(lines(0, 20_000, pad=8)))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(bytes(data))
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded, file.rejected) == (GZIP_BROKEN, 0, 0)
    assert store.scalar("SELECT count(*) FROM events") == 0


def with_a_name_changed(text: bytes, name: bytes) -> bytes:
    """`text` in a stored (level-0) gzip member, one letter of `name` changed in the data
    and not in the CRC: the JSON around it still parses."""
    data = bytearray(gzip.compress(text, compresslevel=0))
    data[data.index(name)] ^= 0x20  # the letter's case
    return bytes(data)


@pytest.mark.parametrize("in_background", [False, True], ids=["small", "checked-while-read"])
def test_a_json_array_changed_inside_its_member_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_background: bool
) -> None:
    """A JSON array whose member fails its CRC loaded, an invented name among its records
    (`agent-2500` became `Agent-2500`). The array is longer than the head that sniffing
    reads, whose gzip reader checks the CRC of a file it reads to the end (as it does a
    CloudTrail object's, up to the 8 MiB it parses)."""
    text = json.dumps([json.loads(line) for line in lines(0, 5000).splitlines()]).encode()
    assert len(text) > 256 * 1024
    if in_background:
        monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 1)
    path = tmp_path / "calls.json.gz"
    path.write_bytes(with_a_name_changed(text, b"agent-2500"))
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded) == (GZIP_BROKEN, 0)
    assert store.scalar("SELECT count(*) FROM events") == 0


def test_a_member_that_fails_its_crc_keeps_the_members_before_it(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(
        gzip.compress(lines(0, 100)) + with_crc_flipped(gzip.compress(lines(100, 200)))
    )
    store = Store.open()
    [file] = ingest(store, path).files
    assert principals(store) == [f"agent-{i}" for i in range(100)]
    assert (file.loaded, rejects(store)) == (100, [(101, CUT_LINE_REASON)])


def test_bytes_after_the_last_member_lose_nothing_before_them(tmp_path: Path) -> None:
    """The members were checked whole: their last line counts, with or without its break."""
    path = tmp_path / "log.jsonl.gz"
    last = gzip.compress(lines(10, 20)[:-1])
    path.write_bytes(gzip.compress(lines(0, 10)) + last + b"junk")
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


RECORDS = [{"eventTime": TS, "eventName": "GetObject", "eventSource": "s3.amazonaws.com"}] * 3000


@pytest.mark.parametrize(
    ("name", "cut"),
    [
        # A document cut short is not JSON, whatever of it is decompressed, even where its
        # lines are records: an object indented, an array of an object a line.
        ("trail.json.gz", gzip.compress(json.dumps({"Records": RECORDS}, indent=1).encode())),
        ("array.json.gz", gzip.compress(("[\n" + ",\n".join(map(json.dumps, RECORDS))).encode())),
        ("log.jsonl.gz", gzip.compress(lines(0, 500))[:40]),  # inside the first line
    ],
    ids=["an-indented-object", "an-array-of-lines", "no-whole-line"],
)
def test_a_cut_file_without_whole_lines_stays_unreadable(
    tmp_path: Path, name: str, cut: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(cut if name.endswith("jsonl.gz") else cut[:-300])
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.error, file.loaded, file.rejected) == (GZIP_BROKEN, 0, 0)
    assert rejects(store) == [(0, GZIP_BROKEN)]
    assert store.con.execute("SELECT count(*) FROM ingested_files").fetchone() == (0,)


@pytest.mark.parametrize(
    ("name", "text", "rejected"),
    [
        ("bad-times.jsonl.gz", lines(0, 500).replace(TS.encode(), b"not a time"), "every line"),
        ("header.csv.gz", f"timestamp,principal,action\n{TS},agent-1,".encode() * 1, "the cut"),
    ],
)
def test_whole_lines_that_all_fail_are_counted_as_they_are_stored(
    cli: RunCli, tmp_path: Path, name: str, text: bytes, rejected: str
) -> None:
    """What the summary, the report's inputs and `--strict` say is what the store holds."""
    data = gzip.compress(text)
    (tmp_path / name).write_bytes(data[:-12] if rejected == "every line" else data[:-5])
    (tmp_path / "good.jsonl").write_bytes(lines(0, 1))
    common = ["-f", "json", "--fail-on", "never", "--as-of", "2026-11-21T00:00:00Z"]
    result = cli("scan", name, "good.jsonl", "--db", "s.duckdb", *common, "--strict")
    assert result.code == 2
    [stored] = query(
        tmp_path / "s.duckdb", "SELECT count(*) FROM ingest_errors WHERE source_line > 0"
    )
    inputs = json.loads(result.stdout)["inputs"]
    [given] = [i for i in inputs if i["source"] == name]
    assert given["rejected"] == stored[0] > 0
    assert given["error"] == f"no record could be loaded ({stored[0]} rejected)"
    assert f"--strict: {stored[0]} record" in result.stderr
    again = cli("scan", "--db", "s.duckdb", *common)
    assert json.loads(again.stdout)["inputs"] == inputs


def test_a_cut_inside_a_line_longer_than_any_reader_takes_stops_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A small file cut inside a line of gigabytes would fill the disk with its copy."""
    monkeypatch.setattr(standins, "_LONGEST_LINE", 10_000)
    compressor = zlib.compressobj(wbits=31)
    head = lines(0, 50) + b'{"timestamp": "' + b"a" * 20_000_000
    data = compressor.compress(head) + compressor.flush(zlib.Z_SYNC_FLUSH)
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(data)
    written: list[int] = []
    real = standins._Output.write

    def spy(self: standins._Output, chunk: bytes) -> None:
        try:
            real(self, chunk)
        finally:
            written.append(self.written)

    monkeypatch.setattr(standins._Output, "write", spy)
    store = Store.open()
    [file] = ingest(store, path).files
    assert (file.loaded, rejects(store)) == (50, [(51, CUT_LINE_REASON)])
    assert max(written) <= 4 << 20  # one piece of output, not the 20 MB of the line


def test_no_room_for_the_copy_leaves_the_file_unreadable_and_the_run_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-dir"))
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(lines(0, 500))[:-30])
    (tmp_path / "good.jsonl").write_bytes(lines(500, 510))
    store = Store.open()
    report = ingest_paths(store, [str(tmp_path)], [], Config())
    errors = {Path(f.source).name: f.error for f in report.files}
    assert errors == {
        "cut.jsonl.gz": f"{GZIP_BROKEN}; its whole lines could not be copied to read "
        "(No such file or directory)",
        "good.jsonl": None,
    }
    assert report.loaded == 10


@pytest.mark.parametrize("limit", [1000, 4096])
def test_every_cut_keeps_what_zlib_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    """Output comes in pieces of a set size; a piece that fills it leaves more in zlib,
    which must still be written when the input runs out."""
    monkeypatch.setattr(standins, "_OUTPUT_BYTES", limit)
    data = gzip.compress(b"".join(b"A" * (i % 3000) + b"\n" for i in range(200)))
    for cut in range(40, len(data) - 8, 97):
        path = tmp_path / "log.jsonl.gz"
        path.write_bytes(data[:cut])
        expected = zlib.decompressobj(wbits=31).decompress(data[:cut])
        expected = expected[: expected.rfind(b"\n") + 1]
        stand_in = standins.recover_whole_lines(InputFile(path, "log", cut, compressed=True))
        assert stand_in is not None and stand_in.path.read_bytes() == expected
        assert stand_in.cut_after_line == expected.count(b"\n")
        stand_in.path.unlink()


def test_a_complete_copy_read_later_clears_the_cut(cli: RunCli, tmp_path: Path) -> None:
    """The copy cut in transfer, then fetched whole under the same name: the store no longer
    calls the file cut, and a scan of it alone passes `--strict`."""
    whole = gzip.compress(lines(0, 3000))
    (tmp_path / "log.jsonl.gz").write_bytes(whole[:-300])
    assert cli("ingest", "log.jsonl.gz", "--db", "s.duckdb").code == 0
    (tmp_path / "log.jsonl.gz").write_bytes(whole)
    assert cli("ingest", "log.jsonl.gz", "--db", "s.duckdb", "--strict").code == 0
    common = ["--db", "s.duckdb", "-f", "json", "--fail-on", "never", "--strict"]
    assert cli("scan", *common).code == 0
    assert query(tmp_path / "s.duckdb", "SELECT count(*) FROM ingest_errors") == [(0,)]
    assert query(tmp_path / "s.duckdb", "SELECT count(*) FROM events") == [(3000,)]


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


def test_a_file_that_fails_its_crc_among_small_ones_of_a_batch(tmp_path: Path) -> None:
    """Read with the others, its lines had all loaded; read alone, it is refused. Each
    file is longer than the head that sniffing reads (whose gzip reader checks the CRC of a
    file it reads to the end)."""
    logs = tmp_path / "audit"
    logs.mkdir()
    for n in range(4):
        events = [audit_event(when=f"2026-11-20T08:{n:02}:00Z", n=s) for s in range(1000)]
        data = gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode())
        (logs / f"audit-{n}.log.gz").write_bytes(data if n != 2 else with_crc_flipped(data))
    store = Store.open()
    report = ingest_paths(store, [str(logs)], [], Config())
    outcome = {Path(f.source).name: (f.error, f.loaded) for f in report.files}
    assert outcome == {
        "audit-0.log.gz": (None, 1000),
        "audit-1.log.gz": (None, 1000),
        "audit-2.log.gz": (GZIP_BROKEN, 0),
        "audit-3.log.gz": (None, 1000),
    }


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


def test_a_file_gone_after_it_was_sniffed_leaves_the_rest_of_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its gzip check cannot open it: it is named unreadable, the others load."""
    logs = tmp_path / "audit"
    logs.mkdir()
    for n in range(4):
        events = [audit_event(when=f"2026-11-20T08:{n:02}:00Z", n=s) for s in range(50)]
        data = gzip.compress("".join(json.dumps(e) + "\n" for e in events).encode())
        (logs / f"audit-{n}.log.gz").write_bytes(data)
    real_sniff = ingest_module._sniff

    def sniff_then_rotate(file: InputFile, config: Config) -> Any:
        sniffed = real_sniff(file, config)
        if file.path.name == "audit-2.log.gz":
            file.path.unlink()
        return sniffed

    monkeypatch.setattr(ingest_module, "_sniff", sniff_then_rotate)
    report = ingest_paths(Store.open(), [str(logs)], [], Config())
    outcome = {Path(f.source).name: (f.error is None, f.loaded) for f in report.files}
    assert outcome == {
        "audit-0.log.gz": (True, 50),
        "audit-1.log.gz": (True, 50),
        "audit-2.log.gz": (False, 0),
        "audit-3.log.gz": (True, 50),
    }


def test_a_gzip_file_stored_before_is_passed_over_before_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gzip file big enough for its check to run on the thread is still hashed at once,
    so that a --db store skips it without reading it again."""
    monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 16 * 1024)
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress(lines(0, 2000)))
    assert 16 * 1024 // lineindex.GZIP_RATIO <= path.stat().st_size < 16 * 1024
    loads: list[str] = []
    real_load = GenericLogAdapter.load

    def counted_load(self: GenericLogAdapter, ctx: Any) -> None:
        loads.append(ctx.file.display)
        real_load(self, ctx)

    monkeypatch.setattr(GenericLogAdapter, "load", counted_load)
    store = Store.open(tmp_path / "store.duckdb")
    first = ingest(store, path).files[0]
    again = ingest(store, path).files[0]
    assert (first.loaded, again.loaded, again.duplicates) == (2000, 0, 2000)
    assert loads == [str(path)]
