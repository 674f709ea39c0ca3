"""The command line: a thin typer shell over the library.

Every command turns an `AuditError` into one line on stderr and exit code 2. Locals are never
printed on a crash, because they can hold tokens.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import duckdb
import typer

from m2maudit import __version__, output_file, policy
from m2maudit.cli_common import FLAG, HelpCommand, HelpGroup, clock_of
from m2maudit.cli_formats import formats_command
from m2maudit.cli_rules import rules_app
from m2maudit.cli_token import token_app
from m2maudit.config import CONFIG_FILENAME, PROBLEMS, Config, load_config, starter_config
from m2maudit.console import (
    ingest_progress,
    print_ingest_summary,
    print_problems,
    scan_progress,
    stderr_console,
)
from m2maudit.engine import DEFAULT_RULE_TIMEOUT
from m2maudit.errors import AuditError
from m2maudit.ingest import OWN_OUTPUT, ingest_paths
from m2maudit.ingest_report import IngestReport, stored_report
from m2maudit.interrupts import prompt_interrupts, sigterm_as_interrupt
from m2maudit.reporters import DEFAULT_FORMAT, Reporter, ReportOptions, get_reporter
from m2maudit.reporters.serialize import clean_text
from m2maudit.reporters.summary import held_nothing_note, summary_line
from m2maudit.rules import Rule, rule_files
from m2maudit.scan import input_summaries, prepare_rules, run_scan, save_findings
from m2maudit.sources.discover import STDIN_DISPLAY
from m2maudit.store import Store, StoreOptions, write_ahead_log
from m2maudit.wording import counted, noun_for

EXIT_ERROR = 2  # 0 and 1 (nothing or something failing) are policy's: EXIT_OK, EXIT_FINDINGS
app = typer.Typer(
    cls=HelpGroup,
    name="m2maudit",
    help="Find dangerous machine and AI-agent credentials in access logs and token inventories.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(token_app, name="token")

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(command: F) -> F:
    """One line on stderr and exit 2 for anything that stops the audit; never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt():
                return command(*args, **kwargs)
        except AuditError as exc:
            _fail(str(exc))
        except (KeyboardInterrupt, RuntimeError, duckdb.Error) as exc:
            if not _interrupted(exc):
                if isinstance(exc, duckdb.Error):
                    _fail(f"database error: {str(exc).strip().splitlines()[0]}")
                raise
            _fail("interrupted", code=130)
        except OSError as exc:
            _fail(f"{getattr(exc, 'filename', '') or ''}: {exc.strerror or exc}".lstrip(": "))

    return wrapper  # type: ignore[return-value]


ReadFiles = list[tuple[str, str | Path]]  # files a scan reads, each with what names it


def _named_inputs(
    paths: list[str] | None,
    inventories: list[str] | None,
    config: Config,
    db: Path | None,
    pack: list[Rule],
    rule_dirs: list[Path],
) -> ReadFiles:
    """The files a scan will read that are known before it reads them: a report or baseline
    written over one would replace the evidence, or the rules or config of the next run."""
    named: ReadFiles = [("input", path) for path in paths or [] if path != "-"]
    named += [("--inventory", path) for path in inventories or [] if path != "-"]
    if "-" in [*(paths or []), *(inventories or [])]:
        named.append(("standard input", "/dev/stdin"))  # the file it was redirected from
    if config.path is not None:
        named.append(("the config", config.path))
    # The pack's files, and every file of a --rules directory (a copy of a bundled rule is
    # loaded once, under the bundled file's name).
    rule_paths = [rule.path for rule in pack]
    rule_paths += [path for directory in rule_dirs for path in rule_files(directory)]
    named += [("rule file", path) for path in rule_paths]
    # DuckDB keeps a store's uncommitted changes in a write-ahead log beside it.
    wal = "the --db store's write-ahead log"
    store_files = [("--db", db), (wal, write_ahead_log(db))] if db else []
    return [*named, *_given(store_files)]


def _inputs_read(report: IngestReport) -> ReadFiles:
    """The files ingest read, found in directories and by patterns too; not the reports of
    this tool it passed over (a report may be written again where the last one was)."""
    return [
        ("input", file.source)
        for file in report.files
        if file.source != STDIN_DISPLAY and not (file.skipped or "").endswith(OWN_OUTPUT)
    ]


