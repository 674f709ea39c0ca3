"""The AWS IAM credential report (CSV) as a credential inventory.

`aws iam generate-credential-report` / `get-credential-report` gives one row per IAM user (and
the root account) with two access-key slots and two signing-certificate slots. Each slot that
holds a key or certificate becomes one inventory credential. The report never shows access key
ids, so a credential is named `<user ARN>#access_key_1` and links to CloudTrail by principal:
`credentials.principal` is the same user ARN as `events.principal`.
"""

from __future__ import annotations

from typing import ClassVar

from m2maudit.config import Config
from m2maudit.errors import InputError
from m2maudit.secrets import secret_safe_id_sql
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import map_records, stage

REQUIRED_COLUMNS = {"user", "arn", "access_key_1_active"}
ROOT_USER = "<root_account>"
# The report writes these where a date or value does not apply.
NOT_APPLICABLE = ("N/A", "no_information", "not_supported", "")
# slot -> (credential type, its columns' prefix, whether the report tracks its last use)
SLOTS: dict[str, tuple[str, str, bool]] = {
    "access_key_1": ("aws_access_key", "access_key_1", True),
    "access_key_2": ("aws_access_key", "access_key_2", True),
    "cert_1": ("aws_signing_certificate", "cert_1", False),
    "cert_2": ("aws_signing_certificate", "cert_2", False),
}


_NA = ", ".join(f"'{value}'" for value in NOT_APPLICABLE)


def _report_time(text: str) -> str:
    return f"CASE WHEN coalesce({text}, '') IN ({_NA}) THEN NULL ELSE {q.text_timestamp(text)} END"


def _bad_time(text: str) -> str:
    return f"(coalesce({text}, '') NOT IN ({_NA}) AND {q.text_timestamp(text)} IS NULL)"


class IamCredentialReportAdapter:
    name: ClassVar[str] = "iam-credential-report"
    kind: ClassVar[Kind] = "inventory"
    description: ClassVar[str] = (
        "AWS IAM credential report (CSV): one credential per access key or signing "
        "certificate slot in use"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("credential_id", "arn + '#access_key_1' (_2, cert_1, cert_2): the report has no key id"),
        ("type", "aws_access_key (access_key_N_*) or aws_signing_certificate (cert_N_*)"),
        ("principal", "arn (the same ARN CloudTrail shows as userIdentity.arn)"),
        (
            "principal_type",
            "<root_account>: human; infrastructure_patterns: service; "
            "agent_patterns on user: agent; "
            "human_patterns on user or password_enabled = true: human; "
            "else service",
        ),
        ("owner", "not in the report"),
        ("scopes", "not in the report (attached policies are not listed)"),
        (
            "created_at",
            "access_key_N_last_rotated / cert_N_last_rotated (a key is created, "
            "never changed in place)",
        ),
        ("last_rotated_at", "access_key_N_last_rotated / cert_N_last_rotated"),
        ("expires_at", "never: IAM access keys and certificates do not expire"),
        ("last_used_at", "access_key_N_last_used_date (N/A: never used)"),
        ("status", "access_key_N_active / cert_N_active: true -> active, false -> disabled"),
        ("principal_status", "active (the report lists existing users only)"),
        ("environment", "the AWS account id from the ARN"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return sample.layout == "csv" and set(sample.csv_header) >= REQUIRED_COLUMNS

    def load(self, ctx: LoadContext) -> None:
        if not self.detect(ctx.sample, ctx.config):  # a --format-hint on another file
            columns = ", ".join(sorted(REQUIRED_COLUMNS))
            raise InputError(
                ctx.file.display, f"not an IAM credential report (a CSV with {columns})"
            )
        stage(ctx)
        _unpivot_slots(ctx)
        map_records(ctx, _columns(ctx.config), _checks())


def _unpivot_slots(ctx: LoadContext) -> None:
    """One record per slot holding a key or certificate (active, or with a rotation date);
    the report's empty slots are not credentials and add no row."""
    selects = []
    for slot, (kind, prefix, tracks_use) in SLOTS.items():
        last_used = f"rec ->> '$.{prefix}_last_used_date'" if tracks_use else "NULL"
        selects.append(
            f"""
            SELECT source_line, json_object(
                'user', rec ->> '$.user', 'arn', rec ->> '$.arn', 'slot', '{slot}',
                'type', '{kind}', 'password_enabled', rec ->> '$.password_enabled',
                'active', rec ->> '$.{prefix}_active',
                'last_rotated', rec ->> '$.{prefix}_last_rotated',
                'last_used', {last_used})::VARCHAR AS rec
            FROM _records
            WHERE lower(coalesce(rec ->> '$.{prefix}_active', 'false')) <> 'false'
               OR coalesce(rec ->> '$.{prefix}_last_rotated', 'N/A') NOT IN ({_NA})
            """
        )
    ctx.con.execute(
        "CREATE OR REPLACE TEMP TABLE _slots AS "
        + " UNION ALL ".join(selects)
        + " ORDER BY source_line"
    )
    ctx.con.execute("CREATE OR REPLACE TEMP TABLE _records AS SELECT * FROM _slots")
    ctx.con.execute("DROP TABLE _slots")


def _columns(config: Config) -> dict[str, str]:
    def text(key: str) -> str:
        return f"nullif(trim(rec ->> '$.{key}'), '')"

    # A secret pasted where the ARN belongs names the principal as `secret:<fingerprint>`,
    # as in every other inventory: the report's ARN is its name, and it is stored and shown.
    user, arn, active = text("user"), secret_safe_id_sql(text("arn")), f"lower({text('active')})"
    return {
        "credential_id": f"{arn} || '#' || {text('slot')}",
        "type": text("type"),
        "principal": arn,
        "principal_type": (
            f"CASE WHEN {user} = '{ROOT_USER}' THEN 'human' "
            f"WHEN {q.matches_any([user], config.infrastructure_patterns)} THEN 'service' "
            f"WHEN {q.matches_any([user], config.agent_patterns)} THEN 'agent' "
            f"WHEN {q.matches_any([user], config.human_patterns)} "
            f"OR lower({text('password_enabled')}) = 'true' THEN 'human' ELSE 'service' END"
        ),
        "owner": "NULL::VARCHAR",
        "scopes": "NULL::VARCHAR[]",
        "created_at": _report_time(text("last_rotated")),
        "last_rotated_at": _report_time(text("last_rotated")),
        "expires_at": "NULL::TIMESTAMPTZ",
        "last_used_at": _report_time(text("last_used")),
        "status": f"CASE {active} WHEN 'true' THEN 'active' WHEN 'false' THEN 'disabled' END",
        "revoked_at": "NULL::TIMESTAMPTZ",
        "principal_status": "'active'",
        "environment": f"nullif(regexp_extract({arn}, '^arn:[^:]*:iam::(\\d+):', 1), '')",
    }


def _checks() -> list[tuple[str, str]]:
    slot = "(rec ->> '$.slot')"
    active, rotated, used = (
        "(rec ->> '$.active')",
        "(rec ->> '$.last_rotated')",
        "(rec ->> '$.last_used')",
    )
    return [
        ("principal IS NULL", "'missing arn'"),
        (
            "status IS NULL",
            f"{slot} || '_active must be true or false, not ' || {q.shown(active)}",
        ),
        (
            _bad_time(rotated),
            f"'unparseable ' || {slot} || '_last_rotated: ' || {q.shown(rotated)}",
        ),
        (
            _bad_time(used),
            f"'unparseable ' || {slot} || '_last_used_date: ' || {q.shown(used)}",
        ),
    ]
