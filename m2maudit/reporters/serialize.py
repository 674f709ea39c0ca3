"""Plain JSON values from findings and results, shared by the json, sarif, csv and junit formats.

Conversions are total and deterministic: datetimes become ISO 8601 UTC with `Z`, sets become
sorted lists, tuples lists, and anything unknown its `str`, so a rule's evidence can never make
a report crash or change order between runs.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from m2maudit.findings import Finding, ScanResult
from m2maudit.timeutil import iso

# C0 controls but tab and newline, DEL, C1 controls, and every format character (Unicode's
# category Cf: the bidirectional overrides and marks that make text read differently from
# what it is, "Trojan Source"; zero-width spaces and joiners, the soft hyphen, the BOM, tag
# characters), with the combining grapheme joiner and the variation selectors: invisible,
# they let `ag\u200bent` pass for `agent`.
_LINE_BREAKS = re.compile("[\t\n\r\u2028\u2029\x85]")
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891"
    "\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff"
    "\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef]"
)


def clean_text(value: object) -> str:
    """Text safe for a terminal or a page, on one line: escape sequences, overrides and
    invisible characters become U+FFFD, line breaks and tabs spaces.

    Log fields are attacker-controlled; an ESC in a principal name must not reach a terminal,
    nor a newline print a line of its own (`m2maudit: no findings`) in the report.
    """
    return _UNSAFE.sub("\ufffd", _LINE_BREAKS.sub(" ", str(value)))


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of `value`."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(item) for item in value), key=_sort_text)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def _sort_text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def finding_dict(finding: Finding) -> dict[str, Any]:
    """Every field of a finding (design §6) plus its suppression and baseline state."""
    return {
        "id": finding.id,
        "rule_id": finding.rule_id,
        "rule_name": finding.rule_name,
        "problem": finding.problem,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "title": finding.title,
        "message": finding.message,
        "principal": finding.principal,
        "token_id": finding.token_id,
        "count": finding.count,
        "first_seen": iso(finding.first_seen),
        "last_seen": iso(finding.last_seen),
        "evidence": jsonable(finding.evidence),
        "locations": [location.to_dict() for location in finding.locations],
        "remediation": finding.remediation,
        "references": list(finding.references),
        "owasp_nhi": list(finding.owasp_nhi),
        "suppressed": finding.suppressed,
        "suppression": jsonable(finding.suppression),
        "baselined": finding.baselined,
        # In the baseline, but an incident with calls after the last its entry covers.
        "after_baseline": finding.after_baseline,
    }


def window_dict(result: ScanResult) -> dict[str, str | None]:
    start, end = result.window
    return {"start": iso(start), "end": iso(end)}


def input_label(item: dict[str, Any]) -> str:
    """The name an input is shown under: its path as given."""
    for key in ("source", "file", "path", "display"):
        if item.get(key):
            return str(item[key])
    return "?"


class _Items:
    """The type of `ITEMS`: no value a report holds can be it."""


# Stands where a long list goes in a document given to `dumps_one_item_a_line`.
ITEMS = _Items()


def dumps_one_item_a_line(document: dict[str, Any], items: list[Any]) -> str:
    """`document` as indented JSON, with `items` in place of its `ITEMS` value, one per line.

    `json.dumps` with `indent` runs in pure Python, ten times slower than without; a report
    may hold a hundred thousand findings. So only the frame is indented, and each item is
    encoded by the C encoder on a line of its own (which also greps and diffs well). `ITEMS`
    is written as a random marker, so no text in the frame (a custom rule's title, say) can
    stand in for it.
    """
    marker = f"m2maudit-items-{uuid.uuid4().hex}"

    def place(value: object) -> str:
        if value is ITEMS:
            return marker
        raise TypeError(f"not JSON: {type(value).__name__}")

    head = json.dumps(document, indent=2, ensure_ascii=False, default=place) + "\n"
    quoted = json.dumps(marker)
    start = head.index(quoted)
    line = head[head.rindex("\n", 0, start) + 1 : start]  # e.g. '  "findings": '
    indent = len(line) - len(line.lstrip(" "))
    if not items:
        return head.replace(quoted, "[]", 1)
    encode = json.JSONEncoder(ensure_ascii=False).encode
    pad = " " * (indent + 2)
    lines = ",\n".join(pad + encode(item) for item in items)
    return head.replace(quoted, "[\n" + lines + "\n" + " " * indent + "]", 1)
