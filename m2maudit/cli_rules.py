"""`m2maudit rules list|show|lint|test`: the rule pack, for people who read and write rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from m2maudit.cli_common import HelpCommand, HelpGroup
from m2maudit.config import load_config
from m2maudit.console import print_trimmed
from m2maudit.engine import check_rules_against_schema
from m2maudit.errors import AuditError
from m2maudit.reporters.serialize import clean_text
from m2maudit.rules import Rule, RuleErrors, load_rules, name_clashes, same_rule_file
from m2maudit.ruletest import case_data_problems, run_rule_tests
from m2maudit.timeutil import utc_now
from m2maudit.wording import counted

rules_app = typer.Typer(
    cls=HelpGroup, help="List, show, lint and test rules.", no_args_is_help=True
)

DirArg = Annotated[
    Path | None,
    typer.Argument(
        help="A rules directory or one rule file (default: the bundled pack).",
        show_default=False,
        metavar="PATH",
    ),
]
RulesOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        metavar="DIR",
        help="Extra rules directory (repeatable), added to the bundled pack.",
    ),
]


def _load(directory: Path | None, extra: list[Path] | None) -> list[Rule]:
    if directory is not None:
        return load_rules([directory], include_pack=False)
    return load_rules(list(extra or []))


@rules_app.command("list", cls=HelpCommand)
def list_rules(
    rules: RulesOpt = None,
    output_format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="table or json.")
    ] = "table",
) -> None:
    """Every rule with its problem, severity and OWASP NHI mapping."""
    from m2maudit.cli import handle_errors

    @handle_errors
    def run() -> None:
        loaded = _load(None, rules)
        if output_format == "json":
            rows = [
                {
                    "id": r.id,
                    "name": r.name,
                    "title": r.title,
                    "status": r.status,
                    "problem": r.problem,
                    "severity": r.severity,
                    "confidence": r.confidence,
                    "incident": r.incident,
                    "owasp_nhi": r.owasp_nhi,
                    "requires": r.requires,
                    "file": str(r.path),
                }
                for r in loaded
            ]
            typer.echo(json.dumps(rows, indent=2))
            return
        if output_format != "table":
            raise AuditError(f"--format: unknown format {output_format!r}; use table or json")
        # No rules between columns: they fit 80 characters with the names whole.
        table = Table(title=f"{len(loaded)} rules", title_justify="left", box=None, pad_edge=False)
        # Names and keys whole (folded, `agent-action-without-huma` / `n` reads as two); the
        # OWASP ids, a list, wrap between items.
        for column in ("id", "name", "problem", "severity"):
            table.add_column(column, no_wrap=True)
        table.add_column("owasp", overflow="fold", min_width=4)
        for r in loaded:
            owasp = Text(clean_text(", ".join(map(str, r.owasp_nhi))))  # text, not markup
            table.add_row(r.id, r.name, r.problem, r.severity, owasp)
        console = Console(emoji=False)
        print_trimmed(console, table)
        # The rules not stable (one's own, say: the bundled pack's are), after the table: a
        # status column would cost it its fit in 80 characters.
        unstable = [f"{r.id} {r.status}" for r in loaded if r.status != "stable"]
        if unstable:
            console.print(f"not stable: {', '.join(unstable)}", markup=False, highlight=False)

    run()


@rules_app.command("show", cls=HelpCommand)
def show_rule(
    rule_id: Annotated[str, typer.Argument(metavar="RULE", help="Rule id or name, e.g. M2M101.")],
    rules: RulesOpt = None,
) -> None:
    """One rule: its documentation, parameters and SQL."""
    from m2maudit.cli import handle_errors

    @handle_errors
    def run() -> None:
        loaded = _load(None, rules)
        wanted = rule_id.lower()  # `m2m406` as `M2M406`: ids and names are unique in any case
        match = [r for r in loaded if wanted in (r.id.lower(), r.name.lower())]
        if not match:
            raise AuditError(f"no rule {rule_id!r}; see `m2maudit rules list`")
        r = match[0]
        # A rule file is untrusted: its text is shown as text, never read as rich markup
        # (`[/]` in a title stopped the command) or escape codes.
        console = Console(emoji=False, highlight=False)
        console.print(Text.assemble((f"{r.id} {r.name}", "bold"), f": {clean_text(r.title)}"))
        console.print(
            clean_text(
                f"problem: {r.problem}   severity: {r.severity}   "
                f"confidence: {r.confidence}   status: {r.status}   "
                f"OWASP: {', '.join(map(str, r.owasp_nhi)) or '-'}"
            ),
            markup=False,
        )
        console.print(f"\n{_clean_lines(r.description)}\n", markup=False)
        console.print(Text.assemble(("Remediation", "bold"), f": {_clean_lines(r.remediation)}"))
        if r.incident:
            console.print(
                "\n[bold]Incident[/]: a baseline covers a finding only up to the last call it "
                "recorded; a later call makes it active again."
            )
        if r.params:
            parameters = ", ".join(f"{k} = {v}" for k, v in r.params.items())
            console.print(
                Text.assemble("\n", ("Parameters", "bold"), f": {clean_text(parameters)}")
            )
        for ref in r.references:  # whole, for the terminal to wrap: a link cut in two is lost
            console.print(f"  {clean_text(ref)}", soft_wrap=True, markup=False)
        # The SQL as written: wrapping would split identifiers mid-word.
        console.print(Syntax(_clean_lines(r.query), "sql", theme="ansi_dark"), soft_wrap=True)
        console.print(f"file: {clean_text(r.path)}", markup=False)

    run()


def _clean_lines(text: str) -> str:
    """A rule's text, stripped, each line made safe for a terminal (`clean_text`), its line
    breaks kept: a query or a `|` block printed on one line is unreadable."""
    return "\n".join(clean_text(line) for line in text.strip().splitlines())


@rules_app.command("lint", cls=HelpCommand)
def lint_rules(directory: DirArg = None) -> None:
    """Check every rule file: keys, types, one SELECT, output columns (no data needed)."""
    from m2maudit.cli import handle_errors

    @handle_errors
    def run() -> None:
        loaded = _checked(directory, clashes=True)
        typer.echo(f"{counted(len(loaded), 'rule')} OK")

    run()


def _checked(directory: Path | None, clashes: bool = False) -> list[Rule]:
    """The rules, loaded and bound to the schema; every problem on a line of its own (scan
    shows only the first), then exit 2.

    A file that does not load does not stop the others from being bound to the schema.
    With `clashes` (lint), a directory of your own is checked against the bundled pack's
    ids, which `scan --rules` adds it to."""
    from m2maudit.cli import EXIT_ERROR

    errors: list[str] = []
    unbound: list[Rule] = []
    try:
        loaded = _load(directory, None)
    except RuleErrors as exc:
        errors, loaded, unbound = list(exc.errors), exc.loaded, exc.unbound
    try:
        check_rules_against_schema(loaded, load_config(None), utc_now())
    except RuleErrors as exc:
        errors += exc.errors
    errors += case_data_problems([*loaded, *unbound])
    if clashes:
        errors += _clashes_with_the_pack(directory, [*loaded, *unbound])
    for error in errors:  # rule files are untrusted: their text reaches the terminal inert
        typer.echo(f"m2maudit: error: {clean_text(error)}", err=True)
    if errors:
        raise typer.Exit(EXIT_ERROR)
    return loaded


def _clashes_with_the_pack(directory: Path | None, rules: list[Rule]) -> list[str]:
    """Ids of a directory's rules that the bundled pack already uses for another rule.

    A byte-for-byte copy of a bundled rule is not a clash (a checkout's `rules/` linted with
    an installed m2maudit, whose pack lives elsewhere): `scan --rules` reads it once."""
    if directory is None:
        return []
    pack = load_rules([])
    bundled = {rule.id.lower(): rule.path for rule in pack}  # as `load_rules` compares ids
    return [
        f"{rule.path}:1: rule id {rule.id} is the bundled pack's "
        f"({bundled[rule.id.lower()].name}); `scan --rules` adds to the pack, so pick another id"
        for rule in rules
        if rule.id.lower() in bundled and not same_rule_file(bundled[rule.id.lower()], rule.path)
    ] + name_clashes(rules, pack)


@rules_app.command("test", cls=HelpCommand)
def test_rules(directory: DirArg = None) -> None:
    """Run every rule's own test cases (a case that fires and one that must not)."""
    from m2maudit.cli import handle_errors
    from m2maudit.policy import EXIT_FINDINGS

    @handle_errors
    def run() -> None:
        loaded = _checked(directory)
        # The cases still run; what `scan --rules` would refuse is said, not hidden.
        for clash in _clashes_with_the_pack(directory, loaded):
            typer.echo(f"m2maudit: warning: {clean_text(clash)}", err=True)
        results = run_rule_tests(loaded)
        failed = [r for r in results if not r.passed]
        for result in failed:
            line = f"FAIL {result.path}: {result.rule_id} {result.name!r}: {result.detail}"
            typer.echo(clean_text(line), err=True)
        typer.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
        if failed:
            raise typer.Exit(EXIT_FINDINGS)

    run()
