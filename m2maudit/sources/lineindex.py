"""One pass over a file's bytes: its SHA-256 and a coarse index of where its lines are.

DuckDB's `read_json` is the fastest way to load JSON lines, but it skips blank lines without
saying so and tells a broken line only by a row of NULLs. Knowing how many lines the file has
lets the fast path number rows exactly (the n-th row is line n when nothing was skipped), and
the index lets it fetch the few broken lines again to say what is wrong with each.

The count is per 1 MiB block, so the index of a multi-gigabyte log is a few thousand
integers; fetching a line reads the block it starts in and what follows until its end. A
gzipped file is indexed as its decompressed text (DuckDB reads it single-threaded, so
decompressing it a second time in Python runs on the otherwise idle core); its lines are
fetched in one forward pass.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from m2maudit.sources.jsonkeys import FIRST_LINES_READ, keys_of_whole_lines

BLOCK_BYTES = 1 << 20
_CHUNK_BYTES = 16 * BLOCK_BYTES
_NEWLINE = 10
_TAIL_BYTES = 64 * 1024


@dataclass(frozen=True)
class LineIndex:
    """How many lines a file has and, per 1 MiB block, how many newlines before it."""

    path: Path
    size: int  # of the text: decompressed, for a gzipped file
    newlines_before_block: tuple[int, ...]
    newlines: int
    ends_with_newline: bool
    # The most consecutive whole blocks without a newline: a line of L bytes spans at least
    # L // BLOCK_BYTES - 1 of them, so this bounds the longest line from below and above.
    longest_blank_run: int = 0
    compressed: bool = False
    # For a gzipped file: where decompression can resume, every few MiB of text.
    checkpoints: tuple[_Checkpoint, ...] = ()
    # Empty or white-space lines after the last line with content (a log ending in "\n\n").
    trailing_blank_lines: int = 0
    # Top-level keys of the records in pieces spread over the file (`_KeySampler`): the fast
    # read learns from them keys that first appear after the lines it looks at first.
    sampled_keys: frozenset[str] = frozenset()

    def may_have_line_over(self, limit: int) -> bool:
        """False when no line can be longer than `limit` bytes."""
        return self.longest_blank_run >= limit // BLOCK_BYTES - 1

    @property
    def lines(self) -> int:
        """Lines as a reader counts them: a last line without a newline still counts."""
        return self.newlines + (0 if self.ends_with_newline or self.size == 0 else 1)

    def read_lines(self, numbers: Iterable[int]) -> dict[int, bytes]:
        """The bytes of the given 1-based lines, without their line ending."""
        wanted = sorted({n for n in numbers if 1 <= n <= self.lines})
        if self.compressed:
            return self._read_compressed_lines(wanted)
        found: dict[int, bytes] = {}
        with self.path.open("rb") as handle:
            for number in wanted:
                found[number] = self._read_line(handle, number)
        return found

    def _read_compressed_lines(self, wanted: list[int]) -> dict[int, bytes]:
        """Each run of wanted lines is read from the last checkpoint before it, so a few
        broken lines cost a few MiB of decompression each, not the whole file."""
        found: dict[int, bytes] = {}
        runs: dict[int, list[int]] = {}
        starts = [point.newlines for point in self.checkpoints]
        for number in wanted:
            # The last checkpoint inside an earlier line: the stream from it starts in the
            # middle of line `newlines + 1`, which must come before the wanted one.
            at = int(np.searchsorted(starts, number - 1, side="left")) - 1
            runs.setdefault(at, []).append(number)
        for at, numbers in runs.items():
            point = self.checkpoints[at] if at >= 0 else _Checkpoint(0, 0, None)
            pieces = _gzip_text(self.path, point)
            found.update(_lines_in_stream(pieces, numbers, first_line=point.newlines + 1))
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


class DigestCancelled(Exception):
    """The run is being interrupted: stop reading the file."""


def _go_on(cancelled: threading.Event | None) -> None:
    if cancelled is not None and cancelled.is_set():
        raise DigestCancelled


def digest_and_index(
    path: Path,
    compressed: bool = False,
    hash_content: bool = True,
    cancelled: threading.Event | None = None,
    for_fast_read: bool = True,
) -> tuple[str | None, LineIndex | None]:
    """SHA-256 of the file's bytes (None without `hash_content`) and the index of its
    (decompressed) lines, in one read; `cancelled` stops it between chunks.

    The index is None for a gzip stream that ends early or is corrupt: the careful path
    reports that. `for_fast_read`: the fast JSON-lines read will use the index, so it keeps
    where decompression can resume (to read a few lines again, `read_lines`; ~50 KB a
    checkpoint) and the keys of pieces past the first lines (`sampled_keys`). A count of
    lines alone, or a gzip check, needs neither.
    """
    digest = hashlib.sha256() if hash_content else None
    counter = _Counter()
    checkpoints: list[_Checkpoint] | None = [] if for_fast_read else None
    keys = _KeySampler(path.stat().st_size if for_fast_read else 0)
    try:
        if compressed:
            for raw, text in _gzip_pieces(path, _Checkpoint(0, 0, None), checkpoints, counter):
                _go_on(cancelled)
                if digest:
                    digest.update(raw)
                keys.add(text, len(raw), counter.newlines)
                counter.add(text)
        else:
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK_BYTES):
                    _go_on(cancelled)
                    if digest:
                        digest.update(chunk)
                    keys.add(chunk, len(chunk), counter.newlines)
                    counter.add(chunk)
    except (zlib.error, EOFError):
        return (file_sha256(path, cancelled) if hash_content else None), None
    counter.finish()
    if for_fast_read:
        keys.add_tail(counter.tail)
    index = LineIndex(
        path,
        counter.size,
        tuple(counter.before),
        counter.newlines,
        counter.last == b"\n",
        counter.longest_run,
        compressed,
        tuple(checkpoints or ()),
        counter.trailing_blank_lines(),
        frozenset(keys.found),
    )
    return (digest.hexdigest() if digest else None), index


# How many pieces of a file, and how big, the line count reads the keys of (a JSON-lines
# log): at most 4 MiB parsed in Python, and none for a file of fewer lines than the fast
# read looks at first anyway.
KEY_SAMPLE_PIECES = 32
KEY_SAMPLE_BYTES = 128 * 1024


class _KeySampler:
    """The keys of the whole lines in `KEY_SAMPLE_PIECES` pieces spread evenly over a file
    of `size` bytes (0: none), and in its last lines. A gzip file's pieces are spread over
    its compressed bytes, each taken from the text they decompress to. Pieces within the
    first `FIRST_LINES_READ` lines are passed over: DuckDB's own look covers those."""

    def __init__(self, size: int) -> None:
        self.found: set[str] = set()
        self.step = size // KEY_SAMPLE_PIECES if size else 0
        self.read = 0  # bytes of the file so far
        self.next_at = self.step

    def add(self, text: bytes, raw_bytes: int, lines_before: int) -> None:
        """`text` is what the file's next `raw_bytes` bytes hold; `lines_before` the lines
        of the text before it."""
        end = self.read + raw_bytes
        while self.step and self.next_at < end:
            start = (self.next_at - self.read) * len(text) // max(raw_bytes, 1)
            if lines_before + text.count(b"\n", 0, start) >= FIRST_LINES_READ:
                piece = text[start : start + KEY_SAMPLE_BYTES]
                self.found |= keys_of_whole_lines(piece, cut_at_start=True, cut_at_end=True)
            self.next_at += self.step
        self.read = end

    def add_tail(self, tail: bytes) -> None:
        """The file's last bytes: a key a deploy added an hour before the file ended."""
        self.found |= keys_of_whole_lines(tail, cut_at_start=True, cut_at_end=False)


