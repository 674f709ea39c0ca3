"""Ingest: files -> detected format -> adapter -> canonical tables, one transaction a file
(or a batch of small files, with the same outcome).

A file whose content was ingested before adds nothing; a record already in the store (the same
record from another file: the same bytes, or for the fast JSON-lines read the same values of
every key) is counted as a duplicate and skipped. Bad records are counted in `ingest_errors`
with file, line and reason, and the rest of the file still loads.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb

from m2maudit.canonical import CREDENTIAL_COLUMNS, EVENT_COLUMNS
from m2maudit.config import Config
from m2maudit.errors import AuditError, InputError
from m2maudit.secrets import SECRET_PATTERNS
from m2maudit.sources import ADAPTERS, adapter_named
from m2maudit.sources.base import (
    BatchableAdapter,
    InputFile,
    Kind,
    LoadContext,
    Sample,
    SourceAdapter,
)
from m2maudit.sources.discover import expand_inputs, remove_temporary, sniff
from m2maudit.sources.fast_jsonl import STAGED_TOKENS, FastReadFailed, drop_fast_staging
from m2maudit.sources.lineindex import FileDigest
from m2maudit.sources.staging import drop_relation, temp_relation_kinds
from m2maudit.store import Store
from m2maudit.timeutil import utc_now
from m2maudit.tokens import decode_staged_tokens

_FIELD_NAME = re.compile(r"[A-Za-z_@$][\w .@$:/-]{0,63}")


@dataclass
class FileReport:
    """What happened to one input file."""

    source: str
    size: int
    format: str | None = None
    kind: Kind | None = None
    read: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    error: str | None = None
    already_ingested: bool = False


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    @property
    def failed_files(self) -> list[FileReport]:
        return [f for f in self.files if f.error]

    @property
    def anything_read(self) -> bool:
        return any(f.loaded or f.duplicates or f.already_ingested for f in self.files)


ProgressHook = Callable[[InputFile, FileReport], None]
StagedHook = Callable[[InputFile], None]


def stored_report(store: Store) -> IngestReport:
    """What a store says it ingested before, as a report: for a scan of a `--db` store given
    no new files, so its inputs and `--strict` read as they did when the files came in.

    Files that could not be read at all are only in `ingest_errors` (as line 0).
    """
    rows = store.con.execute(
        """
        SELECT f.source_file, f.source_format, f.kind, f.records_read, f.loaded, f.duplicates,
               f.rejected, f.first_ts, f.last_ts, e.reason
        FROM ingested_files f
        LEFT JOIN (SELECT source_file, min(reason) AS reason FROM ingest_errors
                   WHERE source_line = 0 GROUP BY source_file) e USING (source_file)
        UNION ALL
        SELECT source_file, min(source_format), NULL, 0, 0, 0, 0, NULL, NULL, min(reason)
        FROM ingest_errors
        WHERE source_line = 0 AND source_file NOT IN (SELECT source_file FROM ingested_files)
        GROUP BY source_file
        ORDER BY 1
        """
    ).fetchall()
    report = IngestReport()
    for source, fmt, kind, read, loaded, duplicates, rejected, first, last, error in rows:
        report.files.append(
            FileReport(
                source=str(source),
                size=0,
                format=fmt,
                kind=kind,
                read=int(read),
                loaded=int(loaded),
                duplicates=int(duplicates),
                rejected=int(rejected),
                first_ts=first,
                last_ts=last,
                error=error,
            )
        )
    return report


def ingest_paths(
    store: Store,
    paths: Sequence[str],
    inventories: Sequence[str] = (),
    config: Config | None = None,
    format_hint: str | None = None,
    on_file: ProgressHook | None = None,
    on_start: Callable[[list[InputFile]], None] | None = None,
    one_shot: bool = False,
    on_staged: StagedHook | None = None,
) -> IngestReport:
    """Ingest every file under `paths` (logs or inventories, by content) and `inventories`.

    `on_start` gets the files to ingest, `on_file` each file with its report once it is
    committed, and `on_staged` each small file as soon as it is read into a batch (a batch of
    thousands of files is committed at once, so that is the only sign of it moving).

    `one_shot`: the store is in memory and lives only for this call (a `scan` without
    `--db`), so a file's content is hashed only where another file of this call could hold
    the same bytes (see `_files_to_hash`).
    """
    config = config or Config()
    if format_hint and adapter_named(format_hint) is None:
        known = ", ".join(a.name for a in ADAPTERS)
        raise AuditError(f"--format-hint: unknown format {format_hint!r}; known: {known}")
    files: list[InputFile] = []
    try:
        files += expand_inputs(list(paths), format_hint=format_hint)
        files += expand_inputs(list(inventories), forced_kind="inventory")
        files = _without_repeats(files, store)
        if on_start:
            on_start(files)
        report = IngestReport()
        for group in _groups(files, config, _files_to_hash(store, files, one_shot)):
            reports = ingest_group(store, group, config, on_staged)
            for file, file_report in zip((c.file for c in group), reports, strict=True):
                report.files.append(file_report)
                if on_file:
                    on_file(file, file_report)
    finally:
        remove_temporary(files)
    return report


# Small files of a batchable format are ingested together, up to these limits a batch.
SMALL_FILE_BYTES = 8 << 20
BATCH_FILES = 2000
BATCH_BYTES = 256 << 20


@dataclass(frozen=True)
class _Sniffed:
    """A file with its sample and adapter, when sniffing it worked (else ingest_file says why)."""

    file: InputFile
    sample: Sample | None = None
    adapter: SourceAdapter | None = None
    hash_content: bool = True  # see `_files_to_hash`


def _files_to_hash(store: Store, files: list[InputFile], one_shot: bool) -> set[InputFile]:
    """The files whose content must be hashed to know whether it was ingested before.

    A one-shot store (in memory, empty, gone after this call) will never compare anything
    with what it records; within the call, two files can hold the same content only if they
    have the same size. Only those are hashed: for a `scan` of a 3 GB log that saves two
    seconds of hashing on the core DuckDB's read needs. Any other store hashes every file.
    """
    if not one_shot or store.path is not None or store.has_rows("ingested_files"):
        return set(files)
    sizes = Counter(file.size for file in files)
    return {file for file in files if sizes[file.size] > 1}


def _groups(
    files: list[InputFile], config: Config, to_hash: set[InputFile]
) -> Iterator[list[_Sniffed]]:
    """Consecutive small files of one batchable format, or single files.

    Sniffing a file to know its format is cheap; a file that fails it is a group of its own
    (and `ingest_file` reports why).
    """
    batch: list[_Sniffed] = []
    batch_bytes = 0
    for file in files:
        sniffed = _sniff(file, config) if file.size <= SMALL_FILE_BYTES else _Sniffed(file)
        sniffed = replace(sniffed, hash_content=file in to_hash)
        batchable = isinstance(sniffed.adapter, BatchableAdapter)
        same = batch and batchable and sniffed.adapter is batch[0].adapter
        if batch and (not same or len(batch) >= BATCH_FILES or batch_bytes >= BATCH_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        if not batchable:
            yield [sniffed]
            continue
        batch.append(sniffed)
        batch_bytes += file.size
    if batch:
        yield batch


def _sniff(file: InputFile, config: Config) -> _Sniffed:
    try:
        sample = sniff(file)
        return _Sniffed(file, sample, choose_adapter(file, sample, config))
    except (InputError, OSError):
        return _Sniffed(file)


def ingest_group(
    store: Store, group: list[_Sniffed], config: Config, on_staged: StagedHook | None = None
) -> list[FileReport]:
    """Ingest a group from `_groups`: one file alone, or small files in one transaction.

    If a batch fails as a whole (a broken file aborts DuckDB's transaction), it is rolled
    back and ingested again in two halves, and so on down to single files: each file gets
    its own report, and one broken file costs a few extra batches.
    """
    if len(group) == 1:
        return [ingest_file(store, group[0].file, config, group[0])]
    try:
        return _ingest_batch(store, group, config, on_staged)
    except (InputError, duckdb.Error, _BatchSplit):
        pass  # rolled back: split it below
    finally:
        _drop_staging(store)
        drop_relation(store.con, "_batch_records")
        drop_relation(store.con, "_batch_rejects")
        drop_relation(store.con, "_batch_files")
    # Halves, each a batch again: one broken file among thousands costs a few more batches.
    middle = len(group) // 2
    return [
        *ingest_group(store, group[:middle], config, on_staged),
        *ingest_group(store, group[middle:], config, on_staged),
    ]


class _BatchSplit(Exception):
    """The batch holds the same content twice: split it until the copies are apart."""


def _ingest_batch(
    store: Store, group: list[_Sniffed], config: Config, on_staged: StagedHook | None
) -> list[FileReport]:
    con = store.con
    files = [member.file for member in group]
    samples = [member.sample for member in group if member.sample is not None]
    adapter = group[0].adapter
    assert len(samples) == len(files)  # a batch holds only files that sniffed
    assert isinstance(adapter, BatchableAdapter)
    reports = [FileReport(source=f.display, size=f.size) for f in files]
    if len({f.display for f in files}) < len(files):
        raise _BatchSplit
    identities: dict[str, str] = {}  # display -> content hash, of the files to load
    for member, report in zip(group, reports, strict=True):
        file = member.file
        report.format, report.kind = adapter.name, adapter.kind
        identity = FileDigest(
            file.path, file.compressed, file.size, index=False, hash_content=member.hash_content
        ).identity()
        if identity in identities.values():
            raise _BatchSplit
        if not _already_ingested(store, identity, report):
            identities[file.display] = identity
    with store.transaction():
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _batch_records "
            "(source_file VARCHAR, source_line BIGINT, rec VARCHAR)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _batch_rejects "
            "(source_file VARCHAR, source_line BIGINT, reason VARCHAR)"
        )
        for file, sample in zip(files, samples, strict=True):
            if file.display in identities:
                _stage_into_batch(
                    store, adapter, LoadContext(con, file, sample, config, adapter.name)
                )
            if on_staged:
                on_staged(file)
        if identities:
            con.execute("ALTER TABLE _batch_records RENAME TO _records")
            con.execute("ALTER TABLE _batch_rejects RENAME TO _staging_rejects")
            first = next(i for i, f in enumerate(files) if f.display in identities)
            ctx = LoadContext(
                con,
                files[first],
                samples[first],
                config,
                adapter.name,
                batch_files=list(identities),
            )
            adapter.map_staged(ctx)
            loading = {r.source: r for r in reports if r.source in identities}
            _commit_batch(store, ctx, adapter.kind, loading)
            for source, report in loading.items():
                _record_file(store, identities[source], report)
    return reports


def _stage_into_batch(store: Store, adapter: BatchableAdapter, ctx: LoadContext) -> None:
    adapter.stage_file(ctx)
    store.con.execute(
        "INSERT INTO _batch_records SELECT ?, source_line, rec FROM _records", [ctx.file.display]
    )
    store.con.execute(
        "INSERT INTO _batch_rejects SELECT ?, source_line, reason FROM _staging_rejects",
        [ctx.file.display],
    )
    _drop_staging(store)


def _without_repeats(files: list[InputFile], store: Store) -> list[InputFile]:
    """Drop the store's own files (`ingest . --db ./audit.duckdb`) and, for a file given both
    inside a log path and with `--inventory`, its log copy: `--inventory` says what it is."""
    own = {Path(store.path).resolve()} if store.path else set()
    own |= {p.with_name(p.name + suffix) for p in own for suffix in (".wal", ".tmp")}
    forced = {f.path.resolve() for f in files if f.forced_kind and not f.temporary}
    kept: list[InputFile] = []
    for file in files:
        where = file.path.resolve()
        if file.temporary or not (where in own or (where in forced and not file.forced_kind)):
            kept.append(file)
    return kept


class _SeenBefore(Exception):
    """The file's content turned out to be in the store already: roll its load back."""


def ingest_file(
    store: Store, file: InputFile, config: Config, sniffed: _Sniffed | None = None
) -> FileReport:
    """Ingest one file in one transaction; an unreadable file is reported, not raised.

    A big file is hashed while it loads (see `FileDigest`), so whether it was ingested before
    is known only once it is loaded; then the load is rolled back. `sniffed` saves sniffing
    the file again when `_groups` already did.
    """
    report = FileReport(source=file.display, size=file.size)
    digest: FileDigest | None = None
    try:
        if sniffed is not None and sniffed.sample is not None and sniffed.adapter is not None:
            sample, adapter = sniffed.sample, sniffed.adapter
        else:
            sample = sniff(file)
            adapter = choose_adapter(file, sample, config)
        report.format, report.kind = adapter.name, adapter.kind
        # Only the fast JSON-lines read uses the line index; other files are just hashed.
        wants_index = sample.layout == "jsonl" and getattr(adapter, "reads_line_index", False)
        digest = FileDigest(
            file.path,
            file.compressed,
            file.size,
            index=wants_index,
            hash_content=sniffed.hash_content if sniffed else True,
        )
        if not digest.in_background and _already_ingested(store, digest.identity(), report):
            return report
        try:
            ctx = LoadContext(store.con, file, sample, config, adapter.name)
            _load(store, adapter, ctx, digest, report)
        except FastReadFailed:  # read_json failed and so aborted the transaction: read carefully
            _drop_staging(store)
            ctx = LoadContext(store.con, file, sample, config, adapter.name, fast_read=False)
            _load(store, adapter, ctx, digest, report)
    except _SeenBefore:
        pass
    except OSError as exc:
        report.error = f"could not read: {exc.strerror or exc}"
        _record_file_error(store, file, report)
    except InputError as exc:
        report.error = exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"
        _record_file_error(store, file, report)
    except duckdb.Error as exc:
        report.error = f"could not load: {str(exc).strip().splitlines()[0][:300]}"
        _record_file_error(store, file, report)
    finally:
        if digest is not None:
            digest.wait()
        _drop_staging(store)
    return report


def _load(
    store: Store, adapter: SourceAdapter, ctx: LoadContext, digest: FileDigest, report: FileReport
) -> None:
    with store.transaction():
        ctx.line_index = digest.line_index
        adapter.load(ctx)
        if digest.in_background and _already_ingested(store, digest.identity(), report):
            raise _SeenBefore
        _commit_mapped(store, ctx, adapter.kind, report)
        _record_file(store, digest.identity(), report)


def _already_ingested(store: Store, identity: str, report: FileReport) -> bool:
    """The same bytes were ingested before: report them as they were, every record a duplicate.

    Records rejected then are counted as rejected again (they are still in `ingest_errors`),
    so `--strict` judges a re-run as it judged the first run.
    """
    row = store.con.execute(
        "SELECT records_read, rejected FROM ingested_files WHERE content_sha256 = ?", [identity]
    ).fetchone()
    if row is None:
        return False
    report.already_ingested = True
    report.read, report.rejected = int(row[0]), int(row[1])
    report.duplicates = report.read - report.rejected
    return True


def choose_adapter(file: InputFile, sample: Sample, config: Config) -> SourceAdapter:
    if file.format_hint:
        adapter = adapter_named(file.format_hint)
        if adapter is not None and (file.forced_kind is None or adapter.kind == file.forced_kind):
            return adapter
    candidates = [a for a in ADAPTERS if file.forced_kind in (None, a.kind)]
    for adapter in candidates:
        if adapter.detect(sample, config):
            return adapter
    if file.forced_kind == "inventory":
        inventory = adapter_named("generic-inventory")
        if inventory is not None:
            return inventory
    if sample.unread_first:
        raise InputError(file.display, f"{sample.unread_first}; cannot tell the format")
    raise InputError(file.display, f"unrecognised format ({_layout_words(sample)})")


def _layout_words(sample: Sample) -> str:
    """Say what the file looked like, naming only keys that are names, never values or secrets.

    A CSV without a header has values (a time, a token) in its first row: those are not shown.
    """
    keys = sorted(sample.keys())
    names = [key for key in keys if _looks_like_name(key)]
    if sample.layout == "csv" and len(names) < len(keys):
        return "CSV whose first row is not a header of field names; see `m2maudit formats`"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"{sample.layout.replace('_', ' ')} with {shown or 'no fields'}; see `m2maudit formats`"


def _looks_like_name(key: str) -> bool:
    if not _FIELD_NAME.fullmatch(key) or (any(c.isdigit() for c in key) and len(key) >= 20):
        return False
    return not any(re.search(pattern, key) for _, pattern in SECRET_PATTERNS)


def _target(kind: Kind) -> tuple[str, tuple[str, ...]]:
    """The store table a kind of record goes to, and its mapped columns."""
    if kind == "events":
        return "events", tuple(EVENT_COLUMNS)
    return "credentials", tuple(CREDENTIAL_COLUMNS)


def _not_stored(store: Store, table: str, key: str) -> str:
    """SQL to AND onto a filter: the record is not in `table` yet (nothing, while it is empty)."""
    if not store.has_rows(table):
        return ""
    return f" AND {key} NOT IN (SELECT record_key FROM {table})"


_ACCEPTED_FPS = "list(DISTINCT token_fp) FILTER ({accepted} AND token_fp IS NOT NULL)"
# Beyond this many lines not inserted, the fast read's outcome is taken by one more full pass.
_MAX_LINES_LEFT_OUT = 10_000


def _commit_mapped(store: Store, ctx: LoadContext, kind: Kind, report: FileReport) -> None:
    """Move the accepted rows of `_mapped` into the store, the rejected ones into
    `ingest_errors`, and decode the accepted records' tokens.

    What is not inserted (counts, the time window, the rejects and the accepted tokens)
    goes to `_outcome`. When `_mapped` is a view (the fast JSON-lines read) each pass over it
    maps every record again, so the outcome is taken after the insert: from the rows just
    inserted, and from the few lines left out (rejected, or already stored), mapped again
    alone. See `_outcome_after_insert`.
    """
    table, columns = _target(kind)
    con = store.con
    staged_tokens = bool(temp_relation_kinds(con, STAGED_TOKENS))
    after_insert = kind == "events" and temp_relation_kinds(con, "_mapped") == ["VIEW"]
    last_rowid = _last_rowid(con, table) if after_insert else None
    if not after_insert:
        _outcome_pass(con, kind, staged_tokens)
    fresh = "reject_reason IS NULL" + _not_stored(store, table, "record_key")
    column_list = ", ".join(columns)
    report.loaded = _count(
        con.execute(
            f"""
        INSERT INTO {table} ({column_list}, source_format, source_file, source_line, record_key)
        SELECT {column_list}, ?, ?, source_line, record_key FROM _mapped WHERE {fresh}
        """,
            [ctx.format_name, ctx.file.display],
        )
    )
    if last_rowid is not None and not _outcome_after_insert(con, last_rowid, report.loaded):
        _outcome_pass(con, kind, staged_tokens)
    row = con.execute("SELECT accepted, first_ts, last_ts FROM _outcome").fetchone()
    accepted_count, first_ts, last_ts = (int(row[0]), row[1], row[2]) if row else (0, None, None)
    if staged_tokens:  # only the accepted records' tokens
        con.execute(
            f"DELETE FROM {STAGED_TOKENS} "
            "WHERE token_fp NOT IN (SELECT unnest(fps) FROM _outcome WHERE fps IS NOT NULL)"
        )
    # The raw tokens are in _mapped (or _staged_tokens) only until it is dropped.
    decode_staged_tokens(con, ctx.config, STAGED_TOKENS if staged_tokens else "_mapped")
    report.rejected = _count(
        con.execute(
            """
        INSERT INTO ingest_errors
        SELECT ?, source_line, ?, reason FROM (
            SELECT source_line, reason FROM _staging_rejects
            UNION ALL
            SELECT r.line, r.reason FROM (SELECT unnest(rejects) AS r FROM _outcome)
        )
        """,
            [ctx.file.display, ctx.format_name],
        )
    )
    _settle(store, ctx.file.display, report, accepted_count, (first_ts, last_ts))


def _outcome_pass(con: duckdb.DuckDBPyConnection, kind: Kind, staged_tokens: bool) -> None:
    """`_outcome(accepted, first_ts, last_ts, rejects, fps)` from one pass over `_mapped`."""
    accepted = "reject_reason IS NULL"
    first, last = (f"min(ts) FILTER ({accepted})", f"max(ts) FILTER ({accepted})")
    if kind != "events":
        first = last = "NULL::TIMESTAMPTZ"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _outcome AS SELECT
            count(*) FILTER ({accepted}) AS accepted, {first} AS first_ts, {last} AS last_ts,
            list({{'line': source_line, 'reason': reject_reason}} ORDER BY source_line)
                FILTER (reject_reason IS NOT NULL) AS rejects,
            {_ACCEPTED_FPS.format(accepted=accepted) if staged_tokens else "NULL"} AS fps
        FROM _mapped
        """
    )


def _last_rowid(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT coalesce(max(rowid), -1) FROM {table}").fetchone()
    return int(row[0]) if row else -1


def _outcome_after_insert(con: duckdb.DuckDBPyConnection, last_rowid: int, inserted: int) -> bool:
    """`_outcome` for a file of events just inserted from the `_mapped` view, without a
    second full pass over the view; False when too many lines were left out for that.

    When every line went in (`inserted` of them), nothing is left to judge. Otherwise: rows
    added by this transaction come after every row before it, so the inserted rows are
    those past `last_rowid`. The lines of `_mapped` not among them are rejected or already
    stored: only those are mapped again, found by their line number, which DuckDB reads
    from the staging table's row id without mapping the other lines.
    """
    inserted_rows = f"SELECT ts, token_fp, source_line FROM events WHERE rowid > {last_rowid}"
    left_out = _lines_left_out(con, inserted_rows, inserted)
    if len(left_out) > _MAX_LINES_LEFT_OUT:
        return False
    lines = ", ".join(str(line) for line in left_out) or "NULL"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _left_out AS SELECT source_line, reject_reason, ts, "
        f"token_fp FROM _mapped WHERE source_line IN ({lines})"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _outcome AS
        WITH accepted AS (
            SELECT ts, token_fp FROM ({inserted_rows})
            UNION ALL SELECT ts, token_fp FROM _left_out WHERE reject_reason IS NULL
        )
        SELECT a.*, r.rejects FROM (
            SELECT count(*) AS accepted, min(ts) AS first_ts, max(ts) AS last_ts,
                   list(DISTINCT token_fp) FILTER (token_fp IS NOT NULL) AS fps
            FROM accepted
        ) a, (
            SELECT list({{'line': source_line, 'reason': reject_reason}} ORDER BY source_line)
                FILTER (reject_reason IS NOT NULL) AS rejects
            FROM _left_out
        ) r
        """
    )
    return True


