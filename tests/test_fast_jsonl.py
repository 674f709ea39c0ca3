"""The fast JSON-lines read (`read_json` + a line index) against the careful one.

A `.jsonl` generic log (gzipped or not) takes the fast path; with the fast read switched off
the same bytes take the careful path (lines as text, `json_extract`). Both must store the
same events and reject the same lines with the same reasons. (Their de-duplication keys
differ: the careful path hashes a record's text, the fast path the values it read.)
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from m2maudit import ingest as ingest_module
from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.sources import fast_jsonl, lineindex
from m2maudit.sources.lineindex import digest_and_index
from m2maudit.store import Store

TS = "2024-05-01T10:00:00Z"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC1hIiwiY2xpZW50X2lkIjoiYWdlbnQtYSJ9.c2lnbmF0dXJl"

# One line per case the mapping treats specially; the comment says what it checks.
LINES: list[str] = [
    json.dumps({"timestamp": TS, "principal": "agent-a", "authorization": f"Bearer {JWT}"}),
    json.dumps({"timestamp": TS, "principal": "  padded  ", "action": " GET /x"}),  # trimmed
    json.dumps({"timestamp": TS, "principal": "agent-b", "action": ""}),  # empty -> NULL
    json.dumps({"timestamp": TS, "principal": {"name": "x"}}),  # object where text belongs
    json.dumps({"timestamp": TS, "principal": "agent-c", "resource": ["a", "b"]}),  # a list
    json.dumps({"timestamp": 1714557600, "principal": "agent-d", "status": 403}),  # epoch, int
    json.dumps({"timestamp": 1714557600123, "client_id": "svc-e", "scopes": ["a:read", " "]}),
    json.dumps({"timestamp": TS, "token_id": "k1", "scopes": "a:read b:write,c:admin"}),
    json.dumps({"timestamp": TS, "token_id": "k2", "scopes": "single:scope"}),
    json.dumps({"timestamp": TS, "token_id": "k3", "scopes": 7}),  # scopes not a list
    json.dumps({"timestamp": "yesterday", "principal": "agent-f"}),  # unparseable time
    json.dumps({"principal": "agent-g"}),  # no time
    json.dumps({"timestamp": TS}),  # no identity
    json.dumps({"timestamp": TS, "principal": "agent-h", "principal_type": "robot"}),
    json.dumps(
        {
            "timestamp": TS,
            "principal": "agent-i",
            "resource": "https://api.example/x?api_key=abcdef0123456789abcdef",  # a leak
        }
    ),
    json.dumps({"timestamp": TS, "token_id": JWT}),  # a token pasted as an id
    json.dumps({"timestamp": TS, "principal": "agent-j", "user_agent": "a\nb [c] {d}"}),
    "{}",  # an object without any field read
    "[1, 2]",  # not an object
    '{"timestamp": "' + TS + '", "principal": "truncated',  # broken JSON
    '{"timestamp": "' + TS + '", "principal": "agent-k", "x": NaN}',  # DuckDB reads NaN
    json.dumps({"timestamp": TS, "principal": "agent-l", "principal_type": "Agent"}),
    "hello",  # not JSON at all (it was "not a JSON object"): said as the careful path says it
    # An escape JSON does not know (a lone surrogate is read mended: test_ingest_bad_input).
    '{"timestamp": "' + TS + '", "principal": "p\\x41"}',
    json.dumps({"timestamp": TS, "principal": "agent-m", "host": "h1", "extra": {"a": [1]}}),
    "[NaN]",  # JSON to DuckDB, not to Python's strict parser: "not a JSON object" on both reads
]

EVENT_COLUMNS = (
    "ts, principal, principal_type, client_id, credential_id, credential_type, token_fp, "
    "action, resource, scopes_used, outcome, status, user_agent, leaked_secret, "
    "leaked_secret_fp, source_line, record_key"
)


def ingest(store: Store, path: Path) -> None:
    ingest_paths(store, [str(path)], [], Config())


def events(store: Store, key: bool = True) -> list[tuple[Any, ...]]:
    columns = EVENT_COLUMNS if key else EVENT_COLUMNS.removesuffix(", record_key")
    return store.con.execute(f"SELECT {columns} FROM events ORDER BY source_line").fetchall()


def rejects(store: Store) -> list[tuple[Any, ...]]:
    return store.con.execute(
        "SELECT source_line, reason FROM ingest_errors ORDER BY source_line"
    ).fetchall()


@pytest.fixture
def fast_reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records whether each generic-log load took the fast read."""
    taken: list[bool] = []
    real = fast_jsonl.stage_json_columns

    def spy(*args: Any, **kwargs: Any) -> bool:
        taken.append(real(*args, **kwargs))
        return taken[-1]

    monkeypatch.setattr("m2maudit.sources.generic_log.stage_json_columns", spy)
    return taken


