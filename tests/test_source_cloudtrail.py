"""The AWS CloudTrail adapter: real vendor samples, the sample estate, hand-made edge cases."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from m2maudit.canonical import EVENT_COLUMNS
from m2maudit.cli import app
from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.scan import run_scan
from m2maudit.sources.base import Sample
from m2maudit.sources.cloudtrail import CloudTrailAdapter
from m2maudit.store import Store
from tests.cloud_fixtures import (
    SAMPLE_LOGS,
    event_at,
    load,
    real_log,
    rejects,
    rows,
    shared_dir,
    utc,
    write_gzip,
    write_jsonl,
)

PANTHER = "cloudtrail/panther_cloudtrail_rule_tests.jsonl"


def role_event(
    when: str = "2026-11-01T10:00:00Z",
    *,
    role: str = "research-agent",
    session: str = "task-1",
    key: str = "ASIAEXAMPLE0000000001",
    source_identity: str | None = None,
    created: str = "2026-11-01T09:59:00Z",
    name: str = "GetObject",
    source: str = "s3.amazonaws.com",
    **extra: Any,
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "sessionIssuer": {
            "type": "Role",
            "arn": f"arn:aws:iam::123456789012:role/{role}",
            "userName": role,
        },
        "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
    }
    if source_identity:
        context["sourceIdentity"] = source_identity
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{session}",
            "arn": f"arn:aws:sts::123456789012:assumed-role/{role}/{session}",
            "accountId": "123456789012",
            "accessKeyId": key,
            "sessionContext": context,
        },
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "sourceIPAddress": "10.0.0.1",
        "userAgent": "Boto3/1.35",
        "requestID": "req-" + when,
        "eventID": "evt-" + when,
        **extra,
    }


def assume_role_event(when: str, issued_key: str, seconds: int = 43200) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::123456789012:user/ci",
            "accessKeyId": "AKIAEXAMPLE000000001",
            "userName": "ci",
        },
        "eventTime": when,
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRole",
        "requestParameters": {
            "roleArn": "arn:aws:iam::123456789012:role/deploy",
            "roleSessionName": "ci-1",
            "durationSeconds": seconds,
        },
        "responseElements": {"credentials": {"accessKeyId": issued_key}},
        "requestID": "req-assume",
    }


@pytest.mark.parametrize(
    ("expiration", "seconds"),
    [("epoch", 3600), ("infinity", 3600), ("0000-01-01T00:00:00Z", 3600), (None, -3600)],
)
def test_an_impossible_expiry_lends_no_lifetime(
    tmp_path: Path, expiration: str | None, seconds: int
) -> None:
    """From a trial: DuckDB's `strptime` reads `epoch` as 1970, and a negative duration
    made an expiry before the issue: every call of the session was a critical M2M405."""
    issued = assume_role_event("2026-11-01T09:59:00Z", "ASIAEXAMPLE0000000001", seconds)
    if expiration is not None:
        issued["responseElements"]["credentials"]["expiration"] = expiration
    path = write_jsonl(tmp_path / "a.jsonl", [issued, role_event("2026-11-01T10:00:00Z")])
    store, _ = load(path)
    expires = event_at(store, "a.jsonl", 2)["credential_expires_at"]  # the duration, else
    assert expires == utc("2026-11-01T10:59:00")  # AssumeRole's hour, not 1970
    result = run_scan(store, Config(), utc("2026-11-02T00:00:00"))
    assert [f for f in result.findings if f.rule_id == "M2M405"] == []


@pytest.fixture(scope="module")
def panther() -> Store:
    store, report = load(real_log(PANTHER))
    [file] = report.files
    # Seven role sessions without an ARN (lines 43, 425-430) were rejected before.
    assert (file.format, file.read, file.loaded, file.rejected) == ("cloudtrail", 450, 420, 30)
    return store


def test_panther_rule_tests_load_with_counted_rejects(panther: Store) -> None:
    reasons = rejects(panther)
    assert reasons[242] == "missing eventTime"
    assert reasons[51] == "missing userIdentity"
    assert 43 not in reasons  # a role session named by its account, the last fallback
    assert reasons[63] == 'unparseable eventTime: "redacted"'
    assert len(reasons) == 30


def test_panther_failed_role_call_is_mapped(panther: Store) -> None:
    event = event_at(panther, PANTHER, 1)
    assert event["principal"] == "arn:aws:iam::123456789012:role/tester"
    assert event["principal_type"] == "service"
    assert event["action"] == "s3:PutBucketAcl"
    assert event["scopes_used"] == ["s3:PutBucketAcl"]
    assert (event["outcome"], event["status"]) == ("failure", "AccessDenied")
    assert event["resource"] == "arn:aws:s3:::bucket"
    assert event["source_ip"] == "111.111.111.111"
    assert event["ts"] == utc("2019-01-01T00:00:00")


def test_panther_lower_cased_export_is_read(panther: Store) -> None:
    event = event_at(panther, PANTHER, 57)  # Athena-style lower-case keys
    assert event["principal"] == "arn:aws:test_arn"
    assert event["principal_type"] == "unknown"
    assert event["action"] == "dynamodb:GetRecords"
    assert event["ts"] == utc("2023-01-10T21:04:02")


def test_panther_sso_console_session_names_the_person(panther: Store) -> None:
    event = event_at(panther, PANTHER, 46)
    assert event["principal"].endswith("/AWSReservedSSO_DevAdmin_635426549a280cc6")
    assert event["principal_type"] == "human"
    assert event["on_behalf_of"] == "nicholas.hakmiller"
    assert event["credential_id"] == "ASIASXP6SDP2HUZY3TOB"
    assert event["credential_type"] == "aws_session"


def test_panther_console_call_of_an_iam_user_is_a_person(panther: Store) -> None:
    """`invokedBy: signin.amazonaws.com`: the console acted for the user signed in to it."""
    event = event_at(panther, PANTHER, 6)
    assert event["principal"] == "arn:aws:iam::123456789012:user/tester"
    assert event["principal_type"] == "human"
    assert event["act_chain"] == ["signin.amazonaws.com", "arn:aws:iam::123456789012:user/tester"]


def test_panther_invoked_by_a_service_is_a_delegation(panther: Store) -> None:
    event = event_at(panther, PANTHER, 62)
    assert event["principal"] == "arn:aws:iam::112233445566:role/ServiceRole"
    assert event["act_chain"] == [
        "cloudformation.amazonaws.com",
        "arn:aws:sts::112233445566:assumed-role/ServiceRole/AWSCloudFormation",
    ]
    assert event["session_id"] == "AWSCloudFormation"


def test_elastic_sso_assume_role_and_the_session_it_issued() -> None:
    path = real_log("cloudtrail/elastic_test-assume-role-email-session-json.log")
    store, report = load(path)
    assert [(f.format, f.loaded) for f in report.files] == [("cloudtrail", 1)]
    event = event_at(store, path.name, 1)
    assert event["principal"] == (
        "arn:aws:iam::111111111111:role/AWSReservedSSO_SecurityAudit_8df5ccd37b"
    )
    assert event["principal_type"] == "human"
    assert event["on_behalf_of"] == "firstname.lastname@example.com"
    assert (event["credential_id"], event["credential_type"]) == (
        "AKIAI44QH8DHBEXAMPLE",
        "aws_access_key",
    )
    assert event["action"] == "sts:AssumeRole"
    assert event["resource"] == "arn:aws:iam::111111111111:role/JohnRole2"
    assert event["trace_id"] is None  # requestID names one call, not a task
    assert event["credential_issued_at"] == utc("2019-10-02T21:50:54")
    issued = rows(store, "SELECT credential_id, issued_at, expires_at FROM issued_credentials")
    assert issued == [
        {
            "credential_id": "ASIAWHOJDLGPOEXAMPLE",
            "issued_at": utc("2019-10-02T22:12:29"),
            "expires_at": utc("2019-10-02T23:12:29"),
        }
    ]


def test_elastic_aws_service_call_has_no_credential() -> None:
    path = real_log("cloudtrail/elastic_test-assume-role-aws-service-json.log")
    store, _ = load(path)
    event = event_at(store, path.name, 1)
    assert (event["principal"], event["principal_type"]) == ("ec2.amazonaws.com", "service")
    assert event["credential_id"] is None
    assert event["act_chain"] is None
    [issued] = rows(store, "SELECT expires_at FROM issued_credentials")
    assert issued["expires_at"] == utc("2024-10-08T16:15:32")  # "Oct 8, 2024, 4:15:32 PM"


def test_ocsf_pretty_printed_single_event() -> None:
    path = real_log("cloudtrail/ocsf_examples_cloudtrail_generic_api_activity.raw.json")
    store, report = load(path)
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [("cloudtrail", 1, 0)]
    event = event_at(store, path.name, 1)
    assert event["principal"] == "arn:aws:iam::1111111111111:user/Level6"
    assert (event["credential_id"], event["credential_type"]) == (
        "AKIA3Z2XBVEXAMPLE",
        "aws_access_key",
    )
    assert event["principal_type"] == "service"
    assert event["action"] == "directconnect:DescribeDirectConnectGateways"


def test_gzip_records_file_keeps_each_event_position(tmp_path: Path) -> None:
    broken_time = role_event(session="b")
    broken_time["eventTime"] = "yesterday"
    no_identity = role_event(session="c")
    del no_identity["userIdentity"]
    text_identity = role_event(session="e")
    text_identity["userIdentity"] = "oops"
    records = [
        role_event(session="a"),
        broken_time,
        no_identity,
        role_event(session="d"),
        text_identity,
    ]
    path = write_gzip(tmp_path / "trail.json.gz", json.dumps({"Records": records}))
    store, report = load(path)
    [file] = report.files
    assert (file.format, file.loaded, file.rejected) == ("cloudtrail", 2, 3)
    assert rejects(store) == {
        2: 'unparseable eventTime: "yesterday"',
        3: "missing userIdentity",
        5: "userIdentity must be an object",
    }
    assert event_at(store, "trail.json.gz", 4)["session_id"] == "d"
    assert file.by_record  # positions, not lines: reports say `record 4`, SARIF no line


def test_records_files_of_a_batch_are_positioned_by_record_json_lines_by_line(
    tmp_path: Path,
) -> None:
    """Many small objects are staged together; each must still say its positions are
    records, and a JSON-lines file that its lines are lines."""
    objects = tmp_path / "objects"  # read in one batch
    objects.mkdir()
    for n in range(3):
        write_gzip(objects / f"o{n}.json.gz", json.dumps({"Records": [role_event(session=f"{n}")]}))
    _, batch = load(objects)
    assert [f.by_record for f in batch.files] == [True, True, True]
    lines = write_jsonl(tmp_path / "l.jsonl", [role_event(session="1"), role_event(session="2")])
    _, alone = load(lines)
    assert [f.by_record for f in alone.files] == [False]


def test_json_lines_mixing_events_and_records_batches(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    batch = {"Records": [role_event(session="b1"), role_event(session="b2"), "not an object"]}
    path.write_text(
        "\n".join([json.dumps(role_event(session="a")), json.dumps(batch), "{broken"]) + "\n"
    )
    store, report = load(path)
    [file] = report.files
    assert (file.loaded, file.rejected) == (3, 2)
    sessions = rows(store, "SELECT source_line, session_id FROM events ORDER BY session_id")
    assert sessions == [
        {"source_line": 1, "session_id": "a"},
        {"source_line": 2, "session_id": "b1"},
        {"source_line": 2, "session_id": "b2"},
    ]
    assert rejects(store) == {2: "not a JSON object", 3: "not valid JSON"}


def test_truncated_gzip_is_a_file_error_not_a_crash(tmp_path: Path) -> None:
    whole = write_gzip(tmp_path / "whole.json.gz", json.dumps({"Records": [role_event()] * 50}))
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(whole.read_bytes()[:200])
    store, report = load(cut)
    [file] = report.files
    assert file.error == "truncated or corrupt gzip data"
    assert file.loaded == 0
    assert rejects(store) == {0: "truncated or corrupt gzip data"}


def write_document(path: Path, text: str, compressed: bool) -> Path:
    """`path`, or `path.gz` gzipped."""
    if compressed:
        return write_gzip(path.with_name(path.name + ".gz"), text)
    path.write_text(text)
    return path


@pytest.mark.parametrize("compressed", [False, True])
def test_a_malformed_document_is_named_by_its_line_in_our_words(
    tmp_path: Path, compressed: bool
) -> None:
    """DuckDB says 'Malformed JSON in file ..., at byte N in record/value M'; a user gets the
    line that byte is on, gzipped or not."""
    text = json.dumps({"Records": [role_event(session=f"s{n}") for n in range(40)]}, indent=2)
    at = text.index('"eventTime"', len(text) // 2)
    broken = text[:at] + '"eventTime" "oops"' + text[at + len('"eventTime"') :]
    store, report = load(write_document(tmp_path / "broken.json", broken, compressed))
    [file] = report.files
    line = broken[:at].count("\n") + 1
    assert file.error == f"line {line}: not valid JSON (unexpected character)"
    assert file.loaded == 0 and "Malformed" not in file.error
    assert rejects(store) == {0: file.error}


@pytest.mark.parametrize("compressed", [False, True])
def test_a_records_file_over_eight_mib_is_read(
    tmp_path: Path, compressed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first record of a Records file is the whole file: past the 8 MiB the sniffer
    parses, the file is known by its head (and not parsed again in Python for an error)."""

    def no_reparse(file: object) -> None:
        raise AssertionError("a file that loads is not parsed again")

    monkeypatch.setattr("m2maudit.sources.discover.json_error_line", no_reparse)
    records = [role_event(session=f"s{n}") for n in range(12000)]
    text = json.dumps({"Records": records})
    assert len(text) > 8 * 1024 * 1024
    _store, report = load(write_document(tmp_path / "big.json", text, compressed))
    [file] = report.files
    assert (file.format, file.loaded, file.error) == ("cloudtrail", 12000, None)


