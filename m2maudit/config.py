"""The `.m2maudit.yaml` configuration: thresholds, patterns, field mapping, rule selection.

Unknown keys are errors, never silently ignored: a typo in a threshold must not quietly turn a
check off. The file is untrusted input and is read with a safe YAML loader (`yamlsafe`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from m2maudit.errors import AuditError, first_line, shown, yaml_problem
from m2maudit.timeutil import parse_duration
from m2maudit.yamlsafe import load_yaml

CONFIG_FILENAME = ".m2maudit.yaml"

PROBLEMS = (
    "missing-user-context",
    "broad-scopes",
    "stale-rotation",
    "long-lifetime",
    "untraceable-action",
)
# The key of the bundled M2M6xx rules, beyond the five: secrets in logs, unsigned tokens...
EXPOSURE = "exposure"
# Rule names, and the problem keys of one's own rules (M2M6xx or another prefix).
KEBAB_CASE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SEVERITIES = ("info", "low", "medium", "high", "critical")


def folded(names: Iterable[str]) -> set[str]:
    """Rule ids, names and problem keys as a config, a suppression or the command line may
    write them: in any case (`m2m406` is `M2M406`), as `rules show` takes them."""
    return {name.lower() for name in names}


# Canonical field names of the generic access log (design §4). The mapping section may rename
# any of them to a key or a dotted path of the user's own records.
GENERIC_LOG_FIELDS = (
    "timestamp",
    "principal",
    "principal_type",
    "client_id",
    "token_id",
    "authorization",
    "on_behalf_of",
    "action",
    "resource",
    "scopes",
    "status",
    "source_ip",
    "user_agent",
    "trace_id",
    "session_id",
    "task_id",
)

DEFAULT_WILDCARD_SCOPES = [r"\*", r"\*:\*", r".*:\*", r"\*:.*", r".*\.\*", r".*\.all", r"all"]
DEFAULT_ADMIN_SCOPES = [
    r"admin",
    r".*:admin",
    r"admin:.*",
    r".*\.admin",
    r"root",
    r"owner",
    r".*:write_all",
    r"sudo",
    r"superuser",
    r"full_access",
]
DEFAULT_HUMAN_PATTERNS = [
    r"[^@\s]+@[^@\s]+\.[^@\s]+",
    r"user:.*",
    r"users/.*",
    # Identity providers' opaque user ids, which tokens carry as `sub` and chains as their
    # root: Okta's (`00u` and 17 more; its apps are `0oa...`) and Auth0's (the strategy, `|`,
    # for an enterprise one the connection and `|`, then the id; a client's own token is
    # `<client id>@clients`).
    r"00u[0-9a-z]{17}",
    r"(?:auth0|google-oauth2|google-apps|github|samlp|waad|adfs|ad|office365|pingfederate"
    r"|oidc|okta|email|sms|windowslive|apple|linkedin|twitter|facebook)"
    r"\|[^|\s]+(?:\|[^|\s]+)?",
]
DEFAULT_AGENT_PATTERNS = [
    r".*agent.*",
    r".*\bbot\b.*",
    r".*-bot",
    r"bot-.*",
    r".*assistant.*",
    r".*copilot.*",
    r".*llm.*",
    r".*gpt.*",
    r".*claude.*",
]
DEFAULT_SERVICE_PATTERNS = [
    r"svc-.*",
    r".*-svc",
    r".*-service",
    r"service-.*",
    r"system:serviceaccount:.*",
    r".*\.gserviceaccount\.com",  # iam., and Google's own service agents: system., developer.
    r"arn:aws:iam::\d+:role/.*",
    r"arn:aws:sts::.*",
]
# Names that look like AI agents' but are the platform's own daemons: log shippers, monitoring,
# CI runners, config management, Google's service agents. Tried before `agent_patterns`.
DEFAULT_INFRASTRUCTURE_PATTERNS = [
    r".*\b(elastic|datadog|dd|amazon-ssm|ssm|newrelic|newrelic-infra|otel|opentelemetry|fleet"
    r"|consul|vault|puppet|jenkins|buildkite|azure-pipelines|vsts|teamcity|gitlab|splunk|wazuh"
    r"|falcon|zabbix|nagios|chef|salt|octopus|bamboo|kube|cloudwatch|google-cloud-ops"
    r"|stackdriver|sumo|logdna|fluent|filebeat)-agent\b.*",
    r".*\b(konnectivity|ip-masq|grafana|spire|instana|config|dynatrace-one|kube-state)-agent\b.*",
    # Security and monitoring vendors' agents, and CI runners (Terraform Cloud's `tfc-agent`).
    # Names only a vendor uses: a word an AI agent may be named by (`insight`, `defender`)
    # would hide that agent's findings.
    r".*\b(guardduty|clusterconnect|otel-collector|sysdig|lacework|nrk8s|crowdstrike"
    r"|sentinelone|qualys|tenable|nessus|rapid7|twistlock|trendmicro|eks-pod-identity|tfc"
    r"|cattle-cluster|cattle-node)-agent\b.*",
    r".*\b(omsagent|oneagent|cloudwatchagent\w*)\b.*",
    # CI's and dependency updaters' bots, by their whole name (after a path, before a domain):
    # `.*-bot` would make them AI agents, while `agent-ci-bot` is one.
    r"(.*[/:])?((ci|cicd|build|jenkins|gitlab|buildkite|circleci|travis|drone|teamcity)[-_]?bot"
    r"|dependabot|renovate(-bot)?|github-actions|snyk-bot)(\[bot\])?(@.*)?",
    # AWS-managed: service-linked roles, and the roles a vendor's integration assumes.
    r".*:(assumed-)?role/aws-service-role/.*",
    r".*\bAWSServiceRoleFor\w*.*",
    # The roles AWS's EKS documentation names; a role of one's own named after them
    # (`AmazonEKSPodIdentityResearchAgentRole`) is judged by its name.
    r".*\bAmazonEKS(Cluster|Node|AutoCluster|AutoNode|FargatePodExecution|PodIdentityAgent"
    r"|VPCCNI|EBSCSIDriver|EFSCSIDriver|LoadBalancerController)Role\b.*",
    r".*\b(Splunk|Datadog|NewRelic|Sumo|Lacework|Sysdig|Wiz|Orca|CrowdStrike)"
    r"(Agent|Integration|Access|Scanner|Security|Audit|ReadOnly)?Role\b.*",
    r"system:serviceaccount:kube-system:.*",  # the cluster's own add-ons
    r".*@system\.gserviceaccount\.com",
    r"service-\d+@.*\.gserviceaccount\.com",
]


@dataclass(frozen=True)
class Thresholds:
    rotation_days: int = 90
    dormant_days: int = 45
    max_token_lifetime: timedelta = timedelta(hours=1)
    max_credential_days: int = 90
    max_scopes: int = 10
    max_chain_depth: int = 4
    min_attribution: float = 0.95


@dataclass(frozen=True)
class Suppression:
    """One accepted risk: findings matching it are kept but marked suppressed."""

    rule: str | None
    problem: str | None
    principal: str | None
    credential: str | None
    reason: str
    owner: str | None = None
    ticket: str | None = None
    expires: date | None = None


@dataclass(frozen=True)
class Config:
    path: Path | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    wildcard_scopes: list[str] = field(default_factory=lambda: list(DEFAULT_WILDCARD_SCOPES))
    admin_scopes: list[str] = field(default_factory=lambda: list(DEFAULT_ADMIN_SCOPES))
    human_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_HUMAN_PATTERNS))
    agent_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_AGENT_PATTERNS))
    service_patterns: list[str] = field(default_factory=lambda: list(DEFAULT_SERVICE_PATTERNS))
    infrastructure_patterns: list[str] = field(
        default_factory=lambda: list(DEFAULT_INFRASTRUCTURE_PATTERNS)
    )
    mapping: dict[str, str] = field(default_factory=dict)
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    severity: dict[str, str] = field(default_factory=dict)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressions: list[Suppression] = field(default_factory=list)

    def name_kinds(self) -> list[tuple[str, list[str]]]:
        """The kinds a name is sorted into by pattern, in the order they are tried.

        One order for log principals, token subjects and the vendor adapters alike, so that a
        name is one kind everywhere. An AI agent often runs as a service account
        (`system:serviceaccount:ai:research-agent`): the agent in its name wins over the
        account's shape, unless the name is the platform's own daemon (`elastic-agent`).
        Services before people: service accounts are often e-mail shaped.
        """
        return [
            ("service", self.infrastructure_patterns),
            ("agent", self.agent_patterns),
            ("service", self.service_patterns),
            ("human", self.human_patterns),
        ]


_TOP_KEYS = {
    "thresholds",
    "wildcard_scopes",
    "admin_scopes",
    "human_patterns",
    "agent_patterns",
    "service_patterns",
    "infrastructure_patterns",
    "mapping",
    "select",
    "ignore",
    "severity",
    "params",
    "suppressions",
}
# One value, never a list: `$` then `.name`, `."quoted name"` or `[index]` steps.
_JSON_PATH = re.compile(r'\$(?:\.(?:"(?:[^"\\]|\\.)+"|[^."\[\]\s*$]+)|\[[0-9]+\])+')
_SUPPRESSION_KEYS = {
    "rule",
    "problem",
    "principal",
    "credential",
    "reason",
    "owner",
    "ticket",
    "expires",
}


# A config is a page or two of YAML; one of megabytes is the wrong file or an attack, and
# thousands of patterns would slow every name's classification.
MAX_CONFIG_BYTES = 1_000_000
# Patterns are spliced into the SQL that classifies every name: thousands of them made a
# scan of three events take a minute, and DuckDB refuses one too large to compile.
MAX_PATTERNS = 1_000
MAX_PATTERN_CHARS = 1_000
# The largest count or number of days a threshold takes: beyond it, DuckDB's 32-bit integers
# in the rules' date arithmetic overflow, and no real threshold is that large.
MAX_COUNT = 1_000_000


def find_config(explicit: str | Path | None, cwd: Path | None = None) -> Path | None:
    """`--config FILE` wins; else `.m2maudit.yaml` in the working directory, if any."""
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            raise AuditError(f"{explicit}: is a directory, not a config file")
        if not path.exists():  # a pipe (`-c <(make-config)`) or /dev/null is a config too
            raise AuditError(f"{explicit}: config file not found")
        return path
    # Named as the user would: reports name it, the same in every checkout.
    candidate = cwd / CONFIG_FILENAME if cwd else Path(CONFIG_FILENAME)
    return candidate if candidate.is_file() else None


def load_config(explicit: str | Path | None = None, cwd: Path | None = None) -> Config:
    path = find_config(explicit, cwd)
    if path is None:
        return Config()
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise AuditError(
                f"{path}: a config of {size:,} bytes; the limit is "
                f"{MAX_CONFIG_BYTES:,} (is this the right file?)"
            )
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        reason, line = yaml_problem(exc)
        raise AuditError(f"{path}:{line}: {reason}" if line else f"{path}: {reason}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path}: cannot read config: {exc}") from None
    if raw is None:
        return Config(path=path)
    return parse_config(raw, path)


def parse_config(raw: Any, path: Path | None = None) -> Config:
    where = str(path) if path else "config"
    mapping = _mapping(raw, where)
    unknown = _names(set(mapping) - _TOP_KEYS)
    if unknown:
        raise AuditError(f"{where}: unknown key(s): {', '.join(unknown)}")
    return Config(
        path=path,
        thresholds=_thresholds(mapping.get("thresholds") or {}, where),
        wildcard_scopes=_patterns(mapping, "wildcard_scopes", DEFAULT_WILDCARD_SCOPES, where),
        admin_scopes=_patterns(mapping, "admin_scopes", DEFAULT_ADMIN_SCOPES, where),
        human_patterns=_patterns(mapping, "human_patterns", DEFAULT_HUMAN_PATTERNS, where),
        agent_patterns=_patterns(mapping, "agent_patterns", DEFAULT_AGENT_PATTERNS, where),
        service_patterns=_patterns(mapping, "service_patterns", DEFAULT_SERVICE_PATTERNS, where),
        infrastructure_patterns=_patterns(
            mapping, "infrastructure_patterns", DEFAULT_INFRASTRUCTURE_PATTERNS, where
        ),
        mapping=_field_mapping(mapping.get("mapping") or {}, where),
        select=_string_list(mapping.get("select") or [], f"{where}: select"),
        ignore=_string_list(mapping.get("ignore") or [], f"{where}: ignore"),
        severity=_severity_overrides(mapping.get("severity") or {}, where),
        params=_params(mapping.get("params") or {}, where),
        suppressions=[
            _suppression(item, f"{where}: suppressions[{index}]")
            for index, item in enumerate(
                _list(mapping.get("suppressions") or [], f"{where}: suppressions")
            )
        ],
    )


def _names(keys: Any) -> list[str]:
    """Key names for a message. YAML keys may be numbers, booleans (`on:`) or null."""
    return sorted(str(key) for key in keys)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AuditError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise AuditError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise AuditError(f"{where}: expected a list of strings")
    return list(items)


def _patterns(raw: dict[str, Any], key: str, default: list[str], where: str) -> list[str]:
    if key not in raw:
        return list(default)
    patterns = _string_list(raw[key], f"{where}: {key}")
    if len(patterns) > MAX_PATTERNS:
        raise AuditError(
            f"{where}: {key}: {len(patterns):,} patterns; at most {MAX_PATTERNS:,} (each is "
            "tried on every name: join alternatives into one pattern)"
        )
    for pattern in patterns:
        if len(pattern) > MAX_PATTERN_CHARS:
            raise AuditError(
                f"{where}: {key}: a pattern of {len(pattern):,} characters; at most "
                f"{MAX_PATTERN_CHARS:,}"
            )
    with duckdb.connect() as con:
        for pattern in patterns:
            problem = _re2_problem(con, pattern)
            if problem:
                raise AuditError(
                    f"{where}: {key}: invalid regular expression {shown(pattern)}: {problem} "
                    "(patterns are RE2, as DuckDB runs them: no lookaround, no backreference)"
                )
    return patterns


def _re2_problem(con: duckdb.DuckDBPyConnection, pattern: str) -> str | None:
    """Why DuckDB's RE2, which runs the patterns, refuses this one. Python's `re` is not the
    judge: it takes a lookahead that failed the scan later as a database error."""
    try:
        con.execute("SELECT regexp_full_match('', ?, 'i')", [pattern])
    except duckdb.Error as exc:
        return first_line(exc).removeprefix("Invalid Input Error: ")  # it quotes the pattern
    return None


def _thresholds(raw: Any, where: str) -> Thresholds:
    values = _mapping(raw, f"{where}: thresholds")
    known = Thresholds.__dataclass_fields__
    unknown = _names(set(values) - set(known))
    if unknown:
        raise AuditError(f"{where}: thresholds: unknown key(s): {', '.join(unknown)}")
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        label = f"{where}: thresholds.{key}"
        if key == "max_token_lifetime":
            try:
                parsed[key] = parse_duration(value)
            except AuditError as exc:
                raise AuditError(f"{label}: {exc}") from None
            if parsed[key] <= timedelta(0):
                raise AuditError(f"{label}: expected a duration above zero, got {shown(value)}")
        elif key == "min_attribution":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise AuditError(f"{label}: expected a number between 0 and 1, got {shown(value)}")
            parsed[key] = float(value)
        else:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                raise AuditError(
                    f"{label}: expected a whole number from 0 to {MAX_COUNT:,}, got {shown(value)}"
                )
            parsed[key] = value
    return Thresholds(**parsed)


def _field_mapping(raw: Any, where: str) -> dict[str, str]:
    values = _mapping(raw, f"{where}: mapping")
    unknown = _names(set(values) - set(GENERIC_LOG_FIELDS))
    if unknown:
        raise AuditError(
            f"{where}: mapping: unknown field(s) {', '.join(unknown)}; "
            f"known: {', '.join(GENERIC_LOG_FIELDS)}"
        )
    for key, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise AuditError(f"{where}: mapping.{key}: expected a field name or dotted path")
        if value.startswith("$"):
            if not _JSON_PATH.fullmatch(value):
                raise AuditError(
                    f"{where}: mapping.{key}: {shown(value)} is not a JSON path like "
                    '$.a.b, $."a.b" or $.a[0]'
                )
        elif not all(value.split(".")):
            raise AuditError(
                f"{where}: mapping.{key}: {shown(value)} has an empty part between dots"
            )
    return dict(values)


def _severity_overrides(raw: Any, where: str) -> dict[str, str]:
    values = _mapping(raw, f"{where}: severity")
    _one_spelling(values, f"{where}: severity")
    for key, value in values.items():
        if value not in SEVERITIES:
            raise AuditError(
                f"{where}: severity.{key}: expected one of {', '.join(SEVERITIES)}, "
                f"got {shown(value)}"
            )
    return {str(key): str(value) for key, value in values.items()}


def _params(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    values = _mapping(raw, f"{where}: params")
    _one_spelling(values, f"{where}: params")
    return {str(rule): _mapping(items, f"{where}: params.{rule}") for rule, items in values.items()}


def _one_spelling(values: dict[Any, Any], where: str) -> None:
    """Rules are named in any case: `M2M201` and `m2m201` as two keys would name one rule
    twice, and which value won would depend on their order in the file."""
    seen: dict[str, str] = {}
    for key in map(str, values):
        first = seen.setdefault(key.lower(), key)
        if first != key:
            raise AuditError(
                f"{where}: {first!r} and {key!r} name the same rule (names are taken in any "
                "case); give it once"
            )


def _suppression(raw: Any, where: str) -> Suppression:
    item = _mapping(raw, where)
    unknown = _names(set(item) - _SUPPRESSION_KEYS)
    if unknown:
        raise AuditError(f"{where}: unknown key(s): {', '.join(unknown)}")
    reason = item.get("reason")
    if reason is not None and not isinstance(reason, str):  # `reason: yes` is YAML's true
        raise AuditError(
            f'{where}: reason: must be text, not {shown(reason)} (quote it: reason: "...")'
        )
    if reason is None or not reason.strip():
        raise AuditError(f"{where}: a suppression needs a 'reason'")
    if not item.get("rule") and not item.get("problem"):
        raise AuditError(f"{where}: a suppression names a 'rule' or a 'problem'")
    problem = item.get("problem")
    # In any case, as everywhere a rule is named; a rule's own key is checked per run.
    if problem and not KEBAB_CASE.match(str(problem).lower()):
        raise AuditError(
            f"{where}: unknown problem {shown(problem)} (one of {', '.join(PROBLEMS)}, "
            f"{EXPOSURE}, or the kebab-case key of a rule of your own)"
        )
    if not item.get("principal") and not item.get("credential"):
        raise AuditError(f"{where}: a suppression names a 'principal' or a 'credential' (a glob)")
    for key in ("rule", "problem", "principal", "credential", "owner", "ticket"):
        if key in item and not isinstance(item[key], str | int):
            raise AuditError(f"{where}: {key}: expected text")
    return Suppression(
        rule=_text(item.get("rule")),
        problem=_text(item.get("problem")),
        principal=_text(item.get("principal")),
        credential=_text(item.get("credential")),
        reason=reason.strip(),
        owner=_text(item.get("owner")),
        ticket=_text(item.get("ticket")),
        expires=_expiry(item.get("expires"), where),
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _expiry(value: Any, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:  # a date, or the day of a time (YAML times reach here as ISO 8601 text)
            return datetime.fromisoformat(value.strip()).date()
        except ValueError:
            pass
    raise AuditError(f"{where}: expires: not a date (YYYY-MM-DD): {shown(value)}")


def starter_config() -> str:
    """The commented `.m2maudit.yaml` that `m2maudit init` writes: every default, explained."""
    t = Thresholds()
    thresholds = [
        ("rotation_days", t.rotation_days, "static secrets older than this need rotating"),
        ("dormant_days", t.dormant_days, "active but unused this long = dormant"),
        ("max_token_lifetime", "1h", "exp - iat above this is too long (90s, 15m, 1h, 2d)"),
        (
            "max_credential_days",
            t.max_credential_days,
            "credential validity above this is too long",
        ),
        ("max_scopes", t.max_scopes, "more scopes than this on one credential"),
        ("max_chain_depth", t.max_chain_depth, "deepest allowed RFC 8693 act chain"),
        (
            "min_attribution",
            t.min_attribution,
            "agent actions tied to human+agent+credential+trace",
        ),
    ]
    lines = "\n".join(f"  {f'{name}: {value}':<26}# {note}" for name, value, note in thresholds)
    return f"""# m2maudit configuration. Every key is optional; unknown keys are an error.
