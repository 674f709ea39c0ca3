"""Helpers for the source-adapter tests: where the shared real log samples live, and loading.

The repository sits beside `shared/` in CI (`<somewhere>/main` and `<somewhere>/shared`); a
developer worktree may sit elsewhere, so `/work/shared` is the fallback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from m2maudit.ingest import ingest_paths
from m2maudit.ingest_report import FileReport, IngestReport
from m2maudit.store import Store

DATA = Path(__file__).resolve().parent / "data"


def shared_dir() -> Path:
    beside = Path(__file__).resolve().parents[2] / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


def real_logs_dir() -> Path:
    path = shared_dir() / "real-logs"
    assert path.is_dir(), f"real log samples not found at {path}"
    return path


@dataclass
class Loaded:
    """A store after ingesting some files, with shortcuts to what the tests look at."""

    store: Store
    report: IngestReport

    @property
    def file(self) -> FileReport:
        assert len(self.report.files) == 1, [f.source for f in self.report.files]
        return self.report.files[0]

    def event(self, line: int) -> dict[str, Any]:
        """The one event loaded from `line` (1-based line, or record number in a document)."""
        cursor = self.store.con.execute("SELECT * FROM events WHERE source_line = ?", [line])
        names = [column[0] for column in cursor.description]
        rows = cursor.fetchall()
        assert len(rows) == 1, f"{len(rows)} events from line {line}"
        return dict(zip(names, rows[0], strict=True))

    def lines(self) -> list[int]:
        rows = self.store.con.execute("SELECT source_line FROM events ORDER BY 1").fetchall()
        return [int(row[0]) for row in rows]

    def rejects(self) -> dict[int, str]:
        rows = self.store.con.execute(
            "SELECT source_line, reason FROM ingest_errors ORDER BY 1"
        ).fetchall()
        return {int(line): str(reason) for line, reason in rows}


def load(*paths: Path | str, hint: str | None = None) -> Loaded:
    store = Store.open()
    report = ingest_paths(store, [str(p) for p in paths], format_hint=hint)
    return Loaded(store, report)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records one a line; a `str` is written as is (for deliberately broken lines)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path