def test_a_cut_off_document_names_the_line_where_it_breaks(tmp_path: Path) -> None:
    text = json.dumps({"Records": [role_event()]}, indent=2)
    cut = text[: len(text) // 2]
    path = tmp_path / "cut.json"
    path.write_text(cut)
    _store, report = load(path)
    [file] = report.files
    assert file.error is not None and file.error.startswith(f"line {cut.count(chr(10)) + 1}: ")
    assert "not valid JSON" in file.error


def test_source_identity_is_the_human_behind_an_agent_session(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "events.jsonl",
        [
            role_event(source_identity="alice@example.com", session="ticket-7"),
            role_event("2026-11-01T10:01:00Z", session="nightly"),
        ],
    )
    store, _ = load(path)
    with_human, without = event_at(store, "events.jsonl", 1), event_at(store, "events.jsonl", 2)
    assert with_human["principal"] == "arn:aws:iam::123456789012:role/research-agent"
    assert with_human["principal_type"] == "agent"
    assert with_human["on_behalf_of"] == "alice@example.com"
    assert with_human["act_chain"] == [
        "arn:aws:sts::123456789012:assumed-role/research-agent/ticket-7"
    ]
    assert with_human["session_id"] == "ticket-7"
    assert (without["on_behalf_of"], without["act_chain"]) == (None, None)


@pytest.mark.parametrize("issuing_first", [True, False])
def test_session_lifetime_comes_from_its_assume_role_in_any_file_order(
    tmp_path: Path, issuing_first: bool
) -> None:
    issuing = write_jsonl(
        tmp_path / "a.jsonl", [assume_role_event("2026-11-01T09:59:00Z", "ASIAISSUED0000000001")]
    )
    key = "ASIAISSUED0000000001"
    using = write_jsonl(
        tmp_path / "b.jsonl",
        [
            role_event("2026-11-01T13:00:00Z", role="deploy", key=key),
            role_event(
                "2026-11-01T01:00:00Z", role="deploy", key=key, created="2026-11-01T00:59:00Z"
            ),
        ],
    )
    store = Store.open()
    for path in [issuing, using] if issuing_first else [using, issuing]:
        ingest_paths(store, [str(path)])
    later = event_at(store, "b.jsonl", 1)
    assert later["credential_issued_at"] == utc("2026-11-01T09:59:00")  # creationDate
    assert later["credential_expires_at"] == utc("2026-11-01T21:59:00")  # +43200 s
    before_issue = event_at(store, "b.jsonl", 2)
    assert before_issue["credential_expires_at"] is None


def test_a_key_id_issued_again_later_is_not_given_the_old_lifetime(tmp_path: Path) -> None:
    """A session begun after an issuance expired is not that issuance's: no use after
    expiry is invented (a tool reusing one key id, or test data's placeholder ids)."""
    key = "ASIAISSUED0000000002"
    later = role_event(
        "2026-12-10T10:00:00Z", role="other", key=key, created="2026-12-10T09:59:00Z"
    )
    # Another session of the same id, begun while the first issuance was valid but not at it.
    other = role_event(
        "2026-11-02T00:30:00Z", role="other", key=key, created="2026-11-01T10:20:00Z"
    )
    during = role_event("2026-11-01T22:30:00Z", role="deploy", key=key)  # expired at 21:59
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [assume_role_event("2026-11-01T09:59:00Z", key), later, other, during],
    )
    store, _ = load(path)
    assert event_at(store, "a.jsonl", 2)["credential_expires_at"] is None
    assert event_at(store, "a.jsonl", 3)["credential_expires_at"] is None
    assert event_at(store, "a.jsonl", 4)["credential_expires_at"] == utc("2026-11-01T21:59:00")
    result = run_scan(store, Config(), utc("2026-12-11T00:00:00"))
    assert [f.count for f in result.findings if f.rule_id == "M2M405"] == [1]