def ingest_carefully(store: Store, path: Path) -> IngestReport:
    """Ingest with the fast read refused, as for a file it cannot number."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("m2maudit.sources.generic_log.can_read_fast", lambda ctx: False)
        return ingest_paths(store, [str(path)], [], Config())


def write(path: Path, lines: list[str], compress: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_the_fast_read_stores_what_the_careful_read_stores(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    fast, fast_gz, careful = Store.open(), Store.open(), Store.open()
    ingest(fast, write(tmp_path / "log.jsonl", LINES))
    ingest(fast_gz, write(tmp_path / "log.jsonl.gz", LINES, compress=True))
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert fast_reads == [True, True]
    assert events(fast) == events(fast_gz)
    assert events(fast, key=False) == events(careful, key=False)
    assert rejects(fast) == rejects(careful) == rejects(fast_gz)
    reasons = dict(rejects(fast))
    assert reasons[4] == 'field "principal" must be text, not an object or a list'
    assert reasons[18] == 'missing "timestamp"'
    assert reasons[19] == "not a JSON object"
    assert reasons[20] == "not valid JSON"
    assert reasons[23] == "not valid JSON"
    assert reasons[len(LINES)] == "not a JSON object"
    by_line = {row[-2]: row for row in events(fast)}
    assert by_line[2][1] == "padded" and by_line[2][7] == "GET /x"
    assert by_line[3][7] is None
    assert by_line[8][9] == ["a:read", "b:write", "c:admin"]
    assert by_line[15][13] == "password_or_key" and "[redacted]" in by_line[15][8]
    assert str(by_line[16][4]).startswith("secret:")


def test_the_same_records_in_another_file_are_duplicates(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", LINES))
    before = store.scalar("SELECT count(*) FROM events")
    extra = json.dumps({"timestamp": TS, "principal": "agent-new"})
    report = ingest_paths(store, [str(write(tmp_path / "copy.jsonl.gz", [*LINES, extra], True))])
    assert fast_reads == [True, True]
    assert report.files[0].loaded == 1 and report.files[0].duplicates == before


def test_calls_that_differ_only_in_a_field_not_mapped_are_not_duplicates(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    call = {"timestamp": TS, "principal": "agent-1", "action": "GET", "status": 200}
    store = Store.open()
    ingest(store, write(tmp_path / "a.jsonl", [json.dumps({**call, "host": "a"})]))
    report = ingest_paths(
        store, [str(write(tmp_path / "b.jsonl", [json.dumps({**call, "host": "b"})]))]
    )
    assert fast_reads == [True, True]
    assert report.files[0].loaded == 1 and store.scalar("SELECT count(*) FROM events") == 2
    # Keys first seen late in one file and absent from the other still match.
    third = [json.dumps({**call, "host": "a"}), json.dumps({"timestamp": TS, "principal": "x"})]
    report = ingest_paths(store, [str(write(tmp_path / "c.jsonl", third[::-1]))])
    assert report.files[0].duplicates == 1 and report.files[0].loaded == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"headers": {"x-api-key": "abcdef0123456789abcdef"}},
        # The secret's name is the key itself: the fast read once joined only values.
        {"password": "hunter2SECRETVALUE0123"},
        {"api_key": "hunter2SECRETVALUE0123"},
        {"client_secret": "hunter2SECRETVALUE0123"},
    ],
    ids=["nested", "password", "api_key", "client_secret"],
)
def test_the_fast_read_finds_secrets_in_fields_it_does_not_map(
    tmp_path: Path, fast_reads: list[bool], extra: dict[str, Any]
) -> None:
    line = {"timestamp": TS, "principal": "p", **extra}
    fast, careful = Store.open(), Store.open()
    ingest(fast, write(tmp_path / "log.jsonl", [json.dumps(line)]))
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert fast_reads == [True]
    # The kind matches; the fingerprint of a `key: value` secret covers the text between
    # them, which read_json writes without the log's spaces.
    found = "SELECT leaked_secret FROM events"
    assert fast.scalar(found) == careful.scalar(found) == "password_or_key"


GITHUB = "ghp_" + "A1b2C3d4" * 4 + "E5f6"


@pytest.mark.parametrize("where", ["last", "last, no line break", "middle"])
def test_a_key_first_seen_after_the_first_lines_is_read_too(
    tmp_path: Path, fast_reads: list[bool], where: str
) -> None:
    """A field a deploy added halfway through a day's log: its secret is found, and records
    that differ only in it are not taken for duplicates."""
    call = {"timestamp": TS, "principal": "agent-1", "action": "GET"}
    lines = [json.dumps({**call, "n": str(n)}) for n in range(30_000)]
    late = [json.dumps({**call, "debug": f"token {GITHUB}"}), json.dumps({**call, "debug": "b"})]
    if where == "middle":  # from line 20 501 on: past what the first look reads
        lines[20_500:20_500] = late * 2_000
    elif where == "last":
        lines += late
    else:  # the file's last line alone holds the key, and ends without a line break
        lines += late[:1]
    path = write(tmp_path / "log.jsonl", lines)
    if where == "last, no line break":
        path.write_bytes(path.read_bytes().rstrip(b"\n"))
    store = Store.open()
    report = ingest_paths(store, [str(path)])
    assert fast_reads == [True]
    assert store.scalar("SELECT count(*) FROM events WHERE leaked_secret = 'github_token'") >= 1
    assert report.files[0].loaded == len(lines)


def test_a_line_nested_too_deep_for_python_is_left_to_the_read(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    """Sampling the keys parses a few lines in Python: one nested 3 000 deep must not crash
    the scan (the read rejects it, line and reason)."""
    deep = '{"timestamp": "' + TS + '", "x": ' + '{"a": ' * 3_000 + "1" + "}" * 3_001
    lines = [json.dumps({"timestamp": TS, "principal": "a"}), deep]
    store = Store.open()
    report = ingest_paths(store, [str(write(tmp_path / "log.jsonl", lines))])
    assert report.files[0].loaded + report.files[0].rejected == 2


def test_lines_nested_deeper_than_python_parses_are_judged_as_duckdb_reads_them(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    """Python's parser stops at about 1 000 levels, DuckDB's does not. A deep first line made
    the whole file "nested too deeply" (its good lines lost, the scan failed); a deep line
    with none of the fields read crashed the fast read's judge ("internal error")."""
    deep = "[" * 5_000 + "]" * 5_000
    lines = [
        json.dumps({"timestamp": TS, "principal": "deep-first"})[:-1] + ', "x": ' + deep + "}",
        json.dumps({"timestamp": TS, "principal": "agent-1"}),
        '{"x": ' + deep + "}",  # valid, but none of the fields
        '{"x": ' + deep[:-1] + "}",  # one bracket short: not JSON
        json.dumps({"timestamp": TS, "principal": "agent-2"}),
    ]
    fast, fast_gz, careful = Store.open(), Store.open(), Store.open()
    ingest(fast, write(tmp_path / "log.jsonl", lines))
    ingest(fast_gz, write(tmp_path / "log.jsonl.gz", lines, compress=True))
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert fast_reads == [True, True]
    principals = "SELECT principal FROM events ORDER BY source_line"
    for store in (fast, fast_gz, careful):
        assert [row[0] for row in store.con.execute(principals).fetchall()] == [
            "deep-first",
            "agent-1",
            "agent-2",
        ]
        assert rejects(store) == [(3, 'missing "timestamp"'), (4, "not valid JSON")]


