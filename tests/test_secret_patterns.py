"""Each kind of secret: found, named, fingerprinted and redacted in SQL; near misses stay
ordinary text; and the prefilter's needles hold every match."""

from __future__ import annotations

import base64
import random
import re
import string
import time

import duckdb
import pytest

from m2maudit.secrets import (
    SECRET_MACROS,
    SECRET_NEEDLE_PATTERNS,
    SECRET_NEEDLES,
    SECRET_PATTERNS,
    all_secrets,
    all_secrets_sql,
    as_scanned_sql,
    find_secret,
    leaked_secret_fp_sql,
    leaked_secret_kind_sql,
    redact_secrets,
    redact_secrets_sql,
    without_placeholders,
)

KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAPLANTEDKEYBODY"
KEY_LINES = [
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    KEY_BODY[:20],
    KEY_BODY[20:],
    "-----END OPENSSH PRIVATE KEY-----",
]

# (text, kind, the secret in it: what must not survive the redaction)
FOUND = [
    # From a secret-leak audit: an unsigned token and an encrypted one (JWE) were no JWT.
    ("ua eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZ2VudC1hIn0. x", "jwt", "eyJzdWIiOiJhZ2VudC1hIn0"),
    (
        "ua eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..aXZpdml2aXZpdg.Y2lwaGVydGV4dHh4"
        ".dGFndGFndGFn x",
        "jwt",
        "Y2lwaGVydGV4dHh4",
    ),
    (f"POST {' '.join(KEY_LINES)} done", "private_key", KEY_BODY[20:]),
    ("\n".join(KEY_LINES), "private_key", KEY_BODY[20:]),
    ("key:\n" + "\n".join(KEY_LINES[:3]), "private_key", KEY_BODY[20:]),  # cut short: no END
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQdGBF8pA1gBEAC\n", "private_key", "lQdGBF8pA1gBEAC"),
    ("hvs.CAESIJ3kzQ8wq1nVxY0rT5uLmP2aBcDeFgHiJkLmNoPq", "vault_token", "CAESIJ3kzQ8wq1nV"),
    ("Using token hvb.AAAAAQJ9c2VjcmV0Ym9keWJhdGNodG9rZW4", "vault_token", "AAAAAQJ9c2VjcmV0"),
    (
        "GET /maps/api/geocode/json?key=AIzaSyD4rT9xQ2mN7vB1cK8pL3wE6yU0iO5aS2d",
        "google_api_key",
        "SyD4rT9xQ2mN7vB1cK8pL3wE6yU0iO5aS2d",
    ),
    (
        "https://deploy:Tr0ub4dor-3@git.example.com/org/repo.git",
        "url_credentials",
        "Tr0ub4dor-3",
    ),
    ("postgres://app:s3cr3t@db.internal:5432/app", "url_credentials", "s3cr3t"),
    ("POST /v1/charges key sk_live_51HqLyjWDarjtT1zdp7dc00aBcD", "stripe_key", "51HqLyjWDarjtT1z"),
    # From a security review: tokens of tools an agent uses, which no pattern knew.
    ("git clone https://ci glpat-xZ9yW8vU7tS6rQ5pO4nM x", "gitlab_token", "xZ9yW8vU7tS6rQ5pO4nM"),
    ("NPM_TOKEN npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 set", "npm_token", "a1B2c3D4e5F6g7H8"),
    ("HF hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567 pulled", "huggingface_token", "aBcDeFgHiJkLmNoP"),
    ("socket xapp-1-A0123456789-1234567890123-abcdef0123456789", "slack_token", "abcdef0123456789"),
    ("GET /reset?token=3f2a1b4c-9d8e-4f7a-b6c5-d4e3f2a1b0c9", "secret_param", "3f2a1b4c-9d8e"),
    (
        "x-api-key: sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd",
        "anthropic_key",
        "AbCdEfGhIjKlMnOpQrSt",
    ),
    # JSON held in a JSON string (a request body logged as text): the quotes are escaped.
    ('{"body": "{\\"pwd\\":\\"Sekr1tXy\\"}"}', "password_or_key", "Sekr1tXy"),
    (
        '{"body": "{\\"client_secret\\": \\"QwErTyUiOpAsDfGhJkLz\\"}"}',
        "password_or_key",
        "QwErTyUiOpAsDfGhJkLz",
    ),
    ("redis://:hunter22@cache:6379/0", "url_credentials", "hunter22"),
    ("Authorization: Basic YWRtaW46UzNjcjN0IQ==", "basic_auth", "YWRtaW46UzNjcjN0IQ"),
    ('{"headers": {"authorization": "Basic ZGVwbG95OnBhc3N3b3JkMTIz"}}', "basic_auth", "ZGVwbG95"),
    # From the security review's list: an opaque bearer token in a logged header was kept.
    (
        '{"headers": {"Authorization": "Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0"}}',
        "bearer_token",
        "9f8e7d6c5b4a3928",
    ),
    (
        "curl -H 'authorization: bearer 123e4567-e89b-12d3-a456-426614174000'",
        "bearer_token",
        "426614174000",
    ),
    ("Bearer mF_9.B5f-4.1JqMtYwzk+QZ8rXaTq/1==", "bearer_token", "1JqMtYwzk+QZ8rXaTq"),
    (
        "https://b.s3.amazonaws.com/o.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAEXAMPLE%2F20261120%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2F%2FwEaCXVzLWVhc3QtMSJH"
        "&X-Amz-Signature=3c5b6f0e9d2a7c1b8e4f6a9d0c3b2e1f7a8d9c0b1e2f3a4b5c6d7e8f9a0b1c2d",
        "signed_url",
        "3c5b6f0e9d2a7c1b8e4f6a9d0c3b2e1f",
    ),
    (
        "https://acct.blob.core.windows.net/c/b?sv=2022-11-02&se=2026-12-01&sp=r"
        "&sig=p4Xz9bQkT7%2BvN2mW8cLr5sYhJ3dF6gA1eK0uI9oZ%3D",
        "signed_url",
        "p4Xz9bQkT7",
    ),
    ("GET /dl?id=7&token=9f8e7d6c5b4a39281706f5e4d3c2b1a0 200", "secret_param", "9f8e7d6c5b4a"),
    ("webhook secret=whsec_4eC39HqLyjWDarjtT1zdp7dc accepted", "secret_param", "4eC39HqLyjWD"),
    ("GET /feed?auth=Zm9vYmFyYmF6cXV4MTIzNDU2", "secret_param", "Zm9vYmFyYmF6cXV4"),
    ("GET /v1/items?key=8c1f0e2d3b4a5968778695a4b3c2d1e0", "secret_param", "8c1f0e2d3b4a5968"),
    ("token=ya29.a0AfH6SMBx8qL2vKd9Rt3Yw7ZpQ1nM", "secret_param", "a0AfH6SMBx8qL2vK"),
    ('{"url": "/cb?a=1\\u0026token=Q2hhbmdlTWUtOTk4ODc3NjY1NTQ0"}', "secret_param", "Q2hhbmdlTWUt"),
    ("login user=bob password=hunter2x&next=/", "password_or_key", "hunter2x"),
    # From the security review's list: a URL inside another's query is percent-encoded, and
    # `token%3D...` was no `token=...`.
    (
        "GET /login?next=%2Fcb%3Ftoken%3D9f8e7d6c5b4a39281706f5e4d3c2b1a0 302",
        "secret_param",
        "9f8e7d6c5b4a",
    ),
    (
        "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Faccess_token%3DopaqueAT9f8e7d6c5b4a3f2e1d0",
        "password_or_key",
        "opaqueAT9f8e7d6c5b4a",
    ),
    (
        "u=https%3A%2F%2Fb.example%2Fo%3Fsv%3D1%26sig%3Dp4Xz9bQkT7%252BvN2mW8cLr5s",
        "signed_url",
        "p4Xz9bQkT7",
    ),
    # From a review: a short password, percent-encoded; a longer value than an AWS secret
    # key's under `secret_key` (a Django key, a hash) was cut at 40, its tail kept in clear.
    ("GET /r?next=%2Flogin%3Fuser%3Dbob%26password%3Dhunter22", "password_or_key", "hunter22"),
    (
        "/upload?secret_key=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855&x=1",
        "password_or_key",
        "649b934ca495991b7852b855",
    ),
    (
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYandmore",
        "password_or_key",
        "EXAMPLEKEYandmore",
    ),
    # camelCase and kebab-case names (Azure, Auth0, Spring):
    ('{"clientSecret": "Qm9vbGVhbk9wZXJhdG9yc2Vj"}', "password_or_key", "Qm9vbGVhbk9wZXJhdG9y"),
    ('{"accessToken": "opaqueAT9f8e7d6c5b4a3f2e1d0"}', "password_or_key", "opaqueAT9f8e7d6c5b4a"),
    ("refresh-token=rt9f8e7d6c5b4a3f2e1d0c9b8a7", "password_or_key", "rt9f8e7d6c5b4a3f2e1d"),
    ('"client-secret": "Zk8s9dJq2LmN4pQr7Tx1"', "password_or_key", "Zk8s9dJq2LmN4pQr7Tx1"),
    ('{"user": "bob", "pwd": "S3cr3t!"}', "password_or_key", "S3cr3t!"),
    ("DB_PASSWD=letmein", "password_or_key", "letmein"),
    ("password=secret", "password_or_key", "=secret"),
    ('{"user": "bob", "password": 987654321}', "password_or_key", "987654321"),  # a PIN
    # From a trial: an AWS key pair without the secret's name, as `aws configure` or a CSV
    # export writes it, was stored raw.
    (
        '{"trace_id": "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "aws_secret_key",
        "wJalrXUtnFEMI/K7MDENG",
    ),
    (
        "ASIAIOSFODNN7EXAMPLE, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_key",
        "bPxRfiCYEXAMPLEKEY",
    ),
    # From the security review's list: the pair in two fields, under the names S3 tools
    # and SDK configs give the secret.
    (
        '{"access_key": "AKIAIOSFODNN7EXAMPLE", '
        '"secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
        "aws_secret_key",
        "wJalrXUtnFEMI/K7MDENG",
    ),
    ("secret-access-key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_key", "wJalrXUt"),
    # A redaction word inside a real password is none; a secret beside a placeholder is found.
    ('{"password": "hidden_treasure_42"}', "password_or_key", "hidden_treasure_42"),
    ("password=RedactedNotReally99", "password_or_key", "RedactedNotReally99"),
    (
        '{"password": "REDACTED", "db_password": "Tr0ub4dor-3-staging"}',
        "password_or_key",
        "Tr0ub4dor-3-staging",
    ),
]

