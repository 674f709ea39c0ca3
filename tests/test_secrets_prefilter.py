"""The cheap literal prefilter must never hide a secret the patterns would find."""

from __future__ import annotations

import re

import duckdb
import pytest

from m2maudit.fingerprint import bare_token, bare_token_sql
from m2maudit.secrets import (
    SECRET_NEEDLE_PATTERNS,
    SECRET_NEEDLES,
    SECRET_PATTERNS,
    leaked_secret_kind_sql,
)
from tests.test_secret_patterns import connect

EXAMPLES = [
    "-----BEGIN RSA PRIVATE KEY-----",
    "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2ln",
    "AWS_SECRET_ACCESS_KEY=" + "A" * 40,
    '"SecretAccessKey": "' + "b" * 40 + '"',
    "ghp_" + "a" * 36,
    "github_pat_" + "a" * 60,
    "xoxb-1234567890-abc",
    "sk-" + "a" * 40,
    "client_secret=abcdefghijklmnop1234",
    "?api_key=abcdefghijklmnop1234",
    "ApiKey: abcdefghijklmnop1234",
    "API-KEY=abcdefghijklmnop1234",
    "Password=abcdefghijklmnop1234",
    "passwd: abcdefghijklmnop1234",
    "access_token=abcdefghijklmnop1234",
    "Refresh_Token=abcdefghijklmnop1234",
    "PASSWORD=hunter22",
    "Pwd=hunter22",
    '"pwd": "hunter22"',
    "hvs." + "a" * 24,
    "AIza" + "a" * 35,
    "https://u:hunter22@host",
    "HTTPS://U:HUNTER22@HOST",
    "Basic dXNlcjpwYXNzd29yZA==",
    "BASIC dXNlcjpwYXNzd29yZA==",
    "?X-Amz-Signature=" + "0" * 64,
    "?x-amz-security-token=" + "a" * 20,
    "&sig=abcdefghijklmnop1234",
    "&Signature=abcdefghijklmnop1234",
    "?Token=abcdefghijklmnop1234",
    "?SECRET=abcdefghijklmnop1234",
    "?Key=abcdefghijklmnop1234",
    "?AUTH=abcdefghijklmnop1234",
]


def test_every_pattern_has_needles() -> None:
    assert {kind for kind, _ in SECRET_PATTERNS} == set(SECRET_NEEDLES)
    assert set(SECRET_NEEDLE_PATTERNS) <= set(SECRET_NEEDLES)
    assert all(SECRET_NEEDLES[kind] or kind in SECRET_NEEDLE_PATTERNS for kind in SECRET_NEEDLES)


@pytest.mark.parametrize("text", EXAMPLES)
def test_prefilter_keeps_every_example(text: str) -> None:
    assert any(re.search(p, text) for _, p in SECRET_PATTERNS), "example must be a secret"
    con = connect()
    kind = con.execute(f"SELECT {leaked_secret_kind_sql('$t::VARCHAR')}", {"t": text}).fetchone()
    assert kind is not None and kind[0] is not None


@pytest.mark.parametrize(
    "raw",
    [
        "Bearer abc",
        "Bearer\tx",
        "bearer x ",
        "Bearer éé",
        "BeArEr x.y.z",
        "x y",
        " Bearer x",
        "",
        "  bearer \t abc  ",
        "BEARER\tabc",
        "bearer",
        "bearerabc",
        "abc",
        "  ",
        "Bearer ",
        "Bearer  Bearer x",
        "\r\nbearer\r\nx.y.z\n",
    ],
)
def test_bare_token_sql_matches_python(raw: str) -> None:
    con = duckdb.connect()
    row = con.execute(f"SELECT {bare_token_sql('$t::VARCHAR')}", {"t": raw}).fetchone()
    assert row is not None and row[0] == bare_token(raw)
