"""`m2maudit token inspect`: what one pasted token says, and which problems it shows by itself.

The token is decoded by the Python twin of the scan's SQL decoder (`token_claims`), so the
fingerprint, the delegation chain and `subject_kind` are the ones the `tokens` table holds.
A signature is checked only against a key the user hands over (`--key`, `--jwks`); nothing is
ever fetched from the network. Nothing here returns or raises the raw token or its signature.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from m2maudit.config import EXPOSURE, Config
from m2maudit.errors import AuditError
from m2maudit.fingerprint import bare_token
from m2maudit.timeutil import CLOCK_SKEW, iso, lifetime_allowance
from m2maudit.token_claims import (
    REASON_ALG_NONE,
    UNNAMED_ACTOR,
    DecodedToken,
    TokenRow,
    decode_token,
    full_match_any,
    is_act_problem,
    numeric_date,
)
from m2maudit.token_redaction import ExposedSecrets, redacted_text, without_secrets

JSON_SCHEMA_VERSION = "1.0"  # a string, as in the scan's JSON report
MAX_INPUT_BYTES = 16 * 1024 * 1024
_AUTH_HEADER = re.compile(r"^\s*authorization\s*:\s*", re.IGNORECASE)
_VERIFY_ONLY_SIGNATURE: dict[str, Any] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "require": [],
}
_FAMILIES = {"HS": "HMAC", "RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "EdDSA"}

SignatureStatus = Literal["valid", "invalid", "not checked"]
SIGNATURE_MISMATCH = "the signature does not match the key"
UNSIGNED = "unsigned: alg none or no alg"


@dataclass(frozen=True)
class Problem:
    """One problem the token shows by itself: one of the five problem keys, or `exposure`
    (as the scan's M2M6xx rules say)."""

    problem: str
    message: str


@dataclass(frozen=True)
class SignatureCheck:
    status: SignatureStatus
    detail: str


@dataclass(frozen=True)
class TimeClaim:
    """A time claim in UTC and relative to the clock, e.g. `expired 3 days ago`."""

    name: str
    utc: str
    relative: str


@dataclass
class Inspection:
    decoded: DecodedToken
    as_of: datetime
    times: list[TimeClaim] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    signature: SignatureCheck = SignatureCheck("not checked", "no --key or --jwks given")

    @property
    def row(self) -> TokenRow:
        return self.decoded.row


# --- reading the input -------------------------------------------------------------------------


def token_from_text(text: str) -> str:
    """The bare token from what was pasted: `Authorization: Bearer x`, `Bearer x` or `x`.

    Several values (a file of tokens piped in) are refused by name: read as one they would
    pass for an encrypted token of many segments."""
    token = bare_token(_AUTH_HEADER.sub("", text.strip()))
    values = len(token.split())
    if values > 1:
        raise AuditError(f"{values} values where one token belongs; inspect one token at a time")
    return token


def read_token_file(stream: Any) -> str:
    """Read a token from a text stream (stdin), refusing input no token could be."""
    text = str(stream.read(MAX_INPUT_BYTES + 1))
    if len(text) > MAX_INPUT_BYTES:
        raise AuditError(f"standard input is over {MAX_INPUT_BYTES:,} bytes: not a token")
    try:  # stdin decodes bytes that are not UTF-8 as lone surrogates, which no hash takes
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise AuditError("standard input is not UTF-8 text: not a token") from None
    return text


# --- the inspection ----------------------------------------------------------------------------


def inspect_token(
    text: str,
    config: Config,
    as_of: datetime,
    key_file: Path | None = None,
    jwks_file: Path | None = None,
) -> Inspection:
    """Decode, place in time, list problems and (optionally) check the signature.

    A token whose claims cannot be read at all raises `AuditError` with the reason only.
    """
    if key_file is not None and jwks_file is not None:
        raise AuditError("give --key or --jwks, not both")
    token = token_from_text(text)
    if not token:
        raise AuditError("no token given")
    decoded = decode_token(token, config)
    if not decoded.readable:
        raise AuditError(f"cannot read this token: {decoded.row.decode_error}")
    shown, exposed = without_secrets(decoded)
    inspection = Inspection(shown, as_of)
    inspection.times = time_claims(shown, as_of)
    inspection.problems = token_problems(shown, config, as_of) + _exposures(exposed)
    if key_file is not None or jwks_file is not None:
        check = check_signature(token, decoded, key_file, jwks_file)
        # The detail may quote the header's `kid` or `alg`, which may hold anything.
        inspection.signature = SignatureCheck(check.status, redacted_text(check.detail))
        inspection.problems += _signature_problems(inspection.signature)
    return inspection


def _signature_problems(check: SignatureCheck) -> list[Problem]:
    """Asked to check the signature, a token the key does not verify is a problem (an unsigned
    one already is: its `alg` is reported with the other exposures)."""
    if check.status != "invalid" or check.detail == UNSIGNED:
        return []
    if check.detail == SIGNATURE_MISMATCH:
        why = "the token was forged or altered, or another key signed it"
    else:  # the key does not fit the token's alg (an algorithm confusion, say)
        why = "a wrong key was given, or the token was forged to fit another algorithm"
    return [
        Problem(
            EXPOSURE, f"the signature does not verify with the key given ({check.detail}): {why}"
        )
    ]


def _exposures(exposed: list[ExposedSecrets]) -> list[Problem]:
    """One exposure per member holding secrets, each named by kind and fingerprint."""
    problems = []
    for item in exposed:
        named = ", ".join(secret.replace(":", ", fingerprint ") for secret in item.secrets)
        what = "a secret" if len(item.secrets) == 1 else f"{len(item.secrets)} secrets"
        problems.append(
            Problem(
                EXPOSURE,
                f"{item.path} holds {what} in clear ({named}): anyone the token is sent or "
                "shown to can read it",
            )
        )
    return problems


def humanize(delta: timedelta) -> str:
    """A length of time as a person says it: `40 s`, `14 min`, `5 h`, `3 days`."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 2 * 3600 and seconds % 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


_TIME_WORDS = {
    "exp": ("expires in {}", "expired {} ago"),
    "iat": ("issued in {} (in the future)", "issued {} ago"),
    "nbf": ("not valid until {} from now", "valid since {} ago"),
    "auth_time": ("user authenticated in {} (in the future)", "user authenticated {} ago"),
}


def time_claims(decoded: DecodedToken, as_of: datetime) -> list[TimeClaim]:
    claims = decoded.claims or {}
    found: list[TimeClaim] = []
    for name, (future, past) in _TIME_WORDS.items():
        instant, _ok = numeric_date(claims.get(name))
        if instant is None:
            continue
        delta = instant - as_of
        words = future if delta.total_seconds() > 0 else past
        found.append(TimeClaim(name, iso(instant) or "", words.format(humanize(delta))))
    return found


def token_problems(decoded: DecodedToken, config: Config, as_of: datetime) -> list[Problem]:
    """The problems one token shows without any log: the five, then exposures."""
    row = decoded.row
    return [
        *_user_context(row, config),
        *_broad_scopes(row, config),
        *_stale(row, config, as_of),
        *_lifetime(row, config, as_of),
        *_untraceable(row),
        *_exposure(row),
    ]


def _user_context(row: TokenRow, config: Config) -> list[Problem]:
    key = "missing-user-context"
    found: list[Problem] = []
    depth = row.chain_depth or 0
    if row.subject_kind == "client":
        found.append(
            Problem(key, "client-credentials token: sub is the client, no human is behind it")
        )
    elif depth and row.subject_kind != "human":
        found.append(
            Problem(
                key,
                f"the delegation chain has no human at its root: sub "
                f"{row.sub!r} is {row.subject_kind}",
            )
        )
    elif row.subject_kind == "agent":
        found.append(Problem(key, "an agent's own token: no act chain and no human subject"))
    if depth > config.thresholds.max_chain_depth:
        found.append(
            Problem(
                key,
                f"delegation chain is {depth} deep, above max_chain_depth "
                f"{config.thresholds.max_chain_depth}",
            )
        )
    if row.chain_has_cycle:
        repeated = _first_repeat(row.act_chain or [])
        found.append(Problem(key, f"delegation chain has a cycle: {repeated!r} acts twice"))
    found += [
        Problem(key, f'the delegation chain is broken: {reason} (RFC 8693: {{"sub": ...}})')
        for reason in (row.decode_error or "").split("; ")
        if is_act_problem(reason)
    ]
    if row.chain_actor_not_allowed is not None:
        allowed = ", ".join(row.may_act or []) or "nobody"
        found.append(
            Problem(
                key, f"actor {row.chain_actor_not_allowed!r} is not allowed by may_act ({allowed})"
            )
        )
    return found


def _first_repeat(chain: list[str]) -> str | None:
    seen: set[str] = set()
    for actor in chain:
        if actor in seen and actor != UNNAMED_ACTOR:
            return actor
        seen.add(actor)
    return None


def _broad_scopes(row: TokenRow, config: Config) -> list[Problem]:
    key = "broad-scopes"
    scopes = row.scope or []
    found: list[Problem] = []
    wildcard = [s for s in scopes if full_match_any(s, config.wildcard_scopes)]
    admin = [s for s in scopes if full_match_any(s, config.admin_scopes)]
    if wildcard:
        found.append(Problem(key, f"wildcard scope: {', '.join(wildcard)}"))
    if admin:
        found.append(Problem(key, f"admin scope: {', '.join(admin)}"))
    if len(scopes) > config.thresholds.max_scopes:
        found.append(
            Problem(key, f"{len(scopes)} scopes, above max_scopes {config.thresholds.max_scopes}")
        )
    return found


def _stale(row: TokenRow, config: Config, as_of: datetime) -> list[Problem]:
    days = config.thresholds.rotation_days
    still_valid = row.exp is None or row.exp > as_of
    if row.iat is not None and still_valid and as_of - row.iat > timedelta(days=days):
        age = humanize(as_of - row.iat)
        return [
            Problem(
                "stale-rotation", f"issued {age} ago and still valid, beyond rotation_days {days}"
            )
        ]
    return []


def _lifetime(row: TokenRow, config: Config, as_of: datetime) -> list[Problem]:
    key = "long-lifetime"
    limit = config.thresholds.max_token_lifetime
    window = _impossible_window(row, as_of)
    if window:
        return [Problem(key, window)]
    if row.exp is None:
        return [Problem(key, "no usable exp: the token never expires")]
    if row.iat is not None and row.exp - row.iat > limit + lifetime_allowance(limit):
        return [
            Problem(
                key,
                f"lives {humanize(row.exp - row.iat)} (exp - iat), above "
                f"max_token_lifetime {humanize(limit)}",
            )
        ]
    if row.iat is None and row.exp - as_of > limit + lifetime_allowance(limit):
        return [
            Problem(
                key,
                f"no iat, and it expires in {humanize(row.exp - as_of)}, more "
                f"than max_token_lifetime {humanize(limit)} from now",
            )
        ]
    return []


def _impossible_window(row: TokenRow, as_of: datetime) -> str | None:
    """Time claims no honest issuer writes: they make `exp - iat` say nothing true."""
    for claim, start in (("nbf", row.nbf), ("iat", row.iat)):
        if start is not None and row.exp is not None and start >= row.exp:
            return (
                f"{claim} is not before exp: the token is never valid (a broken or forged issuer)"
            )
    if row.iat is not None and row.iat - as_of > CLOCK_SKEW:
        ahead = humanize(row.iat - as_of)
        return (
            f"iat is {ahead} in the future: exp - iat understates how long it is valid "
            f"({_expiry_words(row.exp, as_of)})"
        )
    return None


def _expiry_words(exp: datetime | None, as_of: datetime) -> str:
    """After an `iat` ahead of the clock, an `exp` (later still: see above) is ahead too."""
    return "it never expires" if exp is None else f"it expires in {humanize(exp - as_of)}"


def _untraceable(row: TokenRow) -> list[Problem]:
    """No `jti`, and no `txn` either: a Transaction Token names its transaction instead."""
    if not (row.jti or "").strip() and not (row.txn or "").strip():
        return [Problem("untraceable-action", "no jti: calls made with it cannot be told apart")]
    return []


def _exposure(row: TokenRow) -> list[Problem]:
    found = [
        Problem(EXPOSURE, "alg none: the token is unsigned, anyone can forge it")
        if reason == REASON_ALG_NONE
        else Problem(EXPOSURE, reason)
        for reason in (row.decode_error or "").split("; ")
        if reason and not is_act_problem(reason)
    ]
    if not [audience for audience in row.aud or [] if audience.strip()]:  # "" is none
        found.append(Problem(EXPOSURE, "no aud: any service that trusts the issuer accepts it"))
    return found


# --- signatures --------------------------------------------------------------------------------


def check_signature(
    token: str, decoded: DecodedToken, key_file: Path | None, jwks_file: Path | None
) -> SignatureCheck:
    """Verify the signature with a local key; reports the outcome, never the key or token.

    The header as written, not the row: the row keeps a secret-looking `kid` as its
    fingerprint, which no key set names (the detail shown is cleaned by the caller)."""
    header = decoded.header or {}
    alg, kid = (header.get(name) for name in ("alg", "kid"))
    alg = alg if isinstance(alg, str) else decoded.row.alg
    kid = kid if isinstance(kid, str) else decoded.row.kid
    if alg is None or alg.lower() == "none":
        return SignatureCheck("invalid", UNSIGNED)
    if jwks_file is not None:
        key = _jwks_key(jwks_file, alg, kid)
        if isinstance(key, SignatureCheck):
            return key
    else:
        assert key_file is not None
        key = _file_key(key_file, alg)
        if isinstance(key, SignatureCheck):
            return key
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short HMAC keys warn; the check still answers
            jwt.decode(token, key, algorithms=[alg], options=_VERIFY_ONLY_SIGNATURE)  # type: ignore[arg-type]
    except jwt.InvalidSignatureError:
        return SignatureCheck("invalid", SIGNATURE_MISMATCH)
    except (jwt.InvalidKeyError, jwt.InvalidAlgorithmError, jwt.PyJWKError):
        return SignatureCheck("invalid", f"the key does not fit alg {alg}")
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        return SignatureCheck("invalid", f"cannot verify: {type(exc).__name__}")
    return SignatureCheck("valid", f"verified with alg {alg}")


def _read_key_bytes(path: Path, option: str) -> bytes:
    """The key file's bytes. A value that names no file is not echoed: it may be the secret
    itself, pasted where its file's path belongs, and stderr goes to CI logs."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AuditError(
            f"{option}: no such file (give the path of a file holding the key; the value "
            "given is not shown, in case it is the key itself)"
        ) from None
    except OSError as exc:
        raise AuditError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None