def _lines_left_out(con: duckdb.DuckDBPyConnection, inserted_rows: str, inserted: int) -> list[int]:
    """Lines of `_mapped` not among `inserted_rows`, up to one more than can be judged."""
    row = con.execute("SELECT count(*) FROM _mapped").fetchone()
    if row is not None and int(row[0]) == inserted:  # every line went in
        return []
    return [
        int(line)
        for (line,) in con.execute(
            f"SELECT source_line FROM (SELECT source_line FROM _mapped) ANTI JOIN "
            f"({inserted_rows}) USING (source_line) ORDER BY source_line LIMIT ?",
            [_MAX_LINES_LEFT_OUT + 1],
        ).fetchall()
    ]


def _settle(
    store: Store,
    source: str,
    report: FileReport,
    accepted: int,
    window: tuple[datetime | None, datetime | None],
) -> None:
    """The counts that follow from loaded and rejected, and the error of a file without any
    record loaded (recorded in `ingest_errors` as line 0)."""
    report.duplicates = accepted - report.loaded
    report.read = accepted + report.rejected
    if report.kind == "events":
        report.first_ts, report.last_ts = window
    if not report.read:
        report.error = "no records in the file"
    elif not accepted:
        report.error = f"no record could be loaded ({report.rejected} rejected)"
    if report.error:
        store.con.execute(
            "INSERT INTO ingest_errors VALUES (?, 0, ?, ?)", [source, report.format, report.error]
        )


