"""`m2maudit token inspect`: the panel, the JSON, the problems, signatures, and garbage."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from typer.testing import CliRunner, Result

from m2maudit.cli import app, main
from m2maudit.fingerprint import fingerprint
from m2maudit.token_inspect import humanize
from tests.jwt_factory import (
    HMAC_KEY,
    b64url,
    ec_key,
    jwe_like,
    nested_act,
    public_pem,
    raw_jwt,
    rsa_key,
    signed,
)

AS_OF = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
NOW = int(AS_OF.timestamp())
CHAIN = ["search-tool", "research-agent", "planner-agent"]  # outermost (current) first


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        app,
        ["token", "inspect", *args, *([] if "--as-of" in args else ["--as-of", AS_OF.isoformat()])],
        input=stdin,
        env={"COLUMNS": "140", "NO_COLOR": "1"},
    )


def run_json(*args: str, stdin: str | None = None, exit_code: int = 0) -> dict[str, Any]:
    """The JSON report; `exit_code` 1 where a signature check was asked for and failed."""
    result = run(*args, "--format", "json", stdin=stdin)
    assert result.exit_code == exit_code, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def chained_token(**extra: Any) -> str:
    claims = {
        "sub": "alice@example.com",
        "iss": "https://idp.example",
        "aud": "https://api.example",
        "client_id": "planner-app",
        "scope": "calendar.read mail.send",
        "iat": NOW - 600,
        "exp": NOW + 14 * 60,
        "jti": "j-1",
        "act": nested_act(CHAIN),
    }
    return signed({**claims, **extra}, headers={"kid": "key-1"})


def test_a_three_level_chain_is_drawn_from_the_human_to_the_current_actor() -> None:
    result = run(chained_token())
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    lines = out.splitlines()
    order = [
        next(i for i, line in enumerate(lines) if f"{name}" in line and "─" in line)
        for name in reversed(CHAIN)
    ]
    assert order == sorted(order)
    human = next(i for i, line in enumerate(lines) if "alice@example.com  [human]" in line)
    assert human < order[0]
    current = lines[order[-1]]
    assert "search-tool" in current and "current actor" in current
    assert "expires in 14 min" in out
    assert "delegation chain of 3 actors" in out


def test_the_token_and_its_signature_are_never_printed() -> None:
    token = chained_token()
    signature = token.split(".")[2]
    for output_format in ("table", "json"):
        result = run(token, "--format", output_format)
        assert result.exit_code == 0
        assert signature not in result.stdout + result.stderr
        assert token.split(".")[1] not in result.stdout + result.stderr


def test_json_document_for_scripts() -> None:
    token = chained_token()
    document = run_json(token)
    assert document["schema_version"] == "1.0"
    assert document["token_fp"] == fingerprint(token)
    assert document["delegation"]["chain"] == CHAIN
    assert document["delegation"]["current_actor"] == "search-tool"
    assert document["delegation"]["subject_kind"] == "human"
    assert document["claims"]["sub"] == "alice@example.com"
    assert document["header"]["kid"] == "key-1"
    assert document["times"]["exp"] == {
        "utc": "2024-05-01T12:14:00Z",
        "relative": "expires in 14 min",
    }
    assert document["signature"]["status"] == "not checked"
    assert document["columns"]["chain_depth"] == 3
    assert document["problems"] == []


def test_reads_a_pasted_authorization_header_from_stdin() -> None:
    token = chained_token()
    document = run_json("-", stdin=f"Authorization: Bearer {token}\n")
    assert document["token_fp"] == fingerprint(token)


def test_expired_three_days_ago() -> None:
    token = signed({"sub": "svc-a", "iat": NOW - 3 * 86400 - 600, "exp": NOW - 3 * 86400})
    assert run_json(token)["times"]["exp"]["relative"] == "expired 3 days ago"


def test_problems_the_token_shows_by_itself() -> None:
    token = signed(
        {
            "sub": "svc-reporting",
            "client_id": "svc-reporting",
            "scope": "reports:* admin",
            "iat": NOW - 100 * 86400,
            "act": nested_act(["a", "b", "a", "c", "d"]),
            "may_act": {"sub": "b"},
        }
    )
    problems = {p["message"]: p["problem"] for p in run_json(token)["problems"]}
    kinds = set(problems.values())
    assert kinds == {
        "missing-user-context",
        "broad-scopes",
        "stale-rotation",
        "long-lifetime",
        "untraceable-action",
        "exposure",
    }
    messages = " | ".join(problems)
    for expected in (
        "client-credentials",
        "5 deep",
        "cycle: 'a'",
        "'a' is not allowed by may_act",
        "wildcard scope: reports:*",
        "admin scope: admin",
        "never expires",
        "no jti",
        "no aud",
    ):
        assert expected in messages


def test_an_empty_aud_jti_or_txn_is_none() -> None:
    token = signed({"sub": "a", "aud": "", "jti": " ", "txn": "", "iat": NOW, "exp": NOW + 60})
    messages = [p["message"] for p in run_json(token)["problems"]]
    assert any(m.startswith("no aud") for m in messages)
    assert any(m.startswith("no jti") for m in messages)


def test_a_transaction_token_is_traced_by_its_txn() -> None:
    """A Transaction Token (draft-ietf-oauth-transaction-tokens) carries `txn`, the id of the
    transaction it was minted for, and often no `jti`: it is not untraceable."""
    txn = signed({"sub": "alice@example.com", "txn": "97053963-771d", "iat": NOW, "exp": NOW + 60})
    plain = signed({"sub": "alice@example.com", "iat": NOW, "exp": NOW + 60})
    untraceable = [
        [p for p in run_json(token)["problems"] if p["problem"] == "untraceable-action"]
        for token in (txn, plain)
    ]
    assert untraceable[0] == [] and len(untraceable[1]) == 1


@pytest.mark.parametrize("act", ["agent-z", ["agent-z"], {"sub": "tool", "act": "agent-z"}])
def test_an_act_that_is_not_an_object_is_a_broken_chain(act: object) -> None:
    """RFC 8693 writes each actor as an object; a bare name is a broken delegation chain."""
    document = run_json(chained_token(act=act))
    broken = [p for p in document["problems"] if "delegation chain is broken" in p["message"]]
    assert [p["problem"] for p in broken] == ["missing-user-context"]
    assert not any(
        "act at depth" in p["message"] for p in document["problems"] if p is not broken[0]
    )
    panel = run(chained_token(act=act)).stdout
    assert "delegation chain of 0 actors" not in panel


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iat": NOW + 86400, "exp": NOW + 86400 + 600}, "iat is 24 h in the future"),
        ({"nbf": NOW + 7200, "exp": NOW + 600}, "nbf is not before exp: the token is never valid"),
        ({"iat": NOW + 7200, "exp": NOW + 600}, "iat is not before exp: the token is never valid"),
        ({"iat": NOW + 86400, "exp": NOW + 86400 + 600}, "valid (it expires in 24 h)"),
        ({"iat": NOW + 86400, "exp": None}, "valid (it never expires)"),
    ],
)
def test_time_claims_no_honest_issuer_writes(claims: dict[str, int], expected: str) -> None:
    problems = run_json(chained_token(**claims))["problems"]
    assert [p["problem"] for p in problems if expected in p["message"]] == ["long-lifetime"]


def test_an_iat_a_few_seconds_ahead_is_clock_skew() -> None:
    problems = run_json(chained_token(iat=NOW + 30))["problems"]
    assert not any("in the future" in p["message"] for p in problems)


def test_lifetime_problem_follows_the_config(tmp_path: Path) -> None:
    token = chained_token(exp=NOW + 8 * 3600)
    assert any(p["problem"] == "long-lifetime" for p in run_json(token)["problems"])
    config = tmp_path / "m2maudit.yaml"
    config.write_text("thresholds:\n  max_token_lifetime: 12h\n", encoding="utf-8")
    relaxed = run_json(token, "--config", str(config))["problems"]
    assert not any(p["problem"] == "long-lifetime" for p in relaxed)


def test_a_kubernetes_hour_of_3607_s_is_within_the_limit_as_in_a_scan() -> None:
    """M2M401 allows a clock's skew over the limit (a tenth of it at most); token inspect
    called Kubernetes' 3607 s tokens long-lived while the scan did not."""
    within = chained_token(iat=NOW, exp=NOW + 3607)
    assert not any(p["problem"] == "long-lifetime" for p in run_json(within)["problems"])
    over = chained_token(iat=NOW, exp=NOW + 3600 + 301)
    assert any(p["problem"] == "long-lifetime" for p in run_json(over)["problems"])


