"""Generic access-log and token-inventory ingest: every layout, timestamps, mapping, secrets.

Library-level: files are built in `tmp_path` and loaded with `ingest_paths` into a store, then
the canonical tables are read back.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from m2maudit.config import Config, parse_config
from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.sources.base import LoadContext
from m2maudit.sources.discover import expand_inputs, sniff
from m2maudit.sources.staging import stage
from m2maudit.store import Store
from tests.conftest import write_bytes, write_csv, write_jsonl

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJhZ2VudC1vbmUiLCJjbGllbnRfaWQiOiJhZ2VudC1vbmUiLCJleHAiOjE3MTQ1NjEyMDB9."
    "QmFzZTY0U2lnbmF0dXJlT2ZUaGlzVG9rZW5Jc1VuaXF1ZTQyNDI0Mg"
)
SIGNATURE = JWT.rsplit(".", 1)[1]


def ingest(
    store: Store,
    *paths: Path | str,
    inventories: list[Path] | None = None,
    config: Config | None = None,
) -> IngestReport:
    return ingest_paths(
        store, [str(p) for p in paths], [str(p) for p in inventories or []], config or Config()
    )


def rows(store: Store, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return store.con.execute(sql, params or []).fetchall()


def event(
    principal: str = "agent-a", ts: Any = "2024-05-01T10:00:00Z", **extra: Any
) -> dict[str, Any]:
    return {"timestamp": ts, "principal": principal, **extra}


# --- access-log layouts -------------------------------------------------------------------

LOG_RECORDS = [
    event("agent-a", action="read", scopes=["repo:read", "issues:write"]),
    event("agent-b", "2024-05-01T11:00:00Z", action="write", scopes="repo:read repo:write"),
]


def _as_csv(path: Path, compress: bool = False) -> Path:
    return write_csv(
        path,
        ["timestamp", "principal", "action", "scopes"],
        [
            ["2024-05-01T10:00:00Z", "agent-a", "read", '"repo:read,issues:write"'],
            ["2024-05-01T11:00:00Z", "agent-b", "write", "repo:read repo:write"],
        ],
        compress=compress,
    )


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("layout", ["jsonl", "json_array", "csv"])
def test_log_layouts_load_the_same_events(
    store: Store, tmp_path: Path, layout: str, compress: bool
) -> None:
    suffix = ".gz" if compress else ""
    if layout == "jsonl":
        path = write_jsonl(tmp_path / f"log.jsonl{suffix}", LOG_RECORDS, compress=compress)
    elif layout == "json_array":
        data = json.dumps(LOG_RECORDS, indent=1).encode()
        path = write_bytes(tmp_path / f"log.json{suffix}", data, compress=compress)
    else:
        path = _as_csv(tmp_path / f"log.csv{suffix}", compress=compress)

    report = ingest(store, path)

    [file] = report.files
    assert (file.format, file.kind, file.error) == ("generic-log", "events", None)
    assert (file.read, file.loaded, file.rejected) == (2, 2, 0)
    assert (file.first_ts, file.last_ts) == (T0, T0.replace(hour=11))
    assert rows(
        store,
        "SELECT principal, action, scopes_used, source_file, source_line FROM events ORDER BY ts",
    ) == [
        ("agent-a", "read", ["repo:read", "issues:write"], str(path), 1 if layout != "csv" else 2),
        ("agent-b", "write", ["repo:read", "repo:write"], str(path), 2 if layout != "csv" else 3),
    ]


def test_json_array_lines_are_record_numbers(store: Store, tmp_path: Path) -> None:
    """A JSON array has no line positions from the reader: source_line is the record number."""
    path = write_bytes(
        tmp_path / "a.json",
        json.dumps([event("a"), 7, event("b", "garbage"), event("c")], indent=2).encode(),
    )
    ingest(store, path)
    assert rows(store, "SELECT principal, source_line FROM events ORDER BY 2") == [
        ("a", 1),
        ("c", 4),
    ]
    assert rows(store, "SELECT source_line, reason FROM ingest_errors ORDER BY 1") == [
        (2, "not a JSON object"),
        (3, 'unparseable "timestamp": "garbage"'),
    ]


def test_directory_is_walked_recursively_skipping_hidden(store: Store, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "logs" / "a.jsonl", [event("top")])
    write_jsonl(tmp_path / "logs" / "2024" / "05" / "b.jsonl", [event("nested")])
    write_jsonl(tmp_path / "logs" / ".git" / "c.jsonl", [event("hidden")])
    report = ingest(store, tmp_path / "logs")
    assert sorted(f.source for f in report.files) == [
        str(tmp_path / "logs" / "2024" / "05" / "b.jsonl"),
        str(tmp_path / "logs" / "a.jsonl"),
    ]
    assert rows(store, "SELECT principal FROM events ORDER BY 1") == [("nested",), ("top",)]


def test_glob_selects_matching_files(store: Store, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d" / "x.jsonl", [event("x")])
    write_jsonl(tmp_path / "d" / "sub" / "y.jsonl", [event("y")])
    write_jsonl(tmp_path / "d" / "sub" / "z.txt", [event("z")])
    ingest(store, f"{tmp_path}/d/**/*.jsonl")
    assert rows(store, "SELECT principal FROM events ORDER BY 1") == [("x",), ("y",)]


def test_stdin_is_read_and_its_spool_removed(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    data = (json.dumps(event("piped", authorization=f"Bearer {JWT}")) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    report = ingest(store, "-")
    assert [f.source for f in report.files] == ["<stdin>"]
    assert rows(store, "SELECT principal, source_file FROM events") == [("piped", "<stdin>")]
    assert list(tmp_path.glob("m2maudit-stdin-*")) == []  # the spool held a raw token


# --- timestamps -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", T0),
        ("2024-05-01T10:00:00z", T0),
        ("2024-05-01T12:00:00+02:00", T0),
        ("2024-05-01T05:00:00-05:00", T0),
        ("2024-05-01T15:30:00+05:30", T0),
        ("2024-05-01T10:00:00", T0),
        ("2024-05-01 10:00:00", T0),
        ("2024-05-01T10:00:00.250Z", T0.replace(microsecond=250000)),
        ("2024-05-01", T0.replace(hour=0)),
        (1714557600, T0),
        (1714557600123, T0.replace(microsecond=123000)),
        (1714557600.5, T0.replace(microsecond=500000)),
        ("1714557600", T0),
        ("1714557600123", T0.replace(microsecond=123000)),
    ],
)
def test_timestamps_become_utc(
    store: Store, tmp_path: Path, value: Any, expected: datetime
) -> None:
    ingest(store, write_jsonl(tmp_path / "t.jsonl", [event(ts=value)]))
    [(ts, kind)] = rows(store, "SELECT ts, typeof(ts) FROM events")
    assert kind == "TIMESTAMP WITH TIME ZONE"
    assert ts == expected
    assert ts.utcoffset().total_seconds() == 0


def test_csv_timestamps_parse_like_json_ones(store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "t.csv",
        ["timestamp", "principal"],
        [["2024-05-01T12:00:00+02:00", "a"], ["1714557600", "b"], ["1714557600123", "c"]],
    )
    ingest(store, path)
    assert rows(store, "SELECT principal, ts FROM events ORDER BY 1") == [
        ("a", T0),
        ("b", T0),
        ("c", T0.replace(microsecond=123000)),
    ]


@pytest.mark.parametrize("layout", ["jsonl", "json", "csv"])
def test_an_epoch_time_before_2000_is_rejected_not_read_as_1970(
    store: Store, tmp_path: Path, layout: str
) -> None:
    """Small numbers are counters or offsets, not times: loaded, they would be 1970."""
    values: list[Any] = [12345, "12345", 0, -5, 946684799, 946684799000, 946684800, "946684800"]
    records = [event(f"agent-{i}", value) for i, value in enumerate(values, 1)]
    if layout == "csv":
        path = write_csv(
            tmp_path / "t.csv",
            ["timestamp", "principal"],
            [[str(r["timestamp"]), r["principal"]] for r in records],
        )
    elif layout == "json":
        path = tmp_path / "t.json"
        path.write_text(json.dumps(records, indent=1))
    else:
        path = write_jsonl(tmp_path / "t.jsonl", records)
    report = ingest(store, path)
    assert (report.files[0].loaded, report.files[0].rejected) == (2, 6)
    assert rows(store, "SELECT principal, ts FROM events ORDER BY 1") == [
        ("agent-7", datetime(2000, 1, 1, tzinfo=UTC)),
        ("agent-8", datetime(2000, 1, 1, tzinfo=UTC)),
    ]
    reasons = rows(store, "SELECT DISTINCT split_part(reason, ':', 1) FROM ingest_errors")
    assert reasons == [('unparseable "timestamp"',)]


# --- field mapping ----------------------------------------------------------------------


def test_mapping_renames_fields_and_follows_dotted_paths(store: Store, tmp_path: Path) -> None:
    config = parse_config(
        {
            "mapping": {
                "timestamp": "@timestamp",
                "principal": "actor.id",
                "action": "event.action",
                "authorization": "request.headers.Authorization",
                "scopes": "$.auth.scp",
                "trace_id": '$."trace.ctx".id',
            }
        }
    )
    path = write_jsonl(
        tmp_path / "vendor.jsonl",
        [
            {
                "@timestamp": "2024-05-01T10:00:00Z",
                "actor": {"id": "bot-1"},
                "event": {"action": "repos.get"},
                "auth": {"scp": ["a", "b"]},
                "request": {"headers": {"Authorization": f"Bearer {JWT}"}},
                "trace.ctx": {"id": "tr-9"},
            },
            {"@timestamp": "2024-05-01T10:00:00Z", "actor": {"id": {"nested": "object"}}},
        ],
    )

    report = ingest(store, path, config=config)

    assert report.files[0].format == "generic-log"
    assert rows(store, "SELECT principal, action, scopes_used, trace_id, token_fp FROM events") == [
        ("bot-1", "repos.get", ["a", "b"], "tr-9", hashlib.sha256(JWT.encode()).hexdigest()[:16])
    ]
    assert rows(store, "SELECT source_line, reason FROM ingest_errors") == [
        (2, 'field "actor.id" (principal) must be text, not an object or a list')
    ]


def test_mapping_dotted_name_matches_a_flat_csv_header(store: Store, tmp_path: Path) -> None:
    config = parse_config({"mapping": {"timestamp": "event.time", "principal": "actor.id"}})
    path = write_csv(
        tmp_path / "flat.csv", ["event.time", "actor.id"], [["2024-05-01T10:00:00Z", "bot-2"]]
    )
    ingest(store, path, config=config)
    assert rows(store, "SELECT principal, ts FROM events") == [("bot-2", T0)]


@pytest.mark.parametrize("column", ["ordinality", "record_number", "_m2maudit_line", "c1"])
def test_a_csv_header_named_like_a_staging_column_is_read(
    store: Store, tmp_path: Path, column: str
) -> None:
    """Staging numbers CSV rows in columns of its own; a header may use any name at all."""
    path = write_csv(
        tmp_path / "odd.csv",
        ["timestamp", column, "principal", "trace_id"],
        [["2024-05-01T10:00:00Z", "7", "bot-2", "t-1"], ["2024-05-01T10:00:00Z", "", "bot-3", ""]],
    )
    report = ingest(store, path)
    assert report.files[0].error is None and report.rejected == 0
    assert rows(store, "SELECT principal, trace_id, source_line FROM events ORDER BY 3") == [
        ("bot-2", "t-1", 2),
        ("bot-3", None, 3),
    ]


def test_without_mapping_a_vendor_layout_is_not_claimed(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "vendor.jsonl",
        [{"@timestamp": "2024-05-01T10:00:00Z", "actor": {"id": "bot-1"}}],
    )
    report = ingest(store, path)
    assert report.files[0].error is not None
    assert "unrecognised format" in report.files[0].error


# --- the raw token is never stored ------------------------------------------------------

MARKER = "agent-marker-7f3c9e1b5d2a4068b1c2d3e4f5a6b7c8"


def _token_inputs(tmp_path: Path) -> list[Path]:
    bearer = f"Bearer {JWT}"
    return [
        write_jsonl(
            tmp_path / "in" / "a.jsonl",
            [
                event(MARKER, authorization=bearer, resource="/repos"),
                event("agent-b", authorization=JWT),
                event("agent-c", "not-a-time", authorization=bearer),  # rejected, token inside
                '{"timestamp": "2024-05-01T10:00:00Z", "authorization": "' + bearer + '", broken',
            ],
        ),
        write_csv(
            tmp_path / "in" / "b.csv",
            ["timestamp", "principal", "authorization"],
            [
                ["2024-05-01T10:00:00Z", "agent-d", bearer],
                f"2024-05-01T10:00:00Z,agent-e,{bearer},extra-column",
            ],
        ),
    ]


def test_raw_token_appears_in_no_table_and_not_in_the_db_file(tmp_path: Path) -> None:
    db = tmp_path / "store.duckdb"
    store = Store.open(db)
    report = ingest(store, *_token_inputs(tmp_path))
    store.close()
    assert report.loaded == 3 and report.rejected == 3

    data = b"".join(p.read_bytes() for p in tmp_path.glob("store.duckdb*"))
    assert MARKER.encode() in data  # the scan can see stored text: the check below can fail
    assert SIGNATURE.encode() not in data
    assert JWT[:40].encode() not in data

    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type LIKE 'VARCHAR%' OR data_type = 'JSON'"
        ).fetchall()
        assert len(columns) > 40
        for table, column in columns:
            hits = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE CAST("{column}" AS VARCHAR) LIKE ?',
                [f"%{SIGNATURE[:20]}%"],
            ).fetchall()
            assert hits == [(0,)], f"{table}.{column} holds the raw token"
        fps = con.execute("SELECT DISTINCT token_fp FROM events").fetchall()
    finally:
        con.close()
    assert fps == [(hashlib.sha256(JWT.encode()).hexdigest()[:16],)]


@pytest.mark.parametrize("fail_at", [None, 2])
def test_no_staging_table_outlives_its_file(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int | None
) -> None:
    """Staging holds raw lines, tokens included: none is left after a file, loaded or failed
    mid-way (the file's transaction rolls its temp tables back)."""
    from m2maudit.errors import InputError
    from m2maudit.sources import staging

    real, calls = staging._renumber, []

    def renumber(*args: Any) -> None:
        calls.append(args)
        if len(calls) == fail_at:
            raise InputError("x", "failed mid-way")
        real(*args)

    monkeypatch.setattr(staging, "_renumber", renumber)
    report = ingest(store, _token_inputs(tmp_path)[1])  # the CSV: most staging steps
    assert (report.files[0].error is None) == (fail_at is None)
    temp = rows(
        store, "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'temp'"
    )
    assert temp == []


def test_secret_in_another_field_is_reported_not_stored(store: Store, tmp_path: Path) -> None:
    secret = "Zx9Qw8Er7Ty6Ui5Op4As3Df2"
    ingest(
        store,
        write_jsonl(
            tmp_path / "leak.jsonl",
            [
                event(resource=f"/api/items?access_token={secret}&page=2"),
                event("clean", resource="/api/items?page=3"),
            ],
        ),
    )
    assert rows(
        store,
        "SELECT principal, resource, leaked_secret, leaked_secret_fp IS NOT NULL "
        "FROM events ORDER BY 1",
    ) == [
        ("agent-a", "/api/items?[redacted]&page=2", "password_or_key", True),
        ("clean", "/api/items?page=3", None, False),
    ]


def test_credential_falls_back_to_the_token_fingerprint(store: Store, tmp_path: Path) -> None:
    ingest(
        store,
        write_jsonl(
            tmp_path / "c.jsonl",
            [
                {"timestamp": "2024-05-01T10:00:00Z", "authorization": f"bearer  {JWT} "},
                {
                    "timestamp": "2024-05-01T10:00:00Z",
                    "token_id": "tok-1",
                    "authorization": "opaque-x",
                },
            ],
        ),
    )
    fp = hashlib.sha256(JWT.encode()).hexdigest()[:16]
    assert rows(
        store,
        "SELECT principal, credential_id, credential_type, token_fp FROM events "
        "ORDER BY credential_id",
    ) == [
        (None, fp, "jwt", fp),
        (None, "tok-1", "bearer", hashlib.sha256(b"opaque-x").hexdigest()[:16]),
    ]


# --- token inventory --------------------------------------------------------------------

INVENTORY: list[dict[str, Any]] = [
    {
        "token_id": "tok-1",
        "type": "PAT",
        "principal": "ci-bot",
        "owner": "alice@example.com",
        "scopes": "repo:read repo:write",
        "created_at": "2024-01-01",
        "expires_at": None,
        "status": "Active",
    },
    {
        "token_id": "tok-2",
        "type": "oauth_client",
        "principal": "agent-x",
        "scopes": "admin,repo:read",
        "created_at": "2024-01-02T00:00:00+05:00",
        "last_rotated_at": 1714557600,
        "status": "revoked",
        "revoked_at": "2024-05-01T10:00:00Z",
        "principal_status": "decommissioned",
    },
]
EXPECTED_INVENTORY = [
    (
        "tok-1",
        "pat",
        "ci-bot",
        ["repo:read", "repo:write"],
        datetime(2024, 1, 1, tzinfo=UTC),
        None,
        "active",
        "active",
    ),
    (
        "tok-2",
        "oauth_client",
        "agent-x",
        ["admin", "repo:read"],
        datetime(2024, 1, 1, 19, tzinfo=UTC),
        T0,
        "revoked",
        "decommissioned",
    ),
]


def _inventory_file(tmp_path: Path, layout: str) -> Path:
    if layout == "csv":
        header = [
            "token_id",
            "type",
            "principal",
            "owner",
            "scopes",
            "created_at",
            "last_rotated_at",
            "status",
            "revoked_at",
            "principal_status",
        ]
        lines = [
            [json.dumps(str(r.get(k) if r.get(k) is not None else "")) for k in header]
            for r in INVENTORY
        ]
        return write_csv(tmp_path / "inv.csv", header, lines)
    if layout == "json":
        return write_bytes(tmp_path / "inv.json", json.dumps(INVENTORY, indent=2).encode())
    if layout.startswith("json under "):  # `{"tokens": [...]}`, as YAML's `tokens:` list
        wrapped = {layout.removeprefix("json under "): INVENTORY, "exported_at": "2024-05-02"}
        return write_bytes(tmp_path / "inv.json", json.dumps(wrapped, indent=2).encode())
    if layout == "jsonl":
        return write_jsonl(tmp_path / "inv.jsonl", INVENTORY)
    import yaml

    return write_bytes(tmp_path / "inv.yaml", yaml.safe_dump({"tokens": INVENTORY}).encode())


@pytest.mark.parametrize(
    "layout", ["csv", "json", "json under tokens", "json under credentials", "jsonl", "yaml"]
)
def test_inventory_layouts_load_the_same_credentials(
    store: Store, tmp_path: Path, layout: str
) -> None:
    report = ingest(store, _inventory_file(tmp_path, layout))
    [file] = report.files
    assert (file.format, file.kind, file.loaded, file.rejected) == (
        "generic-inventory",
        "inventory",
        2,
        0,
    )
    got = rows(
        store,
        "SELECT credential_id, type, principal, scopes, created_at, "
        "CASE WHEN credential_id = 'tok-2' THEN revoked_at END, status, "
        "principal_status FROM credentials ORDER BY 1",
    )
    assert got == EXPECTED_INVENTORY
    assert rows(store, "SELECT DISTINCT typeof(scopes) FROM credentials") == [("VARCHAR[]",)]


def test_yaml_inventory_lines_come_from_the_yaml(store: Store, tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path / "inv.yml",
        (
            b"# hand-kept\n"
            b"credentials:\n"
            b"  - token_id: a\n"
            b"    scopes: [x, y]\n"
            b"  - just a string\n"
            b"\n"
            b"  - token_id: b\n"
            b"    created_at: 2024-01-01\n"
        ),
    )
    ingest(store, path)
    assert rows(store, "SELECT credential_id, scopes, source_line FROM credentials ORDER BY 1") == [
        ("a", ["x", "y"], 3),
        ("b", None, 7),
    ]
    assert rows(store, "SELECT source_line, reason FROM ingest_errors") == [(5, "not a mapping")]


def test_yaml_inventory_times_in_every_form_yaml_allows(store: Store, tmp_path: Path) -> None:
    """YAML's own time forms (a space before the offset, as Ruby writes them) still load."""
    path = write_bytes(
        tmp_path / "inv.yaml",
        (
            b"- {token_id: a, created_at: 2025-09-01 10:00:00.000000000 +02:00}\n"
            b"- {token_id: b, created_at: 2025-09-01}\n"
            b"- {token_id: c, created_at: 2025-09-01t10:00:00z}\n"
        ),
    )
    ingest(store, path)
    created = "strftime(created_at, '%Y-%m-%dT%H:%M:%SZ')"
    assert rows(store, f"SELECT credential_id, {created} FROM credentials ORDER BY 1") == [
        ("a", "2025-09-01T08:00:00Z"),
        ("b", "2025-09-01T00:00:00Z"),
        ("c", "2025-09-01T10:00:00Z"),
    ]


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["a", "b"], ["a", "b"]),
        ("a b", ["a", "b"]),
        ("a,b", ["a", "b"]),
        ("a, b  c", ["a", "b", "c"]),
        ([], []),
        ("", None),  # as an empty CSV cell: not stated
        (None, None),
    ],
)
def test_inventory_scopes_become_a_list(
    store: Store, tmp_path: Path, scopes: Any, expected: list[str] | None
) -> None:
    ingest(store, write_jsonl(tmp_path / "s.jsonl", [{"token_id": "t", "scopes": scopes}]))
    assert rows(store, "SELECT scopes FROM credentials") == [(expected,)]


