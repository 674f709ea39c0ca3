"""Run each rule's own test cases: the same harness for the pack and for custom rules.

A case inserts rows straight into the canonical tables (so it tests the rule, not an
adapter), runs the one rule, and compares the findings' (principal, token_id) pairs with
`expect`. An empty `expect` is a case that must not fire.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import duckdb

from m2maudit.config import Config
from m2maudit.engine import checked_param, lock_down, run_rule
from m2maudit.rules import Rule
from m2maudit.store import Store
from m2maudit.timeutil import parse_instant
from m2maudit.views import create_views

DEFAULT_AS_OF = "2026-11-28T00:00:00Z"
_DEFAULTS: dict[str, dict[str, Any]] = {
    "events": {"source_format": "test"},
    "credentials": {"source_format": "test", "status": "active", "principal_status": "active"},
    "tokens": {},
}


@dataclass
class CaseResult:
    rule_id: str
    name: str
    passed: bool
    detail: str


def run_rule_tests(rules: list[Rule], config: Config | None = None) -> list[CaseResult]:
    config = config or Config()
    results: list[CaseResult] = []
    for rule in rules:
        if not rule.tests:
            results.append(
                CaseResult(
                    rule.id,
                    "(no test cases)",
                    False,
                    "a rule needs a case that fires and one that does not",
                )
            )
            continue
        results.extend(run_case(rule, index, case, config) for index, case in enumerate(rule.tests))
    return results


def run_case(rule: Rule, index: int, case: dict[str, Any], config: Config) -> CaseResult:
    name = str(case.get("name") or f"case {index + 1}")
    as_of = _instant(case.get("as_of", DEFAULT_AS_OF))
    store = Store.open()
    try:
        for table in ("events", "credentials", "tokens"):
            _insert(store.con, table, case.get(table) or [], str(rule.path))
        create_views(store.con, config)
        lock_down(store.con)
        for param, value in (case.get("params") or {}).items():
            checked_param(rule, param, value, f"{rule.path}: case {name!r}: params")
        case_config = _with_params(config, rule, case.get("params") or {})
        findings = run_rule(store.con, rule, case_config, as_of, rule.severity)
    except Exception as exc:  # a broken case is a failed case, reported, not a crash
        return CaseResult(rule.id, name, False, f"error: {str(exc).splitlines()[0]}")
    finally:
        store.close()
    got = sorted((f.principal or "", f.token_id or "") for f in findings)
    expected = case.get("expect") or []
    want = sorted((str(e.get("principal") or ""), str(e.get("token_id") or "")) for e in expected)
    if any("token_id" not in e for e in expected):
        got_cmp = sorted(p for p, _ in got)
        want_cmp = sorted(p for p, _ in want)
        passed = got_cmp == want_cmp
    else:
        passed = got == want
    if not passed:
        detail = f"expected {want or 'no findings'}, got {got or 'no findings'}"
        return CaseResult(rule.id, name, False, detail)
    counts = [f.count for f in findings]
    if "expect_count" in case and counts != [int(case["expect_count"])]:
        detail = f"expected one finding of count {int(case['expect_count'])}, got counts {counts}"
        return CaseResult(rule.id, name, False, detail)
    return CaseResult(rule.id, name, True, "ok")


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return parse_instant(value.isoformat())
    return parse_instant(str(value))


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
            values.setdefault("record_key", number)
        columns = ", ".join(f'"{c}"' for c in values)
        marks = ", ".join("?" for _ in values)
        con.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values()))
