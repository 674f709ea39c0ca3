"""The AWS IAM credential report adapter: the sample report, hand-made rows, CloudTrail link."""

from __future__ import annotations

import json
import re
from pathlib import Path

from m2maudit.canonical import CREDENTIAL_COLUMNS
from m2maudit.config import Config
from m2maudit.scan import run_scan
from m2maudit.sources.base import Sample
from m2maudit.sources.iam_credential_report import IamCredentialReportAdapter
from tests.cloud_fixtures import SAMPLE_LOGS, load, rejects, rows, utc

REPORT = SAMPLE_LOGS / "aws" / "credential_report.csv"
HEADER = (
    "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,"
    "password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,"
    "access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,"
    "access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,"
    "access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,"
    "cert_1_last_rotated,cert_2_active,cert_2_last_rotated"
)
NO_KEY = "false,N/A,N/A,N/A,N/A"


def report_row(
    user: str,
    key1: str,
    key2: str = NO_KEY,
    certs: str = "false,N/A,false,N/A",
    password: str = "false",
) -> str:
    arn = f"arn:aws:iam::123456789012:user/{user}" if user else ""
    return (
        f"{user},{arn},2025-01-01T00:00:00+00:00,{password},N/A,N/A,N/A,false,{key1},{key2},{certs}"
    )


def test_sample_report_has_one_credential_per_key_in_use() -> None:
    store, report = load(inventories=[REPORT])
    [file] = report.files
    assert (file.format, file.kind, file.loaded, file.rejected) == (
        "iam-credential-report",
        "inventory",
        5,
        0,
    )
    by_id = {row["credential_id"]: row for row in rows(store, "SELECT * FROM credentials")}
    assert sorted(by_id) == [
        "arn:aws:iam::111122223333:root#access_key_1",
        "arn:aws:iam::111122223333:user/ci-deployer#access_key_1",
        "arn:aws:iam::111122223333:user/legacy-batch#access_key_1",
        "arn:aws:iam::111122223333:user/legacy-batch#access_key_2",
        "arn:aws:iam::111122223333:user/reporting-export#access_key_1",
    ]  # the console-only person holds no key; the root account does (M2M204)
    stale = by_id["arn:aws:iam::111122223333:user/legacy-batch#access_key_1"]
    assert stale["last_rotated_at"] == utc("2026-03-02T14:05:33")
    assert stale["created_at"] == stale["last_rotated_at"]
    assert stale["last_used_at"] == utc("2026-11-18T00:31:04")
    assert (stale["type"], stale["status"], stale["principal_type"]) == (
        "aws_access_key",
        "active",
        "service",
    )
    assert stale["principal"] == "arn:aws:iam::111122223333:user/legacy-batch"
    assert stale["environment"] == "111122223333"
    assert stale["expires_at"] is None
    old = by_id["arn:aws:iam::111122223333:user/legacy-batch#access_key_2"]
    assert old["status"] == "disabled"
    unused = by_id["arn:aws:iam::111122223333:user/reporting-export#access_key_1"]
    assert unused["last_used_at"] is None


def test_report_is_detected_by_content_even_as_a_log_path() -> None:
    _, report = load(REPORT)
    assert [(f.format, f.kind) for f in report.files] == [("iam-credential-report", "inventory")]
    adapter = IamCredentialReportAdapter()
    header = tuple(HEADER.split(","))
    assert adapter.detect(Sample(HEADER, "csv", csv_header=header), Config())
    generic = ("token_id", "principal", "created_at")
    assert not adapter.detect(Sample("token_id,principal", "csv", csv_header=generic), Config())


def test_bad_rows_are_counted_rejects(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                report_row("good-bot", "true,2026-10-01T00:00:00+00:00,N/A,N/A,N/A"),
                report_row("maybe-bot", "maybe,2026-10-01T00:00:00+00:00,N/A,N/A,N/A"),
                report_row("dated-bot", "true,last tuesday,N/A,N/A,N/A"),
                report_row("", "true,2026-10-01T00:00:00+00:00,N/A,N/A,N/A"),
                report_row("used-bot", "true,2026-10-01T00:00:00+00:00,soon,us-east-1,s3"),
                "short,row",
            ]
        )
        + "\n"
    )
    store, report = load(inventories=[path])
    [file] = report.files
    assert (file.loaded, file.rejected) == (1, 5)
    assert rejects(store) == {
        3: "access_key_1_active must be true or false, not maybe",
        4: "unparseable access_key_1_last_rotated: last tuesday",
        5: "missing arn",
        6: "unparseable access_key_1_last_used_date: soon",
        7: "malformed CSV row: too few columns",
    }


def test_field_map_documents_canonical_columns() -> None:
    documented = [column for column, _ in IamCredentialReportAdapter.field_map]
    assert len(documented) == len(set(documented))
    assert set(documented) <= set(CREDENTIAL_COLUMNS)
    assert {"credential_id", "principal", "last_rotated_at", "last_used_at"} <= set(documented)


