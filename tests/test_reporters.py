"""Every registered output format, over an empty, a full and a suppressed result."""

from __future__ import annotations

import csv
import html
import io
import json
import random
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.text import Text

from m2maudit.errors import AuditError
from m2maudit.findings import Finding, Location, ScanResult, SkippedRule
from m2maudit.reporters import DEFAULT_FORMAT, REPORTERS, ReportOptions, get_reporter
from m2maudit.reporters.csv_report import COLUMNS, neutralize
from m2maudit.reporters.markdown import code, prose, text
from m2maudit.reporters.sarif import artifact_uri
from m2maudit.reporters.summary import summary_line
from m2maudit.timeutil import iso
from tests.reporting_fixtures import (
    RULES,
    empty_result,
    finding,
    full_result,
    make_result,
    shared_dir,
    suppressed_result,
)

RESULTS: dict[str, Callable[[], ScanResult]] = {
    "empty": empty_result,
    "full": full_result,
    "suppressed": suppressed_result,
}
PLAIN = ReportOptions()
ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|4[0-7]|9[0-7]|10[0-7])(;[0-9]+)*m")


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((shared_dir() / "schemas" / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.Draft4Validator(schema)


def render(name: str, result: ScanResult, options: ReportOptions = PLAIN) -> str:
    return get_reporter(name).render(result, options)


# --- the registry ----------------------------------------------------------------------


def test_registry_holds_every_documented_format() -> None:
    assert list(REPORTERS) == ["table", "json", "csv", "sarif", "junit", "markdown"]
    assert DEFAULT_FORMAT in REPORTERS
    for name, reporter in REPORTERS.items():
        assert reporter.name == name
        assert reporter.extension and reporter.media_type and reporter.description


def test_unknown_format_is_one_clear_line() -> None:
    with pytest.raises(AuditError) as error:
        get_reporter("yaml")
    message = str(error.value)
    assert "\n" not in message
    assert "'yaml'" in message
    assert all(name in message for name in REPORTERS)


# What shows that the suppressed finding is still there: counted (table), listed (markdown),
# or carried with its id (the machine formats). Suppressed findings are never dropped.
SUPPRESSED_MARKER = {"table": "1 suppressed, 1 baselined", "markdown": "| suppressed | critical |"}


@pytest.mark.parametrize("kind", RESULTS)
@pytest.mark.parametrize("name", REPORTERS)
def test_every_format_renders_every_result(name: str, kind: str) -> None:
    result = RESULTS[kind]()
    text = render(name, result)
    assert text.endswith("\n")
    assert text == render(name, RESULTS[kind]()), "rendering twice must give the same bytes"
    for item in result.findings:
        if name not in SUPPRESSED_MARKER:
            assert item.id in text, f"{name} lost finding {item.rule_id}"
    if kind == "suppressed":
        suppressed = [f for f in result.findings if f.suppressed]
        assert len(suppressed) == 1
        assert SUPPRESSED_MARKER.get(name, suppressed[0].id) in text


@pytest.mark.parametrize("name", [name for name in REPORTERS if name != "table"])
def test_machine_formats_ignore_terminal_options(name: str) -> None:
    result = suppressed_result()
    styled = ReportOptions(ansi=True, color=True, width=200, verbose=True)
    assert render(name, result, styled) == render(name, result)


@pytest.mark.parametrize("name", REPORTERS)
def test_output_does_not_depend_on_input_order(name: str) -> None:
    ordered = full_result()
    shuffled = full_result()
    random.Random(7).shuffle(shuffled.findings)
    random.Random(7).shuffle(shuffled.rules)
    assert [f.id for f in shuffled.findings] != [f.id for f in ordered.findings]
    assert render(name, shuffled) == render(name, ordered)


# --- json ------------------------------------------------------------------------------------

DESIGN_FIELDS = {
    "id",
    "rule_id",
    "rule_name",
    "problem",
    "severity",
    "confidence",
    "title",
    "message",
    "principal",
    "token_id",
    "count",
    "first_seen",
    "last_seen",
    "evidence",
    "locations",
    "remediation",
    "references",
    "owasp_nhi",
}


def test_json_has_the_documented_shape() -> None:
    document = json.loads(render("json", suppressed_result()))
    assert list(document) == [
        "schema_version",
        "tool",
        "as_of",
        "inputs",
        "window",
        "summary",
        "skipped_rules",
        "policy",
        "config",
        "findings",
    ]
    assert document["schema_version"] == "1.0"
    assert document["tool"] == {"name": "m2maudit", "version": PLAIN.tool_version}
    assert document["as_of"] == "2025-07-01T00:00:00Z"
    assert document["window"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-30T23:59:59Z"}
    assert document["inputs"][0]["source"] == "logs/app.jsonl"
    assert document["skipped_rules"] == [
        {"rule_id": "M2M403", "reason": "no decoded tokens in the inputs"}
    ]
    summary = document["summary"]
    assert (
        summary["total"],
        summary["active"],
        summary["suppressed"],
        summary["baselined"],
        summary["failing"],
    ) == (6, 4, 1, 1, 2)
    assert list(summary["by_severity"]) == ["critical", "high", "medium", "low", "info"]
    assert summary["by_severity"]["critical"] == {
        "total": 1,
        "active": 0,
        "suppressed": 1,
        "baselined": 0,
    }
    assert summary["by_problem"]["broad-scopes"]["total"] == 2
    assert summary["attribution"]["human"] == {"count": 984, "share": 0.82}
    assert summary["attribution"]["agent_actions"] == 1200
    assert "elapsed_seconds" not in json.dumps(document), "timings would break determinism"


def test_json_findings_carry_every_field_sorted() -> None:
    result = suppressed_result()
    findings = json.loads(render("json", result))["findings"]
    assert [item["id"] for item in findings] == [
        f.id for f in sorted(result.findings, key=Finding.sort_key)
    ]
    for item in findings:
        assert DESIGN_FIELDS | {"suppressed", "suppression", "baselined", "after_baseline"} == set(
            item
        )
    first = findings[0]
    assert first["severity"] == "critical" and first["suppressed"] is True
    assert first["suppression"]["reason"] == "CI bootstrap, =accepted"
    assert first["suppression"]["expires"] == "2025-12-31"
    unused = next(item for item in findings if item["rule_id"] == "M2M202")
    assert unused["evidence"]["unused_scopes"] == ["admin", "delete", "write:all"]
    assert unused["first_seen"].endswith("Z")
    assert next(item for item in findings if item["rule_id"] == "M2M501")["baselined"] is True


def test_json_of_an_empty_result() -> None:
    document = json.loads(render("json", empty_result()))
    assert document["findings"] == []
    assert document["summary"]["total"] == 0
    assert document["summary"]["attribution"] is None
    assert document["window"] == {"start": None, "end": None}


# --- csv -------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_neutralizes_formula_prefixes(prefix: str) -> None:
    assert neutralize(f"{prefix}SUM(A1)") == f"'{prefix}SUM(A1)"


@pytest.mark.parametrize("lead", ["\t", "\r", "\n", " "])
def test_csv_guards_a_formula_behind_white_space(lead: str) -> None:
    """From a review: cleaning turned `\\t=HYPERLINK(...)` into ` =HYPERLINK(...)` before the
    guard looked, and the quote was lost."""
    hostile = finding(RULES[0], f"{lead}=HYPERLINK(1)", "tok-1", "m")
    [row] = list(csv.DictReader(io.StringIO(render("csv", make_result([hostile])))))
    assert row["principal"].startswith("'")


@pytest.mark.parametrize("cell", ["svc-agent", "1+1", "a=b", "", " x=1", "'quoted"])
def test_csv_leaves_ordinary_cells_alone(cell: str) -> None:
    assert neutralize(cell) == cell


def test_csv_rows_are_fixed_columns_and_injection_safe() -> None:
    result = suppressed_result()
    text = render("csv", result)
    assert "\r\n" not in text
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(result.findings) + 1
    assert all(len(row) == len(COLUMNS) for row in rows)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    by_rule = {
        row[COLUMNS.index("rule_id")]: dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]
    }
    wildcard = by_rule["M2M201"]
    assert wildcard["principal"] == "'+svc-ci@corp.example"
    assert wildcard["token_id"] == "'-tok-2"
    assert wildcard["message"].startswith("'@admin")
    assert wildcard["status"] == "suppressed"
    assert wildcard["suppression_reason"] == "CI bootstrap, =accepted"
    assert by_rule["M2M501"]["status"] == "baselined"
    assert by_rule["M2M101"]["locations"] == "logs/app.jsonl:12; logs/app.jsonl:40"
    assert json.loads(by_rule["M2M202"]["evidence"])["minimal_scopes"] == [
        "read:orders",
        "write:orders",
    ]


def test_csv_cells_cannot_drive_a_terminal() -> None:
    """`cat report.csv` must not clear the screen or reverse text (a trial's principal
    `agent-\\x1b[2Jesc`); line breaks become spaces as in the other reports."""
    hostile = finding(RULES[0], "agent-\x1b[2Jesc\u202eraey", "tok-1", "a\nb")
    text = render("csv", make_result([hostile]))
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text)
    [row] = list(csv.DictReader(io.StringIO(text)))
    assert row["principal"] == "agent-\ufffd[2Jesc\ufffdraey"
    assert row["message"] == "a b"


@pytest.mark.parametrize(
    "name",
    ["ag\u200bent", "agent\ufeff", "age\u200dnt", "ag\u2060ent", "a\u200egent", "ag\xadent"],
)
def test_an_invisible_character_cannot_pass_one_name_for_another(name: str) -> None:
    """From a review: `ag\u200bent\ufeff` printed as `agent` in the table, CSV, Markdown and
    JUnit, so a principal could pass for a real one. It shows as U+FFFD in each."""
    result = make_result([finding(RULES[0], name, "tok-1", f"{name} acted")])
    for name_format in ("table", "csv", "markdown", "junit"):
        shown = render(name_format, result)
        assert not re.search("[\xad\u200b-\u200f\u2060-\u2064\ufeff]", shown), name_format
        assert "\ufffd" in shown, name_format


def test_every_format_character_is_made_visible() -> None:
    """From a review of the first list: the soft hyphen, tag characters and others of
    Unicode's category Cf were left out. Every one this Python knows is covered."""
    import unicodedata

    from m2maudit.reporters.serialize import clean_text

    invisible = [chr(code) for code in range(0x110000) if unicodedata.category(chr(code)) == "Cf"]
    invisible += ["\u034f", "\ufe0f", "\U000e0100"]  # a joiner, variation selectors
    assert clean_text("".join(invisible)) == "\ufffd" * len(invisible)


def test_csv_of_an_empty_result_is_the_header() -> None:
    assert render("csv", empty_result()) == ",".join(COLUMNS) + "\n"


# --- sarif -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", RESULTS)
def test_sarif_validates_against_the_schema(
    kind: str, sarif_validator: jsonschema.Draft4Validator
) -> None:
    document = json.loads(render("sarif", RESULTS[kind]()))
    errors = sorted(sarif_validator.iter_errors(document), key=str)
    assert not errors, errors[0].message if errors else ""
    assert document["version"] == "2.1.0"


def test_sarif_schema_check_can_fail(sarif_validator: jsonschema.Draft4Validator) -> None:
    document = json.loads(render("sarif", full_result()))
    document["runs"][0]["results"][0]["level"] = "fatal"
    assert list(sarif_validator.iter_errors(document))


def test_sarif_rules_and_results_map_the_findings() -> None:
    result = suppressed_result()
    run = json.loads(render("sarif", result))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == sorted(rule.id for rule in RULES)
    wildcard = next(rule for rule in rules if rule["id"] == "M2M201")
    assert wildcard["properties"]["security-severity"] == "9.5"
    assert "Remediation: Replace the wildcard" in wildcard["help"]["text"]
    assert wildcard["help"]["text"].startswith("A machine credential holds")
    results = {item["ruleId"]: item for item in run["results"]}
    assert len(run["results"]) == len(result.findings)
    for item in run["results"]:
        assert rules[item["ruleIndex"]]["id"] == item["ruleId"]
    by_rule = {f.rule_id: f for f in result.findings}
    assert results["M2M101"]["partialFingerprints"] == {"m2maudit/v1": by_rule["M2M101"].id}
    assert results["M2M101"]["level"] == "error"
    assert results["M2M202"]["level"] == "warning"
    assert results["M2M301"]["level"] == "note"
    location = results["M2M101"]["locations"][0]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "logs/app.jsonl"},
        "region": {"startLine": 12},
    }
    assert location["logicalLocations"][0]["name"] == "deploy-agent"
    assert results["M2M101"]["relatedLocations"][0]["physicalLocation"]["region"] == {
        "startLine": 40
    }
    assert results["M2M201"]["suppressions"] == [
        {"kind": "external", "status": "accepted", "justification": "CI bootstrap, =accepted"}
    ]
    assert "suppressions" not in results["M2M101"]
    assert results["M2M501"]["baselineState"] == "unchanged"
    assert results["M2M101"]["baselineState"] == "new"
    notes = run["invocations"][0]["toolExecutionNotifications"]
    assert notes[0] == {"level": "warning", "message": {"text": "3 records rejected: not audited"}}
    assert notes[1]["associatedRule"] == {"id": "M2M403"}


