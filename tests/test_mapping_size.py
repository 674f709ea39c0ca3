"""Every format's mapping stays a statement DuckDB can plan quickly.

DuckDB expands a nested expression at each place it is used, and planning time grows with the
expanded statement, not with the data: a one-line file pays it in full. One wrapper too many
around the inventory's time fields once made its mapping 240 KB of SQL, 0.8 s to plan for
any inventory file (the sample scan took twice as long). Values used several times belong in
a layer of their own (`map_records`' preludes); this test keeps each format honest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from m2maudit.ingest import ingest_paths
from m2maudit.sources import ADAPTERS
from m2maudit.store import Store
from tests.source_support import real_logs_dir

REPO = Path(__file__).resolve().parent.parent
# The largest statements are the vendor mappings: OCSF's 83 KB, of which 26 KB are the secret
# checks and redaction (thirteen kinds of secret; 0.15-0.18 s to map a 40-line file, against
# 0.146 s with seven kinds and 58 KB), 8 KB of it listing every secret of a record
# (`leaked_secrets`, ninth session: a scan of sample_logs/ 1.80-1.84 s with it, 1.83-1.87 s
# without). The inventory's regression was 240 KB. Fifteenth session: bearer tokens,
# percent-encoded parameters and longer AWS key names took the token decoding's statement
# (it checks claims for secrets) from 89.5 to 96.2 KB and the careful generic mapping from 85
# to 90 KB: a one-line log's ingest 0.36-0.38 -> 0.38-0.40 s, its decoding 0.10-0.12 ->
# 0.10-0.13 s. Nineteenth session: the CI bots' name patterns took the token decoding's
# INSERT to 100 016 characters; the subjects' kinds by name (2.1 KB of patterns) now come
# from an UPDATE of their own after it, 97.9 KB.
MAX_STATEMENT_CHARS = 100_000


class _RecordingConnection:
    """Passes every call to DuckDB, keeping the length of each statement by its first words."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.lengths: dict[str, int] = {}

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        head = " ".join(sql.split()[:6])
        self.lengths[head] = max(self.lengths.get(head, 0), len(sql))
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _careful_path_logs(tmp_path: Path) -> list[str]:
    """A JSON-lines log with a blank line and a CSV log: the generic log's careful path."""
    line = (
        '{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a", '
        '"authorization": "Bearer abc.def.ghi", "action": "read"}'
    )
    jsonl = tmp_path / "blank.jsonl"
    jsonl.write_text(f"{line}\n\n{line}\n")
    csv = tmp_path / "log.csv"
    csv.write_text("timestamp,principal,token_id,action\n2026-11-20T10:00:00Z,svc-a,k1,read\n")
    return [str(jsonl), str(csv)]


def test_every_format_maps_with_a_statement_of_bounded_size(tmp_path: Path) -> None:
    store = Store.open()
    recorder = _RecordingConnection(store.con)
    store.con = recorder  # type: ignore[assignment]
    paths = [
        str(REPO / "sample_logs"),
        str(real_logs_dir()),
        str(REPO / "tests" / "data" / "ocsf"),
        *_careful_path_logs(tmp_path),
    ]
    report = ingest_paths(store, paths)

    formats = {file.format for file in report.files if not file.error}
    assert formats >= {adapter.name for adapter in ADAPTERS}, "a format went untried"
    too_long = {head: n for head, n in recorder.lengths.items() if n > MAX_STATEMENT_CHARS}
    assert not too_long, f"statements over {MAX_STATEMENT_CHARS} characters: {too_long}"
