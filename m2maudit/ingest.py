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
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from m2maudit.commit import (
    CLEARED_BY_A_GOOD_READ,
    clear_file_errors,
    commit_batch,
    commit_file,
    no_records,
    nothing_loaded,
    record_file_error,
)
from m2maudit.config import GENERIC_LOG_FIELDS, Config
from m2maudit.errors import (
    GZIP_BROKEN,
    AuditError,
    BrokenGzip,
    InputError,
    NothingToAudit,
    UnrecognisedRecords,
)
from m2maudit.ingest_report import (
    HELD_REJECTS,
    STILL_READ,
    STILL_REJECTED,
    FileReport,
    IngestReport,
)
from m2maudit.secrets import SECRET_PATTERNS
from m2maudit.sources import ADAPTERS, adapter_named
from m2maudit.sources.base import (
    BatchableAdapter,
    InputFile,
    LoadContext,
    Sample,
    SourceAdapter,
)
from m2maudit.sources.discover import expand_inputs, remove_temporary, sniff, unread_reason
from m2maudit.sources.envelopes import nothing_to_audit
from m2maudit.sources.fast_jsonl import (
    FAST_STAGING,
    STAGED_TOKENS,
    FastReadFailed,
    drop_line_macro,
)
from m2maudit.sources.generic_log import top_keys
from m2maudit.sources.lineindex import FileDigest
from m2maudit.sources.mending import MENDABLE_REASON_SQL, Mended, mended_copy
from m2maudit.sources.staging import (
    REJECTS_COLUMNS,
    MendableDocument,
    drop_relation,
    sql_str,
)
from m2maudit.sources.standins import (
    CUT_LINE_REASON,
    StandInFailed,
    recover_whole_lines,
)
from m2maudit.store import Store, write_ahead_log
from m2maudit.timeutil import utc_now

ProgressHook = Callable[[InputFile, FileReport], None]
StagedHook = Callable[[InputFile], None]

_FIELD_NAME = re.compile(r"[A-Za-z_@$][\w .@$:/-]{0,63}")

