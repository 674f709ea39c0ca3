"""Decoding one bearer token in Python: the twin of the SQL decoder in `m2maudit.tokens`.

A scan decodes tokens inside DuckDB (thousands at once); `m2maudit token inspect` decodes one
pasted token here. Both must give the same row for the same token, so the limits,
the order of the checks and the wording of every `decode_error` live in this module and the
SQL decoder imports them. The tests hold the two twins to the same answer.

Strictness is deliberate: the JSON of a header or payload must be strict RFC 8259 JSON (no
NaN, Infinity, trailing commas or duplicate top-level names), because a token that two parsers
read differently is a token an attacker can use to fool one of them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from m2maudit.config import Config
from m2maudit.fingerprint import bare_token, fingerprint
from m2maudit.private_jwk import private_jwk_secrets
from m2maudit.secrets import all_secrets, breaks_spaced, secret_safe_id, secret_safe_list

MAX_TOKEN_BYTES = 65_536
"""A token longer than this is not decoded: real tokens are a few KB; HTTP servers cap headers."""
MAX_JSON_DEPTH = 512
"""Header or payload JSON nested deeper than this is not read (Python's parser stops near 1000)."""
MAX_ACT_DEPTH = 64
"""Delegation chains are read to this depth; a deeper `act` is cut here and reported."""
UNNAMED_ACTOR = "?"
"""How an `act` (or `may_act`) member with neither `sub` nor `client_id` is named."""
TIME_CLAIMS = ("iat", "nbf", "exp")
MIN_EPOCH, MAX_EPOCH = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31T23:59:59Z
CLIENT_CLAIMS = ("client_id", "azp", "cid", "appid")
"""Claims naming the OAuth client, in order of preference (RFC 8693, OIDC, Okta, Entra v1)."""
HUMAN_EVIDENCE_CLAIMS = ("auth_time", "acr", "amr")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")
SUSPECT_JSON = r",[ \t\r\n]*[\]}]|(?i:nan|inf)"
"""Outside strings, JSON that one parser takes and another refuses: a trailing comma, NaN,
Infinity, inf. (DuckDB takes them all; Python takes NaN and Infinity; RFC 8259 none.)"""
_SUSPECT = re.compile(SUSPECT_JSON)


# --- decode_error wording, shared with the SQL decoder ----------------------------------------
# Templates take `{name}` fields so the SQL decoder can fill them from columns (`sql_template`).

TOO_LONG = f"token is {{length}} bytes, over the limit of {MAX_TOKEN_BYTES}"
REASON_JWE = "encrypted token (JWE, 5 segments): the claims cannot be read"
SEGMENTS = "not a JWT: {count} segment{plural}, expected 3"
PART_PROBLEM = "{part} {problem}"
PART_NOT_BASE64 = "is not base64url"
PART_NOT_UTF8 = "is not UTF-8"
PART_TOO_DEEP = f"is nested deeper than {MAX_JSON_DEPTH} levels"
PART_NOT_JSON = "is not JSON"
PART_NOT_OBJECT = "is not a JSON object"
PART_DUPLICATES = "repeats a member name"
REASON_DETACHED = "detached payload (b64: false): the claims are not in the token"
REASON_ALG_NONE = "alg none: unsigned token"
REASON_NO_ALG = "no alg in header"
BAD_TIME = "{claim} is not a NumericDate"
REASON_ACT_TOO_DEEP = f"act nested deeper than {MAX_ACT_DEPTH} levels"
ACT_NOT_OBJECT = "act at depth {depth} is not a JSON object"


def is_act_problem(reason: str) -> bool:
    """A decode reason about the `act` claim: a broken delegation chain, not an exposure."""
    return reason == REASON_ACT_TOO_DEEP or reason.startswith(ACT_NOT_OBJECT.split("{")[0])


def reason_part(part: str, problem: str) -> str:
    """`part` is header, payload or signature; `problem` one of the PART_* phrases."""
    return PART_PROBLEM.format(part=part, problem=problem)


# --- the row ---------------------------------------------------------------------------------


@dataclass
class TokenRow:
    """One row of the `tokens` table (see docs/tokens.md). Never holds the raw token."""

    token_fp: str
    decode_error: str | None = None
    token_length: int = 0
    alg: str | None = None
    kid: str | None = None
    typ: str | None = None
    iss: str | None = None
    sub: str | None = None
    aud: list[str] | None = None
    client_id: str | None = None
    azp: str | None = None
    scope: list[str] | None = None
    iat: datetime | None = None
    nbf: datetime | None = None
    exp: datetime | None = None
    jti: str | None = None
    act_chain: list[str] | None = None
    chain_depth: int | None = None
    root_subject: str | None = None
    current_actor: str | None = None
    chain_has_cycle: bool | None = None
    may_act: list[str] | None = None
    chain_actor_not_allowed: str | None = None
    has_cnf: bool | None = None
    has_auth_time: bool | None = None
    has_acr: bool | None = None
    has_amr: bool | None = None
    txn: str | None = None
    req_wl: str | None = None
    subject_kind: str | None = None
    # Secrets written in clear in the claims, each `kind:fingerprint` (never the secret).
    claims_secrets: list[str] | None = None


@dataclass
class DecodedToken:
    """A row plus the decoded header and claims, which only `token inspect` shows."""

    row: TokenRow
    header: dict[str, Any] | None = None
    claims: dict[str, Any] | None = None

    @property
    def readable(self) -> bool:
        """False when the claims could not be read at all (a hard decode error)."""
        return self.claims is not None


class _Unreadable(Exception):
    """A hard decode error: the claims cannot be read. Carries the reason, never the token."""


# --- helpers shared in spirit with the SQL fragments -------------------------------------------


def _skeleton(text: str) -> str:
    """The JSON text with every string emptied (twin of the SQL `_skeleton`)."""
    return _JSON_STRING.sub('""', text)


def _depth(skeleton: str) -> int:
    """Deepest nesting of objects and arrays in a skeleton: checked before parsing."""
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", skeleton):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _strict_json(text: str, skeleton: str) -> Any:
    """Parse strict JSON, refusing what one parser takes and another does not."""
    if _SUSPECT.search(skeleton):
        raise ValueError("not strict JSON")
    value = json.loads(text)
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates: not text
    return value


def _has_duplicate_names(text: str) -> bool:
    pairs = json.loads(text, object_pairs_hook=lambda items: items)
    names = [name for name, _ in pairs]
    return len(names) != len(set(names))


def _b64url_decode(segment: str, part: str) -> bytes:
    if not _B64URL.fullmatch(segment):
        raise _Unreadable(reason_part(part, PART_NOT_BASE64))
    stripped = segment.rstrip("=")
    padded = len(stripped) != len(segment)
    if len(stripped) % 4 == 1 or (padded and len(segment) % 4 != 0):
        raise _Unreadable(reason_part(part, PART_NOT_BASE64))
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError):
        raise _Unreadable(reason_part(part, PART_NOT_BASE64)) from None


