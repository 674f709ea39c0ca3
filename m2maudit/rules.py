"""Rule files: loading and validating the YAML rule pack before anything runs.

A rule is data (Sigma-style): metadata, parameters with defaults, one SQL SELECT over the
canonical tables and views, a message template, and its own test cases. Every problem in every
file is collected, with file and line, so a rule author sees them all at once.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import yaml

from m2maudit.config import KEBAB_CASE, PROBLEMS, SEVERITIES
from m2maudit.errors import AuditError, first_line, shown, yaml_problem
from m2maudit.findings import RuleInfo
from m2maudit.timeutil import parse_instant
from m2maudit.wording import counted_as
from m2maudit.yamlsafe import compose_yaml, load_yaml

REQUIRED_KEYS = (
    "id",
    "name",
    "title",
    "problem",
    "severity",
    "confidence",
    "description",
    "remediation",
    "query",
    "message",
)
OPTIONAL_KEYS = (
    "status",
    "references",
    "owasp_nhi",
    "params",
    "requires",
    "tests",
    "falsepositives",
    "incident",
)
CONFIDENCES = ("low", "medium", "high")
STATUSES = ("stable", "test", "experimental", "deprecated")
REQUIRABLE = ("events", "credentials", "tokens")
# The tables a test case may fill: the canonical ones, and the records ingest rejected.
CASE_TABLES = (*REQUIRABLE, "ingest_errors")
TEST_KEYS = ("name", "as_of", "params", *CASE_TABLES, "expect", "expect_count")
# What an expected finding may say: the pair always, the message and evidence if given.
EXPECT_KEYS = ("principal", "token_id", "message", "evidence")
# Output columns every rule query must produce (design §6); any other column is evidence.
REQUIRED_COLUMNS = ("principal", "token_id", "count", "first_seen", "last_seen", "locations")
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*[0-9]{3}$")
_NAME = KEBAB_CASE
_PARAM = re.compile(r"^[a-z_][a-z0-9_]*$")
# `{column}`, or `{column|noun}` / `{column|noun|plural}`: the value then the noun, singular
# for 1 ("1 call", "3 calls").
_NOUN = r"[A-Za-z](?:[A-Za-z -]*[A-Za-z])?"
_PLACEHOLDER = re.compile(rf"\{{([A-Za-z_][A-Za-z0-9_]*)(?:\|({_NOUN})(?:\|({_NOUN}))?)?\}}")
# Readers of files and of the environment, and DuckDB's own catalog of settings and attached
# databases (the store's path, the secret directory): nothing a rule about credentials needs.
# External access is locked anyway; this says so on the rule's line instead of "table not
# found". Table references are judged on the parsed query (`_outside_tables`).
_FILE_READERS = re.compile(
    r"\b(read_\w+|glob|parquet_scan|parquet_metadata|sniff_csv|query_table|query|"
    r"sqlite_scan|postgres_scan|iceberg_scan|delta_scan|getenv|duckdb_settings|"
    r"duckdb_databases|duckdb_secrets|duckdb_extensions|current_setting)\s*\(",
    re.IGNORECASE,
)
# A table whose name is a path (`FROM '/etc/passwd'` reads the file), or one of DuckDB's
# catalog views (`FROM duckdb_databases` names the store's file).
_OUTSIDE_TABLE = re.compile(r"[^A-Za-z0-9_]|(?i:^(duckdb_|pragma_|pg_))")


@dataclass
class Rule:
    id: str
    name: str
    title: str
    problem: str
    severity: str
    confidence: str
    description: str
    remediation: str
    query: str
    message: str
    path: Path
    status: str = "stable"
    references: list[str] = field(default_factory=list)
    owasp_nhi: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    falsepositives: list[str] = field(default_factory=list)
    # Each call found is an incident (a use after revocation): a baseline covers the calls it
    # saw, not later ones. See `policy.apply_baseline`.
    incident: bool = False
    query_line: int = 1
    message_line: int = 1
    # The line of each test case, for errors that name the case.
    case_lines: list[int] = field(default_factory=list)
    # Named by id or name in the config's `select:`: run even when deprecated.
    selected_by_name: bool = False

    def case_where(self, index: int) -> str:
        """`file:line: case 'name'` of test case `index`, for an error about it."""
        line = self.case_lines[index] if index < len(self.case_lines) else 1
        case = self.tests[index] if index < len(self.tests) else None
        name = case.get("name") if isinstance(case, dict) else None
        return f"{self.path}:{line}: case {str(name or f'#{index + 1}')!r}"

    def info(self, severity: str | None = None) -> RuleInfo:
        return RuleInfo(
            id=self.id,
            name=self.name,
            title=self.title,
            problem=self.problem,
            severity=severity or self.severity,
            confidence=self.confidence,
            description=self.description.strip(),
            remediation=self.remediation.strip(),
            references=tuple(self.references),
            owasp_nhi=tuple(self.owasp_nhi),
            incident=self.incident,
        )


class RuleErrors(AuditError):
    """Every problem found in a set of rule files, one `file:line: message` per line.

    `loaded`: the rules that did load, so that a linter can go on checking those; `unbound`:
    those whose query was refused, never to be bound, whose test cases a linter still reads."""

    def __init__(
        self,
        errors: list[str],
        loaded: list[Rule] | None = None,
        unbound: list[Rule] | None = None,
    ) -> None:
        self.errors = errors
        self.loaded = loaded or []
        self.unbound = unbound or []
        more = (
            f" (and {len(errors) - 1} more: `m2maudit rules lint DIR` lists them all)"
            if len(errors) > 1
            else ""
        )
        super().__init__(errors[0] + more if errors else "invalid rules")


def default_pack_dir() -> Path:
    """The bundled rule pack: `rules/` beside the package in a checkout, else installed data."""
    package = Path(__file__).resolve().parent
    checkout = package.parent / "rules"
    if checkout.is_dir():
        return checkout
    return package / "rulepack"  # where a wheel puts `rules/` (see pyproject.toml)


def rule_files(directory: Path) -> list[Path]:
    """A rules directory's YAML files (or one rule file given itself); none at all is a
    mistyped path, not an empty pack."""
    if directory.is_file() and directory.suffix in (".yaml", ".yml"):
        return [directory]
    if directory.is_file():
        raise AuditError(f"{directory}: not a rules directory or a rule file (*.yaml)")
    if not directory.is_dir():
        raise AuditError(f"{directory}: rules directory not found")
    found = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not found:
        raise AuditError(f"{directory}: no rule files (*.yaml) in this directory")
    return found


def load_rules(directories: list[Path], include_pack: bool = True) -> list[Rule]:
    """Load and statically validate every rule; raise `RuleErrors` listing all problems."""
    dirs = ([default_pack_dir()] if include_pack else []) + list(directories)
    errors: list[str] = []
    rules: list[Rule] = []
    unbound: list[Rule] = []
    for directory in dirs:
        for path in rule_files(directory):
            rule, query_ok = load_rule_file(path, errors)
            if rule is not None:
                (rules if query_ok else unbound).append(rule)
    seen: dict[str, Rule] = {}  # by id in any case: a config names rules in any case
    kept: list[Rule] = []
    # A rule whose file has problems is still bound to the schema by `rules lint`, so that
    # one run lists every problem of the file.
    for rule in rules:
        first = seen.setdefault(rule.id.lower(), rule)
        if first is rule:
            kept.append(rule)
        elif not same_rule_file(first.path, rule.path):
            errors.append(f"{rule.path}:1: duplicate rule id {rule.id} (also in {first.path})")
        # else: the same rule read twice (one directory given twice, a copy of the pack): once.
    errors += name_clashes(kept, kept)
    kept.sort(key=lambda r: r.id)
    if errors:
        raise RuleErrors(errors, loaded=kept, unbound=unbound)
    return kept


def name_clashes(rules: list[Rule], others: list[Rule]) -> list[str]:
    """Rules whose name an earlier rule of `others` (another id) already has as its name, or
    in any case as its id. A config's `select`, `ignore`, `severity` and `params` may name a
    rule by id or name, in any case: `ignore: [x]` would silently drop both."""
    named: dict[str, Rule] = {}
    for other in others:
        named.setdefault(other.name, other)
        named.setdefault(other.id.lower(), other)
    return [
        f"{rule.path}:1: duplicate rule name {rule.name} (also {named[rule.name].id}, "
        f"{named[rule.name].path}); a config names rules by id or name, so pick another name"
        for rule in rules
        if rule.name in named and named[rule.name].id != rule.id
    ]


def same_rule_file(first: Path, second: Path) -> bool:
    """Whether two rule files hold the same bytes: the same rule, wherever it was copied."""
    return first.resolve() == second.resolve() or first.read_bytes() == second.read_bytes()


def load_rule_file(path: Path, errors: list[str]) -> tuple[Rule | None, bool]:
    """Parse one rule file, appending `file:line: problem` strings to `errors`.

    Returns the rule whenever it can be built (its required keys are there), other problems
    or not, and whether its query is one SELECT that reads no file: the caller fails on any
    error, and a linter goes on to bind such a query and to check every rule's cases."""
    try:
        text = path.read_text(encoding="utf-8")
        node = compose_yaml(text, fast=True)
        data = load_yaml(text, fast=True)
    except yaml.YAMLError as exc:
        reason, line = yaml_problem(exc)
        errors.append(f"{path}:{line or 1}: {reason}")
        return None, False
    except (OSError, UnicodeDecodeError) as exc:
        errors.append(f"{path}:1: cannot read rule file: {exc}")
        return None, False
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        errors.append(f"{path}:1: a rule file holds one YAML mapping")
        return None, False
    lines = {key.value: key.start_mark.line + 1 for key, _ in node.value}
    if not _check_keys(path, data, lines, errors):
        return None, False
    rule = Rule(
        id=str(data["id"]),
        name=str(data["name"]),
        title=str(data["title"]),
        problem=str(data["problem"]),
        severity=str(data["severity"]),
        confidence=str(data["confidence"]),
        description=str(data["description"]),
        remediation=str(data["remediation"]),
        query=str(data["query"]),
        message=str(data["message"]),
        path=path,
        status=str(data.get("status", "stable")),
        references=list(data.get("references") or []),
        owasp_nhi=list(data.get("owasp_nhi") or []),
        params=dict(data.get("params") or {}),
        requires=list(data.get("requires") or []),
        tests=list(data.get("tests") or []),
        falsepositives=list(data.get("falsepositives") or []),
        incident=data.get("incident") is True,
        query_line=lines.get("query", 1),
        message_line=lines.get("message", 1),
        case_lines=_case_lines(node),
    )
    _check_values(rule, lines, errors)
    # A query refused here is never run, not even to bind it: it is untrusted text, and
    # `SELECT ... FROM (<query>)` would run a second statement hidden in it.
    return rule, _check_query(rule, errors)