@pytest.mark.parametrize(
    ("role", "kind"),
    [
        ("AmazonEKSPodIdentityAgentRole", "service"),  # AWS's documented role names
        ("AmazonEKSNodeRole", "service"),
        ("SplunkAgentRole", "service"),  # a vendor's integration
        ("AmazonEKSPodIdentityResearchAgentRole", "agent"),  # one's own, named after them
        ("AmazonEKS_SupportAgentRole", "agent"),
        ("research-agent", "agent"),
    ],
)
def test_managed_and_vendor_roles_are_services_but_agents_named_like_them_are_not(
    tmp_path: Path, role: str, kind: str
) -> None:
    store, _ = load(write_jsonl(tmp_path / "a.jsonl", [role_event(role=role)]))
    assert event_at(store, "a.jsonl", 1)["principal_type"] == kind


def test_a_console_login_is_a_person_even_without_its_event_type(tmp_path: Path) -> None:
    """A trimmed record (a SIEM's export, a rule's test data) may drop `eventType`; the
    sign-in itself still says a person is at the console."""
    login = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "userName": "some_user"},
        "eventTime": "2026-11-01T10:00:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "responseElements": {"ConsoleLogin": "Success"},
    }
    store, _ = load(write_jsonl(tmp_path / "a.jsonl", [login]))
    assert event_at(store, "a.jsonl", 1)["principal_type"] == "human"


