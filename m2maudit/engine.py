"""The rule engine: validate every rule against the real schema, then run them all.

Rule SQL is untrusted: it is checked to be one SELECT, bound only through named parameters,
and executed after DuckDB's external access is switched off and the configuration locked, so
a rule can read the canonical tables and nothing else. Each rule aggregates in SQL to one row
per finding; Python only turns those few rows into `Finding` objects.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from m2maudit.config import Config
from m2maudit.errors import AuditError, first_line
from m2maudit.findings import Finding, Location, SkippedRule, finding_id
from m2maudit.fingerprint import sha256_prefix
from m2maudit.rules import REQUIRED_COLUMNS, Rule, RuleErrors, message_fields, render_message
from m2maudit.store import Store
from m2maudit.timeutil import utc_instant
from m2maudit.views import create_views

MAX_LOCATIONS = 5
# Rule SQL is untrusted, and so is its cost: a rule that runs away (a join of every event with
# every event) is stopped after this long, and one that gives more rows than this did not
# aggregate (a row per event, say). Either fails the scan, naming the rule.
DEFAULT_RULE_TIMEOUT = 600.0
MAX_FINDINGS_PER_RULE = 250_000
_CORE_COLUMNS = {*REQUIRED_COLUMNS, "discriminator"}
_REQUIRE_REASONS = {
    "events": "no access events were loaded",
    "credentials": "no token inventory was given (use --inventory)",
    "tokens": "no bearer tokens were seen in the logs",
}
# A rule its author retired (Sigma's `status: deprecated`) is kept for reference, not run.
DEPRECATED_REASON = "its status is deprecated (name it in the config's select: to run it)"


@dataclass
class RuleRun:
    findings: list[Finding]
    skipped: list[SkippedRule]


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """From here on SQL can read the store and nothing else: no files, no network, no SET."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def rule_params(rule: Rule, config: Config, as_of: datetime) -> dict[str, Any]:
    """Defaults from the rule, then global thresholds of the same name, then per-rule config."""
    thresholds = config.thresholds
    values: dict[str, Any] = dict(rule.params)
    for name in values:
        if hasattr(thresholds, name):
            value = getattr(thresholds, name)
            values[name] = value.total_seconds() if isinstance(value, timedelta) else value
    written = {key.lower(): key for key in config.params}  # in any case, once (config.py)
    for key in (written[k] for k in (rule.id.lower(), rule.name.lower()) if k in written):
        where = f"{config.path or 'config'}: params.{key}"
        for name, value in config.params[key].items():
            values[name] = checked_param(rule, name, value, where)
    values["as_of"] = as_of
    return values