NOT_SECRETS = [
    "sort_key=name",
    "GET /search?key=customer_account_settings",
    "cache miss key=user_profile_settings_v2",
    "auth=client_credentials_flow_v2",
    "Invalid password: user=alice@example.com",
    "Reset password: https://example.com/reset/abcdef",
    "api_key: https://vault.example.com/v1/secret/data/prod",
    "GET /items?key=abc",
    "GET /items?key=id&order=asc",
    "cache miss key=user:1234:profile",
    "GET /report?key=reports/2026/q3/summary-final.pdf",
    "config key=spring.datasource.url",
    "GET /x?auth=none",
    "GET /x?next=%2Fsearch%3Fkey%3Dcustomer_account_settings",
    "GET /x?q=%3Ftoken%3D&page=2",
    "GET /login?next=%2Fapp%3Fkey%3Dreports%2F2026%2Fq3%2Fsummary.pdf",
    "GET /x?next=%3Fkey%3Dcustomer%2Baccount%2Bsettings",
    "GET /x?token=&next=1",
    "Basic auth disabled",
    "Basic authentication is not enabled for this endpoint",
    "Basic Options",
    "Basic Only",
    "Bearer token required",
    "Bearer token_expired_please_refresh",
    'WWW-Authenticate: Bearer realm="api", error="invalid_token"',
    "Authorization: Bearer [redacted]",
    "Bearer abc",
    "auth: Bearer authentication/authorization failed",
    "401 Bearer token-introspection-endpoint-unreachable",
    "rejected Bearer credential-with-invalid-signature",
    "scheme=Bearer reports/2026/q3/summary-final-quarterly.pdf",
    "Basic password",
    "password=****",
    "password=<redacted>",
    "password=[redacted]",
    "password=${DB_PASSWORD}",
    "password=%s",
    "password=",
    "password=abc",
    "password: required",
    '{"password": 12345, "password_age": 1234567, "passwordExpiry": 1767225600}',
    "key AKIAIOSFODNN7EXAMPLE rotated by ci-bot on 2026-11-20",  # an id is no secret
    # From a review: not a key id (lower case), a session token (longer than a secret key),
    # an epoch under a name that only ends in "password".
    "akiaiosfodnn7example:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ASIAIOSFODNN7EXAMPLE " + "IQoJb3JpZ2luX2VjEJr" * 5,
    '{"last_changed_password": 1700000000}',
    "ASIAN_MARKETS_REPORT_2026_Q3: summary",
    "reset password: success",
    '{"displayName": "Password", "id": "lae1at5k3ir9bV1gr697"}',
    "PWD=/home/agent/project",
    '{"env": [{"valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}',
    "https://user@host.example/path",
    "https://api.example.com:8443/v1/items?x=1",
    "https://user:****@host.example/",
    "https://user:<password>@host.example/",
    "https://user:${PASS}@host.example/",
    "ssh://git@github.com:22/org/repo.git",
    "git@github.com:org/repo.git",
    "mail from bob.smith@example.com to ops@example.org",
    "http://[::1]:8080/health",
    "GET /oauth/callback?code=4/0AeanS0bVxq1kP9zR7tY3uW8eI2oL5mN6bC&state=xyz",
    "signature=valid",
    "config=/etc/app.conf",
    "hvs.short",
    "AIzaTooShort",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----",
    # What a vendor or a pipeline writes in a secret's place: CloudTrail in every SSO
    # `GetRoleCredentials` and `CreateToken` event, and the usual words.
    '{"roleCredentials": {"accessKeyId": "ASIAEXAMPLE000000001", '
    '"secretAccessKey": "HIDDEN_DUE_TO_SECURITY_REASONS", '
    '"sessionToken": "HIDDEN_DUE_TO_SECURITY_REASONS"}}',
    '{"clientSecret":"HIDDEN_DUE_TO_SECURITY_REASONS","accessToken":"HIDDEN_DUE_TO_SECURITY_REASONS",'
    '"refreshToken":"HIDDEN_DUE_TO_SECURITY_REASONS"}',
    '{"password": "REDACTED"}',
    "password=redacted&user=bob",
    '{"apiKey": "REDACTED_BY_POLICY"}',
    '{"accessToken": "SENSITIVE_DATA_REMOVED"}',
    '{"client_secret": "Filtered"}',
    '{"password": "xxxxxxxx"}',
    "GET /x?token=MASKED&page=2",
]