def test_a_placeholder_key_id_gives_no_lifetime(tmp_path: Path) -> None:
    """Only what looks like an STS key id (ASIA...) is linked to later calls."""
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            assume_role_event("2026-11-01T02:00:00Z", "SAMPLE_ACCESS_KEY"),
            role_event("2026-11-01T15:00:00Z", key="SAMPLE_ACCESS_KEY"),
        ],
    )
    store, _ = load(path)
    assert store.scalar("SELECT count(*) FROM issued_credentials") == 0
    assert event_at(store, "a.jsonl", 2)["credential_expires_at"] is None


def test_a_root_or_user_key_of_no_known_shape_is_a_session_when_the_call_has_one(
    tmp_path: Path,
) -> None:
    """Test data writes key ids like "1"; only temporary credentials carry a session context,
    so such a call is a session's, not a long-lived key's (which M2M204 would report)."""

    def root_call(when: str, **identity: Any) -> dict[str, Any]:
        return {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "Root",
                "arn": "arn:aws:iam::123456789012:root",
                "accountId": "123456789012",
                "accessKeyId": "1",
                **identity,
            },
            "eventTime": when,
            "eventSource": "iam.amazonaws.com",
            "eventName": "ListAccessKeys",
        }

    session = {"attributes": {"creationDate": "2026-11-01T09:00:00Z"}}
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [
            root_call("2026-11-01T10:00:00Z"),
            root_call("2026-11-01T10:01:00Z", sessionContext=session),
            root_call("2026-11-01T10:02:00Z", invokedBy="signin.amazonaws.com"),
            # A session context without its creation date is still a session's.
            root_call(
                "2026-11-01T10:03:00Z",
                sessionContext={"attributes": {"mfaAuthenticated": "true"}},
            ),
        ],
    )
    store, _ = load(path)
    types = [event_at(store, "a.jsonl", line)["credential_type"] for line in (1, 2, 3, 4)]
    assert types == ["aws_access_key", "aws_session", "aws_session", "aws_session"]