def _commit_batch(
    store: Store, ctx: LoadContext, kind: Kind, reports: dict[str, FileReport]
) -> None:
    """`_commit_mapped` for a batch of small files, whose `_mapped` says each row's file.

    The outcome is what loading the files one by one would give: a record already in an
    earlier file of the batch is a duplicate, a record repeated within one file is not.
    """
    table, columns = _target(kind)
    con = store.con
    con.execute("CREATE OR REPLACE TEMP TABLE _batch_files (source_file VARCHAR, file_no INT)")
    con.executemany(
        "INSERT INTO _batch_files VALUES (?, ?)", [(name, i) for i, name in enumerate(reports)]
    )
    known = _not_stored(store, table, "m.record_key")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _fresh AS
        SELECT m.*, b.file_no FROM _mapped m JOIN _batch_files b USING (source_file)
        WHERE m.reject_reason IS NULL{known}
        QUALIFY min(b.file_no) OVER (PARTITION BY m.record_key) = b.file_no
        """
    )
    column_list = ", ".join(columns)
    con.execute(
        f"""
        INSERT INTO {table} ({column_list}, source_format, source_file, source_line, record_key)
        SELECT {column_list}, ?, source_file, source_line, record_key FROM _fresh
        """,
        [ctx.format_name],
    )
    decode_staged_tokens(con, ctx.config, "_mapped")
    con.execute(
        """
        INSERT INTO ingest_errors
        SELECT source_file, source_line, ?, reason FROM (
            SELECT source_file, source_line, reason FROM _staging_rejects
            UNION ALL
            SELECT source_file, source_line, reject_reason FROM _mapped
            WHERE reject_reason IS NOT NULL
        )
        """,
        [ctx.format_name],
    )
    accepted = "reject_reason IS NULL"
    first, last = (
        (f"min(ts) FILTER ({accepted})", f"max(ts) FILTER ({accepted})")
        if kind == "events"
        else ("NULL", "NULL")
    )
    rows = con.execute(
        f"""
        SELECT b.source_file, coalesce(m.accepted, 0), coalesce(f.loaded, 0),
               coalesce(m.rejected, 0) + coalesce(r.rejected, 0), m.first_ts, m.last_ts
        FROM _batch_files b
        LEFT JOIN (SELECT source_file, count(*) FILTER ({accepted}) AS accepted,
                          count(*) FILTER (NOT {accepted}) AS rejected,
                          {first} AS first_ts, {last} AS last_ts
                   FROM _mapped GROUP BY source_file) m USING (source_file)
        LEFT JOIN (SELECT source_file, count(*) AS loaded FROM _fresh GROUP BY source_file) f
            USING (source_file)
        LEFT JOIN (SELECT source_file, count(*) AS rejected FROM _staging_rejects
                   GROUP BY source_file) r USING (source_file)
        """
    ).fetchall()
    for source, accepted_count, loaded, rejected, first_ts, last_ts in rows:
        report = reports[source]
        report.loaded, report.rejected = int(loaded), int(rejected)
        _settle(store, source, report, int(accepted_count), (first_ts, last_ts))


def _count(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _record_file(store: Store, identity: str, report: FileReport) -> None:
    store.con.execute(
        "INSERT INTO ingested_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            identity,
            report.source,
            report.format,
            report.kind,
            report.read,
            report.loaded,
            report.duplicates,
            report.rejected,
            report.first_ts,
            report.last_ts,
            utc_now(),
        ],
    )


def _record_file_error(store: Store, file: InputFile, report: FileReport) -> None:
    store.con.execute(
        "INSERT INTO ingest_errors VALUES (?, 0, ?, ?)",
        [file.display, report.format, report.error],
    )


def _drop_staging(store: Store) -> None:
    for table in (
        "_records",
        "_mapped",
        "_staging_rejects",
        "_lines",
        "_documents",
        "_classified",
        "_csv",
        "_outcome",
        "_left_out",
        "_fresh",
        STAGED_TOKENS,
    ):
        drop_relation(store.con, table)
    drop_fast_staging(store.con)
