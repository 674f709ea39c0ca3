"""The canonical columns adapters fill: the one list both the loaders and the store agree on.

They mirror `schema.sql` (less the bookkeeping columns ingest adds: source format, file, line
and record key).
"""

EVENT_COLUMNS = (
    "ts",
    "principal",
    "principal_id",
    "principal_type",
    "client_id",
    "credential_id",
    "credential_type",
    "token_fp",
    "on_behalf_of",
    "act_chain",
    "action",
    "resource",
    "scopes_used",
    "scopes_granted",
    "outcome",
    "status",
    "source_ip",
    "user_agent",
    "trace_id",
    "session_id",
    "task_id",
    "credential_issued_at",
    "credential_expires_at",
    "leaked_secret",
    "leaked_secret_fp",
    "leaked_secrets",
)
# The event columns that describe a call rather than name who made it: free text, which a
# log may fill with anything (a request body, `{"code": 200}`), so any of them may hold a
# secret to cut out.
CALL_TEXT_COLUMNS = (
    "action",
    "resource",
    "status",
    "source_ip",
    "user_agent",
    "trace_id",
    "session_id",
    "task_id",
)
CREDENTIAL_COLUMNS = (
    "credential_id",
    "type",
    "principal",
    "principal_type",
    "owner",
    "scopes",
    "created_at",
    "last_rotated_at",
    "expires_at",
    "last_used_at",
    "status",
    "revoked_at",
    "principal_status",
    "environment",
)
