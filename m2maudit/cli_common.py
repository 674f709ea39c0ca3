"""What the command modules share: how their `--help` reads, and how `--as-of` is read.

typer 0.29 shows each option's Python type after it. After a flag that meant `<bool>`, and
users typed `--strict true`, which was then read as a path. Every flag therefore gets an
empty metavar (`FLAG`), every option that takes a value a name for it (`--as-of TIME`), and
every command the class below, which does the same for the `--help` flag that Click adds
and shows an argument by its name alone (`PATH`, not `PATH <list[str]>`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup

from m2maudit.errors import AuditError
from m2maudit.timeutil import parse_instant, utc_now

FLAG = ""


class _FlagHelp:
    """`--help` shown as the flag it is (its option is made by Click, not declared by us), and
    each argument by its name alone."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:  # type: ignore[attr-defined]
            if isinstance(param, TyperArgument):  # not `PATH <list[str]>`: a Python type
                param.display_type_rich = _no_type  # type: ignore[method-assign]

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = FLAG
        return option


def _no_type(ctx: Any) -> None:
    return None


class HelpCommand(_FlagHelp, TyperCommand):
    """The class of every m2maudit command."""


class HelpGroup(_FlagHelp, TyperGroup):
    """The class of m2maudit and its command groups (`token`, `rules`)."""


def clock_of(as_of: str | None) -> datetime:
    """The clock a command's `--as-of` gives, or now when it is not given. `--as-of ""` (an
    unset variable in CI) is an error, not a run pinned to nothing."""
    try:
        return parse_instant(as_of) if as_of is not None else utc_now()
    except AuditError as exc:
        raise AuditError(f"--as-of: {exc}") from None
