"""Finding the input files and sniffing their content, so format detection never trusts names.

A path may be a file, a directory (walked recursively), a glob, or `-` for standard input.
"""

from __future__ import annotations

import glob
import gzip
import json
import shutil
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from m2maudit.errors import InputError
from m2maudit.sources.base import InputFile, Kind, Layout, Sample

SAMPLE_BYTES = 256 * 1024
_FIRST_RECORD_LIMIT = 8 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
_SKIP_DIRS = {".git", "__pycache__", ".venv", "node_modules"}


def expand_inputs(
    paths: list[str], forced_kind: Kind | None = None, format_hint: str | None = None
) -> list[InputFile]:
    """Every file the user named, in a stable order; a name that matches nothing is an error."""
    found: list[InputFile] = []
    for raw in paths:
        if raw == "-":
            found.append(_stdin_file(forced_kind, format_hint))
            continue
        path = Path(raw).expanduser()
        if path.is_file():
            candidates = [path]
        elif path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(part in _SKIP_DIRS or part.startswith(".")
                                           for part in p.relative_to(path).parts)
            )
        elif glob.has_magic(raw):
            candidates = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file())
            if not candidates:
                raise InputError(raw, "no file matches this pattern")
        else:
            raise InputError(raw, "no such file or directory")
        found.extend(_input_file(p, forced_kind, format_hint) for p in candidates)
    return found


def _input_file(path: Path, forced_kind: Kind | None, format_hint: str | None) -> InputFile:
    try:
        with path.open("rb") as handle:
            magic = handle.read(2)
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(str(path), f"cannot read: {exc.strerror or exc}") from None
    return InputFile(
        path=path,
        display=str(path),
        size=size,
        compressed=magic == _GZIP_MAGIC,
        forced_kind=forced_kind,
        format_hint=format_hint,
    )


def _stdin_file(forced_kind: Kind | None, format_hint: str | None) -> InputFile:
    """DuckDB reads files, so standard input is spooled to a temporary file first."""
    spool = tempfile.NamedTemporaryFile(prefix="m2maudit-stdin-", delete=False)
    with spool:
        shutil.copyfileobj(sys.stdin.buffer, spool)
    path = Path(spool.name)
    stdin = _input_file(path, forced_kind, format_hint)
    return InputFile(path, "<stdin>", stdin.size, stdin.compressed, forced_kind, format_hint)


def read_head(file: InputFile, limit: int = SAMPLE_BYTES) -> bytes:
    try:
        if file.compressed:
            with gzip.open(file.path, "rb") as handle:
                return handle.read(limit)
        with file.path.open("rb") as handle:
            return handle.read(limit)
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise InputError(file.display, "truncated or corrupt gzip data") from None
    except OSError as exc:
        raise InputError(file.display, f"cannot read: {exc.strerror or exc}") from None


def sniff(file: InputFile) -> Sample:
    """Look at the head of a file: is it text, how are records laid out, what is the first one?"""
    if file.size == 0:
        raise InputError(file.display, "file is empty")
    head = read_head(file)
    if not head.strip():
        raise InputError(file.display, "file is empty")
    if b"\x00" in head:
        raise InputError(file.display, "not a text file (binary content)")
    text = _decode(head, file)
    extension = "".join(file.path.suffixes[-2:]).lower().removesuffix(".gz")
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("{"):
        return _sniff_object(file, stripped, extension)
    if stripped.startswith("["):
        first = _first_json_value(file, stripped[1:].lstrip())
        return Sample(text, "json_array", first if isinstance(first, dict) else None,
                      extension=extension)
    if extension in (".yaml", ".yml") or stripped.startswith(("---", "- ")):
        return _sniff_yaml(text, extension)
    first_line = stripped.splitlines()[0] if stripped else ""
    if "," in first_line or "\t" in first_line:
        header = tuple(cell.strip().strip('"').strip() for cell in first_line.split(","))
        return Sample(text, "csv", csv_header=header, extension=extension)
    if ":" in first_line:
        return _sniff_yaml(text, extension)
    return Sample(text, "unknown", extension=extension)


def _decode(head: bytes, file: InputFile) -> str:
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:  # the sample cut a multi-byte character in half
            return head[: exc.start].decode("utf-8")
        raise InputError(file.display, "not UTF-8 text") from None


def _sniff_object(file: InputFile, stripped: str, extension: str) -> Sample:
    first_line = stripped.split("\n", 1)[0]
    try:
        value = json.loads(first_line)
        if isinstance(value, dict):
            return Sample(stripped, "jsonl", value, extension=extension)
    except json.JSONDecodeError:
        pass
    first = _first_json_value(file, stripped)
    return Sample(stripped, "json_object", first if isinstance(first, dict) else None,
                  extension=extension)


def _first_json_value(file: InputFile, text: str) -> Any:
    """The first JSON value in `text`, reading further into the file if it is cut off."""
    decoder = json.JSONDecoder()
    try:
        return decoder.raw_decode(text)[0]
    except json.JSONDecodeError:
        pass
    if len(text) < SAMPLE_BYTES // 2:
        return None
    bigger = _decode(read_head(file, _FIRST_RECORD_LIMIT), file).lstrip("\ufeff \t\r\n")
    if bigger.startswith("["):
        bigger = bigger[1:].lstrip()
    try:
        return decoder.raw_decode(bigger)[0]
    except json.JSONDecodeError:
        return None


def _sniff_yaml(text: str, extension: str) -> Sample:
    import yaml

    try:
        # Only the head is parsed: cut at the last complete line, then at a list item.
        cut = text[: text.rfind("\n")] if "\n" in text else text
        value = yaml.safe_load(cut)
    except yaml.YAMLError:
        return Sample(text, "yaml" if extension in (".yaml", ".yml") else "unknown",
                      extension=extension)
    if isinstance(value, dict):
        for key in ("tokens", "credentials"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
    first = value[0] if isinstance(value, list) and value else None
    return Sample(text, "yaml", first if isinstance(first, dict) else None, extension=extension)
