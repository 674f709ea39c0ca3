"""Shared views the rules read: the canonical tables joined and classified in one place.

Rules never read a vendor format and never write the same joins:

- `ev`: each event with its decoded token and who is behind it. A view: materialized, it
  was a second copy of every event with its token's claims (3.6 GB at 5 M events, which
  made DuckDB spill), while each rule reads a few of its columns.
- `ev_groups`: the same, for events grouped by everything but their time, action and trace
  or task id, with how many calls each group holds, their first and last time and first
  locations. Most rules count calls per principal and credential; reading a few tens of
  thousands of groups instead of millions of events is what keeps 29 rules from costing as
  much as reading the log. Rules that compare each call's time with something (expiry,
  revocation) or list its actions or tasks read `ev`.
- `usage` (per credential, what the logs show) and `cred` (the inventory with its usage).
- `principal_names`: for a principal the log also names by a stable id (an Okta or GitHub
  login, an Entra object, an IAM user or role) and that had several names, the latest.
  `ev` and `ev_groups` call it by that name, so a renamed login is one principal, not two
  sharing a credential.

Patterns come from the config and are written into the SQL as escaped literals, because
they must be fixed before the configuration is locked.
"""

from __future__ import annotations

import duckdb

from m2maudit.config import Config
from m2maudit.sources.sqlfrag import kind_by_name, regex_any
from m2maudit.timeutil import CLOCK_SKEW_SQL, LIFETIME_SKEW_SHARE
from m2maudit.tokens import claims_read_sql

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
        f"CREATE OR REPLACE TEMP MACRO m2m_kind(name) AS "
        f"{kind_by_name('name', config.name_kinds())}",
        # A name the patterns call an agent or a service and not a person's: human_patterns
        # first, for the default agent patterns match inside addresses (`j.tallman@...`).
        f"CREATE OR REPLACE TEMP MACRO m2m_machine_name(name) AS "
        f"NOT {regex_any('name', config.human_patterns)} "
        f"AND m2m_kind(name) IN ('agent', 'service')",
        # The platform's own daemons and managed roles (`infrastructure_patterns`): services
        # no person ever starts, which rules about people's delegation leave out.
        f"CREATE OR REPLACE TEMP MACRO m2m_infrastructure(name) AS "
        f"{regex_any('name', config.infrastructure_patterns)}",
        f"""CREATE OR REPLACE TEMP MACRO m2m_broad_scope(s) AS
            {regex_any("s", config.wildcard_scopes + config.admin_scopes)}""",
        # Which credential a call used: the inventory's id, else the token's jti, else
        # the token's fingerprint.
        """CREATE OR REPLACE TEMP MACRO m2m_credential(credential_id, token_fp, jti) AS
            coalesce(nullif(credential_id, token_fp), jti, token_fp)""",
        # An inventory principal's kind: as the inventory states it, else by its name.
        """CREATE OR REPLACE TEMP MACRO m2m_stated_kind(principal_type, principal) AS
            coalesce(nullif(principal_type, 'unknown'), m2m_kind(principal))""",
        f"""CREATE OR REPLACE TEMP MACRO m2m_static_type(t) AS
            coalesce(t IN ({static}), false)""",
        # The first few evidence locations, in a stable order, for any aggregate of events
        # and of `ev_groups` (whose `locations` hold each group's first five).
        """CREATE OR REPLACE TEMP MACRO m2m_locations(f, l) AS
            min({'file': f, 'line': l}, 5)""",
        # Distinct: a rule that unnests (one row per scope, say) repeats a group's locations.
        """CREATE OR REPLACE TEMP MACRO m2m_group_locations(locations) AS
            list_sort(list_distinct(flatten(list(locations))))[1:5]""",
        # A time as the reports write it (`2026-11-20T10:00:00Z`), for a message's text that
        # a rule composes itself: `coalesce('last used ' || m2m_iso(t), 'never used')`.
        # The distinct names of a group, sorted, without NULL (NULL for a group of none): the
        # `actors` of `usage`, and the principals a rule lists.
        """CREATE OR REPLACE TEMP MACRO m2m_names(name) AS
            list(DISTINCT name ORDER BY name) FILTER (WHERE name IS NOT NULL)""",
        # Who did something, for a message: `agent-a`, `3 principals (a, b, c)` (five named,
        # then `...`), or `no named principal`; from a list of distinct names.
        """CREATE OR REPLACE TEMP MACRO m2m_who(names) AS
            CASE coalesce(len(names), 0)
                WHEN 0 THEN 'no named principal'
                WHEN 1 THEN names[1]
                ELSE len(names) || ' principals (' || array_to_string(names[1:5], ', ')
                     || CASE WHEN len(names) > 5 THEN ', ...' ELSE '' END || ')'
            END""",
        # When a token was seen to be valid from: its issue time, or its first use when that is
        # earlier by more than a clock's skew (no `iat`, or one set in the future).
        f"""CREATE OR REPLACE TEMP MACRO m2m_seen_from(issued, first_use) AS
            CASE WHEN issued IS NULL OR first_use < issued - {CLOCK_SKEW_SQL}
                 THEN first_use ELSE issued END""",
        # Whether a granted scope covers a scope a call used: the same, or a wildcard grant
        # (`repo:*`) that matches it. A used `repo:read` does not leave `repo:*` unused.
        """CREATE OR REPLACE TEMP MACRO m2m_scope_covers(granted, used) AS
            granted = used OR (contains(granted, '*') AND used GLOB granted)""",
        # Whether any of a list of granted scopes covers a used one; the granted scopes no
        # used scope falls under.
        """CREATE OR REPLACE TEMP MACRO m2m_granted(grants, used) AS
            len(list_filter(grants, lambda g: m2m_scope_covers(g, used))) > 0""",
        """CREATE OR REPLACE TEMP MACRO m2m_unused_grants(grants, uses) AS
            list_filter(grants,
                        lambda g: len(list_filter(uses, lambda u: m2m_scope_covers(g, u))) = 0)""",
        # An inventory's credential that can still be used: active, and not past its
        # expiry (a key that expired last year is no rotation or dormancy risk).
        """CREATE OR REPLACE TEMP MACRO m2m_in_force(status, expires_at, as_of) AS
            status = 'active' AND (expires_at IS NULL OR expires_at > as_of)""",
        # A call made with an inventory's credential after it was revoked or disabled (at any
        # time, when the inventory gives no date): M2M406's, and so not M2M405's.
        """CREATE OR REPLACE TEMP MACRO m2m_after_revocation(status, revoked_at, ts) AS
            coalesce(status IN ('revoked', 'disabled') AND (revoked_at IS NULL OR ts > revoked_at),
                     false)""",
        # How far two clocks may disagree: a use 20 s after `exp` is the resource server's
        # clock, and Kubernetes adds a few seconds to a 1 h token's lifetime.
        f"CREATE OR REPLACE TEMP MACRO m2m_clock_skew() AS {CLOCK_SKEW_SQL}",
        # How many seconds a lifetime may exceed a limit of `limit_seconds` and be within it
        # (`timeutil.lifetime_allowance`).
        f"""CREATE OR REPLACE TEMP MACRO m2m_lifetime_allowance(limit_seconds) AS
            least(epoch(m2m_clock_skew()), limit_seconds / {LIFETIME_SKEW_SHARE})""",
        # An unsigned token (alg none, or no alg at all: the decoder says so; a token that is
        # not a JWT has no alg either, and is not this). Anyone can write its claims.
        """CREATE OR REPLACE TEMP MACRO m2m_unsigned(alg, decode_error) AS
            coalesce(lower(alg) = 'none'
                     OR contains(coalesce(decode_error, ''), 'no alg in header'), false)""",
        # Whether a token's claims were read, so that a NULL claim is missing or unusable (an
        # unsigned token's were): see claims_read_sql.
        f"CREATE OR REPLACE TEMP MACRO m2m_claims_read(decode_error) AS "
        f"{claims_read_sql('decode_error')}",
        # A credential for a message: `agent-a's api_key k1`, or without what is not known
        # (`api_key k1`, `agent-a's k1`, `k1`); a message template would print `-` for it. An
        # id that is its principal's name and a slot (an IAM credential report's
        # `arn:...:user/x#access_key_1`) is written as the slot after the name.
        """CREATE OR REPLACE TEMP MACRO m2m_whose(principal, credential_type, credential_id) AS
            coalesce(principal || '''s ', '') || coalesce(credential_type || ' ', '')
            || CASE WHEN starts_with(credential_id, principal || '#')
                    THEN substr(credential_id, length(principal) + 2) ELSE credential_id END""",
        """CREATE OR REPLACE TEMP MACRO m2m_iso(t) AS
            strftime(timezone('UTC', t::TIMESTAMPTZ), '%Y-%m-%dT%H:%M:%SZ')""",
        # An active access-key slot of an IAM credential report, which lists a user's slots,
        # not their key ids: such a user's key is matched by the user, not by its id.
        """CREATE OR REPLACE TEMP MACRO m2m_report_key(source_format, type, status) AS
            coalesce(source_format = 'iam-credential-report' AND type = 'aws_access_key'
                     AND status = 'active', false)""",
        # Keys minted for one session and gone within hours: an AWS STS key, a GitHub App
        # token (installation or user-to-server), a Vault token with a TTL (one per login;
        # a root token of TTL 0 never expires, and is judged as a key), a Kubernetes bound
        # service-account token (one `JTI=` per pod and refresh). A role that runs all day
        # holds dozens; no inventory lists them.
        """CREATE OR REPLACE TEMP MACRO m2m_session_key(credential_type, credential_id,
                                                         expires_at) AS
            coalesce(credential_type IN ('aws_session', 'github_app_token',
                                         'github_app_user_token')
                     OR (credential_type IN ('vault_token', 'vault_batch_token')
                         AND expires_at IS NOT NULL)
                     OR (credential_type = 'k8s_service_account_token'
                         AND starts_with(credential_id, 'JTI=')), false)""",
    ]


