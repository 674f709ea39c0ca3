"""What `token inspect` may show of a token: its header and claims with every secret cut out.

A JWT's claims are only base64, readable by anyone who holds the token, and people put
secrets in them: a client secret, a password, an upstream token to replay. The command's
output goes into tickets and chats, so it must not carry them. Each member is judged as the
scan's leak check judges a log record (`secrets`, the Python twin of its SQL), with its name
(`"client_secret": "..."` is a secret by its name); a member whose name is itself a secret is
renamed. What a pattern finds is redacted; a value still holding a secret after that (one by
its name, one cut across list items) is replaced whole. So is a JSON Web Key's private member
(`d`, `p`, `q`...), which no pattern tells from a public one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Any

from m2maudit.private_jwk import is_private_member, private_member_secret
from m2maudit.secrets import all_secrets, breaks_spaced, find_secret, redact_secrets
from m2maudit.token_claims import DecodedToken

REDACTED = "[redacted]"


@dataclass(frozen=True)
class ExposedSecrets:
    """The secrets one member holds (`claim note`, `header jku`), each `kind:fingerprint`."""

    path: str
    secrets: list[str]


def without_secrets(decoded: DecodedToken) -> tuple[DecodedToken, list[ExposedSecrets]]:
    """The token as it may be shown, and where each secret was cut out.

    The row's values come from the claims, so they are cleaned too: its lists also as their
    items joined, as the scan cleans stored lists (a private key split into scopes)."""
    exposed: list[ExposedSecrets] = []
    header = _members(decoded.header, "header", exposed)
    claims = _members(decoded.claims, "claim", exposed)
    row = replace(
        decoded.row,
        **{
            column.name: _clean_value(getattr(decoded.row, column.name))
            for column in fields(decoded.row)
        },
    )
    return DecodedToken(row, header, claims), exposed


def _members(
    members: dict[str, Any] | None,
    where: str,
    exposed: list[ExposedSecrets],
    parents: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """`where` is `claim` or `header` at the top (`claim sub`), a member's path below it
    (`claim ctx.key`); `parents` the names of the members holding these (`"client_secret":
    {"current": {"value": "..."}}` is a secret by an enclosing name)."""
    if members is None:
        return None
    separator = "." if parents else " "
    cleaned: dict[str, Any] = {}
    for index, (name, value) in enumerate(members.items(), start=1):
        shown, path = name, f"{where}{separator}{name}"
        if find_secret(name) is not None:  # a secret written as a member's name
            shown, path = f"{REDACTED} #{index}", f"{where}{separator}#{index}"
            exposed.append(ExposedSecrets(f"{path} (its name)", all_secrets(name) or []))
        if is_private_member(members, name):
            exposed.append(ExposedSecrets(path, [private_member_secret(value)]))
            cleaned[shown] = REDACTED
            continue
        cleaned[shown] = _member((name, *parents), value, path, exposed)
    return cleaned


def _member(names: tuple[str, ...], value: Any, path: str, exposed: list[ExposedSecrets]) -> Any:
    """`names`: the member's own name, then its parents'."""
    if isinstance(value, dict):
        return _members(value, path, exposed, parents=names)
    if isinstance(value, list):
        return _list_member(names, value, path, exposed)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    found = _secrets_of(names, value)
    if found is None:
        return value
    exposed.append(ExposedSecrets(path, found))
    if not isinstance(value, str):  # a number under a password's name: a PIN
        return REDACTED
    redacted = redact_secrets(value)
    return redacted if _secrets_of(names, redacted) is None else REDACTED


def _list_member(
    names: tuple[str, ...], value: list[Any], path: str, exposed: list[ExposedSecrets]
) -> list[Any]:
    """Item by item, then the text items joined: a private key split into scopes is one."""
    items = [_member(names, item, f"{path}[{n}]", exposed) for n, item in enumerate(value)]
    if not items or not all(isinstance(item, str) for item in value):
        return items
    if _secrets_of(names, " ".join(items)) is None:
        return items
    exposed.append(ExposedSecrets(path, _secrets_of(names, " ".join(value)) or []))
    return [REDACTED]


def _secrets_of(names: tuple[str, ...], value: str | float) -> list[str] | None:
    """The secrets of `value` judged under each of its names, or None."""
    found = sorted(
        {s for name in names for s in all_secrets(breaks_spaced(_as_member(name, value))) or []}
    )
    return found or None


def _as_member(name: str, value: str | float) -> str:
    """`"name":"value"` as the scan judges a token's claims: DuckDB's `json()` text, without
    spaces, so that a secret found by its name has the scan's fingerprint (M2M605). Its
    escaped line breaks are spaces when judged (`breaks_spaced`), as there."""
    return json.dumps({name: value}, ensure_ascii=False, separators=(",", ":"))[1:-1]


def redacted_text(text: str) -> str:
    """Text m2maudit writes about a token (a signature check naming its `kid` or `alg`),
    cleaned as a member's value is."""
    cleaned = _clean_value(text)
    return cleaned if isinstance(cleaned, str) else REDACTED


def _clean_value(value: Any) -> Any:
    if isinstance(value, str):
        redacted = redact_secrets(value)
        return redacted if find_secret(redacted) is None else REDACTED
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [_clean_value(item) for item in value]
        return items if find_secret(" ".join(items)) is None else [REDACTED]
    return value
