"""The rule pack: every rule's own cases, the clean corpus, and the sample estate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from m2maudit.config import PROBLEMS, Config
from m2maudit.engine import check_rules_against_schema
from m2maudit.ingest import ingest_paths
from m2maudit.rules import load_rules
from m2maudit.ruletest import run_case
from m2maudit.scan import run_scan
from m2maudit.store import Store
from m2maudit.timeutil import parse_instant

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_AS_OF = parse_instant("2026-11-28T00:00:00Z")
RULES = load_rules([])
CASES = [(rule, index, case) for rule in RULES for index, case in enumerate(rule.tests)]


def scan_of(*paths: Path) -> list[str]:
    store = Store.open()
    ingest_paths(store, [str(p) for p in paths])
    result = run_scan(store, Config(), SAMPLE_AS_OF)
    store.close()
    return [f.rule_id for f in result.findings]


@pytest.mark.parametrize(("rule", "index", "case"), CASES, ids=[f"{r.id}-{i}" for r, i, _ in CASES])
def test_rule_case(rule, index, case) -> None:
    result = run_case(rule, index, case, Config())
    assert result.passed, f"{rule.id} {result.name}: {result.detail}"


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    for rule in RULES:
        firing = [c for c in rule.tests if c.get("expect")]
        quiet = [c for c in rule.tests if not c.get("expect")]
        assert firing and quiet, f"{rule.id} needs a case that fires and one that does not"


def test_pack_covers_every_problem_with_three_rules() -> None:
    per_problem = Counter(rule.problem for rule in RULES)
    for problem in PROBLEMS:
        assert per_problem[problem] >= 3, problem


def test_pack_passes_describe_without_data() -> None:
    check_rules_against_schema(RULES, Config(), SAMPLE_AS_OF)


def test_a_wrong_expectation_fails() -> None:
    rule = next(r for r in RULES if r.id == "M2M101")
    case = dict(rule.tests[0], expect=[{"principal": "someone-else"}])
    assert not run_case(rule, 0, case, Config()).passed


def test_clean_corpus_gives_no_findings() -> None:
    assert scan_of(ROOT / "sample_logs" / "clean") == []


def test_sample_estate_triggers_every_rule() -> None:
    fired = set(scan_of(ROOT / "sample_logs"))
    assert {rule.id for rule in RULES} - fired == set()
    problems = {rule.problem for rule in RULES if rule.id in fired}
    assert set(PROBLEMS) <= problems
