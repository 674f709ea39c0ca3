"""The gate between a `ScanResult` and its report: filters, suppressions, baseline, exit code.

Everything here runs after the rules and before a reporter. The order the CLI follows:

1. `check_fail_on(fail_on)`, `check_severity(min_severity)`, `check_problems(problems)`,
   `output_file.check_output_path(output)` and `(path, "--write-baseline")` before the
   scan, so a bad flag or a missing output directory fails (exit 2) before any work is done;
2. `load_baseline(path)` (if `--baseline`), also before the scan;
3. `apply_policy(result, suppressions=..., baseline=..., min_severity=..., problems=...)`
   after the scan: it filters, marks suppressed and baselined findings in place and returns
   the warnings to print on stderr (expired suppressions, incidents after the baseline);
4. print each warning on stderr; render with a reporter, then `output_file.write_output`
   (atomic) or `sys.stdout.write(text)`;
5. `write_baseline(path, result)` if `--write-baseline`;
6. `exit_code(result, fail_on)`: 0 nothing failing, 1 something at or above `fail_on`.
   Exit 2 is the CLI's answer to any `AuditError`; the format never changes the code.

Suppressed and baselined findings are never dropped: they stay in the result, flagged, and
every reporter counts them. A finding is either active, suppressed or baselined (suppression
wins), so the three counts add up to the total. Only `--min-severity` and `--problem`, which
the user asked for, remove findings from the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from m2maudit import __version__
from m2maudit.config import PROBLEMS, SEVERITIES, Suppression, folded
from m2maudit.errors import AuditError
from m2maudit.findings import SEVERITY_ORDER, Finding, RuleInfo, ScanResult
from m2maudit.output_file import write_output
from m2maudit.timeutil import iso, parse_instant
from m2maudit.wording import counted

FAIL_ON_CHOICES = (*SEVERITIES, "never")
DEFAULT_FAIL_ON = "high"
EXIT_OK, EXIT_FINDINGS = 0, 1

BASELINE_MARKER = "m2maudit_baseline"
# How a baseline file starts (`baseline_document`): found among the inputs, it is passed over.
BASELINE_SIGNATURE = re.compile(r'\{\s*"' + BASELINE_MARKER + r'":\s*true\b')
# 1.1: an incident rule's entry holds the last call it covers (`last_seen`).
BASELINE_SCHEMA_VERSION = "1.1"

# A baseline as read: each finding id, with the last call it covers for an incident rule's
# finding (None: it covers the finding whatever its calls).
Baseline = Mapping[str, datetime | None]
# What an incident's entry covers when the finding had no call time: no call at all.
NO_CALL = datetime.min.replace(tzinfo=UTC)


# --- flags -------------------------------------------------------------------------------


def check_fail_on(value: str) -> str:
    """Validate `--fail-on`: a severity or `never`, in any case (`HIGH` is `high`)."""
    if value.lower() not in FAIL_ON_CHOICES:
        raise AuditError(
            f"--fail-on: unknown value {value!r}; use one of {', '.join(FAIL_ON_CHOICES)}"
        )
    return value.lower()


def check_severity(value: str | None) -> str | None:
    """Validate `--min-severity` (None means no filter), in any case."""
    if value is not None and value.lower() not in SEVERITIES:
        raise AuditError(
            f"--min-severity: unknown severity {value!r}; use one of {', '.join(SEVERITIES)}"
        )
    return value.lower() if value is not None else None


def check_problems(values: Iterable[str], known: Iterable[str] = PROBLEMS) -> list[str]:
    """Validate the repeatable `--problem KEY` against the problem keys the rules use; each
    as the rules write it (`--problem Broad-Scopes` is `broad-scopes`)."""
    given = list(values)
    keys = {key.lower(): key for key in known}
    unknown = [value for value in given if value.lower() not in keys]
    if unknown:
        raise AuditError(
            f"--problem: unknown problem {unknown[0]!r}; use one of {', '.join(keys.values())}"
        )
    return list(dict.fromkeys(keys[value.lower()] for value in given))  # each once


# --- filters -----------------------------------------------------------------------------


def filter_findings(
    findings: Sequence[Finding], min_severity: str | None = None, problems: Iterable[str] = ()
) -> list[Finding]:
    """Keep the findings at or above `min_severity` and, if given, in one of `problems`."""
    passes = _filters(min_severity, problems)
    return [finding for finding in findings if passes(finding.severity, finding.problem)]


def _filters(min_severity: str | None, problems: Iterable[str]) -> Callable[[str, str], bool]:
    """Whether a severity and problem pass `--min-severity` and `--problem`: the one test that
    findings are filtered by and that says which rules the filters leave out whole."""
    floor = SEVERITY_ORDER[check_severity(min_severity) or "info"]
    wanted = set(problems)

    def passes(severity: str, problem: str) -> bool:
        return SEVERITY_ORDER[severity] >= floor and (not wanted or problem in wanted)

    return passes


# --- suppressions --------------------------------------------------------------------------


def suppression_label(index: int, entry: Suppression) -> str:
    """How a warning names a config entry: its index and what it matches."""
    parts = [
        f"{key} {value}"
        for key, value in (
            ("rule", entry.rule),
            ("problem", entry.problem),
            ("principal", entry.principal),
            ("credential", entry.credential),
        )
        if value
    ]
    return f"suppressions[{index}] ({', '.join(parts)})"


def suppression_matches(entry: Suppression, finding: Finding) -> bool:
    """Every field the entry names must match; principal and credential are globs.

    `rule` is a glob over the rule id or the rule name (`M2M2*`, `wildcard-or-admin-scope`);
    `problem` is a problem key, both in any case; `credential` matches the finding's
    `token_id`.
    """
    if entry.rule and not _names_rule(entry.rule, finding.rule_id, finding.rule_name):
        return False
    if entry.problem and finding.problem.lower() != entry.problem.lower():
        return False
    if entry.principal and not _glob(finding.principal, entry.principal):
        return False
    return not (entry.credential and not _glob(finding.token_id, entry.credential))


def _names_rule(pattern: str, rule_id: str, rule_name: str) -> bool:
    """A suppression's `rule` glob against a rule's id or name, in any case."""
    pattern = pattern.lower()
    return fnmatchcase(rule_id.lower(), pattern) or fnmatchcase(rule_name.lower(), pattern)


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatchcase(value, pattern)


def is_expired(entry: Suppression, as_of: datetime | date) -> bool:
    """An entry is valid through its `expires` day and stops the day after."""
    today = as_of.date() if isinstance(as_of, datetime) else as_of
    return entry.expires is not None and entry.expires < today


def suppression_record(entry: Suppression) -> dict[str, Any]:
    """What a suppressed finding carries in `Finding.suppression` (and JSON, SARIF, CSV)."""
    record: dict[str, Any] = {"reason": entry.reason}
    for key in ("rule", "problem", "principal", "credential", "owner", "ticket"):
        value = getattr(entry, key)
        if value is not None:
            record[key] = value
    if entry.expires is not None:
        record["expires"] = entry.expires.isoformat()
    return record


def suppressions_of_no_rule(
    suppressions: Sequence[Suppression], rules: Sequence[RuleInfo]
) -> list[str]:
    """A warning for each entry whose `rule` names no rule of this run, or whose `problem` no
    rule of this run reports under: a typo there suppresses nothing. A warning, not an error
    like a typo in `select`: one config may serve runs with and without a `--rules`
    directory of custom rules (and their own problem keys)."""
    problems = folded(rule.problem for rule in rules)
    return [
        f"{suppression_label(index, entry)} names no {what} of this run; it suppresses nothing"
        for index, entry in enumerate(suppressions)
        for what, missing in (
            ("rule", entry.rule and not any(_names_rule(entry.rule, r.id, r.name) for r in rules)),
            ("problem", entry.problem and entry.problem.lower() not in problems),
        )
        if missing
    ]


def apply_suppressions(
    findings: Sequence[Finding], suppressions: Sequence[Suppression], as_of: datetime
) -> list[str]:
    """Mark matching findings suppressed (the first matching entry wins); return warnings.

    An expired entry suppresses nothing and yields one warning naming it and the findings it
    no longer hides, so an accepted risk cannot quietly outlive its review date.
    """
    warnings: list[str] = []
    live: list[Suppression] = []
    for index, entry in enumerate(suppressions):
        if not is_expired(entry, as_of):
            live.append(entry)
            continue
        matched = sum(1 for finding in findings if suppression_matches(entry, finding))
        assert entry.expires is not None
        warnings.append(
            f"{suppression_label(index, entry)} expired on {entry.expires.isoformat()} and "
            f"no longer suppresses anything ({counted(matched, 'matching finding')})"
        )
    for finding in findings:
        match = next((item for item in live if suppression_matches(item, finding)), None)
        finding.suppressed = match is not None
        finding.suppression = suppression_record(match) if match is not None else None
    return warnings


# --- baseline --------------------------------------------------------------------------------


def baseline_document(result: ScanResult) -> dict[str, Any]:
    """The baseline file: our marker, a version, and the id of every unsuppressed finding.

    Suppressed findings stay out, so a suppression that expires still fails the build instead
    of hiding behind the baseline. The rule, principal and credential sit beside each id only
    to make the file reviewable; matching uses the id, and for an incident rule's finding
    (a use after revocation) its `last_seen`: the baseline accepts the calls it saw, and a
    later one is a new incident.
    """
    incidents = incident_rules(result.rules)
    entries = sorted(
        (baseline_entry(f, f.rule_id in incidents) for f in result.findings if not f.suppressed),
        key=lambda item: str(item["id"]),
    )
    unique = list({str(item["id"]): item for item in entries}.values())
    return {
        BASELINE_MARKER: True,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "tool": {"name": "m2maudit", "version": __version__},
        "as_of": iso(result.as_of),
        "findings": unique,
    }


def baseline_entry(finding: Finding, incident: bool) -> dict[str, Any]:
    """One finding as the baseline file lists it."""
    entry: dict[str, Any] = {
        "id": finding.id,
        "rule_id": finding.rule_id,
        "principal": finding.principal,
        "token_id": finding.token_id,
    }
    if incident:  # null when the finding had no call time: any later call is new
        entry["last_seen"] = iso(finding.last_seen)
    return entry


def incident_rules(rules: Iterable[RuleInfo]) -> set[str]:
    """Ids of the rules whose findings a baseline covers only up to their last call."""
    return {rule.id for rule in rules if rule.incident}


def write_baseline(path: str | Path, result: ScanResult) -> int:
    """Write the baseline atomically; return how many ids it holds."""
    document = baseline_document(result)
    write_output(
        path, json.dumps(document, indent=2, ensure_ascii=False) + "\n", label="--write-baseline"
    )
    return len(document["findings"])


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline written by `write_baseline`; anything else is an `AuditError`.

    A 1.0 baseline has no `last_seen`: it covers its incidents whatever their calls, as it
    did when it was written."""
    where = f"--baseline {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditError(f"{where}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{where}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise AuditError(f"{where}: not an m2maudit baseline (not JSON)") from None
    if not isinstance(document, dict) or document.get(BASELINE_MARKER) is not True:
        raise AuditError(
            f"{where}: not an m2maudit baseline (no '{BASELINE_MARKER}' marker; "
            "create one with --write-baseline)"
        )
    if "schema_version" not in document:
        raise AuditError(f"{where}: the baseline has no schema_version; write it again")
    version = str(document["schema_version"])
    if version.split(".")[0] != BASELINE_SCHEMA_VERSION.split(".")[0]:
        raise AuditError(
            f"{where}: unsupported baseline schema_version {version!r} "
            f"(this m2maudit reads {BASELINE_SCHEMA_VERSION.split('.')[0]}.x)"
        )
    entries = document.get("findings")
    if not isinstance(entries, list) or not all(isinstance(item, dict) for item in entries):
        raise AuditError(f"{where}: not an m2maudit baseline (bad 'findings' list)")
    # From 1.1 on, an entry without `last_seen` covers no call of an incident (a hand-edited
    # entry must not cover it for ever); a 1.0 file's entries cover every call.
    timed = version.split(".")[:2] != ["1", "0"]
    covered: dict[str, datetime | None] = {}
    for number, item in enumerate(entries):
        if not isinstance(item.get("id"), str) or not item["id"]:
            found = "no id" if item.get("id") in (None, "") else "an id that is not text"
            raise AuditError(f"{where}: findings[{number}] has {found}")
        until = _covered_until(item, where, timed)
        # An id listed twice (files merged by hand) covers the later of its two times.
        covered[item["id"]] = _later(covered.get(item["id"], until), until)
    return covered


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    """The wider of two covers (None covers everything)."""
    if first is None or second is None:
        return None
    return max(first, second)