# The log's name for the caller: for a principal it also gives a stable id (`principal_id`),
# the latest name that id had (`principal_names`, `n`), so a login renamed mid-window is one
# principal, named as it is now.
_PRINCIPAL = "coalesce(n.name, e.principal)"
# Who acted: the log's name for the caller, else the token's, else the owner the inventory
# gives the credential (a call that names only its key is still someone's).
_NAMED = f"coalesce({_PRINCIPAL}, t.current_actor, t.client_id, t.sub)"
_ACTOR = f"coalesce({_NAMED}, o.owner)"

# Who and what is behind an event, from the event (`e`), its decoded token (`t`) and its
# credential's owner (`o`). `ev` derives it per event; `ev_groups` per group of events.
_IDENTITY = f"""
    {_ACTOR} AS actor,
    coalesce(nullif(e.principal_type, 'unknown'),
             CASE WHEN {_NAMED} IS NULL THEN o.owner_kind END,  -- as the inventory says
             m2m_kind({_ACTOR})) AS actor_kind,
    m2m_credential(e.credential_id, e.token_fp, t.jti) AS credential,
    -- What findings group by: per-request JWTs of one OAuth client are one credential, and
    -- so are the session keys a principal is issued one after another.
    CASE WHEN m2m_session_key(e.credential_type, e.credential_id, e.credential_expires_at)
              AND e.principal IS NOT NULL
         THEN e.credential_type || ':' || {_PRINCIPAL}
         ELSE coalesce(nullif(e.credential_id, e.token_fp),
                       'client:' || coalesce(t.client_id, t.azp), t.jti, e.token_fp)
    END AS credential_group,
    -- A log that names the caller as the person acted for (GitHub's OAuth tokens) names them
    -- as logged: by their latest name, as `actor` does. A machine named as the one acted
    -- for (a scheduler, another agent) is no human behind the call; a name shaped as a
    -- person's (an address: `claude.dupont@corp.com`) stays one whatever else it matches.
    coalesce(CASE WHEN e.on_behalf_of = e.principal THEN {_PRINCIPAL}
                  WHEN m2m_machine_name(e.on_behalf_of) THEN NULL
                  ELSE e.on_behalf_of END,
             CASE WHEN t.subject_kind = 'human' THEN t.sub END,
             CASE WHEN m2m_kind(e.act_chain[-1]) = 'human' THEN e.act_chain[-1] END,
             -- The log says the caller is a person (a console sign-in, an SSO session).
             CASE WHEN e.principal_type = 'human' THEN {_PRINCIPAL} END)
        AS human,
    coalesce(t.act_chain, e.act_chain) AS chain,
    t.decode_error AS token_error, t.sub AS token_sub, t.client_id AS token_client_id,
    t.subject_kind AS token_subject_kind, t.iat AS token_iat, t.exp AS token_exp,
    t.jti AS token_jti, t.aud AS token_aud, t.alg AS token_alg,
    -- An unsigned token's scopes are what anyone wrote in it: they grant nothing where the
    -- call was refused (M2M602 reports the token itself).
    CASE WHEN e.outcome = 'failure' AND m2m_unsigned(t.alg, t.decode_error) THEN NULL
         ELSE t.scope END AS token_scope
"""

