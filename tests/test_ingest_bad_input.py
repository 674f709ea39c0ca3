"""Bad input: a clear error, nothing lost.

A bad record is a row in `ingest_errors` with its exact 1-based line and the rest of the file
loads; a file that cannot be read at all is one clear line naming it, never a traceback, and
never rows of a half-loaded file.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from m2maudit import ingest as ingest_module
from m2maudit.config import Config
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.store import Store
from tests.conftest import RunCli, write_bytes, write_csv, write_jsonl

TS = "2024-05-01T10:00:00Z"
TOKEN = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJsZWFrLXRlc3QifQ.U2VjcmV0U2lnbmF0dXJlWFlaMTIz"


def ingest(store: Store, *paths: Path | str) -> IngestReport:
    return ingest_paths(store, [str(p) for p in paths], [], Config())


def loaded_lines(store: Store) -> list[int]:
    return [r[0] for r in store.con.execute("SELECT source_line FROM events ORDER BY 1").fetchall()]


def rejected(store: Store) -> list[tuple[int, str]]:
    return [
        (int(line), str(reason))
        for line, reason in store.con.execute(
            "SELECT source_line, reason FROM ingest_errors ORDER BY 1"
        ).fetchall()
    ]


def ev(name: str, ts: Any = TS, **extra: Any) -> str:
    return json.dumps({"timestamp": ts, "principal": name, **extra})


# --- exact line numbers -----------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_json_lines_numbers_survive_blank_and_broken_lines(
    store: Store, tmp_path: Path, newline: str
) -> None:
    path = write_jsonl(
        tmp_path / "l.jsonl",
        [
            ev("l1"),  # 1
            "",  # 2 blank
            "   ",  # 3 blank
            '{"timestamp": "2024-05-01',  # 4 broken JSON
            ev("l5"),  # 5
            ev("l6", ts="next tuesday"),  # 6 bad timestamp
            '["not", "an", "object"]',  # 7
            ev("l8", scopes=5),  # 8 number scopes
            ev("l9", client_id={"x": 1}),  # 9 object where a name is expected
            "",  # 10
            ev("l11"),  # 11
        ],
        newline=newline,
    )
    report = ingest(store, path)
    assert loaded_lines(store) == [1, 5, 11]
    assert rejected(store) == [
        (4, "not valid JSON"),
        (6, 'unparseable "timestamp": "next tuesday"'),
        (7, "not a JSON object"),
        (8, 'field "scopes" must be a list or a space- or comma-separated string'),
        (9, 'field "client_id" must be text, not an object or a list'),
    ]
    assert (report.files[0].read, report.loaded, report.rejected) == (8, 3, 5)


def test_json_lines_without_final_newline(store: Store, tmp_path: Path) -> None:
    write_bytes(tmp_path / "n.jsonl", f"{ev('a')}\n{ev('b')}".encode())
    ingest(store, tmp_path / "n.jsonl")
    assert loaded_lines(store) == [1, 2]


def test_json_lines_with_mixed_line_endings(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "m.jsonl", f"{ev('a')}\r\n{ev('b')}\n\n{ev('c')}\r\n{ev('d')}\n".encode()
    )
    ingest(store, tmp_path / "m.jsonl")
    assert loaded_lines(store) == [1, 2, 4, 5]


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_csv_numbers_survive_blank_lines_and_rejected_rows(
    store: Store, tmp_path: Path, newline: str
) -> None:
    path = write_csv(
        tmp_path / "c.csv",
        ["timestamp", "principal", "action"],
        [
            f"{TS},c2,read",  # 2
            "",  # 3 blank
            f"{TS},c4,read,EXTRA",  # 4 too many columns
            f"{TS},c5",  # 5 too few columns
            f"{TS},c6,read",  # 6
            "",  # 7
            "",  # 8
            "not-a-time,c9,read",  # 9 bad timestamp
            f"{TS},c10,write",  # 10
        ],
        newline=newline,
    )
    ingest(store, path)
    assert loaded_lines(store) == [2, 6, 10]
    assert rejected(store) == [
        (4, "malformed CSV row: too many columns"),
        (5, "malformed CSV row: too few columns"),
        (9, 'unparseable "timestamp": "not-a-time"'),
    ]


def test_csv_numbers_survive_cells_spanning_lines(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "q.csv",
        (
            "timestamp,principal,user_agent\n"
            f'{TS},q2,"two\nlines"\n'  # 2-3
            f'{TS},q4,"say ""hi""\n\nthere"\n'  # 4-6, a blank line inside the cell
            f"{TS},q7,too,many\n"  # 7 rejected
            "\n"  # 8
            f"{TS},q9,plain\n"  # 9
        ).encode(),
    )
    ingest(store, tmp_path / "q.csv")
    assert store.con.execute(
        "SELECT principal, source_line, user_agent FROM events ORDER BY 2"
    ).fetchall() == [("q2", 2, "two\nlines"), ("q4", 4, 'say "hi"\n\nthere'), ("q9", 9, "plain")]
    assert rejected(store) == [(7, "malformed CSV row: too many columns")]


def test_csv_header_after_blank_lines_and_a_bom(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "lead.csv",
        b"\xef\xbb\xbf\n  \n\ntimestamp,principal\n" + f"{TS},a\n\n{TS},b\n".encode(),
    )
    ingest(store, tmp_path / "lead.csv")
    assert loaded_lines(store) == [5, 7]
    assert rejected(store) == []


def test_json_lines_with_a_bom(store: Store, tmp_path: Path) -> None:
    write_bytes(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + f"{ev('a')}\n{ev('b')}\n".encode())
    ingest(store, tmp_path / "bom.jsonl")
    assert loaded_lines(store) == [1, 2]


@pytest.mark.parametrize("where", ["head", "beyond the sample"])
def test_a_line_that_is_not_utf8_is_read_mended_alone(
    store: Store, tmp_path: Path, where: str
) -> None:
    """It was rejected; the line is read with the byte as `?`, and the file says so."""
    filler = 1 if where == "head" else 6000  # 6000 lines are well past the 256 KiB sample
    lines = [ev(f"p{i}").encode() for i in range(filler)]
    bad = b'{"timestamp": "2024-05-01T10:00:00Z", "principal": "caf\xe9"}'
    write_bytes(tmp_path / "u.jsonl", b"\n".join([*lines, bad, ev("last").encode()]) + b"\n")
    report = ingest(store, tmp_path / "u.jsonl")
    assert (report.files[0].error, report.files[0].warnings) == (
        None,
        ["1 byte not UTF-8 read as '?'"],
    )
    assert report.loaded == filler + 2
    assert rejected(store) == []
    assert loaded_lines(store)[-2:] == [filler + 1, filler + 2]
    assert store.scalar(f"SELECT principal FROM events WHERE source_line = {filler + 1}") == "caf?"


@pytest.mark.parametrize(
    "line",
    [
        # The bad byte four from the end was taken for a character the sample had cut.
        b'{"timestamp": "2024-05-01T10:00:00Z", "principal": "agent-a", "action": "DELETE /db",'
        b' "user_agent": "caf\xe9"}',
        # One byte in a line under a hundred was taken for a file in another encoding.
        b'{"timestamp": "2024-05-01T10:00:00Z", "principal": "caf\xe9"}',
    ],
    ids=["near its end", "in a short line"],
)
def test_a_one_line_log_with_a_byte_not_utf8_is_read_mended(
    store: Store, tmp_path: Path, line: bytes
) -> None:
    """A per-task log of one call must not be lost to one stray byte: in a directory it was
    listed unreadable and the gate passed without auditing the call."""
    report = ingest(store, write_bytes(tmp_path / "one.jsonl", line + b"\n"))
    assert (report.files[0].error, report.files[0].warnings) == (
        None,
        ["1 byte not UTF-8 read as '?'"],
    )
    assert loaded_lines(store) == [1]


def test_a_csv_row_that_is_not_utf8_is_read_mended_alone(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "u.csv", f"timestamp,principal\n{TS},a\n{TS},caf\xe9\n{TS},c\n".encode("latin-1")
    )
    report = ingest(store, tmp_path / "u.csv")
    assert loaded_lines(store) == [2, 3, 4]
    assert rejected(store) == []
    assert report.files[0].warnings == ["1 byte not UTF-8 read as '?'"]


def test_over_long_first_line_does_not_hide_the_file(store: Store, tmp_path: Path) -> None:
    """The sample is cut inside line 1; detection looks at the lines after it."""
    write_bytes(
        tmp_path / "w.jsonl",
        "\n".join([ev("wide", pad="x" * 600_000), ev("second"), ev("third")]).encode(),
    )
    ingest(store, tmp_path / "w.jsonl")
    assert loaded_lines(store) == [1, 2, 3]


def test_broken_first_line_does_not_hide_the_file(store: Store, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "b.jsonl", ['{"timestamp": "2024-05-01T10:0', ev("a"), ev("b")])
    report = ingest(store, tmp_path / "b.jsonl")
    assert report.files[0].format == "generic-log"
    assert loaded_lines(store) == [2, 3]
    assert rejected(store) == [(1, "not valid JSON")]


# --- wrong types, huge fields, unicode --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"principal": ["a", "b"]}, 'field "principal" must be text, not an object or a list'),
        ({"authorization": {"scheme": "Bearer"}}, 'field "authorization" must be text'),
        (
            {"scopes": {"read": True}},
            'field "scopes" must be a list or a space- or comma-separated string',
        ),
        ({"scopes": True}, 'field "scopes" must be a list or a space- or comma-separated string'),
        ({"timestamp": True}, 'unparseable "timestamp": true'),
        ({"timestamp": {"sec": 1}}, 'unparseable "timestamp"'),
        ({"timestamp": None}, 'missing "timestamp"'),
        ({"timestamp": "2024-02-30T00:00:00Z"}, 'unparseable "timestamp"'),
        (
            {"timestamp": 42},
            'unparseable "timestamp": 42 (an epoch number must be a time from 2000 on)',
        ),
        (
            {"timestamp": " 946684799 "},
            'unparseable "timestamp": " 946684799 " (an epoch number must be a time from 2000 on)',
        ),
        ({"principal": None}, "no principal, client_id, token_id or authorization"),
    ],
)
def test_wrong_types_are_rejected_with_a_reason(
    store: Store, tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    record = {"timestamp": TS, "principal": "p", **fields}
    write_jsonl(tmp_path / "t.jsonl", [ev("ok"), json.dumps(record)])
    ingest(store, tmp_path / "t.jsonl")
    assert loaded_lines(store) == [1]
    [(line, got)] = rejected(store)
    assert line == 2 and got.startswith(reason)


@pytest.mark.parametrize("read", ["fast", "careful"])
def test_an_object_or_list_is_no_trace_session_or_task_id(
    store: Store, tmp_path: Path, read: str
) -> None:
    """An object is no id: stored as one, `{"a":1}` counted the call as traced. The call is
    kept (its id NULL, so it counts as untraced); a status or an action keeps its JSON."""
    record = ev(
        "x",
        trace_id={"a": 1},
        session_id=["s1", "s2"],
        task_id={"id": 7},
        status=[200],
        action=["GET", "/x"],
    )
    blank = [""] if read == "careful" else []  # a blank line takes the careful read
    write_jsonl(tmp_path / "o.jsonl", [*blank, record, ev("y", trace_id="t-1")])
    ingest(store, tmp_path / "o.jsonl")
    assert rejected(store) == []
    rows = store.con.execute(
        "SELECT trace_id, session_id, task_id, status, action FROM events ORDER BY source_line"
    ).fetchall()
    assert rows == [(None, None, None, "[200]", '["GET","/x"]'), ("t-1", None, None, None, None)]


def test_a_time_of_inf_is_not_called_an_early_epoch_number(store: Store, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "t.jsonl", [ev("ok"), ev("x", ts="inf"), ev("y", ts="-Infinity")])
    ingest(store, tmp_path / "t.jsonl")
    assert rejected(store) == [
        (2, 'unparseable "timestamp": "inf"'),
        (3, 'unparseable "timestamp": "-Infinity"'),
    ]


def test_numbers_where_text_is_expected_are_read_as_text(store: Store, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "n.jsonl", [ev("x", client_id=42, status=200, trace_id=7.5)])
    ingest(store, tmp_path / "n.jsonl")
    assert store.con.execute("SELECT client_id, status, trace_id FROM events").fetchall() == [
        ("42", "200", "7.5")
    ]


def test_huge_field_loads_and_over_limit_record_is_rejected(store: Store, tmp_path: Path) -> None:
    big = "u" * 1_000_000
    write_jsonl(
        tmp_path / "h.jsonl", [ev("a", user_agent=big), ev("b", pad="z" * 17_000_000), ev("c")]
    )
    ingest(store, tmp_path / "h.jsonl")
    assert store.con.execute(
        "SELECT principal, strlen(user_agent) FROM events ORDER BY 1"
    ).fetchall() == [("a", 1_000_000), ("c", None)]
    [(line, reason)] = rejected(store)
    assert line == 2 and "over the limit" in reason


def test_fifty_megabyte_single_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "fifty.jsonl"
    with path.open("w") as handle:
        handle.write(ev("before") + "\n")
        handle.write(ev("huge", pad="x" * (50 * 1024 * 1024)) + "\n")
        handle.write(ev("after") + "\n")
    started = time.perf_counter()
    report = ingest(store, path)
    elapsed = time.perf_counter() - started
    assert loaded_lines(store) == [1, 3]
    assert [line for line, _ in rejected(store)] == [2]
    assert report.files[0].error is None
    assert elapsed < 5, f"ingesting a 50 MB line took {elapsed:.1f} s"


def test_deeply_nested_json_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    nested = "[" * 50_000 + "]" * 50_000
    write_bytes(
        tmp_path / "deep.jsonl", ('{"timestamp": "' + TS + '", "x": ' + nested + "}\n").encode()
    )
    report = ingest(store, tmp_path / "deep.jsonl")
    assert report.files[0].error is not None
    assert store.con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_json_text_nested_too_deeply_inside_a_field_loses_nothing(
    store: Store, tmp_path: Path
) -> None:
    """Format detection opens a `message` that holds JSON text, in Python: nested 5 000 deep
    it stopped the scan with "internal error: RecursionError"."""
    deep_text = '{"a": ' + "[" * 5_000 + "]" * 5_000 + "}"
    write_jsonl(
        tmp_path / "log.jsonl",
        [
            {"timestamp": TS, "principal": "svc-a", "message": deep_text},
            {"timestamp": TS, "principal": "svc-b"},
        ],
    )
    report = ingest(store, tmp_path / "log.jsonl")
    assert report.files[0].error is None
    assert loaded_lines(store) == [1, 2]


# --- files that cannot be read ----------------------------------------------------------


def _file_error(store: Store, path: Path) -> str:
    report = ingest(store, path)
    [file] = report.files
    assert file.error is not None
    assert report.loaded == 0
    assert store.con.execute(
        "SELECT source_file, source_line, reason FROM ingest_errors WHERE source_line = 0"
    ).fetchall() == [(str(path), 0, file.error)]
    return file.error


@pytest.mark.parametrize("content", [b"", b"\n \r\n\t\n", gzip.compress(b"")])
def test_an_empty_file_has_nothing_to_audit(store: Store, tmp_path: Path, content: bytes) -> None:
    """Log rotation leaves empty files: passed over and said so, not unreadable."""
    report = ingest(store, write_bytes(tmp_path / "e.jsonl", content))
    [file] = report.files
    assert (file.error, file.skipped) == (None, "file is empty")
    assert store.con.execute("SELECT count(*) FROM ingest_errors").fetchone() == (0,)


def test_binary_file(store: Store, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "b.jsonl", bytes(range(256)) * 10)
    assert _file_error(store, path) == "not a text file (binary content)"


def test_a_nul_in_the_first_lines_loses_those_lines_only(store: Store, tmp_path: Path) -> None:
    """A security review hid a log (and the tokens it leaked) behind one NUL byte in its
    first line (a review of the fix, behind two): the whole file was 'not a text file'. Now
    those lines alone are rejected."""
    first, second = (ev(n).encode().replace(n.encode(), n.encode() + b"\x00") for n in "ab")
    lines = [first, second] + [ev(f"n{i}").encode() for i in range(8)]
    path = write_bytes(tmp_path / "nul.jsonl", b"\n".join(lines) + b"\n")
    assert b"\x00" in path.read_bytes()[:512]
    report = ingest(store, path)
    [file] = report.files
    assert (file.error, file.loaded, file.rejected) == (None, 8, 2)
    assert rejected(store) == [(1, "not valid JSON"), (2, "not valid JSON")]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzipped"])
def test_a_stray_byte_in_a_json_document_loses_nothing(
    store: Store, tmp_path: Path, compress: bool
) -> None:
    """From a trial: one byte that is not UTF-8 in one record of a JSON document (a
    CloudTrail object, an array) made DuckDB refuse the document, and every record was
    lost. A copy with the byte replaced is read instead, and said so."""
    records = [{"timestamp": TS, "principal": f"agent-{n}", "user_agent": "ua"} for n in range(3)]
    data = json.dumps(records).encode().replace(b'"ua"', b'"caf\xe9"', 1)
    name = "calls.json.gz" if compress else "calls.json"
    path = write_bytes(tmp_path / name, gzip.compress(data) if compress else data)
    spools = set(Path(tempfile.gettempdir()).glob("m2maudit-mended-*"))
    report = ingest(store, path)
    [file] = report.files
    assert (file.error, file.loaded, file.warnings) == (
        None,
        3,
        ["1 byte not UTF-8 read as '?'"],
    )
    agents = "SELECT user_agent FROM events ORDER BY principal"
    assert store.con.execute(agents).fetchall() == [("caf?",), ("ua",), ("ua",)]
    assert set(Path(tempfile.gettempdir()).glob("m2maudit-mended-*")) == spools


_SURROGATE_UA = "curl\\ud800 \\udc00x \\ud83d\\ude00 \\\\ud800"  # lone, lone, a pair, text


@pytest.mark.parametrize("layout", ["fast", "careful", "gzipped", "k8s"])
def test_records_with_text_duckdb_refuses_are_read_mended(
    store: Store, tmp_path: Path, layout: str
) -> None:
    """From a review: one lone surrogate escape (`\\ud800`, which `JSON.stringify` and
    `json.dumps` write for half an emoji) or one byte that is not UTF-8 in a user agent, the
    caller's to write, rejected the record: an attacker could hide calls from the audit. The
    file is read again from a copy with each replaced, and said so; a line broken some other
    way stays rejected."""
    lines = [
        ev("a", user_agent="ok").encode(),
        ev("b")
        .encode()
        .replace(b'"principal"', f'"user_agent": "{_SURROGATE_UA}", "principal"'.encode()),
        ev("c", user_agent="caf").encode().replace(b'"caf"', b'"caf\xe9"'),
        b'{"timestamp": "' + TS.encode() + b'", "principal": "d", "user_agent": "\\ud800"',  # cut
    ]
    if layout == "careful":
        lines.insert(1, b"")  # a blank line: the careful read
    data = b"\n".join(lines) + b"\n"
    if layout == "k8s":
        data = _as_k8s_audit(data)
    name = "calls.jsonl.gz" if layout == "gzipped" else "calls.jsonl"
    path = write_bytes(tmp_path / name, gzip.compress(data) if layout == "gzipped" else data)
    report = ingest(store, path)
    [file] = report.files
    assert (file.loaded, file.rejected) == (3, 1)
    assert file.warnings == [
        "1 byte not UTF-8 read as '?', 3 lone surrogate escapes read as U+FFFD"
    ]
    agents = [
        row[0]
        for row in store.con.execute(
            "SELECT user_agent FROM events ORDER BY ts, principal"
        ).fetchall()
    ]
    assert sorted(agents) == sorted(["ok", "curl\ufffd \ufffdx \U0001f600 \\ud800", "caf?"])
    [(reason,)] = store.con.execute("SELECT reason FROM ingest_errors").fetchall()
    assert reason == "not valid JSON"


def _as_k8s_audit(data: bytes) -> bytes:
    """The generic records as Kubernetes audit events (their user agents kept as written)."""
    events = []
    for n, line in enumerate(data.split(b"\n")):
        if not line:
            continue
        head = (
            b'{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete", '
            b'"auditID": "a' + str(n).encode() + b'", "verb": "get", "requestURI": "/api/v1/pods", '
            b'"requestReceivedTimestamp": "' + TS.encode() + b'", '
            b'"user": {"username": "system:serviceaccount:ai:agent-' + str(n).encode() + b'"}, '
        )
        ua_start = line.find(b'"user_agent": ')
        ua = line[ua_start + len(b'"user_agent": ') :].split(b", ")[0].rstrip(b"}")
        events.append(head + b'"userAgent": ' + ua + (b"}" if line.endswith(b"}") else b""))
    return b"\n".join(events) + b"\n"


def test_utf16_file(store: Store, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "w.jsonl", (ev("a") + "\n").encode("utf-16"))
    assert "UTF-16" in _file_error(store, path)


def test_file_in_another_encoding(store: Store, tmp_path: Path) -> None:
    lines = "".join(f"{TS},café-{i},é\n" for i in range(20))
    path = write_bytes(tmp_path / "l.csv", ("timestamp,principal,x\n" + lines).encode("latin-1"))
    assert _file_error(store, path).startswith("not UTF-8 text")


def test_csv_without_header_names_no_values(store: Store, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "h.csv", f"{TS},agent-a,Bearer {TOKEN}\n{TS},b,x\n".encode())
    error = _file_error(store, path)
    assert "first row is not a header" in error
    assert TOKEN not in error and "agent-a" not in error


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("h.csv", b"timestamp,principal\n"),
        ("inv.csv", b"token_id,principal,created_at\n"),
        ("empty.json", b"[]\n"),
        ("spaced.json", b" [ ]\n"),
        ("tokens.json", b'{"tokens": []}\n'),
    ],
)
def test_an_empty_export_has_nothing_to_audit(
    cli: RunCli, tmp_path: Path, name: str, content: bytes
) -> None:
    """A quiet hour's export (a CSV header alone, `[]`) is passed over and said so: it is not
    an unreadable file, and does not fail --strict."""
    write_bytes(tmp_path / "logs" / name, content)
    write_jsonl(tmp_path / "logs" / "z.jsonl", [{"timestamp": TS, "principal": "agent-a"}])
    result = cli("scan", "logs", "--strict", "--fail-on", "never", "-f", "json", "-o", "r.json")
    assert result.code == 0, result.stderr
    [row] = [line for line in result.stderr.splitlines() if f"logs/{name}" in line]
    assert "skipped: no records (an empty export)" in row
    assert "0 files unreadable, 1 with nothing to audit" in result.stderr


def test_a_gate_on_logs_that_held_nothing_says_no_call_was_audited(
    cli: RunCli, tmp_path: Path
) -> None:
    """An export that broke (an empty file, `[]`, nothing on stdin) passed the gate with
    "no findings" and a green heading: every report now says that no call was audited, and
    --strict fails the run. An inventory alone, or an empty log beside a log that loaded,
    is a run that audited what it was given."""
    write_bytes(tmp_path / "empty.jsonl", b"")
    write_bytes(tmp_path / "none.json", b"[]\n")
    write_csv(tmp_path / "inv.csv", ["token_id", "principal"], [["k1", "svc-a"]])
    write_jsonl(tmp_path / "z.jsonl", [{"timestamp": TS, "principal": "agent-a"}])
    note = "no call audited: 2 inputs held nothing (empty.jsonl, none.json)"
    shown = cli("scan", "empty.jsonl", "none.json", "inv.csv", "-f", "json", "-o", "r.json")
    assert shown.code == 0 and note in shown.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["inputs_held_nothing"] == ["empty.jsonl", "none.json"]
    markdown = cli("scan", "empty.jsonl", "none.json", "-f", "markdown")
    assert markdown.stdout.startswith("## ⚠️ m2maudit: no findings") and note in markdown.stdout
    junit = cli("scan", "empty.jsonl", "none.json", "-f", "junit")
    assert f'<skipped message="{note}"' in junit.stdout
    strict = cli("scan", "empty.jsonl", "none.json", "inv.csv", "--strict")
    assert strict.code == 2 and f"error: --strict: {note}" in strict.stderr
    stdin = cli("scan", "-", "--strict", input=b"")
    assert stdin.code == 2 and "no call audited: 1 input held nothing (<stdin>)" in stdin.stderr
    for audited in (["inv.csv"], ["empty.jsonl", "z.jsonl"]):
        passed = cli("scan", *audited, "--strict", "--fail-on", "never")
        assert passed.code == 0 and "no call audited" not in passed.stderr + passed.stdout


def test_a_readme_among_the_logs_has_nothing_to_audit(cli: RunCli, tmp_path: Path) -> None:
    """A log bucket's README, found by the directory's walk, was an unreadable file that
    failed --strict; named by its own path it still is, and other text still is."""
    # A badge first: a line that starts like JSON, and is none.
    readme = b"[![Build](https://ci.example/badge.svg)](https://ci.example)\n# Audit logs\n"
    write_bytes(tmp_path / "logs" / "README.md", readme)
    write_bytes(tmp_path / "logs" / "NOTES.rst", "Journaux d'audit, gardés\n".encode("latin-1"))
    write_bytes(tmp_path / "logs" / "LICENSE", b"MIT License\n\nCopyright 2026\n")
    write_jsonl(tmp_path / "logs" / "z.jsonl", [{"timestamp": TS, "principal": "agent-a"}])
    result = cli("scan", "logs", "--strict", "--fail-on", "never", "-f", "json", "-o", "r.json")
    assert result.code == 0, result.stderr
    assert "skipped: documentation, not a log" in result.stderr
    assert "0 files unreadable, 3 with nothing to audit" in result.stderr
    named = cli("scan", "logs/README.md", "--fail-on", "never")
    assert named.code == 2 and "logs/README.md: line 1: not valid JSON" in named.stderr
    write_bytes(tmp_path / "logs" / "notes.txt", b"just some text\n")
    other = cli("scan", "logs", "--strict", "--fail-on", "never")
    assert other.code == 2 and "1 file unreadable, 3 with nothing to audit" in other.stderr


@pytest.mark.parametrize(
    "when",
    [
        "infinity",
        "-infinity",
        "epoch",
        "10000-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "9999-12-31T23:30:00-01:00",  # in range as written, past 9999 in UTC
        "0001-01-01T00:30:00+01:00",
    ],
)
def test_a_time_no_report_can_write_is_a_rejected_record(
    cli: RunCli, tmp_path: Path, when: str
) -> None:
    """From a trial: DuckDB reads `infinity` and years past 9999 as times; the record
    loaded, and the scan then stopped with "internal error" (a `--db` store for good)."""
    write_jsonl(
        tmp_path / "log.jsonl",
        [
            {"timestamp": TS, "principal": "agent-a"},
            {"timestamp": when, "principal": "agent-b"},
        ],
    )
    inventory = tmp_path / "inv.csv"
    inventory.write_text(
        f"token_id,principal,created_at,expires_at\nk1,agent-a,2024-01-01,{when}\n"
        "k2,agent-a,2024-01-01,9999-12-31\n"  # 'never', as some exports write it
    )
    result = cli("scan", "log.jsonl", "--inventory", "inv.csv", "--fail-on", "never")
    assert result.code == 0, result.stderr
    assert f'log.jsonl:2: unparseable "timestamp": "{when}"' in result.stderr
    assert f'inv.csv:2: unparseable expires_at: "{when}"' in result.stderr
    assert "4 records read, 2 loaded, 0 duplicates skipped, 2 rejected" in result.stderr


def test_a_csv_too_wide_for_duckdb_is_one_unreadable_file(cli: RunCli, tmp_path: Path) -> None:
    """From a trial: DuckDB's CSV reader killed the process (a floating-point exception,
    exit 136, no message) on a header of about 8 190 columns."""
    columns = ["timestamp", "principal", "token_id", *(f"c{i}" for i in range(9_000))]
    row = [TS, "agent-a", "t1", *(["v"] * 9_000)]
    (tmp_path / "wide.csv").write_text(",".join(columns) + "\n" + ",".join(row) + "\n")
    write_jsonl(tmp_path / "log.jsonl", [{"timestamp": TS, "principal": "agent-b"}])
    result = cli("scan", "wide.csv", "log.jsonl", "--fail-on", "never")
    assert result.code == 0, result.stderr
    assert "wide.csv: a CSV header of 9003 columns, over the limit of 4096" in result.stderr
    assert "1 record read, 1 loaded" in result.stderr


@pytest.mark.parametrize(
    ("first", "reason"),
    [
        ("# exported by log-shipper v2", "not valid JSON"),
        ("42", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        ("}", "not valid JSON"),
    ],
)
def test_a_first_line_that_is_no_record_loses_only_itself(
    store: Store, tmp_path: Path, first: str, reason: str
) -> None:
    """From a trial: the same line in the middle of a JSON-lines file is one rejected line;
    first, it made the whole file "unrecognised format" (`--format-hint` did not help)."""
    path = write_jsonl(tmp_path / "log.jsonl", [first, *(ev(f"agent-{n}") for n in range(3))])
    report = ingest(store, path)
    assert report.files[0].error is None
    assert loaded_lines(store) == [2, 3, 4]
    assert rejected(store) == [(1, reason)]


def test_a_named_pipe_is_read_as_standard_input_is(store: Store, tmp_path: Path) -> None:
    """From a trial: `scan <(zcat log.gz)` or a named pipe was "no such file or directory"
    (a pipe is not a regular file). It is copied to a spool, as standard input is, and the
    spool is removed."""
    pipe = tmp_path / "log.pipe"
    os.mkfifo(pipe)
    lines = "".join(ev(f"agent-{n}") + "\n" for n in range(3))

    def write() -> None:
        with pipe.open("w") as writer:
            writer.write(lines)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    spools_before = set(Path(tempfile.gettempdir()).glob("m2maudit-stdin-*"))
    report = ingest(store, pipe)
    writer.join(timeout=10)
    assert [(f.source, f.loaded) for f in report.files] == [(str(pipe), 3)]
    assert set(Path(tempfile.gettempdir()).glob("m2maudit-stdin-*")) == spools_before


def test_unrecognised_format_names_the_fields_it_saw(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "other.jsonl", [{"when": TS, "who": "x"}])
    error = _file_error(store, path)
    assert error.startswith("unrecognised format (JSON objects with when, who;")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("calls.csv", b"time,principal,token_id,action\n" + TS.encode() + b",agent-a,k1,read\n"),
        ("calls.jsonl", json.dumps({"time": TS, "token_id": "k1", "action": "read"}).encode()),
        ("calls.json", json.dumps([{"ts": TS, "client_id": "c", "trace_id": "t"}]).encode()),
    ],
)
def test_a_log_without_its_time_field_is_no_inventory(
    store: Store, tmp_path: Path, name: str, content: bytes
) -> None:
    """From a trial: a log whose time column was `time` was loaded as a token inventory, its
    calls stored as credentials that "never expire"."""
    error = _file_error(store, write_bytes(tmp_path / name, content))
    assert error.startswith("unrecognised format (")
    assert error.endswith(
        "as an access log it lacks its time field 'timestamp': name yours in the config "
        "(mapping: {timestamp: <your field>})"
    )
    assert store.scalar("SELECT count(*) FROM credentials") == 0


def test_a_log_whose_call_fields_are_mapped_is_no_inventory(tmp_path: Path) -> None:
    """From a review: the call fields were judged by their own names only."""
    store = Store.open()
    path = write_bytes(
        tmp_path / "c.csv", b"time,principal,token_id,verb\n" + TS.encode() + b",a,k1,read\n"
    )
    [file] = ingest_paths(store, [str(path)], [], Config(mapping={"action": "verb"})).files
    assert file.error is not None and file.error.startswith("unrecognised format (")
    assert store.scalar("SELECT count(*) FROM credentials") == 0


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("app.log", b"2024-05-01 INFO started\n2024-05-01 INFO ok\n"),
        ("sys.log", b"Nov 29 12:00:00 host sshd[1]: Accepted publickey for root\n"),
        ("x.xml", b'<?xml version="1.0"?><a><b>1</b></a>\n'),
    ],
)
def test_plain_text_is_unrecognised(
    store: Store, tmp_path: Path, name: str, content: bytes
) -> None:
    """Said as what it is: not 'YAML with no fields' (a syslog line parses as a YAML string)."""
    error = _file_error(store, write_bytes(tmp_path / name, content))
    assert error == (
        "unrecognised format (text that is not JSON, CSV or YAML records; see `m2maudit formats`)"
    )


def test_broken_json_array_is_one_file_error(store: Store, tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "a.json", f'[{ev("a")}, {{"timestamp": "x", '.encode())
    error = _file_error(store, path)
    assert error and "\n" not in error


def test_missing_file_and_empty_directory_raise(store: Store, tmp_path: Path) -> None:
    from m2maudit.errors import InputError

    with pytest.raises(InputError, match="no such file or directory"):
        ingest(store, tmp_path / "nope.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: directory holds no files"):
        ingest(store, tmp_path / "empty")
    with pytest.raises(InputError, match="no file matches"):
        ingest(store, f"{tmp_path}/*.nothing")


# --- one transaction a file -------------------------------------------------------------


def test_failure_mid_file_leaves_no_rows_of_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "s.duckdb"
    first = write_jsonl(tmp_path / "1.jsonl", [ev("one")])
    second = write_jsonl(tmp_path / "2.jsonl", [ev("two-a"), ev("two-b"), "broken"])
    third = write_jsonl(tmp_path / "3.jsonl", [ev("three")])
    real = ingest_module._record_file

    def fail_on_second(store: Store, identity: str, report: Any) -> None:
        if report.source == str(second):  # events and errors are inserted by now
            raise duckdb.IOException("IO Error: No space left on device")
        real(store, identity, report)

    monkeypatch.setattr(ingest_module, "_record_file", fail_on_second)
    # One file at a time (small files of a format are loaded in batches: see test_ingest_batch).
    monkeypatch.setattr(ingest_module, "SMALL_FILE_BYTES", -1)
    store = Store.open(db)
    report = ingest(store, first, second, third)
    store.close()

    assert [f.error for f in report.files] == [
        None,
        "could not load: IO Error: No space left on device",
        None,
    ]
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT principal FROM events ORDER BY 1").fetchall() == [
            ("one",),
            ("three",),
        ]
        assert con.execute("SELECT source_file, source_line FROM ingest_errors").fetchall() == [
            (str(second), 0)
        ]
        assert con.execute("SELECT source_file FROM ingested_files ORDER BY 1").fetchall() == [
            (str(first),),
            (str(third),),
        ]
    finally:
        con.close()


def test_interrupt_mid_file_rolls_back_and_propagates(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ingest_module, "_record_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(store, write_jsonl(tmp_path / "i.jsonl", [ev("a")]))
    assert store.con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]


def test_a_json_array_whose_first_record_is_broken_names_its_line(
    store: Store, tmp_path: Path
) -> None:
    """Not 'an array of objects with no fields': the first record is not JSON at all."""
    body = '[\n  {"timestamp": "2026-11-20T10:00:00Z", "x": oops},\n  {"a": 1}\n]\n'
    [file] = ingest(store, write_bytes(tmp_path / "log.json", body.encode())).files
    assert file.error == "line 2: not valid JSON; cannot tell the format"


@pytest.mark.parametrize("cut", [False, True])
def test_a_broken_json_array_log_names_the_line_of_its_error(
    store: Store, tmp_path: Path, cut: bool
) -> None:
    """In a JSON array DuckDB counts the error's byte within the record, not the file: the
    line comes from the first JSON error in the file itself."""
    records = [{"timestamp": TS, "principal": f"agent-{n}", "action": "GET"} for n in range(300)]
    text = json.dumps(records, indent=2)
    if cut:
        broken = text[: len(text) * 2 // 3]
        line = broken.count("\n") + 1
    else:
        at = text.index('"principal": "agent-200"')
        broken = (
            text[:at] + '"principal" "agent-200"' + text[at + len('"principal": "agent-200"') :]
        )
        line = broken[:at].count("\n") + 1
    [file] = ingest(store, write_bytes(tmp_path / "log.json", broken.encode())).files
    assert file.error is not None and file.error.startswith(f"line {line}: not valid JSON (")
    assert "Malformed" not in file.error and "byte" not in file.error


def test_invalid_yaml_inventory_names_its_line(store: Store, tmp_path: Path) -> None:
    body = "tokens:\n  - token_id: t1\n    principal: agent-a\n  - token_id: [unclosed\n"
    path = write_bytes(tmp_path / "inv.yaml", body.encode())
    [file] = ingest_paths(store, [], [str(path)], Config()).files
    assert file.error is not None and file.error.startswith("line 5: invalid YAML: ")
    assert rejected(store) == [(0, file.error)]


def test_an_impossible_yaml_date_in_an_inventory_is_a_rejected_record(
    store: Store, tmp_path: Path
) -> None:
    """YAML would make `2026-02-30` a Python error; it is one record's unparseable time."""
    body = "tokens:\n  - token_id: t1\n    created_at: 2026-02-30\n  - token_id: t2\n"
    path = write_bytes(tmp_path / "inv.yaml", body.encode())
    [file] = ingest_paths(store, [], [str(path)], Config()).files
    assert (file.loaded, file.error) == (1, None)
    assert rejected(store) == [(2, 'unparseable created_at: "2026-02-30"')]