def _run(con: duckdb.DuckDBPyConnection, sql: str, text: str) -> str | None:
    row = con.execute(f"SELECT {sql}", {"t": text}).fetchone()
    assert row is not None
    value: str | None = row[0]
    return value


def connect() -> duckdb.DuckDBPyConnection:
    """A bare connection with the macro the leak check names (a store's has it)."""
    con = duckdb.connect()
    for sql in SECRET_MACROS:
        con.execute(sql)
    return con


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return connect()


T = "$t::VARCHAR"


@pytest.mark.parametrize(("text", "kind", "secret"), FOUND)
def test_a_secret_is_named_fingerprinted_and_redacted(
    con: duckdb.DuckDBPyConnection, text: str, kind: str, secret: str
) -> None:
    assert secret in text
    assert _run(con, leaked_secret_kind_sql(T), text) == kind
    fp = _run(con, leaked_secret_fp_sql(T), text)
    assert fp is not None and re.fullmatch("[0-9a-f]{16}", fp)
    redacted = _run(con, redact_secrets_sql(T), text)
    assert redacted is not None and "[redacted]" in redacted
    assert secret not in redacted


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_ordinary_text_is_no_secret(con: duckdb.DuckDBPyConnection, text: str) -> None:
    assert _run(con, leaked_secret_kind_sql(T), text) is None
    read = without_placeholders(text)
    assert not any(re.search(pattern, read) for _, pattern in SECRET_PATTERNS)


