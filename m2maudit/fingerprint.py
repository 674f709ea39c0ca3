"""Stable fingerprints for secrets: the only form in which a token may be stored or shown.

The SQL expression and the Python function must agree byte for byte, so a token seen in a log
(fingerprinted inside DuckDB) matches the same token pasted into `m2maudit token inspect`.
"""

import hashlib
import re

FINGERPRINT_HEX = 16
_BEARER = re.compile(r"^[ \t\r\n]*bearer[ \t\r\n]+", re.IGNORECASE)
_WHITESPACE = " \t\r\n"


def bare_token(authorization: str) -> str:
    """Strip an optional `Bearer ` scheme and surrounding white space."""
    return _BEARER.sub("", authorization).strip(_WHITESPACE)


def fingerprint(secret: str) -> str:
    """SHA-256 of the bare secret, first 16 hex characters."""
    return sha256_prefix(bare_token(secret))


def sha256_prefix(text: str) -> str:
    """The first 16 hex characters of the SHA-256 of `text`: the SQL's `left(sha256(t), 16)`."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX]


_WHITESPACE_SQL = "(' ' || chr(9) || chr(13) || chr(10))"


def bare_token_sql(expr: str) -> str:
    """SQL twin of `bare_token` for a VARCHAR expression.

    String functions, not a regex, and the common shapes (`Bearer <token>`, a bare token) take
    a path that copies the token at most once: this runs once per event, and trimming copies
    of 500-byte tokens cost over a second per million events.
    """
    ws = "(' ', chr(9), chr(13), chr(10))"
    head = f"ltrim({expr}, {_WHITESPACE_SQL})"
    scheme = f"lower(left({head}, 6)) = 'bearer' AND substr({head}, 7, 1) IN {ws}"
    rest = f"CASE WHEN {scheme} THEN ltrim(substr({head}, 7), {_WHITESPACE_SQL}) ELSE {head} END"
    general = f"rtrim({rest}, {_WHITESPACE_SQL})"
    return (
        f"CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN left({expr}, 1) IN {ws} OR right({expr}, 1) IN {ws} THEN {general} "
        f"WHEN lower(left({expr}, 6)) = 'bearer' AND substr({expr}, 7, 1) IN {ws} "
        f"THEN CASE WHEN substr({expr}, 8, 1) IN {ws} THEN {general} "
        f"ELSE substr({expr}, 8) END "
        f"ELSE {expr} END"
    )


def fingerprint_sql(expr: str) -> str:
    """SQL twin of `fingerprint`: NULL stays NULL, an empty token has no fingerprint."""
    bare = bare_token_sql(expr)
    return (
        f"CASE WHEN nullif({bare}, '') IS NULL THEN NULL "
        f"ELSE left(sha256({bare}), {FINGERPRINT_HEX}) END"
    )
