"""The console script's errors: one line on stderr, exit 2, before any input is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from m2maudit import cli as cli_module
from m2maudit.cli import app

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "m2maudit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["scan", "--bogus"], "No such option: --bogus"),
        (["scan", "sample_logs", "--threads", "0"], "--threads"),
        (["scan"], "scan: give a log PATH, or --db with a store that already holds events"),
        (["ingest", "--db", "never-created.duckdb"], "ingest: give a log PATH or --inventory FILE"),
        (["ingest", "sample_logs"], "Missing option '--db'"),
        # From a trial: `--as-of "$AS_OF"` with the variable unset scanned as of now.
        (["scan", "sample_logs/clean", "--as-of", ""], "--as-of: not an ISO 8601 date"),
        (["token", "inspect", "x.y.z", "--as-of", "nope"], "--as-of: not an ISO 8601 date"),
        (["token", "inspect", "x.y.z", "--as-of", ""], "--as-of: not an ISO 8601 date"),
        # A baseline of what a filter leaves in failed the next run on the rest.
        (
            ["scan", "sample_logs/clean", "--write-baseline", "b.json", "--problem", "exposure"],
            "--write-baseline records every finding: run it without --min-severity",
        ),
        (
            ["scan", "sample_logs/clean", "--write-baseline", "b.json", "--min-severity", "high"],
            "--write-baseline records every finding",
        ),
    ],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("m2maudit: error:"), result.stderr
    assert expected in lines[0]


@pytest.mark.parametrize("args", [[], ["token"], ["rules"]], ids=["m2maudit", "token", "rules"])
def test_a_command_without_arguments_shows_its_help_and_no_empty_error(args: list[str]) -> None:
    """It printed its help, then `m2maudit: error:  (see --help)`."""
    result = run(*args)
    assert result.returncode == 2
    assert "Usage:" in result.stdout + result.stderr
    assert "error" not in result.stderr


def test_quiet_counts_the_rejects_of_a_run_that_read_nothing() -> None:
    """--quiet lists no rejected record; a run that read nothing listed ten of them."""
    inventory = "sample_logs/k8s/audit.jsonl"  # a log, read as an inventory: every row rejected
    result = run("scan", "--inventory", inventory, "-q", "--as-of", "2026-11-28T00:00:00Z")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"m2maudit: error: {inventory}: no record could be loaded (27 rejected)"
    ]


def test_a_select_typo_is_an_error_not_a_silent_pass(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("select: [M2M10]\n")
    result = CliRunner().invoke(app, ["scan", str(ROOT / "sample_logs"), "--config", str(config)])
    assert result.exit_code == 2
    assert "select: no rule or problem named 'M2M10'" in result.output


@pytest.mark.parametrize(
    "text",
    [
        "ignore: [missing-user-context, broad-scopes, stale-rotation, long-lifetime,"
        " untraceable-action, exposure]\n",
        "select: [broad-scopes]\nignore: [broad-scopes]\n",
    ],
)
def test_a_config_that_leaves_no_rule_is_an_error(tmp_path: Path, text: str) -> None:
    """From a trial: such a config gave "No findings." and exit 0, a CI gate passing on
    nothing."""
    config = tmp_path / "c.yaml"
    config.write_text(text)
    result = CliRunner().invoke(app, ["scan", str(ROOT / "sample_logs"), "--config", str(config)])
    assert result.exit_code == 2
    assert f"{config}: select and ignore leave no rule to run" in result.output


def test_problem_keys_beyond_the_five_are_accepted() -> None:
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(ROOT / "sample_logs" / "agents"),
            "--problem",
            "exposure",
            "-f",
            "json",
            "--as-of",
            "2026-11-28T00:00:00Z",
            "--fail-on",
            "never",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert '"problem": "exposure"' in result.stdout


def test_rules_are_checked_before_inputs_are_read(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "X100-bad.yaml").write_text("id: X100\n")
    result = CliRunner().invoke(
        app, ["scan", str(tmp_path / "missing.jsonl"), "--rules", str(rules)]
    )
    assert result.exit_code == 2
    assert "X100-bad.yaml" in result.output
    assert "missing.jsonl" not in result.output


@pytest.mark.parametrize(
    "interrupt",
    [
        RuntimeError("Query interrupted"),  # DuckDB 2.0 stopping a query on Ctrl-C
        duckdb.InterruptException("INTERRUPT Error: Interrupted!"),
        KeyboardInterrupt(),  # Ctrl-C between queries
    ],
    ids=["duckdb-runtime-error", "duckdb-interrupt-exception", "keyboard-interrupt"],
)
def test_ctrl_c_is_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: BaseException
) -> None:
    """DuckDB stops its query on SIGINT and raises its own error, not KeyboardInterrupt:
    each is the same "interrupted", never "internal error"."""

    def interrupted(*_: object, **__: object) -> None:
        raise interrupt

    monkeypatch.setattr(cli_module, "run_scan", interrupted)
    log = tmp_path / "a.jsonl"
    log.write_text('{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"}\n')
    result = CliRunner().invoke(app, ["scan", str(log), "--quiet"])
    assert result.exit_code == 130
    assert result.output.strip().splitlines()[-1] == "m2maudit: error: interrupted"


def test_another_runtime_error_is_not_called_an_interrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(cli_module, "run_scan", broken)
    log = tmp_path / "a.jsonl"
    log.write_text('{"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"}\n')
    result = CliRunner().invoke(app, ["scan", str(log), "--quiet"])
    assert isinstance(result.exception, RuntimeError)


def test_sigterm_outside_a_query_ends_as_an_interrupt(tmp_path: Path) -> None:
    """From a second trial: SIGTERM at start-up or while a report was written killed the
    process with 143 and no message; the README promises exit 130 and one line."""
    import signal
    import time

    # `token inspect -` waits on standard input: a command in progress.
    process = subprocess.Popen(
        [sys.executable, "-m", "m2maudit", "token", "inspect", "-"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert stderr.strip() == "m2maudit: error: interrupted"
