"""A token pasted where it does not belong (an inventory id, a scope) never reaches the store
or a report: ids become `secret:<fingerprint>`, other values are redacted."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from m2maudit.cli import app
from m2maudit.reporters import REPORTERS

TOKEN = jwt.encode({"sub": "agent-x", "client_id": "agent-x", "jti": "j-1"}, "k" * 32)


@pytest.fixture()
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "inv.csv").write_text(
        "token_id,principal,scopes,created_at,status\n"
        f"{TOKEN},agent-x,read {TOKEN},2026-01-01,active\n"
    )
    record = {
        "timestamp": "2026-11-20T10:00:00Z",
        "principal": "agent-x",
        "token_id": TOKEN,
        "scopes": ["read", TOKEN],
        "authorization": f"Bearer {TOKEN}",
    }
    (tmp_path / "log.jsonl").write_text(json.dumps(record) + "\n")
    return tmp_path


@pytest.mark.parametrize("name", sorted(REPORTERS))
def test_no_report_and_no_table_holds_the_token(inputs: Path, name: str) -> None:
    db = inputs / "store.duckdb"
    out = inputs / f"report.{name}"
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(inputs / "log.jsonl"),
            "--inventory",
            str(inputs / "inv.csv"),
            "--db",
            str(db),
            "-f",
            name,
            "-o",
            str(out),
            "--fail-on",
            "never",
            "--verbose",
        ],
    )
    assert result.exit_code == 0, result.output
    signature = TOKEN.split(".")[2]
    assert signature not in result.output
    assert signature not in out.read_text()
    assert signature.encode() not in db.read_bytes()
    assert "secret:" in out.read_text() or name in ("table", "markdown", "junit")


# Secrets pasted into a field whose bad value a reject reason quotes: 40 characters each,
# so that cutting the quote at 40 (or 39) would still show all or nearly all of one.
GITHUB_TOKEN = "ghp_hGAkWvj7FAc9QeWJKY40uvSwMFLZDe1f8rES"
BARE_AWS_SECRET = "2hpChYgCfrL1spNxnyVmihA+2O76UMFxFkM+R5Kj"
VALID = {"timestamp": "2026-11-20T10:00:00Z", "principal": "agent-a"}


def _files_quoting(secret: str, tmp_path: Path) -> list[Path]:
    """One file per format whose reject reason quotes a time field, with `secret` in it."""
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({**VALID, "timestamp": secret}) + "\n" + json.dumps(VALID) + "\n")
    inventory = tmp_path / "inv.csv"
    inventory.write_text(f"token_id,principal,created_at\nk1,svc-a,{secret}\nk2,svc-b,2026-01-01\n")
    cloudtrail = tmp_path / "trail.json"
    identity = {"type": "IAMUser", "arn": "arn:aws:iam::1:user/u", "accessKeyId": "AKIAEXAMPLE"}
    record = {"eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "Get"}
    cloudtrail.write_text(
        json.dumps(
            {
                "Records": [
                    {**record, "eventTime": secret, "userIdentity": identity},
                    {**record, "eventTime": "2026-11-20T10:00:00Z", "userIdentity": identity},
                ]
            },
        )
    )
    vault = tmp_path / "vault.jsonl"
    entry = {
        "time": "2026-11-20T10:00:00Z",
        "type": "response",
        "auth": {"accessor": "acc-1", "display_name": "approle"},
        "request": {"id": "r-1", "operation": "read", "path": "secret/x"},
    }
    vault.write_text(json.dumps(entry) + "\n" + json.dumps({**entry, "time": secret}) + "\n")
    ocsf = tmp_path / "ocsf.jsonl"
    first = (Path(__file__).parent / "data" / "ocsf" / "api_and_auth.jsonl").read_text()
    first = first.splitlines()[0]
    ocsf.write_text(f"{first}\n{json.dumps({**json.loads(first), 'class_uid': secret})}\n")
    return [log, inventory, cloudtrail, vault, ocsf]


@pytest.mark.parametrize("secret", [GITHUB_TOKEN, BARE_AWS_SECRET])
def test_a_reject_reason_never_quotes_a_secret(tmp_path: Path, secret: str) -> None:
    db = tmp_path / "store.duckdb"
    files = _files_quoting(secret, tmp_path)
    result = CliRunner().invoke(app, ["ingest", *map(str, files), "--db", str(db)])
    assert result.exit_code == 0, result.output
    reasons = [line for line in result.output.splitlines() if "[hidden: " in line]
    assert len(reasons) == len(files), result.output  # each file quoted nothing of it
    for shown in (secret[:20], secret[-20:]):
        assert shown not in result.output
        assert shown.encode() not in db.read_bytes()


def test_a_reject_reason_still_quotes_a_plain_bad_value(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    db = str(tmp_path / "store.duckdb")
    log.write_text(json.dumps({**VALID, "timestamp": "2026-13-45 noon"}) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(log), "--db", db])
    assert 'unparseable "timestamp": "2026-13-45 noon"' in result.output
    long_value = "yesterday, " * 10
    log.write_text(json.dumps({**VALID, "timestamp": long_value}) + "\n")
    result = CliRunner().invoke(app, ["ingest", str(log), "--db", db])
    assert f'unparseable "timestamp": "{long_value[:39]}...' in result.output


KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAPLANTEDKEYBODY"
BEGIN, END = "-----BEGIN OPENSSH PRIVATE KEY-----", "-----END OPENSSH PRIVATE KEY-----"


@pytest.mark.parametrize(
    ("action", "hidden"),
    [
        (f"POST {BEGIN} {KEY_BODY} {END}", KEY_BODY),
        (f"POST {BEGIN}\n{KEY_BODY}\n{END}", KEY_BODY),
        (f"POST {BEGIN}\n{KEY_BODY}", KEY_BODY),  # cut short
        ("GET https://deploy:Tr0ub4dor-3x@git.example.com/repo", "Tr0ub4dor-3x"),
        ("GET /export?id=7&token=9f8e7d6c5b4a39281706f5e4d3c2b1a0", "9f8e7d6c5b4a39281706"),
        ("POST /login Basic YWRtaW46UzNjcjN0IQ==", "YWRtaW46UzNjcjN0IQ"),
    ],
    ids=["key-one-line", "key-lines", "key-cut-short", "url-password", "token-param", "basic"],
)
def test_a_secret_in_an_action_is_stored_and_shown_redacted(
    tmp_path: Path, action: str, hidden: str
) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({**VALID, "action": action}) + "\n")
    db = tmp_path / "store.duckdb"
    out = tmp_path / "report.json"
    args = ["scan", str(log), "--db", str(db), "-f", "json", "-o", str(out), "--fail-on", "never"]
    result = CliRunner().invoke(app, [*args, "--verbose"])
    assert result.exit_code == 0, result.output
    assert "M2M601" in out.read_text()
    for shown in (result.output, out.read_text()):
        assert hidden not in shown
    assert hidden.encode() not in db.read_bytes()


def test_principals_that_are_secrets_stay_apart_under_their_fingerprints(tmp_path: Path) -> None:
    """A secret logged where a name belongs is kept as `secret:<fingerprint>`, as a token
    pasted as an id is: two different secrets stay two principals (as `[redacted]` they
    were one), and the log's and the inventory's copy of one secret are the same name."""
    from m2maudit.fingerprint import fingerprint
    from m2maudit.store import Store

    other = "ghp_" + "B" * 36
    log = tmp_path / "log.jsonl"
    log.write_text(
        "".join(
            json.dumps({**VALID, "principal": name, "on_behalf_of": name}) + "\n"
            for name in (GITHUB_TOKEN, other)
        )
    )
    inventory = tmp_path / "inv.csv"
    inventory.write_text(f"token_id,principal,owner,created_at\nk1,{other},{other},2026-01-01\n")
    db = tmp_path / "store.duckdb"
    result = CliRunner().invoke(app, ["ingest", str(log), "-i", str(inventory), "--db", str(db)])
    assert result.exit_code == 0, result.output
    names = {f"secret:{fingerprint(GITHUB_TOKEN)}", f"secret:{fingerprint(other)}"}
    store = Store.open(db)
    try:
        for column in ("principal", "on_behalf_of"):
            rows = store.con.execute(f"SELECT DISTINCT {column} FROM events").fetchall()
            assert {row[0] for row in rows} == names
        assert store.con.execute("SELECT principal, owner FROM credentials").fetchall() == [
            (f"secret:{fingerprint(other)}", f"secret:{fingerprint(other)}")
        ]
    finally:
        store.close()
    assert GITHUB_TOKEN.encode() not in db.read_bytes() and other.encode() not in db.read_bytes()


# JSON may spell a character as an escape (Gson writes `=` as \u003d, .NET `+` as \u002B,
# PHP `/` as \/), and a value's line break is `\n`, which glued an `n` to the token after
# it. The leak check read the record's JSON text, so these secrets were stored in clear.
ESCAPED_GITHUB = "\\u0067hp_" + GITHUB_TOKEN[4:]
AFTER_A_LINE_BREAK = "note\\nghp_" + "B" * 36
GSON_PASSWORD = "POST /login?password\\u003dSummer2024x"


def _escaped_inputs(tmp_path: Path) -> dict[str, Path]:
    record = (
        '{"timestamp":"2026-11-20T10:00:00Z","principal":"' + ESCAPED_GITHUB + '",'
        '"principal_type":"agent","action":"' + GSON_PASSWORD + '",'
        '"resource":"' + AFTER_A_LINE_BREAK + '","status":200}'
    )
    array = tmp_path / "array.json"  # read the careful way
    array.write_text("[" + record + "]\n")
    lines = tmp_path / "lines.jsonl"  # the fast read, the escapes in a key it does not map
    lines.write_text(
        '{"timestamp":"2026-11-20T10:00:00Z","principal":"agent-a",'
        '"request":{"body":"' + AFTER_A_LINE_BREAK + '"}}\n'
    )
    k8s = tmp_path / "audit.jsonl"
    k8s.write_text(
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": "a-1",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/pods",
                "verb": "list",
                "user": {"username": "system:serviceaccount:ai:bot"},
                "userAgent": "kubectl PLACEHOLDER",
                "responseStatus": {"code": 200},
                "requestReceivedTimestamp": "2026-11-20T10:00:00.000000Z",
                "stageTimestamp": "2026-11-20T10:00:00.100000Z",
            }
        ).replace("PLACEHOLDER", ESCAPED_GITHUB)
        + "\n"
    )
    inventory = tmp_path / "inv.jsonl"
    inventory.write_text(
        '{"token_id":"' + ESCAPED_GITHUB + '","principal":"agent-a","created_at":"2025-01-01",'
        '"status":"active"}\n'
    )
    return {"array": array, "lines": lines, "k8s": k8s, "inventory": inventory}


@pytest.mark.parametrize("name", ["array", "lines", "k8s", "inventory"])
def test_a_secret_behind_a_json_escape_is_found_and_never_stored(tmp_path: Path, name: str) -> None:
    path = _escaped_inputs(tmp_path)[name]
    db, out, baseline = tmp_path / "s.duckdb", tmp_path / "r.json", tmp_path / "b.json"
    given = ["--inventory", str(path)] if name == "inventory" else [str(path)]
    flags = ["--as-of", "2026-11-28T00:00:00Z", "--write-baseline", str(baseline)]
    result = CliRunner().invoke(
        app,
        [
            "scan",
            *given,
            "--db",
            str(db),
            "-f",
            "json",
            "-o",
            str(out),
            "--fail-on",
            "never",
            *flags,
        ],
    )
    assert result.exit_code == 0, result.output
    written = out.read_text() + baseline.read_text() + result.output
    for secret in (GITHUB_TOKEN[4:], "B" * 36, "Summer2024x"):
        assert secret not in written, (name, secret)
        assert secret.encode() not in db.read_bytes(), (name, secret)
    if name != "inventory":  # an inventory's secret becomes its id, not a log's leak
        assert any(f["rule_id"] == "M2M601" for f in json.loads(out.read_text())["findings"])


def _every_stored_value(db: Path) -> str:
    """Every value of every table of a store, as text: a secret compressed on disk would hide
    from a search of the file's bytes."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    text = "\n".join(str(con.execute(f'SELECT * FROM "{name}"').fetchall()) for name in tables)
    con.close()
    return text