def test_alg_none_is_reported_and_fails_a_signature_check(tmp_path: Path) -> None:
    token = raw_jwt({"alg": "none"}, {"sub": "agent-1", "exp": NOW + 60}, signature="")
    key = tmp_path / "rsa.pem"
    key.write_bytes(public_pem(rsa_key()))
    document = run_json(token, "--key", str(key), exit_code=1)
    assert document["signature"]["status"] == "invalid"
    assert any("alg none" in p["message"] for p in document["problems"])


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


FORGED = (
    "the signature does not verify with the key given (the signature does not match the key): "
    "the token was forged or altered, or another key signed it"
)


def test_signature_with_a_pem_key(tmp_path: Path) -> None:
    pem = _write(tmp_path / "rsa.pem", public_pem(rsa_key()))
    good = signed({"sub": "svc-a"}, alg="RS256")
    header, payload, signature = good.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    forged = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"
    other_family = signed({"sub": "svc-a"}, alg="ES256")
    assert run_json(good, "--key", pem)["signature"]["status"] == "valid"
    forged_document = run_json(forged, "--key", pem, exit_code=1)
    assert forged_document["signature"] == {
        "status": "invalid",
        "detail": "the signature does not match the key",
    }
    # Asked to check it, a forged token is a problem, not "no problem this token shows".
    assert {"problem": "exposure", "message": FORGED} in forged_document["problems"]
    assert "signature does not match" in run(forged, "--key", pem).stdout.split("Problems")[1]
    assert not [p for p in run_json(good, "--key", pem)["problems"] if p["message"] == FORGED]
    ec_pem = _write(tmp_path / "ec.pem", public_pem(ec_key()))
    assert run_json(other_family, "--key", ec_pem)["signature"]["status"] == "valid"


