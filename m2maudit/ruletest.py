"""Run each rule's own test cases: the same harness for the pack and for custom rules.

A case inserts rows straight into the canonical tables (so it tests the rule, not an
adapter), runs the one rule, and compares the findings with `expect`: each expected
finding names its `principal` and `token_id` (a case whose entries all leave `token_id` out
compares principals only), and may pin its `message` and some `evidence` columns. Every
expected finding must be found and nothing else. An empty `expect` is a case that must not
fire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import duckdb

from m2maudit.config import Config
from m2maudit.engine import checked_param, jsonable, lock_down, run_rule
from m2maudit.errors import AuditError, first_line
from m2maudit.findings import Finding
from m2maudit.rules import CASE_TABLES, Rule, case_clock
from m2maudit.store import Store
from m2maudit.timeutil import parse_instant, utc_instant
from m2maudit.views import create_views

DEFAULT_AS_OF = "2026-11-28T00:00:00Z"
_DEFAULTS: dict[str, dict[str, Any]] = {
    "events": {"source_format": "test"},
    "credentials": {"source_format": "test", "status": "active", "principal_status": "active"},
    "tokens": {},
    "ingest_errors": {"source_format": "test", "reason": "rejected in a test case"},
}


@dataclass
class CaseResult:
    rule_id: str
    name: str
    passed: bool
    detail: str
    path: str = ""


def run_rule_tests(rules: list[Rule], config: Config | None = None) -> list[CaseResult]:
    config = config or Config()
    results: list[CaseResult] = []
    for rule in rules:
        missing = missing_cases(rule)
        if missing:
            results.append(CaseResult(rule.id, "(its cases)", False, missing, str(rule.path)))
        results.extend(run_case(rule, index, case, config) for index, case in enumerate(rule.tests))
    return results


def missing_cases(rule: Rule) -> str | None:
    """What a rule's cases leave unshown, as in Sigma: that it fires where it should, and
    that it stays quiet where it should. Either alone passes a rule that does nothing, or
    one that fires on everything."""
    cases = [case for case in rule.tests if isinstance(case, dict)]
    fires = any(case.get("expect") for case in cases)
    quiet = any(not case.get("expect") for case in cases)
    if fires and quiet:
        return None
    lacking = {
        (False, False): "no test case",
        (False, True): "no case that expects a finding",
        (True, False): "no case that expects none",
    }[(fires, quiet)]
    return f"{lacking}: a rule needs a case that fires and one that does not"


def run_case(rule: Rule, index: int, case: dict[str, Any], config: Config) -> CaseResult:
    name = str(case.get("name") or f"case {index + 1}")

    def result(passed: bool, detail: str) -> CaseResult:
        return CaseResult(rule.id, name, passed, detail, str(rule.path))

    store = Store.open()
    try:
        as_of = case_clock(case.get("as_of", DEFAULT_AS_OF))
        problems = row_problems(case, table_columns(store.con))
        if problems:
            return result(False, "; ".join(problems))
        for table in CASE_TABLES:
            _insert(store.con, table, case.get(table) or [], str(rule.path))
        create_views(store.con, config)
        lock_down(store.con)
        for param, value in (case.get("params") or {}).items():
            checked_param(rule, param, value, f"{rule.path}: case {name!r}: params")
        case_config = _with_params(config, rule, case.get("params") or {})
        findings = run_rule(store.con, rule, case_config, as_of, rule.severity)
    except Exception as exc:  # a broken case is a failed case, reported, not a crash
        return result(False, f"error: {first_line(exc).removeprefix(f'{rule.path}: ')}")
    finally:
        store.close()
    expected = list(case.get("expect") or [])
    if not _all_matched(expected, findings):
        pinned = any(e.get("evidence") for e in expected)  # show what to compare it with
        found = _found_text(findings, with_evidence=pinned)
        return result(False, f"expected {_expected_text(expected)}; got {found}")
    counts = [f.count for f in findings]
    if "expect_count" in case and counts != [int(case["expect_count"])]:
        detail = f"expected one finding of count {int(case['expect_count'])}, got counts {counts}"
        return result(False, detail)
    return result(True, "ok")


def table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """The columns a case may fill, with their types, per canonical table."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE table_name IN (SELECT unnest($tables::VARCHAR[]))",
        {"tables": list(CASE_TABLES)},
    ).fetchall()
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        columns.setdefault(str(table), {})[str(column)] = str(data_type)
    return columns


def row_problems(case: dict[str, Any], columns: dict[str, dict[str, str]]) -> list[str]:
    """Rows of a case naming a column their table does not have (a typo: `actoin`), or
    giving a time column text that is no time (`2026-13-05`)."""
    problems = []
    for table in CASE_TABLES:
        rows = case.get(table) or []
        for number, row in enumerate(rows if isinstance(rows, list) else []):
            if not isinstance(row, dict):
                continue
            unknown = sorted(map(str, set(row) - set(columns[table])))
            if unknown:
                problems.append(
                    f"{table}[{number}]: {', '.join(unknown)}: not a column of {table} "
                    "(the README's canonical store lists them)"
                )
            problems += [
                f"{table}[{number}]: {name}: {value!r} is not an ISO 8601 time"
                for name, value in row.items()
                if columns[table].get(str(name), "").startswith("TIMESTAMP")
                and isinstance(value, str)
                and not _is_instant(value)
            ]
    return problems