# The columns of `events` that rules judge calls by: calls equal in all of them are one row
# of `ev_groups`. Per-call values (time, trace id, action, task) are left out; `traced`
# keeps whether a trace or session id was there. So are the scopes used, which only `usage`
# reads: as a key they would triple the groups and double the cost of building them.
_TRACED = "coalesce(trace_id, session_id) IS NOT NULL AS traced"
_GROUPED_BY = f"""
    source_format, principal, principal_id, principal_type, credential_id, credential_type,
    token_fp, on_behalf_of, act_chain, scopes_granted, outcome, credential_issued_at,
    credential_expires_at, leaked_secret, leaked_secret_fp, leaked_secrets, {_TRACED}
"""

# A login renamed has a few names in any window; more, and the id is not one principal's.
MAX_NAMES_OF_ONE_ID = 3

# How each view reaches the principal's latest name: joined, or (no id had two names, as in
# most estates) a constant, which spares `ev`'s readers a join per event.
_RENAMES = (
    "LEFT JOIN principal_names n "
    "ON n.source_format = e.source_format AND n.principal_id = e.principal_id"
)
_NO_RENAMES = "CROSS JOIN (SELECT NULL::VARCHAR AS name) n"
# How each view reaches the tables behind who acted: the token, the inventory's owner, the
# principal's latest name.
_IDENTITY_JOINS = f"""
    LEFT JOIN tokens t USING (token_fp)
    LEFT JOIN credential_owners o ON o.credential_id = e.credential_id
    {_RENAMES}
"""

