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
from m2maudit.sources.base import InputFile

CUT_LINE_REASON = f"{GZIP_BROKEN}: the data ends here, and what followed is lost"

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 1 << 20
# Output per decompression call: a few compressed bytes may expand a thousandfold.
_OUTPUT_BYTES = 4 << 20

_Filled = TypeVar("_Filled")


def _write_stand_in(
    file: InputFile, fill: Callable[[BinaryIO], _Filled | None]
) -> tuple[InputFile, _Filled] | None:
    """A stand-in for `file` written by `fill`, with what `fill` returned; None, and no file
    left behind, when `fill` returns None or the stand-in cannot be written."""
    handle, name = tempfile.mkstemp(prefix="m2maudit-", suffix=file.content_extension)
    path = Path(name)
    filled: _Filled | None = None
    try:
        with os.fdopen(handle, "wb") as sink:
            filled = fill(sink)
    except OSError:
        filled = None
    finally:  # Ctrl-C too
        if filled is None:
            path.unlink(missing_ok=True)
    if filled is None:
        return None
    stand_in = replace(file, path=path, size=path.stat().st_size, compressed=False, temporary=True)
    return stand_in, filled


def recover_whole_lines(file: InputFile) -> InputFile | None:
    """A stand-in of what `file`'s gzip data decompresses to; None when that holds no whole
    line or cannot be written.

    Data that breaks off keeps its whole lines, and the line it breaks off in is the
    stand-in's `cut_after_line` + 1. Data found corrupt keeps only the members before the
    broken one: gzip checks a member's data only at its end, so what the broken member
    gave may be garbage. Data that is whole (a gzip padded with zeros, which DuckDB's
    reader refuses) is kept whole.
    """

    def fill(sink: BinaryIO) -> _Kept | None:
        with open(file.path, "rb") as source:
            kept = _decompress_until_broken(source, sink)
        sink.truncate(kept.size)
        return kept if kept.lines else None

    written = _write_stand_in(file, fill)
    if written is None:
        return None
    stand_in, kept = written
    return replace(stand_in, cut_after_line=kept.lines if kept.broken else None)


def with_lines_blanked(file: InputFile, lines: set[int]) -> InputFile | None:
    """A stand-in of `file`'s text with these lines (1-based) empty, their line breaks kept;
    None when it cannot be written.

    Whole blocks are copied as they are; only a block holding one of the lines is split.
    """

    def fill(sink: BinaryIO) -> bool:
        with (gzip.open if file.compressed else open)(file.path, "rb") as source:
            _copy_blanking(source.read, sink, lines)
        return True

    written = _write_stand_in(file, fill)
    return None if written is None else written[0]


def _copy_blanking(read: Callable[[int], bytes], sink: BinaryIO, lines: set[int]) -> None:
    line = 1  # the line the next byte belongs to
    for block in iter(partial(read, _READ_BYTES), b""):
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


@dataclass
class _Kept:
    """What to keep of the decompressed data: its first `size` bytes, `lines` lines."""

    size: int = 0
    lines: int = 0
    broken: bool = True


def _decompress_until_broken(source: BinaryIO, sink: BinaryIO) -> _Kept:
    """Write what `source`'s gzip members decompress to, up to where they break off, and say
    how much of it to keep (see `recover_whole_lines`)."""
    inflater = zlib.decompressobj(wbits=31)
    written = 0
    whole = _Kept()  # up to the last line break written
    checked = _Kept()  # up to the end of the last member that ended, its data checked
    pending = b""
    while True:
        if not pending:
            pending = source.read(_READ_BYTES)
            if not pending and inflater.eof:  # whole: keep all, a last line without a break too
                return _Kept(written, whole.lines + (written > whole.size), broken=False)
            if not pending:  # breaks off inside a member
                return whole
        if inflater.eof:  # a member ended: another follows, zero padding, or garbage
            checked = replace(whole)
            pending = pending.lstrip(b"\x00")
            if not pending:
                continue
            if not pending.startswith(_GZIP_MAGIC[: len(pending)]):
                return whole
            inflater = zlib.decompressobj(wbits=31)
        try:
            data = inflater.decompress(pending, _OUTPUT_BYTES)
        except zlib.error:
            return checked
        pending = inflater.unconsumed_tail or inflater.unused_data
        sink.write(data)
        last_break = data.rfind(b"\n")
        if last_break >= 0:
            whole = _Kept(written + last_break + 1, whole.lines + data.count(b"\n"))
        written += len(data)