def file_sha256(path: Path, cancelled: threading.Event | None = None) -> str:
    """SHA-256 of a file's bytes; `cancelled` stops it between chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            _go_on(cancelled)
            digest.update(chunk)
    return digest.hexdigest()


_GZIP_CHUNK_BYTES = 2 * BLOCK_BYTES  # ~10 MiB of text a piece
_CHECKPOINT_TEXT_BYTES = 8 * BLOCK_BYTES


@dataclass(frozen=True)
class _Checkpoint:
    raw_offset: int  # in the gzip file
    newlines: int  # in the text before this point
    inflate: Any  # a copy of the decompressor there (None: the start of the file)


def _gzip_pieces(
    path: Path,
    start: _Checkpoint,
    checkpoints: list[_Checkpoint] | None = None,
    counter: _Counter | None = None,
) -> Iterator[tuple[bytes, bytes]]:
    """(compressed chunk, its text) from `start` on; a gzip file may hold several members.

    With `checkpoints` and the `counter` the caller feeds, a checkpoint is kept every
    `_CHECKPOINT_TEXT_BYTES` of text (a decompressor copy is about 50 KB).
    """
    inflate = start.inflate.copy() if start.inflate else zlib.decompressobj(wbits=31)
    offset, next_checkpoint = start.raw_offset, _CHECKPOINT_TEXT_BYTES
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(_GZIP_CHUNK_BYTES):
            offset += len(chunk)
            text = inflate.decompress(chunk)
            while inflate.eof and inflate.unused_data:
                rest = inflate.unused_data
                inflate = zlib.decompressobj(wbits=31)
                text += inflate.decompress(rest)
            yield chunk, text
            if checkpoints is None or counter is None or inflate.eof:
                continue
            if counter.size >= next_checkpoint:
                checkpoints.append(_Checkpoint(offset, counter.newlines, inflate.copy()))
                next_checkpoint = counter.size + _CHECKPOINT_TEXT_BYTES
    if not inflate.eof:
        raise EOFError("gzip stream ends early")


def _gzip_text(path: Path, start: _Checkpoint) -> Iterator[bytes]:
    for _raw, text in _gzip_pieces(path, start):
        yield text


class _Counter:
    """Newlines per 1 MiB block of a stream that arrives in pieces of any size."""

    def __init__(self) -> None:
        self.before: list[int] = []
        self.newlines = self.size = self.in_block = self.run = self.longest_run = 0
        self.last = b""
        self.tail = b""  # the last bytes of the text, to find its trailing blank lines

    def add(self, data: bytes) -> None:
        if not data:
            return
        is_newline = np.frombuffer(data, dtype=np.uint8) == _NEWLINE
        offset = 0
        while offset < len(data):
            if self.size % BLOCK_BYTES == 0:
                self.before.append(self.newlines)
            take = min(BLOCK_BYTES - self.size % BLOCK_BYTES, len(data) - offset)
            count = int(np.count_nonzero(is_newline[offset : offset + take]))
            self.newlines += count
            self.in_block += count
            self.size += take
            offset += take
            if self.size % BLOCK_BYTES == 0:
                self._close_block()
        self.last = data[-1:]
        self.tail = (
            data[-_TAIL_BYTES:] if len(data) >= _TAIL_BYTES else (self.tail + data)[-_TAIL_BYTES:]
        )

    def trailing_blank_lines(self) -> int:
        """Lines after the last one with content (0 when the tail is too blank to tell)."""
        content = self.tail.rstrip(b" \t\r\n")
        if not content and self.size > len(self.tail):
            return 0
        lines = self.newlines + (0 if self.last == b"\n" or self.size == 0 else 1)
        if not content:
            return lines  # nothing but white space
        after = self.tail[len(content) :].count(b"\n")
        return lines - (self.newlines - after + 1)

    def finish(self) -> None:
        if self.size % BLOCK_BYTES:
            self._close_block()

    def _close_block(self) -> None:
        self.run = 0 if self.in_block else self.run + 1
        self.longest_run = max(self.longest_run, self.run)
        self.in_block = 0


def _lines_in_stream(
    pieces: Iterable[bytes], wanted: list[int], first_line: int = 1
) -> dict[int, bytes]:
    """The wanted lines (sorted), found in one forward pass over text that starts inside
    (or at the beginning of) line `first_line`; every wanted line must start later, unless
    it is line 1 at the start of the file."""
    found: dict[int, bytes] = {}
    targets = iter(wanted)
    target = next(targets, None)
    line = first_line  # the line the current piece starts in
    partial: list[bytes] = []  # the start of `target`, when it began in an earlier piece
    for piece in pieces:
        if target is None:
            break
        ends = np.flatnonzero(np.frombuffer(piece, dtype=np.uint8) == _NEWLINE)
        last_line = line + len(ends)  # the line the piece ends in (maybe unfinished)
        while target is not None and target <= last_line:
            k = target - line
            start = 0 if k == 0 else int(ends[k - 1]) + 1
            if k == len(ends):  # runs on into the next piece
                partial.append(piece[start:])
                break
            partial.append(piece[start : int(ends[k])])
            found[target] = b"".join(partial).removesuffix(b"\r")
            partial = []
            target = next(targets, None)
        line = last_line
    if target is not None and partial:
        found[target] = b"".join(partial).removesuffix(b"\r")
    return found


# A file at least this big is hashed and indexed on a thread while DuckDB reads it: hashing,
# reading and numpy's counting release the GIL, so the two overlap on separate cores.
BACKGROUND_BYTES = 64 * BLOCK_BYTES
# A gzip file decompresses to several times its size, so it goes to the thread sooner when it
# is decompressed: 8 MiB of gzip is ~60 MiB of text, a second of zlib.
GZIP_RATIO = 8
# The identity of a file not hashed: a prefix no SHA-256 hex digest has.
UNHASHED = "unhashed:"


class FileDigest:
    """A file's SHA-256 and, with `index` or for a gzip file, its line index: computed at
    once for a small file, on a thread for a big one (`identity` and `line_index` wait for it).
    `in_background` says that the identity arrives while the file loads, so that whether it
    was loaded before is known only after the load.

    Without `hash_content` the identity is `unhashed:<size>:<path>`, which no SHA-256
    matches: for content that nothing will be compared with (see `ingest._files_to_hash`),
    hashing gigabytes would take the second core from DuckDB's read.

    A gzip file is decompressed through to its end (as an index needs it to be anyway), so
    that `gzip_broken` can say whether its data passed gzip's own checks. DuckDB's readers
    do not check a member's CRC: a corrupt member is read as garbage lines, and those that
    parse would load as records; in a JSON document, a byte flipped inside a string (in a
    stored, level-0 member, say) changes a value and the document still parses. A gzip file
    of 8 to 64 MiB is hashed at once (a file loaded before is still passed over before it
    loads) and decompressed on the thread: its text is several times its size, a second of
    zlib per 40 MB.
    """

    def __init__(
        self,
        path: Path,
        compressed: bool,
        size: int,
        index: bool = True,
        hash_content: bool = True,
    ) -> None:
        decompress = index or compressed
        self.in_background = size >= BACKGROUND_BYTES and (decompress or hash_content)
        text_apart = not self.in_background and decompress and size * GZIP_RATIO >= BACKGROUND_BYTES
        self._unhashed = None if hash_content else f"{UNHASHED}{size}:{path}"
        self._cancelled = threading.Event()
        self._compressed = compressed
        self._hashed_first: Future[str] | None = None
        if text_apart and hash_content:
            self._hashed_first = _done(lambda: file_sha256(path, self._cancelled))
        with_hash = hash_content and self._hashed_first is None

        def work() -> tuple[str | None, LineIndex | None]:
            if decompress:
                return digest_and_index(
                    path, compressed, with_hash, self._cancelled, for_fast_read=index
                )
            return (file_sha256(path, self._cancelled) if with_hash else None), None

        self._future: Future[tuple[str | None, LineIndex | None]]
        if self.in_background or text_apart:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="m2maudit-digest")
            self._future = executor.submit(work)
            executor.shutdown(wait=False)
        else:
            self._future = _done(work)

    def identity(self) -> str:
        if self._unhashed:
            return self._unhashed
        if self._hashed_first is not None:
            return self._hashed_first.result()
        return str(self._future.result()[0])

    def line_index(self) -> LineIndex | None:
        return self._future.result()[1]

    def gzip_broken(self) -> bool:
        """Whether the gzip data was found cut short or corrupt. A stream that ends early or
        fails its CRC gives no index."""
        return self._compressed and self._future.result()[1] is None

    def wait(self) -> None:
        """Let a background digest finish (its error, if any, was or will be seen)."""
        self._future.exception()

    def cancel(self) -> None:
        """Stop a background digest at its next chunk: on Ctrl-C, the rest of a 3 GB file
        is not worth hashing before the run can end."""
        self._cancelled.set()


_Result = TypeVar("_Result")


def _done(work: Callable[[], _Result]) -> Future[_Result]:
    """A future already holding what `work` returned, or the OSError it raised (read when
    asked for, as a background digest's would be)."""
    future: Future[_Result] = Future()
    try:
        future.set_result(work())
    except OSError as exc:
        future.set_exception(exc)
    return future