def _covered_until(entry: dict[str, Any], where: str, timed: bool) -> datetime | None:
    if "last_seen" not in entry:  # a 1.0 baseline: no time; 1.1: no call is covered
        return NO_CALL if timed else None
    value = entry["last_seen"]
    if value is None:
        return NO_CALL
    try:
        return parse_instant(str(value))
    except AuditError:
        raise AuditError(
            f"{where}: finding {entry['id']}: last_seen {value!r} is not an ISO 8601 time"
        ) from None


def apply_baseline(
    findings: Sequence[Finding], baseline: Baseline, incidents: set[str] | None = None
) -> int:
    """Mark unsuppressed findings the baseline covers; return how many.

    A finding of an `incidents` rule whose last call is after the last its entry covers
    is not covered: it is marked `after_baseline` and stays active.
    """
    marked = 0
    for finding in findings:
        finding.in_baseline = finding.id in baseline
        covered_until = baseline.get(finding.id)
        finding.after_baseline = (
            finding.in_baseline
            and finding.rule_id in (incidents or set())
            and covered_until is not None
            and finding.last_seen is not None
            and finding.last_seen > covered_until
        )
        finding.baselined = (
            not finding.suppressed and finding.in_baseline and not finding.after_baseline
        )
        marked += finding.baselined
    return marked


