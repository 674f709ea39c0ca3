"""`m2maudit token ...`: commands about one bearer token. A thin shell over `token_inspect`.

Pass the token as `-` and pipe it in: a token on the command line lands in shell history and
in the process list. Errors are one line on stderr and exit 2 (cli.handle_errors); the token
is never echoed back.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from m2maudit.cli_common import HelpCommand, HelpGroup, clock_of
from m2maudit.config import load_config
from m2maudit.errors import AuditError
from m2maudit.policy import EXIT_FINDINGS
from m2maudit.token_inspect import inspect_token, read_token_file, to_json
from m2maudit.token_render import print_inspection

token_app = typer.Typer(
    cls=HelpGroup,
    help="Inspect one bearer token (JWT): claims, delegation chain, problems, signature.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


class InspectFormat(StrEnum):
    table = "table"
    json = "json"


def _guarded(command: F) -> F:
    """cli.handle_errors, looked up at call time: cli imports this module to register it."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from m2maudit.cli import handle_errors

        return handle_errors(command)(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@token_app.command("inspect", cls=HelpCommand)
@_guarded
def inspect(
    token: Annotated[
        str,
        typer.Argument(
            help="The token (a JWT, with or without 'Bearer '), or - to read it from stdin "
            "(safer: keeps it out of shell history).",
            show_default=False,
            metavar="TOKEN",
        ),
    ],
    output_format: Annotated[
        InspectFormat,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="table (a panel for people) or json (for scripts).",
            case_sensitive=False,
        ),
    ] = InspectFormat.table,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            metavar="FILE",
            help="Check the signature with this PEM public key or certificate "
            "(for HS* tokens: a file holding the shared secret).",
        ),
    ] = None,
    jwks: Annotated[
        Path | None,
        typer.Option(
            "--jwks",
            metavar="FILE",
            help="Check the signature with the key of this JWK Set file that "
            "matches the token's kid. Never fetched from the network.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            help="Config file (default: ./.m2maudit.yaml if present).",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            metavar="TIME",
            help="The clock for expiry and age (ISO 8601, UTC if no offset). Default: now.",
        ),
    ] = None,
) -> None:
    """Decode one token and show what it says and which problems it shows by itself."""
    clock = clock_of(as_of)
    settings = load_config(config)
    text = read_token_file(sys.stdin) if token == "-" else token
    try:
        inspection = inspect_token(text, settings, clock, key_file=key, jwks_file=jwks)
    except AuditError as error:
        if token != "-" and _looks_like_a_path(token):
            raise AuditError(
                f"{error}; to read a token from a file: token inspect - < FILE"
            ) from None
        raise
    if output_format is InspectFormat.json:
        typer.echo(json.dumps(to_json(inspection), indent=2))  # ASCII: no raw control bytes
    else:
        print_inspection(Console(highlight=False, emoji=False), inspection)
    if (key or jwks) and inspection.signature.status != "valid":
        raise typer.Exit(EXIT_FINDINGS)  # asked to verify it, a script can gate on the answer


def _looks_like_a_path(argument: str) -> bool:
    """A JWT holds no slash (base64url has none): a slash, or an existing file, is a path
    given where the token belongs. The argument is not echoed: it may be an opaque token."""
    if "/" in argument or "\\" in argument:
        return True
    try:
        return Path(argument).is_file()
    except (OSError, ValueError):  # a token is too long to be a file name
        return False
