"""Recognising secrets written in clear where they do not belong (a log line, a URL).

m2maudit reports the kind of secret and a fingerprint of it, never the secret itself.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Sequence

import re2

from m2maudit.fingerprint import sha256_prefix

# Pieces of the patterns below. HTTP Basic credentials are base64 of "user:password", read in
# the groups of four characters that encode three bytes: a group of printable ASCII (each byte
# 0x20-0x7e bounds the first character and the low bits of the second and third), a group
# holding the ':' (at each of the three byte offsets), and a last group padded with `=`. A
# token of two groups or more, one with the ':', and then the token's end (the character
# after it is kept for the redaction to put back): words after "Basic " ("Basic auth
# disabled", "Basic Options", "Basic Only") are not that.
_B64 = "[A-Za-z0-9+/]"
_C1 = "[I-Za-f]"
_C2 = "[C-HS-Xi-ny-z0-3]"
_C3 = "[ABEFIJMNQRUVYZcdghklopstwx014589]"
_C3_LAST = "[AEIMQUYcgkosw048]"  # the third character when the second byte is the last
_ASCII3 = f"(?:{_C1}{_C2}{_C3}{_B64})"
_COLON3 = f"(?:O[i-n]{_C3}{_B64}|{_C1}[DTjz][op]{_B64}|{_C1}{_C2}{_C3_LAST}6)"
_PADDED = f"(?:{_C1}[AQgw]==|{_C1}{_C2}{_C3_LAST}=)"
_COLON_PADDED = f"O[i-n]{_C3_LAST}="  # ":x" as the last two bytes
_BASIC_CREDENTIALS = (
    f"(?:{_ASCII3}*{_COLON3}{_ASCII3}*{_PADDED}|{_ASCII3}+{_COLON_PADDED}"
    f"|{_ASCII3}+{_COLON3}{_ASCII3}*|{_COLON3}{_ASCII3}+)($|[^A-Za-z0-9+/=])"
)
# A value in a URL query or a `name=value` pair: a run of 16 token characters unbroken by `_`,
# `.` or `+` (a space, in a query: `customer+account+settings`), in a value that may have
# them (`ya29.a0Af...`), but no `/`. A random token (a UUID
# too) has such a run; paths, dotted names and identifiers made of words
# (`key=reports/2026/q3.pdf`, `key=spring.datasource.url`, `customer_account_settings`) do not.
# A percent escape is part of a value, but for `%26` (`&`), which ends it after the run; it is
# no part of the run (`reports%2F2026%2Fq3.pdf` is a path, percent-encoded).
_PCT_NOT_AMP = "%(?:[013-9A-Fa-f][0-9A-Fa-f]|2[0-57-9A-Fa-f])"
_PARAM_VALUE = f"[A-Za-z0-9%+_~.-]*[A-Za-z0-9~-]{{16,}}(?:[A-Za-z0-9+_~.=-]|{_PCT_NOT_AMP})*"
# A bearer token (RFC 6750's b64token) with a run of 16 letters, digits, `+` or `~` (words
# joined by `-`, `/`, `_` or `.` are prose or a path: "Bearer token-introspection-failed"),
# or a UUID.
_BEARER_VALUE = (
    "(?:[A-Za-z0-9._~+/-]*[A-Za-z0-9+~]{16,}[A-Za-z0-9._~+/-]*=*"
    "|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})"
)
# A query parameter's name starts after a non-word character, after `&` written `\u0026`
# by JSON encoders (Go's among them), or after `&` or `?` percent-encoded: a URL inside
# another's query (`redirect_uri=https%3A%2F%2Fapp%2Fcb%3Ftoken%3D...`).
_PARAM_START = r"(?:\b|\\u0026|%26|%3[Ff])"
# `=`, or `=` percent-encoded.
_PARAM_EQUALS = "(?:=|%3[Dd])"

# A value a vendor or a log pipeline wrote in a secret's place, whole between its
# delimiters: CloudTrail's `HIDDEN_DUE_TO_SECURITY_REASONS` (every SSO `GetRoleCredentials`
# and `CreateToken`), `REDACTED`, `SENSITIVE_DATA_REMOVED`, `[FILTERED]`-style words without
# their brackets, `xxxxxxxx`. Named (`"clientSecret": "REDACTED"`), such a value looked like
# a password to the patterns below, which RE2 (no look-ahead) cannot tell from one; it is
# replaced by `*` (which no secret starts with) before they read the text. The words joined
# by `_` are capitals only, as vendors write them: a person's `hidden_treasure_42` stays a
# password.
REDACTION_WORDS = "REDACTED|HIDDEN|MASKED|FILTERED|REMOVED|OMITTED|SANITIZED|SCRUBBED"
PLACEHOLDER_VALUE = (
    r"(^|[\s\"'=:>,])("
    rf"(?:[A-Z0-9]+_)*(?:{REDACTION_WORDS})(?:_[A-Z0-9]+)*"
    rf"|(?i:{REDACTION_WORDS})"
    r"|[xX]{6,})"
    r"($|[\s\"'&,;<\\])"
)


def without_placeholders_sql(text: str) -> str:
    """SQL: `text` with each `PLACEHOLDER_VALUE` made `*`, for the secret patterns to read,
    its percent escapes decoded (`percent_decoded_sql`)."""
    decoded = percent_decoded_sql(text)
    return f"regexp_replace({decoded}, {_literal(PLACEHOLDER_VALUE)}, '\\1*\\3', 'g')"


def percent_decoded_sql(text: str) -> str:
    """SQL: `text` with its percent escapes decoded once, as the patterns must read it: a
    token after `%3D`, `%20` or `%2F` (`?next=%2Fcb%3Ftoken%3Dghp_...`, `Bearer%20...`) does
    not start a word, and the patterns look for one at a word's start. Left as it is where
    the decoded bytes are no UTF-8."""
    return f"coalesce(try(url_decode({text})), {text})"


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
    # A signed JWT; an unsigned one (`alg: none`: nothing after the second dot, yet a bearer
    # token to a verifier that takes it); an encrypted one (JWE: five parts, the second, the
    # encrypted key, empty for `dir`).
    (
        "jwt",
        r"eyJ[A-Za-z0-9_-]{8,}\.(?:eyJ[A-Za-z0-9_-]{8,}\.(?:[A-Za-z0-9_-]{8,})?"
        r"|[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})",
    ),
    (
        "aws_secret_key",
        # Named as boto (`aws_secret_access_key`), STS (`SecretAccessKey`), SDK configs
        # (`secretAccessKey`, `secret-access-key`) and S3 tools (`secret_key`) name it, and
        # then the secret's end (the character after it is put back by the redaction): a
        # longer value under such a name is a `password_or_key`, redacted whole.
        r"(?i)(?:aws[_-]?)?secret[_-]?(?:access[_-]?)?key[\\\"' ]*[:=][\\\"' ]*"
        r"[A-Za-z0-9/+]{40}($|[^A-Za-z0-9/+=])",
    ),
    # Unnamed, right after its key id (`AKIA...:secret`, a CSV's `AKIA...,secret`), and then
    # the secret's end: a longer run (a session token) is not one.
    (
        "aws_secret_key",
        r"\b(?:AKIA|ASIA)[A-Z0-9]{16}[\s:=,;|\"'\\]{1,4}[A-Za-z0-9/+]{40}($|[^A-Za-z0-9/+=])",
    ),
    ("github_token", r"\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-[0-9]+-[A-Za-z0-9-]{10,}"),
    # Tokens an AI agent's tools hold: GitLab, npm, Hugging Face.
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{34,}\b"),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{32,}"),  # before OpenAI's `sk-`, which it matches
    ("openai_key", r"\bsk-(proj-)?[A-Za-z0-9_-]{32,}"),
    (
        "password_or_key",
        # snake_case, kebab-case and camelCase (`clientSecret`, `accessToken`: Azure, Auth0,
        # Spring).
        r"(?i)(client[_-]?secret|api[_-]?key|password|passwd|access[_-]?token"
        r"|refresh[_-]?token|secret[_-]?(?:access[_-]?)?key)"
        # Assigned (`=`, or `"name": "`): the whole value, to the next quote, space or
        # separator, so that `!` or `#` in a password leaves no tail in clear; not a
        # placeholder (`****`, `${VAR}`). After a bare `name:` (prose: `Invalid password:
        # user=...`), only a run of a key's alphabet.
        r"(?:(?:\\?[\"']?\s*=\s*\\?[\"']?|%3[Dd]|\\?[\"']\s*:\s*\\?[\"'])"
        r"[^\s\"'&;,<>\[\]{}()*$%|\\][^\s\"'&;,<>|\\]{15,}"
        r"|\s*:\s*[A-Za-z0-9/+_.-]{16,})",
    ),
    # A shorter password, 6 characters or more, when it is assigned (`password=`, `"pwd": "`);
    # not a placeholder (`****`, `<redacted>`, `[redacted]`, `${DB_PASSWORD}`, `%s`) nor a
    # directory (`PWD=/home/x`). `password: ...` in prose is not an assignment. A JSON number
    # of 6 digits or more is a password too (`"password": 987654321`, a PIN).
    (
        "password_or_key",
        r"(?i)(password|passwd|pwd)(=|%3[Dd]|\\?[\"']\s*:\s*\\?[\"'])"
        r"[^\s\"'&;,<>\[\]{}()*$%/\\][^\s\"'&;,<>\\]{5,}"
        r"|\b(password|passwd|pwd)\\?[\"']\s*:\s*[0-9][0-9.]{5,}",
    ),
    ("vault_token", r"\bhv[sbr]\.[A-Za-z0-9_-]{24,}"),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{35}"),
    # `scheme://user:password@host`: the password goes, the user and host stay.
    (
        "url_credentials",
        r"([A-Za-z][A-Za-z0-9+.-]*:(?:\\?/){2}[^\s/?#@:\"'<>\\]*:)"
        r"[^\s/?#@\"'<>\\\[\]{}*$][^\s/?#@\"'<>\\]*(@[A-Za-z0-9\[])",
    ),
    ("basic_auth", r"\b((?:Basic|basic|BASIC) +)" + _BASIC_CREDENTIALS),
    # An opaque bearer token outside the field meant for it (a logged header, a debug line);
    # see `_BEARER_VALUE`: prose ("Bearer token_expired", a `WWW-Authenticate: Bearer realm=`)
    # is none. A JWT after `Bearer` is a `jwt`, found first.
    ("bearer_token", r"\b((?:Bearer|bearer|BEARER) +)" + _BEARER_VALUE),
    # A presigned or SAS URL's signature, or the session token it carries.
    (
        "signed_url",
        r"(?i)(" + _PARAM_START + r"(?:x-amz-security-token|signature|sig)" + _PARAM_EQUALS + ")"
        r"[A-Za-z0-9%+/=_-]{16,}",
    ),
    (
        "secret_param",
        r"(?i)(" + _PARAM_START + r"(?:token|secret|key|auth)" + _PARAM_EQUALS + ")" + _PARAM_VALUE,
    ),
    ("stripe_key", r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
)

# How a kind's match is redacted when not wholly: the parameter's name, the URL's user and
# host, the `Basic` scheme stay readable.
_REDACTED_AS: dict[str, str] = {
    "url_credentials": r"\1[redacted]\2",
    "basic_auth": r"\1[redacted]\2",
    "bearer_token": r"\1[redacted]",
    "signed_url": r"\1[redacted]",
    "aws_secret_key": r"[redacted]\1",
    "secret_param": r"\1[redacted]",
}

# A parameter's name in a percent-encoded URL: after `%26` or `%3F`, before `%3D`.
_ENCODED_NAME = "^(?:%26|%3[Ff])?([A-Za-z_-]+)%3[Dd]"

# What a kind's fingerprint is taken of, when not its whole match: a private key without its
# line breaks, so one key has one fingerprint whether a record holds it with newlines or with
# JSON's `\n`, on one line or many.
_FINGERPRINTED_AS: dict[str, str] = {
    "private_key": r"regexp_replace({match}, '\\[nrt]|\s', '', 'g')",
    "basic_auth": r"regexp_replace({match}, '[^A-Za-z0-9+/=]$', '')",
    # The token alone, so its fingerprint is the `token_fp` it has where it is presented.
    "bearer_token": r"regexp_replace({match}, '^[A-Za-z]+ +', '')",
    # The 40 characters of the secret alone: one secret written `AKIA...:S`, `AKIA... S` or
    # `aws_secret_access_key=S` is one secret.
    "aws_secret_key": r"regexp_extract({match}, '[A-Za-z0-9/+]{{40}}')",
    # A parameter in a percent-encoded URL as written plainly (`%3Ftoken%3DT` as `token=T`):
    # one secret, one fingerprint, however deep in URLs it was.
    **{
        kind: r"regexp_replace({match}, '" + _ENCODED_NAME + r"', '\1=')"
        for kind in ("password_or_key", "signed_url", "secret_param")
    },
}


# Literal pieces at least one of which every match of the patterns above contains, in the
# spellings people use (lower, UPPER, Capitalised, camelCase), and percent-encoded where a
# piece holds a character a URL encodes (the patterns read the text decoded). `contains` is
# far cheaper than a regex over a whole record, so a record without any of them skips the
# regexes.


def _assigned(*names: str) -> tuple[str, ...]:
    """Needles for parameters: each name before `=`, or before `%3D` in a percent-encoded
    URL."""
    return tuple(f"{name}{equals}" for name in names for equals in ("=", "%3D", "%3d"))


SECRET_NEEDLES: dict[str, tuple[str, ...]] = {
    "private_key": ("PRIVATE KEY", "PRIVATE%20KEY"),
    "jwt": ("eyJ",),
    "aws_secret_key": ("ecret", "ECRET", "AKIA", "ASIA"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox", "xapp-"),
    "gitlab_token": ("glpat-",),
    "npm_token": ("npm_",),
    "huggingface_token": ("hf_",),
    "anthropic_key": ("sk-ant-",),
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
        *(
            f"{stem}{sep}{token}"
            for stem, token in (
                ("ccess", "token"),
                ("ccess", "Token"),
                ("CCESS", "TOKEN"),
                ("efresh", "token"),
                ("efresh", "Token"),
                ("EFRESH", "TOKEN"),
            )
            for sep in ("_", "-", "")
        ),
        *(f"{pwd}{sep}" for pwd in ("pwd", "Pwd", "PWD") for sep in ("=", '"', "'", "\\", "%3D")),
    ),
    "vault_token": ("hvs.", "hvb.", "hvr."),
    "google_api_key": ("AIza",),
    "url_credentials": (),  # no rare literal: see SECRET_NEEDLE_PATTERNS
    "basic_auth": ("Basic ", "basic ", "BASIC ", "Basic%20"),
    "bearer_token": ("Bearer ", "bearer ", "BEARER ", "Bearer%20"),
    "signed_url": _assigned("ignature", "IGNATURE", "sig", "Sig", "SIG", "oken", "OKEN"),
    "secret_param": _assigned(
        "oken", "OKEN", "ecret", "ECRET", "key", "Key", "KEY", "auth", "Auth", "AUTH"
    ),
    "stripe_key": ("k_live_",),
}

# For a kind with no rare literal, a cheap pattern that every match contains instead. A URL's
# `://` and an `@` are each in most records, but `://` then `user:password@` with no `/`
# between is rare, and one more alternative costs the prefilter's single pass little.
SECRET_NEEDLE_PATTERNS: dict[str, str] = {
    "url_credentials": (
        r":(?:\\?/){2}[^\s/?#@:\"'<>\\]*:[^\s/?#@\"'<>\\]+@"
        r"|%3A%2F%2F[^\s/?#@]*%40"  # percent-encoded (in a URL's query), any case
    ),
}


def secret_needles() -> list[str]:
    """The needles as regex alternatives, to be read ignoring case: the literals escaped and
    sorted, then the needle patterns."""
    spellings = {needle.lower() for group in SECRET_NEEDLES.values() for needle in group}
    # Read ignoring case, one spelling is enough; and a needle holding another is implied by it
    # (`sk-` finds every `sk-ant-`). The prefilter is written out at each secret test.
    needles = sorted(n for n in spellings if not any(o != n and o in n for o in spellings))
    return [re.escape(needle) for needle in needles] + sorted(SECRET_NEEDLE_PATTERNS.values())


def secret_prefilter_sql(text: str) -> str:
    """SQL: true when `text` holds one of the needles (so it may hold a secret).

    One alternation of literals (and the few needle patterns): RE2 scans the text once for all
    of them, where a `contains` per needle would scan it fifty times.
    """
    # Ignoring case, as the `(?i)` patterns do: `X-API-Key` holds the needle `pi-key`.
    return f"regexp_matches({text}, {_literal('|'.join(secret_needles()))}, 'i')"


def _literal(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


# The text the patterns read, without its placeholders, as a macro: the leak check names it
# at each of twenty places, and written out there it took the token decoding's statement past
# what DuckDB plans quickly (a lambda over a one-item list cost three times the leak check).
# DuckDB computes it once per record however often it is named. Made on every store's
# connection (`Store.open`); a bare connection that runs the leak check needs it too.
PLACEHOLDERS_MACRO = "m2m_without_placeholders"
SECRET_MACROS = (
    f"CREATE OR REPLACE TEMP MACRO {PLACEHOLDERS_MACRO}(t) AS {without_placeholders_sql('t')}",
)


def _cleaned(text: str) -> str:
    return f"{PLACEHOLDERS_MACRO}({text})"


def leaked_secret_kind_sql(text: str) -> str:
    """SQL: the kind of the first secret pattern found in `text`, or NULL."""
    any_pattern = "|".join(f"(?:{pattern.replace('(?i)', '')})" for _, pattern in SECRET_PATTERNS)
    cleaned = _cleaned(text)
    whens = " ".join(
        f"WHEN regexp_matches({cleaned}, {_literal(pattern)}) THEN '{kind}'"
        for kind, pattern in SECRET_PATTERNS
    )
    # The cheap combined test first, so clean records (nearly all) pay for one regex only;
    # placeholders are taken out of the records with a needle only.
    return (
        f"CASE WHEN {text} IS NULL OR NOT {secret_prefilter_sql(text)} THEN NULL "
        f"ELSE CASE WHEN NOT regexp_matches({cleaned}, {_literal(any_pattern)}, 'i') "
        f"THEN NULL {whens} END END"
    )


def leaked_secret_fp_sql(text: str) -> str:
    """SQL: fingerprint of the first secret found in `text`, so repeats group together."""
    return _first_secret_sql(_cleaned(text), with_kind=False)


def _first_secret_sql(text: str, with_kind: bool) -> str:
    """SQL: the fingerprint of the first secret in `text` (by pattern order), prefixed with its
    kind and `:` when `with_kind`."""
    whens = _by_first_kind(
        text,
        lambda kind, material: (
            f"{_literal(kind + ':') + ' || ' if with_kind else ''}left(sha256({material}), 16)"
        ),
    )
    return f"CASE WHEN {text} IS NULL THEN NULL {whens} END"


def _by_first_kind(text: str, then: Callable[[str, str], str]) -> str:
    """SQL `WHEN` branches, one per pattern in order: the first that matches `text` gives
    `then(kind, material)`, the material being what the kind's fingerprint is taken of
    (`_FINGERPRINTED_AS`)."""
    return " ".join(
        f"WHEN regexp_matches({text}, {_literal(pattern)}) "
        f"THEN {then(kind, _fingerprinted(kind, f'regexp_extract({text}, {_literal(pattern)})'))}"
        for kind, pattern in SECRET_PATTERNS
    )


def all_secrets_sql(text: str, first_kind: str, first_fp: str) -> str:
    """SQL: every secret in `text` as `kind:fingerprint`, sorted, each once, the first secret
    (`first_kind`, `first_fp`, as `leaked_secret_*_sql` give it) among them.

    One pass of all the patterns as one alternation finds the secrets left to right without
    overlap (a JWT inside `access_token=...` is one secret, not two); each match is then named
    and fingerprinted as the first secret is, by the first pattern that matches it (a kind
    found by its name, `password=...`, is fingerprinted with the name as written). For
    records holding a secret only: clean records never pay for it.
    """
    each = (
        f"list_transform(regexp_extract_all({_cleaned(text)}, {_literal(_any_secret())}), "
        f"lambda _m: {_first_secret_sql('_m', with_kind=True)})"
    )
    return f"list_sort(list_distinct(list_concat([{first_kind} || ':' || {first_fp}], {each})))"


# A column of the texts of a record's secrets (`secret_texts_sql`), for the cleaning alone.
SECRET_TEXTS = "_secret_texts"


def secret_texts_sql(text: str) -> str:
    """SQL: the text of each secret in `text`, as its fingerprint is taken of it (an AWS
    secret key's 40 characters, a Basic credential without the character after it), 8
    characters or more. The cleaning cuts these out of every stored text and id of the
    record too: an adapter that builds a value around a secret (`Basic ...==` and `/log`
    joined into a Kubernetes path, a CloudTrail principal id split at its `:`) makes text in
    which the patterns no longer find it. For records holding a secret only."""
    whens = _by_first_kind("_m", lambda kind, material: material)
    found = f"regexp_extract_all({_cleaned(text)}, {_literal(_any_secret())})"
    return (
        f"list_filter(list_transform({found}, lambda _m: CASE {whens} END), "
        "lambda _s: length(_s) >= 8)"
    )


def _scoped(pattern: str) -> str:
    """A pattern as one alternative of many: a leading `(?i)` scoped to it alone."""
    if pattern.startswith("(?i)"):
        return f"(?i:{pattern[4:]})"
    return f"(?:{pattern})"


def _fingerprinted(kind: str, match: str) -> str:
    return _FINGERPRINTED_AS.get(kind, "{match}").format(match=match)


def redact_secrets_sql(text: str) -> str:
    """SQL: `text` with every secret the patterns find replaced by `[redacted]`.

    For values that are stored (a URL with `?access_token=...`): the secret is reported by
    kind and fingerprint, never kept.
    """
    redacted = text
    for kind, pattern in SECRET_PATTERNS:
        replacement = _literal(_REDACTED_AS.get(kind, "[redacted]"))
        redacted = f"regexp_replace({redacted}, {_literal(pattern)}, {replacement}, 'g')"
    return redacted


def secret_safe_id_sql(text: str) -> str:
    """SQL: an identifier that is itself a secret (a token pasted as an id) becomes
    `secret:<fingerprint>`, so it still groups and joins but is never stored in clear."""
    found = holds_secret_sql(as_scanned_sql(text))
    return f"CASE WHEN {found} THEN {secret_id_sql(text)} ELSE {text} END"


# A record's text as the leak check reads it (`json_as_read_sql`): a layer of its own in a
# mapping (`staging.map_records(leak_scope=...)`), so that the escapes are undone once, not
# at each of the hundreds of places the checks name the text.
LEAK_TEXT = "_leak_text"


def json_as_read_sql(text: str) -> str:
    """SQL: a record's JSON text as the secret patterns must see it, its escapes undone.

    JSON may spell any character as an escape, and writers do: `\\u003d` for `=` (Gson),
    `\\u002B` for `+` (.NET), `\\/` for `/` (PHP). A value's line break is written `\\n`,
    which glues an `n` to the token after it (`...\\nghp_...`), and the patterns look for a
    token at a word's start (`breaks_spaced_sql`). Only text with a backslash is rewritten,
    so the cost falls on the few records that have one.
    `text` is read as VARCHAR (a JSON-typed value would be cast back, and fail).
    """
    text = f"({text})::VARCHAR"
    decoded = f"CASE WHEN json_valid({text}) THEN json({text})::VARCHAR ELSE {text} END"
    return f"CASE WHEN NOT contains({text}, '\\') THEN {text} ELSE {_breaks_spaced(decoded)} END"


def as_scanned_sql(text: str) -> str:
    """SQL: `text` as the patterns read it where no `without_placeholders_sql` does (the
    cleaning of stored text, an id's secret test): line breaks spaced, percent escapes
    decoded."""
    return percent_decoded_sql(breaks_spaced_sql(text))


def breaks_spaced_sql(text: str) -> str:
    """SQL: `text` with each escaped line break or tab (`\\n`, `\\t`: a value kept as its JSON
    text, or a logger that escaped its message) read as a space, so that a token after one
    starts a word, as the patterns look for it. Text without a backslash is left as it is."""
    return f"CASE WHEN NOT contains({text}, '\\') THEN {text} ELSE {_breaks_spaced(text)} END"


def _breaks_spaced(text: str) -> str:
    """An escaped backslash (`C:\\\\npm_...`) stays one: it is set aside (as chr(1), which
    JSON text never holds raw) while the `\\n`s become spaces."""
    spaced = f"regexp_replace(replace({text}, '\\\\', chr(1)), '\\\\[nrtbf]', ' ', 'g')"
    return f"replace({spaced}, chr(1), '\\\\')"


def secret_id_sql(text: str) -> str:
    """SQL: `secret:<fingerprint>`, the name a secret is kept under where an id belongs."""
    return f"'secret:' || left(sha256({text}), 16)"


def holds_secret_sql(text: str) -> str:
    """SQL: whether `text` holds a secret, not which kind: the needles, then all the patterns
    as one alternation (any pattern matches exactly when the alternation does)."""
    return (
        f"({text} IS NOT NULL AND {secret_prefilter_sql(text)} "
        f"AND regexp_matches({text}, {_literal(_any_secret())}))"
    )


def _any_secret() -> str:
    """Every pattern as one alternative of one regex, each with its own flags."""
    return "|".join(_scoped(pattern) for _, pattern in SECRET_PATTERNS)


CLEANED = "_cleaned"


def cleaning_sql(
    texts: Sequence[str],
    ids: Sequence[str] = (),
    lists: Sequence[str] = (),
    found: str | None = None,
) -> tuple[str, dict[str, str]]:
    """SQL cleaning many columns of a record that holds a secret, with the long redaction
    and id expressions written once (a mapping written per column was too long to plan fast).

    Returns the expression of one list, every value cleaned (`texts` redacted, `ids` made
    `secret:<fingerprint>` if a secret, the VARCHAR[] `lists` redacted), to be computed as
    `CLEANED`; and for each column, its cleaned value read back from that list.

    A text's escaped line breaks are spaces in the cleaned text, and its percent escapes
    decoded (`as_scanned_sql`): the patterns find a token after one only so.

    `found`: the record's secrets' texts (`secret_texts_sql`), cut out of every text as well,
    and an id that holds one made `secret:<fingerprint>`.

    A list is cleaned item by item and also as its items joined by spaces: a scope string
    split on spaces has cut a private key (`-----BEGIN RSA PRIVATE KEY-----`) into items no
    pattern matches alone. The items are kept (with their own spaces, and NULLs) unless the
    joined text lost more than they did; then it is split again.
    """
    singles = [*texts, *ids, *(f"array_to_string({name}, ' ')" for name in lists)]
    parts = [f"[{', '.join(singles)}]", *(f"coalesce({name}, []::VARCHAR[])" for name in lists)]
    clean = redact_secrets_sql(as_scanned_sql("_v"))
    safe_id = secret_safe_id_sql("_v")
    if found is not None:
        texts_of = f"coalesce({found}, []::VARCHAR[])"
        clean = (
            f"list_reduce(list_prepend({clean}, {texts_of}), "
            "lambda _a, _s: replace(_a, _s, '[redacted]'))"
        )
        holds = (
            f"coalesce(list_bool_or(list_transform({texts_of}, lambda _s: contains(_v, _s))), "
            "false)"
        )
        safe_id = f"CASE WHEN {holds} THEN {secret_id_sql('_v')} ELSE {safe_id} END"
    if ids:
        first, last = len(texts) + 1, len(texts) + len(ids)
        clean = f"CASE WHEN _i BETWEEN {first} AND {last} THEN {safe_id} ELSE {clean} END"
    cleaned = f"list_transform(flatten([{', '.join(parts)}]), lambda _v, _i: {clean})"
    picks = {name: f"{CLEANED}[{index}]" for index, name in enumerate([*texts, *ids], start=1)}
    start = str(len(singles) + 1)
    for index, name in enumerate(lists, start=len(texts) + len(ids) + 1):
        end = f"{start} + len(coalesce({name}, [])) - 1"
        joined, items = f"{CLEANED}[{index}]", f"{CLEANED}[{start}:{end}]"
        picks[name] = (
            f"CASE WHEN {joined} IS NOT DISTINCT FROM array_to_string({name}, ' ') THEN {name} "
            f"WHEN {joined} IS NOT DISTINCT FROM array_to_string({items}, ' ') THEN {items} "
            f"ELSE list_filter(string_split({joined}, ' '), lambda _s: _s <> '') END"
        )
        start = f"{end} + 1"
    return cleaned, picks


# --- the same, in Python, for what `token inspect` shows -----------------------------------------

# The patterns compiled by RE2, the engine DuckDB's regex functions use: the same meaning of
# `\b`, `\w` and `\s` (ASCII: Python's `re` follows Unicode, and `éghp_...` would hide a
# GitHub token from the twin that SQL finds), and time linear in the text. The claims judged
# here are written by whoever minted the token: Python's backtracking `re` takes time growing
# with the square of a claim that repeats a pattern's prefix (`eyJa...`): 5 s for one token
# of 60 KB, against 0.5 s with RE2.
_COMPILED = tuple((kind, re2.compile(pattern)) for kind, pattern in SECRET_PATTERNS)


def _cut(pattern: str) -> Callable[[str], str]:
    """A match with what `pattern` finds removed (`regexp_replace(..., '')`)."""
    compiled = re2.compile(pattern)
    return lambda text: compiled.sub("", text)


def _pick(pattern: str) -> Callable[[str], str]:
    """What `pattern` finds first in a match (`regexp_extract`)."""
    compiled = re2.compile(pattern)
    return lambda text: found.group() if (found := compiled.search(text)) else text


_ENCODED_NAME_RE2 = re2.compile(_ENCODED_NAME)


def _plain_name(text: str) -> str:
    """A parameter's percent-encoded name as written plainly (`_ENCODED_NAME`)."""
    return str(_ENCODED_NAME_RE2.sub(r"\1=", text, count=1))


# What a kind's fingerprint is taken of in Python: `_FINGERPRINTED_AS`'s twin.
_FINGERPRINT_MATERIAL: dict[str, Callable[[str], str]] = {
    "private_key": _cut(r"\\[nrt]|[\t\n\f\r ]"),
    "basic_auth": _cut(r"[^A-Za-z0-9+/=]$"),
    "bearer_token": _cut(r"^[A-Za-z]+ +"),
    "aws_secret_key": _pick(r"[A-Za-z0-9/+]{40}"),
    **{kind: _plain_name for kind in ("password_or_key", "signed_url", "secret_param")},
}


def find_secret(text: str) -> tuple[str, str] | None:
    """The kind and fingerprint of the first secret in `text`, as the scan's SQL gives them
    (`leaked_secret_kind_sql`, `leaked_secret_fp_sql`), or None."""
    return _first_secret(without_placeholders(text))


def _first_secret(text: str) -> tuple[str, str] | None:
    """`_first_secret_sql` in Python: of text already read as the patterns read it."""
    for kind, pattern in _COMPILED:
        match = pattern.search(text)
        if match:
            material = _FINGERPRINT_MATERIAL.get(kind, str)(match.group())
            return kind, sha256_prefix(material)
    return None


_ALL_AT_ONCE = re2.compile(_any_secret())
_PLACEHOLDER = re2.compile(PLACEHOLDER_VALUE)


def without_placeholders(text: str) -> str:
    """`without_placeholders_sql` in Python."""
    cleaned: str = _PLACEHOLDER.sub(r"\1*\3", percent_decoded(text))
    return cleaned


def percent_decoded(text: str) -> str:
    """`percent_decoded_sql` in Python (DuckDB's `url_decode` keeps `+`, as `unquote` does)."""
    if "%" not in text:
        return text
    try:
        return urllib.parse.unquote(text, errors="strict")
    except UnicodeDecodeError:
        return text


def breaks_spaced(text: str) -> str:
    """`breaks_spaced_sql` in Python."""
    if "\\" not in text:
        return text
    spaced: str = _ESCAPED_BREAK.sub(" ", text.replace("\\\\", "\x01"))
    return spaced.replace("\x01", "\\\\")


_ESCAPED_BREAK = re2.compile(r"\\[nrtbf]")


def secret_safe_id(text: str) -> str:
    """`secret_safe_id_sql` in Python (`find_secret` decodes the percent escapes)."""
    if find_secret(breaks_spaced(text)) is None:
        return text
    return "secret:" + sha256_prefix(text)


def secret_safe_list(items: list[str]) -> list[str]:
    """`tokens`' lists in Python: each item as `secret_safe_id`, or the whole list as one
    `secret:<fingerprint>` when the items joined by spaces hold a secret (a private key split
    into scopes)."""
    joined = " ".join(items)
    if find_secret(joined) is not None:
        return [secret_safe_id(joined)]
    return [secret_safe_id(item) for item in items]


def all_secrets(text: str) -> list[str] | None:
    """Every secret in `text` as `kind:fingerprint`, as `all_secrets_sql` lists them (sorted,
    each once), or None when there is none."""
    first = find_secret(text)
    if first is None:
        return None
    found = {":".join(first)}
    for match in _ALL_AT_ONCE.finditer(without_placeholders(text)):
        named = _first_secret(match.group())  # read once: decoded twice, `%252B` is `+`
        if named is not None:
            found.add(":".join(named))
    return sorted(found)


def redact_secrets(text: str) -> str:
    """`text` with every secret replaced as `redact_secrets_sql` replaces it."""
    for kind, pattern in _COMPILED:
        text = pattern.sub(_REDACTED_AS.get(kind, "[redacted]"), text)
    return text
