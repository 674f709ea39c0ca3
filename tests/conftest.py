"""Shared test helpers: run the CLI, write small inputs, read a store.

Kept small and general on purpose: every test module may use these, none depends on another.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.store import Store

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CliResult:
    """What a command did: exit code and the two streams, kept apart."""

    code: int
    stdout: str
    stderr: str

    def error_lines(self) -> list[str]:
        """stderr lines that report an error (the CLI prints exactly one when it fails)."""
        return [line for line in self.stderr.splitlines() if "error" in line.lower()]


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run `python -m m2maudit ARGS...` in a real subprocess (stdin from `input`).

    Slower than `cli` (about 0.4 s a call) but end to end: the real stderr, exit code and
    process boundaries (locks, stdin). Runs in `tmp_path` unless `cwd` is given.
    """

    def run(
        *args: str | Path,
        input: bytes | str | None = None,
        cwd: Path | None = None,
        timeout: float = 60,
    ) -> CliResult:
        env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
        data = input.encode() if isinstance(input, str) else input
        done = subprocess.run(
            [sys.executable, "-m", "m2maudit", *map(str, args)],
            input=data if data is not None else b"",
            capture_output=True,
            cwd=cwd or tmp_path,
            env=env,
            timeout=timeout,
            check=False,
        )
        return CliResult(
            done.returncode,
            done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )

    return run


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """Run the CLI in-process with typer's CliRunner (fast); stdout and stderr kept apart.

    Exceptions are not swallowed: a traceback fails the test instead of passing as exit 1.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str | Path, input: bytes | str | None = None) -> CliResult:
        result = runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    return run


def write_jsonl(
    path: Path, records: Iterable[dict[str, Any] | str], newline: str = "\n", compress: bool = False
) -> Path:
    """One record a line: dicts are dumped as JSON, strings written as they are (bad lines)."""
    text = "".join((json.dumps(r) if isinstance(r, dict) else r) + newline for r in records)
    return write_bytes(path, text.encode("utf-8"), compress=compress)


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[str] | str],
    newline: str = "\n",
    compress: bool = False,
) -> Path:
    """A CSV file; a row given as a string is written as it is (a malformed row, say)."""
    lines = [",".join(header)] + [r if isinstance(r, str) else ",".join(r) for r in rows]
    return write_bytes(
        path, "".join(line + newline for line in lines).encode("utf-8"), compress=compress
    )


def write_bytes(path: Path, data: bytes, compress: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of `sql` run read-only against a persisted store."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def shared_dir() -> Path:
    """`shared/` beside the repository (CI), else /work/shared (a helper's worktree)."""
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


@pytest.fixture
def shared() -> Path:
    return shared_dir()


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh in-memory store."""
    opened = Store.open(None)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def stand_ins_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Temporary files (the stand-ins of `m2maudit.sources.standins`) are written under
    `tmp_path` while a test runs, and none may be left when it ends: they may hold tokens."""
    spools = tmp_path / "spools"
    spools.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spools))
    yield spools
    assert list(spools.iterdir()) == []
