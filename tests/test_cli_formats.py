"""`m2maudit formats` and `--format-hint`, through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.sources import ADAPTERS
from tests.source_support import real_logs_dir, write_jsonl

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parent.parent / "sample_logs"


def test_lists_every_registered_adapter_in_detection_order() -> None:
    result = runner.invoke(app, ["formats"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    positions = [result.stdout.index(f"│ {adapter.name} ") for adapter in ADAPTERS]
    assert positions == sorted(positions)


@pytest.mark.parametrize("args", [["formats"], ["formats", "cloudtrail"]])
def test_tables_have_no_trailing_spaces_in_a_log(args: list[str]) -> None:
    """Piped into a file or a CI log, rich pads every line to the width; not here."""
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) > 5 and [line for line in lines if line != line.rstrip()] == []


def test_json_lists_every_adapter_with_a_documented_mapping() -> None:
    result = runner.invoke(app, ["formats", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [entry["name"] for entry in listed] == [adapter.name for adapter in ADAPTERS]
    for entry in listed:
        assert entry["kind"] in ("events", "inventory")
        assert entry["description"]
        assert entry["fields"], f"{entry['name']} has no field_map"
        assert all(field["column"] and field["source"] for field in entry["fields"])
        if entry["kind"] == "events":  # every log format looks for secrets in clear
            assert "leaked_secret" in [f["column"] for f in entry["fields"]], entry["name"]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda adapter: adapter.name)
def test_each_format_shows_its_mapping(adapter: object) -> None:
    name = adapter.name  # type: ignore[attr-defined]
    result = runner.invoke(app, ["formats", name], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    for column, _source in adapter.field_map:  # type: ignore[attr-defined]
        assert column in result.stdout
    as_json = json.loads(runner.invoke(app, ["formats", name, "-f", "json"]).stdout)
    assert as_json["name"] == name


def test_vault_mapping_names_the_vendor_fields() -> None:
    result = runner.invoke(app, ["formats", "vault-audit"], env={"COLUMNS": "200"})
    assert "auth.accessor" in result.stdout
    assert "auth.token_ttl" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["formats", "no-such-format"], "unknown format 'no-such-format'; known: ocsf"),
        (["formats", "--format", "xml"], "--format: expected one of table, json"),
    ],
)
def test_bad_requests_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_format_hint_on_scan(tmp_path: Path) -> None:
    bare = {"published": "2024-06-01T10:00:00Z", "actor": {"id": "00u1", "type": "User"}}
    path = write_jsonl(tmp_path / "bare.jsonl", [bare])
    detected = runner.invoke(app, ["scan", str(path), "--quiet"])
    assert detected.exit_code == 2
    assert "unrecognised format" in detected.stderr
    hinted = runner.invoke(
        app, ["scan", str(path), "--quiet", "--format-hint", "okta", "--fail-on", "never"]
    )
    assert hinted.exit_code == 0, hinted.stderr
    assert "1 loaded" in hinted.stderr
    unknown = runner.invoke(app, ["scan", str(path), "--format-hint", "oktaa"])
    assert unknown.exit_code == 2
    assert "--format-hint: unknown format 'oktaa'" in unknown.stderr


def test_a_format_hint_keeps_the_inventory_found_beside_the_logs(tmp_path: Path) -> None:
    """A directory of logs holds an inventory: the hint names the logs' format, and the
    inventory stays one. Named by its own path, a file is read as the hint says."""
    estate = tmp_path / "estate"
    shutil.copytree(SAMPLES / "agents", estate)
    args = ["--format-hint", "generic-log", "-f", "json", "--fail-on", "never", "-q"]
    found = runner.invoke(app, ["scan", str(estate), *args])
    assert found.exit_code == 0, found.stderr
    formats = {Path(i["source"]).name: i["format"] for i in json.loads(found.stdout)["inputs"]}
    assert formats == {"access.jsonl": "generic-log", "inventory.csv": "generic-inventory"}
    named = runner.invoke(app, ["scan", str(estate / "inventory.csv"), *args])
    assert named.exit_code == 2  # read as a log, none of its rows is a call
    assert "inventory.csv: no record could be loaded (9 rejected)" in named.stderr


def test_scan_of_my_sample_folders_detects_each_file() -> None:
    folders = [
        real_logs_dir() / name for name in ("okta", "github_audit", "vault_audit", "entra_signin")
    ]
    result = runner.invoke(
        app, ["scan", *map(str, folders), "--quiet", "--fail-on", "never"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.stderr
    assert "0 files unreadable" in result.stderr


def test_a_format_and_a_rule_are_named_in_any_case() -> None:
    """From a trial: `formats OKTA` and `rules show m2m406` said there was no such thing."""
    upper = runner.invoke(app, ["formats", "OKTA", "--format", "json"])
    assert upper.exit_code == 0, upper.stderr
    assert json.loads(upper.stdout)["name"] == "okta"
    rule = runner.invoke(app, ["rules", "show", "m2m406"])
    assert rule.exit_code == 0 and rule.stdout.startswith("M2M406 use-after-revocation")
    assert runner.invoke(app, ["rules", "show", "Use-After-Revocation"]).exit_code == 0
    assert runner.invoke(app, ["formats", "okta2"]).exit_code == 2
