"""`--format sarif`: SARIF 2.1.0 for code-scanning dashboards (GitHub, GitLab, Azure DevOps).

Mapping (also in docs/output.md):
- one `reportingDescriptor` per rule of the run (sorted by id): `shortDescription` = title,
  `fullDescription` = description, `help` = description + remediation (text and Markdown),
  `helpUri` = first reference, `properties.security-severity` from the severity
  (critical 9.5, high 8.0, medium 5.5, low 3.0, info 0.0), `properties.tags` with the problem
  and the OWASP NHI ids;
- one `result` per finding: `ruleId`/`ruleIndex`, `level` (critical/high → error,
  medium → warning, low/info → note), `message`, `partialFingerprints["m2maudit/v1"]` = the
  stable finding id, a location at the first input file and line of the evidence (the rest in
  `relatedLocations`) and the principal and credential as `logicalLocations`;
- suppressed findings carry `suppressions: [{"kind": "external", "status": "accepted",
  "justification": reason}]`; when a baseline was applied, `baselineState` is `unchanged`
  for findings whose id it holds (suppressed since, too), `updated` for an incident rule's
  finding with calls after the last its entry covers, and `new` for the others;
- skipped rules become `toolExecutionNotifications` of the invocation.

A finding read from standard input is located in an artifact named `stdin`: GitHub code
scanning refuses a whole upload when one result has no artifact location.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from m2maudit.findings import Finding, Location, RuleInfo, ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import (
    ITEMS,
    clean_text,
    dumps_one_item_a_line,
    finding_dict,
    jsonable,
    window_dict,
)
from m2maudit.reporters.summary import (
    config_left_out,
    config_left_out_reason,
    filters_applied,
    not_audited_dict,
    ordered_findings,
    rules_left_out,
    rules_of,
    run_notes,
    summarize,
)
from m2maudit.timeutil import iso

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "m2maudit/v1"
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
PRECISION = {"high": "high", "medium": "medium", "low": "low", "very-high": "very-high"}
MAX_RELATED_LOCATIONS = 50
# Standard input has no path: its records are located in an artifact named `stdin`, for
# GitHub code scanning refuses a whole upload when a result has no artifact location.
_STDIN = {"-", "<stdin>"}
STDIN_URI = "stdin"


def baseline_state(finding: Finding) -> str:
    """SARIF's word for how the finding stands against the baseline given."""
    if finding.after_baseline:
        return "updated"
    return "unchanged" if finding.in_baseline else "new"


def artifact_uri(path: str) -> str:
    """A URI reference for a path as the user gave it: relative stays relative."""
    if PureWindowsPath(path).drive:
        return "file:///" + quote(PureWindowsPath(path).as_posix(), safe="/:")
    posix = path.replace("\\", "/")
    if PurePosixPath(posix).is_absolute():
        return "file://" + quote(posix, safe="/")
    return quote(posix, safe="/")


def physical_location(location: Location, record_files: Collection[str] = ()) -> dict[str, Any]:
    """The file, and the line as a region; a record of a JSON document has no line to give
    (its position is no line: a CloudTrail object is one line of thousands of events), so
    its position goes in the properties as `record`."""
    physical: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(location.file)}}
    if location.line >= 1 and location.file in record_files:
        physical["properties"] = {"record": location.line}
    elif location.line >= 1:
        physical["region"] = {"startLine": location.line}
    return physical


def logical_locations(finding: Finding) -> list[dict[str, Any]]:
    items = []
    if finding.principal:
        items.append(
            {
                "name": finding.principal,
                "fullyQualifiedName": f"principal/{finding.principal}",
                "kind": "principal",
            }
        )
    if finding.token_id:
        items.append(
            {
                "name": finding.token_id,
                "fullyQualifiedName": f"credential/{finding.token_id}",
                "kind": "credential",
            }
        )
    return items


def _file_locations(finding: Finding) -> list[Location]:
    return [
        Location(STDIN_URI, location.line) if location.file in _STDIN else location
        for location in finding.locations
        if location.file
    ]


