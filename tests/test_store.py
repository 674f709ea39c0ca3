"""The DuckDB store: schema, UTC, transactions, and the errors a user can act on."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from m2maudit.config import Config
from m2maudit.errors import AuditError
from m2maudit.scan import run_scan
from m2maudit.store import SCHEMA_VERSION, Store, StoreOptions
from tests.conftest import RunCli, query, write_jsonl

TABLES = {
    "m2maudit_meta",
    "ingested_files",
    "events",
    "tokens",
    "credentials",
    "ingest_errors",
    "findings",
}


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Path]:
    """Another process holding `held.duckdb` open until the test ends."""
    db = tmp_path / "held.duckdb"
    Store.open(db).close()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(db),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield db
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


def tables(store: Store) -> set[str]:
    return {
        r[0]
        for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }


def test_in_memory_store_has_the_schema() -> None:
    store = Store.open(None)
    try:
        assert store.path is None
        assert tables(store) >= TABLES
        assert (
            store.scalar("SELECT value FROM m2maudit_meta WHERE key = 'schema_version'")
            == SCHEMA_VERSION
        )
    finally:
        store.close()


def test_every_connection_is_utc(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s.duckdb")
    try:
        assert store.scalar("SELECT current_setting('TimeZone')") == "UTC"
        assert (
            str(store.scalar("SELECT TIMESTAMPTZ '2024-05-01 12:00:00+02'"))
            == "2024-05-01 10:00:00+00:00"
        )
    finally:
        store.close()


def test_persisted_store_reopens_with_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    store = Store.open(db)
    store.con.execute(
        "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
        "VALUES ('f', 1, 'x', 'kept')"
    )
    store.close()
    again = Store.open(db)  # the schema script runs again and must not clear anything
    try:
        assert again.path == str(db)
        assert again.scalar("SELECT reason FROM ingest_errors") == "kept"
        assert again.scalar("SELECT count(*) FROM m2maudit_meta") == 1
    finally:
        again.close()


def test_a_store_made_before_leaked_secrets_gets_the_column_and_keeps_its_events(
    tmp_path: Path,
) -> None:
    """Stores written before `events.leaked_secrets`, `events.principal_id` and the secrets
    and principal of `ingest_errors` existed are read, not refused: the columns are added,
    empty; M2M601 reads their events' first secret."""
    db = tmp_path / "before.duckdb"
    store = Store.open(db)
    store.con.execute("ALTER TABLE events DROP COLUMN principal_id")
    store.con.execute("ALTER TABLE events DROP COLUMN leaked_secrets")
    store.con.execute("ALTER TABLE ingest_errors DROP COLUMN leaked_secrets")
    store.con.execute("ALTER TABLE ingest_errors DROP COLUMN principal")
    store.con.execute(
        "INSERT INTO events (ts, source_format, principal, leaked_secret, leaked_secret_fp, "
        "source_file, source_line, record_key) VALUES "
        "('2026-11-20T10:00:00Z', 'generic-log', 'svc-a', 'jwt', 'aaaa000000000001', 'a', 1, 1)"
    )
    store.close()
    again = Store.open(db)
    try:
        assert again.con.execute(
            "SELECT principal, leaked_secrets, principal_id FROM events"
        ).fetchall() == [("svc-a", None, None)]
        assert (
            again.con.execute("SELECT leaked_secrets, principal FROM ingest_errors").fetchall()
            == []
        )
        result = run_scan(again, Config(), datetime(2026, 11, 28, tzinfo=UTC))
        assert [f.token_id for f in result.findings if f.rule_id == "M2M601"] == [
            "aaaa000000000001"
        ]
    finally:
        again.close()


def test_store_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    store = Store.open(db)
    store.con.execute("UPDATE m2maudit_meta SET value = '0' WHERE key = 'schema_version'")
    store.close()
    with pytest.raises(
        AuditError,
        match=r"old\.duckdb: written by another m2maudit schema "
        r"\(0, expected 1\)",
    ) as caught:
        Store.open(db)
    # The refused store was closed: another process can open the file while we still hold
    # the exception (and with it the frame that opened the connection).
    opened = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1])", str(db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert caught.value is not None
    assert opened.returncode == 0, opened.stderr


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(AuditError) as caught:
        Store.open(db)
    assert str(caught.value).startswith(f"{db}: ")
    assert "\n" not in str(caught.value)
    assert db.read_text().startswith("these are my notes")  # left as it was