def test_sarif_finding_without_any_location_is_valid(
    sarif_validator: jsonschema.Draft4Validator,
) -> None:
    bare = finding(RULES[0], None, None, "no principal, no credential, no file", count=0)
    result = empty_result()
    result.findings = [bare]
    document = json.loads(render("sarif", result))
    assert not list(sarif_validator.iter_errors(document))
    assert "locations" not in document["runs"][0]["results"][0]


def test_sarif_locates_what_standard_input_held(
    sarif_validator: jsonschema.Draft4Validator,
) -> None:
    """From a review: findings of `scan -` carried only logical locations, and GitHub code
    scanning refuses a whole upload when one result has no artifact location."""
    piped = finding(
        RULES[0], "agent-a", "k1", "piped", locations=[Location("<stdin>", 7), Location("-", 9)]
    )
    result = empty_result()
    result.findings = [piped]
    document = json.loads(render("sarif", result))
    assert not list(sarif_validator.iter_errors(document))
    sarif_result = document["runs"][0]["results"][0]
    physical = sarif_result["locations"][0]["physicalLocation"]
    assert physical == {"artifactLocation": {"uri": "stdin"}, "region": {"startLine": 7}}
    assert sarif_result["relatedLocations"][0]["physicalLocation"]["region"] == {"startLine": 9}


