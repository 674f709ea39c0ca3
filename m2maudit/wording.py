"""Counted nouns ("1 file", "3 files") for every message, report and rule template.

One place, so that no message says "1 times" and every count reads the same way.
"""

from __future__ import annotations


def noun_for(count: object, singular: str, plural: str | None = None) -> str:
    """The singular for exactly 1, else the plural (the singular plus "s" unless given)."""
    one = count == 1 and not isinstance(count, bool)
    return singular if one else (plural or singular + "s")


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`1 file`, `3 files`, `12,000 findings` (thousands grouped, as the reports print them)."""
    return counted_as(f"{count:,}", count, singular, plural)


def counted_as(shown: str, count: object, singular: str, plural: str | None = None) -> str:
    """`count` written as `shown`, with its noun; one time is `once` ("used key-1 once after
    expiry", not "1 time")."""
    if singular == "time" and plural is None and noun_for(count, singular) == singular:
        return "once"
    return f"{shown} {noun_for(count, singular, plural)}"