# RE2's `\b` is ASCII's: a letter like `é` before a token is a word boundary.
UNICODE_NEIGHBOURS = ["é" + "ghp_" + "A" * 36, "naïve password=hunter2hunter2", "ß sk-" + "x" * 40]

PRIVATE_KEY_SPELLINGS = [
    "\n".join(KEY_LINES),
    "\r\n".join(KEY_LINES),
    '{"v": "' + "\\n".join(KEY_LINES) + '"}',
]


@pytest.mark.parametrize(
    "text",
    [text for text, _, _ in FOUND] + NOT_SECRETS + PRIVATE_KEY_SPELLINGS + UNICODE_NEIGHBOURS,
)
def test_the_python_twin_finds_fingerprints_and_redacts_as_the_sql(
    con: duckdb.DuckDBPyConnection, text: str
) -> None:
    """`token inspect` judges claims in Python; a secret must get the kind and fingerprint a
    scan gives it in a log, and the same redaction."""
    kind = _run(con, leaked_secret_kind_sql(T), text)
    expected = (kind, _run(con, leaked_secret_fp_sql(T), text)) if kind else None
    assert find_secret(text) == expected
    assert redact_secrets(text) == _run(con, redact_secrets_sql(T), text)


MANY_SECRETS = (
    UNICODE_NEIGHBOURS
    + [" and ".join(text for text, _, _ in FOUND[start::7]) for start in range(7)]
    + ['{"url": "https://x/y?access_token=' + FOUND[1][2] + '", "pwd": "hunter2hunter2"}']
)


