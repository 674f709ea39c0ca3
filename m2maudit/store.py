"""The canonical DuckDB store: opening it, creating its schema, and guarding transactions.

In memory for a one-shot scan; a file with `--db` for incremental ingest. Every connection is
pinned to UTC so `TIMESTAMPTZ` values render and compare the same on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

from m2maudit.errors import AuditError, first_line

SCHEMA_VERSION = "1"


@dataclass(frozen=True)
class StoreOptions:
    """Knobs passed through to DuckDB."""

    threads: int | None = None
    memory_limit: str | None = None
    temp_directory: str | None = None


class Store:
    """A DuckDB connection holding the canonical tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str | None) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, db_path: str | Path | None = None, options: StoreOptions | None = None) -> Store:
        """Open (or create) a store; `None` is an in-memory store."""
        options = options or StoreOptions()
        path = str(db_path) if db_path else ":memory:"
        if db_path:
            parent = Path(db_path).expanduser().resolve().parent
            if not parent.is_dir():
                raise AuditError(f"{db_path}: directory {parent} does not exist")
            _refuse_other_files(Path(db_path))
        try:
            con = duckdb.connect(path)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise AuditError(
                    f"{db_path}: database is in use by another process; "
                    "wait for it or use another --db"
                ) from None
            raise AuditError(f"{db_path}: cannot open database: {first_line(exc)}") from None
        except duckdb.Error as exc:
            raise AuditError(f"{db_path}: not a DuckDB database: {first_line(exc)}") from None
        store = cls(con, None if path == ":memory:" else path)
        try:
            store._configure(options)
            store._create_schema()
            store._create_macros()
        except BaseException:
            con.close()  # a refused store must not stay open (and locked)
            raise
        return store

    def _create_macros(self) -> None:
        """The macros the formats' mappings call (`sqlfrag.TIME_MACROS`,
        `secrets.SECRET_MACROS`)."""
        from m2maudit.secrets import SECRET_MACROS
        from m2maudit.sources.sqlfrag import TIME_MACROS

        for sql in (*TIME_MACROS, *SECRET_MACROS):
            self.con.execute(sql)

    def _refuse_foreign_database(self) -> None:
        """A DuckDB file of someone else's tables is not a store: m2maudit's tables must not
        be added to it, and its own `events` would fail every insert obscurely."""
        tables = {
            row[0]
            for row in self.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        }
        if tables and not self._schema_version_written():
            shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise AuditError(
                f"{self.path}: a DuckDB database that is not an m2maudit store (its tables: "
                f"{shown}); give --db a new file or one m2maudit made"
            )

    def _schema_version_written(self) -> bool:
        """A store says its schema version from its first opening on (a table merely named
        `m2maudit_meta` does not make a store)."""
        try:
            return bool(
                self.scalar("SELECT count(*) FROM m2maudit_meta WHERE key = 'schema_version'")
            )
        except duckdb.Error:
            return False

    def _configure(self, options: StoreOptions) -> None:
        self.con.execute("SET TimeZone = 'UTC'")
        if options.threads:
            self.con.execute(f"SET threads = {int(options.threads)}")
        if options.memory_limit:
            try:
                self.con.execute(f"SET memory_limit = '{_quote_free(options.memory_limit)}'")
            except duckdb.Error as exc:
                raise AuditError(f"--memory-limit: {first_line(exc)}") from None
        if options.temp_directory:
            self.con.execute(f"SET temp_directory = '{_quote_free(options.temp_directory)}'")

    def _create_schema(self) -> None:
        self._refuse_foreign_database()
        schema = resources.files("m2maudit").joinpath("schema.sql").read_text(encoding="utf-8")
        try:
            self.con.execute(schema)
        except duckdb.Error as exc:
            raise AuditError(
                f"{self.path}: cannot create the m2maudit schema: {first_line(exc)}"
            ) from None
        found = self.con.execute(
            "SELECT value FROM m2maudit_meta WHERE key = 'schema_version'"
        ).fetchone()
        if found is None:
            self.con.execute(
                "INSERT INTO m2maudit_meta VALUES ('schema_version', ?)", [SCHEMA_VERSION]
            )
        elif found[0] != SCHEMA_VERSION:
            raise AuditError(
                f"{self.path}: written by another m2maudit schema "
                f"({found[0]}, expected {SCHEMA_VERSION})"
            )
        # Columns added since version 1 was written: a store made before has them added,
        # empty (its events were loaded without them).
        for table, column, sql_type in (
            ("events", "leaked_secrets", "VARCHAR[]"),
            ("events", "principal_id", "VARCHAR"),
            ("tokens", "claims_secrets", "VARCHAR[]"),
            ("ingest_errors", "unreadable_log", "BOOLEAN"),
            ("ingest_errors", "leaked_secrets", "VARCHAR[]"),
            ("ingest_errors", "principal", "VARCHAR"),
            ("ingested_files", "by_record", "BOOLEAN"),
        ):
            self.con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {sql_type}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a failure mid-file leaves the store as it was."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.rollback_quietly()
            raise
        self.con.execute("COMMIT")

    def rollback_quietly(self) -> None:
        """End a transaction a failure left open, if one is. Ctrl-C can land between a
        query's interruption and the `with` block's exit, so that the rollback above never
        runs; the connection may also be closed by then (this block's generator is then
        closed last, when it is collected)."""
        with suppress(duckdb.Error):  # no transaction open, or the connection closed
            self.con.execute("ROLLBACK")

    def scalar(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        row = self.con.execute(sql, params or []).fetchone()
        return None if row is None else row[0]

    def has_rows(self, table: str) -> bool:
        """Whether a canonical table holds anything (without counting it)."""
        return bool(self.scalar(f"SELECT count(*) > 0 FROM (SELECT 1 FROM {table} LIMIT 1)"))

    def close(self) -> None:
        self.con.close()


def write_ahead_log(path: Path) -> Path:
    """The file beside a store where DuckDB keeps changes not yet checkpointed into it: part
    of the store, to be removed or kept with it and never written over."""
    return path.with_name(path.name + ".wal")


# A DuckDB database file says so at byte 8 of its header.
_DUCKDB_MAGIC = (8, b"DUCK")


def _refuse_other_files(path: Path) -> None:
    """An existing file that is not a DuckDB database (a log, a CSV) is refused: DuckDB would
    open a JSON or CSV file as a read-only view, and the run would store nothing in it."""
    try:
        with path.expanduser().open("rb") as handle:
            header = handle.read(_DUCKDB_MAGIC[0] + len(_DUCKDB_MAGIC[1]))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise AuditError(f"{path}: cannot open database: {exc.strerror or exc}") from None
    if header and header[_DUCKDB_MAGIC[0] :] != _DUCKDB_MAGIC[1]:
        raise AuditError(f"{path}: not a DuckDB database (--db takes the store's own file)")


def _quote_free(value: str) -> str:
    """Settings are spliced into SET statements, which take no parameters: refuse quotes."""
    if "'" in value or ";" in value:
        raise AuditError(f"invalid setting value: {value!r}")
    return value