def test_an_inventory_time_of_zero_means_none_not_1970(store: Store, tmp_path: Path) -> None:
    """Exports write 0 for "never expires" or "never used"; other small numbers are errors."""
    path = write_csv(
        tmp_path / "inv.csv",
        ["token_id", "principal", "expires_at", "last_used_at", "revoked_at"],
        [["k1", "svc-a", "0", "0", ""], ["k2", "svc-b", "12345", "", ""]],
    )
    report = ingest(store, path)
    assert (report.files[0].loaded, report.files[0].rejected) == (1, 1)
    assert rows(store, "SELECT credential_id, expires_at, last_used_at FROM credentials") == [
        ("k1", None, None)
    ]
    assert rows(store, "SELECT reason FROM ingest_errors") == [('unparseable expires_at: "12345"',)]


def test_an_inventory_of_ids_alone_is_a_one_column_csv(store: Store, tmp_path: Path) -> None:
    """From a trial: `token_id` and its ids, one a line, had no delimiter to show it was
    CSV: "cannot tell how records are laid out", even with --inventory."""
    path = tmp_path / "ids.csv"
    path.write_text("token_id\nkey-0\nkey-1\n")
    report = ingest(store, inventories=[path])
    assert (report.files[0].format, report.files[0].loaded) == ("generic-inventory", 2)
    assert rows(store, "SELECT credential_id FROM credentials ORDER BY 1") == [
        ("key-0",),
        ("key-1",),
    ]


