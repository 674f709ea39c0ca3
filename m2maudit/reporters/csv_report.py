"""`--format csv`: one row per finding under a fixed header, safe to open in a spreadsheet.

Columns (fixed; new ones are only ever appended):
`id, severity, confidence, problem, rule_id, rule_name, title, principal, token_id, count,
first_seen, last_seen, status, suppression_reason, suppression_owner, suppression_ticket,
suppression_expires, message, remediation, evidence, locations, owasp_nhi, references`.

`status` is `active`, `suppressed` or `baselined`; `evidence` is compact JSON with sorted keys;
`locations` is `file:line` joined by `; `; list fields are joined by `; `. Rows end with `\\n`
(not the RFC 4180 `\\r\\n`) so the file is byte-identical on every platform and diffs cleanly
in git; spreadsheets and CSV libraries read either.

Formula injection: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is
prefixed with a single quote `'`, so a spreadsheet shows it as text instead of running it.
Principals, resources and messages come from logs an attacker may write to. For the same
reason escape sequences and bidirectional overrides become U+FFFD and line breaks spaces
(`serialize.clean_text`): a `cat` of the file must not drive the terminal. The JSON report
keeps every value as it was.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Collection
from typing import Any

from m2maudit.findings import Finding, ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import clean_text, jsonable
from m2maudit.reporters.summary import ordered_findings, status
from m2maudit.timeutil import iso

COLUMNS = (
    "id",
    "severity",
    "confidence",
    "problem",
    "rule_id",
    "rule_name",
    "title",
    "principal",
    "token_id",
    "count",
    "first_seen",
    "last_seen",
    "status",
    "suppression_reason",
    "suppression_owner",
    "suppression_ticket",
    "suppression_expires",
    "message",
    "remediation",
    "evidence",
    "locations",
    "owasp_nhi",
    "references",
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """Prefix a cell a spreadsheet would read as a formula with `'`: also one whose formula
    starts after white space, which some spreadsheets skip."""
    return "'" + cell if cell.lstrip(" ").startswith(FORMULA_PREFIXES) else cell


def row(finding: Finding, record_files: Collection[str] = ()) -> list[str]:
    suppression = finding.suppression or {}
    values: dict[str, Any] = {
        "id": finding.id,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "problem": finding.problem,
        "rule_id": finding.rule_id,
        "rule_name": finding.rule_name,
        "title": finding.title,
        "principal": finding.principal,
        "token_id": finding.token_id,
        "count": finding.count,
        "first_seen": iso(finding.first_seen),
        "last_seen": iso(finding.last_seen),
        "status": status(finding),
        "suppression_reason": suppression.get("reason"),
        "suppression_owner": suppression.get("owner"),
        "suppression_ticket": suppression.get("ticket"),
        "suppression_expires": suppression.get("expires"),
        "message": finding.message,
        "remediation": finding.remediation,
        "evidence": json.dumps(
            jsonable(finding.evidence), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        if finding.evidence
        else "",
        "locations": "; ".join(loc.text(record_files) for loc in finding.locations),
        "owasp_nhi": "; ".join(finding.owasp_nhi),
        "references": "; ".join(finding.references),
    }
    return [
        neutralize(clean_text("" if values[column] is None else values[column]))
        for column in COLUMNS
    ]


class CsvReporter(Reporter):
    name = "csv"
    extension = "csv"
    media_type = "text/csv"
    description = "one row per finding, fixed columns, safe against formula injection"
    # The first columns, each perhaps quoted: a copy with columns dropped or added after
    # them (edited in a spreadsheet) is still the report, not an inventory.
    signature = re.compile(",".join(f'"?{re.escape(c)}"?' for c in COLUMNS[:5]) + r"[,\r\n]")

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(COLUMNS)
        record_files = result.record_files
        for finding in ordered_findings(result):
            writer.writerow(row(finding, record_files))
        return buffer.getvalue()