# The tables the views join, built first.
TABLE_SQL = [
    # One owner per inventory id (an id listed twice must not double its calls), with the
    # kind of that same row.
    """
    CREATE OR REPLACE TEMP TABLE credential_owners AS
    SELECT credential_id, min(principal) AS owner,
           arg_min(m2m_stated_kind(principal_type, principal), principal) AS owner_kind
    FROM credentials
    WHERE principal IS NOT NULL GROUP BY credential_id
    """,
    # Only ids seen under more than one name: the table stays tiny, so joining every event
    # to it costs nothing. The latest name wins (ties: the greatest), whatever file it is in.
    # An id under many names is not a login renamed but an id that is not unique (AWS's
    # documentation examples reuse one for every user): those names stay apart.
    # A name another id (or a caller without one) also has is not taken: GitHub gives a
    # freed login to someone else, and two people must not become one.
    f"""
    CREATE OR REPLACE TEMP TABLE principal_names AS
    WITH latest AS (
        SELECT source_format, principal_id,
               -- Not the id itself, which a log gives where it has no name.
               arg_max(principal, {{'ts': ts, 'name': principal}})
                   FILTER (WHERE principal <> principal_id) AS name
        FROM events
        WHERE principal_id IS NOT NULL AND principal IS NOT NULL
        GROUP BY source_format, principal_id
        HAVING count(DISTINCT principal) > 1
           AND count(DISTINCT principal) FILTER (WHERE principal <> principal_id)
               BETWEEN 1 AND {MAX_NAMES_OF_ONE_ID}
    )
    SELECT * FROM latest l
    WHERE NOT EXISTS (
        SELECT 1 FROM events e
        WHERE e.source_format = l.source_format AND e.principal = l.name
          AND e.principal_id IS DISTINCT FROM l.principal_id)
    """,
]