def _case_lines(node: yaml.MappingNode) -> list[int]:
    """The 1-based line of each item of the `tests` list."""
    for key, value in node.value:
        if key.value == "tests" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _check_keys(path: Path, data: dict[str, Any], lines: dict[str, int], errors: list[str]) -> bool:
    """Append the problems of the file's keys; False when the rule cannot be built."""
    for key in data:
        if key not in REQUIRED_KEYS and key not in OPTIONAL_KEYS:
            errors.append(f"{path}:{lines.get(str(key), 1)}: unknown key {key!r}")
    if "incident" in data and not isinstance(data["incident"], bool):
        errors.append(f"{path}:{lines.get('incident', 1)}: incident must be true or false")
    before = len(errors)
    for key in REQUIRED_KEYS:
        if key not in data:
            errors.append(f"{path}:1: missing required key {key!r}")
        elif not isinstance(data[key], str | int) or isinstance(data[key], bool):
            errors.append(f"{path}:{lines.get(key, 1)}: {key} must be text")
        elif not str(data[key]).strip():
            errors.append(f"{path}:{lines.get(key, 1)}: {key} is empty")
    for key in ("references", "owasp_nhi", "requires", "falsepositives", "tests"):
        if key in data and data[key] is not None and not isinstance(data[key], list):
            errors.append(f"{path}:{lines.get(key, 1)}: {key} must be a list")
    if "params" in data and data["params"] is not None and not isinstance(data["params"], dict):
        errors.append(f"{path}:{lines.get('params', 1)}: params must be a mapping")
    return len(errors) == before