@pytest.mark.parametrize("name", ["victim.jsonl", "victim.csv", "victim.json"])
def test_a_log_given_as_the_store_is_refused(tmp_path: Path, run_cli: RunCli, name: str) -> None:
    """DuckDB opens a JSON or CSV file as a read-only view: an ingest into it would report
    records loaded and keep nothing. It is refused, and the file is left as it was."""
    victim = tmp_path / name
    body = (
        '{"timestamp": "2024-05-01T10:00:00Z", "principal": "a"}\n'
        if "json" in name
        else "a,b\n1,2\n"
    )
    victim.write_text(body)
    write_jsonl(tmp_path / "log.jsonl", [{"timestamp": "2024-05-01T10:00:00Z", "principal": "a"}])
    result = run_cli("ingest", str(tmp_path / "log.jsonl"), "--db", str(victim))
    assert result.code == 2
    assert result.error_lines() == [
        f"m2maudit: error: {victim}: not a DuckDB database (--db takes the store's own file)"
    ]
    assert victim.read_text() == body


def test_directory_as_database(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=f"^{tmp_path}: "):
        Store.open(tmp_path)


def test_missing_parent_directory(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match=r"nowhere/s\.duckdb: directory .*nowhere does not exist"):
        Store.open(tmp_path / "nowhere" / "s.duckdb")
    assert not (tmp_path / "nowhere").exists()


def test_database_in_use_by_another_process(holder: Path) -> None:
    with pytest.raises(AuditError, match=r"held\.duckdb: database is in use by another process"):
        Store.open(holder)


def test_cli_database_in_use(holder: Path, run_cli: RunCli, tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [{"timestamp": "2024-05-01T10:00:00Z", "principal": "p"}])
    result = run_cli("ingest", "a.jsonl", "--db", holder)
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert result.error_lines() == [
        f"m2maudit: error: {holder}: database is in use by another process; "
        "wait for it or use another --db"
    ]


def test_transaction_commits_or_rolls_back(tmp_path: Path) -> None:
    db = tmp_path / "t.duckdb"
    store = Store.open(db)
    with store.transaction():
        store.con.execute(
            "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
            "VALUES ('a', 1, NULL, 'kept')"
        )
    with pytest.raises(RuntimeError), store.transaction():
        store.con.execute(
            "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
            "VALUES ('b', 1, NULL, 'dropped')"
        )
        raise RuntimeError("mid-file failure")
    store.close()
    assert query(db, "SELECT source_file FROM ingest_errors") == [("a",)]


def test_transaction_rolls_back_after_a_database_error() -> None:
    store = Store.open(None)
    try:
        with pytest.raises(duckdb.Error), store.transaction():
            store.con.execute(
                "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
                "VALUES ('a', 1, NULL, 'x')"
            )
            store.con.execute(
                "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
                "VALUES (NULL, 1, NULL, 'x')"
            )
        assert store.scalar("SELECT count(*) FROM ingest_errors") == 0
        with store.transaction():  # the connection is usable again
            store.con.execute(
                "INSERT INTO ingest_errors (source_file, source_line, source_format, reason) "
                "VALUES ('b', 1, NULL, 'x')"
            )
        assert store.scalar("SELECT count(*) FROM ingest_errors") == 1
    finally:
        store.close()


def test_options_reach_duckdb() -> None:
    store = Store.open(None, StoreOptions(threads=1, memory_limit="512MB"))
    try:
        assert store.scalar("SELECT current_setting('threads')") == 1
        assert store.scalar("SELECT current_setting('memory_limit')") == "488.2 MiB"  # 512 MB
    finally:
        store.close()


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("lots", "^--memory-limit: .*Memory must have a number"),
        ("1GB'; DROP TABLE events; --", "^invalid setting value"),
    ],
)
def test_bad_memory_limit_is_an_audit_error(limit: str, message: str) -> None:
    with pytest.raises(AuditError, match=message):
        Store.open(None, StoreOptions(memory_limit=limit))


def test_temp_directory_with_a_quote_is_refused() -> None:
    with pytest.raises(AuditError, match="invalid setting value"):
        Store.open(None, StoreOptions(temp_directory="/tmp/x'y"))


def test_scalar_returns_none_for_no_row() -> None:
    store = Store.open(None)
    try:
        assert store.scalar("SELECT 1 WHERE false") is None
        assert store.scalar("SELECT ? + 1", [41]) == 42
    finally:
        store.close()


