"""Finding the input files and sniffing their content, so format detection never trusts names.

A path may be a file, a directory (walked recursively), a glob, or `-` for standard input.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import gzip
import json
import os
import re
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from m2maudit.errors import BrokenGzip, InputError, NothingToAudit, yaml_problem
from m2maudit.secrets import redact_secrets
from m2maudit.sources.base import InputFile, Kind, Sample
from m2maudit.sources.staging import inventory_rows, json_error_line

SAMPLE_BYTES = 256 * 1024
# DuckDB's CSV reader stops the whole process (a floating-point exception) on a file of about
# 8 190 columns; no log or inventory has a thousand.
MAX_CSV_COLUMNS = 4096
_FIRST_RECORD_LIMIT = 8 * 1024 * 1024
_SKIP_LIMIT = 256 * 1024 * 1024  # how far to look past an over-long first line for the next
_GZIP_MAGIC = b"\x1f\x8b"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules"}
_CSV_DELIMITERS = (",", "\t", ";", "|")
_WHITESPACE = "\ufeff \t\r\n"

# How standard input (`-`) is named in reports: no file of that name is read.
STDIN_DISPLAY = "<stdin>"


def expand_inputs(
    paths: list[str],
    forced_kind: Kind | None = None,
    format_hint: str | None = None,
    exclude: Sequence[str] = (),
) -> list[InputFile]:
    """Every file the user named, in a stable order, each once; a name that matches nothing
    is an error. `exclude`: globs that leave out files a directory's walk or a pattern finds
    (`_excluded`); a file named by its own path is read whatever they say.

    Once: a file named twice, reached through a pattern and a directory, or through a
    symbolic link is one file, not several counted as duplicates of each other. It keeps
    the least of its names, whatever order they came in. Neither a directory's walk nor a
    `**` pattern follows a link to a directory (`_matches`).
    """
    found: list[InputFile] = []
    place: dict[str, int] = {}  # a file's real path -> where it is in `found`
    for raw in paths:
        if raw == "-":
            found.append(_stdin_file(forced_kind, format_hint))
            continue
        path = Path(raw).expanduser()
        if path.is_fifo():  # `scan <(zcat logs/*.gz)`, or a named pipe: read as stdin is
            found.append(_spooled(path, str(path), forced_kind, format_hint))
            continue
        named = path.is_file()  # not found in a directory or by a pattern
        if named:
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if _a_file(p)
                and not any(
                    part in _SKIP_DIRS or part.startswith(".") for part in p.relative_to(path).parts
                )
            )
            if not candidates:
                raise InputError(raw, "directory holds no files")
            candidates = [p for p in candidates if not _excluded(p.relative_to(path), exclude)]
        elif glob.has_magic(raw):
            candidates = sorted(p for p in _matches(path) if _a_file(p))
            if not candidates:
                raise InputError(raw, "no file matches this pattern")
            candidates = [p for p in candidates if not _excluded(p, exclude)]
        else:
            raise InputError(raw, "no such file or directory")
        if not candidates:
            raise InputError(raw, "every file found here is left out by --exclude")
        for candidate in candidates:
            real = _real_path(candidate)
            if real not in place:
                place[real] = len(found)
                found.append(_input_file(candidate, forced_kind, format_hint, named))
            elif str(candidate) < found[place[real]].display:  # a lesser name of it
                found[place[real]] = _input_file(candidate, forced_kind, format_hint, named)
    return found


def _excluded(found: Path, exclude: Sequence[str]) -> bool:
    """Whether a found file's name, or its path below the directory given (as found, for a
    pattern), matches one of the `--exclude` globs (`fnmatch`: `*` crosses `/`)."""
    return any(
        fnmatch.fnmatchcase(found.name, glob_) or fnmatch.fnmatchcase(found.as_posix(), glob_)
        for glob_ in exclude
    )


def _matches(pattern: Path) -> Iterator[Path]:
    """The paths a pattern matches, `**` through directories but not through symbolic links
    to them: `glob.glob` follows each link round a loop to the system's limit, and with two
    loops in one tree that is 2^40 paths. Hidden names match only a pattern that starts them
    with a dot, as in the shell."""
    parts = pattern.parts
    first_magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root = Path(*parts[:first_magic]) if first_magic else Path()
    rest = parts[first_magic:]
    for match in root.glob(str(Path(*rest))):
        hidden = any(name.startswith(".") for name in match.relative_to(root).parts)
        if not hidden or any(part.startswith(".") for part in rest):
            yield match


def _real_path(path: Path) -> str:
    """The file a path leads to; a broken link is itself (two that point to the same
    missing file are each named unreadable)."""
    return os.path.realpath(path) if path.exists() else os.path.abspath(path)


def _a_file(path: Path) -> bool:
    """A file to read, or a broken symbolic link: one that points nowhere is named as
    unreadable rather than passed over without a word."""
    return path.is_file() or (path.is_symlink() and not path.exists())


def _input_file(
    path: Path, forced_kind: Kind | None, format_hint: str | None, named: bool = True
) -> InputFile:
    """A file that cannot be opened is still an input: ingest names it as unreadable and
    goes on with the others (one file with the wrong mode must not hide the rest)."""
    unreadable = None
    try:
        with path.open("rb") as handle:
            magic = handle.read(2)
        size = path.stat().st_size
    except OSError as exc:
        magic, size, unreadable = b"", 0, f"cannot read: {exc.strerror or exc}"
    return InputFile(
        path=path,
        # Reports, the store and errors name the file: a secret in its name (a log saved
        # under its presigned URL, `...?X-Amz-Security-Token=...`) is cut out of that name.
        display=redact_secrets(str(path)),
        size=size,
        compressed=magic == _GZIP_MAGIC,
        forced_kind=forced_kind,
        format_hint=format_hint,
        named=named,
        unreadable=unreadable,
    )


def _stdin_file(forced_kind: Kind | None, format_hint: str | None) -> InputFile:
    """DuckDB reads files, so standard input is spooled to a temporary file first."""
    return _spooled(None, STDIN_DISPLAY, forced_kind, format_hint)


def _spooled(
    pipe: Path | None, display: str, forced_kind: Kind | None, format_hint: str | None
) -> InputFile:
    """A pipe (`pipe`, else standard input) copied to a temporary file, for DuckDB reads
    files and a pipe can be read once. The spool may hold raw tokens: it is marked
    `temporary` so ingest removes it when done."""
    spool = tempfile.NamedTemporaryFile(prefix="m2maudit-stdin-", delete=False)  # noqa: SIM115
    try:
        with spool:
            if pipe is None:
                shutil.copyfileobj(sys.stdin.buffer, spool)
            else:
                with pipe.open("rb") as source:
                    shutil.copyfileobj(source, spool)
        path = Path(spool.name)
        spooled = _input_file(path, forced_kind, format_hint)
    except OSError as exc:
        Path(spool.name).unlink(missing_ok=True)
        raise InputError(display, f"cannot read: {exc.strerror or exc}") from None
    except BaseException:
        Path(spool.name).unlink(missing_ok=True)
        raise
    return InputFile(
        path, display, spooled.size, spooled.compressed, forced_kind, format_hint, temporary=True
    )


def remove_temporary(files: list[InputFile]) -> None:
    """Delete the stdin spools and stand-ins among `files` (they may hold raw tokens)."""
    for file in files:
        if file.temporary:
            file.path.unlink(missing_ok=True)


def read_head(file: InputFile, limit: int = SAMPLE_BYTES, offset: int = 0) -> bytes:
    """Up to `limit` bytes of the (decompressed) content, from `offset`."""
    try:
        opener = gzip.open if file.compressed else open
        with opener(file.path, "rb") as handle:
            if offset:
                handle.seek(offset)
            data: bytes = handle.read(limit)
            return data
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise BrokenGzip(file.display) from None
    except OSError as exc:
        raise InputError(file.display, f"cannot read: {exc.strerror or exc}") from None


def _looks_binary(head: bytes) -> bool:
    """NUL bytes in the first 512 bytes (a zip, an image, an executable, UTF-16 without
    its BOM), or more than one a KiB (any, in a file under 1 KiB). A NUL in a text log is a
    broken line, rejected as such; it must not lose the file's others, not even when it is
    in the first lines (a security review hid a log's leaked tokens so): a head of whole
    lines, at most a quarter of them with a NUL, is text. Binary data has a NUL in most of
    its "lines", UTF-16 in all of them."""
    nuls = head.count(b"\x00")
    if not nuls:
        return False
    whole_lines = head.split(b"\n")[:-1]
    with_nul = sum(b"\x00" in line for line in whole_lines)
    if len(whole_lines) >= 3 and with_nul * 4 <= len(whole_lines) and nuls <= len(whole_lines):
        return False
    return b"\x00" in head[:512] or nuls > len(head) // 1024


def sniff(file: InputFile) -> Sample:
    """Look at the head of a file: is it text, how are records laid out, what is the first one?"""
    if file.unreadable:
        raise InputError(file.display, file.unreadable)
    # An empty file (log rotation leaves them) holds nothing to audit; it is not unreadable.
    if file.size == 0:
        raise NothingToAudit(file.display, "file is empty")
    head = read_head(file)
    if not head.strip():
        if len(head) < SAMPLE_BYTES:  # the whole file was read: blank through and through
            raise NothingToAudit(file.display, "file is empty")
        blank = f"its first {SAMPLE_BYTES // 1024} KiB are blank"
        raise InputError(file.display, f"{blank}; cannot tell the format")
    if head.startswith(_UTF16_BOMS):
        raise InputError(file.display, "UTF-16 text; convert it to UTF-8 (e.g. iconv -f UTF-16)")
    if _looks_binary(head):
        raise InputError(file.display, "not a text file (binary content)")
    text = _decode(head, file)
    extension = file.content_extension
    stripped = text.lstrip(_WHITESPACE)
    try:
        sample = _sniff_text(file, text, stripped, extension)
    except RecursionError:  # a JSON value nested thousands deep
        raise InputError(file.display, "JSON nested too deeply to read") from None
    several = "\n" in sample.text.strip(_WHITESPACE)
    return replace(sample, whole=len(head) < SAMPLE_BYTES, several_lines=several)


def _sniff_text(file: InputFile, text: str, stripped: str, extension: str) -> Sample:
    if stripped.startswith("{"):
        return _sniff_object(file, stripped, extension)
    second = _object_after_first_line(stripped)
    if second is not None:  # JSON lines under a line that is none: `# exported by ...`, `42`
        return Sample(stripped, "jsonl", second, extension=extension)
    if stripped.startswith("["):
        inside = stripped[1:].lstrip()
        first = _first_json_value(file, inside)
        return Sample(
            text,
            "json_array",
            first if isinstance(first, dict) else None,
            extension=extension,
            unread_first=None if first is not None or inside.startswith("]") else _UNREAD,
        )
    if extension in (".yaml", ".yml") or stripped.startswith(("---", "- ")):
        return _sniff_yaml(text, extension)
    first_line = stripped.splitlines()[0] if stripped else ""
    delimiter = max(_CSV_DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) >= MAX_CSV_COLUMNS:
        raise InputError(
            file.display,
            f"a CSV header of {first_line.count(delimiter) + 1} columns, over the limit of "
            f"{MAX_CSV_COLUMNS}",
        )
    # A `.csv` of one column has no delimiter: an inventory of ids alone (`token_id`).
    if first_line.count(delimiter) or (extension == ".csv" and _one_word(first_line)):
        return Sample(
            text,
            "csv",
            csv_header=_csv_header(first_line, delimiter),
            extension=extension,
            csv_delimiter=delimiter,
        )
    if ":" in first_line:
        return _sniff_yaml(text, extension)
    return Sample(text, "unknown", extension=extension)


def _one_word(line: str) -> bool:
    """A line that can be a one-column CSV header: one name, no spaces."""
    return bool(re.fullmatch(r"\s*[\w.\-\"]+\s*", line))


def _csv_header(line: str, delimiter: str) -> tuple[str, ...]:
    cells = next(csv.reader([line], delimiter=delimiter), [])
    return tuple(cell.strip() for cell in cells)


def _decode(head: bytes, file: InputFile) -> str:
    """The head as text. A few bad bytes are the reader's business (those lines are rejected);
    a head that is mostly not UTF-8 means the file is in another encoding."""
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The sample cut a multi-byte character in half. (A bad byte near the end of a
        # one-line file is no cut: the line would be lost, and the file with it.)
        if exc.reason == "unexpected end of data":
            try:
                return head[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                pass
    lines = head.splitlines()
    bad = sum(1 for line in lines if not _is_utf8(line))
    text = head.decode("utf-8", errors="replace")
    # Most lines, and more than a byte in a hundred: one stray byte in a one-line CloudTrail
    # object, or in a short one-line log, is the reader's business (it replaces it), not
    # another encoding.
    replaced = text.count("\ufffd")
    if bad * 2 > len(lines) and replaced > 1 and replaced * 100 > len(text):
        raise InputError(file.display, "not UTF-8 text (convert it, e.g. iconv -t UTF-8)")
    return text


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _sniff_object(file: InputFile, stripped: str, extension: str) -> Sample:
    """JSON lines, or one JSON document (pretty-printed, or one CloudTrail file, say)?"""
    first_line = stripped.split("\n", 1)[0]
    value = _loads(first_line)
    if isinstance(value, dict):
        return Sample(stripped, "jsonl", value, extension=extension)
    try:
        document, end = _raw_decode_end(stripped)
    except RecursionError:  # a deep first line of JSON lines is read by DuckDB; see below
        document, end = None, 0
    if document is not None and end > len(first_line):  # one value over several lines
        return Sample(
            stripped,
            "json_object",
            document if isinstance(document, dict) else None,
            extension=extension,
        )
    later = _later_object_line(file, stripped)
    if later is not None:  # a broken or over-long first line in a JSON lines file
        return Sample(stripped, "jsonl", later, extension=extension)
    first = _first_json_value(file, stripped)
    return Sample(
        stripped,
        "json_object",
        first if isinstance(first, dict) else None,
        extension=extension,
        # An adapter may still know the document by its head (CloudTrail).
        unread_first=_UNREAD if first is None else None,
    )


_UNREAD = (
    f"the first JSON record is not valid JSON or is over {_FIRST_RECORD_LIMIT // (1 << 20)} MiB"
)


def unread_reason(file: InputFile, sample: Sample) -> str | None:
    """Why no format claimed a file whose first record could not be read, with the line of
    its first JSON error when the file is small enough to parse again. Only asked then: a
    big CloudTrail file that loads must not be parsed in Python first."""
    if sample.unread_first and sample.layout in ("json_object", "json_array"):
        line = json_error_line(file)
        if line is not None:
            return f"line {line}: not valid JSON"
    return sample.unread_first


def _loads(text: str) -> Any:
    """The JSON value `text` holds; None when it is not JSON, or nested deeper than Python's
    parser goes (DuckDB, which reads the records, takes any depth: such a line is read
    there, and the sample is taken from another)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _raw_decode(text: str) -> Any:
    return _raw_decode_end(text)[0]


def _raw_decode_end(text: str) -> tuple[Any, int]:
    """The first JSON value in `text` and where it ends; `(None, 0)` if there is none."""
    try:
        return json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError:
        return None, 0


def _object_after_first_line(stripped: str) -> dict[str, Any] | None:
    """The second line, when it is a whole JSON object starting in column one: a JSON-lines
    file whose first line is not one (a comment a shipper wrote, a stray value) is still
    JSON lines, and that line alone is rejected. Only the second line is looked at: CSV and
    YAML do not start a line with a JSON object."""
    lines = stripped.split("\n", 2)
    return _object_line(lines[1]) if len(lines) > 1 else None


def _object_line(line: str) -> dict[str, Any] | None:
    """The record a line holds when it is a whole JSON object starting in column one."""
    if not line.startswith("{"):
        return None
    value = _loads(line)
    return value if isinstance(value, dict) else None


def _later_object_line(file: InputFile, stripped: str) -> dict[str, Any] | None:
    """The first later line that is a whole JSON object starting in column one.

    Indented objects are left alone: they are parts of a pretty-printed document. When the
    first line fills the sample, the file is scanned (not kept) to the line after it.
    """
    lines = stripped.split("\n")
    if len(lines) == 1:
        lines = _lines_after_first(file)
    records = (_object_line(line) for line in lines[1:])
    return next((record for record in records if record is not None), None)


def _lines_after_first(file: InputFile) -> list[str]:
    """The lines following an over-long first line, as `["", line2, line3, ...]`.

    One sequential pass (a gzip stream cannot seek cheaply), keeping only the current chunk.
    """
    try:
        opener = gzip.open if file.compressed else open
        with opener(file.path, "rb") as handle:
            scanned = 0
            while scanned < _SKIP_LIMIT:
                chunk: bytes = handle.read(1024 * 1024)
                if not chunk:
                    return []
                newline = chunk.find(b"\n")
                if newline >= 0:
                    rest = chunk[newline + 1 :] + handle.read(SAMPLE_BYTES)
                    return ["", *rest.decode("utf-8", errors="replace").split("\n")]
                scanned += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise BrokenGzip(file.display) from None
    except OSError as exc:
        raise InputError(file.display, f"cannot read: {exc.strerror or exc}") from None
    return []


def _first_json_value(file: InputFile, text: str) -> Any:
    """The first JSON value in `text`, reading further into the file if it is cut off."""
    value = _raw_decode(text)
    if value is not None or len(text) < SAMPLE_BYTES // 2:
        return value
    bigger = _decode(read_head(file, _FIRST_RECORD_LIMIT), file).lstrip(_WHITESPACE)
    if bigger.startswith("["):
        bigger = bigger[1:].lstrip()
    return _raw_decode(bigger)


def _sniff_yaml(text: str, extension: str) -> Sample:
    import yaml

    from m2maudit.yamlsafe import load_yaml

    try:
        # Only the head is parsed: cut at the last complete line, then at a list item. Only the
        # first record's keys are looked at, and each record is judged when staged (a key
        # given twice, an alias bomb: that record rejected, not the file).
        cut = text[: text.rfind("\n")] if "\n" in text else text
        value = load_yaml(cut, judged=False)
    except yaml.YAMLError as exc:
        if extension not in (".yaml", ".yml"):
            return Sample(text, "unknown", extension=extension)
        reason, line = yaml_problem(exc)
        where = f"line {line}: " if line is not None else ""
        return Sample(text, "yaml", extension=extension, unread_first=where + reason)
    value = inventory_rows(value)
    first = value[0] if isinstance(value, list) and value else None
    return Sample(text, "yaml", first if isinstance(first, dict) else None, extension=extension)