def _check_values(rule: Rule, lines: dict[str, int], errors: list[str]) -> None:
    where = str(rule.path)

    def err(key: str, message: str) -> None:
        errors.append(f"{where}:{lines.get(key, 1)}: {message}")

    if not _ID.match(rule.id):
        err("id", f"id {rule.id!r} must look like M2M101")
    if not _NAME.match(rule.name):
        err("name", f"name {rule.name!r} must be kebab-case")
    expected_file = f"{rule.id}-{rule.name}"
    if rule.path.stem != expected_file:
        err("id", f"file must be named {expected_file}.yaml")
    beyond_five = rule.id.startswith("M2M6") or not rule.id.startswith("M2M")
    if rule.problem not in PROBLEMS and not (beyond_five and _NAME.match(rule.problem)):
        own = (
            " or, for this id, a kebab-case key of your own"
            if beyond_five
            else " (a key of your own, `exposure` among them, needs an id of M2M6xx or with a "
            "prefix of your own, such as ACME101)"
        )
        err("problem", f"problem must be one of {', '.join(PROBLEMS)}{own}")
    if rule.severity not in SEVERITIES:
        err("severity", f"severity must be one of {', '.join(SEVERITIES)}")
    if rule.confidence not in CONFIDENCES:
        err("confidence", f"confidence must be one of {', '.join(CONFIDENCES)}")
    if rule.status not in STATUSES:
        err("status", f"status must be one of {', '.join(STATUSES)}")
    for braced in re.findall(r"\{[^{}]*\}", rule.message):
        if not _PLACEHOLDER.fullmatch(braced):
            err(
                "message",
                f"message: {braced} is not a placeholder: write {{column}}, {{column|noun}} "
                "or {column|noun|plural} (a noun of letters, spaces and hyphens)",
            )
    if _unpaired_brace(rule.message):
        err("message", "message: a { or } without its pair; a placeholder is {column}")
    for name in rule.requires:
        if name not in REQUIRABLE:
            err("requires", f"requires: unknown table {name!r}; one of {', '.join(REQUIRABLE)}")
    for name, value in rule.params.items():
        if not isinstance(name, str) or not _PARAM.match(name):
            err("params", f"param name {name!r} must be snake_case")
        elif not _param_value_ok(value):
            err("params", f"param {name} must be a number, text, boolean or list of text")
    for index, case in enumerate(rule.tests):
        if not isinstance(case, dict):
            errors.append(f"{rule.case_where(index)}: a test case must be a mapping")
            continue
        for problem in case_problems(case):
            errors.append(f"{rule.case_where(index)}: {problem}")