@pytest.mark.parametrize(
    ("memory_limit", "expected"),
    [
        (None, 256 << 20),
        ("4GB", 256 << 20),
        ("300MB", int(286.1 * (1 << 20)) // 8),  # DuckDB says 286.1 MiB
        ("1MB", 1 << 20),
    ],
)
def test_the_readers_limit_follows_a_small_memory_limit(
    memory_limit: str | None, expected: int
) -> None:
    from m2maudit.sources.staging import reader_limit

    store = Store.open(None, StoreOptions(memory_limit=memory_limit))
    try:
        assert reader_limit(store.con) == expected
    finally:
        store.close()


def test_every_sample_loads_under_a_small_memory_limit() -> None:
    """DuckDB reserves twice the readers' limit before reading; under 512 MB every file
    failed ("failed to allocate 512 MiB"), a five-kilobyte CloudTrail object included."""
    from m2maudit.config import Config
    from m2maudit.ingest import ingest_paths

    root = Path(__file__).resolve().parent.parent / "sample_logs"
    store = Store.open(None, StoreOptions(memory_limit="300MB"))
    try:
        report = ingest_paths(store, [str(root)], [], Config())
        assert report.files and not [f.error for f in report.files if f.error]
        kinds = {f.format for f in report.files}
        assert {"cloudtrail", "generic-log", "generic-inventory"} <= kinds
    finally:
        store.close()


def test_a_big_log_read_line_by_line_fits_a_small_memory_limit(tmp_path: Path) -> None:
    """A blank line sends a JSON-lines log to the careful path, which reads it as lines.
    DuckDB's line reader holds two buffers of twice the line limit: at a quarter of the
    memory limit, the second did not fit, and a log longer than it was "out of memory".
    80 MB: the careful mapping reads each record's keys beyond the format's for its
    de-duplication key (as the fast read keys it), one more JSON parse per record, which
    a 40 MB limit no longer holds beside 20 MB of buffers. The buffers are 40 MB here (an
    eighth of the limit each, doubled), and the 40 MB log is still longer than one."""
    from m2maudit.config import Config
    from m2maudit.ingest import ingest_paths

    line = json.dumps(
        {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", "pad": "x" * 600}
    )
    log = tmp_path / "big.jsonl"
    with log.open("w") as out:
        for n in range(60_000):  # 40 MB
            out.write(line.replace("agent-a", f"agent-{n}") + "\n" + ("\n" if n == 30_000 else ""))
    store = Store.open(None, StoreOptions(memory_limit="80MB"))
    try:
        report = ingest_paths(store, [str(log)], [], Config())
        [file] = report.files
        assert (file.error, file.loaded, file.rejected) == (None, 60_000, 0)
        assert (
            store.scalar("SELECT source_line FROM events WHERE principal = 'agent-30001'") == 30_003
        )
    finally:
        store.close()


def test_a_line_over_a_lowered_limit_says_how_to_raise_it(tmp_path: Path) -> None:
    from m2maudit.config import Config
    from m2maudit.ingest import ingest_paths

    log = tmp_path / "big.jsonl"
    small = json.dumps({"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"})
    big = json.dumps(
        {"timestamp": "2026-11-20T10:00:00Z", "principal": "b", "pad": "x" * 6_000_000}
    )
    log.write_text(f"{small}\n\n{big}\n")
    store = Store.open(None, StoreOptions(memory_limit="40MB"))  # lines up to ~4.7 MB
    try:
        [file] = ingest_paths(store, [str(log)], [], Config()).files
        assert (file.loaded, file.rejected) == (1, 1)
        [(line, reason)] = store.con.execute(
            "SELECT source_line, reason FROM ingest_errors"
        ).fetchall()
        assert line == 3 and reason.endswith("bytes (a larger --memory-limit raises it)")
    finally:
        store.close()


@pytest.mark.parametrize(
    "table",
    ["events (a INTEGER)", "m2maudit_meta (k VARCHAR, v VARCHAR)", "m2maudit_meta (key VARCHAR)"],
)
def test_a_duckdb_file_of_other_tables_is_refused_untouched(tmp_path: Path, table: str) -> None:
    """From a trial: such a file was given m2maudit's seven tables, then failed obscurely
    ("Table events does not have a column ts"); a table named m2maudit_meta was enough to
    pass for a store."""
    db = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE {table}")
    con.close()
    with pytest.raises(AuditError, match="a DuckDB database that is not an m2maudit store"):
        Store.open(db)
    con = duckdb.connect(str(db))
    try:
        assert len(con.execute("SELECT table_name FROM duckdb_tables()").fetchall()) == 1
    finally:
        con.close()


def test_findings_are_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a trial: a rescan killed between the delete and the insert left a --db store
    whose findings table was empty, which any later reader took for a clean estate."""
    from m2maudit import scan as scan_module
    from m2maudit.ingest import ingest_paths

    store = Store.open(tmp_path / "s.duckdb")
    try:
        sample = Path(__file__).resolve().parent.parent / "sample_logs" / "agents"
        ingest_paths(store, [str(sample)], [], Config())
        result = run_scan(store, Config(), datetime(2026, 11, 28, tzinfo=UTC))
        scan_module.save_findings(store, result)
        before = store.scalar("SELECT count(*) FROM findings")
        assert before > 0
        width = len(store.con.execute("DESCRIBE findings").fetchall())
        monkeypatch.setattr(scan_module, "_finding_row", lambda f, as_of: ["x"] * width)
        with pytest.raises(duckdb.Error):
            scan_module.save_findings(store, result)  # the insert fails after the delete
        assert store.scalar("SELECT count(*) FROM findings") == before
    finally:
        store.close()