def _json_object(data: bytes, part: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Unreadable(reason_part(part, PART_NOT_UTF8)) from None
    skeleton = _skeleton(text)
    if _depth(skeleton) > MAX_JSON_DEPTH:
        raise _Unreadable(reason_part(part, PART_TOO_DEEP))
    try:
        value = _strict_json(text, skeleton)
    except (ValueError, UnicodeEncodeError, RecursionError):
        raise _Unreadable(reason_part(part, PART_NOT_JSON)) from None
    if not isinstance(value, dict):
        raise _Unreadable(reason_part(part, PART_NOT_OBJECT))
    if _has_duplicate_names(text):
        raise _Unreadable(reason_part(part, PART_DUPLICATES))
    return value


def claim_text(value: Any) -> str | None:
    """A scalar claim as text (numbers and booleans as JSON writes them); objects, lists: None."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value)


def element_text(value: Any) -> str | None:
    """A list element as text; an object or list element as compact JSON; null: None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def string_list(value: Any) -> list[str] | None:
    """`aud`: one string is a list of one; a list keeps its elements; an object is None."""
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, list):
        return [text for text in (element_text(item) for item in value) if text is not None]
    text = claim_text(value)
    return None if text is None else [text]


def scope_list(value: Any) -> list[str] | None:
    """`scope` (space-separated, RFC 6749 §3.3) or `scp` (a list, or a string too)."""
    if isinstance(value, str):
        return [item for item in value.split(" ") if item]
    return string_list(value)


