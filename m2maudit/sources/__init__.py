"""Source adapters: the one registry of input formats.

Detection asks each adapter in order and takes the first that says yes, so the specific vendor
formats come before the generic ones. Adding a format is one module and one line here.
"""

from __future__ import annotations

from m2maudit.sources.base import SourceAdapter
from m2maudit.sources.cloudtrail import CloudTrailAdapter
from m2maudit.sources.entra_signin import EntraSignInAdapter
from m2maudit.sources.gcp_audit import GcpAuditAdapter
from m2maudit.sources.generic_inventory import GenericInventoryAdapter
from m2maudit.sources.generic_log import GenericLogAdapter
from m2maudit.sources.github_audit import GitHubAuditAdapter
from m2maudit.sources.iam_credential_report import IamCredentialReportAdapter
from m2maudit.sources.k8s_audit import K8sAuditAdapter
from m2maudit.sources.ocsf import OcsfAdapter
from m2maudit.sources.okta import OktaSystemLogAdapter
from m2maudit.sources.vault_audit import VaultAuditAdapter

ADAPTERS: tuple[SourceAdapter, ...] = (
    OcsfAdapter(),
    CloudTrailAdapter(),
    IamCredentialReportAdapter(),
    K8sAuditAdapter(),
    GcpAuditAdapter(),
    OktaSystemLogAdapter(),
    GitHubAuditAdapter(),
    VaultAuditAdapter(),
    EntraSignInAdapter(),
    GenericInventoryAdapter(),
    GenericLogAdapter(),
)


def adapter_named(name: str) -> SourceAdapter | None:
    """The format of this name, in any case (`OKTA`, `CloudTrail`)."""
    return next((adapter for adapter in ADAPTERS if adapter.name == name.lower()), None)