thresholds:
{lines}

# Who is who: regular expressions (full match, case-insensitive) over principal names and
# scopes. A name is tried against infrastructure_patterns (a service), agent_patterns,
# service_patterns, then human_patterns. A list given here replaces the built-in one (see
# the README). In single quotes a backslash is the regex's own: '\\.' is a dot.
# agent_patterns: ['agent-.*', '.*-bot']
# service_patterns: ['svc-.*']
# infrastructure_patterns: ['.*\\bdatadog-agent\\b.*', 'elastic-agent']
# human_patterns: ['[^@]+@example\\.com']
# wildcard_scopes: ['\\*', '.*:\\*']
# admin_scopes: ['admin', 'root']

# Your access-log field names, if they differ from m2maudit's (dotted paths allowed).
# mapping:
#   timestamp: "@timestamp"
#   principal: client.name
#   authorization: headers.authorization

# Rule selection: ids, names or problem keys.
# select: [missing-user-context, broad-scopes]
# ignore: [M2M203]
# severity: {{M2M501: high}}
# params: {{M2M408: {{max_tasks_per_token: 5}}}}

# Accepted risks: kept in reports as suppressed, never silently dropped.
# suppressions:
#   - rule: M2M101
#     principal: agent-nightly-*
#     reason: batch agent with no requesting user, reviewed
#     owner: platform-team
#     ticket: SEC-123
#     expires: 2027-03-31
"""