def test_sarif_messages_carry_no_escape_sequences_or_links() -> None:
    """From a review: an OSC-8 hyperlink and U+202E from a log reached `message.text`, and a
    principal written `[x](1)` read as an embedded link (SARIF 3.11.6)."""
    hostile = "agent [x](1) \x1b]8;;http://evil.example\x07 \u202e done"
    result = empty_result()
    result.findings = [finding(RULES[0], "agent", "k1", hostile)]
    text = json.loads(render("sarif", result))["runs"][0]["results"][0]["message"]["text"]
    assert not re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e]", text)
    assert re.search(r"(?<!\\)\[", text) is None  # every bracket escaped
    assert text.startswith("agent \\[x\\](1)")


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        ("logs/app.jsonl", "logs/app.jsonl"),
        ("logs/a b#1.json", "logs/a%20b%231.json"),
        ("/var/log/x.json", "file:///var/log/x.json"),
        ("C:\\logs\\x.json", "file:///C:/logs/x.json"),
    ],
)
def test_sarif_uris(path: str, uri: str) -> None:
    assert artifact_uri(path) == uri


# --- junit -----------------------------------------------------------------------------------


def test_junit_one_case_per_rule_failed_when_it_has_active_findings() -> None:
    root = ET.fromstring(render("junit", suppressed_result()))
    suite = root.find("testsuite")
    assert suite is not None
    cases = {case.get("name", "").split()[0]: case for case in suite.iter("testcase")}
    assert set(cases) == {rule.id for rule in RULES} | {"M2M403", "inputs"}  # 3 rejected
    failed = {name for name, case in cases.items() if case.find("failure") is not None}
    assert failed == {"M2M101", "M2M202", "M2M301", "M2M402"}
    assert cases["M2M201"].find("failure") is None  # only a suppressed finding
    assert "suppressed" in (cases["M2M201"].findtext("system-out") or "")
    assert cases["M2M403"].find("skipped") is not None
    assert suite.get("failures") == "4" and suite.get("tests") == "8"
    assert suite.get("skipped") == "2"  # M2M403, and the inputs (3 records rejected)
    # The root's attributes as Jenkins' xUnit schema allows them (a review: `skipped` there
    # failed its validation).
    assert root.get("failures") == "4" and set(root.attrib) <= {
        "name",
        "time",
        "tests",
        "failures",
        "disabled",
        "errors",
    }
    failure = cases["M2M101"].find("failure")
    assert failure is not None and failure.get("type") == "high"
    assert "Remediation: Use token exchange" in (failure.text or "")


def test_junit_of_an_empty_result_passes_every_rule() -> None:
    root = ET.fromstring(render("junit", empty_result()))
    assert root.get("failures") == "0"
    assert root.get("tests") == str(len(RULES))


# --- markdown ------------------------------------------------------------------------------


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_table_survives_hostile_text() -> None:
    text = render("markdown", suppressed_result())
    assert text.startswith("## ❌ m2maudit: 6 findings")
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert "@admin" not in text
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = next(line for line in rows if line.startswith("| Severity | Rule"))
    finding_rows = [
        line
        for line in rows
        if "`M2M" in line and "suppressed" not in line and "baselined" not in line
    ]
    assert len(finding_rows) == 4
    assert all(_cells(line) == _cells(header) for line in finding_rows)
    assert "`read:orders`" not in text  # evidence stays out of the table; keep it short
    assert "| suppressed | critical | `M2M201`" in text