def _check_outputs(
    reports: ReadFiles, write_baseline: str | None, baseline: Path | None, read: ReadFiles
) -> None:
    """The reports and the baseline can be written, and none would replace a file the run
    reads, nor another; `--write-baseline` may name the `--baseline`, to update it."""
    for index, (label, path) in enumerate(reports):
        others = _given([("--baseline", baseline), ("--write-baseline", write_baseline)])
        output_file.check_output_path(path, label, [*read, *others, *reports[:index]])
    if write_baseline is not None:
        output_file.check_output_path(write_baseline, "--write-baseline", read)


def _extra_report(value: str) -> tuple[Reporter, str]:
    """`--report sarif:m2maudit.sarif`: the reporter and the file."""
    name, colon, path = value.partition(":")
    if not colon or not name or not path:
        raise AuditError(f"--report {value!r}: give FORMAT:FILE, e.g. sarif:m2maudit.sarif")
    if path == "-":
        raise AuditError("--report: a file; the report on standard output is --format's")
    return get_reporter(name, "--report"), path


def _distinct(reporters: list[Reporter]) -> list[Reporter]:
    """Each reporter once: two SARIF files warn once about their size."""
    return list({each.name: each for each in reporters}.values())


def _check_not_a_rule(
    outputs: Sequence[tuple[str, str | Path | None]], rule_dirs: list[Path]
) -> None:
    """A YAML file written into a `--rules` directory is read as a rule by the next run, and
    fails it: refused, whether or not it is there yet."""
    for label, output in outputs:
        if output is None or Path(output).suffix not in (".yaml", ".yml"):
            continue
        parent = Path(output).parent
        if any(output_file.same_file(parent, directory) for directory in rule_dirs):
            raise AuditError(
                f"{label} {output}: in the --rules directory, it would be read as a rule"
            )