def numeric_date(value: Any) -> tuple[datetime | None, bool]:
    """(instant, ok): a JSON number of seconds since the epoch, within years 1..9999."""
    if value is None:
        return None, True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, False
    seconds = float(value)
    if not math.isfinite(seconds) or not MIN_EPOCH <= seconds <= MAX_EPOCH:
        return None, False
    return _EPOCH + timedelta(seconds=seconds), True


def actor_name(member: dict[str, Any]) -> str:
    """An `act`/`may_act` member names its party by `sub`, else `client_id`, else `?`."""
    name = claim_text(member.get("sub"))
    if name is None:
        name = claim_text(member.get("client_id"))
    return UNNAMED_ACTOR if name is None else name


def full_match_any(value: str | None, patterns: list[str]) -> bool:
    """Python twin of `sqlfrag.regex_any`: a full match, ignoring case."""
    if value is None or not patterns:
        return False
    joined = "|".join(f"(?:{p})" for p in patterns)
    return re.fullmatch(joined, value, re.IGNORECASE) is not None


# --- the decoder -------------------------------------------------------------------------------


def decode_token(token: str, config: Config | None = None) -> DecodedToken:
    """Decode one token (with or without `Bearer `) without verifying it. Never raises."""
    config = config or Config()
    bare = bare_token(token)
    row = TokenRow(token_fp=fingerprint(bare), token_length=len(bare.encode("utf-8")))
    try:
        header, claims = _read(bare, row.token_length)
    except _Unreadable as exc:
        row.decode_error = str(exc)
        return DecodedToken(row)
    _fill(row, header, claims, config)
    # The payload as the SQL decoder judges it (`tokens._secret_layers`): written again, as
    # DuckDB's json() writes it, so escapes hide no secret, its line breaks spaces. A private
    # key in a JWK, in the header or the claims, is a secret no pattern finds.
    payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":"))
    found = all_secrets(breaks_spaced(payload))
    row.claims_secrets = sorted({*(found or []), *private_jwk_secrets(header, claims)}) or None
    _without_secret_ids(row)
    return DecodedToken(row, header, claims)


# The row's names that are ids in the store (the twin of `tokens.SAFE_ID_CLAIMS` and the lists
# the SQL decoder cleans).
_SAFE_ID_FIELDS = (
    "alg",
    "kid",
    "typ",
    "iss",
    "sub",
    "client_id",
    "azp",
    "jti",
    "txn",
    "req_wl",
    "root_subject",
    "current_actor",
    "chain_actor_not_allowed",
)
_SAFE_ID_LISTS = ("act_chain", "may_act", "aud")


def _without_secret_ids(row: TokenRow) -> None:
    """A claim that names someone or something and is itself a secret becomes
    `secret:<fingerprint>` (`secrets.secret_safe_id`), as the SQL decoder writes it."""
    for name in _SAFE_ID_FIELDS:
        value = getattr(row, name)
        if value is not None:
            setattr(row, name, secret_safe_id(value))
    for name in _SAFE_ID_LISTS:
        items = getattr(row, name)
        if items is not None:
            setattr(row, name, [secret_safe_id(item) for item in items])
    if row.scope is not None:  # split on spaces: a private key in it is judged whole too
        row.scope = secret_safe_list(row.scope)