def test_deep_lines_are_judged_together(
    tmp_path: Path, fast_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a review: each deep line opened a DuckDB connection of its own (15 ms), so a
    file of 5 000 such lines took 80 s to judge."""
    calls: list[int] = []
    real = fast_jsonl._judge_deep

    def spy(texts: list[str]) -> list[str | None]:
        calls.append(len(texts))
        return real(texts)

    monkeypatch.setattr(fast_jsonl, "_judge_deep", spy)
    deep = "[" * 1_100 + "]" * 1_100
    lines = [json.dumps({"timestamp": TS, "principal": "a"})]
    lines += ['{"x": ' + deep + "}", '{"x": ' + deep[:-1] + "}"] * 150
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", lines))
    assert fast_reads == [True] and calls == [150]  # the broken ones: "x" is read
    reasons = [reason for _, reason in rejects(store)]
    assert reasons == ['missing "timestamp"', "not valid JSON"] * 150


@pytest.mark.parametrize("compress", [True, False], ids=["gzipped", "plain"])
def test_a_key_the_line_count_finds_later_is_read_by_a_second_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_reads: list[bool], compress: bool
) -> None:
    """A gzipped log cannot be sought in for pieces: its keys were those of its first 20 000
    lines, and a secret under a key first seen later was never checked. The line count
    passes every byte anyway, and samples keys as it goes."""
    monkeypatch.setattr(fast_jsonl, "SAMPLED_PIECES", 0)  # only the line count's pieces
    call = {"timestamp": TS, "principal": "agent-1", "action": "GET"}
    lines = [json.dumps({**call, "n": str(n)}) for n in range(30_000)]
    late = [json.dumps({**call, "debug": f"token {GITHUB}"}), json.dumps({**call, "debug": "b"})]
    lines[20_500:20_500] = late * 2_000
    path = write(tmp_path / ("log.jsonl.gz" if compress else "log.jsonl"), lines, compress)
    store = Store.open()
    report = ingest_paths(store, [str(path)])
    assert fast_reads == [True, True]
    assert store.scalar("SELECT count(*) FROM events WHERE leaked_secret = 'github_token'") == 2000
    assert report.files[0].loaded == len(lines)


def test_keys_the_first_read_named_cost_no_second_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_reads: list[bool]
) -> None:
    lines = [json.dumps({"timestamp": TS, "principal": "a", "n": str(n)}) for n in range(30_000)]
    store = Store.open()
    report = ingest_paths(store, [str(write(tmp_path / "log.jsonl.gz", lines, True))])
    assert fast_reads == [True]
    assert report.files[0].loaded == len(lines)


def test_the_line_count_samples_keys_past_the_first_lines(tmp_path: Path) -> None:
    lines = [json.dumps({"timestamp": TS, "n": n}) for n in range(30_000)]
    lines += [json.dumps({"timestamp": TS, "later": n}) for n in range(30_000)]
    for compress in (False, True):
        path = write(tmp_path / f"log-{compress}.jsonl", lines, compress)
        _, index = digest_and_index(path, compress)
        assert index is not None and index.sampled_keys == {"timestamp", "n", "later"}
        _, index = digest_and_index(path, compress, for_fast_read=False)
        assert index is not None and index.sampled_keys == frozenset()


def test_a_key_added_halfway_through_a_gzipped_hourly_log_is_read(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    """The trial's case: 60 000 lines gzipped to a few MB, a key holding a secret from line
    30 001 on. Pieces every 32 MiB of text never reached it; pieces spread over the
    compressed bytes do."""
    call = {"timestamp": TS, "principal": "agent-1", "action": "GET"}
    lines = [json.dumps({**call, "n": str(n)}) for n in range(30_000)]
    lines += [json.dumps({**call, "x_debug_header": GITHUB}) for _ in range(30_000)]
    store = Store.open()
    report = ingest_paths(store, [str(write(tmp_path / "hour.jsonl.gz", lines, True))])
    assert fast_reads == [True, True]
    leaks = "SELECT count(*), min(source_line) FROM events WHERE leaked_secret = 'github_token'"
    assert store.con.execute(leaks).fetchone() == (30_000, 30_001)
    assert report.files[0].loaded == len(lines)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        # The token is fingerprinted where it is the token; a copy in a URL is a leak.
        (
            json.dumps(
                {"timestamp": TS, "principal": "p", "authorization": GITHUB, "resource": GITHUB}
            ),
            "github_token",
        ),
        # A JSON writer may escape '/': the pattern must see the secret, not `\\/`.
        (
            '{"timestamp": "' + TS + '", "principal": "p", "aws_secret_access_key": '
            '"wJalrXUtnFEMI\\/K7MDENG\\/bPxRfiCYEXAMPLEKEY"}',
            "aws_secret_key",
        ),
    ],
    ids=["token copied into a URL", "escaped slashes"],
)
def test_both_reads_find_the_same_secret(
    tmp_path: Path, fast_reads: list[bool], line: str, kind: str
) -> None:
    fast, careful = Store.open(), Store.open()
    ingest(fast, write(tmp_path / "log.jsonl", [line]))
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert fast_reads == [True]
    found = "SELECT leaked_secret FROM events"
    assert fast.scalar(found) == careful.scalar(found) == kind


def test_both_reads_list_every_secret_of_a_record(tmp_path: Path, fast_reads: list[bool]) -> None:
    line = json.dumps(
        {
            "timestamp": TS,
            "principal": "p",
            "resource": f"/x?token={GITHUB}",
            "note": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        }
    )
    fast, careful = Store.open(), Store.open()
    ingest(fast, write(tmp_path / "log.jsonl", [line]))
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert fast_reads == [True]
    found = "SELECT leaked_secrets FROM events"
    listed = fast.scalar(found)
    assert listed == careful.scalar(found)
    assert sorted(item.split(":")[0] for item in listed) == ["aws_secret_key", "github_token"]


def test_a_key_with_quotes_is_a_name_never_sql(tmp_path: Path, fast_reads: list[bool]) -> None:
    """Keys come from the log: one with a `"` once broke the whole file's read, and a crafted
    set of them ran SQL of the log's choosing."""
    injected = {
        "a": "1",
        'a" AS f_extra_1 /*': "2",
        "b*/, error('INJECTED') AS f_extra_2 /*": "3",
        'c*/, r."a': "4",
        'note"': "5",
    }
    lines = [json.dumps({"timestamp": TS, "principal": f"agent-{n}", **injected}) for n in range(3)]
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", lines))
    assert fast_reads == [True]
    assert [row[1] for row in events(store)] == ["agent-0", "agent-1", "agent-2"]
    assert rejects(store) == []


@pytest.mark.parametrize("key", ["rowid", "RowId"])
def test_a_key_named_rowid_is_read_carefully(
    tmp_path: Path, fast_reads: list[bool], key: str
) -> None:
    """It would hide DuckDB's row id, which numbers the lines: the run crashed."""
    lines = [json.dumps({"timestamp": TS, "principal": f"agent-{n}", key: "z"}) for n in range(3)]
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", lines))
    assert fast_reads == []  # refused before reading
    assert [(row[1], row[-2]) for row in events(store)] == [
        ("agent-0", 1),
        ("agent-1", 2),
        ("agent-2", 3),
    ]


@pytest.mark.parametrize("mapped", [False, True], ids=["another key", "a mapped key"])
def test_a_key_named_like_the_internal_token_hash_changes_nothing(
    tmp_path: Path, fast_reads: list[bool], mapped: bool
) -> None:
    lines = [
        json.dumps({"timestamp": TS, "_m2m_auth_hash": "same", "authorization": f"Bearer {JWT}"}),
        json.dumps({"timestamp": TS, "_m2m_auth_hash": "same", "authorization": "Bearer other"}),
    ]
    config = Config(mapping={"principal": "_m2m_auth_hash"}) if mapped else Config()
    store = Store.open()
    ingest_paths(store, [str(write(tmp_path / "log.jsonl", lines))], [], config)
    assert fast_reads == ([] if mapped else [True])  # a mapped one: read carefully
    assert store.scalar("SELECT count(DISTINCT token_fp) FROM events") == 2


@pytest.mark.parametrize(
    "lines",
    [
        [json.dumps({"timestamp": TS, "principal": "a"}), "", json.dumps({"timestamp": TS})],
        [json.dumps({"timestamp": TS, "principal": "a"}), "   ", "{broken"],
    ],
    ids=["empty line", "white space line"],
)
def test_blank_lines_fall_back_to_the_careful_read_and_keep_line_numbers(
    tmp_path: Path, fast_reads: list[bool], lines: list[str]
) -> None:
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", lines))
    assert fast_reads == [False]
    assert store.scalar("SELECT source_line FROM events") == 1
    assert [line for line, _ in rejects(store)] == [3]
    assert store.scalar("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_raw'") == 0


def test_many_broken_lines_are_each_rejected_with_their_line(
    tmp_path: Path, fast_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fast_jsonl, "_MAX_LINES_JUDGED", 2)
    good = json.dumps({"timestamp": TS, "principal": "a"})
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", [good, "{x", good, "{y", "{z", good]))
    assert fast_reads == [True]
    assert [line for line, _ in rejects(store)] == [2, 4, 5]
    assert {reason for _, reason in rejects(store)} == {fast_jsonl._UNJUDGED}
    assert [row[-2] for row in events(store)] == [1, 3, 6]


# --- the line index ----------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_the_line_index_finds_every_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ending: str,
    final_newline: bool,
    compressed: bool,
) -> None:
    monkeypatch.setattr(lineindex, "BLOCK_BYTES", 8)  # many blocks, lines across them
    monkeypatch.setattr(lineindex, "_CHUNK_BYTES", 32)
    monkeypatch.setattr(lineindex, "_GZIP_CHUNK_BYTES", 16)  # pieces and checkpoints: many
    monkeypatch.setattr(lineindex, "_CHECKPOINT_TEXT_BYTES", 24)
    lines = ["x" * (i * 7 % 23) + str(i) for i in range(40)]
    text = (ending.join(lines) + (ending if final_newline else "")).encode()
    path = tmp_path / "f.txt"
    path.write_bytes(gzip.compress(text) if compressed else text)
    digest, index = digest_and_index(path, compressed)
    assert index is not None and index.lines == 40
    assert len(index.checkpoints) > (5 if compressed else -1)
    assert index.read_lines([1, 17, 40, 41]) == {n: lines[n - 1].encode() for n in (1, 17, 40)}
    every = index.read_lines(range(1, 41))  # each line alone would do as well
    assert every == {n: lines[n - 1].encode() for n in range(1, 41)}
    for n in range(1, 41):
        assert index.read_lines([n]) == {n: lines[n - 1].encode()}
    assert digest == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_the_line_index_bounds_the_longest_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineindex, "BLOCK_BYTES", 10)
    monkeypatch.setattr(lineindex, "_CHUNK_BYTES", 40)
    path = tmp_path / "f.txt"
    path.write_bytes(b"short\n" + b"y" * 95 + b"\nshort\n")
    _, index = digest_and_index(path)
    assert index is not None
    assert index.may_have_line_over(80)  # the 95-byte line
    assert not index.may_have_line_over(200)
    path.write_bytes(b"short\n" * 30)
    _, index = digest_and_index(path)
    assert index is not None and not index.may_have_line_over(80)


def test_an_empty_file_has_no_lines(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    _, index = digest_and_index(path)
    assert index is not None and index.lines == 0 and index.read_lines([1]) == {}


# --- big files: hashed while they load; lines over the limit ------------------------------


def test_a_big_file_is_hashed_while_it_loads_and_a_repeat_is_rolled_back(
    tmp_path: Path, fast_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 0)  # every file counts as big
    store = Store.open(tmp_path / "store.duckdb")  # a store on disk hashes every file
    first = ingest_paths(store, [str(write(tmp_path / "a.jsonl", LINES))]).files[0]
    again = ingest_paths(store, [str(write(tmp_path / "b.jsonl", LINES))]).files[0]
    assert fast_reads == [True, True]
    assert first.loaded == len(events(store)) and not first.already_ingested
    assert again.already_ingested and again.loaded == 0
    assert store.scalar("SELECT count(*) FROM ingested_files") == 1
    assert store.scalar("SELECT count(DISTINCT source_file) FROM events") == 1


def test_a_line_over_the_record_limit_is_read_then_refused(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    good = json.dumps({"timestamp": TS, "principal": "a"})
    huge = json.dumps({"timestamp": TS, "principal": "b", "pad": "x" * (20 << 20)})
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", [good, huge, good]))
    assert fast_reads == [False]  # read_json took it; the index says a line may be too long
    assert [row[-2] for row in events(store)] == [1, 3]
    [(line, reason)] = rejects(store)
    assert line == 2 and "over the limit" in reason


def test_the_longest_line_the_index_lets_through_is_read_fast(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    # read_json's object limit is the record limit, no more (a larger one slows the read):
    # a line as long as the index lets through to the fast read (14 whole 1 MiB blocks
    # without a newline) must still fit. DuckDB 2.0 reads longer objects anyway; a version
    # that enforces the limit would fail here.
    good = json.dumps({"timestamp": TS, "principal": "a"})
    frame = json.dumps({"timestamp": TS, "principal": "b", "pad": ""})
    pad = fast_jsonl.MAX_RECORD_BYTES - len(good) - len(frame) - 64
    huge = frame[:-2] + "x" * pad + '"}'
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", [good, huge, good]))
    assert fast_reads == [True]
    assert [row[-2] for row in events(store)] == [1, 2, 3] and rejects(store) == []


def test_when_read_json_fails_the_file_is_rolled_back_and_read_carefully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An object size read_json refuses: the statement fails inside the file's transaction.
    monkeypatch.setattr(fast_jsonl, "MAX_RECORD_BYTES", -1)
    failures: list[str] = []
    real = fast_jsonl.stage_json_columns

    def spy(*args: Any, **kwargs: Any) -> bool:
        try:
            return real(*args, **kwargs)
        except fast_jsonl.FastReadFailed as exc:
            failures.append(str(exc))
            raise

    monkeypatch.setattr("m2maudit.sources.generic_log.stage_json_columns", spy)
    store = Store.open()
    report = ingest_paths(store, [str(write(tmp_path / "log.jsonl", LINES))])
    assert len(failures) == 1
    assert report.files[0].error is None
    careful = Store.open()
    ingest_carefully(careful, tmp_path / "log.jsonl")
    assert events(store, key=False) == events(careful, key=False)
    assert rejects(store) == rejects(careful)


def test_only_the_tokens_of_accepted_records_are_decoded(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    from m2maudit.fingerprint import fingerprint

    other = JWT.replace("c2lnbmF0dXJl", "b3RoZXJzaWc")
    lines = [
        json.dumps({"timestamp": TS, "principal": "a", "token_id": "k"}),  # no token
        json.dumps({"timestamp": TS, "authorization": f"Bearer {JWT}"}),
        json.dumps({"authorization": f"Bearer {other}"}),  # rejected: no time
    ]
    store = Store.open()
    ingest(store, write(tmp_path / "log.jsonl", lines))
    assert fast_reads == [True]
    decoded = {row[0] for row in store.con.execute("SELECT token_fp FROM tokens").fetchall()}
    assert decoded == {fingerprint(JWT)}


@pytest.mark.parametrize("members", [1, 3])
def test_a_gzipped_log_is_indexed_as_its_text(tmp_path: Path, members: int) -> None:
    lines = [f'{{"n": {i}, "pad": "{"x" * (i % 50)}"}}' for i in range(300)]
    text = ("\n".join(lines) + "\n").encode()
    third = len(text) // members
    parts = [text[i * third : (i + 1) * third if i < members - 1 else None] for i in range(members)]
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(b"".join(gzip.compress(part) for part in parts))  # concatenated members
    digest, index = digest_and_index(path, compressed=True)
    assert index is not None and index.lines == 300 and index.compressed
    assert index.read_lines([1, 150, 300]) == {n: lines[n - 1].encode() for n in (1, 150, 300)}
    assert digest == __import__("hashlib").sha256(path.read_bytes()).hexdigest()


def test_a_truncated_gzip_has_no_index_and_its_whole_lines_are_read_fast(
    tmp_path: Path, fast_reads: list[bool]
) -> None:
    """The read of the gzip fails; its whole lines, decompressed to a stand-in file (see
    `test_gzip_recovery`), are numbered and read fast."""
    path = write(tmp_path / "log.jsonl.gz", LINES * 50, compress=True)
    path.write_bytes(path.read_bytes()[:-30])
    _, index = digest_and_index(path, compressed=True)
    assert index is None
    store = Store.open()
    report = ingest_paths(store, [str(path)])
    assert fast_reads[-1:] == [True]
    [file] = report.files
    assert file.error is None and file.read > 1000
    cut = "truncated or corrupt gzip data: the data ends here, and what followed is lost"
    assert store.scalar("SELECT max(source_line) FROM ingest_errors WHERE reason = ?", [cut])


@pytest.mark.parametrize("ending", ["\n\n", "\n\n\n", "\r\n\r\n", "\n  ", "\n \t\n"], ids=repr)
def test_blank_lines_only_at_the_end_keep_the_fast_read(
    tmp_path: Path, fast_reads: list[bool], ending: str
) -> None:
    lines = [json.dumps({"timestamp": TS, "principal": f"a{i}"}) for i in range(3)] + ["{x"]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + ending)
    store = Store.open()
    ingest(store, path)
    assert fast_reads == [True]
    assert [row[-2] for row in events(store)] == [1, 2, 3]
    assert [line for line, _ in rejects(store)] == [4]


@pytest.mark.parametrize(
    ("text", "trailing"),
    [
        (b"", 0),
        (b"a", 0),
        (b"a\n", 0),
        (b"a\n\n", 1),
        (b"a\n \n\n", 2),
        (b"a\n  ", 1),
        (b"\n\n", 2),
        (b"a\r\n\r\n", 1),
    ],
)
def test_the_line_index_counts_trailing_blank_lines(
    tmp_path: Path, text: bytes, trailing: int
) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(text)
    _, index = digest_and_index(path)
    assert index is not None and index.trailing_blank_lines == trailing


def _outcome_of_two_ingests(tmp_path: Path, name: str) -> tuple[Any, ...]:
    """Reports, rejects and tokens of a log ingested, then a copy of it with one more line."""
    store = Store.open()
    first = ingest_paths(store, [str(write(tmp_path / f"{name}.jsonl", LINES))])
    extra = json.dumps({"timestamp": "2024-05-02T10:00:00Z", "principal": "agent-new"})
    second = ingest_paths(store, [str(write(tmp_path / f"{name}-2.jsonl", [*LINES, extra]))])
    reports = [
        (f.read, f.loaded, f.duplicates, f.rejected, f.first_ts, f.last_ts, f.error)
        for report in (first, second)
        for f in report.files
    ]
    errors = store.con.execute(
        "SELECT regexp_replace(source_file, '.*/', ''), source_line, reason FROM ingest_errors "
        "ORDER BY ALL"
    ).fetchall()
    tokens = store.con.execute("SELECT token_fp FROM tokens ORDER BY 1").fetchall()
    return reports, [(f.replace(name, "log"), n, r) for f, n, r in errors], tokens, events(store)


def test_the_outcome_taken_after_the_insert_is_the_full_pass_outcome(
    tmp_path: Path, fast_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast read judges only the lines left out of the insert; with that turned off
    (every file then takes the full pass) nothing a user sees changes."""
    after_insert = _outcome_of_two_ingests(tmp_path, "a")
    monkeypatch.setattr("m2maudit.commit.MAX_LINES_LEFT_OUT", 0)
    full_pass = _outcome_of_two_ingests(tmp_path, "b")
    assert fast_reads == [True] * 4
    assert after_insert == full_pass
    reports = after_insert[0]
    assert reports[1][1:4] == (1, reports[0][1], reports[0][3])  # one new, the rest duplicates
    assert reports[1][5] is not None and reports[1][5] > reports[0][5]  # window takes the new line


def test_a_one_shot_store_hashes_only_files_that_could_repeat(
    tmp_path: Path, fast_reads: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a one-shot store, a file whose size no other file shares cannot repeat anything:
    it is not hashed. Two files of one size are, and a copy is still caught. Without
    `one_shot` (and in a store on disk) every file is hashed."""
    monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 0)
    hashed: list[Path] = []
    real = lineindex.digest_and_index

    def spy(
        path: Path, compressed: bool = False, hash_content: bool = True, *rest: Any, **more: Any
    ) -> Any:
        if hash_content:
            hashed.append(path)
        return real(path, compressed, hash_content, *rest, **more)

    monkeypatch.setattr(lineindex, "digest_and_index", spy)
    # One file at a time, each read fast (small files of a format are loaded in batches).
    monkeypatch.setattr(ingest_module, "SMALL_FILE_BYTES", -1)
    logs = tmp_path / "logs"
    logs.mkdir()
    write(logs / "a.jsonl", LINES)
    write(logs / "b.jsonl", LINES)  # a copy: the same size
    others = [json.dumps({"timestamp": TS, "principal": f"agent-{n}"}) for n in range(3)]
    write(logs / "c.jsonl", others)
    store = Store.open()
    report = ingest_paths(store, [str(logs)], one_shot=True)
    by_name = {Path(f.source).name: f for f in report.files}
    assert sorted(path.name for path in hashed) == ["a.jsonl", "b.jsonl"]
    assert by_name["b.jsonl"].already_ingested and by_name["b.jsonl"].loaded == 0
    assert by_name["c.jsonl"].loaded == 3 and not by_name["c.jsonl"].already_ingested
    identities = store.con.execute(
        "SELECT source_file, content_sha256 FROM ingested_files ORDER BY 1"
    ).fetchall()
    assert [Path(name).name for name, _ in identities] == ["a.jsonl", "c.jsonl"]
    assert len(identities[0][1]) == 64 and identities[1][1].startswith("unhashed:")
    # Ingesting c again into the same store: now it is hashed, and its records are duplicates.
    again = ingest_paths(store, [str(logs / "c.jsonl")], one_shot=True).files[0]
    assert hashed[-1].name == "c.jsonl"
    assert again.loaded == 0 and again.duplicates == 3
    assert ingest_paths(Store.open(), [str(logs / "c.jsonl")]).files[0].loaded == 3
    assert hashed[-1].name == "c.jsonl" and len(hashed) == 4
    disk = Store.open(tmp_path / "store.duckdb")
    assert ingest_paths(disk, [str(logs / "c.jsonl")], one_shot=True).files[0].loaded == 3
    assert len(hashed) == 5


@pytest.mark.parametrize("compressed", [False, True])
def test_a_cancelled_digest_stops_at_its_next_chunk(tmp_path: Path, compressed: bool) -> None:
    import threading

    path = tmp_path / "f.jsonl"
    text = b'{"a": 1}\n' * 1000
    path.write_bytes(gzip.compress(text) if compressed else text)
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(lineindex.DigestCancelled):
        digest_and_index(path, compressed, cancelled=cancelled)
    with pytest.raises(lineindex.DigestCancelled):
        lineindex.file_sha256(path, cancelled)
    assert (
        lineindex.file_sha256(path) == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    )


def test_ctrl_c_while_a_big_file_loads_cancels_its_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash of a 3 GB log runs on a thread; on Ctrl-C the run must not wait for it."""
    import m2maudit.ingest as ingest_module

    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"timestamp": "2026-11-20T10:00:00Z", "principal": "a"}) + "\n")
    monkeypatch.setattr(lineindex, "BACKGROUND_BYTES", 0)  # every file "big": on a thread
    cancelled: list[bool] = []
    monkeypatch.setattr(lineindex.FileDigest, "cancel", lambda self: cancelled.append(True))

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "_load", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths(Store.open(), [str(path)])
    assert cancelled == [True]


def test_a_mended_file_is_read_carefully_when_read_json_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallbacks together: the fast read fails (the careful read rejects the record with
    a lone surrogate), then the mended copy's fast read fails too: read carefully as well."""
    monkeypatch.setattr(fast_jsonl, "MAX_RECORD_BYTES", -1)
    lines = [
        json.dumps({"timestamp": TS, "principal": "agent-a"}),
        '{"timestamp": "' + TS + '", "principal": "agent-b", "user_agent": "x\\ud800"}',
    ]
    store = Store.open()
    report = ingest_paths(store, [str(write(tmp_path / "log.jsonl", lines))])
    [file] = report.files
    assert (file.error, file.loaded, file.rejected) == (None, 2, 0)
    assert file.warnings == ["1 lone surrogate escape read as U+FFFD"]