def result_locations(
    finding: Finding, record_files: Collection[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The primary location (file, line, principal) and the remaining evidence lines."""
    files = _file_locations(finding)
    logical = logical_locations(finding)
    primary: dict[str, Any] = {}
    if files:
        primary["physicalLocation"] = physical_location(files[0], record_files)
    if logical:
        primary["logicalLocations"] = logical
    related = [
        {"id": index, "physicalLocation": physical_location(location, record_files)}
        for index, location in enumerate(files[1 : MAX_RELATED_LOCATIONS + 1], start=1)
    ]
    return ([primary] if primary else []), related


def rule_descriptor(rule: RuleInfo) -> dict[str, Any]:
    help_text = f"{rule.description}\n\nRemediation: {rule.remediation}"
    help_markdown = f"{rule.description}\n\n**Remediation:** {rule.remediation}"
    if rule.references:
        help_markdown += "\n\n**References:**\n" + "\n".join(f"- {ref}" for ref in rule.references)
    properties: dict[str, Any] = {
        "security-severity": SECURITY_SEVERITY.get(rule.severity, "0.0"),
        "problem": rule.problem,
        "severity": rule.severity,
        "confidence": rule.confidence,
        "tags": list(dict.fromkeys(["security", rule.problem, *rule.owasp_nhi])),
    }
    if rule.confidence in PRECISION:
        properties["precision"] = PRECISION[rule.confidence]
    descriptor: dict[str, Any] = {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description or rule.title},
        "help": {"text": help_text, "markdown": help_markdown},
        "defaultConfiguration": {"level": LEVEL.get(rule.severity, "warning")},
        "properties": properties,
    }
    if rule.references:
        descriptor["helpUri"] = rule.references[0]
    return descriptor


def message_text(text: str) -> str:
    """A finding's message as SARIF plain text: without escape sequences or overrides (a
    viewer may print it to a terminal), its square brackets escaped (SARIF 3.11.6 reads
    `[text](1)` as a link, and a principal from a log may be written so)."""
    return _BRACKET.sub(r"\\\g<0>", clean_text(text))


_BRACKET = re.compile(r"[\[\]]")


def sarif_result(
    finding: Finding, rule_index: int, baseline_applied: bool, record_files: Collection[str] = ()
) -> dict[str, Any]:
    locations, related = result_locations(finding, record_files)
    data = finding_dict(finding)
    item: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": rule_index,
        "level": LEVEL.get(finding.severity, "warning"),
        "message": {"text": message_text(finding.message or finding.title)},
        "partialFingerprints": {FINGERPRINT_KEY: finding.id},
    }
    if locations:
        item["locations"] = locations
    if related:
        item["relatedLocations"] = related
    if finding.suppressed:
        reason = (finding.suppression or {}).get("reason", "")
        item["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": str(reason)}
        ]
    if baseline_applied:
        item["baselineState"] = baseline_state(finding)
    if finding.count > 0:
        item["occurrenceCount"] = finding.count
    item["properties"] = {
        key: data[key]
        for key in (
            "id",
            "problem",
            "severity",
            "confidence",
            "principal",
            "token_id",
            "count",
            "first_seen",
            "last_seen",
            "evidence",
            "remediation",
            "owasp_nhi",
            "baselined",
        )
    }
    return item


# GitHub code scanning rejects a run with more results than this (and shows the top 5 000).
GITHUB_MAX_RESULTS = 25_000


class SarifReporter(Reporter):
    name = "sarif"
    extension = "sarif"
    media_type = "application/sarif+json"
    description = "SARIF 2.1.0 for code-scanning dashboards"
    signature = re.compile(
        r'\{\s*"\$schema":\s*"[^"]*",\s*"version":\s*"[^"]*",\s*"runs":\s*\[\s*\{\s*'
        r'"tool":\s*\{\s*"driver":\s*\{\s*"name":\s*"m2maudit"'
    )

    def warnings(self, result: ScanResult) -> list[str]:
        count = len(result.findings)
        if count <= GITHUB_MAX_RESULTS:
            return []
        return [
            f"the SARIF report has {count} results; GitHub code scanning rejects more than "
            f"{GITHUB_MAX_RESULTS} in a run (narrow it with --min-severity, --problem or the "
            "config's ignore: baselined and suppressed results count too)"
        ]

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        rules = rules_of(result)
        index = {rule.id: position for position, rule in enumerate(rules)}
        policy = result.stats.get("policy") or {}
        baseline_applied = bool(policy.get("baseline")) or any(
            finding.baselined for finding in result.findings
        )
        summary = summarize(result, options.fail_on)
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": "m2maudit",
                    "version": options.tool_version,
                    "semanticVersion": options.tool_version,
                    "rules": [rule_descriptor(rule) for rule in rules],
                }
            },
            "invocations": [
                {
                    # `--strict` ends the run with exit 2 after this report is written.
                    "executionSuccessful": options.strict_failure is None,
                    "toolExecutionNotifications": _notifications(result, options),
                }
            ],
            "columnKind": "unicodeCodePoints",
            "results": ITEMS,  # one result a line, below
            "properties": {
                "as_of": iso(result.as_of),
                "window": window_dict(result),
                "inputs": jsonable(result.inputs),
                "summary": {
                    **summary.counts.to_dict(),
                    "failing": summary.failing,
                    "fail_on": options.fail_on,
                    "left_out": policy.get("filtered_out") or 0,
                    **not_audited_dict(result),
                },
            },
        }
        document = {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}
        record_files = result.record_files
        results = [
            sarif_result(finding, index[finding.rule_id], baseline_applied, record_files)
            for finding in ordered_findings(result)
        ]
        return dumps_one_item_a_line(document, results)


def _notifications(result: ScanResult, options: ReportOptions) -> list[dict[str, Any]]:
    """What a code-scanning reader should know besides the results: why the run failed
    (`--strict`), what the filters and the config left out, which rules were skipped."""
    notes: list[dict[str, Any]] = []
    if options.strict_failure is not None:
        notes.append({"level": "error", "message": {"text": options.strict_failure}})
    for note in run_notes(result):
        notes.append({"level": "warning", "message": {"text": note}})
    rule_notes = [
        *(
            (rule_id, f"rule left out by {filters_applied(result)}")
            for rule_id in rules_left_out(result)
        ),
        *(
            (rule_id, f"rule {config_left_out_reason(result)}")
            for rule_id in config_left_out(result)
        ),
        *(
            (item.rule_id, f"rule skipped: {item.reason}")
            for item in sorted(result.skipped, key=lambda item: item.rule_id)
        ),
    ]
    for rule_id, text in rule_notes:
        notes.append(
            {"level": "note", "message": {"text": text}, "associatedRule": {"id": rule_id}}
        )
    return notes