SPACED_TOKEN = jwt.encode(
    {"sub": "agent-a", "jti": "j-2", "note": f"deploy key:\n{GITHUB_TOKEN}"}, "k" * 32
)


@pytest.mark.parametrize(
    "record",
    [
        {**VALID, "action": {"cmd": f"deploy\n{GITHUB_TOKEN}"}},  # kept as its JSON text
        {**VALID, "action": [f"x\t{GITHUB_TOKEN}"]},
        {**VALID, "action": f"exec failed: PATH=/usr/bin\\n{GITHUB_TOKEN}"},  # a logger's \n
        {**VALID, "scopes": f"read\n{GITHUB_TOKEN}"},
        {**VALID, "principal": f"agent\\n{GITHUB_TOKEN}"},
        {**VALID, "authorization": f"Bearer {SPACED_TOKEN}"},  # in the token's claims
    ],
    ids=["object", "list", "logged-escape", "scopes", "principal", "claim"],
)
@pytest.mark.parametrize("careful", [False, True], ids=["fast", "careful"])
def test_a_secret_after_an_escaped_line_break_is_found_and_never_stored(
    tmp_path: Path, record: dict[str, object], careful: bool
) -> None:
    """`\\n` glues an `n` to the token after it, and the patterns look for a token at a
    word's start: kept as JSON text (an object, a list) or escaped by a logger, the token was
    neither found nor cut out, and every report printed it."""
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(record) + "\n" + ("\n" if careful else ""))
    db, out = tmp_path / "s.duckdb", tmp_path / "r.json"
    args = ["scan", str(log), "--db", str(db), "-f", "json", "-o", str(out), "--fail-on", "never"]
    result = CliRunner().invoke(app, [*args, "--as-of", "2026-11-28T00:00:00Z", "--verbose"])
    assert result.exit_code == 0, result.output
    secret = GITHUB_TOKEN[4:]
    assert secret not in out.read_text() + result.output
    assert secret not in _every_stored_value(db)
    rules = {finding["rule_id"] for finding in json.loads(out.read_text())["findings"]}
    assert "M2M605" in rules if "authorization" in record else "M2M601" in rules