@pytest.mark.parametrize("text", MANY_SECRETS + [text for text, _, _ in FOUND] + NOT_SECRETS)
def test_every_secret_is_listed_alike_in_sql_and_python(
    con: duckdb.DuckDBPyConnection, text: str
) -> None:
    """`leaked_secrets` (SQL, every log record) and `all_secrets` (Python) list the same."""
    sql = f"""SELECT CASE WHEN k IS NOT NULL THEN {all_secrets_sql("$t", "k", "f")} END
              FROM (SELECT {leaked_secret_kind_sql(T)} AS k, {leaked_secret_fp_sql(T)} AS f)"""
    row = con.execute(sql, {"t": text}).fetchone()
    assert row is not None
    assert all_secrets(text) == row[0]
    if row[0] is not None:
        assert all(re.fullmatch("[a-z_]+:[0-9a-f]{16}", item) for item in row[0])


def test_redaction_keeps_what_is_not_the_secret(con: duckdb.DuckDBPyConnection) -> None:
    def redact(text: str) -> str | None:
        return _run(con, redact_secrets_sql(T), text)

    assert redact("postgres://app:s3cr3t@db:5432/x") == "postgres://app:[redacted]@db:5432/x"
    assert redact("GET /d?id=7&token=9f8e7d6c5b4a39281706f5e4d3c2b1a0&x=1") == (
        "GET /d?id=7&token=[redacted]&x=1"
    )
    assert redact('{"h": "Basic YWRtaW46UzNjcjN0IQ=="}') == '{"h": "Basic [redacted]"}'
    assert redact(f"POST {' '.join(KEY_LINES)} done") == "POST [redacted] done"
    assert redact("a\n" + "\n".join(KEY_LINES) + "\nb") == "a\n[redacted]\nb"


def test_one_private_key_has_one_fingerprint_however_it_is_written(
    con: duckdb.DuckDBPyConnection,
) -> None:
    one_line = " ".join(KEY_LINES)
    lines = "\n".join(KEY_LINES)
    json_escaped = '{"v": "' + "\\n".join(KEY_LINES) + '"}'  # a record's JSON text
    crlf = "\r\n".join(KEY_LINES)
    fps = {_run(con, leaked_secret_fp_sql(T), text) for text in (one_line, lines, json_escaped)}
    fps.add(_run(con, leaked_secret_fp_sql(T), crlf))
    assert len(fps) == 1 and None not in fps


def test_a_private_key_cut_short_loses_its_body(con: duckdb.DuckDBPyConnection) -> None:
    text = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nMIIEpAIBAAKCAQEA3Tz2\nqZ9x"
    assert _run(con, redact_secrets_sql(T), text) == "[redacted]"


@pytest.mark.parametrize(("text", "kind", "secret"), FOUND)
def test_every_match_holds_a_needle_of_its_kind(text: str, kind: str, secret: str) -> None:
    needle_pattern = SECRET_NEEDLE_PATTERNS.get(kind)
    matches = [m.group(0) for k, p in SECRET_PATTERNS if k == kind for m in re.finditer(p, text)]
    assert matches
    for match in matches:
        assert any(needle in match for needle in SECRET_NEEDLES[kind]) or (
            needle_pattern is not None and re.search(needle_pattern, match)
        ), match


