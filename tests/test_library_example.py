"""The library example in docs/output.md runs as written: a user copies it first."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_documented_library_example_scans_and_gates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    section = docs[docs.index("## Using the library") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    (tmp_path / "sample_logs").symlink_to(ROOT / "sample_logs")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(match.group(1), "docs/output.md", "exec"), scope)  # our own docs
    assert scope["code"] == 1  # the sample estate has high findings
    sarif = json.loads((tmp_path / "report.sarif").read_text(encoding="utf-8"))
    result = scope["result"]
    assert len(sarif["runs"][0]["results"]) == len(result.findings)  # type: ignore[attr-defined]
