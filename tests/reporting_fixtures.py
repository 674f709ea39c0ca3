"""Hand-built ScanResults for the reporter and policy tests (no engine, no DuckDB).

Named `reporting_fixtures` rather than `conftest` so it cannot clash with the lead's
`tests/conftest.py`. The data is hostile on purpose: formula prefixes, Markdown and XML
metacharacters, control characters, a long ARN, an `@mention`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from m2maudit.config import Suppression
from m2maudit.findings import Finding, Location, RuleInfo, ScanResult, SkippedRule, finding_id
from tests.cloud_fixtures import shared_dir as shared_dir  # the reporter tests' SARIF schema

AS_OF = datetime(2025, 7, 1, tzinfo=UTC)
START = datetime(2025, 6, 1, tzinfo=UTC)
END = datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC)
LONG_ARN = "arn:aws:iam::123456789012:role/service-role/very-long-automation-agent-role-name-x"

RULES = [
    RuleInfo(
        "M2M101",
        "agent-without-user",
        "Agent acts without a human",
        "missing-user-context",
        "high",
        "high",
        "An agent called an API with no human on whose behalf it acted.",
        "Use token exchange (RFC 8693) so the token names the user.",
        ("https://www.rfc-editor.org/rfc/rfc8693",),
        ("NHI7",),
    ),
    RuleInfo(
        "M2M202",
        "unused-scopes",
        "Scopes granted but never used",
        "broad-scopes",
        "medium",
        "medium",
        "The credential holds scopes it never used in the window.",
        "Reduce the grant to the scopes to keep.",
        (),
        ("NHI5",),
    ),
    RuleInfo(
        "M2M201",
        "wildcard-scope",
        "Wildcard or admin scope",
        "broad-scopes",
        "critical",
        "high",
        "A machine credential holds a wildcard or admin scope.",
        "Replace the wildcard with the specific scopes the workload needs.",
        (),
        ("NHI5",),
    ),
    RuleInfo(
        "M2M301",
        "not-rotated",
        "Credential not rotated",
        "stale-rotation",
        "low",
        "high",
        "The credential was not rotated within rotation_days.",
        "Rotate it and automate rotation.",
        (),
        (),
    ),
    RuleInfo(
        "M2M501",
        "no-trace",
        "Agent action without trace id",
        "untraceable-action",
        "info",
        "low",
        "Agent actions carry no trace or session id.",
        "Propagate a W3C traceparent header.",
        (),
        (),
    ),
    RuleInfo(
        "M2M402",
        "no-exp",
        "Token without expiry",
        "long-lifetime",
        "high",
        "high",
        "A token has no exp claim.",
        "Issue short-lived tokens.",
        (),
        (),
    ),
]


def finding(
    rule: RuleInfo,
    principal: str | None,
    token_id: str | None,
    message: str,
    *,
    count: int = 1,
    evidence: dict[str, Any] | None = None,
    locations: list[Location] | None = None,
    discriminator: str | None = None,
) -> Finding:
    return Finding(
        id=finding_id(rule.id, principal, token_id, discriminator),
        rule_id=rule.id,
        rule_name=rule.name,
        problem=rule.problem,
        severity=rule.severity,
        confidence=rule.confidence,
        title=rule.title,
        message=message,
        principal=principal,
        token_id=token_id,
        count=count,
        first_seen=START if count else None,
        last_seen=END if count else None,
        evidence=evidence or {},
        locations=locations or [],
        remediation=rule.remediation,
        references=rule.references,
        owasp_nhi=rule.owasp_nhi,
    )


def full_findings() -> list[Finding]:
    by_id = {rule.id: rule for rule in RULES}
    return [
        finding(
            by_id["M2M101"],
            "deploy-agent",
            "tok-1",
            "deploy-agent made 42 calls with no on_behalf_of",
            count=42,
            evidence={"actions": ["deploy", "read"], "sample_resource": "=cmd|' /C calc'!A0"},
            locations=[Location("logs/app.jsonl", 12), Location("logs/app.jsonl", 40)],
        ),
        finding(
            by_id["M2M202"],
            LONG_ARN,
            "AKIAFINGERPRINT01",
            "3 of 5 scopes unused | <b>bold</b> `tick` *star*",
            count=5,
            evidence={
                "unused_scopes": {"admin", "write:all", "delete"},
                "minimal_scopes": ["read:orders", "write:orders"],
                "granted_count": 5,
            },
            locations=[Location("/abs/path with space/ct.json", 3)],
        ),
        finding(
            by_id["M2M201"],
            "+svc-ci@corp.example",
            "-tok-2",
            "@admin holds scope '*'\x00 on every resource\nsecond line",
            count=0,
            evidence={"scopes": ["*"]},
        ),
        finding(
            by_id["M2M301"],
            "svc-report",
            "tok-3",
            "tok-3 last rotated 200 days ago",
            evidence={"last_rotated_at": datetime(2024, 12, 13, tzinfo=UTC), "days": 200},
            locations=[Location("tokens.csv", 4)],
        ),
        finding(
            by_id["M2M501"],
            "deploy-agent",
            None,
            "10 agent actions carry no trace id",
            count=10,
            locations=[Location("-", 1), Location("logs/app.jsonl", 0)],
        ),
        finding(
            by_id["M2M402"],
            None,
            "fp:0123456789abcdef",
            "token has no exp claim",
            count=3,
            locations=[Location("logs/jwt.jsonl", 7)],
        ),
    ]


def make_result(findings: list[Finding] | None = None) -> ScanResult:
    return ScanResult(
        as_of=AS_OF,
        findings=list(findings or []),
        rules=list(RULES),
        skipped=[SkippedRule("M2M403", "no decoded tokens in the inputs")],
        inputs=[
            {
                "source": "logs/app.jsonl",
                "kind": "events",
                "format": "generic-log",
                "loaded": 1204,
                "rejected": 3,
            },
            {
                "source": "tokens.csv",
                "kind": "inventory",
                "format": "generic-inventory",
                "loaded": 12,
                "rejected": 0,
            },
        ],
        window=(START, END),
        attribution={
            "agent_actions": 1200,
            "human": 984,
            "agent": 1200,
            "credential": 1188,
            "trace": 768,
            "all": 720,
            "min_attribution": 0.95,
        },
        stats={"elapsed_seconds": 1.234},
    )


def empty_result() -> ScanResult:
    result = make_result([])
    result.attribution = {}
    result.inputs = []
    result.window = (None, None)
    result.skipped = []
    return result


def full_result() -> ScanResult:
    return make_result(full_findings())


SUPPRESSIONS = [
    Suppression(
        rule="M2M201",
        problem=None,
        principal="+svc-ci@*",
        credential=None,
        reason="CI bootstrap, =accepted",
        owner="platform",
        ticket="SEC-12",
        expires=date(2025, 12, 31),
    ),
    Suppression(
        rule=None,
        problem="stale-rotation",
        principal="svc-*",
        credential=None,
        reason="rotation project underway",
        expires=date(2025, 1, 31),
    ),
]


def suppressed_result() -> ScanResult:
    """Full result with one suppression live, one expired, and one finding baselined."""
    from m2maudit.policy import apply_policy

    result = full_result()
    baseline = dict.fromkeys([finding_id("M2M501", "deploy-agent", None)])
    apply_policy(result, suppressions=SUPPRESSIONS, baseline=baseline)
    return result
