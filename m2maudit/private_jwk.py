"""Private keys a token carries as JSON Web Keys: found the same way in Python and in SQL.

A DPoP proof's `jwk` header or a `cnf.jwk` claim should hold a public key alone. When the
issuer puts the whole key pair there, the token carries its holder's private key, and anyone
who reads the token (it is only base64) can prove possession as the holder: the binding the
key was for is gone. No secret pattern tells a private member (`d`, `p`, `q`...) from a public
one, so a JWK is judged by its members' names: any object with `kty`, at any depth, header
and claims alike. `token inspect` redacts and reports each one; the scan lists them in
`tokens.claims_secrets` (rule M2M605); both fingerprint a member by its value.
"""

from __future__ import annotations

import json
from typing import Any

from m2maudit.fingerprint import sha256_prefix

KIND = "jwk_private_key"

# A JSON Web Key's private members (RFC 7518 6.2.2, 6.3.2, 6.4.1; RFC 8037). `oth` holds more
# RSA primes.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k", "oth"})


def is_private_member(members: dict[str, Any], name: str) -> bool:
    """Whether `members[name]` is a private member of a JWK that holds something."""
    value = members.get(name)
    return (
        "kty" in members
        and name in PRIVATE_MEMBERS
        and isinstance(value, str | list)
        and bool(value)
    )


def private_member_secret(value: str | list[Any]) -> str:
    """`jwk_private_key:<fingerprint>` of a member's value: a list (`oth`) as DuckDB writes it."""
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    )
    return f"{KIND}:{sha256_prefix(text)}"


def private_jwk_secrets(*documents: Any) -> list[str]:
    """Every private JWK member in the documents (a token's header and claims), as secrets."""
    found: set[str] = set()
    pending = list(documents)
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            found.update(
                private_member_secret(node[name]) for name in node if is_private_member(node, name)
            )
            pending.extend(node.values())
    return sorted(found)


def private_jwk_secrets_sql(document: str) -> str:
    """SQL twin of `private_jwk_secrets` for one JSON expression; NULL when it holds none.

    `json_tree` walks every member; it is given only documents that name `kty` (as DuckDB
    writes them again: a name in `\\u` escapes is named all the same), so a token without
    a JWK (nearly all) costs one `contains`."""
    members = ", ".join(f"'{name}'" for name in sorted(PRIVATE_MEMBERS))
    with_kty = f"CASE WHEN contains(json({document})::VARCHAR, '\"kty\"') THEN {document} END"
    value_text = "CASE WHEN _m.type = 'ARRAY' THEN _m.value::VARCHAR ELSE _m.value ->> '$' END"
    return (
        f"(SELECT list(DISTINCT '{KIND}:' || left(sha256({value_text}), 16)) "
        f"FROM json_tree({with_kty}) _m "
        f"WHERE _m.key IN ({members}) "
        "AND ((_m.type = 'VARCHAR' AND _m.value ->> '$' <> '') "
        "OR (_m.type = 'ARRAY' AND json_array_length(_m.value) > 0)) "
        f"AND json_exists(json_extract({document}, _m.path), '$.kty'))"
    )