def test_a_key_given_twice_in_a_yaml_record_rejects_that_record(
    store: Store, tmp_path: Path
) -> None:
    """YAML keeps the last of two keys silently; which principal is meant is unknown."""
    body = "tokens:\n  - token_id: t1\n    principal: a\n    principal: b\n  - token_id: t2\n"
    path = write_bytes(tmp_path / "inv.yaml", body.encode())
    [file] = ingest_paths(store, [], [str(path)], Config()).files
    assert (file.loaded, file.error) == (1, None)
    assert rejected(store) == [
        (2, "invalid YAML: the key 'principal' is given twice; only one may be")
    ]


def test_invalid_yaml_given_as_a_log_path_names_its_line(store: Store, tmp_path: Path) -> None:
    """Not only with --inventory: a .yaml file that does not parse says where."""
    body = "tokens:\n  - token_id: t1\n  - token_id: [unclosed\n"
    [file] = ingest(store, write_bytes(tmp_path / "inv.yaml", body.encode())).files
    assert file.error is not None and file.error.startswith("line 3: invalid YAML: ")


def test_yaml_alias_bomb_is_rejected_quickly(store: Store, tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for depth in range(1, 9):
        prev = chr(ord("a") + depth - 1)
        name = chr(ord("a") + depth)
        levels.append(
            f"{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, "
            f"*{prev}, *{prev}, *{prev}, *{prev}]"
        )
    body = (
        "tokens:\n  - token_id: bomb\n    status: active\n    extra:\n"
        + "".join(f"      {line}\n" for line in levels)
        + "  - token_id: fine\n    status: active\n"
    )
    started = time.perf_counter()
    ingest(store, write_bytes(tmp_path / "bomb.yaml", body.encode()))
    assert time.perf_counter() - started < 5
    assert store.con.execute("SELECT credential_id FROM credentials").fetchall() == [("fine",)]
    [(line, reason)] = rejected(store)
    assert line == 2 and "too large" in reason


# --- end to end: one clear line on stderr -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bin.jsonl", b"\x00\x01\x02" * 100, "not a text file (binary content)"),
        (
            "trunc.jsonl.gz",
            gzip.compress(b'{"timestamp": 1}\n' * 500)[:40],
            "truncated or corrupt gzip data",
        ),
        ("nohead.csv", f"{TS},agent-a,Bearer {TOKEN}\n".encode(), "first row is not a header"),
        ("other.json", b'{"hello": "world"}\n', "unrecognised format"),
    ],
)
def test_cli_unreadable_file_is_one_line_and_exit_2(
    run_cli: RunCli, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    write_bytes(tmp_path / name, content)
    result = run_cli("ingest", name, "--db", "s.duckdb")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    [line] = result.error_lines()
    assert line.startswith(f"m2maudit: error: {name}: ")
    assert message in line
    assert TOKEN not in result.stderr
    assert not (tmp_path / "s.duckdb").exists()


def test_cli_directory_with_nothing_recognisable(run_cli: RunCli, tmp_path: Path) -> None:
    write_bytes(tmp_path / "junk" / "notes.txt", b"hello\n")
    write_bytes(tmp_path / "junk" / "data.bin", b"\x00\x00")
    result = run_cli("scan", "junk")
    assert result.code == 2
    assert "Traceback" not in result.stderr
    [line] = result.error_lines()
    assert (
        line == "m2maudit: error: nothing could be read from junk: 2 of 2 files unreadable, "
        "0 records rejected"
    )
    assert "unreadable: junk/data.bin: not a text file (binary content)" in result.stderr


def test_cli_missing_path(cli: RunCli) -> None:
    result = cli("scan", "missing.jsonl")
    assert result.code == 2
    assert result.error_lines() == ["m2maudit: error: missing.jsonl: no such file or directory"]


def test_cli_fifty_megabyte_line_without_newline(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("y" * (50 * 1024 * 1024))
    result = run_cli("scan", "one.txt")
    assert result.code == 2 and "Traceback" not in result.stderr
    [line] = result.error_lines()
    assert line.startswith("m2maudit: error: one.txt: unrecognised format")
    assert len(line) < 300


def test_cli_fifty_megabyte_json_record_alone(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "huge.jsonl").write_text(ev("huge", pad="x" * (50 * 1024 * 1024)) + "\n")
    result = run_cli("scan", "huge.jsonl")
    assert result.code == 2 and "Traceback" not in result.stderr
    assert result.error_lines() == [
        "m2maudit: error: huge.jsonl: the first JSON record is not valid JSON or is over 8 MiB; "
        "cannot tell the format"
    ]


def test_over_long_first_line_in_a_gzip_file(store: Store, tmp_path: Path) -> None:
    text = "\n".join([ev("wide", pad="x" * (20 * 1024 * 1024)), ev("second"), ev("third")])
    path = write_bytes(tmp_path / "w.jsonl.gz", text.encode(), compress=True)
    started = time.perf_counter()
    ingest(store, path)
    assert time.perf_counter() - started < 5
    assert loaded_lines(store) == [2, 3]
    assert [line for line, _ in rejected(store)] == [1]


def test_a_line_duckdb_drops_at_its_limit_is_caught_and_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB 2.0's line reader drops the line after a newline that sits at a multiple of its
    line limit. Here the limit is 1 MiB and byte 1 MiB is a newline: the count of the
    file's lines shows one short, and a second read with a smaller limit gets them all."""
    from m2maudit.config import Config
    from m2maudit.ingest import ingest_paths
    from m2maudit.sources import staging
    from m2maudit.store import Store

    limit = 1 << 20
    monkeypatch.setattr(staging, "reader_limit", lambda con: limit)
    reads: list[int] = []
    real = staging._read_lines_once

    def spy(ctx: Any, line_limit: int) -> int:
        reads.append(line_limit)
        return real(ctx, line_limit)

    monkeypatch.setattr(staging, "_read_lines_once", spy)

    def record(n: int, pad: int = 0) -> str:
        return json.dumps({"timestamp": "2026-11-20T10:00:00Z", "principal": f"agent-{n}",
                           "action": "x" * pad})  # fmt: skip

    lines, size = ["", record(0)], 2 + len(record(0))  # a blank line: the careful read
    while size < limit - 200:
        lines.append(record(len(lines)))
        size += len(lines[-1]) + 1
    last = record(len(lines))
    lines.append(record(len(lines), pad=limit - size - len(last)))  # its newline: byte limit
    size += len(lines[-1]) + 1
    assert size == limit + 1
    while size < 3 * limit:
        lines.append(record(len(lines)))
        size += len(lines[-1]) + 1
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = Store.open()
    report = ingest_paths(store, [str(path)], [], Config()).files[0]
    assert report.error is None and report.loaded == len(lines) - 1
    assert len(reads) == 2 and reads[1] < reads[0]  # read again, with a smaller limit
    numbered = store.con.execute("SELECT max(source_line), count(*) FROM events").fetchone()
    assert numbered == (len(lines), len(lines) - 1)


def test_a_document_over_the_readers_limit_says_how_to_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from m2maudit.config import Config
    from m2maudit.ingest import ingest_paths
    from m2maudit.sources import staging
    from m2maudit.store import Store

    monkeypatch.setattr(staging, "reader_limit", lambda con: 1 << 20)
    event = {
        "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "userIdentity": {"type": "IAMUser"},
        "pad": "x" * 4096,
    }
    # Gzipped, as DuckDB enforces its limit there, and over 16 MiB, its smallest limit.
    path = tmp_path / "big.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Records": [event] * 5000}).encode()))
    report = ingest_paths(Store.open(), [str(path)], [], Config()).files[0]
    assert report.error is not None
    assert "a JSON document over the reader's limit of" in report.error
    assert "--memory-limit" in report.error


