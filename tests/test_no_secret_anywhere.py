"""A token pasted where it does not belong (an inventory id, a scope) never reaches the store
or a report: ids become `secret:<fingerprint>`, other values are redacted."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.reporters import REPORTERS

TOKEN = jwt.encode({"sub": "agent-x", "client_id": "agent-x", "jti": "j-1"}, "k" * 32)


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "inv.csv").write_text(
        "token_id,principal,scopes,created_at,status\n"
        f"{TOKEN},agent-x,read {TOKEN},2026-01-01,active\n"
    )
    record = {
        "timestamp": "2026-11-20T10:00:00Z",
        "principal": "agent-x",
        "token_id": TOKEN,
        "scopes": ["read", TOKEN],
        "authorization": f"Bearer {TOKEN}",
    }
    (tmp_path / "log.jsonl").write_text(json.dumps(record) + "\n")
    return tmp_path


@pytest.mark.parametrize("name", sorted(REPORTERS))
def test_no_report_and_no_table_holds_the_token(inputs: Path, name: str) -> None:
    db = inputs / "store.duckdb"
    out = inputs / f"report.{name}"
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(inputs / "log.jsonl"),
            "--inventory",
            str(inputs / "inv.csv"),
            "--db",
            str(db),
            "-f",
            name,
            "-o",
            str(out),
            "--fail-on",
            "never",
            "--verbose",
        ],
    )
    assert result.exit_code == 0, result.output
    signature = TOKEN.split(".")[2]
    assert signature not in result.output
    assert signature not in out.read_text()
    assert signature.encode() not in db.read_bytes()
    assert "secret:" in out.read_text() or name in ("table", "markdown", "junit")
