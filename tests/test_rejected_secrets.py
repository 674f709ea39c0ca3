"""A record ingest rejects (a time that is no time, a line cut in half) cannot be audited, but
a secret written in it is in the log all the same: `ingest_errors` keeps its kind and
fingerprint, and M2M601 reports it at the record's line, through every read path."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.secrets import all_secrets
from m2maudit.store import Store
from tests.conftest import RunCli, query
from tests.test_ingest_batch import five_minute_objects
from tests.test_source_k8s import audit_event

TS = "2026-11-20T10:00:00Z"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
STRIPE_KEY = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"

GOOD = json.dumps({"timestamp": TS, "principal": "agent-a", "action": "GET /x"})
# Rejected by the mapping: valid JSON, a time that is no time.
BAD_TIME = json.dumps(
    {"timestamp": "yesterday", "principal": "agent-b", "resource": f"/r?token={GITHUB_TOKEN}"}
)
# Rejected before any field is read: the line is cut in half.
CUT = '{"timestamp": "' + TS + '", "principal": "agent-c", "note": "key ' + STRIPE_KEY
CLEAN_REJECT = json.dumps({"timestamp": "yesterday", "principal": "agent-d"})
# Not a record at all: a line of plain text in the log (the careful read rejects it before
# mapping, the fast read after).
PLAIN = f"ERROR db login failed, retrying with token {GITHUB_TOKEN}"
# A call's own token is its credential, fingerprinted, not a leak: in a line cut in half too.
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC1lIn0.c2lnbmF0dXJlLXZhbHVl"
CUT_WITH_TOKEN = json.dumps(
    {"timestamp": TS, "principal": "agent-e", "authorization": f"Bearer {JWT}"}
)[:-1]
LINES = [GOOD, BAD_TIME, CUT, CLEAN_REJECT, PLAIN, CUT_WITH_TOKEN]


def write_log(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def rejected_secrets(store: Store) -> dict[int, list[str] | None]:
    rows = store.con.execute(
        "SELECT source_line, leaked_secrets FROM ingest_errors WHERE source_line > 0"
    ).fetchall()
    return {int(line): secrets for line, secrets in rows}


def rejected_principals(store: Store) -> dict[int, str | None]:
    rows = store.con.execute(
        "SELECT source_line, principal FROM ingest_errors WHERE source_line > 0"
    ).fetchall()
    return {int(line): principal for line, principal in rows}


def expected_secrets() -> dict[int, list[str] | None]:
    return {
        2: all_secrets(GITHUB_TOKEN),
        3: all_secrets(CUT),
        4: None,
        5: all_secrets(PLAIN),
        6: None,
    }


@pytest.mark.parametrize("name", ["log.jsonl", "log.jsonl.gz"])
@pytest.mark.parametrize("careful", [False, True], ids=["fast-read", "careful-read"])
def test_the_secrets_of_rejected_lines_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, careful: bool
) -> None:
    if careful:
        monkeypatch.setattr("m2maudit.sources.generic_log.can_read_fast", lambda ctx: False)
    log = write_log(tmp_path / name, LINES)
    store = Store.open()
    report = ingest_paths(store, [str(log)], [], Config())
    assert report.files[0].loaded == 1 and report.files[0].rejected == 5
    found = rejected_secrets(store)
    assert found == expected_secrets()
    assert found[2] and found[2][0].startswith("github_token:")
    assert found[3] and found[3][0].startswith("stripe_key:")
    # Who logged it: a record that was mapped names its principal; a broken line no one.
    assert rejected_principals(store) == {2: "agent-b", 3: None, 4: "agent-d", 5: None, 6: None}


def test_a_scan_reports_a_secret_only_a_rejected_record_holds(
    tmp_path: Path, run_cli: RunCli
) -> None:
    log = write_log(tmp_path / "app.jsonl", [GOOD, BAD_TIME, CUT, CLEAN_REJECT])
    db = tmp_path / "store.duckdb"
    result = run_cli("scan", log, "-f", "json", "--db", db)
    report = json.loads(result.stdout)
    leaks = {f["token_id"]: f for f in report["findings"] if f["rule_id"] == "M2M601"}
    github_fp = (all_secrets(GITHUB_TOKEN) or [""])[0].split(":")[1]
    assert set(leaks) == {github_fp, (all_secrets(CUT) or [""])[0].split(":")[1]}
    finding = leaks[github_fp]
    assert finding["locations"] == [{"file": str(log), "line": 2}]
    assert finding["evidence"]["rejected_records"] == 1
    assert finding["principal"] == "agent-b"
    assert "logged by agent-b (1 of them rejected by ingest)" in finding["message"]
    assert result.code == 1  # a critical finding fails the run
    for secret in (GITHUB_TOKEN, STRIPE_KEY):
        assert secret not in result.stdout + result.stderr
        assert secret.encode() not in db.read_bytes()
    assert query(db, "SELECT count(*) FROM ingest_errors WHERE leaked_secrets IS NOT NULL") == [
        (2,)
    ]


def cloudtrail_object(directory: Path, index: int, records: list[dict[str, Any]]) -> Path:
    path = directory / f"111122223333_CloudTrail_us-east-1_20261118T{index:04d}Z_x{index}.json"
    path.write_text(json.dumps({"Records": records}))
    return path


def test_a_vendor_record_rejected_keeps_its_secret(tmp_path: Path) -> None:
    """A CloudTrail record without a usable time, one file alone and in a batch of small
    files (one statement reads them all)."""
    objects = five_minute_objects(tmp_path / "trail", 3)
    first = sorted(objects.iterdir())[0]
    document = json.loads(gzip.decompress(first.read_bytes()))
    broken = copy.deepcopy(document["Records"][0])
    broken["eventTime"] = "redacted"
    broken["requestParameters"] = {"note": f"token {GITHUB_TOKEN}"}
    document["Records"].append(broken)
    first.write_bytes(gzip.compress(json.dumps(document).encode()))
    rejected_line = len(document["Records"])
    for paths in ([first], [objects]):
        store = Store.open()
        ingest_paths(store, [str(p) for p in paths], [], Config())
        rows = store.con.execute(
            "SELECT source_line, reason, leaked_secrets, principal FROM ingest_errors "
            "WHERE source_line > 0"
        ).fetchall()
        assert rows == [
            (
                rejected_line,
                'unparseable eventTime: "redacted"',
                [(all_secrets(GITHUB_TOKEN) or [""])[0]],
                broken["userIdentity"]["arn"],
            )
        ]


def test_a_vendor_line_cut_in_half_keeps_its_secret(tmp_path: Path) -> None:
    """Adapters that check each line's JSON while staging (Kubernetes, Vault) reject a cut
    line before mapping it: its text is read for secrets there."""
    event = audit_event(verb="get", resource="pods")
    event["requestObject"] = {"note": f"key {STRIPE_KEY}"}
    cut = json.dumps(event)[:-3]  # the closing quote and braces
    path = tmp_path / "audit.jsonl"
    path.write_text(json.dumps(audit_event()) + "\n" + cut + "\n")
    store = Store.open()
    ingest_paths(store, [str(path)], [], Config())
    assert rejected_secrets(store) == {2: all_secrets(STRIPE_KEY)}