def _given(flags: Sequence[tuple[str, str | Path | None]]) -> ReadFiles:
    """The flags given a value, with it."""
    return [(label, value) for label, value in flags if value is not None]


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C. While a DuckDB query runs, DuckDB stops it and raises its own error instead
    of Python's KeyboardInterrupt: `RuntimeError('Query interrupted')` in DuckDB 2.0,
    `InterruptException` in others."""
    if isinstance(exc, (KeyboardInterrupt, duckdb.InterruptException)):
        return True
    return isinstance(exc, RuntimeError) and str(exc).startswith("Query interrupted")


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    stderr_console().print(f"m2maudit: error: {clean_text(message)}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"m2maudit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version,
            is_eager=True,
            help="Print the version and exit.",
            metavar=FLAG,
        ),
    ] = False,
) -> None:
    """m2maudit: audit machine-to-machine and AI-agent credentials."""


IngestPathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Log files, directories (recursive), globs, or - for stdin. None with "
        "--inventory: load only the inventory.",
        show_default=False,
        metavar="PATH",
    ),
]
ScanPathsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Log files, directories (recursive), globs, or - for stdin. None with --db: "
        "check what the store already holds.",
        show_default=False,
        metavar="PATH",
    ),
]
InventoryOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--inventory",
        "-i",
        metavar="FILE",
        help="Read this file as a token inventory (repeatable).",
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db", metavar="FILE", help="Persist the store in this DuckDB file (default: in memory)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", metavar="FILE", help="Config file (default: ./.m2maudit.yaml if present)."
    ),
]
StrictOpt = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit 2 if any record or file was rejected, a file loaded with a warning "
        "(a mapped field no record has), or the inputs all held nothing.",
        metavar=FLAG,
    ),
]
HintOpt = Annotated[
    str | None,
    typer.Option(
        "--format-hint",
        metavar="FORMAT",
        help="Read the log paths as this format instead of detecting it (an inventory "
        "found beside the logs in a directory stays one).",
    ),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", metavar="N", min=1, help="DuckDB threads.")
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        metavar="SIZE",
        help="DuckDB memory limit, e.g. 4GB; it spills to disk beyond it.",
    ),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        metavar="GLOB",
        help="Leave out files a directory or pattern finds whose name or path matches "
        "(repeatable): SHA256SUMS, manifest.json, 'archive/*'.",
    ),
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print only the summary lines: what was read and what was found "
        "(and the names of unreadable files).",
        metavar=FLAG,
    ),
]


def run_ingest(
    store: Store,
    paths: list[str],
    inventory: list[str] | None,
    config: Config,
    format_hint: str | None,
    quiet: bool,
    exclude: Sequence[str] = (),
) -> IngestReport:
    """Shared by `ingest` and `scan`: load files, show progress and the summary."""
    console = stderr_console()
    progress = ingest_progress(console, enabled=not quiet, con=store.con)
    with progress as (on_file, on_start, on_staged):
        report = ingest_paths(
            store,
            paths,
            inventory or [],
            config,
            format_hint,
            on_file=on_file,
            on_start=on_start,
            one_shot=store.path is None,  # an in-memory store ends with the command
            on_staged=on_staged,
            exclude=exclude,
        )
    errors = _first_rejections(store, report)
    all_empty = bool(report.files) and len(report.skipped_files) == len(report.files)
    if not report.anything_read and not all_empty:
        # One line says why; the table of zeros would only hide it. (Inputs that all hold
        # nothing to audit, a quiet hour's exports, are a run with nothing found.)
        print_problems(
            console,
            report,
            [] if quiet else errors,  # --quiet counts rejected records, never lists them
            show_files=len(report.files) > 1,
            hide_count=quiet,
            store_path=store.path,
        )
        raise AuditError(_nothing_read(report, [*paths, *(inventory or [])]))
    print_ingest_summary(console, report, errors, quiet=quiet, store_path=store.path)
    return report


def _first_rejections(store: Store, report: IngestReport) -> list[tuple[str, int, str]]:
    """The first rejects the store holds of the files this run rejected records of (a
    `--db` store also holds the rejects of an earlier copy of a file read fine now)."""
    sources = [f.source for f in report.files if f.rejected]
    return [
        (str(source), int(line), str(reason))
        for source, line, reason in store.con.execute(
            "SELECT source_file, source_line, reason FROM ingest_errors "
            "WHERE source_line > 0 AND list_contains(?, source_file) "
            "ORDER BY source_file, source_line LIMIT 10",
            [sources],
        ).fetchall()
    ]


def _nothing_read(report: IngestReport, names: list[str]) -> str:
    """The fatal line when no record at all could be read, naming the file or the inputs."""
    if len(report.files) == 1 and report.failed_files:
        only = report.files[0]
        return f"{only.source}: {only.error}"
    failed = len(report.failed_files)
    skipped = len(report.skipped_files)
    nothing = f", {skipped} with nothing to audit" if skipped else ""
    return (
        f"nothing could be read from {', '.join(names)}: "
        f"{failed} of {counted(len(report.files), 'file')} unreadable{nothing}, "
        f"{report.rejected} {noun_for(report.rejected, 'record')} rejected"
    )


@contextmanager
def open_store(db: Path | None, options: StoreOptions) -> Iterator[Store]:
    """Open the store; a `--db` file this run created is removed again if the run fails
    before it committed a file.

    So a failed or interrupted first `ingest` never leaves an empty database behind, and one
    interrupted after some files keeps them (each file is committed on its own): run it
    again to add the rest.
    """
    created = db is not None and not db.exists()
    store = None
    try:
        # Inside the try: Ctrl-C while the schema is being written left an empty file.
        store = Store.open(db, options)
        with prompt_interrupts(store.con):
            yield store
    except BaseException:
        if store is not None:
            created = created and not _holds_files(store)
            store.close()
        if created and db is not None:
            for path in (db, write_ahead_log(db)):
                path.unlink(missing_ok=True)
        raise
    finally:
        if store is not None:
            store.close()


def _holds_files(store: Store) -> bool:
    """Whether the store committed any input file (an interrupted run may have)."""
    store.rollback_quietly()  # an interrupt may have left a transaction open
    try:
        return bool(store.scalar("SELECT count(*) FROM ingested_files"))
    except duckdb.Error:
        return False


def _check_strict(report: IngestReport, strict: bool, stored: bool = False) -> None:
    """`stored`: the report is what a --db store ingested before, not this run's files."""
    problem = run_failure(report, strict, stored)
    if problem:
        raise AuditError(problem)


def run_failure(report: IngestReport, strict: bool, stored: bool = False) -> str | None:
    """Why the run fails (exit 2) whatever it found, if it does: no log could be read, or
    what `--strict` refuses."""
    return no_event_read(report) or strict_failure(report, strict, stored)