def _read(bare: str, length: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Structure checks in the SQL decoder's order; the strictly parsed header and claims.

    These are the objects pyjwt's unverified decode returns for every token that passes
    (the tests hold both decoders to pyjwt), but pyjwt also refuses some tokens a scan reads
    (a numeric `kid`) and accepts JSON DuckDB does not (NaN), so the twin reads for itself.
    """
    if length > MAX_TOKEN_BYTES:
        raise _Unreadable(TOO_LONG.format(length=length))
    segments = bare.split(".")
    if len(segments) == 5:
        raise _Unreadable(REASON_JWE)
    if len(segments) != 3:
        count = len(segments)
        raise _Unreadable(SEGMENTS.format(count=count, plural="" if count == 1 else "s"))
    header = _json_object(_b64url_decode(segments[0], "header"), "header")
    if header.get("b64") is False:
        raise _Unreadable(REASON_DETACHED)
    claims = _json_object(_b64url_decode(segments[1], "payload"), "payload")
    _b64url_decode(segments[2], "signature")
    return header, claims


def _fill(row: TokenRow, header: dict[str, Any], claims: dict[str, Any], config: Config) -> None:
    soft: list[str] = []
    row.alg, row.kid, row.typ = (claim_text(header.get(k)) for k in ("alg", "kid", "typ"))
    if row.alg is None:
        soft.append(REASON_NO_ALG)
    elif row.alg.lower() == "none":
        soft.append(REASON_ALG_NONE)
    row.iss, row.sub, row.jti = (claim_text(claims.get(k)) for k in ("iss", "sub", "jti"))
    if row.jti is None:  # Entra ID names its tokens by `uti`
        row.jti = claim_text(claims.get("uti"))
    row.txn, row.req_wl = claim_text(claims.get("txn")), claim_text(claims.get("req_wl"))
    row.aud = string_list(claims.get("aud"))
    row.azp = claim_text(claims.get("azp"))
    clients = [claim_text(claims.get(name)) for name in CLIENT_CLAIMS]
    row.client_id = next((c for c in clients if c is not None), None)
    scope = claims.get("scope")
    row.scope = scope_list(scope if scope is not None else claims.get("scp"))
    for name in TIME_CLAIMS:
        instant, ok = numeric_date(claims.get(name))
        setattr(row, name, instant)
        if not ok:
            soft.append(BAD_TIME.format(claim=name))
    row.has_cnf = claims.get("cnf") is not None
    row.has_auth_time, row.has_acr, row.has_amr = (
        claims.get(name) is not None for name in HUMAN_EVIDENCE_CLAIMS
    )
    soft += _fill_chain(row, claims)
    row.subject_kind = subject_kind(row.sub, clients, row, config)
    row.decode_error = "; ".join(soft) or None


def _fill_chain(row: TokenRow, claims: dict[str, Any]) -> list[str]:
    """Flatten nested `act` (RFC 8693 §4.1): outermost (current actor) first."""
    chain: list[str] = []
    problems: list[str] = []
    node: Any = claims
    for depth in range(1, MAX_ACT_DEPTH + 2):
        act = node.get("act") if isinstance(node, dict) else None
        if act is None:
            break
        if depth > MAX_ACT_DEPTH:
            problems.append(REASON_ACT_TOO_DEEP)
            break
        if not isinstance(act, dict):
            problems.append(ACT_NOT_OBJECT.format(depth=depth))
            break
        chain.append(actor_name(act))
        node = act
    row.act_chain, row.chain_depth = chain, len(chain)
    row.root_subject = row.sub
    row.current_actor = chain[0] if chain else row.sub
    named = [actor for actor in chain if actor != UNNAMED_ACTOR]
    row.chain_has_cycle = len(set(named)) < len(named)
    row.may_act = _may_act(claims.get("may_act"))
    # `may_act` says who may become the actor (RFC 8693 §4.4); earlier actors, in nested
    # `act` claims, are informational only (§4.1).
    if row.may_act is not None and chain and chain[0] not in row.may_act:
        row.chain_actor_not_allowed = chain[0]
    return problems


def _may_act(value: Any) -> list[str] | None:
    """RFC 8693 §4.4 names one party (an object); a list of them is accepted too."""
    if value is None:
        return None
    if isinstance(value, dict):
        return [actor_name(value)]
    if isinstance(value, list):
        names = (actor_name(item) if isinstance(item, dict) else claim_text(item) for item in value)
        return [name for name in names if name is not None]
    text = claim_text(value)
    return None if text is None else [text]


def subject_kind(sub: str | None, clients: list[str | None], row: TokenRow, config: Config) -> str:
    """client (sub is the client: no human), human, agent, service, else unknown."""
    if sub is None:
        return "unknown"
    if sub in clients:
        return "client"
    if row.has_auth_time or row.has_acr or row.has_amr:
        return "human"
    for kind, patterns in config.name_kinds():
        if full_match_any(sub, patterns):
            return kind
    return "unknown"