def incidents_after_baseline(
    findings: Iterable[Finding], baseline: Baseline, incidents: set[str]
) -> list[str]:
    """The warnings for baselined incidents: those that happened again, and those an old
    baseline covers whatever their calls."""
    findings = list(findings)
    untimed = [
        f
        for f in findings
        if f.baselined and f.rule_id in incidents and baseline.get(f.id, NO_CALL) is None
    ]
    warnings = []
    if untimed:
        warnings.append(
            f"the baseline covers {counted(len(untimed), 'incident finding')} whatever their "
            "later calls (it has no last_seen: written by an older m2maudit); write it again"
        )
    again = [f for f in findings if f.after_baseline and not f.suppressed]
    if not again:
        return warnings
    rules = ", ".join(sorted({f.rule_id for f in again}))
    return [
        *warnings,
        f"{counted(len(again), 'baselined finding')} of incident rules ({rules}) "
        f"{'has' if len(again) == 1 else 'have'} calls after the last the baseline covers: "
        "active again (write the baseline again once they are reviewed)",
    ]


def adopt_as_baseline(result: ScanResult) -> None:
    """Count this run's unsuppressed findings as baselined: what `--write-baseline` records.

    Writing a baseline is the step that adopts the gate on an existing estate; failing it on
    the very findings it records would fail every first run. Not with `--baseline` as well:
    that run checks against the old baseline and records the new one, and must still fail
    on what the old one did not hold.
    """
    apply_baseline(result.findings, {f.id: None for f in result.findings if not f.suppressed})
    result.stats.setdefault("policy", {})["baseline"] = True


