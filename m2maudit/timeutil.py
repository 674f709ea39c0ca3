"""Time handling: every instant m2maudit uses is a tz-aware UTC datetime."""

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from m2maudit.errors import AuditError, shown

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


# How far the clocks of issuers, servers and loggers may disagree: a time this close to
# another is not before or after it (an `iat` seconds ahead, a session begun at its issuance).
CLOCK_SKEW = timedelta(minutes=5)
CLOCK_SKEW_SQL = f"INTERVAL {int(CLOCK_SKEW.total_seconds())} SECOND"
# A lifetime over its limit by no more than a clock's skew, and by no more than a tenth of the
# limit, is within it: Kubernetes issues its one-hour tokens for 3607 s, and a 90 s limit
# must not become six minutes. (`views.m2m_lifetime_allowance` is the SQL of the same.)
LIFETIME_SKEW_SHARE = 10


def lifetime_allowance(limit: timedelta) -> timedelta:
    """How far a token's lifetime may exceed `limit` and still be within it."""
    return min(CLOCK_SKEW, limit / LIFETIME_SKEW_SHARE)


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 date or datetime as UTC; a value without an offset is taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AuditError(f"not an ISO 8601 date or time: {shown(text)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def utc_instant(value: Any) -> datetime | None:
    """A value as a tz-aware UTC instant, or None: a naive datetime (a rule's plain
    TIMESTAMP, a YAML time without offset) is UTC, the store's time zone; a date is its
    midnight. Compared with an aware one, a naive datetime would fail."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


# Longer than any credential lives; `timedelta` itself overflows near 2.7 million years.
MAX_DURATION = timedelta(days=36_525)


def parse_duration(value: object) -> timedelta:
    """Parse `3600`, `90s`, `15m`, `1h`, `90d` or `2w` (a bare number is seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            seconds = float(value)
        except OverflowError:  # an integer of hundreds of digits
            seconds = float("inf")
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if not match:
            raise AuditError(f"not a duration (use e.g. 90s, 15m, 1h, 90d): {shown(value)}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if not abs(seconds) <= MAX_DURATION.total_seconds():  # NaN too
        raise AuditError(f"not a duration of at most 100 years: {shown(value)}")
    return timedelta(seconds=seconds)


def iso(instant: datetime | None) -> str | None:
    """Render an instant as ISO 8601 UTC with a `Z`, the one form every report uses."""
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_seconds(instant: datetime | None) -> str | None:
    """`iso` to the second, for a person: a window from a log with milliseconds to one
    without read `...:42Z .. ...:37.443000Z`. Machine formats keep every digit."""
    if instant is None:
        return None
    return iso(instant.replace(microsecond=0))
