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


# JSON objects in JSON text, for RE2 (which has no recursion): those without a nested object
# or array, and those whose arrays hold scalars or such flat objects (RSA's `oth`). A JSON
# Web Key is one or the other.
_FLAT_OBJECT = r"\{[^{}]*\}"
_OBJECT_WITH_LISTS = r"\{(?:[^{}\[\]]|\[(?:[^\[\]{}]|\{[^{}]*\})*\])*\}"


def private_jwk_secrets_sql(text: str) -> str:
    """SQL twin of `private_jwk_secrets` for one JSON document's text as DuckDB writes it
    (`json(x)::VARCHAR`: names in `\\u` escapes written plainly, no spaces); NULL when it
    holds none. Scalar functions only, behind a `contains` for `"kty"`: a correlated
    `json_tree` walk made DuckDB carry every token's row through a join, 40 % of decoding.
    (A key with an object nested in it, which no JWK has, is not found here.)"""
    members = "[" + ", ".join(f"'{name}'" for name in sorted(PRIVATE_MEMBERS)) + "]"
    path = "'$.' || _n"
    holds = (
        f"CASE json_type(_o, {path}) WHEN 'VARCHAR' THEN (_o ->> ({path})) <> '' "
        f"WHEN 'ARRAY' THEN json_array_length(_o, {path}) > 0 ELSE false END"
    )
    value = (
        f"CASE json_type(_o, {path}) WHEN 'ARRAY' THEN json_extract(_o, {path})::VARCHAR "
        f"ELSE _o ->> ({path}) END"
    )
    keys = (
        f"list_filter(list_concat(regexp_extract_all({text}, '{_FLAT_OBJECT}'), "
        f"regexp_extract_all({text}, '{_OBJECT_WITH_LISTS}')), "
        "lambda _o: json_exists(_o, '$.kty'))"
    )
    secrets = (
        f"list_transform(list_filter({members}, lambda _n: {holds}), "
        f"lambda _n: '{KIND}:' || left(sha256({value}), 16))"
    )
    return (
        f"CASE WHEN contains({text}, '\"kty\"') THEN "
        f"nullif(list_distinct(flatten(list_transform({keys}, lambda _o: {secrets}))), []) END"
    )
