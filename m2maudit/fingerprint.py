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


def bare_token_sql(expr: str) -> str:
    """SQL twin of `bare_token` for a VARCHAR expression."""
    stripped = f"regexp_replace({expr}, '^[ \\t\\r\\n]*[Bb][Ee][Aa][Rr][Ee][Rr][ \\t\\r\\n]+', '')"
    return f"trim({stripped}, ' ' || chr(9) || chr(13) || chr(10))"


def fingerprint_sql(expr: str) -> str:
    """SQL twin of `fingerprint`: NULL stays NULL, an empty token has no fingerprint."""
    bare = bare_token_sql(expr)
    return (
        f"CASE WHEN nullif({bare}, '') IS NULL THEN NULL "
        f"ELSE left(sha256({bare}), {FINGERPRINT_HEX}) END"
    )
