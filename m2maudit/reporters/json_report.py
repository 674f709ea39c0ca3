"""`--format json`: the documented, versioned report (see docs/output.md).

The shape only grows within a major `schema_version`; removing or renaming a field bumps it.
Keys are emitted in a fixed order and findings in `Finding.sort_key` order, so the same input
and `--as-of` give the same bytes. `ScanResult.stats` is left out on purpose (it may hold
timings); only the filters and baseline recorded by `m2maudit.policy.apply_policy` appear, as
`policy`, and the config's file and the rules its `select` and `ignore` left out, as `config`.
"""

from __future__ import annotations

import re
from typing import Any

from m2maudit.findings import ScanResult
from m2maudit.reporters.base import Reporter, ReportOptions
from m2maudit.reporters.serialize import (
    ITEMS,
    dumps_one_item_a_line,
    finding_dict,
    jsonable,
    window_dict,
)
from m2maudit.reporters.summary import (
    attribution_dict,
    not_audited_dict,
    ordered_findings,
    summarize,
)
from m2maudit.timeutil import iso

SCHEMA_VERSION = "1.0"


def report_document(result: ScanResult, options: ReportOptions) -> dict[str, Any]:
    """The report as plain data; also the base of other machine formats' metadata."""
    summary = summarize(result, options.fail_on)
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "m2maudit", "version": options.tool_version},
        "as_of": iso(result.as_of),
        "inputs": jsonable(result.inputs),
        "window": window_dict(result),
        "summary": {
            **summary.counts.to_dict(),
            "failing": summary.failing,
            "fail_on": options.fail_on,
            # Why `--strict` ends this run with exit 2 (a rejected record, an unreadable file).
            "strict_failure": options.strict_failure,
            **not_audited_dict(result),
            "by_severity": {key: value.to_dict() for key, value in summary.by_severity.items()},
            "by_problem": {key: value.to_dict() for key, value in summary.by_problem.items()},
            "attribution": attribution_dict(summary, result.attribution),
        },
        "skipped_rules": [
            {"rule_id": item.rule_id, "reason": item.reason}
            for item in sorted(result.skipped, key=lambda item: item.rule_id)
        ],
        "policy": jsonable(result.stats.get("policy")),
        "config": jsonable(result.stats.get("config")),
        "findings": [finding_dict(finding) for finding in ordered_findings(result)],
    }


class JsonReporter(Reporter):
    name = "json"
    extension = "json"
    media_type = "application/json"
    description = "versioned JSON report with every finding field (schema_version 1.0)"
    signature = re.compile(
        r'\{\s*"schema_version":\s*"[^"]*",\s*"tool":\s*\{\s*"name":\s*"m2maudit"'
    )

    def render(self, result: ScanResult, options: ReportOptions) -> str:
        """Indented, but one finding per line (see `dumps_one_item_a_line`)."""
        document = report_document(result, options)
        findings = document.pop("findings")
        return dumps_one_item_a_line({**document, "findings": ITEMS}, findings)
