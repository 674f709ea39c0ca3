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
    digest = hashlib.sha256(bare_token(secret).encode("utf-8")).hexdigest()
    return digest[:FINGERPRINT_HEX]


_WHITESPACE_SQL = "(' ' || chr(9) || chr(13) || chr(10))"


def bare_token_sql(expr: str) -> str:
    """SQL twin of `bare_token` for a VARCHAR expression.

    String functions, not a regex: this runs once per event, and a regex per row cost about
    a second per million events.
    """
    head = f"ltrim({expr}, {_WHITESPACE_SQL})"
    scheme = (
        f"lower(left({head}, 6)) = 'bearer' "
        f"AND substr({head}, 7, 1) IN (' ', chr(9), chr(13), chr(10))"
    )
    rest = f"CASE WHEN {scheme} THEN ltrim(substr({head}, 7), {_WHITESPACE_SQL}) ELSE {head} END"
    return f"rtrim({rest}, {_WHITESPACE_SQL})"


def fingerprint_sql(expr: str) -> str:
    """SQL twin of `fingerprint`: NULL stays NULL, an empty token has no fingerprint."""
    bare = bare_token_sql(expr)
    return (
        f"CASE WHEN nullif({bare}, '') IS NULL THEN NULL "
        f"ELSE left(sha256({bare}), {FINGERPRINT_HEX}) END"
    )