@pytest.mark.parametrize("layout", ["jsonl", "csv"])
def test_a_blank_inventory_time_means_none(store: Store, tmp_path: Path, layout: str) -> None:
    """From a trial: `"expires_at": ""` in a JSON inventory, or a CSV cell of a space (a
    header written `a, b`), rejected the credential; an empty CSV cell means not set."""
    records = [
        {"token_id": "k1", "principal": "svc-a", "created_at": "2025-09-01", "expires_at": ""},
        {"token_id": "k2", "principal": "svc-b", "created_at": "2025-09-01", "expires_at": " "},
    ]
    if layout == "jsonl":
        path = write_jsonl(tmp_path / "inv.jsonl", records)
    else:
        path = write_csv(
            tmp_path / "inv.csv", list(records[0]), [list(r.values()) for r in records]
        )
    report = ingest(store, inventories=[path])
    assert (report.files[0].loaded, report.files[0].rejected) == (2, 0)
    assert rows(store, "SELECT credential_id, expires_at FROM credentials ORDER BY 1") == [
        ("k1", None),
        ("k2", None),
    ]


def test_a_word_for_no_time_in_an_inventory_means_none(store: Store, tmp_path: Path) -> None:
    """From a rules review: `last_used_at` of `never` (or `N/A`, `None`, `-`) rejected the
    whole row, so a two-year-old key was in no inventory rule and a false M2M503 besides.
    A time that is no word for none is still rejected."""
    words = ["never", "N/A", "None", "null", "-", "Not set"]
    records = [[f"k{n}", "svc-a", "2025-01-01", word, word.upper()] for n, word in enumerate(words)]
    path = write_csv(
        tmp_path / "inv.csv",
        ["token_id", "principal", "created_at", "last_used_at", "expires_at"],
        [*records, ["k-bad", "svc-a", "2025-01-01", "soon", ""]],
    )
    report = ingest(store, inventories=[path])
    assert (report.files[0].loaded, report.files[0].rejected) == (len(words), 1)
    times = rows(store, "SELECT DISTINCT last_used_at, expires_at FROM credentials")
    assert times == [(None, None)]
    assert rows(store, "SELECT reason FROM ingest_errors") == [
        ('unparseable last_used_at: "soon"',)
    ]