def test_markdown_remediation_keeps_its_code_spans() -> None:
    """Rules write commands and claims as `code`; they showed as \\`exp\\`. What is outside
    a span is still escaped, what is inside cannot break the table, and a backtick left
    unpaired in the text escapes the whole text."""
    assert prose("Validate `exp` and `alg: none` @team <b>") == (
        "Validate `exp` and `alg: none` @&#8203;team &lt;b&gt;"
    )
    assert prose("pipe `a|b` here") == "pipe `a\\|b` here"
    assert prose("cut `exp` and `sub") == "cut \\`exp\\` and \\`sub"
    assert prose("empty `` span") == "empty  span"
    # The report's own cut inside a span cuts before the span: the others stay code.
    assert prose("Set `exp`, then run `vault token revoke`", 30) == "Set `exp`, then run …"
    # Not cut, or a stray backtick before the cut: nothing trimmed, all escaped.
    assert prose("a stray ` here…") == "a stray \\` here…"
    assert prose("stray ` then `code` and a long tail", 26) == "stray \\` then \\`code\\` and a…"


def test_markdown_text_from_a_log_mentions_links_and_references_nothing() -> None:
    """From a review: `@` written as `&#64;` still mentioned `@github/security-team` in a PR
    comment (GitHub decodes entities before it looks for mentions), and addresses, URLs and
    issue references stayed live. Read as GitHub reads it (entities decoded), none is left."""
    hostile = (
        "@github/security-team see #1, org/repo#2 and GH-3; mail user@evil.example, "
        "open https://evil.example/phish or www.evil.example"
    )
    for rendered in (text(hostile, 500), prose(hostile, 500)):
        shown = html.unescape(rendered)
        live = re.findall(r"@[\w.-]|#\w|\bGH-\d|://|\bwww\.", shown, re.IGNORECASE)
        assert live == []
        assert shown.replace("\u200b", "").replace("\\", "") == hostile  # the same words


@pytest.mark.parametrize("name", ["x``<img src=x onerror=alert(1)>``y", "a`b", "```"])
def test_a_name_holding_backticks_stays_inside_its_code_span(name: str) -> None:
    """A principal from a log holding `` closed the double fence early: cmark-gfm rendered
    `<code> x</code><img src=x onerror=alert(1)>`."""
    span = code(name)
    fence = re.match("`+", span)
    assert fence and span.endswith(fence.group())
    inner = span[len(fence.group()) : -len(fence.group())]
    assert inner == f" {name} " and fence.group() not in inner


@pytest.mark.parametrize(
    "remediation",
    [
        "Docs at https://example.com/x`<img src=https://evil.example/p.gif>`",
        "see www.example.com`</details><h1>pwned</h1>`",
        "mail ops@example.com`<script>x</script>`",
    ],
)
def test_a_span_right_after_a_link_is_escaped_with_the_rest(remediation: str) -> None:
    """GitHub's autolinks took the backtick into the link: the span never formed, and what it
    held went out as HTML (found by rendering with cmark-gfm)."""
    rendered = prose(remediation)
    assert "<" not in rendered and ">" not in rendered
    assert "\\`" in rendered  # the backticks escaped: no span at all


def test_markdown_stays_under_githubs_comment_limit() -> None:
    """300 agents and a suppression made a 69 009-character comment that `gh pr comment`
    refuses; the tables now stop short of 65 536 and say how many more there are."""
    long_message = "agent made calls with no human on whose behalf it acted " * 5
    active = [finding(RULES[0], f"agent-{n:03d}", f"tok-{n}", long_message) for n in range(300)]
    quiet = [finding(RULES[0], f"svc-{n:03d}", f"key-{n}", long_message) for n in range(300)]
    for item in quiet:
        item.suppressed = True
        item.suppression = {"reason": "accepted " * 20}
    text = render("markdown", make_result(active + quiet))
    assert 60_000 < len(text) <= 65_536
    shown = [line for line in text.splitlines() if line.startswith("| high | `M2M101`")]
    more = re.search(r"… and (\d+) more active findings", text)
    assert more and int(more.group(1)) + len(shown) == 300
    assert text.rstrip().endswith("</details>")  # cut by rows, never mid-table
    assert render("markdown", make_result(active[:3])).count("| high | `M2M101`") == 3


def test_counts_in_the_tables_are_grouped_by_thousands() -> None:
    """The summary lines said "1,200 active" beside tables that said 1200."""
    many = [finding(RULES[0], f"agent-{n:04d}", f"tok-{n}", "no human") for n in range(1200)]
    markdown = render("markdown", make_result(many))
    assert "| high | 1,200 | 0 | 0 |" in markdown
    assert re.search(r"… and \d,\d{3} more active findings", markdown)
    table = render("table", make_result(many))
    assert re.search(r"active +(0 +)*1,200 +(0 +)*1,200", table)


def test_markdown_of_an_empty_result_says_so() -> None:
    text = render("markdown", empty_result())
    assert text.startswith("## ✅ m2maudit: no findings")
    assert "### Findings" not in text


# --- table -----------------------------------------------------------------------------------


@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("kind", RESULTS)
def test_table_fits_80_columns_without_escape_codes(kind: str, verbose: bool) -> None:
    text = render("table", RESULTS[kind](), ReportOptions(verbose=verbose))
    assert "\x1b" not in text
    *lines, summary = text.splitlines()  # the summary is one line, however long
    assert max(len(line) for line in lines) <= 80 and summary.startswith("m2maudit: ")
    assert all(line == line.rstrip() for line in text.splitlines())