# --- the whole gate ------------------------------------------------------------------------


def events_after_the_clock(result: ScanResult) -> list[str]:
    """`--as-of` sets the clock but does not pick events: calls after it are still judged,
    as if already made. Said, since an audit "as of" a past day over later logs, or a clock
    behind the logs, gives ages and idle times that are not what the user meant."""
    last = result.window[1]
    if last is None or last <= result.as_of:
        return []
    clock = iso(result.as_of.replace(microsecond=0))
    return [
        f"the logs hold calls after the scan's clock {clock} (the last at {iso(last)}); they "
        "are judged too: --as-of sets the clock (default now), it does not pick events"
    ]


def apply_policy(
    result: ScanResult,
    *,
    suppressions: Sequence[Suppression] = (),
    baseline: Baseline | None = None,
    min_severity: str | None = None,
    problems: Iterable[str] = (),
) -> list[str]:
    """Filter, suppress and baseline `result` in place, in that order; return warnings.

    The filters and the baseline are recorded in `result.stats["policy"]` so reports can say
    what was applied.
    """
    wanted = check_problems(problems, [*PROBLEMS, *(rule.problem for rule in result.rules)])
    unmatched = _unmatched_entries(baseline, result.findings)  # before the filters
    kept = filter_findings(result.findings, min_severity, wanted)
    filtered_out = len(result.findings) - len(kept)
    result.findings = sorted(kept, key=Finding.sort_key)
    warnings = [
        *events_after_the_clock(result),
        *suppressions_of_no_rule(suppressions, result.rules),
        *apply_suppressions(result.findings, suppressions, result.as_of),
    ]
    if baseline is not None:
        incidents = incident_rules(result.rules)
        apply_baseline(result.findings, baseline, incidents)
        warnings.extend(incidents_after_baseline(result.findings, baseline, incidents))
        if unmatched:
            warnings.append(
                f"{unmatched:,} of {counted(len(baseline), 'baseline entry', 'baseline entries')} "
                "match no finding of this run: fixed, or from inputs or rules it did not "
                "cover; --write-baseline writes a baseline without them"
            )
    result.stats["policy"] = {
        "min_severity": min_severity,
        "problems": sorted(wanted),
        "filtered_out": filtered_out,
        # Rules the filters leave out whole: a report must not show them as checks passed.
        "rules_left_out": rules_left_out(result.rules, min_severity, wanted),
        "baseline": baseline is not None,
        "baseline_unmatched": unmatched if baseline is not None else None,
    }
    return warnings