def test_the_status_words_exports_write_are_read(store: Store, tmp_path: Path) -> None:
    """From a trial: AWS's `Inactive` access keys, and `enabled` or `expired`, rejected the
    whole row. An expired credential is revoked from its expiry."""
    path = write_csv(
        tmp_path / "inv.csv",
        ["token_id", "principal", "created_at", "expires_at", "revoked_at", "status"],
        [
            ["k-aws", "svc-a", "2025-01-01", "", "", "Inactive"],
            ["k-azure", "svc-a", "2025-01-01", "", "", "Enabled"],
            ["k-gh", "svc-a", "2025-01-01", "2026-01-01", "", "expired"],
            ["k-gh2", "svc-a", "2025-01-01", "2026-01-01", "2025-12-01", "EXPIRED"],
            ["k-plain", "svc-a", "2025-01-01", "", "", "disabled"],
        ],
    )
    report = ingest(store, inventories=[path])
    assert (report.files[0].loaded, report.files[0].rejected) == (5, 0)
    found = rows(
        store,
        "SELECT credential_id, status, strftime(revoked_at, '%Y-%m-%d') FROM credentials "
        "ORDER BY 1",
    )
    assert found == [
        ("k-aws", "disabled", None),
        ("k-azure", "active", None),
        ("k-gh", "revoked", "2026-01-01"),
        ("k-gh2", "revoked", "2025-12-01"),
        ("k-plain", "disabled", None),
    ]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"token_id": "t", "scopes": 5},
            'field "scopes" must be a list or a space- or comma-separated string',
        ),
        ({"token_id": "t", "scopes": {"a": 1}}, 'field "scopes" must be a list'),
        ({"token_id": "t", "principal": {"a": 1}}, 'field "principal" must be text'),
        (
            {"token_id": "t", "status": "paused"},
            "status must be active, revoked or disabled (or enabled, valid, inactive, "
            "suspended, deactivated, expired, deleted), not paused",
        ),
        ({"token_id": "t", "created_at": "yesterday"}, 'unparseable created_at: "yesterday"'),
        (
            {"token_id": "t", "principal_status": "gone"},
            "principal_status must be active or decommissioned, not gone",
        ),
        ({"credential_id": None, "type": "pat"}, "missing token_id"),
    ],
)
def test_inventory_rejects_bad_values(
    store: Store, tmp_path: Path, record: dict[str, Any], reason: str
) -> None:
    good = {"token_id": "ok", "type": "pat"}
    ingest(store, write_jsonl(tmp_path / "bad.jsonl", [good, record]))
    assert rows(store, "SELECT credential_id FROM credentials") == [("ok",)]
    [(line, got)] = rows(store, "SELECT source_line, reason FROM ingest_errors")
    assert line == 2
    assert got.startswith(reason)


