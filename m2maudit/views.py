"""Shared views the rules read: the canonical tables joined and classified in one place.

Rules never read a vendor format and never write the same joins: `ev` (events with their
decoded token and who is behind them), `usage` (per credential, what the logs show) and `cred`
(the inventory with its usage). `usage` and `cred` are small and materialized once. `ev` is
a view: materialized, it was a second copy of every event with its token's claims (3.6 GB
at 5 M events, which made DuckDB spill), while each rule reads a few of its columns, and
DuckDB computes only those, joining a few thousand tokens per rule.
Patterns come from the config and are written into the SQL as escaped literals, because
they must be fixed before the configuration is locked.
"""

from __future__ import annotations

import duckdb

from m2maudit.config import Config
from m2maudit.sources.sqlfrag import regex_any

# Long-lived secrets that do not expire by themselves (the `credential_type` vocabulary of
# docs/formats/README.md); rotation rules judge these.
STATIC_CREDENTIAL_TYPES = (
    "api_key",
    "aws_access_key",
    "gcp_service_account_key",
    "github_pat",
    "github_pat_fine_grained",
    "github_ssh_key",
    "github_deploy_key",
    "okta_api_token",
    "client_secret",
    "client_certificate",
    "static_token",
    "service_account_key",
    "bearer",
)


def macro_sql(config: Config) -> list[str]:
    static = ", ".join(f"'{t}'" for t in STATIC_CREDENTIAL_TYPES)
    return [
        f"""CREATE OR REPLACE TEMP MACRO m2m_kind(name) AS CASE
            WHEN name IS NULL THEN 'unknown'
            WHEN {regex_any("name", config.service_patterns)} THEN 'service'
            WHEN {regex_any("name", config.agent_patterns)} THEN 'agent'
            WHEN {regex_any("name", config.human_patterns)} THEN 'human'
            ELSE 'unknown' END""",
        f"""CREATE OR REPLACE TEMP MACRO m2m_broad_scope(s) AS
            {regex_any("s", config.wildcard_scopes + config.admin_scopes)}""",
        f"""CREATE OR REPLACE TEMP MACRO m2m_static_type(t) AS
            coalesce(t IN ({static}), false)""",
        # The first few evidence locations, in a stable order, for any aggregate.
        """CREATE OR REPLACE TEMP MACRO m2m_locations(f, l) AS
            min({'file': f, 'line': l}, 5)""",
    ]


VIEW_SQL = [
    """
    CREATE OR REPLACE TEMP VIEW ev AS
    SELECT e.*,
        coalesce(e.principal, t.current_actor, t.client_id, t.sub) AS actor,
        coalesce(nullif(e.principal_type, 'unknown'),
                 m2m_kind(coalesce(e.principal, t.current_actor, t.client_id, t.sub)))
            AS actor_kind,
        coalesce(nullif(e.credential_id, e.token_fp), t.jti, e.token_fp) AS credential,
        -- What findings group by: per-request JWTs of one OAuth client are one credential.
        coalesce(nullif(e.credential_id, e.token_fp), 'client:' || coalesce(t.client_id, t.azp),
                 t.jti, e.token_fp)
            AS credential_group,
        coalesce(e.on_behalf_of,
                 CASE WHEN t.subject_kind = 'human' THEN t.sub END,
                 CASE WHEN m2m_kind(e.act_chain[-1]) = 'human' THEN e.act_chain[-1] END)
            AS human,
        coalesce(t.act_chain, e.act_chain) AS chain,
        t.decode_error AS token_error, t.sub AS token_sub, t.client_id AS token_client_id,
        t.subject_kind AS token_subject_kind, t.iat AS token_iat, t.exp AS token_exp,
        t.jti AS token_jti, t.scope AS token_scope, t.aud AS token_aud, t.alg AS token_alg,
        coalesce(e.trace_id, e.session_id) IS NOT NULL AS traced
    FROM events e LEFT JOIN tokens t USING (token_fp)
    """,
    """
    CREATE OR REPLACE TEMP TABLE usage AS
    SELECT credential,
        count(*) AS calls,
        min(ts) AS first_ts, max(ts) AS last_ts,
        list(DISTINCT actor ORDER BY actor) FILTER (WHERE actor IS NOT NULL) AS actors,
        -- The distinct lists first (a credential uses few), then their scopes: one row a
        -- call, so a call with two scopes counts once and one with none still counts.
        nullif(list_sort(list_distinct(flatten(
            list(DISTINCT scopes_used) FILTER (WHERE scopes_used IS NOT NULL)))), [])
            AS scopes_used
    FROM ev
    WHERE credential IS NOT NULL
    GROUP BY credential
    """,
    """
    CREATE OR REPLACE TEMP TABLE cred AS
    SELECT c.*,
        coalesce(nullif(c.principal_type, 'unknown'), m2m_kind(c.principal)) AS kind,
        u.calls, u.first_ts AS first_seen_in_logs, u.last_ts AS last_seen_in_logs,
        u.actors, coalesce(u.scopes_used, []) AS used_scopes,
        greatest(c.last_used_at, u.last_ts) AS last_used
    FROM credentials c LEFT JOIN usage u ON u.credential = c.credential_id
    """,
]


def create_views(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Build the macros and shared tables every rule reads."""
    for sql in [*macro_sql(config), *VIEW_SQL]:
        con.execute(sql)