def test_table_shows_what_matters() -> None:
    text = render("table", suppressed_result())
    for part in (
        "as of  2025-07-01T00:00:00Z",
        "logs/app.jsonl (events, generic-log",
        "Riskiest principals",
        "Riskiest credentials",
        "human 82.0%",
        "1 suppressed, 1 baselined, 2 failing (--fail-on high)",
        "scopes to keep read:orders, write:orders",
        "fix             Use token exchange",
        "detail          deploy-agent made 42 calls with no on_behalf_of",
        "skipped M2M403",
    ):
        assert part in text, part
    assert text.index("scopes to keep") < text.index("unused scopes")
    assert text.index("Missing user context (missing-user-context)") < text.index(
        "Broad scopes (broad-scopes)"
    )
    assert "M2M101" not in text and "logs/app.jsonl:12" not in text
    assert "+ 1 suppressed, 0 baselined (listed with --verbose)" in text


def test_table_says_the_rules_skipped_for_one_reason_on_one_line() -> None:
    """From a trial: a scan without an inventory listed ten `skipped` lines, one a rule."""
    result = suppressed_result()
    no_inventory = "no token inventory was given (use --inventory)"
    result.skipped = [
        SkippedRule("M2M404", no_inventory),
        SkippedRule("M2M403", "no decoded tokens in the inputs"),
        SkippedRule("M2M301", no_inventory),
    ]
    lines = [line for line in render("table", result).splitlines() if "skipped M2M" in line]
    assert [line.strip("│ ") for line in lines] == [
        f"skipped M2M301, M2M404: {no_inventory}",
        "skipped M2M403: no decoded tokens in the inputs",
    ]


def test_table_verbose_adds_rule_ids_locations_and_quiet_findings() -> None:
    text = render("table", suppressed_result(), ReportOptions(verbose=True))
    assert "M2M101 agent-without-user" in text
    assert "logs/app.jsonl:12, logs/app.jsonl:40" in text
    assert "suppressed [critical] M2M201" in text
    assert "reason: CI bootstrap" in text


def test_table_shows_twenty_findings_a_rule_and_counts_the_rest() -> None:
    """A big scan gives thousands of findings of one rule: the terminal report shows the
    twenty seen most often, then one line for the rest, before the next rule; --verbose
    shows them all; json keeps all."""
    by_id = {rule.id: rule for rule in RULES}
    many = [
        finding(by_id["M2M201"], f"agent-{n:03d}", f"tok-{n}", f"agent-{n:03d} acted", count=n + 1)
        for n in range(25)
    ]
    other = finding(by_id["M2M202"], "agent-x", "tok-x", "agent-x left scopes unused")
    result = make_result([*many, other])
    text = render("table", result)
    assert text.count(" acted") == 20
    assert "agent-024 acted" in text and "agent-005 acted" in text  # the most calls
    assert "agent-004 acted" not in text and "agent-000 acted" not in text
    assert text.index("agent-005 acted") < text.index("agent-024 acted")  # report order
    words = " ".join(text.split())  # the line wraps at 80 columns
    assert "+ 5 more M2M201 findings (" in words
    assert "each seen less often: all of them with --verbose, or in the json, csv or sarif" in words
    assert other.problem == many[0].problem  # one section: the count comes before M2M202
    assert words.index("+ 5 more M2M201") < words.index("agent-x left scopes unused")
    verbose = render("table", result, ReportOptions(verbose=True))
    assert verbose.count(" acted") == 25 and "more M2M201" not in verbose
    assert len(json.loads(render("json", result))["findings"]) == 26


def test_table_lists_unreadable_inputs_first_with_why() -> None:
    """Twelve inputs, two unreadable: those are never the ones the limit of ten hides."""
    result = full_result()
    result.inputs = [
        {"source": f"logs/{n:02d}.jsonl", "kind": "events", "loaded": 5} for n in range(10)
    ] + [
        {"source": "inv.yaml", "error": "line 5: invalid YAML: expected ']'"},
        {"source": "x.json", "error": "line 2: not valid JSON"},
    ]
    words = " ".join(render("table", result).split())
    assert "inv.yaml (unreadable: line 5: invalid YAML: expected ']')" in words
    assert "x.json (unreadable: line 2: not valid JSON)" in words
    assert words.index("inv.yaml") < words.index("logs/00.jsonl")
    assert "... and 2 more" in words and "logs/08.jsonl" not in words


def test_table_quiet_prints_only_the_summary_line() -> None:
    result = suppressed_result()
    text = render("table", result, ReportOptions(quiet=True))
    assert text == f"m2maudit: {summary_line(result, 'high')}\n"
    assert text.startswith("m2maudit: 6 findings (4 active: 2 high, 1 medium, 1 low;")


def test_the_tables_last_line_is_the_summary_line_unwrapped() -> None:
    """CI logs are read with `tail -1` and grep: at 80 columns the line broke in two."""
    result = suppressed_result()
    text = render("table", result, ReportOptions(width=60))
    assert text.splitlines()[-1] == f"m2maudit: {summary_line(result, 'high')}"


def test_table_riskiest_principal_comes_first() -> None:
    text = render("table", full_result())
    section = text[text.index("Riskiest principals") : text.index("Riskiest credentials")]
    assert section.index("+svc-ci@corp.example") < section.index("deploy-agent")


def test_table_riskiest_names_an_arn_on_one_line_with_its_problems_under_it() -> None:
    """With the problems in a column of their own, an ARN had 21 columns, cut in three."""
    arn = "arn:aws:iam::111122223333:role/research-agent"
    by_rule = {rule.id: rule for rule in RULES}
    text = render(
        "table",
        make_result(
            [
                finding(by_rule["M2M101"], arn, "tok-1", "no human"),
                finding(by_rule["M2M301"], arn, "tok-1", "old"),
            ]
        ),
    )
    section = text[text.index("Riskiest principals") : text.index("Riskiest credentials")]
    lines = section.splitlines()
    [row] = [n for n, line in enumerate(lines) if arn in line]
    assert lines[row + 1].split() == ["missing-user-context,", "stale-rotation"]