# --- detection by content ---------------------------------------------------------------


def test_formats_are_detected_by_content_not_by_name(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_csv(folder / "tokens.log", ["token_id", "principal", "scopes"], [["t1", "bot", "a"]])
    write_jsonl(folder / "events.csv", [event("from-jsonl")])
    write_csv(
        folder / "events.json", ["timestamp", "client_id"], [["2024-05-01T10:00:00Z", "from-csv"]]
    )
    write_jsonl(folder / "inventory.yaml", [{"credential_id": "t2", "status": "active"}])
    report = ingest(store, folder)
    kinds = {Path(f.source).name: (f.format, f.kind) for f in report.files}
    assert kinds == {
        "tokens.log": ("generic-inventory", "inventory"),
        "events.csv": ("generic-log", "events"),
        "events.json": ("generic-log", "events"),
        "inventory.yaml": ("generic-inventory", "inventory"),
    }
    assert rows(store, "SELECT principal FROM events ORDER BY 1") == [
        ("from-csv",),
        ("from-jsonl",),
    ]
    assert rows(store, "SELECT credential_id FROM credentials ORDER BY 1") == [("t1",), ("t2",)]


def test_inventory_option_forces_a_file_to_be_an_inventory(store: Store, tmp_path: Path) -> None:
    """These rows have a timestamp and a principal: alone they read as a log."""
    path = write_csv(
        tmp_path / "export.csv",
        ["timestamp", "principal", "token_id"],
        [["2024-05-01T10:00:00Z", "bot", "t1"]],
    )
    as_log = ingest(store, path)
    assert as_log.files[0].kind == "events"

    other = Store.open(None)
    try:
        forced = ingest(other, inventories=[path])
        assert (forced.files[0].format, forced.files[0].kind) == ("generic-inventory", "inventory")
        assert rows(other, "SELECT credential_id, principal FROM credentials") == [("t1", "bot")]
        assert rows(other, "SELECT count(*) FROM events") == [(0,)]
    finally:
        other.close()


def test_inventory_option_wins_over_the_same_file_in_a_log_directory(
    store: Store, tmp_path: Path
) -> None:
    write_jsonl(tmp_path / "logs" / "a.jsonl", [event("a")])
    tokens = write_csv(
        tmp_path / "logs" / "tokens.csv",
        ["timestamp", "principal", "token_id"],
        [["2024-05-01T10:00:00Z", "bot", "t1"]],
    )
    report = ingest(store, tmp_path / "logs", inventories=[tokens])
    assert [(Path(f.source).name, f.kind) for f in report.files] == [
        ("a.jsonl", "events"),
        ("tokens.csv", "inventory"),
    ]
    assert rows(store, "SELECT credential_id FROM credentials") == [("t1",)]
    assert rows(store, "SELECT principal FROM events") == [("a",)]


def test_the_store_file_itself_is_not_an_input(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [event("a")])
    db = Store.open(tmp_path / "audit.duckdb")
    try:
        report = ingest(db, tmp_path)
        assert [Path(f.source).name for f in report.files] == ["a.jsonl"]
    finally:
        db.close()


def test_csv_with_tabs_or_semicolons_is_read(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "t.tsv", b"timestamp\tprincipal\tscopes\n2024-05-01T10:00:00Z\ttab-bot\ta,b\n"
    )
    write_bytes(
        tmp_path / "s.csv", b"timestamp;principal;scopes\n2024-05-01T10:00:00Z;semi-bot;a b\n"
    )
    ingest(store, tmp_path / "t.tsv", tmp_path / "s.csv")
    assert rows(store, "SELECT principal, scopes_used FROM events ORDER BY 1") == [
        ("semi-bot", ["a", "b"]),
        ("tab-bot", ["a", "b"]),
    ]


def test_csv_quoted_cells_and_crlf(store: Store, tmp_path: Path) -> None:
    write_bytes(
        tmp_path / "q.csv",
        (
            b"timestamp,principal,user_agent\r\n"
            b'2024-05-01T10:00:00Z,"bot, the first","says ""hi"""\r\n'
        ),
    )
    ingest(store, tmp_path / "q.csv")
    assert rows(store, "SELECT principal, user_agent, source_line FROM events") == [
        ("bot, the first", 'says "hi"', 2)
    ]


# --- the staging API other adapters build on --------------------------------------------


def _staged(store: Store, path: Path, unwrap: str | None) -> tuple[list[Any], list[Any]]:
    [file] = expand_inputs([str(path)])
    ctx = LoadContext(store.con, file, sniff(file), Config(), "test")
    stage(ctx, unwrap=unwrap)
    records = [
        (line, json.loads(rec))
        for line, rec in rows(store, "SELECT source_line, rec FROM _records ORDER BY 1, rec")
    ]
    rejects = rows(store, "SELECT source_line, reason FROM _staging_rejects ORDER BY 1")
    return records, rejects


def test_stage_unwraps_records_in_json_lines(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "trail.jsonl",
        [
            {"Records": [{"n": 1}, {"n": 2}]},
            {"n": 3},
            {"Records": [{"n": 4}, "not an object"]},
        ],
    )
    records, rejects = _staged(store, path, "Records")
    assert records == [(1, {"n": 1}), (1, {"n": 2}), (2, {"n": 3}), (3, {"n": 4})]
    assert rejects == [(3, "not a JSON object")]


def test_stage_unwraps_records_in_a_document(store: Store, tmp_path: Path) -> None:
    path = write_bytes(
        tmp_path / "trail.json", json.dumps({"Records": [{"n": 1}, {"n": 2}]}, indent=2).encode()
    )
    records, rejects = _staged(store, path, "Records")
    assert records == [(1, {"n": 1}), (2, {"n": 2})]
    assert rejects == []


def test_identical_lines_within_one_file_are_kept(store: Store, tmp_path: Path) -> None:
    """Two identical calls in one log may be two real calls; only re-ingest is de-duplicated."""
    report = ingest(store, write_jsonl(tmp_path / "twice.jsonl", [event(), event()]))
    assert (report.loaded, report.files[0].duplicates) == (2, 0)


def test_unicode_values_survive(store: Store, tmp_path: Path) -> None:
    names = ["агент-δ", "代理-😀", "a\u0301gent", "مساعد"]
    ingest(store, write_jsonl(tmp_path / "u.jsonl", [event(n) for n in names]))
    assert sorted(r[0] for r in rows(store, "SELECT principal FROM events")) == sorted(names)


def test_principal_type_and_outcome_are_normalised(store: Store, tmp_path: Path) -> None:
    ingest(
        store,
        write_jsonl(
            tmp_path / "o.jsonl",
            [
                event("a", principal_type="Agent", status=200),
                event("b", principal_type="service", status="403"),
                event("c", status="Denied"),
                event("d"),
            ],
        ),
    )
    assert rows(
        store, "SELECT principal, principal_type, status, outcome FROM events ORDER BY 1"
    ) == [
        ("a", "agent", "200", "success"),
        ("b", "service", "403", "failure"),
        ("c", None, "Denied", "failure"),
        ("d", None, None, "unknown"),
    ]


def test_identity_may_be_any_one_of_the_four_fields(store: Store, tmp_path: Path) -> None:
    ts = "2024-05-01T10:00:00Z"
    ingest(
        store,
        write_jsonl(
            tmp_path / "id.jsonl",
            [
                {"timestamp": ts, "client_id": "cid"},
                {"timestamp": ts, "token_id": "tid"},
                {"timestamp": ts, "principal": "p"},
            ],
        ),
    )
    assert rows(store, "SELECT principal, client_id, credential_id FROM events ORDER BY 1, 3") == [
        ("cid", "cid", None),
        ("p", None, None),
        (None, None, "tid"),
    ]


def test_source_file_is_the_name_given(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "rel" / "x.jsonl", [event()])
    ingest(store, "rel/x.jsonl")
    assert rows(store, "SELECT source_file FROM events") == [("rel/x.jsonl",)]
    assert re.fullmatch(
        r"[0-9a-f]{64}", rows(store, "SELECT content_sha256 FROM ingested_files")[0][0]
    )


GITHUB_TOKEN = "ghp_" + "A1b2C3d4" * 4 + "E5f6"


@pytest.mark.parametrize(
    ("mapped", "record"),
    [
        ("headers.Authorization", {"headers.Authorization": f"Bearer {JWT}"}),
        ("headers.Authorization", {"headers": {"Authorization": f"Bearer {JWT}"}}),
        ('$."http.authorization"', {"http.authorization": f"Bearer {JWT}"}),
        ("$.auth[0]", {"auth": [f"Bearer {JWT}"]}),
        ("$.headers[0].value", {"headers": [{"value": f"Bearer {JWT}"}]}),
    ],
    ids=["flat dotted key", "nested", "quoted path", "array item", "array of objects"],
)
def test_the_careful_read_never_calls_the_mapped_token_a_leak(
    store: Store, tmp_path: Path, mapped: str, record: dict[str, Any]
) -> None:
    """The careful read (a blank line forces it) leaves out the field the mapping names,
    however it is spelled, and nothing else: a secret under another key is still found."""
    config = parse_config({"mapping": {"authorization": mapped}})
    line = {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", **record}
    leak = {**line, "extra": {"value": GITHUB_TOKEN}}
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(line) + "\n\n" + json.dumps(leak) + "\n")
    ingest(store, path, config=config)
    found = store.con.execute(
        "SELECT source_line, token_fp IS NOT NULL, leaked_secret FROM events ORDER BY 1"
    ).fetchall()
    assert found == [(1, True, None), (3, True, "github_token")]


OPAQUE = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


@pytest.mark.parametrize("careful", [False, True], ids=["fast read", "careful read"])
def test_an_opaque_bearer_token_outside_its_field_is_a_leak_of_that_token(
    store: Store, tmp_path: Path, careful: bool
) -> None:
    """An opaque (not JWT) bearer token in a logged header was stored and reported as
    nothing. Found, its fingerprint is the `token_fp` the token has where it is presented,
    so the leak and the calls it made can be joined; in its own field it is no leak."""
    presented = event(authorization=f"Bearer {OPAQUE}", action="GET /x")
    logged = event(action="GET /y", debug=f"sent Authorization: Bearer {OPAQUE}")
    path = tmp_path / "log.jsonl"
    blank = "\n\n" if careful else "\n"  # a blank line: the careful read
    path.write_text(json.dumps(presented) + blank + json.dumps(logged) + "\n")
    ingest(store, path)
    found = rows(
        store, "SELECT token_fp, leaked_secret, leaked_secret_fp FROM events ORDER BY action"
    )
    token_fp = found[0][0]
    assert token_fp is not None
    assert found == [(token_fp, None, None), (None, "bearer_token", token_fp)]
    assert OPAQUE not in str(rows(store, "SELECT * FROM events"))


@pytest.mark.parametrize(
    ("stated", "stored"), [("robot", "unknown"), ("Agent", "agent"), (None, None)]
)
def test_an_odd_principal_type_keeps_the_record(
    store: Store, tmp_path: Path, stated: str | None, stored: str | None
) -> None:
    """One odd label must not lose the call or the credential: it is read as `unknown`, and
    the kind is then inferred from the name."""
    extra = {} if stated is None else {"principal_type": stated}
    log = write_jsonl(tmp_path / "log.jsonl", [event("svc-billing", **extra)])
    inventory = write_jsonl(
        tmp_path / "inv.jsonl",
        [{"token_id": "k1", "principal": "svc-billing", "status": "active", **extra}],
    )
    report = ingest(store, log, inventories=[inventory])
    assert report.rejected == 0
    assert rows(store, "SELECT principal_type FROM events") == [(stored,)]
    assert rows(store, "SELECT principal_type FROM credentials") == [(stored,)]
    from m2maudit.views import create_views

    create_views(store.con, Config())
    assert rows(store, "SELECT actor_kind FROM ev") == [
        ("agent" if stored == "agent" else "service",)
    ]


@pytest.mark.parametrize("careful", [False, True], ids=["fast", "careful"])
def test_a_call_described_by_json_is_kept_as_its_json_text(
    store: Store, tmp_path: Path, careful: bool
) -> None:
    """A request body logged as a JSON string, or as an object, is the same call, on both
    reads; only the fields that name who called must be text."""
    records = [
        event("agent-a", resource='{"id": 7}', trace_id="t1"),
        event("agent-a", resource={"id": 7}, status={"code": 200}, trace_id="t2"),
        event("agent-a", client_id={"id": 7}, trace_id="t3"),
    ]
    path = write_jsonl(tmp_path / "log.jsonl", records)
    if careful:  # a blank line sends the file to the careful read
        path.write_text(path.read_text() + "\n\n")
    report = ingest(store, path)
    assert rows(store, "SELECT trace_id, resource, status FROM events ORDER BY 1") == [
        ("t1", '{"id": 7}', None),
        ("t2", '{"id":7}', '{"code":200}'),
    ]
    assert report.rejected == 1
    assert rows(store, "SELECT source_line, reason FROM ingest_errors") == [
        (3, 'field "client_id" must be text, not an object or a list')
    ]


def test_a_mapping_to_keys_the_records_lack_is_named(store: Store, tmp_path: Path) -> None:
    """`init`'s example mapping, uncommented over logs that use m2maudit's own names."""
    config = parse_config({"mapping": {"timestamp": "@timestamp", "principal": "actor.id"}})
    report = ingest(store, write_jsonl(tmp_path / "log.jsonl", [event("agent-a")]), config=config)
    error = report.files[0].error or ""
    assert error.startswith("unrecognised format (JSON objects with principal, timestamp")
    assert error.endswith(
        "; the config's mapping reads keys these records lack "
        "(principal -> actor.id, timestamp -> @timestamp)"
    )


def test_placeholder_ids_in_a_log_are_no_ids(store: Store, tmp_path: Path) -> None:
    """From a rules review: `"on_behalf_of": "-"` counted as the human behind a call, and a
    trace id of `-`, `null` or W3C's all-zero id as a trace every such call shares: M2M101
    and M2M501 never fired. A real id, even one of zeros among other digits, stays."""
    placeholders = [
        "-",
        "NULL",
        "undefined",
        "N/A",
        "0" * 32,
        "00000000-0000-0000-0000-000000000000",
    ]
    records = [
        {
            "timestamp": "2026-11-20T10:00:00Z",
            "principal": f"agent-{n}",
            "on_behalf_of": value,
            "trace_id": value,
            "session_id": value,
            "task_id": value,
        }
        for n, value in enumerate([*placeholders, "0af7651916cd43dd8448eb211c80319c"])
    ]
    ingest(store, write_jsonl(tmp_path / "calls.jsonl", records))
    ids = rows(
        store,
        "SELECT on_behalf_of, trace_id, session_id, task_id FROM events ORDER BY principal",
    )
    real = "0af7651916cd43dd8448eb211c80319c"
    assert ids == [(None, None, None, None)] * len(placeholders) + [(real, real, real, real)]
