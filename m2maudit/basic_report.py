"""A plain findings report (rich table or JSON) used until richer reporters are registered."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from m2maudit import __version__
from m2maudit.findings import Finding, ScanResult
from m2maudit.timeutil import iso

SCHEMA_VERSION = "1.0"


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "id": f.id, "rule_id": f.rule_id, "rule_name": f.rule_name, "problem": f.problem,
        "severity": f.severity, "confidence": f.confidence, "title": f.title,
        "message": f.message, "principal": f.principal, "token_id": f.token_id,
        "count": f.count, "first_seen": iso(f.first_seen), "last_seen": iso(f.last_seen),
        "evidence": f.evidence, "locations": [loc.to_dict() for loc in f.locations],
        "remediation": f.remediation, "references": list(f.references),
        "owasp_nhi": list(f.owasp_nhi),
    }


def render_basic(result: ScanResult, output_format: str) -> str:
    if output_format == "json":
        by_problem: dict[str, int] = {}
        for f in result.findings:
            by_problem[f.problem] = by_problem.get(f.problem, 0) + 1
        doc = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "m2maudit", "version": __version__},
            "as_of": iso(result.as_of),
            "summary": {"total": len(result.findings), "by_problem": by_problem,
                        "attribution": result.attribution},
            "skipped_rules": [{"rule_id": s.rule_id, "reason": s.reason}
                              for s in result.skipped],
            "findings": [finding_dict(f) for f in result.findings],
        }
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, no_color=True)
    table = Table(title=f"{len(result.findings)} findings as of {iso(result.as_of)}")
    for column in ("severity", "rule", "problem", "principal", "message"):
        table.add_column(column, overflow="fold")
    for f in result.findings:
        table.add_row(f.severity, f.rule_id, f.problem, f.principal or "-", f.message)
    console.print(table)
    for skipped in result.skipped:
        console.print(f"skipped {skipped.rule_id}: {skipped.reason}")
    return buffer.getvalue()
