"""Mending text DuckDB refuses: bytes that are not UTF-8, and lone surrogate escapes.

One stray byte in a user agent, or a `\\ud800` that JavaScript's `JSON.stringify` or
Python's `json.dumps` writes for half an emoji, makes DuckDB refuse the record (a JSON line)
or the whole document (a CloudTrail object). The user agent is the caller's to write, so an
attacker could hide calls from the audit that way. Ingest reads such a file again from a
mended copy instead (`ingest.ingest_file`), with a warning saying what was replaced.

The copy keeps every line's length in bytes, so the line index of the original (the fast
read's line numbers and offsets) holds for it: a byte that is not UTF-8 becomes `?`, a lone
surrogate escape `\\ufffd` (six bytes for six). It is streamed in pieces that end at a line
break, never held whole.
"""

from __future__ import annotations

import codecs
import gzip
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from m2maudit.sources.base import InputFile

NOT_UTF8 = "not UTF-8 text"
LONE_SURROGATE = "not valid JSON (a lone surrogate escape, \\ud800-\\udfff without its pair)"
# The reasons a record is rejected for that a mended copy can read (a CSV row's, too).
MENDABLE = (NOT_UTF8, LONE_SURROGATE, "malformed CSV row: not UTF-8")

_HIGH = r"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# An escape (after an even run of backslashes, which are escaped backslashes) of a high
# surrogate without a low one after it, or of a low one without a high one before it.
_LONE = re.compile(rf"(?<!\\)((?:\\\\)*)(?:{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW})")
# A test for the SQL that judges lines (RE2: no look-around): any surrogate escape at all.
SURROGATE_ESCAPE_SQL = r"\\[uU][dD][89a-fA-F][0-9a-fA-F]{2}"

_PIECE = 16 << 20
_QUESTION = "m2maudit-question-mark"


def _question_marks(error: UnicodeError) -> tuple[str, int]:
    """A codec error handler: each byte that is not UTF-8 becomes one `?`."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return "?" * (error.end - error.start), error.end


codecs.register_error(_QUESTION, _question_marks)


@dataclass
class Mended:
    """A mended copy of a file (temporary: removed by the caller), and what was replaced."""

    file: InputFile
    bytes_not_utf8: int
    lone_surrogates: int

    def warning(self) -> str:
        parts = []
        if self.bytes_not_utf8:
            plural = "s" if self.bytes_not_utf8 != 1 else ""
            parts.append(f"{self.bytes_not_utf8} byte{plural} not UTF-8 read as '?'")
        if self.lone_surrogates:
            plural = "s" if self.lone_surrogates != 1 else ""
            parts.append(f"{self.lone_surrogates} lone surrogate escape{plural} read as U+FFFD")
        return ", ".join(parts) or "nothing to mend"


def mend(piece: bytes) -> tuple[bytes, int, int]:
    """`piece` mended, with the bytes not UTF-8 and the lone surrogate escapes it held."""
    text = piece.decode("utf-8", errors=_QUESTION)
    not_utf8 = len(piece) - len(piece.decode("utf-8", errors="ignore").encode("utf-8"))
    mended, lone = _LONE.subn(lambda match: match.group(1) + "\\ufffd", text)
    return mended.encode("utf-8"), not_utf8, lone


def _whole_lines(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """The file in pieces of about `_PIECE` bytes that end at a line break (so no character
    or escape is cut), but for a line over four pieces long, given as it comes."""
    buffer = b""
    while piece := read(_PIECE):
        buffer += piece
        cut = buffer.rfind(b"\n") + 1
        if not cut and len(buffer) < 4 * _PIECE:
            continue
        cut = cut or len(buffer)
        yield buffer[:cut]
        buffer = buffer[cut:]
    yield buffer


def mended_copy(file: InputFile) -> Mended | None:
    """A temporary, uncompressed copy of `file` mended; None when it cannot be read or holds
    nothing to mend (the records DuckDB refused are broken some other way)."""
    spool = tempfile.NamedTemporaryFile(prefix="m2maudit-mended-", delete=False)  # noqa: SIM115
    path = Path(spool.name)
    not_utf8 = lone = 0
    try:
        with spool, (gzip.open if file.compressed else open)(file.path, "rb") as handle:
            for lines in _whole_lines(handle.read):
                written, bad, lone_here = mend(lines)
                spool.write(written)
                not_utf8, lone = not_utf8 + bad, lone + lone_here
    except (OSError, EOFError, zlib.error):
        path.unlink(missing_ok=True)
        return None
    if not (not_utf8 or lone):
        path.unlink(missing_ok=True)
        return None
    copy = replace(file, path=path, size=path.stat().st_size, compressed=False, temporary=True)
    return Mended(copy, not_utf8, lone)
