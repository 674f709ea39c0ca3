"""Golden reports: every format on `sample_logs/`, byte for byte.

When a change to rules, adapters or reporters changes a report on purpose, regenerate them
and review the diff like code:

    M2MAUDIT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_reports.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.reporters import REPORTERS

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("M2MAUDIT_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", sorted(REPORTERS))
def test_report_matches_golden(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / f"report.{name}"
    result = CliRunner().invoke(
        app,
        [
            "scan",
            "sample_logs",
            "--as-of",
            "2026-11-28T00:00:00Z",
            "-f",
            name,
            "-o",
            str(out),
            "--fail-on",
            "never",
        ],
    )
    assert result.exit_code == 0, result.output
    golden = GOLDEN / f"sample_logs.{name}"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(out.read_bytes())
    assert golden.exists(), f"no golden file {golden}; run with M2MAUDIT_UPDATE_GOLDEN=1"
    assert out.read_bytes() == golden.read_bytes(), (
        f"{name} report differs from {golden}; if intended, regenerate (see module docstring)"
    )
