"""Small files of one format are ingested in one pass, with the outcome of one at a time.

The sample CloudTrail object is copied into many five-minute objects, each with its own
event ids and times; a batch must store exactly what ingesting them one by one stores.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from m2maudit import ingest as ingest_module
from m2maudit.config import Config, parse_config
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.sources import envelopes, staging
from m2maudit.sources.base import InputFile, LoadContext, Sample
from m2maudit.sources.cloudtrail import CloudTrailAdapter
from m2maudit.sources.generic_log import GenericLogAdapter
from m2maudit.store import Store

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = next((ROOT / "sample_logs" / "cloudtrail").glob("*20261118T0000Z*.json.gz"))


def five_minute_objects(directory: Path, count: int, repeat_records_of: int | None = None) -> Path:
    """`count` CloudTrail objects; with `repeat_records_of`, the last one repeats that one's."""
    source = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        same_as = repeat_records_of if repeat_records_of is not None and i == count - 1 else i
        document = copy.deepcopy(source)
        for j, record in enumerate(document["Records"]):
            record["eventID"] = f"{same_as}-{j}"
            record["eventTime"] = f"2026-11-18T{same_as // 12:02d}:{same_as % 12 * 5:02d}:00Z"
        name = f"111122223333_CloudTrail_us-east-1_20261118T{i:04d}Z_{i:05d}.json.gz"
        # A different extra key per file: the same records, never the same bytes.
        document["m2maudit_test_file"] = i
        (directory / name).write_bytes(gzip.compress(json.dumps(document).encode()))
    return directory


def ingest(store: Store, *paths: Path) -> IngestReport:
    return ingest_paths(store, [str(p) for p in paths], [], Config())


def everything(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "events": "SELECT * FROM events ORDER BY source_file, source_line, record_key",
        "errors": "SELECT * FROM ingest_errors ORDER BY ALL",
        "files": "SELECT * EXCLUDE (ingested_at) FROM ingested_files ORDER BY source_file",
        "issued": "SELECT * FROM issued_credentials ORDER BY ALL",
        "tokens": "SELECT * FROM tokens ORDER BY token_fp",
    }
    return {name: store.con.execute(sql).fetchall() for name, sql in queries.items()}


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches ingest loads together."""
    seen: list[int] = []
    real = ingest_module._ingest_batch

    def spy(store: Store, files: list[Any], config: Config, on_staged: Any = None) -> Any:
        seen.append(len(files))
        return real(store, files, config, on_staged)

    monkeypatch.setattr(ingest_module, "_ingest_batch", spy)
    return seen


def one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest_module, "SMALL_FILE_BYTES", -1)


def test_a_batch_stores_what_one_file_at_a_time_stores(
    tmp_path: Path, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = five_minute_objects(tmp_path / "logs", 30, repeat_records_of=3)
    together = Store.open()
    report = ingest(together, logs)
    assert batches == [30]
    one_at_a_time(monkeypatch)
    alone = Store.open()
    assert [f.__dict__ for f in ingest(alone, logs).files] == [f.__dict__ for f in report.files]
    assert batches == [30]  # no second batch
    assert everything(together) == everything(alone)
    last = report.files[-1]
    assert last.loaded == 0 and last.duplicates == last.read > 0  # records of file 3 again


def test_ingesting_a_batch_again_finds_every_file_ingested_before(
    tmp_path: Path, batches: list[int]
) -> None:
    logs = five_minute_objects(tmp_path / "logs", 12)
    store = Store.open()
    first = ingest(store, logs)
    again = ingest(store, logs)
    assert all(f.loaded > 0 for f in first.files)
    assert all(f.already_ingested and f.loaded == 0 for f in again.files)
    assert store.scalar("SELECT count(*) FROM ingested_files") == 12


def test_each_file_of_a_batch_is_reported_as_it_is_read(tmp_path: Path, batches: list[int]) -> None:
    """The progress bar's only sign of a batch moving before it is committed."""
    logs = five_minute_objects(tmp_path / "logs", 5)
    staged: list[str] = []
    committed: list[str] = []
    report = ingest_paths(
        Store.open(),
        [str(logs)],
        on_staged=lambda file: staged.append(file.display),
        on_file=lambda file, _report: committed.append(file.display),
    )
    assert batches == [5]
    assert staged == committed == [f.source for f in report.files]