def test_an_error_that_quotes_the_input_never_quotes_a_secret(tmp_path: Path) -> None:
    """PyYAML quotes a tag it cannot read, RE2 a pattern it refuses, and a config warning the
    mapping it read: a token there was printed and stored in `ingest_errors` (a secret-leak
    audit). A long value quoted cut short was cut before its secret was looked for, so a
    JWT's signature was shown (a JWT cut in its middle is no JWT to a pattern)."""
    from m2maudit.errors import shown

    secret = GITHUB_TOKEN[4:]
    bad_tag = tmp_path / "tag.yaml"
    bad_tag.write_text(f"tokens:\n  - token_id: k1\n    principal: !{GITHUB_TOKEN}!x agent-a\n")
    constructor = tmp_path / "inv.yaml"
    constructor.write_text(
        "tokens:\n  - token_id: k1\n    principal: agent-a\n"
        f"  - token_id: k2\n    principal: !<tag:{GITHUB_TOKEN}> agent-b\n"
    )
    mapping = tmp_path / "map.yaml"
    mapping.write_text(f'mapping:\n  on_behalf_of: "{GITHUB_TOKEN}"\n')
    pattern = tmp_path / "re.yaml"
    pattern.write_text(f'agent_patterns: ["{GITHUB_TOKEN}(("]\n')
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(VALID) + "\n")
    db = tmp_path / "s.duckdb"
    runs = [
        ["scan", "--inventory", str(bad_tag), "--inventory", str(constructor), "--db", str(db)],
        ["scan", str(log), "-c", str(mapping)],
        ["scan", str(log), "-c", str(pattern)],
    ]
    for args in runs:
        result = CliRunner().invoke(app, [*args, "--fail-on", "never", "-f", "json"])
        assert "invalid YAML" in result.output or "reads" in result.output or "RE2" in result.output
        assert secret not in result.output, args
    assert secret not in _every_stored_value(db)
    assert "[redacted]" in _every_stored_value(db)
    token = jwt.encode({"sub": "agent-a", "pad": "x" * 200}, "k" * 32)
    assert token.split(".")[2][-20:] not in shown(token)