# Layouts of records: a file of them that no format claims is likely a log (`UnrecognisedRecords`).
_RECORDS = ("jsonl", "csv", "json_array", "json_object")
# How a report or baseline of this tool, found among the inputs, is said to be passed over.
OWN_OUTPUT = "(this tool's output, not an input)"


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
    exclude: Sequence[str] = (),
) -> IngestReport:
    """Ingest every file under `paths` (logs or inventories, by content) and `inventories`,
    but those of `exclude` that a directory or a pattern finds (`discover.expand_inputs`).

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
    if [*paths, *inventories].count("-") > 1:
        raise AuditError("-: standard input is given more than once; it can be read only once")
    files: list[InputFile] = []
    try:
        # In name order, whatever order they were given in: what a file adds depends on
        # what was read before it (a record seen twice, an inventory row read last), and
        # the same files must give the same store and the same report.
        logs = expand_inputs(list(paths), format_hint=format_hint, exclude=exclude)
        files += sorted(logs, key=_by_name)
        listed = expand_inputs(list(inventories), forced_kind="inventory", exclude=exclude)
        files += sorted(listed, key=_by_name)
        files = _without_repeats(files, store)
        if on_start:
            on_start(files)
        report = IngestReport()
        failed_before = _files_that_failed_before(store)
        for group in _groups(files, config, _files_to_hash(store, files, one_shot)):
            reports = ingest_group(store, group, config, on_staged)
            done = list(zip((c.file for c in group), reports, strict=True))
            for file, file_report in done:
                report.files.append(file_report)
                if on_file:
                    on_file(file, file_report)
            # Standard input is "<stdin>" whatever it holds: not the file that failed.
            read_fine = [f for f, r in done if not (r.error or r.cut_short or f.temporary)]
            clear_file_errors(store, [f.display for f in read_fine if f.display in failed_before])
    finally:
        remove_temporary(files)
    return report


def _by_name(file: InputFile) -> str:
    return file.display


def _files_that_failed_before(store: Store) -> set[str]:
    """The files a `--db` store holds a whole-file error for, or a copy cut short (see
    `clear_file_errors`)."""
    rows = store.con.execute(
        f"SELECT DISTINCT source_file FROM ingest_errors WHERE {CLEARED_BY_A_GOOD_READ}"
    ).fetchall()
    return {str(row[0]) for row in rows}


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
    skipped: str | None = None  # why the file holds nothing to audit, if so


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
        sample, adapter, skipped = _sample_and_format(file, config)
    except (InputError, OSError):
        return _Sniffed(file)
    return _Sniffed(file, sample, adapter, skipped=skipped)


def _sample_and_format(file: InputFile, config: Config) -> tuple[Sample, SourceAdapter, str | None]:
    """The file's sample, its format and why it holds nothing to audit (if so), judged
    from the whole sample before a file that may wait in a batch keeps a light one."""
    try:
        sample = sniff(file)
        adapter = choose_adapter(file, sample, config)
    except NothingToAudit:
        raise
    except InputError:  # a README's badge, `[![build](...)]`, is no broken JSON
        if _documentation_found_beside_logs(file):
            raise NothingToAudit(file.display, "documentation, not a log") from None
        raise
    skipped = nothing_to_audit(sample)
    if isinstance(adapter, BatchableAdapter):
        sample = sample.light()
    return sample, adapter, skipped


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
    except BaseException:  # Ctrl-C: as in ingest_file, so that the drop below can run
        store.rollback_quietly()
        raise
    finally:
        _drop_staging(store, "_batch_records", "_batch_rejects", "_batch_files")
    # Halves, each a batch again: one broken file among thousands costs a few more batches.
    middle = len(group) // 2
    return [
        *ingest_group(store, group[:middle], config, on_staged),
        *ingest_group(store, group[middle:], config, on_staged),
    ]


class _BatchSplit(Exception):
    """The batch holds the same content twice, a broken gzip file or one that cannot be
    read: split it until the copies are apart and such a file is read alone."""


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
    digests = [
        FileDigest(
            m.file.path,
            m.file.compressed,
            m.file.size,
            index=False,
            hash_content=m.hash_content,
        )
        for m in group
    ]
    try:
        every_identity = [digest.identity() for digest in digests]
        broken = any(digest.gzip_broken() for digest in digests)
    except OSError:  # gone since it was sniffed, say: read alone, it is named unreadable
        raise _BatchSplit from None
    # The same content twice, or a broken gzip file (read alone, it keeps its whole lines).
    if len(set(every_identity)) < len(every_identity) or broken:
        raise _BatchSplit
    before = _ingested_before(store, every_identity)
    identities: dict[str, str] = {}  # display -> content hash, of the files to load
    for report, identity, member in zip(reports, every_identity, group, strict=True):
        report.format, report.kind = adapter.name, adapter.kind
        report.skipped = member.skipped
        if report.skipped:
            continue
        if identity in before:
            _report_as_before(report, before[identity])
        else:
            identities[report.source] = identity
    # Staging fills temporary tables only, so it runs before the batch's transaction: a file
    # that cannot be read fails its own statement, not the whole batch.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _batch_records "
        "(source_file VARCHAR, source_line BIGINT, rec VARCHAR)"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _batch_rejects (source_file VARCHAR, {REJECTS_COLUMNS})"
    )
    to_stage = [(f, s) for f, s in zip(files, samples, strict=True) if f.display in identities]
    unreadable: set[str] = set()
    by_record: set[str] = set()
    for chunk in _chunks(to_stage):
        unreadable |= _stage_chunk(store, adapter, config, chunk, by_record)
        for file, _ in chunk:
            if on_staged:
                on_staged(file)
    # A file with records refused for text a mended copy reads is loaded alone, which mends.
    unreadable |= _set_aside_mendable(store, set(identities) - unreadable)
    for source in unreadable:
        del identities[source]
    if identities:
        with store.transaction():
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
            for source, report in loading.items():
                report.by_record = source in by_record
            check_mapping = _mapping_check(store, adapter, config)
            commit_batch(store, ctx, adapter.kind, loading)
            if check_mapping is not None:
                for source, warnings in check_mapping(ctx).items():
                    loading[source].warnings.extend(warnings)
            _record_files(store, [(identities[source], r) for source, r in loading.items()])
    # A file that could not be staged is loaded alone, which says why.
    return [
        ingest_file(store, member.file, config, member) if report.source in unreadable else report
        for member, report in zip(group, reports, strict=True)
    ]


def _set_aside_mendable(store: Store, sources: set[str]) -> set[str]:
    """Those of `sources` whose staged records include one refused for text a mended copy
    reads (`mending.MENDABLE`), their rows taken out of the batch's staging tables."""
    found = {
        str(row[0])
        for row in store.con.execute(
            f"SELECT DISTINCT source_file FROM _batch_rejects WHERE {MENDABLE_REASON_SQL}"
        ).fetchall()
    } & sources
    for table in ("_batch_records", "_batch_rejects"):
        store.con.execute(
            f"DELETE FROM {table} WHERE source_file IN (SELECT unnest($found::VARCHAR[]))",
            {"found": sorted(found)},
        )
    return found


