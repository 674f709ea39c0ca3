"""The source-adapter interface: how one input format becomes canonical rows.

An adapter says whether it recognises a file from a small sample of its content, then loads
the file into the canonical tables with SQL. Adapters never loop over records in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import duckdb

    from m2maudit.config import Config
    from m2maudit.sources.lineindex import LineIndex

# The longest record (a line, or a document of a batch) any reader takes; longer is rejected.
MAX_RECORD_BYTES = 16 * 1024 * 1024

Kind = Literal["events", "inventory"]
Layout = Literal["jsonl", "json_array", "json_object", "csv", "yaml", "unknown"]


@dataclass(frozen=True)
class InputFile:
    """One file to ingest, as found on disk (stdin is first copied to a temporary file)."""

    path: Path
    display: str
    size: int
    compressed: bool
    forced_kind: Kind | None = None
    format_hint: str | None = None
    # Given by its own path, not found in a directory or by a pattern: a format hint then
    # overrides what its content shows (see `ingest.choose_adapter`).
    named: bool = True
    # A copy made to be read in its place (standard input, a stand-in): removed once read.
    temporary: bool = False
    unreadable: str | None = None  # why it could not be opened: named, and the rest read
    # A stand-in for a gzip file cut short (`standins`): its whole lines, this many.
    cut_after_line: int | None = None

    @property
    def content_extension(self) -> str:
        """The extension that says what the file holds (`.jsonl` for `x.jsonl.gz`), lower case."""
        return "".join(self.path.suffixes[-2:]).lower().removesuffix(".gz")


@dataclass(frozen=True)
class Sample:
    """What detection may look at: the head of the file and its first record, parsed."""

    text: str
    layout: Layout
    first_record: dict[str, Any] | None = None
    csv_header: tuple[str, ...] = ()
    extension: str = ""
    csv_delimiter: str = ","
    # Why there is no first record, when the file could still be a format's: its first JSON
    # value is too big to parse from the head, or is cut off. Said if no format claims it.
    unread_first: str | None = None
    whole: bool = False  # `text` is the whole file (it was shorter than the sample size)
    # The head holds more than one line of text: for JSON lines, records (or batches of
    # them, as Firehose delivers CloudTrail) line after line, not one document on one line.
    several_lines: bool = False

    def keys(self) -> set[str]:
        """Top-level field names of the first record or the CSV header."""
        if self.first_record is not None:
            return set(self.first_record)
        return set(self.csv_header)

    def light(self) -> Sample:
        """What loading still reads, once the format is known, for a file that waits in a
        batch: a five-minute CloudTrail object's head and parsed records are ~250 KB of
        Python objects, and a batch holds up to 2 000 files. A batch of events keeps its
        first item (loading asks only whether the file starts with one); the text stays for
        CSV (the blank lines before its header). Not `whole` any more: the text is gone."""
        first = self.first_record
        if first is not None:
            first = {key: value[:1] if isinstance(value, list) else value
                     for key, value in first.items()}  # fmt: skip
        text = self.text if self.layout == "csv" else ""
        return replace(self, text=text, first_record=first, whole=False)


@dataclass
class Positions:
    """What the staged records' `source_line` is: a line, or for records read as JSON
    documents (whose reader gives no lines; a CloudTrail object is one line of thousands of
    events) each record's 1-based position in the file. One object is shared by the copies
    a load makes of its context (`dataclasses.replace`), so the load can tell afterwards."""

    by_record: bool = False


@dataclass
class LoadContext:
    """Everything an adapter needs to load one file."""

    con: duckdb.DuckDBPyConnection
    file: InputFile
    sample: Sample
    config: Config
    format_name: str
    # Where the lines of an uncompressed file are, for the fast JSON-lines read; a call, as
    # the index of a big file is still being built (on a thread) while the file loads.
    line_index: Callable[[], LineIndex | None] | None = None
    fast_read: bool = True  # False after a fast read failed: read the careful way
    # Set when `_records` holds many small files at once (a `source_file` column says whose).
    batch_files: list[str] = field(default_factory=list)
    positions: Positions = field(default_factory=Positions)


class SourceAdapter(Protocol):
    """One input format. Register new ones in `m2maudit.sources.ADAPTERS`.

    An adapter that reads JSON lines through `fast_jsonl` also sets the class attribute
    `reads_line_index = True`, so that ingest builds the file's `LineIndex` for it.
    """

    name: ClassVar[str]
    kind: ClassVar[Kind]
    description: ClassVar[str]

    def detect(self, sample: Sample, config: Config) -> bool:
        """True when the sample is this format. Must be cheap and never raise."""
        ...

    def load(self, ctx: LoadContext) -> None:
        """Stage the file and fill `_accepted` (canonical columns) and `_rejected` temp tables.

        `m2maudit.ingest` then de-duplicates and moves them into the store in one transaction.
        """
        ...


@runtime_checkable
class BatchableAdapter(SourceAdapter, Protocol):
    """An adapter whose `load` is `stage_file` then `map_staged` (`staging.StagedLoad` gives
    that `load`): ingest stages many small files into one `_records` (with a `source_file`
    column), with one read where `stage_files` can, else one by one, then maps them all with
    one statement. Each statement costs more than its work on a small file, so a directory
    of thousands of five-minute CloudTrail objects loads in a few dozen statements."""

    def stage_file(self, ctx: LoadContext) -> None:
        """Fill `_records` and `_staging_rejects` from `ctx.file`."""
        ...

    def stage_files(self, ctx: LoadContext, members: Sequence[tuple[InputFile, Sample]]) -> bool:
        """Fill `_records` and `_staging_rejects`, each with a `source_file` column, from all
        of `members` in one pass, if their layout allows; False (staging nothing) to have
        ingest stage them one by one with `stage_file`. `ctx` is the first member's."""
        ...

    def map_staged(self, ctx: LoadContext) -> None:
        """Map `_records` into `_mapped` (and whatever the format needs after that)."""
        ...
