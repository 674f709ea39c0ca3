"""Stand-ins: temporary copies of an input that DuckDB cannot read as it is, mended, which
ingest reads in its place under the input's name. Each may hold raw tokens, so it is
removed as soon as it is read (`remove_temporary`), and at once if writing it fails.

- A gzip file cut short (a transfer that broke off): DuckDB's readers and Python's `gzip`
  refuse the stream without its end, so the log would lose every record where only its last
  line is broken. Its whole lines are decompressed into a stand-in, and the line where the
  data ends is rejected. Only line layouts (JSON lines, CSV) gain from this: a JSON document
  cut short is still not JSON, and stays unreadable.
- A CSV file with a quote that never closes: the rest of the file is one cell to DuckDB,
  which rejects that row and reads nothing after it. The stand-in has that line blank (so
  every other line keeps its number), and the line is rejected.
- A CSV file whose lines end both in LF and CRLF (a header written on Linux above rows
  exported on Windows): DuckDB's CSV reader fails on it, or reads it as empty. The stand-in
  ends every line in LF.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO, TypeVar

from m2maudit.errors import GZIP_BROKEN
from m2maudit.sources.base import MAX_RECORD_BYTES, InputFile

CUT_LINE_REASON = f"{GZIP_BROKEN}: the data ends here, and what followed is lost"

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 1 << 20
# Output per decompression call: a few compressed bytes may expand a thousandfold.
_OUTPUT_BYTES = 4 << 20
# A line this long without its end is where a cut file's copy stops: no reader takes it, and
# a small file cut inside a line of gigabytes must not fill the disk.
_LONGEST_LINE = 2 * MAX_RECORD_BYTES

_Filled = TypeVar("_Filled")


class StandInFailed(Exception):
    """The stand-in could not be written (no temporary directory, the disk full): the
    reason, in words."""


def _write_stand_in(
    file: InputFile, fill: Callable[[BinaryIO], _Filled | None]
) -> tuple[InputFile, _Filled] | None:
    """A stand-in for `file` written by `fill`, with what `fill` returned; None, and no file
    left behind, when `fill` returns None. Raises `StandInFailed`."""
    filled: _Filled | None = None
    path: Path | None = None
    try:
        handle, name = tempfile.mkstemp(prefix="m2maudit-", suffix=file.content_extension)
        path = Path(name)
        with os.fdopen(handle, "wb") as sink:
            filled = fill(sink)
        size = path.stat().st_size
    except OSError as exc:
        filled = None
        raise StandInFailed(exc.strerror or str(exc)) from None
    except (EOFError, zlib.error):  # a gzip file to copy that cannot be read through
        filled = None
        raise StandInFailed(GZIP_BROKEN) from None
    finally:  # Ctrl-C too
        if filled is None and path is not None:
            path.unlink(missing_ok=True)
    if filled is None:
        return None
    stand_in = replace(file, path=path, size=size, compressed=False, temporary=True)
    return stand_in, filled


def recover_whole_lines(file: InputFile) -> InputFile | None:
    """A stand-in of what `file`'s gzip data decompresses to; None when that holds no whole
    line. Raises `StandInFailed`.

    Data that breaks off keeps its whole lines, and the line it breaks off in is the
    stand-in's `cut_after_line` + 1. Data found corrupt keeps only the members before the
    broken one: gzip checks a member's data only at its end, so what the broken member
    gave may be garbage. Bytes after the last member that are not a member cost nothing
    before them. Data that is whole (a gzip padded with zeros, which DuckDB's reader
    refuses) is kept whole.
    """

    def fill(sink: BinaryIO) -> _Kept | None:
        output = _Output(sink)
        with open(file.path, "rb") as source:
            kept = _decompress_until_broken(source, output)
        sink.truncate(kept.size)
        return kept if kept.lines else None

    written = _write_stand_in(file, fill)
    if written is None:
        return None
    stand_in, kept = written
    return replace(stand_in, cut_after_line=kept.lines if kept.broken else None)


@dataclass(frozen=True)
class _Kept:
    """What to keep of the decompressed data: its first `size` bytes, `lines` lines, and
    whether the data broke off after them."""

    size: int
    lines: int
    broken: bool


class _Output:
    """The decompressed data as it is written, and how much of it is whole lines and
    checked members."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.written = 0
        self.whole = _Kept(0, 0, broken=True)  # up to the last line break
        self.checked = self.whole  # up to the end of the last member that ended

    def write(self, data: bytes) -> None:
        """Raises `_LineTooLong` once the line being written is longer than any reader takes."""
        self.sink.write(data)
        last_break = data.rfind(b"\n")
        if last_break >= 0:
            lines = self.whole.lines + data.count(b"\n")
            self.whole = _Kept(self.written + last_break + 1, lines, broken=True)
        self.written += len(data)
        if self.written - self.whole.size > _LONGEST_LINE:
            raise _LineTooLong

    def member_ended(self) -> None:
        self.checked = self.everything(broken=True)

    def everything(self, broken: bool) -> _Kept:
        """All that was written, a last line without its line break too."""
        partial_line = int(self.written > self.whole.size)
        return _Kept(self.written, self.whole.lines + partial_line, broken)


