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
from m2maudit.wording import counted

NOT_UTF8 = "not UTF-8 text"
LONE_SURROGATE = "not valid JSON (a lone surrogate escape, \\ud800-\\udfff without its pair)"
# The reasons a record is rejected for that a mended copy can read (a CSV row's, too), as a
# test of an `ingest_errors` or staging reject row.
MENDABLE = (NOT_UTF8, LONE_SURROGATE, "malformed CSV row: not UTF-8")
MENDABLE_REASON_SQL = "reason IN (" + ", ".join(f"'{reason}'" for reason in MENDABLE) + ")"

_HIGH = r"\\u[dD][89abAB][0-9a-fA-F]{2}"
_LOW = r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
# An escape (after an even run of backslashes, which are escaped backslashes) of a high
# surrogate without a low one after it, or of a low one without a high one before it.
_LONE = re.compile(rf"(?<!\\)((?:\\\\)*)(?:{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW})")
# Any surrogate escape at all, for RE2 (no look-around): see `not_json_reason_sql`.
_SURROGATE_ESCAPE_SQL = r"\\[uU][dD][89a-fA-F][0-9a-fA-F]{2}"


def not_json_reason_sql(text: str) -> str:
    """SQL: why a line or record `text` that does not parse is rejected: `LONE_SURROGATE`
    when it holds a surrogate escape (for ingest to read the file again mended; a copy with
    nothing to mend is not read), else `not valid JSON`."""
    return (
        f"CASE WHEN regexp_matches({text}, '{_SURROGATE_ESCAPE_SQL}') THEN '{LONE_SURROGATE}' "
        "ELSE 'not valid JSON' END"
    )


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
            parts.append(f"{counted(self.bytes_not_utf8, 'byte')} not UTF-8 read as '?'")
        if self.lone_surrogates:
            escapes = counted(self.lone_surrogates, "lone surrogate escape")
            parts.append(f"{escapes} read as U+FFFD")
        return ", ".join(parts)


def mend(piece: bytes) -> tuple[bytes, int, int]:
    """`piece` mended, with the bytes not UTF-8 and the lone surrogate escapes it held."""
    text = piece.decode("utf-8", errors=_QUESTION)
    not_utf8 = text.count("?") - piece.count(b"?")  # a `?` each
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
