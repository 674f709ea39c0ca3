"""Filters, suppressions, baselines, exit codes and output files (m2maudit.policy)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from m2maudit.config import Suppression, parse_config
from m2maudit.errors import AuditError
from m2maudit.findings import Finding, Location, ScanResult, finding_id
from m2maudit.policy import (
    FAIL_ON_CHOICES,
    apply_baseline,
    apply_policy,
    apply_suppressions,
    check_fail_on,
    check_problems,
    check_severity,
    exit_code,
    filter_findings,
    is_expired,
    load_baseline,
    suppression_matches,
    write_baseline,
)
from tests.reporting_fixtures import (
    AS_OF,
    RULES,
    SUPPRESSIONS,
    empty_result,
    finding,
    full_findings,
    full_result,
    make_result,
    suppressed_result,
)


def entry(**fields: object) -> Suppression:
    base = Suppression(rule=None, problem=None, principal=None, credential=None, reason="ok")
    return replace(base, **fields)  # type: ignore[arg-type]


def by_rule(findings: list[Finding], rule_id: str) -> Finding:
    return next(f for f in findings if f.rule_id == rule_id)


# --- matching ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suppression", "expected"),
    [
        (entry(rule="M2M101", principal="deploy-agent"), True),
        (entry(rule="M2M1*", principal="deploy-*"), True),
        (entry(rule="agent-without-user", principal="deploy-agent"), True),
        (entry(problem="missing-user-context", credential="tok-?"), True),
        (entry(rule="M2M101", principal="deploy-agent", credential="tok-1"), True),
        (entry(rule="M2M101", principal="deploy-agent", credential="tok-2"), False),
        (entry(rule="M2M2*", principal="deploy-agent"), False),
        (entry(problem="broad-scopes", principal="*"), False),
        (entry(rule="M2M101", principal="Deploy-Agent"), False),
        (entry(rule="M2M101", principal="deploy"), False),
    ],
)
def test_suppression_matching(suppression: Suppression, expected: bool) -> None:
    target = by_rule(full_findings(), "M2M101")
    assert suppression_matches(suppression, target) is expected


def test_a_glob_never_matches_a_missing_principal() -> None:
    no_principal = by_rule(full_findings(), "M2M402")
    assert no_principal.principal is None
    assert not suppression_matches(entry(rule="M2M402", principal="*"), no_principal)
    assert suppression_matches(entry(rule="M2M402", credential="fp:*"), no_principal)


def test_suppressions_mark_but_keep_findings() -> None:
    findings = full_findings()
    warnings = apply_suppressions(findings, SUPPRESSIONS, AS_OF)
    assert len(findings) == 6
    wildcard = by_rule(findings, "M2M201")
    assert wildcard.suppressed
    assert wildcard.suppression == {
        "reason": "CI bootstrap, =accepted",
        "rule": "M2M201",
        "principal": "+svc-ci@*",
        "owner": "platform",
        "ticket": "SEC-12",
        "expires": "2025-12-31",
    }
    assert [f.rule_id for f in findings if f.suppressed] == ["M2M201"]
    # The stale-rotation entry expired on 2025-01-31: M2M301 stays active, with a warning.
    assert not by_rule(findings, "M2M301").suppressed
    assert warnings == [
        "suppressions[1] (problem stale-rotation, principal svc-*) expired on 2025-01-31 "
        "and no longer suppresses anything (1 matching finding)"
    ]


def test_first_matching_entry_wins() -> None:
    findings = full_findings()
    first = entry(rule="M2M101", principal="deploy-agent", reason="first")
    second = entry(problem="missing-user-context", principal="*", reason="second")
    apply_suppressions(findings, [first, second], AS_OF)
    assert by_rule(findings, "M2M101").suppression == {
        "reason": "first",
        "rule": "M2M101",
        "principal": "deploy-agent",
    }


@pytest.mark.parametrize(
    ("expires", "expired"),
    [
        (date(2025, 6, 30), True),
        (date(2025, 7, 1), False),
        (date(2026, 1, 1), False),
        (None, False),
    ],
)
def test_an_entry_is_valid_through_its_expiry_day(expires: date | None, expired: bool) -> None:
    suppression = entry(rule="M2M101", principal="*", expires=expires)
    assert is_expired(suppression, AS_OF) is expired
    findings = full_findings()
    warnings = apply_suppressions(findings, [suppression], AS_OF)
    assert by_rule(findings, "M2M101").suppressed is not expired
    assert len(warnings) == int(expired)


def test_reapplying_suppressions_clears_stale_marks() -> None:
    findings = full_findings()
    apply_suppressions(findings, SUPPRESSIONS, AS_OF)
    apply_suppressions(findings, [], AS_OF)
    assert not any(f.suppressed or f.suppression for f in findings)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"rule": "M2M101", "principal": "x"}, "a suppression needs a 'reason'"),
        ({"rule": "M2M101", "principal": "x", "reason": "  "}, "a suppression needs a 'reason'"),
        (
            {"rule": "M2M101", "principal": "x", "reason": "r", "expires": "next week"},
            "expires: not a date",
        ),
        ({"rule": "M2M101", "principal": "x", "reason": "r", "expires": 2025}, "not a date"),
        ({"reason": "r", "principal": "x"}, "names a 'rule' or a 'problem'"),
        ({"reason": "r", "rule": "M2M101"}, "names a 'principal' or a 'credential'"),
    ],
)
def test_bad_suppressions_are_one_clear_line(item: dict[str, object], message: str) -> None:
    with pytest.raises(AuditError) as error:
        parse_config({"suppressions": [item]}, Path(".m2maudit.yaml"))
    assert message in str(error.value)
    assert str(error.value).startswith(".m2maudit.yaml: suppressions[0]")
    assert "\n" not in str(error.value)


def test_config_suppressions_feed_apply_suppressions() -> None:
    config = parse_config(
        {
            "suppressions": [
                {
                    "rule": "M2M101",
                    "principal": "deploy-*",
                    "reason": "agent approved by SEC-9",
                    "owner": "alice",
                    "ticket": "SEC-9",
                    "expires": date(2025, 9, 30),
                }
            ]
        }
    )
    findings = full_findings()
    assert apply_suppressions(findings, config.suppressions, AS_OF) == []
    assert by_rule(findings, "M2M101").suppression == {
        "reason": "agent approved by SEC-9",
        "rule": "M2M101",
        "principal": "deploy-*",
        "owner": "alice",
        "ticket": "SEC-9",
        "expires": "2025-09-30",
    }


# --- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("min_severity", "expected"),
    [(None, 6), ("info", 6), ("low", 5), ("medium", 4), ("high", 3), ("critical", 1)],
)
def test_min_severity(min_severity: str | None, expected: int) -> None:
    kept = filter_findings(full_findings(), min_severity)
    assert len(kept) == expected
    floor = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}[min_severity or "info"]
    assert all(f.severity_rank >= floor for f in kept)


def test_problem_filter_is_repeatable_and_combines_with_severity() -> None:
    kept = filter_findings(full_findings(), None, ["broad-scopes", "long-lifetime"])
    assert sorted(f.rule_id for f in kept) == ["M2M201", "M2M202", "M2M402"]
    kept = filter_findings(full_findings(), "high", ["broad-scopes"])
    assert [f.rule_id for f in kept] == ["M2M201"]


def test_problems_are_taken_in_any_case_once_each() -> None:
    given = iter(["Broad-Scopes", "broad-scopes", "LONG-LIFETIME"])  # read once, as typer may
    assert check_problems(given) == ["broad-scopes", "long-lifetime"]


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_fail_on, "severe"),
        (check_severity, "urgent"),
        (lambda v: check_problems([v]), "wide-scopes"),
    ],
)
def test_bad_flag_values_are_audit_errors(check: object, value: str) -> None:
    with pytest.raises(AuditError) as error:
        check(value)  # type: ignore[operator]
    assert repr(value) in str(error.value)


def test_severity_flags_are_read_in_any_case() -> None:
    assert check_fail_on("HIGH") == "high" and check_fail_on("Never") == "never"
    assert check_severity("Medium") == "medium"
    assert exit_code(full_result(), "CRITICAL") == exit_code(full_result(), "critical")


def test_apply_policy_filters_suppresses_baselines_and_records() -> None:
    result = full_result()
    baseline = dict.fromkeys([finding_id("M2M402", None, "fp:0123456789abcdef")])
    warnings = apply_policy(
        result,
        suppressions=SUPPRESSIONS,
        baseline=baseline,
        min_severity="medium",
        problems=["broad-scopes", "long-lifetime"],
    )
    # An expired entry is always reported, even when the filters left it nothing to match.
    assert len(warnings) == 1 and "(0 matching findings)" in warnings[0]
    assert [f.rule_id for f in result.findings] == ["M2M201", "M2M402", "M2M202"]
    assert [(f.suppressed, f.baselined) for f in result.findings] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    assert result.stats["policy"] == {
        "min_severity": "medium",
        "problems": ["broad-scopes", "long-lifetime"],
        "filtered_out": 3,
        # M2M101's problem is not wanted; M2M301 and M2M501 are below medium.
        "rules_left_out": ["M2M101", "M2M301", "M2M501"],
        "baseline": True,
        "baseline_unmatched": 0,
    }


def test_baseline_entries_no_finding_matches_are_counted_and_said() -> None:
    """Fixed findings (or a scan of fewer logs) left entries behind without a word, and
    rewriting the baseline dropped them silently. A filter leaves findings out of the
    report, not out of what the baseline is matched against."""
    result = full_result()
    gone = [finding_id("M2M101", f"retired-agent-{n}", None) for n in range(2)]
    baseline = dict.fromkeys([result.findings[0].id, *gone])
    warnings = apply_policy(result, baseline=baseline, problems=["broad-scopes"])
    assert result.stats["policy"]["baseline_unmatched"] == 2
    assert warnings == [
        "2 of 3 baseline entries match no finding of this run: fixed, or from inputs or "
        "rules it did not cover; --write-baseline writes a baseline without them"
    ]
    again = full_result()
    assert apply_policy(again, baseline=dict.fromkeys(f.id for f in again.findings)) == []
    assert again.stats["policy"]["baseline_unmatched"] == 0
    without = full_result()
    assert apply_policy(without) == []
    assert without.stats["policy"]["baseline_unmatched"] is None


# --- baseline ----------------------------------------------------------------------------


def test_baseline_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    first = suppressed_result()
    count = write_baseline(path, first)
    ids = load_baseline(path)
    assert count == len(ids) == 5  # the suppressed finding is not baselined
    assert set(ids) == {f.id for f in first.findings if not f.suppressed}
    document = json.loads(path.read_text())
    assert document["m2maudit_baseline"] is True and document["schema_version"] == "1.1"
    assert [item["id"] for item in document["findings"]] == sorted(ids)

    # A later run: new line numbers and input order, one new finding; only that one fails.
    later = full_result()
    later.findings.reverse()
    for item in later.findings:
        item.locations = [
            Location("elsewhere/" + loc.file, loc.line + 100) for loc in item.locations
        ]
    new = replace(later.findings[0], principal="new-agent")
    new.id = finding_id(new.rule_id, new.principal, new.token_id)
    later.findings.append(new)
    apply_policy(later, baseline=load_baseline(path))
    active = [f for f in later.findings if not f.baselined and not f.suppressed]
    assert {f.id for f in active} == {new.id, by_rule(later.findings, "M2M201").id}


def incident_result(last_seen: datetime) -> ScanResult:
    """One finding of an incident rule (a use after revocation) and one of a standing one."""
    incident = replace(RULES[0], id="M2M406", name="use-after-revocation", incident=True)
    result = make_result(
        [
            finding(incident, "agent-a", "key-1", "used after revocation"),
            finding(RULES[0], "agent-a", "key-1", "acts without a human"),
        ]
    )
    result.rules = [RULES[0], incident]
    for item in result.findings:
        item.last_seen = last_seen
    return result


def test_a_baseline_covers_an_incident_only_up_to_its_last_call(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    seen = datetime(2025, 6, 30, tzinfo=UTC)
    write_baseline(path, incident_result(seen))
    entries = {item["rule_id"]: item for item in json.loads(path.read_text())["findings"]}
    assert entries["M2M406"]["last_seen"] == "2025-06-30T00:00:00Z"
    assert "last_seen" not in entries["M2M101"]  # a standing finding: its id alone

    same = incident_result(seen)
    assert apply_policy(same, baseline=load_baseline(path)) == []
    assert all(f.baselined and not f.after_baseline for f in same.findings)

    # The revoked key is used again the next day: that is a new incident, and fails the gate.
    later = incident_result(datetime(2025, 7, 1, 9, tzinfo=UTC))
    warnings = apply_policy(later, baseline=load_baseline(path))
    again = by_rule(later.findings, "M2M406")
    assert again.after_baseline and again.in_baseline and not again.baselined
    assert by_rule(later.findings, "M2M101").baselined  # the agent still acting is not new
    assert exit_code(later, "critical") == 0 and exit_code(later, "high") == 1
    assert warnings == [
        "1 baselined finding of incident rules (M2M406) has calls after the last the baseline "
        "covers: active again (write the baseline again once they are reviewed)"
    ]


def test_the_terminal_report_says_an_incident_is_active_again() -> None:
    from m2maudit.reporters import ReportOptions, get_reporter

    later = incident_result(datetime(2025, 7, 1, 9, tzinfo=UTC))
    covered = {f.id: datetime(2025, 6, 30, tzinfo=UTC) for f in later.findings}
    apply_policy(later, baseline=covered)
    text = get_reporter("table").render(later, ReportOptions())
    assert text.count("active again: calls after the last the baseline covers") == 1


def test_a_baseline_without_last_seen_covers_incidents_as_before(tmp_path: Path) -> None:
    """Version 1.0 files (and entries without a time) keep their meaning."""
    later = incident_result(datetime(2025, 7, 1, tzinfo=UTC))
    path = tmp_path / "baseline.json"
    path.write_text(
        json.dumps(
            {
                "m2maudit_baseline": True,
                "schema_version": "1.0",
                "findings": [{"id": f.id} for f in later.findings],
            }
        )
    )
    assert apply_policy(later, baseline=load_baseline(path)) == [
        "the baseline covers 1 incident finding whatever their later calls (it has no "
        "last_seen: written by an older m2maudit); write it again"
    ]
    assert all(f.baselined for f in later.findings)


def test_a_hand_edited_entry_without_last_seen_covers_no_incident(tmp_path: Path) -> None:
    """In a 1.1 file, deleting an incident's `last_seen` must not cover it for ever."""
    later = incident_result(datetime(2025, 7, 1, tzinfo=UTC))
    path = tmp_path / "baseline.json"
    entries = [{"id": f.id} for f in later.findings]
    document = {"m2maudit_baseline": True, "schema_version": "1.1", "findings": entries}
    path.write_text(json.dumps(document))
    apply_policy(later, baseline=load_baseline(path))
    assert by_rule(later.findings, "M2M406").after_baseline
    assert by_rule(later.findings, "M2M101").baselined  # a standing finding: its id suffices


