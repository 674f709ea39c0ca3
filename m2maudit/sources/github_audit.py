"""GitHub audit log (organization or enterprise: REST API, export, or audit-log streaming).

`actor` is the account that acted; when the call used a token or key, GitHub adds how it
authenticated (`programmatic_access_type`), which token (`token_id`, `hashed_token`: the
base64 SHA-256 of the token) and, for classic tokens, its scopes (`token_scopes`). Times are
epoch milliseconds (`@timestamp`, `created_at`). See docs/formats/github-audit.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

from m2maudit.config import Config
from m2maudit.sources import sqlfrag as q
from m2maudit.sources.base import Kind, LoadContext, Sample
from m2maudit.sources.staging import StagedLoad, map_records

FIELDS = q.JsonFields(
    {
        # Panther's normalised copy last, as the other adapters read it.
        "time": ("@timestamp", "created_at", "at_sign_timestamp", "timestamp", "p_event_time"),
        "actor": "actor",
        "actor_id": "actor_id",
        "actor_is_bot": "actor_is_bot",
        "actor_is_agent": "actor_is_agent",
        "action": "action",
        "access_type": "programmatic_access_type",
        "token_id": "token_id",
        "hashed_token": "hashed_token",
        "token_scopes": "token_scopes",
        "oauth_app": "oauth_application_id",
        "repo": ("repo", "repository"),
        "route": "route",
        "org": "org",
        "business": "business",
        "status_code": "status_code",
        "actor_ip": "actor_ip",
        "user_agent": "user_agent",
        "alert_number": "number",
        "secret_type": "secret_type",
    }
)

# GitHub's secret scanning reports a secret found in a repository with these actions; the
# alert is its repository and number.
SECRET_ALERT_ACTIONS = "secret_scanning_alert."

# programmatic_access_type, lower-cased -> our credential type. First match wins; the order
# matters ("Public Key (User/Deploy)" is an SSH key, not a deploy key for sure).
ACCESS_TYPES: tuple[tuple[str, str], ...] = (
    ("fine.grained", "github_pat_fine_grained"),
    ("personal.access.token|classic", "github_pat"),
    ("server.to.server|installation|^github_app$", "github_app_token"),
    ("user.to.server", "github_app_user_token"),
    ("oauth", "oauth_token"),
    ("public key|ssh", "github_ssh_key"),
    ("deploy", "github_deploy_key"),
)
APP_ACTING_ALONE = ("github_app_token", "github_deploy_key")
DELEGATED = ("github_app_user_token", "oauth_token")


class GitHubAuditAdapter(StagedLoad):
    name: ClassVar[str] = "github-audit"
    kind: ClassVar[Kind] = "events"
    description: ClassVar[str] = (
        "GitHub organization/enterprise audit log (API, export or stream; JSON lines or arrays)"
    )
    field_map: ClassVar[tuple[tuple[str, str], ...]] = (
        ("ts", "@timestamp, else created_at (epoch ms or ISO 8601), else Panther's p_event_time"),
        ("principal", "actor"),
        ("principal_id", "actor_id (a renamed login keeps it)"),
        (
            "principal_type",
            "agent when actor_is_agent is true (GitHub's AI agents); "
            "service (agent by the name before [bot]) for GitHub App server-to-server tokens "
            "and bots; service for deploy keys, GitHub itself (actor github), "
            "infrastructure_patterns and service_patterns; else human",
        ),
        ("client_id", "oauth_application_id"),
        ("credential_id", "token_id (when not 0), else the fingerprint of hashed_token"),
        (
            "credential_type",
            "programmatic_access_type: github_pat, github_pat_fine_grained, "
            "github_app_token, github_app_user_token, oauth_token, "
            "github_ssh_key, github_deploy_key; github_token when only the "
            "token is logged",
        ),
        ("token_fp", "hashed_token (base64 SHA-256 of the token) as m2maudit's fingerprint"),
        (
            "on_behalf_of",
            "actor, when an OAuth app or GitHub App user token acted for them (not when the "
            "actor is an AI agent: it acts for someone the log does not name)",
        ),
        ("action", "action"),
        (
            "resource",
            "repo (or repository), else route, else org, else business; "
            "secret_scanning_alert.*: repo#number",
        ),
        ("scopes_granted", "token_scopes (classic tokens)"),
        (
            "outcome / status",
            "status_code (api.request events); else unknown. "
            "secret_scanning_alert.*: status is the alert's secret_type",
        ),
        ("source_ip", "actor_ip"),
        ("user_agent", "user_agent"),
        ("trace_id", "not in the log (request_id names one request, not a task)"),
        ("leaked_secret", "secret patterns anywhere in the event"),
    )

    def detect(self, sample: Sample, config: Config) -> bool:
        return looks_like_github_audit(sample.first_record)

    def map_staged(self, ctx: LoadContext) -> None:
        map_records(
            ctx, _columns(ctx.config), _checks(), prelude=FIELDS.prelude(), leak_scope="rec"
        )


def _columns(config: Config) -> dict[str, str]:
    """Canonical columns as SQL over the staged records."""
    f = FIELDS
    access = f"lower({f.text('access_type')})"
    hashed = f.text("hashed_token")
    credential_kind = (
        "CASE WHEN "
        + " WHEN ".join(
            f"regexp_matches({access}, '{pattern}') THEN '{ours}'" for pattern, ours in ACCESS_TYPES
        )
        + (
            f" WHEN {access} IS NOT NULL THEN "
            f"trim(regexp_replace({access}, '[^a-z0-9]+', '_', 'g'), '_') "
            f"WHEN nullif({f.text('token_id')}, '0') IS NOT NULL OR {hashed} IS NOT NULL "
            f"THEN 'github_token' END"
        )
    )
    actor = f.text("actor")
    app_name = f"regexp_replace({actor}, '\\[bot\\]$', '')"
    app_kind = q.machine_kind(app_name, config.agent_patterns, config.infrastructure_patterns)
    secret_alert = f"coalesce(starts_with({f.text('action')}, '{SECRET_ALERT_ACTIONS}'), false)"
    return {
        "ts": f.timestamp("time"),
        "principal": actor,
        "principal_id": (
            f"CASE WHEN {actor} IS NOT NULL AND {f.text('actor_id')} NOT IN ('', '0') "
            f"THEN {f.text('actor_id')} END"
        ),
        "credential_type": credential_kind,
        "principal_type": (
            # GitHub's own word first: `actor_is_agent` marks its AI agents (Copilot).
            f"CASE WHEN {f.text('actor_is_agent')} = 'true' THEN 'agent' "
            # An app or a bot is a machine; an AI agent (`copilot-swe-agent[bot]`) by its name
            # without the `[bot]` GitHub gives every app (`secret-scanning[bot]` is none).
            f"WHEN credential_type = 'github_app_token' "
            f"OR {f.text('actor_is_bot')} = 'true' OR {actor} LIKE '%[bot]' "
            f"THEN {app_kind} "
            # A deploy key is a machine's, logged under the login that added it.
            "WHEN credential_type = 'github_deploy_key' THEN 'service' "
            # GitHub itself (secret scanning, Dependabot alerts), the platform's own daemons and
            # machine users named as services. Not agent_patterns for a login: it is a
            # person's handle, and `claude-martin` or `magenta-dev` would match them.
            f"WHEN lower({actor}) = 'github' "
            f"OR {q.matches_any([actor], config.infrastructure_patterns)} "
            f"OR {q.matches_any([actor], config.service_patterns)} THEN 'service' "
            f"WHEN {actor} IS NOT NULL THEN 'human' END"
        ),
        "client_id": f.text("oauth_app"),
        "token_fp": (
            f"CASE WHEN credential_type IN ('github_ssh_key', 'github_deploy_key') THEN NULL "
            f"{github_hash_to_fingerprint(hashed)} END"
        ),
        "credential_id": f"coalesce(nullif({f.text('token_id')}, '0'), token_fp, {hashed})",
        "raw_token": "NULL::VARCHAR",
        "on_behalf_of": (
            f"CASE WHEN credential_type IN {q.text_list(DELEGATED)} "
            f"AND {f.text('actor_is_agent')} IS DISTINCT FROM 'true' THEN {actor} END"
        ),
        "act_chain": "NULL::VARCHAR[]",
        "action": f.text("action"),
        # A secret-scanning alert is its repository and number: `org/repo#12`.
        "resource": (
            f"coalesce({f.text('repo')}, {f.text('route')}, {f.text('org')}, {f.text('business')})"
            f" || CASE WHEN {secret_alert} THEN coalesce('#' || {f.text('alert_number')}, '') "
            f"ELSE '' END"
        ),
        "scopes_used": "NULL::VARCHAR[]",
        "scopes_granted": q.json_string_list(f["token_scopes"]),
        # A secret-scanning alert has no status code; its secret's type (never the secret).
        "status": (
            f"CASE WHEN {secret_alert} THEN {f.text('secret_type')} "
            f"ELSE {f.text('status_code')} END"
        ),
        "outcome": q.outcome(f.text("status_code")),
        "source_ip": f.text("actor_ip"),
        "user_agent": f.text("user_agent"),
        # request_id names one request: it ties no task's calls together.
        "trace_id": "NULL::VARCHAR",
        "session_id": "NULL::VARCHAR",
        "task_id": "NULL::VARCHAR",
        "credential_issued_at": "NULL::TIMESTAMPTZ",
        "credential_expires_at": "NULL::TIMESTAMPTZ",
        **q.leak_columns(),
    }


def _checks() -> list[tuple[str, str]]:
    """(condition, reason) pairs: the first true one rejects the record."""
    f = FIELDS
    return [
        (f"NOT {f.present('time')}", "'missing @timestamp / created_at'"),
        (
            "ts IS NULL",
            "'unparseable @timestamp / created_at: ' || " + q.shown(f"{f['time']}::VARCHAR"),
        ),
        (q.is_composite(f["actor"]), "'field \"actor\" must be text'"),
        (q.is_composite(f["action"]), "'field \"action\" must be text'"),
        (
            q.bad_string_list(f["token_scopes"]),
            "'field \"token_scopes\" must be a list or a comma-separated string'",
        ),
        ("principal IS NULL AND credential_id IS NULL", "'no actor, token_id or hashed_token'"),
    ]


def github_hash_to_fingerprint(hashed: str) -> str:
    """WHEN-branches turning GitHub's `hashed_token` into m2maudit's own token fingerprint.

    GitHub logs SHA-256(token), base64 (or hex in some API answers); m2maudit's fingerprint
    is the first 16 hex digits of the same SHA-256, so a token pasted into m2maudit matches.
    """
    return (
        f"WHEN regexp_full_match({hashed}, '[0-9a-fA-F]{{64}}') THEN left(lower({hashed}), 16) "
        f"WHEN octet_length(try(from_base64({hashed}))) = 32 "
        f"THEN left(lower(hex(from_base64({hashed}))), 16)"
    )


def looks_like_github_audit(record: dict[str, Any] | None) -> bool:
    """A GitHub audit event: `action` and a text `actor`, with GitHub's own envelope fields."""
    if not isinstance(record, dict) or "class_uid" in record:
        return False
    if str(record.get("p_log_type", "")).lower().startswith("github."):
        return True
    envelope = {
        "@timestamp",
        "created_at",
        "at_sign_timestamp",
        "_document_id",
        "org",
        "repo",
        "business",
        "programmatic_access_type",
        "actor_id",
        "token_id",
        "hashed_token",
        "actor_location",
        "operation_type",
    }
    return (
        isinstance(record.get("action"), str)
        and "actor" in record
        and not isinstance(record.get("actor"), dict)
        and bool(envelope & set(record))
    )