def test_table_colours_only_on_a_colour_terminal() -> None:
    result = full_result()
    coloured = render("table", result, ReportOptions(ansi=True, color=True))
    assert ANSI_COLOR.search(coloured)
    no_color = render("table", result, ReportOptions(ansi=True, color=False))
    assert "\x1b[1m" in no_color  # still bold
    assert not ANSI_COLOR.search(no_color)


@pytest.mark.parametrize("kind", ["table", "markdown", "junit"])
def test_reports_for_people_never_pass_escape_sequences_from_the_data(kind: str) -> None:
    """Those a terminal may show (`cat comment.md`): ESC, other controls, bidi overrides."""
    result = full_result()
    result.findings[0].principal = "evil\x1b[2J\x1b]0;pwned\x07agent"
    result.findings[0].message = "bidi \u202e txt"
    for options in (PLAIN, ReportOptions(ansi=True, color=True)):
        text = render(kind, result, options)
        # The table's own styling is ANSI (ESC [1m ...); the data's sequences are not.
        assert "\x1b[2J" not in text and "\x1b]0" not in text and "\u202e" not in text
        assert "\x07" not in text and "evil\ufffd[2J" in text


def test_table_does_not_depend_on_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    before = render("table", suppressed_result())
    for key, value in (
        ("COLUMNS", "40"),
        ("TERM", "dumb"),
        ("FORCE_COLOR", "1"),
        ("NO_COLOR", "1"),
    ):
        monkeypatch.setenv(key, value)
    assert render("table", suppressed_result()) == before


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_options_for_a_pipe_a_file_and_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    for stream in (None, io.StringIO()):
        options = ReportOptions.for_stream(stream, verbose=True, fail_on="low")
        assert (options.ansi, options.color, options.width) == (False, False, 80)
        assert options.verbose and options.fail_on == "low"
    terminal = ReportOptions.for_stream(FakeTty())
    assert terminal.ansi and terminal.color
    monkeypatch.setenv("NO_COLOR", "1")
    no_color = ReportOptions.for_stream(FakeTty())
    assert no_color.ansi and not no_color.color
    assert not ANSI_COLOR.search(render("table", full_result(), no_color))


def test_evidence_is_capped_unless_verbose() -> None:
    result = empty_result()
    many = {f"key_{index:02d}": list(range(20)) for index in range(10)}
    result.findings = [
        finding(
            RULES[1],
            "svc",
            "tok",
            "many",
            evidence=many,
            locations=[Location("a.log", n) for n in range(1, 30)],
        )
    ]
    short = render("table", result)
    assert "key 05" in short and "key 06" not in short
    assert "(+12 more)" in short and "4 more evidence entries" in short
    long = render("table", result, ReportOptions(verbose=True))
    assert "key 09" in long and "(+19 more)" in long  # locations capped at 10


def test_reporters_never_touch_the_filesystem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in REPORTERS:
        render(name, suppressed_result())
    assert list(tmp_path.iterdir()) == []


def _ids(document: dict[str, Any]) -> list[str]:
    return [item["id"] for item in document["findings"]]


def test_records_not_audited_show_in_every_report() -> None:
    """From a review: a record rejected for one stray character (an attacker's user agent)
    left every report clean: no SARIF notification, "✅ no findings" in Markdown, nothing in
    JUnit; only stderr and `inputs[].rejected` told. Every report says so now."""
    result = empty_result()
    result.inputs = [
        {"source": "a.jsonl", "kind": "events", "loaded": 5, "rejected": 2, "error": None},
        {"source": "b.json.gz", "kind": "events", "error": "truncated or corrupt gzip data"},
    ]
    note = "2 records rejected, 1 file unreadable: not audited"
    assert note in render("table", result)
    markdown = render("markdown", result)
    assert markdown.startswith("## ⚠️ m2maudit: no findings") and note in markdown
    assert "`a.jsonl` (2 rejected)" in markdown
    sarif = json.loads(render("sarif", result))["runs"][0]
    notes = sarif["invocations"][0]["toolExecutionNotifications"]
    assert {"level": "warning", "message": {"text": note}} in notes
    assert sarif["properties"]["summary"]["records_rejected"] == 2
    summary = json.loads(render("json", result))["summary"]
    assert (summary["records_rejected"], summary["files_unreadable"]) == (2, 1)
    junit = ET.fromstring(render("junit", result))
    inputs = next(c for c in junit.iter("testcase") if c.get("name") == "inputs")
    assert inputs.find("skipped").get("message") == note  # type: ignore[union-attr]
    assert junit.get("failures") == "0"  # shown, not failed: --strict is the gate
    clean = empty_result()
    assert "not audited" not in render("markdown", clean) + render("table", clean)


def test_policy_filters_show_in_reports() -> None:
    """A filtered run must not read as a clean one in any format (a trial found JUnit showing
    rules the filter left out as passed, and Markdown and SARIF silent about them)."""
    from m2maudit.policy import apply_policy

    result = full_result()
    apply_policy(result, min_severity="high")
    note = "3 findings left out by --min-severity high"
    document = json.loads(render("json", result))
    assert document["policy"]["filtered_out"] == 3
    left_out = document["policy"]["rules_left_out"]
    severity = {rule.id: rule.severity for rule in RULES}
    assert left_out and all(severity[rule] in ("medium", "low", "info") for rule in left_out)
    assert len(_ids(document)) == 3
    assert note in render("table", result)
    assert note in render("markdown", result).splitlines()[0]
    sarif = json.loads(render("sarif", result))["runs"][0]
    notes = sarif["invocations"][0]["toolExecutionNotifications"]
    assert {"level": "warning", "message": {"text": note}} in notes
    assert {
        note["associatedRule"]["id"]
        for note in notes
        if "left out" in note["message"]["text"] and "associatedRule" in note
    } == set(left_out)
    assert sarif["properties"]["summary"]["left_out"] == 3
    cases = ET.fromstring(render("junit", result)).iter("testcase")
    skipped = {case.get("name", "").split()[0]: case.find("skipped") for case in cases}
    # M2M403 is skipped for its own reason (no decoded tokens), as without a filter.
    marked = {rule for rule, mark in skipped.items() if mark is not None}
    assert marked == {*left_out, "M2M403", "inputs"}  # the inputs: 3 records rejected
    assert all(
        skipped[rule].get("message") == "left out by --min-severity high" for rule in left_out
    )