def no_event_read(report: IngestReport) -> str | None:
    """Why a run that audited no call fails, when the logs it was given could not be read.

    A log is a file of a log format, records that no format claims (a log read with a
    wrong `mapping:`) or a gzip file cut short or corrupt; a stray text file beside an
    inventory is not one. The run fails when
    such a log is unreadable and no file yielded an event, whatever else loaded: the
    findings would cover the inventory alone, and a gate must not pass on that.
    """
    unreadable_logs = [f for f in report.failed_files if f.counts_as_log]
    events_read = any(
        f.kind == "events" and not f.error and (f.loaded or f.duplicates or f.already_ingested)
        for f in report.files
    )
    if not unreadable_logs or events_read:
        return None
    names = ", ".join(f.source for f in unreadable_logs[:3])
    more = f" and {len(unreadable_logs) - 3:,} more" if len(unreadable_logs) > 3 else ""
    return (
        f"no event could be loaded: {counted(len(unreadable_logs), 'log')} unreadable "
        f"({names}{more}), so no call was audited"
    )


def strict_failure(report: IngestReport, strict: bool, stored: bool = False) -> str | None:
    """Why `--strict` fails the run, if it does."""
    warned = [file for file in report.files if file.warnings]
    if strict and warned and not (report.rejected or report.failed_files):
        return (
            f"--strict: {counted(len(warned), 'file')} loaded with a warning (in the ingest "
            "summary, and in a json report's inputs)"
        )
    if not strict or not (report.rejected or report.failed_files):
        return None
    where = " when the store's files were ingested (see its ingest_errors table)"
    return (
        f"--strict: {counted(report.rejected, 'record')} rejected, "
        f"{counted(len(report.failed_files), 'file')} unreadable{where if stored else ''}"
    )