def checked_param(rule: Rule, name: str, value: Any, where: str) -> Any:
    """A parameter given for `rule` (by a config, or a rule's own test case), checked against
    the rule's default: a number for a number, a list for a list. Otherwise the query fails,
    and names the rule file, not `where` the value was written."""
    if name not in rule.params:
        raise AuditError(f"{where}: rule has no parameter {name!r}")
    default = rule.params[name]
    numeric = _is_number(default)
    if isinstance(default, str) and not isinstance(value, str):
        # Not str(value): YAML has already read 012345678901 as octal, `yes` as true.
        raise AuditError(
            f"{where}.{name}: expected text; put it in "
            f"quotes (YAML read it as the {type(value).__name__} {value!r})"
        )
    fits = _is_number(value) if numeric else isinstance(value, type(default))
    if not fits:
        kind = "a number" if numeric else f"a {type(default).__name__}"
        raise AuditError(
            f"{where}.{name}: expected {kind} (the default is {default!r}), not {value!r}"
        )
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def used_params(rule: Rule, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses unused named parameters: pass only those the query mentions."""
    return {k: v for k, v in params.items() if f"${k}" in rule.query}


def check_rules_against_schema(rules: list[Rule], config: Config, as_of: datetime) -> None:
    """Bind every query on an empty store (DESCRIBE, no data): columns, params, placeholders."""
    scratch = Store.open()
    try:
        create_views(scratch.con, config)
        lock_down(scratch.con)
        errors = [e for rule in rules if (e := describe_error(scratch.con, rule, config, as_of))]
    finally:
        scratch.close()
    if errors:
        raise RuleErrors(errors)


def describe_error(
    con: duckdb.DuckDBPyConnection, rule: Rule, config: Config, as_of: datetime
) -> str | None:
    where = f"{rule.path}:{rule.query_line}"
    try:
        params = used_params(rule, rule_params(rule, config, as_of))
        cursor = con.execute(f"SELECT * FROM ({rule.query}) AS rule_query LIMIT 0", params)
    except AuditError as exc:
        return str(exc)
    except duckdb.Error as exc:
        return f"{where}: query does not run: {binder_words(first_line(exc))}"
    columns = [d[0] for d in cursor.description or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        return f"{where}: query output lacks required column(s): {', '.join(missing)}"
    types = {d[0]: str(d[1]) for d in cursor.description or []}
    for column in ("first_seen", "last_seen"):
        if types[column] not in TIME_TYPES:
            return f"{where}: {column} must be a time (TIMESTAMPTZ), not {types[column]}"
    unknown = [f for f in message_fields(rule.message) if f not in columns]
    if unknown:
        return (
            f"{rule.path}:{rule.message_line}: message uses {', '.join(unknown)}, not columns "
            f"of the query (it gives {', '.join(columns)})"
        )
    return None


# What `first_seen` and `last_seen` may be (DuckDB's names for the query's column types).
TIME_TYPES = ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DATE", '"NULL"')


def binder_words(message: str) -> str:
    """DuckDB calls an alias of a view a `Values list` (`FROM ev e` then `e.nope`): name
    the alias the rule wrote instead."""
    return re.sub(r'\bValues list "([^"]*)"', r'"\1" (in FROM)', message)


def run_rules(
    store: Store,
    rules: list[Rule],
    config: Config,
    as_of: datetime,
    severity: dict[str, str] | None = None,
    on_rule: Callable[[str], None] | None = None,
    timeout: float = DEFAULT_RULE_TIMEOUT,
) -> RuleRun:
    """Run rules on a prepared, locked store; rules whose input is absent are skipped.
    `on_rule` hears each rule's id as it starts (a progress display); `timeout` is each
    rule's time limit, in seconds."""
    present = {table: store.has_rows(table) for table in ("events", "credentials", "tokens")}
    findings: list[Finding] = []
    skipped: list[SkippedRule] = []
    for rule in rules:
        if on_rule:
            on_rule(rule.id)
        if rule.status == "deprecated" and not rule.selected_by_name:
            skipped.append(SkippedRule(rule.id, DEPRECATED_REASON))
            continue
        absent = [t for t in rule.requires if not present[t]]
        if absent:
            skipped.append(SkippedRule(rule.id, _REQUIRE_REASONS[absent[0]]))
            continue
        level = (severity or {}).get(rule.id, rule.severity)
        findings.extend(run_rule(store.con, rule, config, as_of, level, timeout))
    findings.sort(key=Finding.sort_key)
    return RuleRun(findings, skipped)


def run_rule(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    config: Config,
    as_of: datetime,
    severity: str,
    timeout: float = DEFAULT_RULE_TIMEOUT,
) -> list[Finding]:
    params = used_params(rule, rule_params(rule, config, as_of))
    where = f"{rule.path}:{rule.query_line}: rule {rule.id}"
    with _time_limit(con, timeout) as expired:
        try:
            cursor = con.execute(rule.query, params)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchmany(MAX_FINDINGS_PER_RULE + 1)
        except duckdb.Error as exc:
            if expired.is_set():
                raise AuditError(
                    f"{where} was stopped after {timeout:g} s (--rule-timeout)"
                ) from None
            raise AuditError(f"{where} failed: {first_line(exc)}") from None
    if len(rows) > MAX_FINDINGS_PER_RULE:
        raise AuditError(
            f"{where} gave over {MAX_FINDINGS_PER_RULE:,} findings: a rule must aggregate "
            "to one row per finding (GROUP BY the principal or the credential)"
        )
    return [to_finding(rule, dict(zip(columns, row, strict=True)), severity) for row in rows]


@contextmanager
def _time_limit(con: duckdb.DuckDBPyConnection, seconds: float) -> Iterator[threading.Event]:
    """Interrupt `con`'s query once `seconds` have passed; the event says whether it did.
    An interrupt that comes after the query ended does not carry over to the next one."""
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        con.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield expired
    finally:
        timer.cancel()


def to_finding(rule: Rule, row: dict[str, Any], severity: str) -> Finding:
    # The id is of the values as the store holds them; what a report shows is cut short.
    stable_id = finding_id(
        rule.id,
        _text(row.get("principal")),
        _text(row.get("token_id")),
        _text(row.get("discriminator")),
    )
    row = {name: shortened(value) for name, value in row.items()}
    principal = _text(row.get("principal"))
    token_id = _text(row.get("token_id"))
    # A column named `_...` is for the message alone (text the rule composed from evidence
    # it also gives): shown once, in the message, not again as evidence.
    evidence = {
        k: jsonable(v) for k, v in row.items() if k not in _CORE_COLUMNS and not k.startswith("_")
    }
    return Finding(
        id=stable_id,
        rule_id=rule.id,
        rule_name=rule.name,
        problem=rule.problem,
        severity=severity,
        confidence=rule.confidence,
        title=rule.title,
        message=render_message(rule.message, row),
        principal=principal,
        token_id=token_id,
        count=int(row.get("count") or 0),
        first_seen=utc_instant(row.get("first_seen")),
        last_seen=utc_instant(row.get("last_seen")),
        evidence=evidence,
        stated=tuple(name for name in message_fields(rule.message) if name in evidence),
        locations=_locations(row.get("locations")),
        remediation=rule.remediation.strip(),
        references=tuple(rule.references),
        owasp_nhi=tuple(rule.owasp_nhi),
    )


# Text longer than this is cut short in a finding: a log can name a principal with
# megabytes of text, which every report would otherwise copy, once per finding.
LONGEST_SHOWN = 1000
_SHOWN_START = 200


def shortened(value: Any) -> Any:
    """`value` with any text in it over `LONGEST_SHOWN` characters cut to its start, its
    length and a fingerprint (two long values that differ stay apart)."""
    if isinstance(value, str) and len(value) > LONGEST_SHOWN:
        digest = sha256_prefix(value)
        return f"{value[:_SHOWN_START]}... [{len(value):,} characters, sha256 {digest}]"
    if isinstance(value, list | tuple):
        return [shortened(item) for item in value]
    if isinstance(value, dict):
        return {key: shortened(item) for key, item in value.items()}
    return value


def _locations(value: Any) -> list[Location]:
    if not value:
        return []
    found = {
        Location(str(item["file"]), int(item["line"]))
        for item in value
        if isinstance(item, dict) and item.get("file") is not None
    }
    return sorted(found, key=lambda loc: (loc.file, loc.line))[:MAX_LOCATIONS]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def jsonable(value: Any) -> Any:
    """Evidence goes to JSON reports: times as ISO strings, decimals as numbers."""
    from decimal import Decimal

    from m2maudit.timeutil import iso

    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value
