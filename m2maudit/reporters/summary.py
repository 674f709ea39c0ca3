"""What every report counts, computed once so the formats never disagree.

Counts come in four kinds: `total` (every finding in the report), `active` (neither suppressed
nor baselined), `suppressed` and `baselined`; active + suppressed + baselined = total. `failing`
is the active findings at or above `--fail-on`, the ones that make the exit code 1.

`ScanResult.attribution` is read as counts over agent actions:
`{"agent_actions": N, "human": n, "agent": n, "credential": n, "trace": n, "all": n}` where each
`n` is the number of agent actions tied to that party (`all`: to all four). A float between 0
and 1 is read as a share instead. Missing keys are shown as not measured. An optional
`min_attribution` (the threshold, 0..1) lets the terminal report colour shares below it red;
other keys pass through to the JSON summary unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from m2maudit.config import PROBLEMS, SEVERITIES
from m2maudit.findings import SEVERITY_ORDER, Finding, RuleInfo, ScanResult
from m2maudit.policy import failing
from m2maudit.wording import counted

SEVERITIES_DESC = tuple(reversed(SEVERITIES))
PROBLEM_TITLES = {
    "missing-user-context": "Missing user context",
    "broad-scopes": "Broad scopes",
    "stale-rotation": "Stale rotation",
    "long-lifetime": "Long lifetime",
    "untraceable-action": "Untraceable actions",
}
ATTRIBUTION_PARTS = (
    ("human", "human"),
    ("agent", "agent"),
    ("credential", "credential"),
    ("trace", "trace"),
    ("all", "all four"),
)
# How much one active finding adds to the risk of its principal or credential.
SEVERITY_WEIGHT = {"critical": 10, "high": 6, "medium": 3, "low": 1, "info": 0}
RISK_LIMIT = 5


@dataclass
class Counts:
    total: int = 0
    active: int = 0
    suppressed: int = 0
    baselined: int = 0

    def add(self, finding: Finding) -> None:
        self.total += 1
        if finding.suppressed:
            self.suppressed += 1
        elif finding.baselined:
            self.baselined += 1
        else:
            self.active += 1

    def to_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "active": self.active,
            "suppressed": self.suppressed,
            "baselined": self.baselined,
        }


@dataclass(frozen=True)
class AttributionPart:
    key: str
    label: str
    count: int | None
    share: float | None


@dataclass(frozen=True)
class RiskRow:
    """One principal or credential and the weight of its active findings."""

    name: str
    score: int
    findings: int
    worst: str
    problems: tuple[str, ...]


@dataclass
class Summary:
    fail_on: str
    counts: Counts = field(default_factory=Counts)
    failing: int = 0
    by_severity: dict[str, Counts] = field(default_factory=dict)
    by_problem: dict[str, Counts] = field(default_factory=dict)
    agent_actions: int | None = None
    attribution: list[AttributionPart] = field(default_factory=list)


def problem_order(problem: str) -> tuple[int, str]:
    """The five problems in design order, then any other key alphabetically."""
    return (PROBLEMS.index(problem) if problem in PROBLEMS else len(PROBLEMS), problem)


def problem_title(problem: str) -> str:
    return PROBLEM_TITLES.get(problem, problem.replace("-", " ").capitalize())


def ordered_findings(result: ScanResult) -> list[Finding]:
    """The one finding order every format uses: `Finding.sort_key`."""
    return sorted(result.findings, key=Finding.sort_key)


def rules_of(result: ScanResult) -> list[RuleInfo]:
    """The run's rules, plus a stand-in for any rule a finding names but the run does not."""
    rules = {rule.id: rule for rule in result.rules}
    for finding in result.findings:
        if finding.rule_id not in rules:
            rules[finding.rule_id] = RuleInfo(
                id=finding.rule_id,
                name=finding.rule_name,
                title=finding.title,
                problem=finding.problem,
                severity=finding.severity,
                confidence=finding.confidence,
                description=finding.title,
                remediation=finding.remediation,
                references=finding.references,
                owasp_nhi=finding.owasp_nhi,
            )
    return [rules[key] for key in sorted(rules)]


def status(finding: Finding) -> str:
    """`suppressed`, `baselined` or `active`."""
    if finding.suppressed:
        return "suppressed"
    return "baselined" if finding.baselined else "active"


