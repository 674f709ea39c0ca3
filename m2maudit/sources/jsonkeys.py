"""The top-level keys of JSON-lines records, read from pieces of a file.

The fast read of a JSON-lines log (`fast_jsonl`) must name every key it reads before it
reads; these pieces are how it learns the keys beyond the first lines. Apart so that both
the read (which seeks to pieces of a plain file) and the line count (which passes every
byte of a file, gzipped or not, on its own thread) can take them.
"""

from __future__ import annotations

import json

# The lines at a file's start whose keys DuckDB finds for the fast read (`other_keys`).
FIRST_LINES_READ = 20_000


def refuse_json_constant(name: str) -> None:
    """NaN and Infinity are not JSON, though Python's parser takes them."""
    raise ValueError(name)


def keys_of_whole_lines(data: bytes, cut_at_start: bool, cut_at_end: bool) -> set[str]:
    """Keys of the JSON objects among the lines of `data`, but a line cut by its start or
    end (the file's last line, without a line break, is whole)."""
    lines = data.split(b"\n")
    keys: set[str] = set()
    for line in lines[int(cut_at_start) : len(lines) - int(cut_at_end)]:
        try:
            record = json.loads(line, parse_constant=refuse_json_constant)
        except (ValueError, RecursionError):  # the read itself says why, line by line
            continue
        if isinstance(record, dict):
            keys.update(record)
    return keys
