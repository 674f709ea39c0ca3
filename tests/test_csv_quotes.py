"""CSV quoting: every record keeps the line it starts on, and a quote that never closes costs
its own row, not the rest of the file.

DuckDB numbers a CSV file's records, not its lines; `csv_quotes` finds the lines inside
quoted cells as DuckDB's reader sees them (a quote opens a cell only at a field's start).
"""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

import pytest

from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import FileReport
from m2maudit.sources import standins
from m2maudit.sources.base import InputFile, LoadContext
from m2maudit.sources.staging import UNCLOSED_QUOTE_REASON
from m2maudit.sources.standins import CUT_LINE_REASON
from m2maudit.store import Store

TS = "2026-11-20T10:00:00Z"
HEADER = "timestamp,principal,action"

# One record each, by how it is written: (the text after "<time>,agent-<i>,", lines it spans).
GOOD_SHAPES = {
    "plain": ("s3:GetObject", 1),
    "a quote inside a field is text": ('screen 5" wide', 1),
    "two quotes inside a field": ('a"b"c', 1),
    "quoted": ('"s3:GetObject"', 1),
    "a space before a quoted cell, spaces after": (' "s3:Get,Object"   ', 1),
    "two spaces before a quote make it text": ('  "s3:Get', 1),
    "a tab before a quote makes it text": ('\t"s3:Get', 1),
    "escaped quotes": ('"say ""hi"""', 1),
    "an empty quoted cell": ('""', 1),
    "a cell over three lines": ('"one\ntwo\nthree"', 3),
    "a blank line inside a cell": ('"one\n\nthree"', 3),
    "escaped quotes over lines": ('"a ""q\n5"" b"', 2),
    "a line inside a cell that looks like a row": (f'"x\n{TS},agent-x,"', 2),
}
# Rows DuckDB rejects, which must not move the lines after them.
BAD_SHAPES = {
    "text after a closing quote": ('"s3:Get"Object', 1),
    "text after a quoted cell over lines": ('"s3:\nGet"Object', 2),
    "a tab after a closing quote": ('"s3:Get"\t', 1),
    "text after a closing quote, then a cell over lines": ('"s3"Get,"x\ny"', 2),
    "text with a quote after a closing quote": ('"s3"Get"Object', 1),
    "a quote inside text, then a cell over lines": ('5" wide,"x\ny" 5" wide', 2),
}


pytestmark = pytest.mark.usefixtures("stand_ins_removed")


def load(path: Path) -> tuple[Store, FileReport]:
    store = Store.open()
    [file] = ingest_paths(store, [str(path)], [], Config()).files
    return store, file


def lines_of(store: Store) -> dict[str, int]:
    rows = store.con.execute("SELECT principal, source_line FROM events").fetchall()
    return {str(principal): int(line) for principal, line in rows}


def rejects(store: Store) -> dict[int, str]:
    rows = store.con.execute("SELECT source_line, reason FROM ingest_errors").fetchall()
    return {int(line): str(reason) for line, reason in rows}


def write_records(
    path: Path, shapes: list[str], blank_after: set[int] = frozenset()
) -> tuple[dict[str, int], set[int]]:
    """A CSV file of one record per shape; the line each good record starts on, and the
    lines of the bad ones."""
    text, line = [HEADER], 2
    good: dict[str, int] = {}
    bad: set[int] = set()
    for i, shape in enumerate(shapes):
        rest, spans = GOOD_SHAPES.get(shape) or BAD_SHAPES[shape]
        text.append(f"{TS},agent-{i},{rest}")
        if shape in GOOD_SHAPES:
            good[f"agent-{i}"] = line
        else:
            bad.add(line)
        line += spans
        if i in blank_after:
            text.append("")
            line += 1
    path.write_text("\n".join(text) + "\n")
    return good, bad