def test_a_baseline_entry_without_an_id_is_named(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    document = {"m2maudit_baseline": True, "schema_version": "1.1", "findings": [{"id": "a"}, {}]}
    path.write_text(json.dumps(document))
    with pytest.raises(AuditError, match=r"findings\[1\] has no id"):
        load_baseline(path)
    document["findings"] = [{"id": 42}]  # from a trial: "has no id" misled
    path.write_text(json.dumps(document))
    with pytest.raises(AuditError, match=r"findings\[0\] has an id that is not text"):
        load_baseline(path)


def test_an_incident_baselined_without_a_call_time_is_active_at_its_first_call(
    tmp_path: Path,
) -> None:
    path = tmp_path / "baseline.json"
    before = incident_result(datetime(2025, 6, 30, tzinfo=UTC))
    for item in before.findings:
        item.last_seen = None
    write_baseline(path, before)
    entries = {item["rule_id"]: item for item in json.loads(path.read_text())["findings"]}
    assert entries["M2M406"]["last_seen"] is None
    later = incident_result(datetime(2025, 6, 30, tzinfo=UTC))
    apply_policy(later, baseline=load_baseline(path))
    assert by_rule(later.findings, "M2M406").after_baseline


def test_an_id_listed_twice_covers_the_later_time(tmp_path: Path) -> None:
    """Whatever the order of the entries (two baselines merged by hand)."""
    result = incident_result(datetime(2025, 6, 5, tzinfo=UTC))
    ident = by_rule(result.findings, "M2M406").id
    for times in (
        ["2025-06-10T00:00:00Z", "2025-06-01T00:00:00Z"],
        ["2025-06-01T00:00:00Z", "2025-06-10T00:00:00Z"],
    ):
        path = tmp_path / "baseline.json"
        path.write_text(
            json.dumps(
                {
                    "m2maudit_baseline": True,
                    "schema_version": "1.1",
                    "findings": [{"id": ident, "last_seen": t} for t in times],
                }
            )
        )
        assert load_baseline(path)[ident] == datetime(2025, 6, 10, tzinfo=UTC)


def test_a_suppressed_incident_after_the_baseline_is_not_warned_about() -> None:
    result = incident_result(datetime(2025, 7, 1, tzinfo=UTC))
    covered = {f.id: datetime(2025, 6, 1, tzinfo=UTC) for f in result.findings}
    quiet = Suppression(
        rule="M2M406", problem=None, principal="agent-a", credential=None, reason="drill"
    )
    assert apply_policy(result, suppressions=[quiet], baseline=covered) == []
    assert by_rule(result.findings, "M2M406").suppressed


def test_writing_the_same_baseline_twice_gives_the_same_bytes(tmp_path: Path) -> None:
    write_baseline(tmp_path / "a.json", suppressed_result())
    result = suppressed_result()
    result.findings.reverse()
    write_baseline(tmp_path / "b.json", result)
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_baseline_marks_only_unsuppressed_findings() -> None:
    findings = full_findings()
    apply_suppressions(findings, SUPPRESSIONS, AS_OF)
    marked = apply_baseline(findings, {f.id: None for f in findings})
    assert marked == 5
    assert not by_rule(findings, "M2M201").baselined


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json at all", "not an m2maudit baseline"),
        ("[1, 2, 3]", "not an m2maudit baseline"),
        ('{"schema_version": "1.0", "findings": []}', "not an m2maudit baseline"),
        ('{"version": "2.1.0", "runs": []}', "not an m2maudit baseline"),
        (
            '{"m2maudit_baseline": true, "schema_version": "9.0", "findings": []}',
            "unsupported baseline schema_version '9.0' (this m2maudit reads 1.x)",
        ),
        ('{"m2maudit_baseline": true, "findings": []}', "the baseline has no schema_version"),
        ('{"m2maudit_baseline": true, "schema_version": "1.0", "findings": [1]}', "bad 'findings'"),
        (
            '{"m2maudit_baseline": true, "schema_version": "1.1", '
            '"findings": [{"id": "abc", "last_seen": "yesterday"}]}',
            "finding abc: last_seen 'yesterday' is not an ISO 8601 time",
        ),
    ],
)
def test_foreign_baselines_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(AuditError) as error:
        load_baseline(path)
    assert message in str(error.value)
    assert str(error.value).startswith(f"--baseline {path}:")