def test_a_key_of_another_family_is_named_as_such(tmp_path: Path) -> None:
    """pyjwt fails such a check with a bare TypeError: it read "cannot verify: TypeError"."""
    rsa_pem = _write(tmp_path / "rsa.pem", public_pem(rsa_key()))
    ec_pem = _write(tmp_path / "ec.pem", public_pem(ec_key()))
    ed_pem = _write(tmp_path / "ed.pem", public_pem(ed25519.Ed25519PrivateKey.generate()))
    es256, rs256 = signed({"sub": "a"}, alg="ES256"), signed({"sub": "a"}, alg="RS256")
    for token, key, detail in [
        (es256, rsa_pem, "alg ES256 needs an EC key; the key given is an RSA key"),
        (rs256, ec_pem, "alg RS256 needs an RSA key; the key given is an EC key"),
        (rs256, ed_pem, "alg RS256 needs an RSA key; the key given is an EdDSA key"),
    ]:
        document = run_json(token, "--key", key, exit_code=1)
        assert document["signature"] == {"status": "invalid", "detail": detail}


def test_a_secret_given_where_its_file_belongs_is_not_echoed() -> None:
    """`--key s3cret` printed the secret back in its error, onto stderr and into CI logs."""
    token = signed({"sub": "svc-a"}, alg="HS256")
    for option in ("--key", "--jwks"):
        result = run(token, option, HMAC_KEY)
        assert result.exit_code == 2
        assert f"{option}: no such file (give the path of a file holding the key" in result.output
        assert HMAC_KEY not in result.output


def test_signature_with_a_shared_secret_and_algorithm_confusion(tmp_path: Path) -> None:
    token = signed({"sub": "svc-a"}, alg="HS256")
    secret = _write(tmp_path / "secret", HMAC_KEY.encode() + b"\n")
    assert run_json(token, "--key", secret)["signature"]["status"] == "valid"
    pem = _write(tmp_path / "rsa.pem", public_pem(rsa_key()))
    document = run_json(token, "--key", pem, exit_code=1)
    check = document["signature"]
    assert check["status"] == "invalid" and "algorithm confusion" in check["detail"]
    # Refused for algorithm confusion is a problem too, not "no problem", worded as such.
    [refused] = [
        p["message"] for p in document["problems"] if "algorithm confusion" in p["message"]
    ]
    assert refused.endswith(
        "a wrong key was given, or the token was forged to fit another algorithm"
    )


