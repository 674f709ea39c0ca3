"""The whole pack over the shared real vendor samples: each platform's evidence gives findings."""

from __future__ import annotations

import json
from collections import defaultdict

from typer.testing import CliRunner

from m2maudit.cli import app
from tests.source_support import shared_dir


def test_real_logs_produce_findings_where_the_evidence_is() -> None:
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(shared_dir() / "real-logs"),
            "--as-of",
            "2026-11-28T00:00:00Z",
            "-f",
            "json",
            "--fail-on",
            "never",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    platforms: dict[str, set[str]] = defaultdict(set)
    for finding in json.loads(result.stdout)["findings"]:
        for location in finding["locations"]:
            platforms[finding["rule_id"]].add(location["file"].split("real-logs/")[1].split("/")[0])
    assert "vault_audit" in platforms["M2M201"]  # a Vault token with the root policy
    assert "vault_audit" in platforms["M2M401"]  # a Vault token TTL far above an hour
    assert "cloudtrail" in platforms["M2M304"]  # a long-term AKIA key in use for months
    # CloudFormation, EKS and Config acting for service roles: no delegation a person
    # should root (they made 12 of the 30 findings; an AI agent's session would still fire).
    assert "cloudtrail" not in platforms["M2M105"]
    # elastic-agent, the only "agent" of the Kubernetes samples, ships logs: not an AI agent.
    assert "k8s_audit" not in platforms["M2M101"]
    # Panther's Okta sample renames one user (actor.id 00u99ped55av2JpGs5d7) between calls
    # with one API token: one principal under two logins, not a shared credential.
    assert "okta" not in platforms["M2M504"]
    # GitHub's secret scanning found a secret in acme-inc/crown-jewels (alert 12).
    assert "github_audit" in platforms["M2M606"]
