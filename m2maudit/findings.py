"""The finding model (design §6): what every rule produces and every reporter renders.

A finding's `id` is a stable fingerprint of rule + principal + credential (+ an optional
discriminator the rule chooses), never of line numbers or times, so baselines and SARIF
fingerprints survive re-runs, other machines and reordered input files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True)
class Location:
    """Where evidence for a finding sits: an input file and a 1-based line."""

    file: str
    line: int

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line}

    def text(self, record_files: Collection[str] = ()) -> str:
        """`file:line`, or `file record N` for a file whose positions are records (a JSON
        document, `FileReport.by_record`): its N is no line to jump to."""
        if self.file in record_files:
            return f"{self.file} record {self.line}"
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class RuleInfo:
    """The parts of a rule reporters need (SARIF rule entries, JUnit cases, docs)."""

    id: str
    name: str
    title: str
    problem: str
    severity: str
    confidence: str
    description: str
    remediation: str
    references: tuple[str, ...] = ()
    owasp_nhi: tuple[str, ...] = ()
    # A baseline covers an incident rule's finding only up to the last call it recorded.
    incident: bool = False


@dataclass
class Finding:
    id: str
    rule_id: str
    rule_name: str
    problem: str
    severity: str
    confidence: str
    title: str
    message: str
    principal: str | None
    token_id: str | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    evidence: dict[str, Any] = field(default_factory=dict)
    # The evidence keys the message states (its placeholders): a person reads them there.
    stated: tuple[str, ...] = ()
    locations: list[Location] = field(default_factory=list)
    remediation: str = ""
    references: tuple[str, ...] = ()
    owasp_nhi: tuple[str, ...] = ()
    suppressed: bool = False
    suppression: dict[str, Any] | None = None
    baselined: bool = False
    # Its id is in the baseline given, suppressed or not (SARIF's baselineState says so).
    in_baseline: bool = False
    # In the baseline, but an incident with calls after the last the baseline covers.
    after_baseline: bool = False

    @property
    def severity_rank(self) -> int:
        return SEVERITY_ORDER[self.severity]

    def sort_key(self) -> tuple[int, str, str, str, str]:
        """Most severe first, then by rule, principal and credential: a deterministic order."""
        return (
            -self.severity_rank,
            self.rule_id,
            self.principal or "",
            self.token_id or "",
            self.id,
        )


def finding_id(
    rule_id: str, principal: str | None, token_id: str | None, discriminator: str | None = None
) -> str:
    """Stable id: SHA-256 prefix over the rule, principal, credential and discriminator."""
    material = "\x1f".join([rule_id, principal or "", token_id or "", discriminator or ""])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:20]


@dataclass
class SkippedRule:
    rule_id: str
    reason: str


@dataclass
class ScanResult:
    """Everything a reporter may show: the findings and the context of the run."""

    as_of: datetime
    findings: list[Finding]
    rules: list[RuleInfo]
    skipped: list[SkippedRule] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    window: tuple[datetime | None, datetime | None] = (None, None)
    attribution: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def record_files(self) -> set[str]:
        """The inputs whose positions are records, not lines (see `Location.text`)."""
        return {str(item["source"]) for item in self.inputs if item.get("by_record")}

    @property
    def active(self) -> list[Finding]:
        """Findings that count: neither suppressed nor baselined."""
        return [f for f in self.findings if not f.suppressed and not f.baselined]