# Files staged with one read (see `BatchableAdapter.stage_files`), up to these limits: enough
# to spend a few statements on hundreds of files, few enough for the progress bar to move.
STAGE_TOGETHER_FILES = 256
STAGE_TOGETHER_BYTES = 32 << 20


def _chunks(members: list[tuple[InputFile, Sample]]) -> Iterator[list[tuple[InputFile, Sample]]]:
    chunk: list[tuple[InputFile, Sample]] = []
    size = 0
    for member in members:
        if chunk and (len(chunk) >= STAGE_TOGETHER_FILES or size >= STAGE_TOGETHER_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(member)
        size += member[0].size
    if chunk:
        yield chunk


def _stage_chunk(
    store: Store,
    adapter: BatchableAdapter,
    config: Config,
    chunk: list[tuple[InputFile, Sample]],
    by_record: set[str],
) -> set[str]:
    """Stage a chunk of a batch into `_batch_records` and `_batch_rejects`: with one read if
    the adapter can, else file by file. A read that fails (one broken file fails the read of
    all) is tried again in halves, down to single files. Returns the files that cannot be
    staged at all, for ingest to load alone; adds to `by_record` those read as documents."""
    con = store.con
    if len(chunk) > 1:
        file, sample = chunk[0]
        ctx = LoadContext(con, file, sample, config, adapter.name)
        try:
            together = adapter.stage_files(ctx, chunk)
        except (InputError, duckdb.Error):
            _drop_staging(store)
            middle = len(chunk) // 2
            return _stage_chunk(store, adapter, config, chunk[:middle], by_record) | _stage_chunk(
                store, adapter, config, chunk[middle:], by_record
            )
        if together:
            _add_to_batch(store, "source_file")
            if ctx.positions.by_record:
                by_record.update(file.display for file, _ in chunk)
            return set()
    failed: set[str] = set()
    for file, sample in chunk:
        ctx = LoadContext(con, file, sample, config, adapter.name)
        try:
            adapter.stage_file(ctx)
        except (InputError, duckdb.Error):
            failed.add(file.display)
            _drop_staging(store)
        else:
            _add_to_batch(store, sql_str(file.display))
            if ctx.positions.by_record:
                by_record.add(file.display)
    return failed


def _add_to_batch(store: Store, source_file: str) -> None:
    """Move what was staged into `_batch_records` and `_batch_rejects`; `source_file` is
    the SQL of each row's file (its column when many files were staged at once)."""
    store.con.execute(
        f"INSERT INTO _batch_records SELECT {source_file}, source_line, rec FROM _records"
    )
    store.con.execute(
        f"INSERT INTO _batch_rejects SELECT {source_file}, source_line, reason, "
        "leaked_secrets FROM _staging_rejects"
    )
    _drop_staging(store)


def _without_repeats(files: list[InputFile], store: Store) -> list[InputFile]:
    """Drop the store's own files (`ingest . --db ./audit.duckdb`) and, for a file given both
    inside a log path and with `--inventory`, its log copy: `--inventory` says what it is."""
    own = {Path(store.path).resolve()} if store.path else set()
    own |= {path for p in own for path in (write_ahead_log(p), p.with_name(p.name + ".tmp"))}
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
    report = FileReport(
        source=file.display, size=file.size, cut_short=file.cut_after_line is not None
    )
    digest: FileDigest | None = None
    broken_gzip = False  # its whole lines are read below
    try:
        if sniffed is not None and sniffed.sample is not None and sniffed.adapter is not None:
            sample, adapter, skipped = sniffed.sample, sniffed.adapter, sniffed.skipped
        else:
            sample, adapter, skipped = _sample_and_format(file, config)
        report.format, report.kind = adapter.name, adapter.kind
        report.skipped = skipped  # an empty batch a format also claims
        if report.skipped:
            return report
        report.warnings.extend(_hint_against_content(file, sample, adapter, config))
        # Only the fast JSON-lines read uses the line index; other files are just hashed.
        wants_index = sample.layout == "jsonl" and getattr(adapter, "reads_line_index", False)
        digest = FileDigest(
            file.path,
            file.compressed,
            file.size,
            index=wants_index,
            hash_content=sniffed.hash_content if sniffed else True,
        )
        if (
            not digest.in_background
            and _seen_before(adapter)
            and _already_ingested(store, digest.identity(), report)
        ):
            return report
        ctx = LoadContext(store.con, file, sample, config, adapter.name)
        try:
            _load_or_read_carefully(store, adapter, ctx, digest, report, mend=True)
        except (MendableDocument, _MendableRecords) as refused:  # rolled back: read it mended
            _drop_staging(store)
            _load_mended_copy(store, adapter, ctx, digest, report, refused)
    except _SeenBefore:
        pass
    except OSError as exc:
        report.error = f"could not read: {exc.strerror or exc}"
        record_file_error(store, report)
    except NothingToAudit as exc:
        report.skipped = exc.reason
    except InputError as exc:
        report.error = exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"
        report.likely_log = file.forced_kind != "inventory" and isinstance(
            exc, (UnrecognisedRecords, BrokenGzip)
        )
        broken_gzip = isinstance(exc, BrokenGzip) and file.compressed
        if not broken_gzip:
            record_file_error(store, report)
    except duckdb.Error as exc:
        report.error = f"could not load: {str(exc).strip().splitlines()[0][:300]}"
        record_file_error(store, report)
    except BaseException:  # Ctrl-C, or a bug: the run ends, so does the file's digest
        if digest is not None:
            digest.cancel()
        store.rollback_quietly()  # so that dropping the staging tables below can run
        raise
    finally:
        if digest is not None:
            digest.wait()
        _drop_staging(store)
    if broken_gzip:
        return _ingest_whole_lines(store, file, config, report)
    return report


def _ingest_whole_lines(
    store: Store, file: InputFile, config: Config, failed: FileReport
) -> FileReport:
    """Ingest the whole lines of a gzip file whose data is cut short or corrupt (see
    `standins`), the line where they end rejected; `failed` (the file unreadable), with
    nothing stored but its error, when there is no whole line or the file is a document
    rather than lines."""
    try:
        whole_lines = recover_whole_lines(file)
    except StandInFailed as exc:
        failed.error = f"{GZIP_BROKEN}; its whole lines could not be copied to read ({exc})"
        whole_lines = None
    if whole_lines is not None and not _holds_lines(whole_lines):
        remove_temporary([whole_lines])
        whole_lines = None
    if whole_lines is None:
        record_file_error(store, failed)
        return failed
    try:
        report = ingest_file(store, whole_lines, config)
    finally:
        remove_temporary([whole_lines])
    report.size = file.size
    return report


def _holds_lines(file: InputFile) -> bool:
    """Whether a file is lines (JSON lines, CSV), which keep what they hold when cut: a JSON
    document cut short (a CloudTrail object, an array) is not JSON."""
    try:
        return _is_lines(sniff(file))
    except InputError:
        return False


def _is_lines(sample: Sample) -> bool:
    return sample.layout in ("jsonl", "csv")


class _MendableRecords(Exception):
    """A file loaded with records rejected for text its mended copy (`mending`) can read:
    its transaction is rolled back, and the copy loaded instead."""

    def __init__(self, mended: Mended) -> None:
        super().__init__(mended.warning())
        self.mended = mended


def _load(
    store: Store,
    adapter: SourceAdapter,
    ctx: LoadContext,
    digest: FileDigest,
    report: FileReport,
    mend: bool = True,
) -> None:
    """Load one file in one transaction; `mend`: raise `_MendableRecords` (rolling it back)
    when records were rejected for text that is not UTF-8 or a lone surrogate escape, and a
    mended copy of the file replaces some."""
    with store.transaction():
        errors_before = store.scalar("SELECT coalesce(max(rowid), -1) FROM ingest_errors")
        ctx.line_index = digest.line_index
        adapter.load(ctx)
        if digest.gzip_broken():  # read as it is, after a corrupt stretch: garbage lines
            raise BrokenGzip(ctx.file.display)
        if (
            digest.in_background
            and _seen_before(adapter)
            and _already_ingested(store, digest.identity(), report)
        ):
            raise _SeenBefore
        check_mapping = _mapping_check(store, adapter, ctx.config)
        if ctx.file.cut_after_line is not None:
            _reject_cut_line(store, ctx.file.cut_after_line + 1)
        commit_file(store, ctx, adapter.kind, report)
        if mend and report.rejected and _rejected_for_text(store, errors_before):
            mended = mended_copy(ctx.file)
            if mended is not None:
                raise _MendableRecords(mended)
        if check_mapping is not None:
            report.warnings.extend(check_mapping(ctx).get(ctx.file.display, []))
        report.by_record = ctx.positions.by_record
        _record_file(store, digest.identity(), report)


def _mapping_check(
    store: Store, adapter: SourceAdapter, config: Config
) -> Callable[[LoadContext], dict[str, list[str]]] | None:
    """An adapter may judge what it loaded (the generic log, its config's mapping): its check
    of the rows added from now on, warnings by file, or None. The rows a load adds are those
    after the last one before it: in a --db store the same file may have been loaded
    before, with other content."""
    check = getattr(adapter, "check_loaded", None) if config.mapping else None
    if check is None:
        return None
    last_before: int | None = store.scalar("SELECT max(rowid) FROM events")
    return lambda ctx: check(ctx, last_before)


def _load_or_read_carefully(
    store: Store,
    adapter: SourceAdapter,
    ctx: LoadContext,
    digest: FileDigest,
    report: FileReport,
    mend: bool,
) -> None:
    """`_load`, and again the careful way when the fast read failed (`read_json` failing
    aborted the transaction)."""
    try:
        _load(store, adapter, ctx, digest, report, mend)
    except FastReadFailed:
        _drop_staging(store)
        _load(store, adapter, replace(ctx, fast_read=False), digest, report, mend)


def _rejected_for_text(store: Store, errors_before: int) -> bool:
    """Whether this load rejected a record for text a mended copy can read."""
    return bool(
        store.scalar(
            f"SELECT count(*) FROM ingest_errors WHERE rowid > ? AND {MENDABLE_REASON_SQL}",
            [errors_before],
        )
    )


def _load_mended_copy(
    store: Store,
    adapter: SourceAdapter,
    ctx: LoadContext,
    digest: FileDigest,
    report: FileReport,
    refused: MendableDocument | _MendableRecords,
) -> None:
    """`_load` of `mending.mended_copy` of a file DuckDB refused (a JSON document) or some of
    whose records it did, for bytes not UTF-8 or lone surrogate escapes, said as a warning;
    the copy (it may hold raw tokens) is removed after."""
    if isinstance(refused, _MendableRecords):
        mended: Mended | None = refused.mended
    else:
        mended = mended_copy(ctx.file)
    if mended is None:
        raise refused
    report.error = None  # the first load's verdict, rolled back with it
    try:
        copy = replace(ctx, file=mended.file)
        _load_or_read_carefully(store, adapter, copy, digest, report, mend=False)
    finally:
        mended.file.path.unlink(missing_ok=True)
    report.warnings.append(mended.warning())


def _reject_cut_line(store: Store, line: int) -> None:
    """Stage the reject of the line where a gzip file's data breaks off (see `standins`),
    unless staging found the cut inside a record (a CSV cell over lines) and rejected that."""
    store.con.execute(
        "INSERT INTO _staging_rejects (source_line, reason) SELECT $line, $cut "
        "WHERE NOT EXISTS (SELECT 1 FROM _staging_rejects WHERE reason = $cut)",
        {"line": line, "cut": CUT_LINE_REASON},
    )


def _seen_before(adapter: SourceAdapter) -> bool:
    """Whether content ingested before is passed over. Not an inventory's: a snapshot read
    again after a newer one (a key re-enabled, as it was on Monday) must win again, and its
    rows that the store still holds count as duplicates anyway."""
    return adapter.kind != "inventory"


def _already_ingested(store: Store, identity: str, report: FileReport) -> bool:
    """The same bytes were ingested before: report them as they were (`_report_as_before`)."""
    before = _ingested_before(store, [identity]).get(identity)
    if before is not None:
        _report_as_before(report, before)
    return before is not None


def _ingested_before(store: Store, identities: list[str]) -> dict[str, tuple[int, int, bool]]:
    """Records read and rejected when each of these contents was ingested, if it was, and
    whether it was read as a JSON document (its positions are records)."""
    if not store.has_rows("ingested_files"):
        return {}
    rows = store.con.execute(
        f"SELECT content_sha256, {STILL_READ}, {STILL_REJECTED}, coalesce(f.by_record, false) "
        f"FROM ingested_files f LEFT JOIN ({HELD_REJECTS}) r USING (source_file) "
        "WHERE content_sha256 IN (SELECT unnest(?::VARCHAR[]))",
        [identities],
    ).fetchall()
    return {str(row[0]): (int(row[1]), int(row[2]), bool(row[3])) for row in rows}


def _report_as_before(report: FileReport, before: tuple[int, int, bool]) -> None:
    """Every record a duplicate. Records rejected then are counted as rejected again (they
    are still in `ingest_errors`), so `--strict` judges a re-run as it judged the first run."""
    report.already_ingested = True
    report.read, report.rejected, report.by_record = before
    report.duplicates = report.read - report.rejected
    report.error = nothing_loaded(report.read, report.rejected)
    report.skipped = no_records(report.read, report.error)


def choose_adapter(file: InputFile, sample: Sample, config: Config) -> SourceAdapter:
    own = _own_output(sample)
    if own:  # never an input, whatever the hint: a CSV report reads as an inventory
        raise NothingToAudit(file.display, f"{own} {OWN_OUTPUT}")
    hinted = _hinted_adapter(file, sample, config)
    if hinted is not None:
        return hinted
    candidates = [a for a in ADAPTERS if file.forced_kind in (None, a.kind)]
    detected = _detected(sample, config, candidates)
    if detected is not None:
        return detected
    if file.forced_kind == "inventory":
        inventory = adapter_named("generic-inventory")
        if inventory is not None:
            return inventory
    unread = unread_reason(file, sample)
    if unread:
        raise InputError(file.display, f"{unread}; cannot tell the format")
    empty = nothing_to_audit(sample)
    if empty:
        raise NothingToAudit(file.display, empty)
    hint = _mapping_hint(sample, config) or _missing_time_hint(sample, config)
    unrecognised = UnrecognisedRecords if sample.layout in _RECORDS else InputError
    raise unrecognised(file.display, f"unrecognised format ({_layout_words(sample)}){hint}")


_DOCUMENTATION_SUFFIXES = (".md", ".markdown", ".rst", ".adoc")
_DOCUMENTATION_NAMES = ("README", "LICENSE", "LICENCE", "NOTICE", "CHANGELOG", "COPYING")


def _documentation_found_beside_logs(file: InputFile) -> bool:
    """A README (or a licence, a changelog) that a directory's walk or a pattern found among
    the logs, which no format reads: calling it unreadable made `--strict` fail on a log
    bucket's README. A file named by its own path is still unreadable, as asked."""
    name = file.path.name
    stem = name.split(".", 1)[0].upper()
    return not file.named and (
        name.lower().endswith(_DOCUMENTATION_SUFFIXES) or stem in _DOCUMENTATION_NAMES
    )


def _hinted_adapter(file: InputFile, sample: Sample, config: Config) -> SourceAdapter | None:
    """The format `--format-hint` names, for a file it may apply to.

    A file found in a directory or by a pattern keeps the other kind when a format of that
    kind claims it: `scan logs/ --format-hint generic-log` still reads the inventory beside
    the logs as an inventory. A file named by its own path is read as the hint says.
    """
    adapter = adapter_named(file.format_hint) if file.format_hint else None
    if adapter is None or file.forced_kind not in (None, adapter.kind):
        return None
    if not file.named and any(
        other.detect(sample, config) for other in ADAPTERS if other.kind != adapter.kind
    ):
        return None
    return adapter


def _hint_against_content(
    file: InputFile, sample: Sample, adapter: SourceAdapter, config: Config
) -> list[str]:
    """A warning when `--format-hint` made a file read as a format that its content is not,
    and another format's detection claims it: its records were read as rejects or not at
    all, and the hint is the likelier mistake. No warning when no format claims it: that is
    what a hint is for."""
    if not file.format_hint or adapter.detect(sample, config):
        return []
    claimed = _detected(sample, config, ADAPTERS)
    if claimed is None:
        return []
    return [f"--format-hint {adapter.name}, but its content reads as {claimed.name}"]


def _detected(
    sample: Sample, config: Config, adapters: Sequence[SourceAdapter]
) -> SourceAdapter | None:
    """The first of `adapters` (in the registry's order) whose detection claims the sample."""
    return next((adapter for adapter in adapters if adapter.detect(sample, config)), None)


def _own_output(sample: Sample) -> str | None:
    """What m2maudit file a file's head shows it is (`an m2maudit csv report`), if one.

    Only a file that is that one thing: a head of lines of JSON records (a log with a
    report's first line above it) is an input, or a log could hide behind one line.

    Imported here, not at the top: the report formats (and rich) are not otherwise part of
    ingest, which a library user may call alone.
    """
    from m2maudit.policy import BASELINE_SIGNATURE
    from m2maudit.reporters import report_written_as

    head = sample.text
    records = sample.layout == "jsonl" or (
        sample.layout != "json_object"
        and any(line.lstrip().startswith("{") for line in head.splitlines()[1:])
    )
    if records:
        return None
    written_as = report_written_as(head)
    if written_as:
        return f"an m2maudit {written_as} report"
    baseline = sample.layout == "json_object" and BASELINE_SIGNATURE.match(head.lstrip())
    return "an m2maudit baseline" if baseline else None


def _mapping_hint(sample: Sample, config: Config) -> str:
    """When the config maps a field to a key these records lack while they have the field's
    own name: the mapping, not the file, is likely what is wrong."""
    keys = sample.keys()
    missed = [
        f"{canonical} -> {mapped}"
        for canonical, mapped in sorted(config.mapping.items())
        if canonical in keys and mapped.split(".")[0] not in keys
    ]
    if not missed:
        return ""
    return f"; the config's mapping reads keys these records lack ({', '.join(missed)})"


def _missing_time_hint(sample: Sample, config: Config) -> str:
    """Records that name a caller or a call but no time: a generic log whose time field has
    another name (`time`, `ts`), which the config's mapping can name."""
    keys = sample.keys()
    log_fields = top_keys(config, *GENERIC_LOG_FIELDS)
    if top_keys(config, "timestamp") & keys or len(keys & log_fields) < 2:
        return ""
    time_field = config.mapping.get("timestamp", "timestamp")
    return (
        f"; as an access log it lacks its time field {time_field!r}: name yours in the "
        f"config (mapping: {{timestamp: <your field>}})"
    )


def _layout_words(sample: Sample) -> str:
    """Say what the file looked like, naming only keys that are names, never values or secrets.

    A CSV without a header has values (a time, a token) in its first row: those are not shown.
    """
    keys = sorted(sample.keys())
    names = [key for key in keys if _looks_like_name(key)]
    if sample.layout == "csv" and len(names) < len(keys):
        return "CSV whose first row is not a header of field names; see `m2maudit formats`"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    if not shown and sample.layout not in ("jsonl", "json_object", "json_array", "csv"):
        # A syslog line parses as a YAML string, XML as nothing: neither holds records.
        return "text that is not JSON, CSV or YAML records; see `m2maudit formats`"
    layout = _LAYOUT_WORDS.get(sample.layout, sample.layout)
    return f"{layout} with {shown or 'no fields'}; see `m2maudit formats`"


# A one-line JSON document sniffs as JSON lines: both are "JSON objects" to a reader.
_LAYOUT_WORDS = {
    "jsonl": "JSON objects",
    "json_object": "JSON objects",
    "json_array": "a JSON array of objects",
    "csv": "CSV",
    "yaml": "YAML",
}


def _looks_like_name(key: str) -> bool:
    if not _FIELD_NAME.fullmatch(key) or (any(c.isdigit() for c in key) and len(key) >= 20):
        return False
    return not any(re.search(pattern, key) for _, pattern in SECRET_PATTERNS)


def _record_file(store: Store, identity: str, report: FileReport) -> None:
    _record_files(store, [(identity, report)])


def _record_files(store: Store, files: list[tuple[str, FileReport]]) -> None:
    """Keep each file's identity and outcome in `ingested_files`: one statement for a batch."""
    if not files:
        return
    now = utc_now()
    values = [
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
            now,
            report.by_record,
        ]
        for identity, report in files
    ]
    row = "(" + ", ".join("?" * len(values[0])) + ")"
    store.con.execute(
        # OR REPLACE: an inventory's content is read again each time it is given.
        f"INSERT OR REPLACE INTO ingested_files VALUES {', '.join([row] * len(values))}",
        [value for row_values in values for value in row_values],
    )


def _drop_staging(store: Store, *also: str) -> None:
    """Drop every staging relation a load may have left, and `also`, in one catalog lookup."""
    drop_relation(
        store.con,
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
        *FAST_STAGING,
        *also,
    )
    drop_line_macro(store.con)