@app.command(cls=HelpCommand)
@handle_errors
def ingest(
    db: Annotated[Path, typer.Option("--db", metavar="FILE", help="The DuckDB file to add to.")],
    paths: IngestPathsArg = None,
    inventory: InventoryOpt = None,
    config: ConfigOpt = None,
    format_hint: HintOpt = None,
    exclude: ExcludeOpt = None,
    strict: StrictOpt = False,
    threads: ThreadsOpt = None,
    memory_limit: MemoryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Load logs and inventories into a persistent store; the same file twice adds nothing."""
    if not paths and not inventory:
        raise AuditError("ingest: give a log PATH or --inventory FILE")
    settings = load_config(config)
    with open_store(db, StoreOptions(threads=threads, memory_limit=memory_limit)) as store:
        report = run_ingest(
            store, paths or [], inventory, settings, format_hint, quiet, exclude or []
        )
    _check_strict(report, strict)


@app.command(cls=HelpCommand)
@handle_errors
def scan(
    paths: ScanPathsArg = None,
    inventory: InventoryOpt = None,
    db: DbOpt = None,
    config: ConfigOpt = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="TIME",
            help="The clock every check uses (ISO 8601, UTC if no offset). Default: now.",
        ),
    ] = None,
    rules: Annotated[
        list[Path] | None,
        typer.Option(
            "--rules",
            metavar="DIR",
            help="Extra rules directory (repeatable), added to the bundled pack.",
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", "-f", metavar="FORMAT", help="table, json, csv, sarif, junit or markdown."
        ),
    ] = DEFAULT_FORMAT,
    # Text, not Path: a Path drops the `/` of `report.json/`, which must stay an error.
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to this file (only once the scan succeeded).",
        ),
    ] = None,
    also_report: Annotated[
        list[str] | None,
        typer.Option(
            "--report",
            metavar="FORMAT:FILE",
            help="Also write a report in FORMAT to FILE (repeatable): one scan, many reports.",
        ),
    ] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            "--fail-on",
            metavar="SEVERITY",
            help="Exit 1 on findings at or above: info, low, medium, high, critical, or never.",
        ),
    ] = "high",
    min_severity: Annotated[
        str | None,
        typer.Option(
            "--min-severity",
            metavar="SEVERITY",
            help="Report only findings at or above this severity.",
        ),
    ] = None,
    problem: Annotated[
        list[str] | None,
        typer.Option("--problem", metavar="KEY", help="Report only this problem key (repeatable)."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="Findings listed in this baseline file do not fail the run.",
        ),
    ] = None,
    write_baseline: Annotated[
        str | None,
        typer.Option(
            "--write-baseline", metavar="FILE", help="Record the current finding ids in this file."
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Add locations and rule ids to the terminal report.",
            metavar=FLAG,
        ),
    ] = False,
    format_hint: HintOpt = None,
    exclude: ExcludeOpt = None,
    strict: StrictOpt = False,
    threads: ThreadsOpt = None,
    memory_limit: MemoryOpt = None,
    rule_timeout: Annotated[
        float,
        typer.Option(
            "--rule-timeout",
            min=0.001,
            max=1_000_000,  # 11 days; more overflows the timer
            metavar="SECONDS",
            help="Stop a rule still running after this long, and fail the scan.",
        ),
    ] = DEFAULT_RULE_TIMEOUT,
    quiet: QuietOpt = False,
) -> None:
    """Ingest the inputs, run the rule pack, report findings; the exit code gates CI."""
    clock = clock_of(as_of)
    reporter = get_reporter(output_format)
    extra_reports = [_extra_report(value) for value in also_report or []]
    fail_on = policy.check_fail_on(fail_on)
    min_severity = policy.check_severity(min_severity)
    if write_baseline is not None and (min_severity or problem):
        raise AuditError(
            "--write-baseline records every finding: run it without --min-severity and "
            "--problem (a baseline of what they leave in fails the next run on the rest)"
        )
    if output == "-":  # `-o -`: standard output, as for the inputs
        output = None
    if output is None and sys.stdout is None:  # the shell closed it (`>&-`)
        raise AuditError("standard output is closed: give --output FILE for the report")
    if write_baseline == "-":
        raise AuditError("--write-baseline -: a baseline is a file to commit; give its path")
    settings = load_config(config)
    # Everything that can be wrong with the flags, config and rules fails before any input
    # is read: on gigabytes of logs, a typo should cost a second, not a whole ingest.
    selection = prepare_rules(settings, clock, list(rules or []))
    pack = selection.rules
    policy.check_problems(problem or [], [*PROBLEMS, *(rule.problem for rule in pack)])
    named = _named_inputs(paths, inventory, settings, db, pack, list(rules or []))
    report_files = _given([("--output", output), *(("--report", f) for _, f in extra_reports)])
    _check_outputs(report_files, write_baseline, baseline, named)
    _check_not_a_rule([*report_files, ("--write-baseline", write_baseline)], rules or [])
    accepted = policy.load_baseline(baseline) if baseline else None
    from_store = not paths and not inventory  # --db alone: check what it already holds
    if from_store and db is None:
        raise AuditError("scan: give a log PATH, or --db with a store that already holds events")
    with open_store(db, StoreOptions(threads=threads, memory_limit=memory_limit)) as store:
        if from_store:  # the rules run again on the store, judged as its files came in
            report = stored_report(store)
            if not report.files:
                raise AuditError(f"{db}: the store holds nothing yet; give a log PATH to ingest")
        else:
            report = run_ingest(
                store, paths or [], inventory, settings, format_hint, quiet, exclude or []
            )
            # Found in a directory or by a pattern: known only now, and before the rules run.
            _check_outputs(report_files, write_baseline, baseline, _inputs_read(report))
        # The scan still runs and reports what could be read: a CI job that fails on a bad
        # line still uploads the findings of the rest. The exit code is 2 all the same.
        run_problem = run_failure(report, strict, stored=from_store)
        if run_problem and write_baseline is not None:
            run_problem += f"; no baseline written to {write_baseline}"
        with scan_progress(stderr_console(), len(pack) + 1, enabled=not quiet) as on_step:
            result = run_scan(
                store,
                settings,
                clock,
                inputs=input_summaries(report),
                rules=selection,
                on_step=on_step,
                rule_timeout=rule_timeout,
            )
        warnings = policy.apply_policy(
            result,
            suppressions=settings.suppressions,
            baseline=accepted,
            min_severity=min_severity,
            problems=problem or [],
        )
        nothing_audited = held_nothing_note(result)
        if strict and not run_problem and nothing_audited:  # a gate that passed on nothing
            run_problem = f"--strict: {nothing_audited}"
        if write_baseline is not None and accepted is None and not run_problem:
            policy.adopt_as_baseline(result)  # the run that adopts the gate passes
        if store.path is not None:  # an in-memory store is gone in a moment: nothing to keep
            save_findings(store, result)
    console = stderr_console()
    reporters = _distinct([reporter, *(extra for extra, _ in extra_reports)])
    for warning in [*warnings, *(w for each in reporters for w in each.warnings(result))]:
        console.print(f"m2maudit: warning: {clean_text(warning)}", markup=False, soft_wrap=True)
    stream = None if output is not None else sys.stdout
    options = ReportOptions.for_stream(
        stream, verbose=verbose, quiet=quiet, fail_on=fail_on, strict_failure=run_problem
    )
    text = reporter.render(result, options)
    if output is not None:
        output_file.write_output(output, text)
    else:
        sys.stdout.write(text)
    file_options = ReportOptions.for_stream(
        None, verbose=verbose, quiet=quiet, fail_on=fail_on, strict_failure=run_problem
    )
    for extra, path in extra_reports:
        output_file.write_output(path, extra.render(result, file_options), label="--report")
    if write_baseline is not None and not run_problem:  # not from inputs the run refused
        recorded = policy.write_baseline(write_baseline, result)
        if not quiet:
            console.print(
                f"baseline: {counted(recorded, 'finding')} recorded in {write_baseline}",
                markup=False,
            )
    code = EXIT_ERROR if run_problem else policy.exit_code(result, fail_on)
    if report_files or reporter.name != DEFAULT_FORMAT:
        # The table carries its own summary; a machine format on stdout or a file does not:
        # the same line as the table's last, for the CI log.
        names = ", ".join(str(path) for _, path in report_files)
        written = f" (report{'s' if len(report_files) > 1 else ''} in {names})" if names else ""
        console.print(
            f"m2maudit: {summary_line(result, fail_on)}; exit {code}{written}",
            markup=False,
            soft_wrap=True,  # one line in a CI log, however narrow
        )
    if run_problem:
        raise AuditError(run_problem)
    raise typer.Exit(code)


@app.command(cls=HelpCommand)
@handle_errors
def init(
    where: Annotated[
        str,
        typer.Argument(
            metavar="PATH",
            help="Where to write the starter config (in a directory: its .m2maudit.yaml).",
        ),
    ] = CONFIG_FILENAME,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing file.", metavar=FLAG)
    ] = False,
) -> None:
    """Write a commented starter `.m2maudit.yaml` with every threshold at its default."""
    path = Path(where)
    # `init repo/`: the config the scans run in that directory would find. A trailing slash
    # says a directory even when there is none (which is then an error, not a file `repo`).
    if path.is_dir() or where.endswith(("/", os.sep)):
        path = path / CONFIG_FILENAME
    if path.exists() and not force:
        raise AuditError(f"{path}: already exists (use --force to overwrite)")
    output_file.write_output(path, starter_config(), label="config")
    typer.echo(f"wrote {path}")


app.add_typer(rules_app, name="rules")
app.command("formats", cls=HelpCommand)(handle_errors(formats_command))


# Python's cycle collector runs every 700 new objects by default; a scan builds hundreds of
# thousands (findings, their dicts, rows fetched from DuckDB), nearly none in a cycle, and the
# collector walking them again and again took a third of rendering 37 000 findings.
GC_THRESHOLDS = (50_000, 20, 20)


def main() -> None:
    """The console script: like `app()`, but a usage error is one line too, not a box."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("m2maudit: error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except SystemExit:
        raise
    except Exception as exc:
        if _interrupted(exc):
            print("m2maudit: error: interrupted", file=sys.stderr)
            sys.exit(130)
        if _is_usage_error(exc):
            if str(exc.format_message()).strip():  # type: ignore[attr-defined]
                print(f"m2maudit: error: {_usage_message(exc)}", file=sys.stderr)
            # else: a command with no arguments printed its help; the line would be empty
            sys.exit(EXIT_ERROR)
        print(f"m2maudit: internal error: {type(exc).__name__}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except BaseException as exc:  # a bug: say so in one line, without locals or tokens
        print(f"m2maudit: internal error: {type(exc).__name__}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else policy.EXIT_OK)


def _is_usage_error(exc: Exception) -> bool:
    """Click's (or Typer's vendored Click's) UsageError, without importing either by name."""
    return hasattr(exc, "format_message") and getattr(exc, "exit_code", None) == EXIT_ERROR


def _usage_message(exc: Exception) -> str:
    context = getattr(exc, "ctx", None)
    name = getattr(context, "info_name", None)
    where = f"{name}: " if name and context is not None and context.parent is not None else ""
    message = str(exc.format_message()).replace("\n", " ")  # type: ignore[attr-defined]
    return f"{where}{message} (see --help)"
