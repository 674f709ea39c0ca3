"""A scan, as a library call: prepared store + rules + config + clock -> `ScanResult`.

The CLI's `scan` command is this function plus ingest, reporting and the exit code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from m2maudit.config import Config, folded
from m2maudit.engine import (
    DEFAULT_RULE_TIMEOUT,
    check_rules_against_schema,
    lock_down,
    run_rules,
)
from m2maudit.errors import AuditError
from m2maudit.findings import Finding, ScanResult
from m2maudit.ingest_report import IngestReport
from m2maudit.rules import Rule, load_rules
from m2maudit.store import Store
from m2maudit.views import create_views


def input_summaries(report: IngestReport) -> list[dict[str, Any]]:
    """What reports list as inputs: one entry per file, in the order they were read (by name)."""
    return [
        {
            "source": f.source,
            "kind": f.kind,
            "format": f.format,
            "loaded": f.loaded,
            "duplicates": f.duplicates,
            "rejected": f.rejected,
            "error": f.error,
            "skipped": f.skipped,
            "warnings": list(f.warnings),
            "by_record": f.by_record,
        }
        for f in report.files
    ]


def select_rules(rules: list[Rule], config: Config) -> list[Rule]:
    """Apply the config's `select` and `ignore` (rule ids, names or problem keys, in any case).

    A name that matches no rule is an error, there and in `severity` and `params`: a typo in
    `select` would otherwise switch every check off and let a CI gate pass on nothing, one
    in `severity` would never raise the rule it meant to.
    """
    known = folded(key for rule in rules for key in (rule.id, rule.name, rule.problem))
    rule_names = folded(key for rule in rules for key in (rule.id, rule.name))
    for option, names, allowed, what in (
        ("select", config.select, known, "rule or problem"),
        ("ignore", config.ignore, known, "rule or problem"),
        ("severity", list(config.severity), known, "rule or problem"),
        ("params", list(config.params), rule_names, "rule"),
    ):
        unknown = [name for name in names if name.lower() not in allowed]
        if unknown:
            where = f"{config.path}: " if config.path else ""
            raise AuditError(
                f"{where}{option}: no {what} named {unknown[0]!r} (see `m2maudit rules list`)"
            )

    select, ignore = folded(config.select), folded(config.ignore)

    def named(rule: Rule, names: set[str]) -> bool:
        return bool(folded((rule.id, rule.name, rule.problem)) & names)

    chosen = [r for r in rules if not select or named(r, select)]
    chosen = [r for r in chosen if not named(r, ignore)]
    for rule in chosen:  # a rule asked for by name runs, deprecated or not
        rule.selected_by_name = bool(folded((rule.id, rule.name)) & select)
    runnable = [r for r in chosen if r.status != "deprecated" or r.selected_by_name]
    if rules and not runnable:  # a gate with no check passes on anything
        where = f"{config.path}: " if config.path else ""
        deprecated = ", all deprecated (name one by id to run it)" if chosen else ""
        raise AuditError(f"{where}select and ignore leave no rule to run{deprecated}")
    return chosen


@dataclass(frozen=True)
class RuleSelection:
    """The rules a scan runs, and the ids of those the config's `select` and `ignore` left
    out: a report says so, or a config that switched a check off would read as a pass."""

    rules: list[Rule]
    left_out: list[str]


def prepare_rules(
    config: Config, as_of: datetime, rule_dirs: list[Path] | None = None, include_pack: bool = True
) -> RuleSelection:
    """Load, select and check every rule against the schema: all before any input is read."""
    loaded = load_rules(rule_dirs or [], include_pack)
    rules = select_rules(loaded, config)
    check_rules_against_schema(rules, config, as_of)
    chosen = {rule.id for rule in rules}
    return RuleSelection(rules, sorted(rule.id for rule in loaded if rule.id not in chosen))


def severity_overrides(rules: list[Rule], config: Config) -> dict[str, str]:
    overrides: dict[str, str] = {}
    severity = {key.lower(): value for key, value in config.severity.items()}  # any case
    for rule in rules:
        for key in (rule.problem, rule.name, rule.id):  # most specific wins
            if key.lower() in severity:
                overrides[rule.id] = severity[key.lower()]
    return overrides


def attribution(store: Store, min_attribution: float) -> dict[str, Any]:
    """How many agent actions are tied to a human, an agent, a credential, a trace, and all four.

    Counts, not shares, so reports can show both (see `m2maudit.reporters.summary`), with
    the threshold below which the terminal report shows a share in red.
    """
    row = store.con.execute(
        """
        SELECT coalesce(sum(calls), 0),
               coalesce(sum(calls) FILTER (WHERE human IS NOT NULL), 0),
               coalesce(sum(calls) FILTER (WHERE actor IS NOT NULL), 0),
               coalesce(sum(calls) FILTER (WHERE credential IS NOT NULL), 0),
               coalesce(sum(calls) FILTER (WHERE traced), 0),
               coalesce(sum(calls) FILTER (WHERE human IS NOT NULL AND actor IS NOT NULL
                                           AND credential IS NOT NULL AND traced), 0)
        FROM ev_groups WHERE actor_kind = 'agent'
        """
    ).fetchone()
    keys = ("agent_actions", "human", "agent", "credential", "trace", "all")
    counts: dict[str, Any] = dict(zip(keys, (int(v) for v in row or (0,) * len(keys)), strict=True))
    return {**counts, "min_attribution": min_attribution}


def run_scan(
    store: Store,
    config: Config,
    as_of: datetime,
    rule_dirs: list[Path] | None = None,
    include_pack: bool = True,
    inputs: list[dict[str, Any]] | None = None,
    rules: RuleSelection | None = None,
    on_step: Callable[[str], None] | None = None,
    rule_timeout: float = DEFAULT_RULE_TIMEOUT,
) -> ScanResult:
    """Validate the rules, build the shared views, lock the store down, run every rule.

    `rules`: as `prepare_rules` gives them (the CLI prepares them before reading any input).
    `on_step` hears what starts: "shared views", then each rule's id (a progress display;
    on millions of events each takes seconds). A rule still running after `rule_timeout`
    seconds is stopped and fails the scan."""
    selection = rules or prepare_rules(config, as_of, rule_dirs, include_pack)
    rules_run = selection.rules
    if on_step:
        on_step("shared views")
    create_views(store.con, config)
    coverage = attribution(store, config.thresholds.min_attribution)
    window = store.con.execute("SELECT min(ts), max(ts) FROM events").fetchone() or (None, None)
    lock_down(store.con)
    overrides = severity_overrides(rules_run, config)
    outcome = run_rules(
        store, rules_run, config, as_of, overrides, on_rule=on_step, timeout=rule_timeout
    )
    return ScanResult(
        as_of=as_of,
        findings=outcome.findings,
        rules=[r.info(overrides.get(r.id)) for r in rules_run],
        skipped=outcome.skipped,
        inputs=inputs or [],
        window=(window[0], window[1]),
        attribution=coverage,
        stats={
            "events": store.scalar("SELECT count(*) FROM events"),
            "credentials": store.scalar("SELECT count(*) FROM credentials"),
            "tokens": store.scalar("SELECT count(*) FROM tokens"),
            "rejected": store.scalar("SELECT count(*) FROM ingest_errors"),
            "config": {
                "file": str(config.path) if config.path else None,
                "rules_left_out": selection.left_out,
            },
        },
    )


def save_findings(store: Store, result: ScanResult) -> None:
    """Keep the last scan's findings in the store, so a persisted --db answers for it.

    One bulk insert from a DataFrame: row-by-row inserts take seconds per ten thousand findings.
    The old findings are replaced in one transaction: a run interrupted half-way (a trial's
    SIGTERM between the delete and the insert) must not leave a store that says "no findings".
    """
    if not result.findings:  # one statement: nothing to insert, and no pandas to import
        store.con.execute("DELETE FROM findings")
        return
    import pandas as pd  # here, not at the top: importing pandas costs every command 0.3 s

    columns = [row[0] for row in store.con.execute("DESCRIBE findings").fetchall()]
    frame = pd.DataFrame([_finding_row(f, result.as_of) for f in result.findings], columns=columns)
    store.con.register("_new_findings", frame)
    try:
        with store.transaction():
            store.con.execute("DELETE FROM findings")
            store.con.execute(
                f"INSERT INTO findings SELECT {', '.join(columns)} FROM _new_findings"
            )
    finally:
        store.con.unregister("_new_findings")


def _finding_row(f: Finding, as_of: datetime) -> list[Any]:
    return [
        f.id,
        f.rule_id,
        f.rule_name,
        f.problem,
        f.severity,
        f.confidence,
        f.title,
        f.message,
        f.principal,
        f.token_id,
        f.count,
        f.first_seen,
        f.last_seen,
        json.dumps(f.evidence, sort_keys=True, default=str),
        json.dumps([loc.to_dict() for loc in f.locations]),
        f.suppressed,
        f.baselined,
        as_of,
    ]