def test_signature_with_a_jwks_file(tmp_path: Path) -> None:
    member = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key().public_key(), as_dict=True)
    jwks = _write(tmp_path / "jwks.json", json.dumps({"keys": [{**member, "kid": "k1"}]}).encode())
    matching = signed({"sub": "svc-a"}, alg="RS256", headers={"kid": "k1"})
    unknown_kid = signed({"sub": "svc-a"}, alg="RS256", headers={"kid": "k9"})
    assert run_json(matching, "--jwks", jwks)["signature"]["status"] == "valid"
    unchecked = run_json(unknown_kid, "--jwks", jwks, exit_code=1)
    assert unchecked["signature"]["status"] == "not checked"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not-a-token-at-all", "not a JWT: 1 segment, expected 3"),
        (jwe_like(), "encrypted token (JWE"),
        ("Bearer " + b64url(b'{"alg":"HS256"}') + ".!!!.x", "payload is not base64url"),
        (raw_jwt({"alg": "HS256"}, b'{"act":' * 1000 + b"{}" + b"}" * 1000), "nested deeper"),
        ("   ", "no token given"),
        (
            raw_jwt({"alg": "HS256"}, b'{"sub":"a"}') + "\n" + raw_jwt({"alg": "HS256"}, b"{}"),
            "2 values where one token belongs",
        ),
    ],
)
def test_garbage_exits_2_with_one_line(text: str, reason: str) -> None:
    for result in (run(text), run("-", stdin=text)):
        assert result.exit_code == 2
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("m2maudit: error: ")
        assert reason in lines[0]
        assert "Traceback" not in result.stderr
        if len(text) > 20:
            assert text.strip() not in result.stderr


def test_a_file_name_where_the_token_belongs_says_how_to_read_a_file(tmp_path: Path) -> None:
    """A first mistake: `token inspect token.txt`. The argument is not echoed back (it may
    be an opaque token); the hint says how to pipe a file in."""
    hint = "to read a token from a file: token inspect - < FILE"
    existing = tmp_path / "token.txt"
    existing.write_text("not.a-token\n")
    for argument in ("/tmp/no/such/file.jwt", str(existing)):
        result = run(argument)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
        assert hint in result.stderr and argument not in result.stderr
    assert hint not in run("garbage").stderr


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (("--key", "missing.pem"), "--key"),
        (("--jwks", "missing.json"), "--jwks"),
        (("--key", "a.pem", "--jwks", "b.json"), "not both"),
        (("--as-of", "yesterday"), "not an ISO 8601"),
    ],
)
def test_bad_options_exit_2_with_one_line(
    tmp_path: Path, options: tuple[str, ...], reason: str
) -> None:
    paths = [str(tmp_path / o) if o.endswith((".pem", ".json")) else o for o in options]
    result = run(chained_token(), *paths)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert reason in result.stderr


