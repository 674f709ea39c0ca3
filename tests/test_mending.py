"""Mending text DuckDB refuses (`sources.mending`): what is replaced, and what is not."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from m2maudit.sources import mending
from m2maudit.sources.base import InputFile
from m2maudit.sources.mending import mend, mended_copy


@pytest.mark.parametrize(
    ("text", "mended", "not_utf8", "lone"),
    [
        (rb'"x\ud800y"', rb'"x\ufffdy"', 0, 1),  # a high surrogate alone
        (rb'"\udc00"', rb'"\ufffd"', 0, 1),  # a low one alone
        (rb'"\ud800\ud800\udc00"', rb'"\ufffd\ud800\udc00"', 0, 1),  # a pair after a lone one
        (rb'"\ud83d\ude00"', rb'"\ud83d\ude00"', 0, 0),  # a pair: an emoji
        (rb'"\\ud800"', rb'"\\ud800"', 0, 0),  # an escaped backslash, then text
        (rb'"\\\ud800"', rb'"\\\ufffd"', 0, 1),  # an escaped backslash, then an escape
        (b'"caf\xe9 \xff\xfe"', b'"caf? ??"', 3, 0),
        (b'"caf\xc3\xa9"', b'"caf\xc3\xa9"', 0, 0),  # UTF-8 as it should be
    ],
)
def test_mend_replaces_what_duckdb_refuses_and_keeps_the_length(
    text: bytes, mended: bytes, not_utf8: int, lone: int
) -> None:
    assert mend(text) == (mended, not_utf8, lone)
    assert len(mend(text)[0]) == len(text)  # the line index's offsets hold for the copy
    if lone or not_utf8:
        json.loads(mend(text)[0].decode("utf-8"))  # valid JSON text now


def _file(path: Path, compressed: bool = False) -> InputFile:
    return InputFile(path=path, display=path.name, size=path.stat().st_size, compressed=compressed)


def test_a_copy_is_streamed_in_pieces_that_end_at_a_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces of a few bytes: no escape or character is cut between two of them, and a line
    longer than four pieces is passed on as it comes."""
    monkeypatch.setattr(mending, "_PIECE", 8)
    lines = [b'{"a": "\\ud800 caf\xc3\xa9"}', b'{"b": "\xe9"}', b'{"c": "' + b"x" * 80 + b'"}']
    path = tmp_path / "calls.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    copy = mended_copy(_file(path, compressed=True))
    assert copy is not None
    try:
        assert (copy.bytes_not_utf8, copy.lone_surrogates) == (1, 1)
        assert copy.file.path.read_bytes().split(b"\n") == [
            b'{"a": "\\ufffd caf\xc3\xa9"}',
            b'{"b": "?"}',
            lines[2],
            b"",
        ]
        assert not copy.file.compressed and copy.file.temporary
        assert (
            copy.warning() == "1 byte not UTF-8 read as '?', 1 lone surrogate escape read as U+FFFD"
        )
    finally:
        copy.file.path.unlink()


def test_a_file_with_nothing_to_mend_gives_no_copy(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"a": 1\n{"b": "\\ud83d\\ude00"}\n')
    spools = set(Path(mending.tempfile.gettempdir()).glob("m2maudit-mended-*"))
    assert mended_copy(_file(path)) is None
    assert set(Path(mending.tempfile.gettempdir()).glob("m2maudit-mended-*")) == spools
