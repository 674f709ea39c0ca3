"""Recognising secrets written in clear where they do not belong (a log line, a URL).

m2maudit reports the kind of secret and a fingerprint of it, never the secret itself.
"""

from __future__ import annotations

import re

# (kind, RE2 pattern). Order matters: the first match names the kind. The patterns are also
# read by Python's `re` (ingest's field-name check, tests), so they keep to what both accept.
SECRET_PATTERNS: tuple[tuple[str, str], ...] = (
    # The whole block: through its END line when there is one, else (a value cut short) the
    # base64 body and PEM headers that follow, also when the newlines are JSON's `\n`.
    (
        "private_key",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:(?s:.*?)-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.-]*)",
    ),
    ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        "aws_secret_key",
        r"(?i)(aws_secret_access_key|secretaccesskey)[\"' ]*[:=][\"' ]*[A-Za-z0-9/+]{40}",
    ),
    ("github_token", r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("openai_key", r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}"),
    (
        "password_or_key",
        r"(?i)(client_secret|api[_-]?key|password|passwd|access_token|refresh_token)"
        r"[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+_.-]{16,}",
    ),
)

# What a kind's fingerprint is taken of, when not its whole match: a private key without its
# line breaks, so one key has one fingerprint whether a record holds it with newlines or with
# JSON's `\n`, on one line or many.
_FINGERPRINTED_AS: dict[str, str] = {
    "private_key": r"regexp_replace({match}, '\\[nrt]|\s', '', 'g')",
}


# Literal pieces at least one of which every match of the patterns above contains, in the
# spellings people use (lower, UPPER, Capitalised, camelCase). `contains` is far cheaper than
# a regex over a whole record, so a record without any of them skips the regexes.
SECRET_NEEDLES: dict[str, tuple[str, ...]] = {
    "private_key": ("PRIVATE KEY",),
    "jwt": ("eyJ",),
    "aws_secret_key": ("ecret", "ECRET"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox",),
    "openai_key": ("sk-",),
    "password_or_key": (
        "ecret",
        "ECRET",
        "pi_key",
        "pi_Key",
        "PI_KEY",
        "pi-key",
        "pi-Key",
        "PI-KEY",
        "pikey",
        "piKey",
        "PIKEY",
        "asswd",
        "ASSWD",
        "assword",
        "ASSWORD",
        "ccess_token",
        "ccess_Token",
        "CCESS_TOKEN",
        "efresh_token",
        "efresh_Token",
        "EFRESH_TOKEN",
    ),
}


def secret_needles() -> list[str]:
    """The needles as escaped regex alternatives, sorted."""
    needles = sorted({needle for group in SECRET_NEEDLES.values() for needle in group})
    return [re.escape(needle) for needle in needles]


def secret_prefilter_sql(text: str) -> str:
    """SQL: true when `text` holds one of the needles (so it may hold a secret).

    One alternation of literals: RE2 scans the text once for all of them, where a `contains`
    per needle would scan it twenty times.
    """
    return f"regexp_matches({text}, {_literal('|'.join(secret_needles()))})"


def _literal(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


def leaked_secret_kind_sql(text: str) -> str:
    """SQL: the kind of the first secret pattern found in `text`, or NULL."""
    any_pattern = "|".join(f"(?:{pattern.replace('(?i)', '')})" for _, pattern in SECRET_PATTERNS)
    whens = " ".join(
        f"WHEN regexp_matches({text}, {_literal(pattern)}) THEN '{kind}'"
        for kind, pattern in SECRET_PATTERNS
    )
    # The cheap combined test first, so clean records (nearly all) pay for one regex only.
    return (
        f"CASE WHEN {text} IS NULL OR NOT {secret_prefilter_sql(text)} "
        f"OR NOT regexp_matches({text}, {_literal(any_pattern)}, 'i') "
        f"THEN NULL {whens} END"
    )


def leaked_secret_fp_sql(text: str) -> str:
    """SQL: fingerprint of the first secret found in `text`, so repeats group together."""
    whens = " ".join(
        f"WHEN regexp_matches({text}, {_literal(pattern)}) "
        f"THEN left(sha256({_fingerprinted(kind, f'regexp_extract({text}, {_literal(pattern)})')})"
        ", 16)"
        for kind, pattern in SECRET_PATTERNS
    )
    return f"CASE WHEN {text} IS NULL THEN NULL {whens} END"


def _fingerprinted(kind: str, match: str) -> str:
    return _FINGERPRINTED_AS.get(kind, "{match}").format(match=match)


def redact_secrets_sql(text: str) -> str:
    """SQL: `text` with every secret the patterns find replaced by `[redacted]`.

    For values that are stored (a URL with `?access_token=...`): the secret is reported by
    kind and fingerprint, never kept.
    """
    redacted = text
    for _, pattern in SECRET_PATTERNS:
        redacted = f"regexp_replace({redacted}, {_literal(pattern)}, '[redacted]', 'g')"
    return redacted


def secret_safe_id_sql(text: str) -> str:
    """SQL: an identifier that is itself a secret (a token pasted as an id) becomes
    `secret:<fingerprint>`, so it still groups and joins but is never stored in clear."""
    return (
        f"CASE WHEN {leaked_secret_kind_sql(text)} IS NOT NULL "
        f"THEN 'secret:' || left(sha256({text}), 16) ELSE {text} END"
    )


def redact_list_sql(values: str) -> str:
    """SQL: `redact_secrets_sql` over every element of a VARCHAR[]."""
    return f"list_transform({values}, lambda secret_item: {redact_secrets_sql('secret_item')})"
