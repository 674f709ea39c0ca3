"""The rule pack: every rule's own cases, the clean corpus, and the sample estate."""

from __future__ import annotations

import json
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


def test_use_after_expiry_of_several_session_keys_names_them(tmp_path: Path) -> None:
    """The hourly session keys of one role are one M2M405 finding; its evidence says which
    keys were used after their expiry, so none of them is hidden behind the role."""
    lines = [
        {
            "timestamp": f"2026-11-20T{hour + 2:02d}:00:00Z",
            "principal": "role/agent-gw",
            "token_id": f"ASIAAAAA{hour}",
            "status": 200,
        }
        for hour in range(3)
    ]
    log = tmp_path / "calls.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    store = Store.open()
    ingest_paths(store, [str(log)])
    # As the CloudTrail adapter would set them: temporary keys, each expiring after an hour,
    # the last one still valid.
    store.con.execute(
        "UPDATE events SET credential_type = 'aws_session', "
        "credential_expires_at = ts - INTERVAL 1 HOUR + "
        "CASE WHEN credential_id = 'ASIAAAAA2' THEN INTERVAL 2 HOUR ELSE INTERVAL 0 HOUR END"
    )
    findings = [
        f for f in run_scan(store, Config(), SAMPLE_AS_OF).findings if f.rule_id == "M2M405"
    ]
    assert [(f.token_id, f.count, f.evidence) for f in findings] == [
        (
            "aws_session:role/agent-gw",
            2,
            {
                # The expiry of the last call's key (ASIAAAAA1), not the group's earliest.
                "expired_at": "2026-11-20T02:00:00Z",
                "expired_credentials": 2,
                "sample_credentials": ["ASIAAAAA0", "ASIAAAAA1"],
            },
        )
    ]


def test_rules_list_shows_every_rule_whole_in_80_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from m2maudit.cli import app

    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(app, ["rules", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)  # piped: no padding
    pack = load_rules([])
    for rule in pack:  # each rule on one line, its name not folded
        assert any(line.split()[:2] == [rule.id, rule.name] for line in lines), rule.id

    listed = json.loads(CliRunner().invoke(app, ["rules", "list", "--format", "json"]).output)
    assert [item["id"] for item in listed] == [rule.id for rule in pack]
    bad = CliRunner().invoke(app, ["rules", "list", "--format", "xml"])
    assert bad.exit_code == 2 and "unknown format 'xml'" in bad.output


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("used {count|time}", {"count": 1}, "used once"),
        ("used {count|time}", {"count": 3}, "used 3 times"),
        ("used {count|time}", {"count": 0}, "used 0 times"),
        ("held {n|entry|entries}", {"n": 1}, "held 1 entry"),
        ("held {n|entry|entries}", {"n": 2}, "held 2 entries"),
        ("for {days|day}", {}, "for - days"),
        ("cycle: {has_cycle}, {ok}", {"has_cycle": False, "ok": True}, "cycle: no, yes"),
        ("made {n|destructive call}", {"n": 2}, "made 2 destructive calls"),
        ("{principal} made {count|call}", {"principal": "bot", "count": 1}, "bot made 1 call"),
        # Floats: four significant digits, never an exponent (a trial saw "valid for 5e+04 h").
        ("valid for {hours} h", {"hours": 50000.0}, "valid for 50000 h"),
        ("valid for {hours} h", {"hours": 123456.7}, "valid for 123500 h"),
        ("share {share}", {"share": 1.234e-05}, "share 0.00001234"),
        ("valid for {hours} h", {"hours": 1.5}, "valid for 1.5 h"),
        ("share {share}", {"share": 0.4723}, "share 0.4723"),
    ],
)
def test_message_counts_read_right_for_one(template: str, values: dict, expected: str) -> None:
    from m2maudit.rules import message_fields, render_message

    assert render_message(template, values) == expected
    fields = {"count", "n", "days", "principal", "has_cycle", "ok", "hours", "share"}
    assert set(message_fields(template)) <= fields


def test_no_bundled_message_says_one_times() -> None:
    """Every count in a bundled message is a counted noun, so "1 calls" cannot be printed."""
    import re

    bare_count = re.compile(r"\{(count|[a-z_]*(?:days|calls|count|tasks))\} [a-z]+s\b")
    assert [r.id for r in RULES if bare_count.search(r.message)] == []


def test_rules_show_keeps_reference_links_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A link cut at the terminal's width is no longer a link."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    monkeypatch.setenv("COLUMNS", "60")
    shown = CliRunner().invoke(app, ["rules", "show", "M2M601"]).stdout
    [rule] = [r for r in RULES if r.id == "M2M601"]
    assert rule.references and all(f"  {ref}\n" in shown for ref in rule.references)


def test_the_incident_rules_are_the_uses_that_should_never_happen() -> None:
    """Their findings fail the gate again when a baselined incident happens again."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    incidents = ["M2M405", "M2M406", "M2M601", "M2M602", "M2M606"]
    assert sorted(r.id for r in RULES if r.incident) == incidents
    listed = json.loads(CliRunner().invoke(app, ["rules", "list", "--format", "json"]).output)
    assert [item["id"] for item in listed if item["incident"]] == incidents
    assert "Incident" in CliRunner().invoke(app, ["rules", "show", "M2M406"]).stdout
    assert "Incident" not in CliRunner().invoke(app, ["rules", "show", "M2M101"]).stdout