def test_help_names_every_option() -> None:
    result = CliRunner().invoke(app, ["token", "inspect", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--format", "--key", "--jwks", "--config", "--as-of"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(40, "40 s"), (14 * 60, "14 min"), (3600, "1 h"), (5400, "90 min"), (3 * 86400, "3 days")],
)
def test_humanize(seconds: int, text: str) -> None:
    assert humanize(timedelta(seconds=seconds)) == text
    assert humanize(timedelta(seconds=-seconds)) == text


def test_a_crash_names_no_token_and_prints_no_locals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = chained_token()

    def crash(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError(f"a bug while reading {token}")

    monkeypatch.setattr("m2maudit.cli_token.inspect_token", crash)
    monkeypatch.setattr(sys, "argv", ["m2maudit", "token", "inspect", token])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err
    assert captured.err.strip() == "m2maudit: internal error: RuntimeError"


def test_claims_cannot_drive_the_terminal() -> None:
    token = signed(
        {"sub": "evil\x1b[2J\x9b\u202eyar", "note": "[bold red]x[/]", "act": {"sub": "\x07"}}
    )
    for output_format in ("table", "json"):
        result = run(token, "--format", output_format)
        assert result.exit_code == 0
        assert not any(ch in result.stdout for ch in "\x1b\x07\x9b\u202e")
    assert "[bold red]x[/]" in run(token).stdout
    assert "\\u202eyar" in run(token).stdout


SECRETS_IN_CLAIMS: dict[str, Any] = {
    "client_secret": "hunter2hunter2hunter2",  # a secret by its name
    "note": "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "callback": "https://hooks.example/x?token=Zx81kQ0pLm2Nb7Vc4Xz9",
    "nested": {"upstream": ["ok", "ghp_" + "a" * 36]},
}


def test_secrets_in_claims_are_redacted_and_reported_as_exposures() -> None:
    """People put secrets in claims; a JWT's claims are readable by anyone holding it, and the
    command's output goes into tickets and chats: show the kind and fingerprint only."""
    upstream = signed({"sub": "upstream-service", "iat": NOW})
    token = chained_token(**SECRETS_IN_CLAIMS, upstream_token=upstream)
    secrets = [
        "hunter2hunter2",
        "wJalrXUtnFEMI",
        "Zx81kQ0pLm2Nb7Vc4Xz9",
        "a" * 36,
        *upstream.split("."),
    ]
    table = run(token)
    assert table.exit_code == 0
    assert not [secret for secret in secrets if secret in table.stdout]
    document = run_json(token)
    assert not [secret for secret in secrets if secret in json.dumps(document)]
    assert document["claims"]["callback"] == "https://hooks.example/x?token=[redacted]"
    assert document["claims"]["client_secret"] == "[redacted]"
    assert document["claims"]["nested"] == {"upstream": ["ok", "[redacted]"]}
    exposures = [p["message"] for p in document["problems"] if p["problem"] == "exposure"]
    assert [message.split(" holds")[0] for message in exposures] == [
        "claim client_secret",
        "claim note",
        "claim callback",
        "claim nested.upstream[1]",
        "claim upstream_token",
    ]
    assert f"(jwt, fingerprint {fingerprint(upstream)})" in exposures[-1]


def test_no_secret_survives_in_any_corner_of_the_output() -> None:
    """From a review: a by-name secret next to a pattern's match kept its clear part; a private
    key split across scope items stayed in `columns.scope`; secrets as member names, and
    after a non-ASCII letter, were printed."""
    github = "ghp_" + "Q" * 36
    stripe = "sk_live_" + "R" * 24
    key = "-----BEGIN PRIVATE KEY----- MIIBVAIBADANBgkqhkiG9w0B -----END PRIVATE KEY-----"
    token = chained_token(
        client_secret="TopSecretValue12345 sig=AAAAAAAAAAAAAAAAAAAAAAAA",
        scope=f"openid client_secret: Zk8s9dJq2LmN4pQr7T {key}",
        ctx={github: True},
        note="é" + github,
        **{stripe: 1},
    )
    clear = ["TopSecretValue12345", "Zk8s9dJq2LmN4pQr7T", "MIIBVAIB", github, stripe]
    for output in (run(token).stdout, json.dumps(run_json(token))):
        assert [secret for secret in clear if secret in output] == []
    document = run_json(token)
    assert document["claims"]["client_secret"] == "[redacted]"
    assert len(document["columns"]["scope"]) == 1  # the decoder's secret:<fingerprint>
    assert document["columns"]["scope"][0].startswith("secret:")
    paths = [
        p["message"].split(" holds")[0] for p in document["problems"] if "holds" in p["message"]
    ]
    assert "claim ctx.#1 (its name)" in paths and "claim #" in " ".join(paths)


def test_a_private_json_web_key_in_the_header_or_cnf_is_never_shown() -> None:
    """From a trial: a DPoP proof's `jwk` header and a `cnf.jwk` claim with the private
    members (`d`, and RSA's `p`, `q`) printed the holder's private key in table and JSON."""
    d, p, q = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X5fCEwVWRUk", "P" * 43, "Q" * 43
    ec = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "d": d}
    rsa_jwk = {"kty": "RSA", "n": "sXch", "e": "AQAB", "d": d[::-1], "p": p, "q": q}
    token = raw_jwt(
        {"alg": "ES256", "typ": "dpop+jwt", "jwk": ec},
        {"sub": "agent-1", "exp": NOW + 300, "cnf": {"jwk": rsa_jwk}},
    )
    for output in (run(token).stdout, json.dumps(run_json(token))):
        assert [secret for secret in (d, d[::-1], p, q) if secret in output] == []
    document = run_json(token)
    assert document["header"]["jwk"]["x"] == ec["x"]  # the public members stay
    paths = [m["message"].split(" holds")[0] for m in document["problems"] if "jwk" in m["message"]]
    assert paths == ["header jwk.d", "claim cnf.jwk.d", "claim cnf.jwk.p", "claim cnf.jwk.q"]
    assert f"jwk_private_key, fingerprint {fingerprint(d)}" in document["problems"][-4]["message"]
    jwk_problems = " ".join(m["message"] for m in document["problems"] if "jwk" in m["message"])
    stated = set(re.findall(r"fingerprint ([0-9a-f]{16})", jwk_problems))
    scanned = {secret.split(":")[1] for secret in document["columns"]["claims_secrets"]}
    assert stated == scanned  # what M2M605 reports of the same token


def test_secrets_in_camel_case_names_nested_objects_split_lists_and_the_kid_are_cut(
    tmp_path: Path,
) -> None:
    """From a second trial: `clientSecret`, an object under `client_secret`, a private key
    split across a JSON list of scopes, and a `kid` quoted by the signature check were shown."""
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcw"
    github = "ghp_" + "A1b2" * 9
    token = signed(
        {
            "sub": "a",
            "clientSecret": "Qm9vbGVhbk9wZXJhdG9yc2Vj",
            "client_secret": {
                "v1": "Ab3dEf6hIj9kLm2nOp5qRs",
                "old": {"value": "Zk8s9dJq2LmN4pQr7Tx"},
            },
            "scope": ["read", "-----BEGIN", "PRIVATE", "KEY-----", body, "-----END", "PRIVATE"],
        },
        headers={"kid": github},
    )
    jwks = _write(
        tmp_path / "jwks.json",
        json.dumps({"keys": [{"kty": "oct", "kid": "x", "k": "c2VjcmV0"}]}).encode(),
    )
    clear = ["Qm9vbGVhbk9wZXJhdG9y", "Ab3dEf6hIj9kLm2nOp5qRs", "Zk8s9dJq2LmN4pQr7Tx", body, github]
    document = run_json(token, "--jwks", jwks, exit_code=1)  # its kid names no key there
    for output in (run(token, "--jwks", jwks).stdout, json.dumps(document)):
        assert [secret for secret in clear if secret in output] == []
    claims = run_json(token)["claims"]
    assert claims["scope"] == ["[redacted]"]
    assert claims["client_secret"] == {"v1": "[redacted]", "old": {"value": "[redacted]"}}


def test_a_token_without_secrets_in_its_claims_shows_them_unchanged() -> None:
    document = run_json(chained_token(note="password policy: rotate monthly"))
    assert document["claims"]["note"] == "password policy: rotate monthly"
    assert not [p for p in document["problems"] if "holds a secret" in p["message"]]


def test_a_number_under_a_password_name_is_a_secret() -> None:
    """From a trial: `"password": 987654321` (a PIN) was printed, and judged no secret."""
    document = run_json(chained_token(password=987654321, retries=123456))
    assert "987654321" not in json.dumps(document)
    assert document["claims"]["password"] == "[redacted]"
    assert document["claims"]["retries"] == 123456
    assert [
        p["message"].split(" holds")[0] for p in document["problems"] if "holds" in p["message"]
    ] == ["claim password"]


def test_a_claim_secret_has_the_fingerprint_the_scan_gives_it() -> None:
    """From a trial: inspect said fingerprint 2ef7... for `"password": 987654321`, the scan's
    M2M605 a4ce...: one wrote the claim with a space after the colon."""
    document = run_json(chained_token(password=987654321, client_secret="hunter2hunter2hunter2"))
    stated = sorted(
        ":".join(found)
        for p in document["problems"]
        for found in re.findall(r"\((\w+), fingerprint ([0-9a-f]{16})\)", p["message"])
    )
    assert stated == sorted(document["columns"]["claims_secrets"])


def test_a_claim_secret_after_a_line_break_is_cut_and_fingerprinted_as_the_scan_does() -> None:
    """A claim judged as JSON text writes a line break `\\n`, which glued an `n` to the token
    after it: `deploy key:\\nghp_...` was shown in clear, with no exposure."""
    github = "ghp_hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rES"
    token = chained_token(note=f"deploy key:\n{github}", ctx=[{"k": f"x\n{github}"}])
    for shown in (run(token).stdout, run(token, "--format", "json").stdout):
        assert github[4:] not in shown
    document = run_json(token)
    stated = sorted(
        ":".join(found)
        for p in document["problems"]
        for found in re.findall(r"\((\w+), fingerprint ([0-9a-f]{16})\)", p["message"])
    )
    assert stated and sorted(set(stated)) == document["columns"]["claims_secrets"]


def test_the_exit_code_says_whether_a_signature_asked_for_was_verified(tmp_path: Path) -> None:
    """A script gates on it: `token inspect - --key k.pem < t.jwt && deploy`."""
    pem = _write(tmp_path / "rsa.pem", public_pem(rsa_key()))
    good = signed({"sub": "svc-a"}, alg="RS256")
    another = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = _write(tmp_path / "other.pem", public_pem(another))
    assert run(good, "--key", pem).exit_code == 0
    assert run(good).exit_code == 0  # no check asked for: read is enough
    wrong = run(good, "--key", other_key)
    assert wrong.exit_code == 1
    assert "signature" in wrong.stdout and wrong.stderr == ""