class _LineTooLong(Exception):
    pass


def _decompress_until_broken(source: BinaryIO, output: _Output) -> _Kept:
    """Decompress `source`'s gzip members into `output`, up to where they break off, and
    say how much of it to keep (see `recover_whole_lines`)."""
    inflater: zlib._Decompress | None = None  # None between members
    try:
        for chunk in iter(partial(source.read, _READ_BYTES), b""):
            while chunk:
                if inflater is None:  # another member, zero padding, or bytes that are not gzip
                    chunk = chunk.lstrip(b"\x00")
                    if not chunk:
                        break
                    if not chunk.startswith(_GZIP_MAGIC[: len(chunk)]):
                        return output.checked
                    inflater = zlib.decompressobj(wbits=31)
                chunk = _inflate(inflater, chunk, output)
                if inflater.eof:
                    output.member_ended()
                    inflater = None
    except zlib.error:  # corrupt: what the broken member gave is not checked
        return output.checked
    except _LineTooLong:
        return output.whole
    if inflater is None:
        return output.everything(broken=False)
    return output.whole  # the data breaks off inside a member


def _inflate(inflater: zlib._Decompress, data: bytes, output: _Output) -> bytes:
    """Feed `data` to the member's inflater, writing all it gives; returns what follows the
    member's end, if it ended. Output comes in pieces of `_OUTPUT_BYTES`, and a piece that
    fills its limit may leave more inside zlib even when all the input was taken."""
    while True:
        produced = inflater.decompress(data, _OUTPUT_BYTES)
        output.write(produced)
        if inflater.eof:
            return inflater.unused_data
        data = inflater.unconsumed_tail
        if not data and len(produced) < _OUTPUT_BYTES:
            return b""


def with_lines_blanked(file: InputFile, lines: set[int]) -> InputFile:
    """A stand-in of `file`'s text with these lines (1-based) empty, their line breaks kept.
    Raises `StandInFailed`.

    Whole blocks are copied as they are; only a block holding one of the lines is split.
    """
    return _text_copy(file, partial(_copy_blanking, lines=lines))


def with_lf_line_breaks(file: InputFile) -> InputFile:
    """A stand-in of `file`'s text with every CRLF line break written as LF: each line keeps
    its number. Raises `StandInFailed`."""
    return _text_copy(file, _copy_with_lf)


def _text_copy(file: InputFile, copy: Callable[[Callable[[], bytes], BinaryIO], None]) -> InputFile:
    """A stand-in that `copy` writes from `file`'s text (decompressed) read block by block."""

    def fill(sink: BinaryIO) -> bool:
        with (gzip.open if file.compressed else open)(file.path, "rb") as source:
            copy(partial(source.read, _READ_BYTES), sink)
        return True

    written = _write_stand_in(file, fill)
    assert written is not None  # `fill` always gives True
    return written[0]


def _copy_blanking(read: Callable[[], bytes], sink: BinaryIO, lines: set[int]) -> None:
    line = 1  # the line the next byte belongs to
    for block in iter(read, b""):
        breaks = block.count(b"\n")
        if not any(line <= n <= line + breaks for n in lines):
            sink.write(block)
            line += breaks
            continue
        pieces = block.split(b"\n")
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            if line not in lines:
                sink.write(piece)
            elif piece.endswith(b"\r") and not last:
                sink.write(b"\r")  # a CRLF line stays one
            if not last:
                sink.write(b"\n")
                line += 1


def _copy_with_lf(read: Callable[[], bytes], sink: BinaryIO) -> None:
    held = b""  # a CR that ends a block may begin a CRLF
    for block in iter(read, b""):
        block = held + block
        held = b"\r" if block.endswith(b"\r") else b""
        sink.write(block[: len(block) - len(held)].replace(b"\r\n", b"\n"))
    sink.write(held)