@pytest.mark.parametrize(
    "action",
    [
        f"GET /login?next=%2Fapi%3Fgh%3D{GITHUB_TOKEN}",
        f"GET /forward%2F{GITHUB_TOKEN}",
        f"GET /search?q=token%20{GITHUB_TOKEN}",
    ],
    ids=["nested-query", "path", "space"],
)
@pytest.mark.parametrize("careful", [False, True], ids=["fast", "careful"])
def test_a_percent_encoded_secret_is_found_and_never_stored(
    tmp_path: Path, action: str, careful: bool
) -> None:
    """A token after `%3D`, `%2F` or `%20` (a URL inside a URL's query, a proxied path) was
    neither found nor cut out: every report printed it."""
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({**VALID, "action": action}) + "\n" + ("\n" if careful else ""))
    db, out = tmp_path / "s.duckdb", tmp_path / "r.json"
    args = ["scan", str(log), "--db", str(db), "-f", "json", "-o", str(out), "--fail-on", "never"]
    result = CliRunner().invoke(app, [*args, "--as-of", "2026-11-28T00:00:00Z", "--verbose"])
    assert result.exit_code == 0, result.output
    assert GITHUB_TOKEN[4:] not in out.read_text() + result.output
    assert GITHUB_TOKEN[4:] not in _every_stored_value(db)
    findings = json.loads(out.read_text())["findings"]
    exposed = [f["evidence"]["secret_kind"] for f in findings if f["rule_id"] == "M2M601"]
    assert exposed == ["github_token"]