def test_certificates_and_people(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                report_row(
                    "jane.doe@example.com",
                    "true,2026-10-01T00:00:00+00:00,N/A,N/A,N/A",
                    password="true",
                ),
                report_row("build-agent", NO_KEY, certs="true,2026-01-05T00:00:00+00:00,false,N/A"),
            ]
        )
        + "\n"
    )
    store, _ = load(inventories=[path])
    found = {
        row["credential_id"].split("/")[-1]: row
        for row in rows(
            store, "SELECT credential_id, type, principal_type, last_used_at FROM credentials"
        )
    }
    assert found["jane.doe@example.com#access_key_1"]["principal_type"] == "human"
    cert = found["build-agent#cert_1"]
    assert (cert["type"], cert["principal_type"], cert["last_used_at"]) == (
        "aws_signing_certificate",
        "agent",
        None,
    )


def test_report_links_to_cloudtrail_by_user_arn() -> None:
    store, _ = load(SAMPLE_LOGS / "cloudtrail", inventories=[REPORT])
    linked = rows(
        store,
        """
        SELECT c.credential_id, count(e.ts) AS calls, max(e.credential_id) AS key_in_logs
        FROM credentials c LEFT JOIN events e ON e.principal = c.principal
        WHERE c.status = 'active' GROUP BY c.credential_id ORDER BY c.credential_id""",
    )
    calls = {row["credential_id"].split("/")[-1]: row["calls"] for row in linked}
    assert calls == {
        "arn:aws:iam::111122223333:root#access_key_1": 0,
        "ci-deployer#access_key_1": 4,
        "legacy-batch#access_key_1": 4,
        "reporting-export#access_key_1": 0,
    }
    assert all(row["key_in_logs"].startswith("AKIA") for row in linked if row["calls"])


def test_a_format_hint_on_another_file_is_an_error_not_an_empty_report(tmp_path: Path) -> None:
    """A JSON log read `--format-hint iam-credential-report` held 73 records; it was said to
    be an empty export, and `--strict` passed."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    log = tmp_path / "okta.jsonl"
    log.write_text('{"published": "2026-11-01T00:00:00Z", "actor": {"id": "x"}}\n')
    result = CliRunner().invoke(
        app, ["scan", str(log), "--format-hint", "iam-credential-report", "--strict", "-q"]
    )
    assert result.exit_code == 2
    assert f"{log}: not an IAM credential report (a CSV with access_key_1_active" in result.stderr


def test_a_root_access_key_in_the_report_and_its_calls_is_one_finding(
    tmp_path: Path,
) -> None:
    """M2M204: CloudTrail calls signed with a root key (not the console session's) are the
    finding; the report's root row holding an active key, the same key by its slot, is not
    a second one. An IAM user's key is not the root's."""
    report = tmp_path / "report.csv"
    root = "<root_account>,arn:aws:iam::123456789012:root,2025-01-01T00:00:00+00:00,true,N/A,N/A,"
    root += "N/A,true,true,2025-02-01T00:00:00+00:00,2026-11-19T08:00:00+00:00,us-east-1,iam,"
    root += NO_KEY + ",false,N/A,false,N/A"
    report.write_text(
        "\n".join([HEADER, root, report_row("ci", "true,2026-10-01T00:00:00+00:00,N/A,N/A,N/A")])
        + "\n"
    )
    identity = {
        "type": "Root",
        "arn": "arn:aws:iam::123456789012:root",
        "accountId": "123456789012",
    }
    trail = tmp_path / "trail.jsonl"
    calls = [
        {**identity, "accessKeyId": "AKIAROOTEXAMPLE00001"},
        {**identity, "accessKeyId": "ASIAROOTCONSOLE00001", "sessionContext": {}},
    ]
    trail.write_text(
        "".join(
            json.dumps(
                {
                    "eventVersion": "1.08",
                    "userIdentity": who,
                    "eventTime": f"2026-11-20T10:0{n}:00Z",
                    "eventSource": "iam.amazonaws.com",
                    "eventName": "CreateUser",
                }
            )
            + "\n"
            for n, who in enumerate(calls)
        )
    )
    store, _ = load(trail, inventories=[report])
    result = run_scan(store, Config(), utc("2026-11-21T00:00:00"))
    found = sorted(
        (f.token_id, f.evidence["seen_in"]) for f in result.findings if f.rule_id == "M2M204"
    )
    assert found == [("AKIAROOTEXAMPLE00001", "logs")]


def test_a_secret_where_the_arn_belongs_is_kept_as_its_fingerprint(tmp_path: Path) -> None:
    """The ARN names the principal and the credential, stored and shown in every report: a
    token pasted there (an export that shifted a column) was kept in clear, while the
    generic inventory kept such an id as `secret:<fingerprint>`."""
    token = "ghp_hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rES"
    row = report_row("build-bot", "true,2024-01-01T00:00:00+00:00,N/A,N/A,N/A")
    row = row.replace("arn:aws:iam::123456789012:user/build-bot", token)
    plain = report_row("ci", "true,2026-10-01T00:00:00+00:00,N/A,N/A,N/A")
    report = tmp_path / "report.csv"
    report.write_text("\n".join([HEADER, row, plain]) + "\n")
    store, _ = load(inventories=[report])
    stored = rows(store, "SELECT principal, credential_id FROM credentials ORDER BY principal")
    assert stored[0]["principal"] == "arn:aws:iam::123456789012:user/ci"
    assert re.fullmatch("secret:[0-9a-f]{16}", stored[1]["principal"])
    assert stored[1]["credential_id"] == f"{stored[1]['principal']}#access_key_1"
    assert token[4:] not in str(stored)
