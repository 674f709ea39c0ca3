"""Bad tokens become rows with a `decode_error`, never an exception that stops a scan.

Every case is decoded by the SQL decoder and by its Python twin, which must agree to the
column; and all of them together go through a real ingest, which must load every call.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pytest

from m2maudit.errors import AuditError
from m2maudit.fingerprint import fingerprint
from m2maudit.ingest import ingest_paths
from m2maudit.store import Store
from m2maudit.token_claims import (
    MAX_ACT_DEPTH,
    MAX_JSON_DEPTH,
    MAX_TOKEN_BYTES,
    REASON_ACT_TOO_DEEP,
    REASON_ALG_NONE,
    REASON_DETACHED,
    REASON_JWE,
    REASON_NO_ALG,
    decode_token,
)
from m2maudit.token_inspect import read_token_file
from tests.jwt_factory import (
    b64url,
    decode_in_sql,
    jwe_like,
    raw_jwt,
    rows_by_fp,
    signed,
    write_log,
)

HS = {"alg": "HS256", "typ": "JWT"}
SUB = {"sub": "agent-1"}


def _deep_act(levels: int) -> bytes:
    """`{"sub":"root","act":{"sub":"a1","act":{...}}}` nested `levels` deep, built as text."""
    opening = "".join(f'{{"sub":"a{i}","act":' for i in range(1, levels))
    return (f'{{"sub":"root","act":{opening}{{"sub":"a{levels}"}}' + "}" * levels).encode()


# (case, token, expected decode_error, claims still readable)
CASES: list[tuple[str, Callable[[], str], str, bool]] = [
    (
        "opaque, one segment",
        lambda: "s3cr3t-opaque-token",
        "not a JWT: 1 segment, expected 3",
        False,
    ),
    (
        "two segments",
        lambda: raw_jwt(HS, SUB).rsplit(".", 1)[0],
        "not a JWT: 2 segments, expected 3",
        False,
    ),
    ("four segments", lambda: raw_jwt(HS, SUB) + ".x", "not a JWT: 4 segments, expected 3", False),
    ("JWE, five segments", lambda: jwe_like(), REASON_JWE, False),
    (
        "header not base64url",
        lambda: "!!!." + raw_jwt(HS, SUB).split(".", 1)[1],
        "header is not base64url",
        False,
    ),
    (
        "payload base64 length",
        lambda: b64url(json.dumps(HS).encode()) + ".abcde.c2ln",
        "payload is not base64url",
        False,
    ),
    (
        "payload with + and /",
        lambda: b64url(json.dumps(HS).encode()) + ".ab+/.c2ln",
        "payload is not base64url",
        False,
    ),
    (
        "too much padding",
        lambda: b64url(json.dumps(HS).encode()) + ".e30===.c2ln",
        "payload is not base64url",
        False,
    ),
    (
        "signature not base64url",
        lambda: raw_jwt(HS, SUB, signature="sig!"),
        "signature is not base64url",
        False,
    ),
    ("header not UTF-8", lambda: raw_jwt(b"\xff\xfe{}", SUB), "header is not UTF-8", False),
    ("header not JSON", lambda: raw_jwt(b"alg=HS256", SUB), "header is not JSON", False),
    ("header an array", lambda: raw_jwt(b'["HS256"]', SUB), "header is not a JSON object", False),
    ("payload not JSON", lambda: raw_jwt(HS, b"sub=agent-1"), "payload is not JSON", False),
    ("payload trailing comma", lambda: raw_jwt(HS, b'{"sub":"a",}'), "payload is not JSON", False),
    ("payload NaN", lambda: raw_jwt(HS, b'{"exp":NaN}'), "payload is not JSON", False),
    ("payload inf", lambda: raw_jwt(HS, b'{"exp":inf}'), "payload is not JSON", False),
    (
        "payload lone surrogate",
        lambda: raw_jwt(HS, b'{"sub":"\\ud800"}'),
        "payload is not JSON",
        False,
    ),
    ("payload a string", lambda: raw_jwt(HS, b'"agent-1"'), "payload is not a JSON object", False),
    ("payload a list", lambda: raw_jwt(HS, b"[1, 2]"), "payload is not a JSON object", False),
    ("payload empty", lambda: raw_jwt(HS, b""), "payload is not JSON", False),
    (
        "duplicate claim",
        lambda: raw_jwt(HS, b'{"sub":"a","sub":"b"}'),
        "payload repeats a member name",
        False,
    ),
    (
        "detached payload",
        lambda: raw_jwt({"alg": "HS256", "b64": False}, SUB),
        REASON_DETACHED,
        False,
    ),
    (
        "100 KB token",
        lambda: raw_jwt(HS, {"sub": "x", "pad": "A" * 100_000}),
        f"token is {len(raw_jwt(HS, {'sub': 'x', 'pad': 'A' * 100_000}))} bytes, over the "
        f"limit of {MAX_TOKEN_BYTES}",
        False,
    ),
    (
        "act nested 1,000 deep",
        lambda: raw_jwt(HS, _deep_act(1000)),
        f"payload is nested deeper than {MAX_JSON_DEPTH} levels",
        False,
    ),
    ("act nested 100 deep", lambda: raw_jwt(HS, _deep_act(100)), REASON_ACT_TOO_DEEP, True),
    (
        "act a string",
        lambda: raw_jwt(HS, {"sub": "u", "act": "agent"}),
        "act at depth 1 is not a JSON object",
        True,
    ),
    (
        "act list at depth 2",
        lambda: raw_jwt(HS, {"sub": "u", "act": {"sub": "a", "act": [1]}}),
        "act at depth 2 is not a JSON object",
        True,
    ),
    (
        "non-numeric exp",
        lambda: signed({"sub": "agent-1", "iat": 1700000000, "exp": "soon"}),
        "exp is not a NumericDate",
        True,
    ),
    (
        "boolean iat",
        lambda: signed({"sub": "agent-1", "iat": True}),
        "iat is not a NumericDate",
        True,
    ),
    (
        "exp past year 9999",
        lambda: signed({"sub": "agent-1", "exp": 1e300}),
        "exp is not a NumericDate",
        True,
    ),
    ("alg none", lambda: raw_jwt({"alg": "none"}, SUB, signature=""), REASON_ALG_NONE, True),
    ("alg None, mixed case", lambda: raw_jwt({"alg": "None"}, SUB), REASON_ALG_NONE, True),
    ("no alg", lambda: raw_jwt({"typ": "JWT"}, SUB), REASON_NO_ALG, True),
    (
        "alg none and a bad exp",
        lambda: raw_jwt({"alg": "none"}, {"sub": "a", "exp": "soon"}),
        f"{REASON_ALG_NONE}; exp is not a NumericDate",
        True,
    ),
]
IDS = [case[0] for case in CASES]


@pytest.fixture(scope="module")
def tokens() -> dict[str, str]:
    return {name: make() for name, make, _reason, _readable in CASES}


@pytest.fixture(scope="module")
def sql_rows(tokens: dict[str, str]) -> dict[str, dict[str, object]]:
    return decode_in_sql(list(tokens.values()))


@pytest.mark.parametrize(
    ("name", "reason", "readable"), [(n, r, ok) for n, _m, r, ok in CASES], ids=IDS
)
def test_bad_token_becomes_a_row_with_a_reason(
    tokens: dict[str, str],
    sql_rows: dict[str, dict[str, object]],
    name: str,
    reason: str,
    readable: bool,
) -> None:
    token = tokens[name]
    row = sql_rows[fingerprint(token)]
    assert row["decode_error"] == reason
    assert row["token_length"] == len(token.encode())
    assert (row["subject_kind"] is not None) == readable
    if readable:
        assert row["sub"] is not None
    assert row == asdict(decode_token(token).row)


def test_alg_none_is_kept_for_a_later_check(
    sql_rows: dict[str, dict[str, object]], tokens: dict[str, str]
) -> None:
    row = sql_rows[fingerprint(tokens["alg none"])]
    assert row["alg"] == "none"
    assert row["sub"] == "agent-1"


def test_a_deep_act_is_cut_at_the_limit(
    sql_rows: dict[str, dict[str, object]], tokens: dict[str, str]
) -> None:
    row = sql_rows[fingerprint(tokens["act nested 100 deep"])]
    assert row["chain_depth"] == MAX_ACT_DEPTH
    assert row["act_chain"] == [f"a{i}" for i in range(1, MAX_ACT_DEPTH + 1)]


def test_bad_exp_keeps_the_other_claims(
    sql_rows: dict[str, dict[str, object]], tokens: dict[str, str]
) -> None:
    row = sql_rows[fingerprint(tokens["non-numeric exp"])]
    assert row["exp"] is None
    assert row["iat"] is not None
    assert row["subject_kind"] == "agent"


def test_every_bad_token_in_one_log_loads_and_decodes(
    tokens: dict[str, str], tmp_path: Path
) -> None:
    good = signed({"sub": "alice@example.com"})
    path = write_log(tmp_path / "calls.jsonl", ["Bearer " + t for t in tokens.values()] + [good])
    store = Store.open()
    report = ingest_paths(store, [str(path)])
    assert report.loaded == len(tokens) + 1
    assert report.rejected == 0
    rows = rows_by_fp(store.con)
    assert len(rows) == len(tokens) + 1
    assert rows[fingerprint(good)]["decode_error"] is None
    assert sum(1 for r in rows.values() if r["decode_error"]) == len(tokens)


def test_stdin_that_is_not_utf8_is_one_line_not_an_internal_error() -> None:
    """Python decodes such stdin bytes as lone surrogates; hashing the text then failed."""
    stream = io.TextIOWrapper(io.BytesIO(b"abc\xffdef"), encoding="utf-8", errors="surrogateescape")
    with pytest.raises(AuditError, match="not UTF-8 text"):
        read_token_file(stream)