def _family(alg: str) -> str | None:
    return _FAMILIES.get(alg[:2])


def _file_key(path: Path, alg: str) -> Any:
    """`--key`: a PEM public key, certificate or private key; for HS* the file's bytes."""
    data = _read_key_bytes(path, "--key")
    is_pem = b"-----BEGIN" in data
    if _family(alg) == "HMAC":
        if is_pem:
            return SignatureCheck(
                "invalid", f"alg {alg} with a PEM key: refused (algorithm confusion)"
            )
        return data.rstrip(b"\r\n")
    if not is_pem:
        raise AuditError(f"--key {path}: not a PEM public key, certificate or private key")
    key = _pem_public_key(data, path)
    wanted, kind = _family(alg), _key_family(key)
    if wanted is not None and kind != wanted:
        given = f"an {kind} key" if kind else "of another kind"
        return SignatureCheck(
            "invalid", f"alg {alg} needs an {wanted} key; the key given is {given}"
        )
    return key


def _key_family(key: Any) -> str | None:
    """The algorithm family a public key serves: given a key of another family, pyjwt's
    check fails with a bare TypeError, which says nothing to a user."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC"
    if isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return "EdDSA"
    return None


def _pem_public_key(data: bytes, path: Path) -> Any:
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:
        pass
    try:
        return x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        pass
    try:
        return serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):
        raise AuditError(
            f"--key {path}: not a PEM public key, certificate or unencrypted private key"
        ) from None


def _jwks_key(path: Path, alg: str, kid: str | None) -> Any:
    """The JWKS member for this token: by `kid`, or the only one when the token has none."""
    try:
        keys = json.loads(_read_key_bytes(path, "--jwks")).get("keys")
    except (ValueError, AttributeError):
        keys = None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise AuditError(f"--jwks {path}: not a JWK Set (a JSON object with a keys list)")
    if kid is not None:
        matches = [k for k in keys if k.get("kid") == kid]
    else:
        matches = keys if len(keys) == 1 else []
    if not matches:
        wanted = f"kid {kid!r}" if kid is not None else "no kid, and the set has several keys"
        return SignatureCheck("not checked", f"no key in the JWKS for this token ({wanted})")
    member = matches[0]
    if member.get("alg") not in (None, alg):
        return SignatureCheck(
            "invalid", f"token alg {alg}, but the JWKS key is for {member.get('alg')}"
        )
    try:
        return jwt.PyJWK(member, algorithm=alg).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return SignatureCheck("invalid", f"the JWKS key does not fit alg {alg}")


# --- JSON --------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def to_json(inspection: Inspection) -> dict[str, Any]:
    """The `--format json` document (versioned). The signature itself is never included."""
    row = inspection.row
    columns = {name: _jsonable(value) for name, value in asdict(row).items()}
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "as_of": iso(inspection.as_of),
        "token_fp": row.token_fp,
        "decode_error": row.decode_error,
        "header": inspection.decoded.header,
        "claims": inspection.decoded.claims,
        "times": {t.name: {"utc": t.utc, "relative": t.relative} for t in inspection.times},
        "delegation": {
            "root_subject": row.root_subject,
            "subject_kind": row.subject_kind,
            "chain": row.act_chain,
            "depth": row.chain_depth,
            "current_actor": row.current_actor,
            "has_cycle": row.chain_has_cycle,
            "may_act": row.may_act,
            "actor_not_allowed": row.chain_actor_not_allowed,
        },
        "signature": asdict(inspection.signature),
        "problems": [asdict(p) for p in inspection.problems],
        "columns": columns,
    }