def test_no_filter_leaves_no_rule_out() -> None:
    from m2maudit.policy import apply_policy

    result = full_result()
    apply_policy(result)
    assert result.stats["policy"]["rules_left_out"] == []
    assert "left out" not in render("markdown", result) + render("sarif", result)
    assert "left out" not in render("junit", result)


def test_a_strict_failure_makes_the_sarif_run_unsuccessful() -> None:
    failure = "--strict: 13 records rejected, 0 files unreadable"
    sarif = json.loads(render("sarif", full_result(), ReportOptions(strict_failure=failure)))
    invocation = sarif["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert {"level": "error", "message": {"text": failure}} in (
        invocation["toolExecutionNotifications"]
    )
    plain = json.loads(render("sarif", full_result()))["runs"][0]["invocations"][0]
    assert plain["executionSuccessful"] is True


def test_a_strict_failure_shows_in_every_machine_format() -> None:
    """From a review: only SARIF said so; Markdown showed ✅ over a run that exits 2."""
    failure = "--strict: 1 record rejected, 0 files unreadable"
    options = ReportOptions(strict_failure=failure)
    clean = empty_result()
    heading = render("markdown", clean, options).splitlines()[0]
    assert heading.startswith("## ❌") and failure.replace("-", "") in heading.replace("-", "")
    assert render("markdown", clean).startswith("## ✅")
    assert json.loads(render("json", clean, options))["summary"]["strict_failure"] == failure
    assert json.loads(render("json", clean))["summary"]["strict_failure"] is None
    root = ET.fromstring(render("junit", clean, options))
    assert root.get("errors") == "1"
    errors = [
        case.find("error") for case in root.iter("testcase") if case.find("error") is not None
    ]
    assert [error.get("message") for error in errors if error is not None] == [failure]
    assert ET.fromstring(render("junit", clean)).get("errors") == "0"


def test_json_report_writes_one_finding_per_line() -> None:
    text = render("json", full_result())
    document = json.loads(text)
    finding_lines = [line for line in text.splitlines() if line.startswith('    {"id": ')]
    assert len(finding_lines) == len(document["findings"]) > 1
    assert [json.loads(line.rstrip(",")) for line in finding_lines] == document["findings"]


def test_json_report_without_findings_is_an_empty_list() -> None:
    assert json.loads(render("json", empty_result()))["findings"] == []


@pytest.mark.parametrize("items", [[], [{"a": "\u2028\n\x00items\x00"}, {"b": [1, 2]}]])
def test_one_item_a_line_cannot_be_hijacked_by_text_in_the_frame(items: list[Any]) -> None:
    """A custom rule's title may hold any text, even what looks like the placeholder."""
    from m2maudit.reporters.serialize import ITEMS, dumps_one_item_a_line

    frame = {"title": "\x00items\x00", "other": "m2maudit-items-0", "nested": {"list": ITEMS}}
    text = dumps_one_item_a_line(frame, items)
    assert json.loads(text) == {**frame, "nested": {"list": items}}
    assert all(json.dumps(item, ensure_ascii=False) in text for item in items)


# --- the terminal report's finding rows: laid out as rich's grid lays them out ----------

ROW_VALUES = [
    "short",
    "",
    "a value long enough to wrap over several lines of the narrow widths tried here, twice",
    "x" * 150,  # one word longer than any line: folded
    "line one\nline two, a little longer than the first",
    "東京の エージェント が 呼び出した API " * 4,  # wide characters take two cells each
    "tab\tseparated\tvalue",
]
ROW_LABELS = ["principal", "", "seen", "client credentials token", "東京", "at"]


def _row_sets(seed: int) -> list[tuple[str, Text]]:
    rng = random.Random(seed)
    return [
        (rng.choice(ROW_LABELS), Text(rng.choice(ROW_VALUES), style=rng.choice(["", "green"])))
        for _ in range(rng.randint(1, 8))
    ]


def _plain(renderable: Any, width: int) -> list[str]:
    from m2maudit.reporters.table import make_console

    console = make_console(ReportOptions(width=width))
    console.print(renderable)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [40, 61, 80, 132])
@pytest.mark.parametrize("seed", range(6))
def test_finding_rows_read_as_the_grid_lays_them_out(width: int, seed: int) -> None:
    from rich.padding import Padding

    from m2maudit.reporters.table import _grid, _Rows

    fast, grid = _Rows(), _grid()
    for label, value in _row_sets(seed):
        fast.add(label, value)
        grid.add_row(label, value)
    assert _plain(fast, width) == _plain(Padding(grid, (0, 0, 0, 2)), width)


@pytest.mark.parametrize("seed", range(6))
def test_finding_rows_too_narrow_for_a_label_put_each_value_under_it(seed: int) -> None:
    # Beside a 24-cell label, 24 columns leave no room: rich's grid would drop the values.
    from m2maudit.reporters.table import _Rows

    rows = _Rows()
    rows.add("client credentials token", Text("true"))
    for label, value in _row_sets(seed):
        rows.add(label, value)
    lines = _plain(rows, 24)
    assert all(len(line) <= 24 for line in lines)
    assert lines[:3] == ["  client credentials", "  token", "    true"]
    words = [word for _, value in rows.rows for word in value.plain.split()]
    assert all(word[:10] in "".join(lines) for word in words)


def test_finding_rows_with_a_label_on_two_lines_put_each_value_under_it() -> None:
    from m2maudit.reporters.table import _Rows

    rows = _Rows()
    rows.add("two\nlines", Text("the value"))
    rows.add("seen", Text("3 times"))
    assert _plain(rows, 40) == ["  two", "  lines", "    the value", "  seen", "    3 times"]