def summarize(result: ScanResult, fail_on: str) -> Summary:
    summary = Summary(fail_on=fail_on)
    summary.by_severity = {severity: Counts() for severity in SEVERITIES_DESC}
    # Every key a rule of this run reports under, found or not: a script reading the
    # summary finds the same keys in every report of the same rules.
    keys = [*PROBLEMS, *(rule.problem for rule in result.rules)]
    summary.by_problem = {problem: Counts() for problem in keys}
    for finding in result.findings:
        summary.counts.add(finding)
        summary.by_severity.setdefault(finding.severity, Counts()).add(finding)
        summary.by_problem.setdefault(finding.problem, Counts()).add(finding)
    summary.by_problem = dict(
        sorted(summary.by_problem.items(), key=lambda item: problem_order(item[0]))
    )
    summary.failing = len(failing(result.findings, fail_on))
    summary.agent_actions, summary.attribution = _attribution(result.attribution)
    return summary


def _attribution(raw: dict[str, Any]) -> tuple[int | None, list[AttributionPart]]:
    if not raw:
        return None, []
    total = raw.get("agent_actions")
    actions = total if isinstance(total, int) and not isinstance(total, bool) else None
    parts = []
    for key, label in ATTRIBUTION_PARTS:
        value = raw.get(key)
        count: int | None = None
        share: float | None = None
        if isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            count = value
            share = round(value / actions, 4) if actions else None
        elif isinstance(value, float):
            share = round(value, 4)
        parts.append(AttributionPart(key, label, count, share))
    return actions, parts


