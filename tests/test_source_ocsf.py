"""The OCSF adapter (API Activity 6003, Authentication 3002) on hand-made schema-true events.

The shared real-log samples hold no OCSF-mapped events (their `ocsf_examples_*` files are the
vendor-native inputs of OCSF mappings), so the events here are written from the OCSF schema;
the vendor-native files must NOT be taken for OCSF.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.source_support import DATA, Loaded, load, real_logs_dir, write_jsonl

OCSF = DATA / "ocsf"


@pytest.fixture(scope="module")
def mixed() -> Loaded:
    return load(OCSF / "api_and_auth.jsonl")


def test_loads_api_activity_and_authentication(mixed: Loaded) -> None:
    assert mixed.file.format == "ocsf"
    assert (mixed.file.loaded, mixed.file.rejected) == (5, 3)


def test_api_activity_with_a_long_term_key(mixed: Loaded) -> None:
    event = mixed.event(1)
    assert (event["principal"], event["principal_type"]) == ("ci-deployer", "unknown")
    assert event["credential_id"] == "AKIAEXAMPLE000000001"
    assert event["credential_type"] == "aws_access_key"
    assert (event["action"], event["resource"]) == ("ListBuckets", "s3.amazonaws.com")
    assert (event["outcome"], event["status"]) == ("success", "Success")
    assert (event["source_ip"], event["user_agent"]) == ("198.51.100.7", "aws-cli/2.15.0")
    assert event["trace_id"] is None  # api.request.uid names one call
    assert event["ts"] == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)


def test_session_credential_gives_issue_and_expiry(mixed: Loaded) -> None:
    event = mixed.event(2)
    assert event["credential_id"] == "ASIAEXAMPLE000000002"
    assert event["credential_type"] == "aws_session"
    assert event["credential_issued_at"] == datetime(2024, 6, 10, 3, 26, 40, tzinfo=UTC)
    assert event["credential_expires_at"] == datetime(2024, 6, 10, 15, 26, 40, tzinfo=UTC)  # 12 h
    assert (event["session_id"], event["trace_id"]) == ("sess-9", "corr-42")
    assert event["resource"] == "arn:aws:s3:::artifacts/build.zip"
    assert event["outcome"] == "failure"


def test_app_actor_and_authentication_subjects(mixed: Loaded) -> None:
    app = mixed.event(3)
    assert (app["principal"], app["principal_type"], app["client_id"]) == (
        "billing-sync",
        "service",
        "app-77",
    )
    assert (app["outcome"], app["ts"]) == ("success", datetime(2024, 6, 10, 6, 15, tzinfo=UTC))
    machine = mixed.event(4)
    assert (machine["principal"], machine["principal_type"]) == ("svc-reporting", "service")
    assert (machine["action"], machine["resource"]) == ("Logon", "Okta Admin API")
    assert (machine["outcome"], machine["session_id"]) == ("failure", "sess-auth-1")
    person = mixed.event(5)
    assert (person["principal"], person["principal_type"]) == ("alice@example.com", "human")
    assert person["ts"] == datetime(2024, 6, 10, 4, 20, tzinfo=UTC)


def test_other_classes_and_broken_events_are_rejected(mixed: Loaded) -> None:
    rejects = mixed.rejects()
    assert rejects[6] == "OCSF class 4001 is neither API Activity (6003) nor Authentication (3002)"
    assert rejects[7] == "missing time"
    assert rejects[8].startswith("no identity")


@pytest.mark.parametrize("name", ["single_event.json", "events_array.json"])
def test_pretty_json_and_arrays(name: str) -> None:
    loaded = load(OCSF / name)
    assert loaded.file.format == "ocsf"
    assert loaded.event(1)["credential_id"] == "AKIAEXAMPLE000000001"


def test_vendor_native_files_are_not_taken_for_ocsf() -> None:
    samples = sorted(real_logs_dir().rglob("ocsf_examples_*"))
    assert samples
    loaded = load(*samples)
    assert "ocsf" not in {f.format for f in loaded.report.files}


def test_class_uid_without_ocsf_metadata_is_not_ocsf(tmp_path: Path) -> None:
    lookalike = {
        "class_uid": 6003,
        "timestamp": "2024-06-10T06:00:00Z",
        "principal": "x",
        "metadata": "not an object",
    }
    loaded = load(write_jsonl(tmp_path / "x.jsonl", [lookalike]))
    assert loaded.file.format == "generic-log"


def test_time_as_text_epoch_and_wrong_types(tmp_path: Path) -> None:
    base = json.loads((OCSF / "single_event.json").read_text())
    records = [
        {**base, "time": "1718000000000"},
        {**base, "time": None, "time_dt": "2024-06-10T06:13:20.5Z"},
        {**base, "time": {"ms": 1}},
        {**base, "class_uid": "6003"},
    ]
    loaded = load(write_jsonl(tmp_path / "ocsf.jsonl", records))
    assert loaded.lines() == [1, 2, 4]
    assert loaded.event(1)["ts"] == datetime(2024, 6, 10, 6, 13, 20, tzinfo=UTC)
    assert loaded.event(2)["ts"] == datetime(2024, 6, 10, 6, 13, 20, 500000, tzinfo=UTC)
    assert loaded.rejects()[3].startswith("unparseable time")
