"""Helpers for the cloud source-adapter tests: finding the shared real logs, loading files.

The repository sits beside `shared/` in CI (`<somewhere>/main` and `<somewhere>/shared`); a
worktree may sit elsewhere, so `/work/shared` is the fallback.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import IngestReport
from m2maudit.store import Store

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LOGS = REPO / "sample_logs"


def utc(text: str) -> datetime:
    """An ISO 8601 time without offset, as the aware UTC datetime DuckDB returns."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def shared_dir() -> Path:
    for candidate in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if (candidate / "real-logs").is_dir():
            return candidate
    raise FileNotFoundError("shared/real-logs not found beside the repository or in /work")


def real_log(relative: str) -> Path:
    path = shared_dir() / "real-logs" / relative
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def load(*paths: Path | str, inventories: Iterable[Path | str] = ()) -> tuple[Store, IngestReport]:
    store = Store.open()
    report = ingest_paths(store, [str(p) for p in paths], [str(p) for p in inventories])
    return store, report


def rows(store: Store, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = store.con.execute(sql, params or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def event_at(store: Store, file_suffix: str, line: int) -> dict[str, Any]:
    """The one event loaded from `line` of the file whose path ends with `file_suffix`."""
    found = rows(
        store,
        "SELECT * FROM events WHERE ends_with(source_file, ?) AND source_line = ?",
        [file_suffix, line],
    )
    assert len(found) == 1, f"expected one event at {file_suffix}:{line}, found {len(found)}"
    return found[0]


def rejects(store: Store) -> dict[int, str]:
    """Rejected records by line (the whole-file errors, line 0, included)."""
    return {
        int(row["source_line"]): str(row["reason"])
        for row in rows(store, "SELECT source_line, reason FROM ingest_errors")
    }


def write_jsonl(path: Path, records: Iterable[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_gzip(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode("utf-8"), mtime=0))
    return path