# What DuckDB reads into a TIMESTAMPTZ column; Python also takes `20261120T100000Z`.
_DUCKDB_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?",
    re.IGNORECASE,
)


def _is_instant(text: str) -> bool:
    if not _DUCKDB_TIME.fullmatch(text.strip()):
        return False
    try:
        parse_instant(text)
    except AuditError:
        return False
    return True


def _all_matched(expected: list[dict[str, Any]], findings: list[Finding]) -> bool:
    """Whether each expected finding matches its own finding, with none left over.

    The most specific expectations pick first, so that a bare one cannot take the finding
    a detailed one needs."""
    if len(expected) != len(findings):
        return False
    by_principal_only = any("token_id" not in e for e in expected)
    left = list(findings)
    for want in sorted(expected, key=lambda e: -len(e) - len(e.get("evidence") or {})):
        match = next((f for f in left if _matches(want, f, by_principal_only)), None)
        if match is None:
            return False
        left.remove(match)
    return True


def _matches(want: dict[str, Any], finding: Finding, by_principal_only: bool) -> bool:
    if str(want.get("principal") or "") != (finding.principal or ""):
        return False
    if not by_principal_only and str(want.get("token_id") or "") != (finding.token_id or ""):
        return False
    if "message" in want and str(want["message"]) != finding.message:
        return False
    evidence = want.get("evidence") or {}
    return all(
        key in finding.evidence and _same_evidence(finding.evidence[key], value)
        for key, value in evidence.items()
    )


def _same_evidence(actual: Any, written: Any) -> bool:
    """Whether an evidence value is what a case wrote: a time in any ISO 8601 spelling
    (`2026-11-01T10:00:00Z`, `...+00:00`, a YAML timestamp) matches the report's."""
    if isinstance(written, datetime):
        written = utc_instant(written)
    elif isinstance(written, date):
        written = written.isoformat()
    written = jsonable(written)
    if actual == written:
        return True
    if isinstance(actual, str) and isinstance(written, str):
        try:
            return parse_instant(actual) == parse_instant(written)
        except AuditError:
            return False
    return False


def _expected_text(expected: list[dict[str, Any]]) -> str:
    if not expected:
        return "no findings"
    return "; ".join(
        " / ".join(str(e.get(key) or "-") for key in ("principal", "token_id") if key in e)
        + (f" saying {e['message']!r}" if "message" in e else "")
        + (f" with evidence {e['evidence']}" if e.get("evidence") else "")
        for e in expected
    )


# A failed case names at most this many of what its rule found (a rule that gives a row per
# event would otherwise print every one of them on one line).
_FOUND_SHOWN = 5


def _found_text(findings: list[Finding], with_evidence: bool) -> str:
    if not findings:
        return "no findings"
    shown = "; ".join(
        f"{f.principal or '-'} / {f.token_id or '-'} saying {f.message!r}"
        + (f" with evidence {f.evidence}" if with_evidence else "")
        for f in findings[:_FOUND_SHOWN]
    )
    more = len(findings) - _FOUND_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _with_params(config: Config, rule: Rule, overrides: dict[str, Any]) -> Config:
    """A case's params act like the config's per-rule `params:` (they beat thresholds)."""
    if not overrides:
        return config
    return replace(config, params={**config.params, rule.id: dict(overrides)})


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], source: str
) -> None:
    for number, row in enumerate(rows, start=1):
        values = {**_DEFAULTS[table], **row}
        if table != "tokens":
            values.setdefault("source_file", source)
            values.setdefault("source_line", number)
        if table in ("events", "credentials"):
            values.setdefault("record_key", number)
        columns = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join("?" for _ in values)
        con.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))


def case_data_problems(rules: list[Rule]) -> list[str]:
    """`file:line: tests[i]: ...` for each case row naming a column its table lacks, and
    each case parameter the rule does not take as given; and each rule without a case that
    fires and one that does not: what `rules test` would fail on."""
    store = Store.open()
    try:
        columns = table_columns(store.con)
    finally:
        store.close()
    lacking = [
        f"{rule.path}:{rule.case_lines[0] if rule.case_lines else 1}: {missing}"
        for rule in rules
        if (missing := missing_cases(rule))
    ]
    return lacking + [
        f"{rule.case_where(index)}: {problem}"
        for rule in rules
        for index, case in enumerate(rule.tests)
        if isinstance(case, dict)
        for problem in [*row_problems(case, columns), *_param_problems(rule, case)]
    ]


def _param_problems(rule: Rule, case: dict[str, Any]) -> list[str]:
    params = case.get("params") or {}
    if not isinstance(params, dict):
        return ["params must be a mapping of name: value"]
    problems = []
    for name, value in params.items():
        try:
            checked_param(rule, str(name), value, "params")
        except AuditError as exc:
            problems.append(str(exc))
    return problems