def _unmatched_entries(baseline: Baseline | None, findings: Iterable[Finding]) -> int:
    """How many baseline ids no finding of the run has: a baseline only grows stale
    silently, and rewriting it drops them without a word."""
    if baseline is None:
        return 0
    return len(set(baseline) - {finding.id for finding in findings})


def rules_left_out(
    rules: Sequence[RuleInfo], min_severity: str | None, problems: Iterable[str]
) -> list[str]:
    """Ids of the rules whose findings the filters would all leave out (a rule's findings
    have its severity and problem)."""
    passes = _filters(min_severity, problems)
    return sorted(rule.id for rule in rules if not passes(rule.severity, rule.problem))


# --- exit code ---------------------------------------------------------------------------------


def failing(findings: Iterable[Finding], fail_on: str) -> list[Finding]:
    """Active findings at or above `fail_on` (none when `fail_on` is `never`)."""
    fail_on = check_fail_on(fail_on)
    if fail_on == "never":
        return []
    floor = SEVERITY_ORDER[fail_on]
    return [
        finding
        for finding in findings
        if not finding.suppressed and not finding.baselined and finding.severity_rank >= floor
    ]


def exit_code(result: ScanResult, fail_on: str = DEFAULT_FAIL_ON) -> int:
    """0 when nothing active is at or above `fail_on`, else 1."""
    return EXIT_FINDINGS if failing(result.findings, fail_on) else EXIT_OK
