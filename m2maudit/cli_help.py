"""How the commands' `--help` reads: typer 0.29 shows each option's Python type after it.

After a flag that meant `<bool>`, and users typed `--strict true`, which was then read as a
path. Every flag therefore gets an empty metavar (`FLAG`), every option that takes a value a
name for it (`--as-of TIME`), and every command the class below, which does the same for the
`--help` flag that Click adds.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

FLAG = ""


class _FlagHelp:
    """`--help` shown as the flag it is (its option is made by Click, not declared by us)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = FLAG
        return option


class HelpCommand(_FlagHelp, TyperCommand):
    """The class of every m2maudit command."""


class HelpGroup(_FlagHelp, TyperGroup):
    """The class of m2maudit and its command groups (`token`, `rules`)."""