def test_an_unreadable_file_in_a_directory_does_not_stop_the_others(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file with the wrong mode, or a link to nowhere, is named; the rest is audited."""
    import builtins
    import pathlib

    from m2maudit.sources import discover

    logs = tmp_path / "logs"
    write_bytes(logs / "ok.jsonl", f'{{"timestamp": "{TS}", "principal": "agent-a"}}\n'.encode())
    write_bytes(logs / "locked.jsonl", b'{"timestamp": 1}\n')
    (logs / "dangling.jsonl").symlink_to(tmp_path / "gone.jsonl")
    real_open, real_path_open = builtins.open, pathlib.Path.open

    def refused(path: object) -> bool:
        return str(path).endswith("locked.jsonl")

    def open_(file: Any, *args: Any, **kwargs: Any) -> Any:
        if refused(file):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def path_open(self: pathlib.Path, *args: Any, **kwargs: Any) -> Any:
        if refused(self):
            raise PermissionError(13, "Permission denied", str(self))
        return real_path_open(self, *args, **kwargs)

    monkeypatch.setattr(discover, "open", open_, raising=False)
    monkeypatch.setattr(pathlib.Path, "open", path_open)
    result = cli("scan", "logs", "--fail-on", "never")
    assert result.code == 0, result.stderr
    assert "unreadable: logs/locked.jsonl: cannot read: Permission denied" in result.stderr
    assert (
        "unreadable: logs/dangling.jsonl: cannot read: No such file or directory" in result.stderr
    )
    assert "1 record read, 1 loaded" in result.stderr
    strict = cli("scan", "logs", "--fail-on", "never", "--strict")
    assert strict.code == 2 and "2 files unreadable" in strict.stderr


def test_inputs_that_all_hold_nothing_to_audit_are_a_run_with_no_findings(cli: RunCli) -> None:
    """A CI job over a quiet hour's exports passes: nothing was wrong, nothing was found. It
    says that it audited no call (a broken export looks the same); --strict fails on that."""
    write_bytes(Path("logs") / "h.csv", b"timestamp,principal\n")
    write_bytes(Path("logs") / "t.json", b'{"tokens": []}\n')
    write_bytes(Path("logs") / "rotated.log", b"")
    result = cli("scan", "logs", "-f", "json", "-o", "r.json")
    assert result.code == 0, result.stderr
    assert "0 files unreadable, 3 with nothing to audit" in result.stderr
    assert json.loads(Path("r.json").read_text())["findings"] == []
    note = "no call audited: 3 inputs held nothing (logs/h.csv, logs/rotated.log, logs/t.json)"
    assert note in result.stderr
    strict = cli("scan", "logs", "--strict", "-f", "json", "-o", "r.json")
    assert strict.code == 2 and f"error: --strict: {note}" in strict.stderr


def test_a_file_blank_for_its_whole_sample_is_not_taken_for_empty(
    store: Store, tmp_path: Path
) -> None:
    """Nothing to audit only when the whole file is blank: a record after 256 KiB of blank
    lines must not pass a --strict gate unread."""
    path = write_bytes(tmp_path / "late.jsonl", b"\n" * 300_000 + ev("a").encode() + b"\n")
    report = ingest(store, path)
    [file] = report.files
    assert file.skipped is None
    assert file.error == "its first 256 KiB are blank; cannot tell the format"


def test_a_stray_nul_byte_costs_its_line_not_the_file(store: Store, tmp_path: Path) -> None:
    """From a trial: one NUL in line 51 made the whole file "binary", losing 100 good lines
    (the same byte at line 3001 cost one line)."""
    lines = [json.dumps({"timestamp": TS, "principal": f"agent-{n}"}) for n in range(101)]
    lines[50] = lines[50][:20] + "\x00" + lines[50][20:]
    path = write_bytes(tmp_path / "nul.jsonl", ("\n".join(lines) + "\n").encode())
    report = ingest(store, path)
    assert (report.loaded, report.rejected) == (100, 1)
    assert rejected(store) == [(51, "not valid JSON")]


def test_exclude_leaves_out_stray_files_a_directory_or_a_pattern_finds(
    cli: RunCli, tmp_path: Path
) -> None:
    """A checksum list or a manifest beside the logs failed --strict as unreadable, and there
    was no way to leave it out but naming every log (a CI user's trial). `--exclude GLOB`
    matches a found file's name or its path below the directory; a file named by its own
    path is read whatever it says."""
    record = {"timestamp": TS, "principal": "agent-a"}
    write_jsonl(tmp_path / "logs" / "a.jsonl", [record])
    write_jsonl(tmp_path / "logs" / "archive" / "old.jsonl", [{**record, "principal": "b"}])
    write_bytes(tmp_path / "logs" / "SHA256SUMS", b"e3b0c442  a.jsonl\n")
    write_bytes(tmp_path / "logs" / "manifest.json", b'{"files": ["a.jsonl"]}\n')
    strict = ["--strict", "--fail-on", "never", "-f", "json", "-o", "r.json"]
    assert cli("scan", "logs", *strict).code == 2
    excluded = ["--exclude", "SHA256SUMS", "--exclude", "manifest.json", "--exclude", "archive/*"]
    result = cli("scan", "logs", *strict, *excluded)
    assert result.code == 0, result.stderr
    sources = [item["source"] for item in json.loads(Path("r.json").read_text())["inputs"]]
    assert sources == ["logs/a.jsonl"]
    pattern = cli("scan", "logs/*.json*", *strict, "--exclude", "manifest.json")
    assert pattern.code == 0, pattern.stderr
    named = cli("scan", "logs/manifest.json", "--exclude", "manifest.json", "--fail-on", "never")
    assert named.code == 2 and "unrecognised format" in named.stderr  # read: it was named
    nothing = cli("scan", "logs", "--exclude", "*")
    assert nothing.code == 2 and "logs: every file found here is left out by --exclude" in (
        nothing.stderr
    )
    ingest = cli("ingest", "logs", "--db", "s.duckdb", "--strict", *excluded)
    assert ingest.code == 0, ingest.stderr