def test_a_json_report_is_not_a_baseline(tmp_path: Path) -> None:
    from m2maudit.reporters import ReportOptions, get_reporter

    path = tmp_path / "report.json"
    path.write_text(get_reporter("json").render(full_result(), ReportOptions()))
    with pytest.raises(AuditError, match="not an m2maudit baseline"):
        load_baseline(path)


def test_a_missing_baseline_is_an_audit_error(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="file not found"):
        load_baseline(tmp_path / "nope.json")


# --- exit codes --------------------------------------------------------------------------

# full_result holds one active finding of each severity.
FULL_EXPECTED = {"info": 1, "low": 1, "medium": 1, "high": 1, "critical": 1, "never": 0}
# suppressed_result: the critical one is suppressed, the info one baselined.
SUPPRESSED_EXPECTED = {"info": 1, "low": 1, "medium": 1, "high": 1, "critical": 0, "never": 0}


@pytest.mark.parametrize("fail_on", FAIL_ON_CHOICES)
def test_exit_code_table(fail_on: str) -> None:
    assert exit_code(full_result(), fail_on) == FULL_EXPECTED[fail_on]
    assert exit_code(suppressed_result(), fail_on) == SUPPRESSED_EXPECTED[fail_on]
    assert exit_code(empty_result(), fail_on) == 0


