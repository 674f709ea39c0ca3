"""`m2maudit scan` end to end on the sample estate: exit codes, formats, baseline round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m2maudit.cli import app

ROOT = Path(__file__).resolve().parent.parent
AS_OF = ["--as-of", "2026-11-28T00:00:00Z"]


def scan(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["scan", *args, *AS_OF, "-q"])
    return result.exit_code, result.stdout


@pytest.mark.parametrize(("fail_on", "code"), [("high", 1), ("critical", 1), ("never", 0)])
def test_exit_code_follows_fail_on(fail_on: str, code: int) -> None:
    assert scan(str(ROOT / "sample_logs" / "agents"), "--fail-on", fail_on, "-f", "json")[0] == code


def test_clean_estate_exits_0() -> None:
    code, out = scan(str(ROOT / "sample_logs" / "clean"), "-f", "json")
    assert code == 0
    assert json.loads(out)["findings"] == []


def test_format_never_changes_exit_code(tmp_path: Path) -> None:
    codes = {
        name: scan(str(ROOT / "sample_logs"), "-f", name, "-o", str(tmp_path / name))[0]
        for name in ("table", "json", "csv", "sarif", "junit", "markdown")
    }
    assert set(codes.values()) == {1}
    sarif = json.loads((tmp_path / "sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]


def test_reports_are_byte_identical_across_runs(tmp_path: Path) -> None:
    for run in ("a", "b"):
        scan(str(ROOT / "sample_logs"), "-f", "json", "-o", str(tmp_path / run))
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_baseline_round_trip(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    agents = str(ROOT / "sample_logs" / "agents")
    assert scan(agents, "--write-baseline", str(base), "-f", "json")[0] == 1
    assert scan(agents, "--baseline", str(base), "-f", "json")[0] == 0
    extra = tmp_path / "new.jsonl"
    extra.write_text(
        '{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-new", '
        '"principal_type": "agent", "token_id": "key-new"}\n'
    )
    code, out = scan(agents, str(extra), "--baseline", str(base), "-f", "json")
    assert code == 1
    failing = {
        f["principal"]
        for f in json.loads(out)["findings"]
        if not f["baselined"] and f["severity"] in ("high", "critical")
    }
    assert failing == {"agent-new"}


def test_failed_scan_leaves_no_output_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    code, _ = scan(str(tmp_path / "missing.jsonl"), "-f", "json", "-o", str(out))
    assert code == 2
    assert not out.exists()