def test_markdown_marks_inputs_that_were_not_read() -> None:
    result = empty_result()
    result.inputs = [
        {"source": "a.jsonl", "kind": "events", "loaded": 3, "error": None, "skipped": None},
        {"source": "b.json.gz", "error": "truncated or corrupt gzip data", "skipped": None},
        {"source": "digest.json.gz", "error": None, "skipped": "a CloudTrail digest file"},
    ]
    text = render("markdown", result)
    assert "`a.jsonl`, `b.json.gz` (unreadable), `digest.json.gz` (skipped)" in text


def test_sarif_warns_when_github_would_reject_the_run() -> None:
    """GitHub code scanning rejects a run of more than 25 000 results: say so, with the
    way out, before the upload fails in CI."""
    from m2maudit.reporters.sarif import GITHUB_MAX_RESULTS

    rule = RULES[0]
    many = [finding(rule, f"agent-{n}", f"key-{n}", "m") for n in range(GITHUB_MAX_RESULTS + 1)]
    [warning] = get_reporter("sarif").warnings(make_result(many))
    assert warning.startswith(f"the SARIF report has {GITHUB_MAX_RESULTS + 1} results")
    assert "--min-severity" in warning
    assert get_reporter("sarif").warnings(make_result(many[:GITHUB_MAX_RESULTS])) == []
    assert get_reporter("json").warnings(make_result(many)) == []


def test_a_suppressed_finding_the_baseline_holds_is_unchanged_in_sarif() -> None:
    """Suppression wins for the gate; SARIF still says the baseline had it."""
    from m2maudit.policy import apply_policy
    from tests.reporting_fixtures import SUPPRESSIONS

    result = full_result()
    suppressed = next(f for f in result.findings if f.rule_id == "M2M201")
    apply_policy(result, suppressions=SUPPRESSIONS, baseline={suppressed.id: None})
    assert suppressed.suppressed and not suppressed.baselined
    document = json.loads(render("sarif", result, PLAIN))
    states = {
        r["ruleId"]: r["baselineState"]
        for r in document["runs"][0]["results"]
        if "suppressions" in r
    }
    assert states["M2M201"] == "unchanged"


def test_a_line_break_in_log_text_cannot_print_a_line_of_its_own(tmp_path: Path) -> None:
    """A principal `agent-z\\n\\nm2maudit: no findings` must not forge the summary line."""
    from typer.testing import CliRunner

    from m2maudit.cli import app

    forged = "m2maudit: no findings; 0 failing (--fail-on high)"
    log = tmp_path / "forge.jsonl"
    log.write_text(
        json.dumps(
            {
                "timestamp": "2026-11-01T00:00:00Z",
                "principal": f"agent-z\n\n{forged}\u001b[2J",
                "principal_type": "agent",
            }
        )
        + "\n"
    )
    result = CliRunner().invoke(app, ["scan", str(log), "--as-of", "2026-11-28T00:00:00Z"])
    lines = (result.stdout + result.stderr).splitlines()
    assert not any(line.strip().startswith("m2maudit: no findings") for line in lines)
    assert "\u001b[2J" not in result.stdout + result.stderr


def test_an_inventory_finding_is_not_said_to_be_seen_in_the_logs() -> None:
    """No call supports it: 'seen 1 time' would claim one. When the inventory says it was
    last used, that is shown (it was in JSON only)."""
    from dataclasses import replace

    rule = RULES[0]
    from_inventory = replace(finding(rule, "svc-a", "key-1", "key-1 is old"), first_seen=None)
    from_logs = finding(rule, "svc-b", "key-2", "key-2 is used", count=3)
    text = render("table", make_result([from_inventory, from_logs]))
    labels = [line.split()[0] for line in text.splitlines() if line.strip()]
    assert labels.count("seen") == 1 and "3 times, " in text
    [last] = [line.split() for line in text.splitlines() if line.split()[:2] == ["last", "seen"]]
    assert last == ["last", "seen", iso(from_inventory.last_seen)]


def test_a_finding_of_one_instant_is_seen_at_it_not_over_a_span() -> None:
    """'seen 1 time, T .. T' repeated the time as a range; one time is 'once'."""
    from dataclasses import replace

    rule = RULES[0]
    once = finding(rule, "svc-a", "key-1", "once", count=1)
    once = replace(once, last_seen=once.first_seen)
    span = finding(rule, "svc-b", "key-2", "span", count=3)
    text = render("table", make_result([once, span]))
    assert f" once, at {iso(once.first_seen)}" in text and "1 time" not in text
    assert f"3 times, {iso(span.first_seen)} .. {iso(span.last_seen)}" in text


def test_evidence_the_message_states_is_not_said_again() -> None:
    """M2M101's sample actions were printed twice: in its message, then as evidence. Only
    what the message's placeholders filled in is left out, not a value that happens to be
    part of it (`svc-report` in M2M304's list of principals, `deploy` in `agent-deploy`)."""
    from dataclasses import replace

    said = finding(RULES[0], "agent-a", "tok-1", "agent-a made 3 calls (e.g. GET /a, POST /b)")
    said = replace(
        said,
        evidence={
            "sample_actions": ["GET /a", "POST /b"],
            "principals": ["agent-a"],
            "minimal_scopes": ["read:a"],
        },
        stated=("sample_actions", "minimal_scopes"),
    )
    text = render("table", make_result([said]))
    assert text.count("GET /a, POST /b") == 1
    rows = [line.split() for line in text.splitlines()]
    assert ["principals", "agent-a"] in rows  # not a placeholder of the message: shown
    assert ["scopes", "to", "keep", "read:a"] in rows  # what to do keeps its line


def test_an_empty_list_of_evidence_reads_none() -> None:
    """M2M202's `used but not granted` showed an empty row, read as a value left out."""
    from m2maudit.reporters.table import evidence_items

    items = dict(evidence_items({"used_but_not_granted": [], "unused_scopes": ["a"]}, False))
    assert items == {"used but not granted": "none", "unused scopes": "a"}