def attribution_dict(summary: Summary, raw: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON form: agent actions, then `{count, share}` per party, then any other keys."""
    if not raw:
        return None
    document: dict[str, Any] = {"agent_actions": summary.agent_actions}
    for part in summary.attribution:
        document[part.key] = {"count": part.count, "share": part.share}
    known = {"agent_actions", *(key for key, _ in ATTRIBUTION_PARTS)}
    for key in sorted(set(raw) - known):
        document[key] = raw[key]
    return document


def percent(share: float | None) -> str:
    return "n/a" if share is None else f"{share * 100:.1f}%"


def riskiest(
    findings: Iterable[Finding], key: Callable[[Finding], str | None], limit: int = RISK_LIMIT
) -> list[RiskRow]:
    """Rank by the summed weight of active findings, then worst severity, count and name."""
    groups: dict[str, list[Finding]] = {}
    for finding in findings:
        name = key(finding)
        if name and not finding.suppressed and not finding.baselined:
            groups.setdefault(name, []).append(finding)
    rows = [_risk_row(name, items) for name, items in groups.items()]
    rows.sort(key=lambda row: (-row.score, -SEVERITY_ORDER[row.worst], -row.findings, row.name))
    return rows[:limit]


def _risk_row(name: str, items: Sequence[Finding]) -> RiskRow:
    worst = max(items, key=lambda item: item.severity_rank).severity
    problems = tuple(sorted({item.problem for item in items}, key=problem_order))
    score = sum(SEVERITY_WEIGHT.get(item.severity, 0) for item in items)
    return RiskRow(name, score, len(items), worst, problems)


def summary_line(result: ScanResult, fail_on: str) -> str:
    """One line for `--quiet` and for stderr, e.g.

    `5 findings (3 active: 1 critical, 2 high; 1 suppressed, 1 baselined); 3 failing
    (--fail-on high)`.
    """
    summary = summarize(result, fail_on)
    counts = summary.counts
    gate = f"{summary.failing:,} failing (--fail-on {fail_on})"
    if counts.total == 0:
        return "; ".join(["no findings", gate, *run_notes(result)])
    severities = ", ".join(
        f"{c.active:,} {severity}" for severity, c in summary.by_severity.items() if c.active
    )
    active = f"{counts.active:,} active" + (f": {severities}" if severities else "")
    line = (
        f"{counted(counts.total, 'finding')} ({active}; {counts.suppressed:,} suppressed, "
        f"{counts.baselined:,} baselined); {gate}"
    )
    return "; ".join([line, *run_notes(result)])


def not_audited(result: ScanResult) -> tuple[int, int]:
    """Records rejected and files unreadable in the run's inputs: what it did not audit."""
    rejected = sum(int(item.get("rejected") or 0) for item in result.inputs)
    unreadable = sum(1 for item in result.inputs if item.get("error"))
    return rejected, unreadable


def held_nothing(result: ScanResult) -> list[str]:
    """The inputs that held nothing to audit (an empty file, `[]`, stdin with nothing on it),
    when no call at all was audited: a gate that passes on them passed on nothing, as when a
    log export broke. Empty when a call was audited, or when only inventories held nothing."""
    if result.window[0] is not None:
        return []
    return [
        item["source"]
        for item in result.inputs
        if item.get("skipped") and item.get("kind") != "inventory"
    ]


def not_audited_dict(result: ScanResult) -> dict[str, Any]:
    """`not_audited` for a machine report's summary."""
    rejected, unreadable = not_audited(result)
    return {
        "records_rejected": rejected,
        "files_unreadable": unreadable,
        "inputs_held_nothing": held_nothing(result),
    }


def not_audited_note(result: ScanResult) -> str | None:
    """`2 records rejected, 1 file unreadable: not audited`, when the inputs hold some: every
    report says so, or a record an attacker made unreadable (one stray byte in a user agent)
    would leave a clean-looking report, its calls unjudged. So is a run whose inputs all held
    nothing (`held_nothing`). `--strict` fails on them."""
    rejected, unreadable = not_audited(result)
    parts = [f"{counted(rejected, 'record')} rejected"] if rejected else []
    parts += [f"{counted(unreadable, 'file')} unreadable"] if unreadable else []
    notes = [f"{', '.join(parts)}: not audited"] if parts else []
    return "; ".join([*notes, *filter(None, [held_nothing_note(result)])]) or None


def held_nothing_note(result: ScanResult) -> str | None:
    """`no call audited: 1 input held nothing (empty.jsonl)` (`held_nothing`)."""
    empty = held_nothing(result)
    if not empty:
        return None
    more = f" and {len(empty) - 3:,} more" if len(empty) > 3 else ""
    return (
        f"no call audited: {counted(len(empty), 'input')} held nothing "
        f"({', '.join(empty[:3])}{more})"
    )


def run_notes(result: ScanResult) -> list[str]:
    """What a summary line adds: the findings the filters left out, the rules the config left
    out, what was not audited."""
    notes = (left_out_note(result), config_left_out_note(result), not_audited_note(result))
    return [note for note in notes if note]


def config_left_out(result: ScanResult) -> list[str]:
    """Ids of the rules the config's `select` and `ignore` left out (`scan.RuleSelection`)."""
    return list((result.stats.get("config") or {}).get("rules_left_out") or [])


def config_left_out_reason(result: ScanResult) -> str:
    """`left out by the config (.m2maudit.yaml)`: which file, as a pull request may change it."""
    file = (result.stats.get("config") or {}).get("file")
    return f"left out by the config{f' ({file})' if file else ''}"


def config_left_out_note(result: ScanResult) -> str | None:
    """`6 rules left out by the config (.m2maudit.yaml)`: every report says so, or a config
    that switched a check off would let a gate pass on less than it seems to."""
    left_out = config_left_out(result)
    if not left_out:
        return None
    return f"{counted(len(left_out), 'rule')} {config_left_out_reason(result)}"


def left_out_note(result: ScanResult) -> str | None:
    """`55 findings left out by --min-severity critical`, when the filters left some out: every
    report says so, or a filtered run reads as a clean one."""
    policy = result.stats.get("policy") or {}
    count = policy.get("filtered_out") or 0
    return f"{counted(count, 'finding')} left out by {filters_applied(result)}" if count else None


def rules_left_out(result: ScanResult) -> list[str]:
    """Ids of the rules the filters left out whole (`policy.rules_left_out`)."""
    return list((result.stats.get("policy") or {}).get("rules_left_out") or [])


def filters_applied(result: ScanResult) -> str:
    """The filters of the run as flags: `--min-severity high and --problem exposure`."""
    policy = result.stats.get("policy") or {}
    flags = []
    if policy.get("min_severity"):
        flags.append(f"--min-severity {policy['min_severity']}")
    if policy.get("problems"):
        flags.append("--problem " + ",".join(policy["problems"]))
    return " and ".join(flags) or "no filter"