def test_an_event_time_before_2000_is_rejected_not_read_as_1970(tmp_path: Path) -> None:
    records = [role_event(session=name) for name in "abcd"]
    records[1]["eventTime"] = 12345
    records[2]["eventTime"] = "12345"
    records[3]["eventTime"] = 1763629200  # epoch seconds, as a pipeline may rewrite it
    store, _ = load(write_jsonl(tmp_path / "trail.jsonl", records))
    assert rejects(store) == {
        2: "unparseable eventTime: 12345",
        3: 'unparseable eventTime: "12345"',
    }
    assert event_at(store, "trail.jsonl", 4)["ts"] == utc("2025-11-20T09:00:00")


def test_a_role_with_a_session_key_an_hour_is_one_finding_not_one_per_key(
    tmp_path: Path,
) -> None:
    """An agent role that runs all day is issued a new STS key every hour: what it does with
    them is one finding for the role, with every call counted."""
    path = write_jsonl(
        tmp_path / "day.jsonl",
        [
            role_event(
                f"2026-11-01T{hour:02d}:{minute:02d}:00Z",
                role="agent-gateway",
                session=f"run-{hour}",
                key=f"ASIAHOURLY{hour:011d}",
            )
            for hour in range(24)
            for minute in (10, 40)
        ],
    )
    store, _ = load(path)
    result = run_scan(store, Config(), utc("2026-11-02T00:00:00"))
    no_human = [f for f in result.findings if f.rule_id == "M2M101"]
    assert [(f.token_id, f.count) for f in no_human] == [
        ("aws_session:arn:aws:iam::123456789012:role/agent-gateway", 48)
    ]