def test_exit_code_counts_only_active_findings_at_the_threshold() -> None:
    result = full_result()
    result.findings = [by_rule(result.findings, "M2M202")]  # medium
    assert exit_code(result, "high") == 0
    assert exit_code(result, "medium") == 1
    result.findings[0].baselined = True
    assert exit_code(result, "info") == 0


def test_default_fail_on_is_high() -> None:
    result = full_result()
    result.findings = [by_rule(result.findings, "M2M202")]
    assert exit_code(result) == 0
    result.findings = [by_rule(full_findings(), "M2M101")]
    assert exit_code(result) == 1


def test_unknown_fail_on_is_an_audit_error() -> None:
    with pytest.raises(AuditError, match="--fail-on"):
        exit_code(full_result(), "sometimes")


def test_write_baseline_names_its_own_flag(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=r"^--write-baseline "):
        write_baseline(tmp_path / "missing" / "b.json", full_result())


def test_finding_ids_ignore_lines_times_and_order() -> None:
    one, two = full_findings(), full_findings()
    two.reverse()
    for item in two:
        item.first_seen = item.last_seen = datetime(2030, 1, 1, tzinfo=UTC)
        item.locations = [Location("other.log", 999)]
    assert {f.id for f in one} == {f.id for f in two}
    assert len({f.id for f in one}) == len(one)


def test_a_suppression_naming_no_rule_of_the_run_is_a_warning() -> None:
    result = full_result()
    known = result.rules[0]
    warnings = apply_policy(
        result,
        suppressions=[
            entry(rule="M9999", principal="*"),
            entry(rule=known.id, principal="*"),
            entry(rule=known.name, principal="*"),
            entry(rule="M2M*", principal="*"),
            entry(problem="broad-scopes", principal="*"),
            entry(problem="bad-vibes", principal="*"),
        ],
    )
    assert warnings == [
        "suppressions[0] (rule M9999, principal *) names no rule of this run; it suppresses "
        "nothing",
        "suppressions[5] (problem bad-vibes, principal *) names no problem of this run; it "
        "suppresses nothing",
    ]


def test_a_suppression_may_name_the_exposure_key() -> None:
    config = parse_config(
        {"suppressions": [{"problem": "exposure", "principal": "ci-*", "reason": "accepted"}]},
        Path(".m2maudit.yaml"),
    )
    assert config.suppressions[0].problem == "exposure"