def test_an_unreadable_file_is_left_out_of_the_batch(tmp_path: Path, batches: list[int]) -> None:
    logs = five_minute_objects(tmp_path / "logs", 6)
    broken = sorted(logs.iterdir())[2]
    broken.write_bytes(broken.read_bytes()[:200])  # truncated gzip
    store = Store.open()
    report = ingest(store, logs)
    assert batches == [2, 3]
    errors = {f.source: f.error for f in report.files}
    assert errors.pop(str(broken)) == "truncated or corrupt gzip data"
    assert not any(errors.values())
    assert store.scalar("SELECT count(DISTINCT source_file) FROM events") == 5


def _failing_for(bad: Path, monkeypatch: pytest.MonkeyPatch, stage: bool) -> list[int]:
    """Make staging (`stage`) or mapping fail with a SQL error whenever `bad` is among the
    files; returns the sizes of the one-read stagings tried."""
    real, real_together = CloudTrailAdapter.stage_file, CloudTrailAdapter.stage_files
    real_map = CloudTrailAdapter.map_staged
    reads: list[int] = []

    def fail() -> None:
        raise duckdb.CatalogException("Table with name no_such_table does not exist")

    def stage_file(self: CloudTrailAdapter, ctx: LoadContext) -> None:
        real(self, ctx)
        if stage and ctx.file.path == bad:
            fail()

    def stage_files(
        self: CloudTrailAdapter, ctx: LoadContext, members: list[tuple[InputFile, Sample]]
    ) -> bool:
        reads.append(len(members))
        staged = real_together(self, ctx, members)
        if stage and any(file.path == bad for file, _ in members):
            fail()
        return staged

    def map_staged(self: CloudTrailAdapter, ctx: LoadContext) -> None:
        real_map(self, ctx)
        if not stage and (ctx.file.path == bad or str(bad) in ctx.batch_files):
            fail()

    monkeypatch.setattr(CloudTrailAdapter, "stage_file", stage_file)
    monkeypatch.setattr(CloudTrailAdapter, "stage_files", stage_files)
    monkeypatch.setattr(CloudTrailAdapter, "map_staged", map_staged)
    return reads