def test_cloudwatch_and_eventbridge_envelopes(tmp_path: Path) -> None:
    inner = role_event(session="cw")
    cloudwatch = tmp_path / "cw.json"
    cloudwatch.write_text(
        json.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "logGroup": "aws-cloudtrail-logs",
                "logEvents": [{"id": "1", "timestamp": 1, "message": json.dumps(inner)}],
            }
        )
    )
    bridge = write_jsonl(
        tmp_path / "bridge.jsonl",
        [
            {
                "version": "0",
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.s3",
                "time": "2026-11-01T10:00:00Z",
                "detail": role_event(session="eb"),
            }
        ],
    )
    store, report = load(cloudwatch, bridge)
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [
        ("cloudtrail", 1, 0),
        ("cloudtrail", 1, 0),
    ]
    assert event_at(store, "cw.json", 1)["session_id"] == "cw"
    assert event_at(store, "bridge.jsonl", 1)["session_id"] == "eb"


def test_field_map_documents_canonical_columns() -> None:
    documented = [column for column, _ in CloudTrailAdapter.field_map]
    assert len(documented) == len(set(documented))
    assert set(documented) <= set(EVENT_COLUMNS)
    assert {"ts", "principal", "credential_id", "on_behalf_of", "act_chain", "trace_id"} <= set(
        documented
    )


def test_detection_reads_content_not_names() -> None:
    adapter, config = CloudTrailAdapter(), Config()
    event = role_event()
    assert adapter.detect(Sample(json.dumps(event), "jsonl", event), config)
    s3_notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-11-01T00:00:00Z",
            }
        ]
    }
    assert not adapter.detect(
        Sample(json.dumps(s3_notification), "json_object", s3_notification), config
    )
    generic = {"timestamp": "2026-11-01T00:00:00Z", "principal": "bot", "action": "read"}
    assert not adapter.detect(Sample(json.dumps(generic), "jsonl", generic), config)
    big_head = (
        '{"Records":[{"eventVersion":"1.09","userIdentity":{},"eventSource":"s3.amazonaws.com"'
    )
    assert adapter.detect(Sample(big_head, "json_object", None), config)
    big_s3 = '{"Records":[{"eventVersion":"2.1","userIdentity":{},"eventSource":"aws:s3"'
    assert not adapter.detect(Sample(big_s3, "json_object", None), config)


def test_sample_estate() -> None:
    store, report = load(SAMPLE_LOGS / "cloudtrail")
    assert [(f.format, f.loaded, f.rejected) for f in report.files] == [
        ("cloudtrail", 21, 0),
        ("cloudtrail", 22, 0),
    ]
    by_principal = {
        row["principal"].rsplit("/", 1)[-1]: row
        for row in rows(
            store,
            """
            SELECT principal, any_value(principal_type) AS kind,
                   count(*) FILTER (WHERE on_behalf_of IS NULL) AS no_human,
                   list_distinct(list(credential_type)) AS types,
                   max(credential_expires_at - credential_issued_at) AS lifetime
            FROM events GROUP BY principal""",
        )
    }
    assert by_principal["research-agent"]["kind"] == "agent"
    assert by_principal["research-agent"]["no_human"] == 16
    assert by_principal["support-agent"]["no_human"] == 0
    assert by_principal["ci-deployer"]["types"] == ["aws_access_key"]
    assert str(by_principal["deploy-role"]["lifetime"]) == "12:00:00"
    assert by_principal["AWSReservedSSO_AdministratorAccess_5f1c2a9e"]["kind"] == "human"