def test_one_parameter_has_one_fingerprint_however_deep_in_urls_it_is(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """From a review: `?token=T`, `%3Ftoken%3DT` and `%3Fa%3D1%26token%3DT` were three
    secrets; and an encoded value ran on through `%26state%3D...`."""
    token = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    texts = [
        f"GET /cb?token={token}",
        f"GET /login?next=%2Fcb%3Ftoken%3D{token}",
        f"GET /login?next=%2Fcb%3Fa%3D1%26token%3D{token}%26state%3Dxyz",
        f"GET /login?next=%2Fcb%3Fa%3D1%26Token%3d{token}",
    ]
    sql = {_run(con, leaked_secret_fp_sql(T), text) for text in texts[:3]}
    python = {found[1] for text in texts[:3] if (found := find_secret(text))}
    assert len(sql) == 1 and sql == python
    redacted = _run(con, redact_secrets_sql(T), texts[2])
    assert redacted is not None and redacted.endswith("token%3D[redacted]%26state%3Dxyz")
    assert _run(con, leaked_secret_fp_sql(T), texts[3]) not in sql  # the name as written


def test_basic_credentials_of_any_printable_user_and_password_are_found() -> None:
    """The base64 character classes of `basic_auth` hold for every printable ASCII user and
    password (of six characters or more together, so eight base64 characters or more)."""
    pattern = re.compile(dict(SECRET_PATTERNS)["basic_auth"])
    alphabet = string.ascii_letters + string.digits + string.punctuation + " "
    rng = random.Random(7)
    for _ in range(3000):
        user = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        password = "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 24)))
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
        for text in (f"Basic {encoded}", f'"Basic {encoded}"', f"Basic {encoded} next"):
            found = pattern.search(text)
            assert found and encoded in found.group(0), (user, password, text)


def test_basic_with_base64_that_is_not_user_and_password_is_no_secret() -> None:
    pattern = re.compile(dict(SECRET_PATTERNS)["basic_auth"])
    rng = random.Random(7)
    for _ in range(500):
        assert not pattern.search("Basic " + base64.b64encode(rng.randbytes(24)).decode())
    assert not pattern.search("Basic " + base64.b64encode(b"no colon here").decode())


def test_a_password_with_punctuation_is_redacted_whole() -> None:
    """`!` or `#` in a long password must not leave its tail in clear."""
    import duckdb

    from m2maudit.secrets import redact_secrets_sql

    text = "login password=Abcdefgh12345678!Tail9z ok"
    [(redacted,)] = duckdb.sql(f"SELECT {redact_secrets_sql(repr(text))}").fetchall()
    assert "Tail9z" not in redacted and "Abcdefgh" not in redacted and redacted.endswith(" ok")


def test_a_key_pair_loses_its_secret_and_keeps_its_quotes(con: duckdb.DuckDBPyConnection) -> None:
    text = '{"trace_id": "AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}'
    assert (
        redact_secrets(text)
        == _run(con, redact_secrets_sql(T), text)
        == ('{"trace_id": "[redacted]"}')
    )
    quoted, bare = (find_secret(text), find_secret(text.replace('"}', " ")))
    assert quoted == bare  # the character after the secret is not part of its fingerprint


def test_one_aws_secret_key_has_one_fingerprint_however_it_is_written(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """From a trial: the key id and separator were part of it, so one secret written five
    ways was five M2M601 findings."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    spellings = [
        f"AKIAIOSFODNN7EXAMPLE:{secret}",
        f"AKIAIOSFODNN7EXAMPLE {secret}",
        f"AKIAIOSFODNN7EXAMPLE\t{secret}",
        f"AKIAIOSFODNN7EXAMPLE|{secret}",
        f"aws_secret_access_key={secret}",
    ]
    python = {find_secret(text) for text in spellings}
    sql = {_run(con, leaked_secret_fp_sql(T), text) for text in spellings}
    assert len(python) == 1 and len(sql) == 1
    assert python.pop() == ("aws_secret_key", sql.pop())


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        ('{"r": "note\\nghp_' + "B" * 36 + '"}', "github_token"),  # a line break before it
        ('{"r": "\\u0067hp_' + "B" * 36 + '"}', "github_token"),  # an escaped letter
        ('{"r": "login?password\\u003dSummer2024x"}', "password_or_key"),  # Gson's `=`
        ('{"r": "dir C:\\\\npm_' + "a1B2" * 9 + '"}', "npm_token"),  # an escaped backslash
    ],
)
def test_json_escapes_hide_no_secret(record: str, kind: str) -> None:
    """The leak check reads a record's JSON as its values are, not as JSON spells them; an
    escaped backslash stays a backslash (`\\\\n` is no line break), on VARCHAR or JSON."""
    from m2maudit.secrets import json_as_read_sql

    con = connect()
    for cast in ("VARCHAR", "JSON"):
        kind_sql = leaked_secret_kind_sql(json_as_read_sql("rec"))
        sql = f"SELECT {kind_sql} FROM (SELECT ?::{cast} AS rec)"
        assert con.execute(sql, [record]).fetchone() == (kind,), (record, cast)


# Text an attacker can shape (a token's claims): a prefix of a pattern repeated without what
# completes it. A backtracking engine tries each start, and each scan runs to the end: 100 KB
# took Python's `re` about 20 s.
CRAFTED = ["eyJa" * 25_000, "eyJ-" * 25_000, "AKIA" * 25_000, "a" * 100_000 + "@"]


@pytest.mark.parametrize("text", CRAFTED, ids=["jwt-prefix", "jwt-dash", "aws-prefix", "long-word"])
def test_the_python_twin_takes_linear_time_on_crafted_text(text: str) -> None:
    """`token inspect` judges claims a stranger wrote; it must answer at once, as the scan's
    RE2 does, and answer as it does (no secret in these)."""
    started = time.perf_counter()
    assert find_secret(text) is None
    assert all_secrets(text) is None
    assert redact_secrets(text) == text
    assert time.perf_counter() - started < 2.0


GITHUB = "ghp_hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rES"


@pytest.mark.parametrize(
    ("encoded", "plain", "secret"),
    [
        (f"GET /search?q=token%20{GITHUB}", f"token {GITHUB}", GITHUB),
        (f"GET /login?next=%2Fapi%3Fgh%3D{GITHUB}", f"gh={GITHUB}", GITHUB),
        ("GET /p?h=Bearer%20opaque0123456789abcdef", "Bearer opaque0123456789abcdef", "opaque01"),
        (
            "GET /x?u=https%3A%2F%2Fbob%3Apass1234word%40db.example",
            "https://bob:pass1234word@db",
            "pass1234",
        ),
        (
            "GET /k?v=-----BEGIN%20PRIVATE%20KEY-----%0AMIIEabcdef%0A",
            "-----BEGIN PRIVATE KEY-----\nMIIEabcdef",
            "MIIEabcdef",
        ),
        (f"GET /forward%2F{GITHUB}", f"/{GITHUB}", GITHUB),
    ],
    ids=["space", "nested-query", "bearer", "url-credentials", "private-key", "path"],
)
def test_a_percent_encoded_secret_is_found_as_written_plainly(
    con: duckdb.DuckDBPyConnection, encoded: str, plain: str, secret: str
) -> None:
    """A secret after `%20`, `%3D` or `%2F` does not start a word, and the patterns look for
    one at a word's start: a secret-leak audit found eight such in a log, none found. Read
    decoded, it is the secret it is written plainly, with the same fingerprint, in SQL and
    in Python, and the stored text's cleaning cuts it out."""
    assert _run(con, leaked_secret_kind_sql(T), encoded) == _run(
        con, leaked_secret_kind_sql(T), plain
    )
    assert _run(con, leaked_secret_fp_sql(T), encoded) == _run(con, leaked_secret_fp_sql(T), plain)
    assert find_secret(encoded) == find_secret(plain) is not None
    sql = f"""SELECT CASE WHEN k IS NOT NULL THEN {all_secrets_sql("$t", "k", "f")} END
              FROM (SELECT {leaked_secret_kind_sql(T)} AS k, {leaked_secret_fp_sql(T)} AS f)"""
    row = con.execute(sql, {"t": encoded}).fetchone()
    assert row is not None and row[0] == all_secrets(encoded)
    cleaned = _run(con, redact_secrets_sql(as_scanned_sql(T)), encoded)
    assert cleaned is not None and secret not in cleaned
