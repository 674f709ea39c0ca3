"""The whole lines of a gzip file cut short: what a transfer that broke off still delivered.

DuckDB's readers and Python's `gzip` refuse a gzip stream without its end, so a log cut off
in transfer would lose every record, where only its last line is broken. Such a file is
decompressed here, as far as its data goes, into a temporary file of its whole lines, which
ingest loads in its place under the original name; the line where the data ends is rejected
as cut short. Only line layouts (JSON lines, CSV) gain from this: a JSON document cut short
is still not valid JSON, and stays unreadable.
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from m2maudit.errors import GZIP_BROKEN
from m2maudit.sources.base import InputFile
from m2maudit.sources.discover import content_extension

CUT_LINE_REASON = f"{GZIP_BROKEN}: the data ends here, and what followed is lost"

_GZIP_MAGIC = b"\x1f\x8b"
_READ_BYTES = 1 << 20
# Output per decompression call: a few compressed bytes may expand a thousandfold.
_OUTPUT_BYTES = 4 << 20


def recover_whole_lines(file: InputFile) -> InputFile | None:
    """A temporary file of what `file`'s gzip data decompresses to, standing in for it under
    the same name; None when it holds no whole line or cannot be written.

    Data that breaks off keeps its whole lines, and the line it breaks off in is the
    stand-in's `cut_after_line` + 1. Data found corrupt keeps only the members before the
    broken one: gzip checks a member's data only at its end, so what the broken member
    gave may be garbage. Data that is whole (a gzip padded with zeros, which DuckDB's
    reader refuses) is kept whole. The caller removes the stand-in (it may hold raw tokens)
    with `remove_temporary`.
    """
    handle, name = tempfile.mkstemp(prefix="m2maudit-cut-", suffix=content_extension(file.path))
    spool = Path(name)
    kept: _Kept | None = None
    try:
        with open(file.path, "rb") as source, os.fdopen(handle, "wb") as sink:
            kept = _decompress_until_broken(source, sink)
            sink.truncate(kept.size)
    except OSError:
        kept = None
    finally:  # Ctrl-C too: the copy may hold raw tokens
        if kept is None or not kept.lines:
            spool.unlink(missing_ok=True)
    if kept is None or not kept.lines:
        return None
    return replace(
        file,
        path=spool,
        size=kept.size,
        compressed=False,
        temporary=True,
        cut_after_line=kept.lines if kept.broken else None,
    )


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