def test_a_file_that_cannot_be_staged_leaves_the_batch_and_loads_alone(
    tmp_path: Path, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = five_minute_objects(tmp_path / "logs", 6)
    bad = sorted(logs.iterdir())[4]
    reads = _failing_for(bad, monkeypatch, stage=True)
    store = Store.open()
    report = ingest(store, logs)
    # The read of all six fails; halves 0-2 and 3-5; 3 and 4-5; 4 and 5 alone.
    assert batches == [6] and reads == [6, 3, 3, 2]
    errors = {f.source: f.error for f in report.files}
    assert "no_such_table" in str(errors.pop(str(bad)))
    assert not any(errors.values())
    assert [f.source for f in report.files] == sorted(str(p) for p in logs.iterdir())
    assert store.scalar("SELECT count(DISTINCT source_file) FROM events") == 5
    assert store.scalar("SELECT count(*) FROM ingested_files") == 5


def test_a_batch_that_fails_is_rolled_back_and_loaded_again_in_halves(
    tmp_path: Path, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = five_minute_objects(tmp_path / "logs", 6)
    bad = sorted(logs.iterdir())[4]
    _failing_for(bad, monkeypatch, stage=False)  # the mapping fails: the transaction aborts
    store = Store.open()
    report = ingest(store, logs)
    # 6 fail; files 0-2 load; 3-5 fail; 3 alone loads; 4-5 fail; 4 and 5 alone.
    assert batches == [6, 3, 3, 2]
    errors = {f.source: f.error for f in report.files}
    assert "no_such_table" in str(errors.pop(str(bad)))
    assert not any(errors.values())
    assert store.scalar("SELECT count(DISTINCT source_file) FROM events") == 5
    assert store.scalar("SELECT count(*) FROM ingested_files") == 5


def test_the_same_content_twice_in_a_batch_is_ingested_once(
    tmp_path: Path, batches: list[int]
) -> None:
    logs = five_minute_objects(tmp_path / "logs", 4)
    first = sorted(logs.iterdir())[0]
    (logs / ("zz_copy_" + first.name)).write_bytes(first.read_bytes())
    store = Store.open()
    report = ingest(store, logs)
    assert [f.already_ingested for f in report.files] == [False] * 4 + [True]
    assert store.scalar("SELECT count(*) FROM ingested_files") == 4


def test_big_files_and_other_formats_are_not_batched(tmp_path: Path, batches: list[int]) -> None:
    logs = five_minute_objects(tmp_path / "logs", 3)
    (logs / "m.jsonl").write_text(
        json.dumps({"timestamp": "2026-11-18T00:00:00Z", "principal": "agent-a"}) + "\n"
    )
    store = Store.open()
    report = ingest(store, logs)
    assert batches == [3]
    assert len(report.files) == 4 and not any(f.error for f in report.files)


# --- many small files staged with one read ------------------------------------------------


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many files each one-read staging took."""
    seen: list[int] = []
    real = staging.stage_json_documents

    def spy(ctx: LoadContext, files: Any, unwrap: Any = None) -> None:
        seen.append(len(files))
        real(ctx, files, unwrap)

    monkeypatch.setattr(staging, "stage_json_documents", spy)
    return seen


def _odd_cloudtrail_objects(directory: Path) -> Path:
    """Objects that number their records in different ways: two pretty-printed documents in
    one file, a pretty-printed one with an element of `Records` that is not an object."""
    five_minute_objects(directory, 4)
    source = json.loads(gzip.decompress(SAMPLE.read_bytes()))
    records = source["Records"]
    two = json.dumps({"Records": records[:2]}, indent=2) + json.dumps(
        {"Records": records[2:4]}, indent=2
    )
    (directory / "x1_two_documents.json.gz").write_bytes(gzip.compress(two.encode()))
    pretty = json.dumps({"Records": [records[4], 7, records[5]]}, indent=2)
    (directory / "x2_pretty_with_a_number.json.gz").write_bytes(gzip.compress(pretty.encode()))
    return directory


def test_one_read_stores_what_staging_file_by_file_stores(
    tmp_path: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = _odd_cloudtrail_objects(tmp_path / "logs")
    together = Store.open()
    report = ingest(together, logs)
    assert reads == [6] and [f.loaded for f in report.files][-2:] == [4, 2]
    monkeypatch.setattr(CloudTrailAdapter, "stage_files", lambda self, ctx, members: False)
    by_file = Store.open()
    assert [f.__dict__ for f in ingest(by_file, logs).files] == [f.__dict__ for f in report.files]
    assert reads == [6]  # staged file by file this time
    assert everything(together) == everything(by_file)
    lines = together.con.execute(
        "SELECT source_line FROM events WHERE source_file LIKE '%x1_two%' ORDER BY 1"
    ).fetchall()
    assert lines == [(1,), (2,), (3,), (4,)]  # record numbers run on across documents
    assert together.con.execute("SELECT source_line, reason FROM ingest_errors").fetchall() == [
        (2, "not a JSON object")
    ]


def test_json_lines_of_batches_lose_only_a_broken_line(tmp_path: Path) -> None:
    """From a trial: a Firehose delivery (a `{"Records": [...]}` a line) was read as one
    document, so one broken line (a delivery cut short) lost every event of the file,
    reported as "line 2". Each line is now a line: the broken one rejected, by its number."""
    records = json.loads(gzip.decompress(SAMPLE.read_bytes()))["Records"]
    lines = [json.dumps({"Records": records[n : n + 2]}) for n in (0, 2, 4)]
    lines.insert(2, '{"Records": [{"eventVersion":')
    path = tmp_path / "firehose.jsonl"
    path.write_text("\n".join(lines) + "\n")
    store = Store.open()
    report = ingest(store, path)
    assert (report.files[0].loaded, report.files[0].rejected) == (6, 1)
    assert store.con.execute("SELECT source_line, reason FROM ingest_errors").fetchall() == [
        (3, "not valid JSON")
    ]
    lines_loaded = "SELECT DISTINCT source_line FROM events ORDER BY 1"
    assert store.con.execute(lines_loaded).fetchall() == [(1,), (2,), (4,)]


def test_files_read_differently_are_staged_one_by_one(tmp_path: Path, reads: list[int]) -> None:
    logs = five_minute_objects(tmp_path / "logs", 3)
    plain = sorted(logs.iterdir())[1]
    plain.with_suffix("").write_bytes(gzip.decompress(plain.read_bytes()))  # .json, no gzip
    plain.unlink()
    store = Store.open()
    report = ingest(store, logs)
    assert reads == [] and not any(f.error for f in report.files)
    assert store.scalar("SELECT count(DISTINCT source_file) FROM events") == 3


def test_one_read_takes_at_most_a_chunk_of_files(
    tmp_path: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_module, "STAGE_TOGETHER_FILES", 4)
    report = ingest(Store.open(), five_minute_objects(tmp_path / "logs", 10))
    assert reads == [4, 4, 2] and all(f.loaded for f in report.files)


def test_json_arrays_of_a_plain_format_are_staged_together(
    tmp_path: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_source_okta import _event

    logs = tmp_path / "okta"
    logs.mkdir()
    for n in range(5):
        events = [_event(uuid=f"{n}-{k}", published=f"2024-06-01T1{n}:0{k}:00Z") for k in range(3)]
        (logs / f"okta-{n}.json").write_text(json.dumps(events, indent=2))
    together = Store.open()
    report = ingest(together, logs)
    assert reads == [5] and {f.format for f in report.files} == {"okta"}
    one_at_a_time(monkeypatch)
    alone = Store.open()
    ingest(alone, logs)
    assert everything(together) == everything(alone)


def test_digest_files_and_empty_batches_are_passed_over_not_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A synced CloudTrail bucket holds a digest file an hour, and a quiet five minutes
    writes `{"Records": []}`: neither is an unreadable file, and `--strict` passes."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    logs = five_minute_objects(tmp_path / "logs", 2)
    digest = {
        "awsAccountId": "111122223333",
        "digestStartTime": "2026-11-18T00:00:00Z",
        "digestEndTime": "2026-11-18T01:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "logFiles": [{"s3Object": "AWSLogs/x.json.gz", "hashValue": "ab12"}],
    }
    (logs / "111122223333_CloudTrail-Digest_us-east-1_trail_20261118T010000Z.json.gz").write_bytes(
        gzip.compress(json.dumps(digest).encode())
    )
    (logs / "zz_quiet.json.gz").write_bytes(gzip.compress(b'{"Records": []}'))
    report = ingest(Store.open(), logs)
    skipped = {Path(f.source).name: f.skipped for f in report.files if f.skipped}
    assert len(skipped) == 2 and not report.failed_files
    assert "CloudTrail digest" in skipped[next(n for n in skipped if "Digest" in n)]
    assert skipped["zz_quiet.json.gz"] == "an empty batch of events"
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["scan", "logs", "--strict", "--fail-on", "never"])
    assert result.exit_code == 0, result.output
    assert "0 files unreadable, 2 with nothing to audit" in result.output
    assert "skipped: an empty batch of events" in result.output


@pytest.mark.parametrize(
    "text",
    [
        '{"Records": []}\n{"Records": [EVENT]}\n',  # JSON lines, the first batch empty
        '{"Records": []} {"Records": [EVENT]}',  # concatenated documents
        '[{"Records": []}, {"Records": [EVENT]}]',  # an array of batches
    ],
)
def test_an_empty_first_batch_does_not_hide_the_events_after_it(tmp_path: Path, text: str) -> None:
    event = json.dumps(json.loads(gzip.decompress(SAMPLE.read_bytes()))["Records"][0])
    path = tmp_path / "trail.json"
    path.write_text(text.replace("EVENT", event), encoding="utf-8")
    report = ingest(Store.open(), path).files[0]
    assert report.skipped is None  # not passed over: the old outcome, whatever it is
    assert report.loaded or report.error


def test_nothing_to_audit_is_said_when_nothing_could_be_read(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from m2maudit.cli import app

    (tmp_path / "quiet.json").write_text('{"Records": []}', encoding="utf-8")
    (tmp_path / "notes.json").write_text('{"colour": "red"}', encoding="utf-8")
    result = CliRunner().invoke(app, ["scan", str(tmp_path)])
    assert result.exit_code == 2
    assert "1 of 2 files unreadable, 1 with nothing to audit, 0 records rejected" in result.output


# --- many small JSON-lines files staged with one read ------------------------------------


@pytest.fixture
def line_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """(files, staged together?) for each one-read staging of JSON lines tried."""
    seen: list[tuple[int, bool]] = []
    real = staging.stage_json_lines_together

    def spy(ctx: LoadContext, members: Any, unwrap: Any = None, validate: bool = True) -> bool:
        seen.append((len(members), real(ctx, members, unwrap, validate)))
        return seen[-1][1]

    monkeypatch.setattr(envelopes, "stage_json_lines_together", spy)
    monkeypatch.setattr(staging, "stage_json_lines_together", spy)
    return seen


def _audit_files(directory: Path, count: int) -> Path:
    """Kubernetes audit logs as JSON lines, with what numbers lines differently: a blank line
    inside, CRLF endings, a broken line, an EventList on one line (unwrapped)."""
    from tests.cloud_fixtures import real_log

    source = real_log("k8s_audit/panther_eks_audit_rule_tests.jsonl").read_text(encoding="utf-8")
    events = [json.loads(line) for line in source.splitlines() if line.strip()]
    events = [e for e in events if str(e.get("apiVersion", "")).startswith("audit.k8s.io")]
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        lines = [
            json.dumps({**events[(n + k) % len(events)], "auditID": f"{n}-{k}"}) for k in range(4)
        ]
        if n % 3 == 1:
            lines.insert(2, "")
            lines.append('{"kind": "Event", "broken')
        if n % 3 == 2:
            batch = {"kind": "EventList", "items": [json.loads(lines[0]), json.loads(lines[1])]}
            lines.append(json.dumps(batch).replace('"0-', '"x0-').replace('"1-', '"x1-'))
        newline = "\r\n" if n % 2 else "\n"
        (directory / f"audit-{n:03d}.log").write_text(newline.join(lines) + newline)
    return directory


def test_json_lines_read_together_store_what_one_at_a_time_stores(
    tmp_path: Path, line_reads: list[tuple[int, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = _audit_files(tmp_path / "logs", 9)
    together = Store.open()
    report = ingest(together, logs)
    assert line_reads == [(9, True)] and {f.format for f in report.files} == {"k8s-audit"}
    assert sum(f.rejected for f in report.files) >= 3  # the broken lines
    one_at_a_time(monkeypatch)
    alone = Store.open()
    assert [f.__dict__ for f in ingest(alone, logs).files] == [f.__dict__ for f in report.files]
    assert everything(together) == everything(alone)


def test_json_lines_with_a_line_the_reader_leaves_out_are_staged_one_by_one(
    tmp_path: Path, line_reads: list[tuple[int, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = _audit_files(tmp_path / "logs", 4)
    odd = logs / "audit-002.log"
    odd.write_bytes(odd.read_bytes() + b'{"kind": "Event", "user": "\xff\xfe"}\n')  # not UTF-8
    together = Store.open()
    report = ingest(together, logs)
    assert line_reads == [(4, False)]
    # The file with the line is set aside and loaded alone, which reads it mended.
    assert not any("not UTF-8" in reason for _, _, _, reason, *_ in everything(together)["errors"])
    [mended] = [f for f in report.files if f.source == str(odd)]
    assert mended.warnings == ["2 bytes not UTF-8 read as '?'"]
    one_at_a_time(monkeypatch)
    alone = Store.open()
    assert [f.__dict__ for f in ingest(alone, logs).files] == [f.__dict__ for f in report.files]
    assert everything(together) == everything(alone)


def test_an_empty_kubernetes_event_list_is_passed_over_like_an_empty_trail(
    tmp_path: Path,
) -> None:
    # The Kubernetes format claims an EventList even without items; it is still nothing to
    # audit, alone or among other files of a batch.
    empty = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []}
    for name in ("a.json", "b.json", "c.json"):
        (tmp_path / name).write_text(json.dumps(empty), encoding="utf-8")
    report = ingest(Store.open(), tmp_path / "a.json")
    assert report.files[0].skipped == "an empty batch of events"
    report = ingest(Store.open(), tmp_path)
    assert [f.skipped for f in report.files] == ["an empty batch of events"] * 3
    assert not report.failed_files


# --- many small files of the generic log ----------------------------------------------------

_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC1hIiwiZXhwIjoxNzk1MTMyODAwfQ.c2lnbmF0dXJlLXZhbHVl"
_GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def _generic_logs(directory: Path, count: int) -> Path:
    """Small generic logs, as an agent platform writes one per task: calls with and without a
    token, a key of their own in some files, a time that is no time, a line cut in half and
    a line of plain text (both holding a secret), a call logged in two files, gzip, a JSON
    array and a CSV file."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        calls: list[str] = [
            json.dumps(
                {
                    "timestamp": f"2026-11-20T10:{n:02d}:{k:02d}Z",
                    "principal": f"agent-{n % 3}",
                    "authorization": f"Bearer {_JWT}" if k % 2 else f"opaque-token-{n}",
                    "action": "GET /x",
                    "trace_id": f"t-{n}-{k}",
                    **({"host": f"h{n}"} if n % 2 else {}),
                }
            )
            for k in range(3)
        ]
        calls.append(json.dumps({"timestamp": "2026-11-20T09:00:00Z", "principal": "agent-x"}))
        if n % 4 == 1:
            calls.append(json.dumps({"timestamp": "yesterday", "principal": "agent-b"}))
            calls.append('{"timestamp": "2026-11-20T10:00:00Z", "note": "' + _GITHUB_TOKEN)
        if n % 4 == 2:
            calls.append(f"ERROR retrying with token {_GITHUB_TOKEN}")
        data = ("\n".join(calls) + "\n").encode()
        if n % 5 == 3:
            (directory / f"task-{n:03d}.jsonl.gz").write_bytes(gzip.compress(data))
        else:
            (directory / f"task-{n:03d}.jsonl").write_bytes(data)
    array = [{"timestamp": "2026-11-20T11:00:00Z", "principal": "agent-arr", "action": "GET /a"}]
    (directory / "array.json").write_text(json.dumps(array))
    (directory / "calls.csv").write_text(
        "timestamp,principal,action\n2026-11-20T12:00:00Z,agent-csv,GET /c\nlater,agent-csv,x\n"
    )
    return directory


def test_small_generic_logs_are_mapped_together_as_one_at_a_time_stores_them(
    tmp_path: Path, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement over the generic log's mapping costs a tenth of a second to plan: 300
    one-line files took two minutes. They are staged together and mapped once, and store
    exactly what the fast read of each alone stores."""
    logs = _generic_logs(tmp_path / "logs", 12)
    mapped: list[int] = []
    real_map = GenericLogAdapter.map_staged
    monkeypatch.setattr(
        GenericLogAdapter, "map_staged", lambda self, ctx: mapped.append(1) or real_map(self, ctx)
    )
    together = Store.open()
    report = ingest(together, logs)
    assert batches == [14] and len(mapped) == 1
    assert {f.format for f in report.files} == {"generic-log"}
    assert sum(f.rejected for f in report.files) == 3 + 3 + 3 + 1  # bad times, cut, plain, CSV
    assert sum(f.duplicates for f in report.files) == 11  # agent-x's call, in every file
    one_at_a_time(monkeypatch)
    alone = Store.open()
    assert [f.__dict__ for f in ingest(alone, logs).files] == [f.__dict__ for f in report.files]
    assert len(mapped) == 1 + 2  # alone, the JSON array and the CSV file go the careful way
    assert everything(together) == everything(alone)
    secrets = together.con.execute(
        "SELECT count(*) FROM ingest_errors WHERE leaked_secrets IS NOT NULL"
    ).fetchone()
    assert secrets == (6,)


def test_a_mapping_typo_is_said_for_each_file_of_a_batch(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):
        call = {"timestamp": f"2026-11-20T10:0{n}:00Z", "principal": "agent-a", "trace": f"t{n}"}
        (logs / f"task-{n}.jsonl").write_text(json.dumps(call) + "\n")
    config = parse_config({"mapping": {"trace_id": "trace", "on_behalf_of": "user.emial"}})
    report = ingest_paths(Store.open(), [str(logs)], [], config)
    assert [f.warnings for f in report.files] == [
        [
            "mapping.on_behalf_of reads 'user.emial', which no record of the 1 loaded has a "
            "value for (a typo?)"
        ]
    ] * 3


def test_a_call_is_one_call_whichever_way_its_files_were_read(tmp_path: Path) -> None:
    """The careful read keys a record as the fast read does: the same calls as JSON lines
    (read fast), as a JSON array and with a blank line (both read the careful way) are
    duplicates, keys of their own and JSON's null included; a call that differs only in a key
    of its own is not."""
    calls = [
        {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", "status": 200},
        {"timestamp": 1795132800, "principal": "agent-b", "host": "h1", "note": None},
        {"timestamp": "2026-11-20T10:02:00Z", "client_id": "c", "authorization": f"Bearer {_JWT}"},
        {"timestamp": "2026-11-20T10:03:00Z", "principal": {"n": 1}, "scopes": ["a", "b"]},
    ]
    lines = [json.dumps(call) for call in calls]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "b.json").write_text(json.dumps(calls, indent=1))
    (tmp_path / "c.jsonl").write_text("\n".join([lines[0], "", *lines[1:]]) + "\n")
    other_host = {**calls[1], "host": "h2"}
    (tmp_path / "d.jsonl").write_text(json.dumps(other_host) + "\n" + "\n")
    store = Store.open()
    report = ingest_paths(
        store, [str(tmp_path / name) for name in ("a.jsonl", "b.json", "c.jsonl", "d.jsonl")]
    )
    loaded = [(Path(f.source).name, f.loaded, f.duplicates, f.rejected) for f in report.files]
    assert loaded == [
        ("a.jsonl", 3, 0, 1),  # an object as the principal is rejected
        ("b.json", 0, 3, 1),
        ("c.jsonl", 0, 3, 1),
        ("d.jsonl", 1, 0, 0),
    ]