def _unpaired_brace(message: str) -> bool:
    """Whether a `{` or `}` is left once the braced pairs are taken out, innermost first
    (`{{token_id}}` is a placeholder in braces, and prints `{key-1}`)."""
    left, previous = message, None
    while left != previous:
        left, previous = re.sub(r"\{[^{}]*\}", "", left), left
    return "{" in left or "}" in left


def case_problems(case: dict[str, Any]) -> list[str]:
    """What is wrong with the shape of one test case (its rows' columns, times and params
    are checked against the store by `ruletest.case_data_problems`)."""
    problems = []
    unknown = sorted(map(str, set(case) - set(TEST_KEYS)))
    if unknown:
        problems.append(f"unknown key(s) {', '.join(unknown)}")
    for key in (*CASE_TABLES, "expect"):
        rows = case.get(key)
        if rows is not None and not (
            isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
        ):
            problems.append(f"{key} must be a list of mappings")
    for number, expected in enumerate(case.get("expect") or []):
        if not isinstance(expected, dict):
            continue
        extra = sorted(map(str, set(expected) - set(EXPECT_KEYS)))
        if extra:
            problems.append(
                f"expect[{number}]: unknown key(s) {', '.join(extra)}; "
                f"one of {', '.join(EXPECT_KEYS)}"
            )
        if "evidence" in expected and not isinstance(expected["evidence"], dict):
            problems.append(f"expect[{number}]: evidence must be a mapping of column: value")
    count = case.get("expect_count")
    if "expect_count" in case and (isinstance(count, bool) or not isinstance(count, int)):
        problems.append(f"expect_count must be a whole number, got {shown(count)}")
    elif isinstance(count, int) and count < 0:
        problems.append(f"expect_count must be 0 or more (the one finding's count), got {count}")
    expected = case.get("expect")
    if "expect_count" in case and not (isinstance(expected, list) and len(expected) == 1):
        problems.append("expect_count is the count of one finding: give exactly one in expect")
    if "as_of" in case:
        try:
            case_clock(case["as_of"])
        except AuditError:
            problems.append(f"as_of must be an ISO 8601 time, got {shown(case['as_of'])}")
    return problems