VIEW_SQL = [
    f"""
    CREATE OR REPLACE TEMP VIEW ev AS
    SELECT e.*, {_IDENTITY}, {_TRACED}
    FROM events e {_IDENTITY_JOINS}
    """,
    # Most rules count calls per principal and credential: they read these groups, tens of
    # times fewer rows than events, where each reading `ev` would scan and join every event.
    f"""
    CREATE OR REPLACE TEMP TABLE ev_groups AS
    SELECT e.*, {_IDENTITY}
    FROM (
        SELECT {_GROUPED_BY},
            count(*) AS calls, min(ts) AS first_ts, max(ts) AS last_ts,
            min({{'file': source_file, 'line': source_line}}, 5) AS locations
        FROM events
        GROUP BY ALL
    ) e {_IDENTITY_JOINS}
    """,
    """
    CREATE OR REPLACE TEMP TABLE usage AS
    WITH calls AS (
        SELECT credential,
            sum(calls)::BIGINT AS calls,
            min(first_ts) AS first_ts, max(last_ts) AS last_ts,
            m2m_names(actor) AS actors
        FROM ev_groups
        WHERE credential IS NOT NULL
        GROUP BY credential
    ),
    scopes AS (
        -- The distinct lists first (a credential uses few), then their scopes.
        SELECT m2m_credential(s.credential_id, s.token_fp, t.jti) AS credential,
            nullif(list_sort(list_distinct(flatten(list(s.scopes_used)))), []) AS scopes_used
        FROM (SELECT DISTINCT credential_id, token_fp, scopes_used FROM events
              WHERE scopes_used IS NOT NULL) s
        LEFT JOIN tokens t USING (token_fp)
        GROUP BY 1
    )
    SELECT c.*, s.scopes_used FROM calls c LEFT JOIN scopes s USING (credential)
    """,
    # The inventory with its use in the logs: by the credential's id, else (which scopes
    # were used is not known then) by the two kinds of inventory row no call names.
    """
    CREATE OR REPLACE TEMP TABLE cred AS
    -- An OAuth client's secret listed by its client id: the calls are made with the
    -- client's tokens (`client:<id>` groups), never with the secret's id.
    WITH client_usage AS (
        SELECT substr(credential_group, 8) AS client_id,
            sum(calls)::BIGINT AS calls, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
            m2m_names(actor) AS actors
        FROM ev_groups
        WHERE starts_with(credential_group, 'client:')
        GROUP BY 1
    ),
    -- An IAM credential report lists key slots, not key ids: a user's one active key is
    -- the key the user's calls were made with (two active keys cannot be told apart).
    sole_report_keys AS (
        SELECT principal FROM credentials WHERE m2m_report_key(source_format, type, status)
        GROUP BY principal HAVING count(*) = 1
    ),
    report_usage AS (
        SELECT principal AS user_arn, sum(calls)::BIGINT AS calls, min(first_ts) AS first_ts,
            max(last_ts) AS last_ts, m2m_names(actor) AS actors
        FROM ev_groups
        WHERE credential_type = 'aws_access_key'
          AND principal IN (SELECT principal FROM sole_report_keys)
        GROUP BY 1
    ),
    matched AS (
        SELECT c.*, coalesce(u.calls, cu.calls, ru.calls) AS calls,
            coalesce(u.first_ts, cu.first_ts, ru.first_ts) AS first_ts,
            coalesce(u.last_ts, cu.last_ts, ru.last_ts) AS last_ts,
            coalesce(u.actors, cu.actors, ru.actors) AS actors, u.scopes_used
        FROM (
            SELECT *, coalesce(m2m_report_key(source_format, type, status)
                               AND principal IN (SELECT principal FROM sole_report_keys), false)
                          AS sole_report_key
            FROM credentials
        ) c
        LEFT JOIN usage u ON u.credential = c.credential_id
        LEFT JOIN client_usage cu ON cu.client_id = c.credential_id AND u.credential IS NULL
        LEFT JOIN report_usage ru ON ru.user_arn = c.principal AND u.credential IS NULL
            AND c.sole_report_key
    )
    SELECT m.* EXCLUDE (calls, first_ts, last_ts, actors, scopes_used),
        m2m_stated_kind(m.principal_type, m.principal) AS kind,
        m.calls, m.first_ts AS first_seen_in_logs, m.last_ts AS last_seen_in_logs,
        m.actors, coalesce(m.scopes_used, []) AS used_scopes,
        greatest(m.last_used_at, m.last_ts) AS last_used
    FROM matched m
    """,
]


def create_views(con: duckdb.DuckDBPyConnection, config: Config) -> None:
    """Build the macros and shared tables every rule reads."""
    for sql in [*macro_sql(config), *TABLE_SQL]:
        con.execute(sql)
    renamed = con.execute("SELECT count(*) > 0 FROM principal_names").fetchone()
    for sql in VIEW_SQL:
        con.execute(sql if renamed and renamed[0] else sql.replace(_RENAMES, _NO_RENAMES))
