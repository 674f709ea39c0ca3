"""`m2maudit formats`: which input formats m2maudit reads, and how each maps to its tables.

It reads only the adapter registry (`m2maudit.sources.ADAPTERS`), so a newly registered
adapter shows up here with no edit: its `name`, `kind`, `description` and `field_map`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from m2maudit.console import print_trimmed
from m2maudit.errors import AuditError
from m2maudit.sources import ADAPTERS, adapter_named
from m2maudit.sources.base import SourceAdapter

OUTPUT_FORMATS = ("table", "json")


def describe(adapter: SourceAdapter, order: int) -> dict[str, Any]:
    """One adapter as plain data: what `--format json` prints."""
    field_map: tuple[tuple[str, str], ...] = getattr(adapter, "field_map", ())
    return {
        "name": adapter.name,
        "kind": adapter.kind,
        "description": adapter.description,
        "detection_order": order,
        "fields": [{"column": column, "source": source} for column, source in field_map],
    }


def formats_command(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="FORMAT",
            help="Show how this format maps to the canonical columns.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="Output: table or json.")
    ] = "table",
) -> None:
    """List the input formats m2maudit detects (in detection order), or one format's mapping.

    Detection reads content, never file names; `--format-hint NAME` on scan/ingest skips it.
    """
    output = output.lower()
    if output not in OUTPUT_FORMATS:
        raise AuditError(f"--format: expected one of {', '.join(OUTPUT_FORMATS)}, not {output!r}")
    described = [describe(adapter, order) for order, adapter in enumerate(ADAPTERS, start=1)]
    if name is not None:
        adapter = adapter_named(name)
        if adapter is None:
            known = ", ".join(adapter.name for adapter in ADAPTERS)
            raise AuditError(f"unknown format {name!r}; known: {known}")
        described = [entry for entry in described if entry["name"] == adapter.name]
    if output == "json":
        typer.echo(json.dumps(described[0] if name else described, indent=2))
        return
    console = Console(highlight=False, emoji=False)
    if name:
        _print_mapping(console, described[0])
    else:
        _print_list(console, described)


def _print_list(console: Console, described: list[dict[str, Any]]) -> None:
    table = Table(title="Input formats (in detection order)", title_justify="left")
    for column in ("name", "kind", "description"):
        table.add_column(column, overflow="fold", no_wrap=column == "name")
    for entry in described:
        table.add_row(escape(entry["name"]), entry["kind"], escape(entry["description"]))
    print_trimmed(console, table)
    console.print(
        "`m2maudit formats NAME` shows how NAME maps to the canonical columns; "
        "`--format-hint NAME` on scan/ingest skips detection.",
        markup=False,
    )


def _print_mapping(console: Console, entry: dict[str, Any]) -> None:
    console.print(f"{entry['name']} ({entry['kind']}): {entry['description']}", markup=False)
    table = Table(title_justify="left")
    table.add_column("canonical column", overflow="fold")
    table.add_column("read from", overflow="fold")
    for field in entry["fields"]:
        table.add_row(escape(field["column"]), escape(field["source"]))
    if not entry["fields"]:
        table.add_row("(not documented)", "")
    print_trimmed(console, table)