def test_scan_of_all_real_logs_runs_to_completion(tmp_path: Path) -> None:
    real_logs = shared_dir() / "real-logs"
    db = tmp_path / "scan.duckdb"
    result = CliRunner().invoke(
        app, ["scan", str(real_logs), "--quiet", "--db", str(db), "--fail-on", "never"]
    )
    assert result.exit_code == 0, result.output
    store = Store.open(db)
    formats = {
        Path(row["source_file"]).name: row["source_format"]
        for row in rows(store, "SELECT source_file, source_format FROM ingested_files")
    }
    assert formats["panther_scenario_compromised_root_creds__attacker_cloudtrail.jsonl"] == (
        "cloudtrail"
    )
    assert formats["panther_eks_audit_rule_tests.jsonl"] == "k8s-audit"
    assert formats["panther_gcp_auditlog_rule_tests.jsonl"] == "gcp-audit"
    long_term = rows(
        store,
        "SELECT count(*) AS n FROM events WHERE credential_type = "
        "'aws_access_key' AND starts_with(credential_id, 'AKIA')",
    )
    assert long_term[0]["n"] > 0
    no_source_identity = rows(
        store,
        """
        SELECT count(*) AS n FROM events WHERE source_format = 'cloudtrail'
        AND credential_type = 'aws_session' AND principal_type <> 'human'
        AND on_behalf_of IS NULL""",
    )
    assert no_source_identity[0]["n"] > 0


def test_cloudtrails_own_redaction_marker_is_no_secret(tmp_path: Path) -> None:
    """CloudTrail writes `HIDDEN_DUE_TO_SECURITY_REASONS` for the secrets of every SSO
    `CreateToken` and `GetRoleCredentials`: under names like `clientSecret` it looked like a
    password, a critical finding on every estate that signs in through SSO. The real event
    from the shared samples, and a `GetRoleCredentials` with a real secret beside it."""
    real = real_log(PANTHER)
    create_token = next(
        line
        for line in real.read_text(encoding="utf-8").splitlines()
        if '"CreateToken"' in line and "HIDDEN_DUE_TO_SECURITY_REASONS" in line
    )
    role_credentials = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "sso.amazonaws.com",
        "eventName": "GetRoleCredentials",
        "awsRegion": "us-east-1",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "principalId": "AIDA1"},
        "responseElements": {
            "roleCredentials": {
                "accessKeyId": "ASIAEXAMPLE000000001",
                "secretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS",
                "sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS",
            }
        },
        "eventID": "e2",
    }
    leaking = copy.deepcopy(role_credentials)
    leaking["eventID"] = "e3"
    leaking["requestParameters"] = {"note": "password=Tr0ub4dor-3-staging"}
    log = tmp_path / "trail.jsonl"
    lines = [json.loads(create_token), role_credentials, leaking]
    log.write_text("\n".join(json.dumps(event) for event in lines) + "\n")
    store, report = load(log)
    # The sample event has no time (rejected, but read for secrets all the same).
    assert (report.files[0].loaded, report.files[0].rejected) == (2, 1)
    found = rows(
        store,
        "SELECT source_line, leaked_secrets FROM events UNION ALL "
        "SELECT source_line, leaked_secrets FROM ingest_errors ORDER BY source_line",
    )
    assert [row["leaked_secrets"] for row in found[:2]] == [None, None]
    assert found[2]["leaked_secrets"] and found[2]["leaked_secrets"][0].startswith(
        "password_or_key:"
    )


def test_an_iam_user_renamed_between_calls_is_one_principal(tmp_path: Path) -> None:
    """IAM users can be renamed (`UpdateUser`); their `principalId` stays. A role session is
    named by its role, and the role's part of `principalId` is its id."""

    def user_call(when: str, name: str) -> dict[str, Any]:
        return {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEUSER00001",
                "arn": f"arn:aws:iam::123456789012:user/{name}",
                "accountId": "123456789012",
                "accessKeyId": "AKIAEXAMPLE000000001",
                "userName": name,
            },
            "eventTime": when,
            "eventSource": "s3.amazonaws.com",
            "eventName": "ListBuckets",
            "requestID": "req-" + when,
        }

    path = write_jsonl(
        tmp_path / "events.jsonl",
        [
            user_call("2026-11-01T10:00:00Z", "batch-old"),
            user_call("2026-11-02T10:00:00Z", "batch"),
            role_event("2026-11-03T10:00:00Z"),
        ],
    )
    store, _ = load(path)
    ids = [event_at(store, "events.jsonl", line)["principal_id"] for line in (1, 2, 3)]
    assert ids == ["AIDAEXAMPLEUSER00001", "AIDAEXAMPLEUSER00001", "AROAEXAMPLE"]
    findings = run_scan(store, Config(), utc("2026-11-28T00:00:00"))
    shared = [f for f in findings.findings if f.rule_id == "M2M504"]
    assert shared == []  # one key, one user under two names
    actors = store.con.execute(
        "SELECT DISTINCT actor FROM ev WHERE credential_id = 'AKIAEXAMPLE000000001'"
    ).fetchall()
    assert actors == [("arn:aws:iam::123456789012:user/batch",)]  # the latest name