@pytest.mark.parametrize("shape", [*GOOD_SHAPES, *BAD_SHAPES])
def test_each_shape_between_plain_rows(tmp_path: Path, shape: str) -> None:
    good, bad = write_records(tmp_path / "calls.csv", ["plain", shape, "plain", "plain"])
    store, file = load(tmp_path / "calls.csv")
    assert lines_of(store) == good
    assert set(rejects(store)) == bad
    assert file.rejected == len(bad)


@pytest.mark.parametrize("seed", range(6))
def test_records_of_every_shape_keep_their_lines(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    shapes = rng.choices([*GOOD_SHAPES, *BAD_SHAPES], k=300)
    blank_after = {i for i in range(300) if rng.random() < 0.05}
    good, bad = write_records(tmp_path / "calls.csv", shapes, blank_after)
    store, _ = load(tmp_path / "calls.csv")
    assert lines_of(store) == good
    assert set(rejects(store)) == bad


@pytest.mark.parametrize(
    "opening",
    ['"s3:GetObject', '"s3" Get,"note', 'screen 5" wide,"note'],
    ids=["alone", "after-text-after-a-quote", "after-a-quote-inside-text"],
)
def test_a_quote_never_closed_costs_its_own_row(tmp_path: Path, opening: str) -> None:
    """It made the rest of the file one cell: DuckDB rejected that row and read nothing after."""
    path = tmp_path / "calls.csv"
    rows = [f"{TS},agent-{i},s3:GetObject" for i in range(40)]
    rows[9] = f"{TS},agent-9,{opening}"
    rows[20] = f'{TS},agent-20,say ""hi""'  # text, whose quotes cannot close a cell
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    store, file = load(path)
    assert lines_of(store) == {f"agent-{i}": i + 2 for i in range(40) if i != 9}
    assert rejects(store) == {11: UNCLOSED_QUOTE_REASON}
    assert (file.read, file.loaded, file.rejected) == (40, 39, 1)


def test_a_quote_closed_rows_later_makes_one_rejected_row(tmp_path: Path) -> None:
    """What CSV says: the cell runs to the next quote that can close it. The row it makes is
    rejected, with the line it starts on; the rows after keep their lines."""
    path = tmp_path / "calls.csv"
    rows = [f"{TS},agent-{i},s3:GetObject" for i in range(40)]
    rows[9] = f'{TS},agent-9,"s3:GetObject'
    rows[20] = f'{TS},agent-20,"s3:GetObject"'
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    store, file = load(path)
    assert lines_of(store) == {f"agent-{i}": i + 2 for i in range(40) if not 9 <= i <= 20}
    assert list(rejects(store)) == [11]
    assert file.rejected == 1


def test_a_quote_never_closed_in_a_gzip_csv(tmp_path: Path) -> None:
    rows = [f"{TS},agent-{i},s3:GetObject" for i in range(10)]
    rows[3] = f'{TS},"agent-3,s3:GetObject'
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(gzip.compress(("\n".join([HEADER, *rows]) + "\n").encode()))
    store, _ = load(path)
    assert len(lines_of(store)) == 9 and lines_of(store)["agent-9"] == 11
    assert rejects(store) == {5: UNCLOSED_QUOTE_REASON}


def test_a_header_with_a_quote_never_closed_is_an_unreadable_file(tmp_path: Path) -> None:
    """It made the whole file its header: an empty export, which `--strict` let pass."""
    path = tmp_path / "calls.csv"
    path.write_text(f'timestamp,principal,"action\n{TS},agent-1,x\n{TS},agent-2,y\n')
    _, file = load(path)
    assert file.error == "line 1: the CSV header opens a quote it never closes"
    assert (file.loaded, file.skipped) == (0, None)


def cut_where(data: bytes, last_whole_line_ends: bytes) -> bytes:
    """`data` (gzip) cut where the whole lines it decompresses to end with this text."""
    for cut in range(len(data) // 2, len(data)):
        text = zlib.decompressobj(wbits=31).decompress(data[:cut])
        if text[: text.rfind(b"\n")].endswith(last_whole_line_ends):
            return data[:cut]
    raise AssertionError("no such cut")


@pytest.mark.parametrize("ending", [b'"multi', b'"'], ids=["inside-a-cell", "after-a-record"])
def test_a_cut_gzip_csv_rejects_the_record_cut_once(tmp_path: Path, ending: bytes) -> None:
    """Data that ends inside a cell over lines cuts the record it begins, not the next one;
    a complete copy read later clears the cut."""
    text = "timestamp,principal,action\n" + "".join(
        f'{TS},agent-{i},"multi\nline {i}"\n' for i in range(400)
    )
    whole = gzip.compress(text.encode())
    path = tmp_path / "calls.csv.gz"
    path.write_bytes(cut_where(whole, ending))
    store = Store.open()
    [file] = ingest_paths(store, [str(path)], [], Config()).files
    [(line, reason)] = rejects(store).items()
    assert reason == CUT_LINE_REASON
    assert (file.read, file.loaded, file.rejected) == (file.loaded + 1, (line - 2) // 2, 1)
    assert lines_of(store)[f"agent-{file.loaded - 1}"] == line - 2
    path.write_bytes(whole)
    ingest_paths(store, [str(path)], [], Config())
    assert rejects(store) == {}
    assert len(lines_of(store)) == 400


@pytest.mark.parametrize(
    ("text", "first_line"),
    [
        # A header written on Linux above rows exported on Windows: DuckDB's reader failed.
        (f'{HEADER}\n{TS},agent-0,s3:Get\r\n{TS},agent-1,"a\r\nb"\r\n{TS},agent-2,x\r\n', 2),
        # Blank LF lines before a CRLF file: it read as an empty export.
        (f"\n\n{HEADER}\r\n{TS},agent-0,s3:Get\r\n{TS},agent-1,x\r\n{TS},agent-2,y\r\n", 4),
    ],
    ids=["lf-header-crlf-rows", "lf-blank-lines-crlf-file"],
)
def test_lines_ending_in_lf_and_crlf_in_one_file(
    tmp_path: Path, text: str, first_line: int
) -> None:
    path = tmp_path / "calls.csv"
    path.write_bytes(text.encode())
    store, file = load(path)
    assert (file.error, file.skipped, file.loaded) == (None, None, 3)
    lines = lines_of(store)
    assert lines["agent-0"] == first_line and lines["agent-2"] == first_line + 2 + ("a\r" in text)


@pytest.mark.parametrize("block", [1, 2, 3, 5, 64])
def test_the_lf_stand_in_joins_a_crlf_cut_by_a_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(standins, "_READ_BYTES", block)
    data = b"a\r\nbb\r\n\r\nccc\r\r\nd\re\r"
    path = tmp_path / "calls.csv"
    path.write_bytes(data)
    stand_in = standins.with_lf_line_breaks(InputFile(path, "calls.csv", len(data), False))
    try:
        assert stand_in.path.read_bytes() == data.replace(b"\r\n", b"\n")
    finally:
        stand_in.path.unlink()


def test_a_chain_of_quotes_never_closed_is_read_past_in_one_more_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows like `agent",x,"b` each open a cell wherever they begin: blanking one leaves the
    next open. The quote model finds them all from the first reading, so a garbled file of
    many costs one more reading, not one each."""
    from m2maudit.sources import staging

    readings: list[list[int]] = []
    real = staging._stage_csv_once

    def counted(ctx: LoadContext) -> list[int]:
        readings.append(real(ctx))
        return readings[-1]

    monkeypatch.setattr(staging, "_stage_csv_once", counted)
    rows = [f"{TS},agent-{i},s3:Get" for i in range(10)]
    rows[3:3] = [f'{TS},agent-x{i}",x,"b' for i in range(12)]
    path = tmp_path / "calls.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    store, file = load(path)
    assert readings == [list(range(5, 17)), []]
    assert rejects(store) == {line: UNCLOSED_QUOTE_REASON for line in range(5, 17)}
    assert lines_of(store) == {f"agent-{i}": i + 2 + 12 * (i >= 3) for i in range(10)}
    assert (file.read, file.loaded, file.rejected) == (22, 10, 12)