BASIC = "YWRtaW46SHVudGVyMkh1bnRlcjJ4eQ=="
AWS_SECRET = "wJalrXUtnFEMIK7MDENGbPxRCTLEAKEXAMPLEKEY"


def _built_around_a_secret() -> dict[str, dict[str, object]]:
    """Records whose adapter builds a stored value around a secret it found: a Kubernetes
    path joins the resource and `/log`, a CloudTrail session is the principal id after its
    `:`, a Vault resource joins the namespace and the path."""
    k8s = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "a1",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/ns/pods/p/log",
        "verb": "get",
        "user": {"username": "system:serviceaccount:ai:research-agent"},
        "objectRef": {"resource": f"Basic {BASIC}", "subresource": "log", "name": "p"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": "2026-11-01T00:00:00Z",
    }
    cloudtrail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}",
            "accountId": "111122223333",
            "accessKeyId": "ASIAEXAMPLE000000001",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/r"}
            },
        },
        "eventTime": "2026-11-01T00:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "eventID": "e1",
        "eventType": "AwsApiCall",
    }
    vault = {
        "time": "2026-11-01T00:00:00Z",
        "type": "request",
        "auth": {"client_token": "hmac-sha256:aa", "accessor": "acc1", "policies": ["default"]},
        "request": {
            "id": "r1",
            "operation": "read",
            "namespace": {"id": "n1", "path": f"AKIAIOSFODNN7EXAMPLE:{AWS_SECRET}"},
            "path": "secret/data/x",
        },
    }
    return {"k8s": k8s, "cloudtrail": cloudtrail, "vault": vault}


@pytest.mark.parametrize("name", ["k8s", "cloudtrail", "vault"])
def test_a_secret_an_adapter_built_a_value_around_is_cut_out_of_it(
    tmp_path: Path, name: str
) -> None:
    """The record's secret was found, yet the stored value built around it kept it: `/` after
    `Basic ...==` is base64 to the pattern, and a secret split from its key id is no pattern's
    (a secret-leak audit). The texts of the secrets found are cut out of every stored value."""
    log = tmp_path / f"{name}.jsonl"
    log.write_text(json.dumps(_built_around_a_secret()[name]) + "\n")
    db, out = tmp_path / "s.duckdb", tmp_path / "r.json"
    args = ["scan", str(log), "--db", str(db), "-f", "json", "-o", str(out), "--fail-on", "never"]
    result = CliRunner().invoke(app, [*args, "--as-of", "2026-11-28T00:00:00Z", "--verbose"])
    assert result.exit_code == 0, result.output
    stored = _every_stored_value(db)
    for secret in (BASIC[:-2], AWS_SECRET):
        assert secret not in out.read_text() + result.output
        assert secret not in stored
    assert "M2M601" in out.read_text()
