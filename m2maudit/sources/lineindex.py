"""One pass over a file's bytes: its SHA-256 and a coarse index of where its lines are.

DuckDB's `read_json` is the fastest way to load JSON lines, but it skips blank lines without
saying so and tells a broken line only by a row of NULLs. Knowing how many lines the file has
lets the fast path number rows exactly (the n-th row is line n when nothing was skipped), and
the index lets it fetch the few broken lines again to say what is wrong with each.

The count is per 1 MiB block, so the index of a multi-gigabyte log is a few thousand
integers; fetching a line reads the block it starts in and what follows until its end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

BLOCK_BYTES = 1 << 20
_CHUNK_BYTES = 16 * BLOCK_BYTES
_NEWLINE = 10


@dataclass(frozen=True)
class LineIndex:
    """How many lines a file has and, per 1 MiB block, how many newlines before it."""

    path: Path
    size: int
    newlines_before_block: tuple[int, ...]
    newlines: int
    ends_with_newline: bool
    # The most consecutive whole blocks without a newline: a line of L bytes spans at least
    # L // BLOCK_BYTES - 1 of them, so this bounds the longest line from below and above.
    longest_blank_run: int = 0

    def may_have_line_over(self, limit: int) -> bool:
        """False when no line can be longer than `limit` bytes."""
        return self.longest_blank_run >= limit // BLOCK_BYTES - 1

    @property
    def lines(self) -> int:
        """Lines as a reader counts them: a last line without a newline still counts."""
        return self.newlines + (0 if self.ends_with_newline or self.size == 0 else 1)

    def read_lines(self, numbers: Iterable[int]) -> dict[int, bytes]:
        """The bytes of the given 1-based lines, without their line ending."""
        found: dict[int, bytes] = {}
        with self.path.open("rb") as handle:
            for number in sorted(set(numbers)):
                if 1 <= number <= self.lines:
                    found[number] = self._read_line(handle, number)
        return found

    def _read_line(self, handle: BinaryIO, number: int) -> bytes:
        start = self._line_start(handle, number)
        handle.seek(start)
        pieces = []
        while True:
            piece = handle.read(BLOCK_BYTES)
            end = piece.find(b"\n")
            if end >= 0 or not piece:
                pieces.append(piece if end < 0 else piece[:end])
                break
            pieces.append(piece)
        return b"".join(pieces).removesuffix(b"\r")

    def _line_start(self, handle: BinaryIO, number: int) -> int:
        """Byte offset where line `number` starts: just after newline number `number - 1`."""
        wanted = number - 1
        if wanted == 0:
            return 0
        block = int(np.searchsorted(self.newlines_before_block, wanted, side="left")) - 1
        handle.seek(block * BLOCK_BYTES)
        data = np.frombuffer(handle.read(BLOCK_BYTES), dtype=np.uint8)
        positions = np.flatnonzero(data == _NEWLINE)
        return (
            block * BLOCK_BYTES + int(positions[wanted - self.newlines_before_block[block] - 1]) + 1
        )


def digest_and_index(path: Path) -> tuple[str, LineIndex]:
    """SHA-256 of the file and its line index, reading it once in 16 MiB chunks."""
    digest = hashlib.sha256()
    before: list[int] = []
    newlines = size = run = longest_run = 0
    last = b""
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
            is_newline = np.frombuffer(chunk, dtype=np.uint8) == _NEWLINE
            for offset in range(0, len(chunk), BLOCK_BYTES):
                before.append(newlines)
                in_block = int(np.count_nonzero(is_newline[offset : offset + BLOCK_BYTES]))
                newlines += in_block
                run = 0 if in_block else run + 1
                longest_run = max(longest_run, run)
            size += len(chunk)
            last = chunk[-1:]
    index = LineIndex(path, size, tuple(before), newlines, last == b"\n", longest_run)
    return digest.hexdigest(), index


# A file at least this big is hashed and indexed on a thread while DuckDB reads it: hashing,
# reading and numpy's counting release the GIL, so the two overlap on separate cores.
BACKGROUND_BYTES = 64 * BLOCK_BYTES


class FileDigest:
    """A file's SHA-256 and, when it is not compressed, its line index: computed at once for
    a small file, on a thread for a big one (`result` waits for it)."""

    def __init__(self, path: Path, compressed: bool, size: int) -> None:
        self.in_background = size >= BACKGROUND_BYTES
        work = (lambda: (_sha256(path), None)) if compressed else (lambda: digest_and_index(path))
        self._future: Future[tuple[str, LineIndex | None]]
        if self.in_background:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2maudit-digest")
            self._future = executor.submit(work)
            executor.shutdown(wait=False)
        else:
            self._future = Future()
            try:
                self._future.set_result(work())
            except OSError as exc:
                self._future.set_exception(exc)

    def identity(self) -> str:
        return self._future.result()[0]

    def line_index(self) -> LineIndex | None:
        return self._future.result()[1]

    def wait(self) -> None:
        """Let a background digest finish (its error, if any, was or will be seen)."""
        self._future.exception()


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