def test_a_request_id_is_no_trace_of_an_agents_task(tmp_path: Path) -> None:
    """From a rules review: requestID was taken as the trace id, so M2M501 could never fire
    on CloudTrail and M2M505 said "trace 100%" for an agent's static key: a request id names
    one call, not the calls of a task. A role session's name still ties its calls."""
    static_key_call = {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEAGENT01",
            "arn": "arn:aws:iam::111122223333:user/research-agent",
            "accountId": "111122223333",
            "accessKeyId": "AKIAIOSFODNN7AGENT01",
            "userName": "research-agent",
        },
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.10",
        "requestID": "req-1",
        "eventID": "evt-1",
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333",
    }
    path = tmp_path / "trail.json"
    path.write_text(json.dumps({"Records": [static_key_call]}))
    store = Store.open()
    assert not ingest_paths(store, [str(path)]).failed_files
    assert rows(store, "SELECT trace_id, session_id FROM events") == [
        {"trace_id": None, "session_id": None}
    ]
    findings = run_scan(store, Config(), utc("2026-11-28T00:00:00Z")).findings
    assert [f.token_id for f in findings if f.rule_id == "M2M501"] == ["AKIAIOSFODNN7AGENT01"]


def test_an_identity_center_user_is_named_by_user_name(tmp_path: Path) -> None:
    """CloudTrail writes an IAM Identity Center user as type `Unknown`, with no ARN: its
    principalId is an opaque id (or, in AWS's own example, the account id, which every such
    user shares), its userName the person. Two people must not become one principal."""

    def person(name: str, principal_id: str) -> dict[str, Any]:
        return {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "Unknown",
                "principalId": principal_id,
                "accountId": "123456789012",
                "userName": name,
            },
            "eventTime": "2026-11-01T10:00:00Z",
            "eventSource": "sso.amazonaws.com",
            "eventName": "ListApplications",
        }

    path = write_jsonl(
        tmp_path / "sso.jsonl",
        [
            person("ana@corp.example", "123456789012"),
            person("bo@corp.example", "123456789012"),
            person("cy@corp.example", "9067d0bbc4-2f1a"),
        ],
    )
    store, _ = load(path)
    seen = [event_at(store, "sso.jsonl", line) for line in (1, 2, 3)]
    assert [(e["principal"], e["principal_id"]) for e in seen] == [
        ("ana@corp.example", None),
        ("bo@corp.example", None),
        ("cy@corp.example", "9067d0bbc4-2f1a"),
    ]


def test_a_role_session_without_an_arn_is_its_role_not_lost_or_split(tmp_path: Path) -> None:
    """Cross-account calls and trimmed records give a role session no ARN: `userName` alone
    was 'names no principal' (the record lost), and each session of `principalId`
    `AROA...:session` was a principal of its own."""

    def session(when: str, identity: dict[str, Any]) -> dict[str, Any]:
        return {
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", **identity},
            "eventTime": when,
            "eventSource": "s3.amazonaws.com",
            "eventName": "GetObject",
        }

    path = write_jsonl(
        tmp_path / "sessions.jsonl",
        [
            session("2026-11-01T10:00:00Z", {"principalId": "AROAEXAMPLE0000001:task-1"}),
            session("2026-11-01T11:00:00Z", {"principalId": "AROAEXAMPLE0000001:task-2"}),
            session("2026-11-01T12:00:00Z", {"userName": "TestRole"}),
        ],
    )
    store, report = load(path)
    assert report.rejected == 0
    seen = [event_at(store, "sessions.jsonl", line) for line in (1, 2, 3)]
    assert [(e["principal"], e["principal_id"], e["session_id"]) for e in seen] == [
        ("AROAEXAMPLE0000001", "AROAEXAMPLE0000001", "task-1"),
        ("AROAEXAMPLE0000001", "AROAEXAMPLE0000001", "task-2"),
        ("TestRole", None, None),
    ]