def case_clock(value: Any) -> datetime:
    """A test case's `as_of`: YAML reads an unquoted time as a datetime, a quoted one as
    text. Lint and `rules test` both read it here, so lint passes what the test can run."""
    if isinstance(value, datetime):
        return parse_instant(value.isoformat())
    return parse_instant(str(value))


def _param_value_ok(value: Any) -> bool:
    if isinstance(value, bool | int | float | str):
        return True
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _check_query(rule: Rule, errors: list[str]) -> bool:
    """Append what is wrong with the query's text; False when it must not be run at all."""
    where = f"{rule.path}:{rule.query_line}"
    try:
        statements = duckdb.extract_statements(rule.query)
    except duckdb.Error as exc:
        errors.append(f"{where}: query does not parse: {first_line(exc)}")
        return False
    if len(statements) != 1:
        errors.append(
            f"{where}: query must be exactly one SELECT (found {len(statements)} statements)"
        )
        return False
    if statements[0].type != duckdb.StatementType.SELECT:
        errors.append(f"{where}: query must be a SELECT, not {statements[0].type.name}")
        return False
    reader = _FILE_READERS.search(rule.query)
    outside = reader.group(1) if reader else _outside_tables(rule.query)
    if outside:
        errors.append(
            f"{where}: query may not read files or the environment ({outside}); it reads "
            "only the canonical tables"
        )
        return False
    return True


def _outside_tables(query: str) -> str | None:
    """The first table the parsed query reads that is a file or DuckDB's catalog, if any."""
    row = _parser().execute("SELECT json_serialize_sql(?)", [query]).fetchone()
    tree = json.loads(row[0]) if row else {}
    names: list[str] = []
    _base_tables(tree, names)
    return next((shown(name) for name in names if _OUTSIDE_TABLE.search(name)), None)


@functools.cache
def _parser() -> duckdb.DuckDBPyConnection:
    """One in-memory connection to parse rule queries with (a connection costs 10 ms)."""
    return duckdb.connect()


def _base_tables(node: Any, names: list[str]) -> None:
    if isinstance(node, dict):
        if node.get("type") == "BASE_TABLE":
            names.append(str(node.get("table_name", "")))
        for value in node.values():
            _base_tables(value, names)
    elif isinstance(node, list):
        for value in node:
            _base_tables(value, names)


def message_fields(message: str) -> list[str]:
    return [match.group(1) for match in _PLACEHOLDER.finditer(message)]


def render_message(message: str, values: dict[str, Any]) -> str:
    """Fill `{column}` placeholders; no attribute access or format specs (rules are untrusted).

    `{count|call}` writes "1 call" or "3 calls", so that a message reads right for any count
    (`{count|time}`: "once", "3 times"); `{count|entry|entries}` names a plural that is not
    the noun plus "s".
    """

    def fill(match: re.Match[str]) -> str:
        column, noun, plural = match.groups()
        value = values.get(column)
        if noun is None:
            return _display(value)
        return counted_as(_display(value), value, noun, plural)

    return _PLACEHOLDER.sub(fill, message)


def _display(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_display(v) for v in value) if value else "none"
    if hasattr(value, "isoformat"):
        from m2maudit.timeutil import iso

        return str(iso(value))
    if isinstance(value, float):
        # Four significant digits, but never an exponent: "valid for 5e+04 h" read badly.
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return format(Decimal(f"{value:.4g}"), "f")
    return str(value)
