-- The canonical store: the contract between source adapters (which write it) and rules (which
-- read it). Every record row keeps the file and 1-based line it came from. Raw tokens and
-- secrets are never stored; `token_fp` is a SHA-256 prefix (see fingerprint.py).

CREATE TABLE IF NOT EXISTS m2maudit_meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per input file ingested, so ingesting the same content twice adds nothing.
CREATE TABLE IF NOT EXISTS ingested_files (
    content_sha256 VARCHAR PRIMARY KEY,
    source_file VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,              -- events | inventory
    records_read BIGINT NOT NULL,
    loaded BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    first_ts TIMESTAMPTZ,
    last_ts TIMESTAMPTZ,
    ingested_at TIMESTAMPTZ NOT NULL,
    by_record BOOLEAN                   -- read as a JSON document: source_line is a position
);

-- One API call made with a machine credential.
CREATE TABLE IF NOT EXISTS events (
    ts TIMESTAMPTZ NOT NULL,
    source_format VARCHAR NOT NULL,
    principal VARCHAR,
    principal_type VARCHAR,             -- agent | service | human | unknown; NULL: not stated
    client_id VARCHAR,
    credential_id VARCHAR,              -- inventory id, access key id, jti or a fingerprint
    credential_type VARCHAR,            -- e.g. jwt, api_key, aws_access_key, vault_token
    token_fp VARCHAR,                   -- fingerprint of a raw bearer token seen on the call
    on_behalf_of VARCHAR,               -- the human the call was made for, if the log says
    act_chain VARCHAR[],                -- delegation chain stated by the log, outermost first
    action VARCHAR,
    resource VARCHAR,
    scopes_used VARCHAR[],              -- scopes the call exercised
    scopes_granted VARCHAR[],           -- scopes/policies the credential held, if the log says
    outcome VARCHAR,                    -- success | failure | unknown
    status VARCHAR,                     -- the source's own status code or text
    source_ip VARCHAR,
    user_agent VARCHAR,
    trace_id VARCHAR,
    session_id VARCHAR,
    task_id VARCHAR,
    credential_issued_at TIMESTAMPTZ,   -- for non-JWT credentials whose issue time the log shows
    credential_expires_at TIMESTAMPTZ,
    leaked_secret VARCHAR,              -- kind of a secret seen in clear in the record, never it
    leaked_secret_fp VARCHAR,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    record_key UBIGINT NOT NULL,        -- content hash of the record, for de-duplication
    -- Every secret seen in clear in the record, each as kind:fingerprint (the first is
    -- leaked_secret). This column and the next are last: stores made before them have them
    -- added (store.py).
    leaked_secrets VARCHAR[],
    -- The log's stable id for the principal (Okta actor.id, GitHub actor_id, an Entra object
    -- id, CloudTrail's IAM unique id), when it gives one: names change (a login renamed), ids
    -- do not.
    principal_id VARCHAR
);

-- Decoded bearer tokens, one row per distinct token. Never the raw token.
CREATE TABLE IF NOT EXISTS tokens (
    token_fp VARCHAR PRIMARY KEY,
    decode_error VARCHAR,
    token_length INTEGER,
    alg VARCHAR,
    kid VARCHAR,
    typ VARCHAR,
    iss VARCHAR,
    sub VARCHAR,
    aud VARCHAR[],
    client_id VARCHAR,
    azp VARCHAR,
    scope VARCHAR[],
    iat TIMESTAMPTZ,
    nbf TIMESTAMPTZ,
    exp TIMESTAMPTZ,
    jti VARCHAR,
    act_chain VARCHAR[],
    chain_depth INTEGER,
    root_subject VARCHAR,
    current_actor VARCHAR,
    chain_has_cycle BOOLEAN,
    may_act VARCHAR[],
    chain_actor_not_allowed VARCHAR,
    has_cnf BOOLEAN,
    has_auth_time BOOLEAN,
    has_acr BOOLEAN,
    has_amr BOOLEAN,
    txn VARCHAR,
    req_wl VARCHAR,
    subject_kind VARCHAR,               -- client | agent | service | human | unknown
    claims_secrets VARCHAR[]            -- secrets in clear in the claims, each kind:fingerprint
);

-- The credential inventory.
CREATE TABLE IF NOT EXISTS credentials (
    credential_id VARCHAR NOT NULL,
    type VARCHAR,
    principal VARCHAR,
    principal_type VARCHAR,
    owner VARCHAR,
    scopes VARCHAR[],
    created_at TIMESTAMPTZ,
    last_rotated_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    status VARCHAR,                     -- active | revoked | disabled
    revoked_at TIMESTAMPTZ,
    principal_status VARCHAR,           -- active | decommissioned
    environment VARCHAR,
    source_format VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    record_key UBIGINT NOT NULL
);

-- Every rejected record or unreadable file, counted and shown; source_line 0 is the whole file.
CREATE TABLE IF NOT EXISTS ingest_errors (
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL,
    source_format VARCHAR,
    reason VARCHAR NOT NULL,
    -- Line 0 only: the file is a log (or most likely one), so a scan of the store alone that
    -- audited no call fails as the run that read it did (see cli.no_event_read).
    unreadable_log BOOLEAN,
    -- The secrets a rejected record holds in clear (as `events.leaked_secrets`): a record
    -- the audit cannot use still puts its secret in the log (M2M601).
    leaked_secrets VARCHAR[],
    -- Who a rejected event names (`events.principal`), when it was mapped: who logged the
    -- secret it holds. NULL for a line rejected before mapping (cut in half, not JSON).
    principal VARCHAR
);

-- What the last scan said, so a persisted database answers it.
CREATE TABLE IF NOT EXISTS findings (
    id VARCHAR NOT NULL,
    rule_id VARCHAR NOT NULL,
    rule_name VARCHAR,
    problem VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    confidence VARCHAR,
    title VARCHAR,
    message VARCHAR,
    principal VARCHAR,
    token_id VARCHAR,
    count BIGINT,
    first_seen TIMESTAMPTZ,
    last_seen TIMESTAMPTZ,
    evidence JSON,
    locations JSON,
    suppressed BOOLEAN,
    baselined BOOLEAN,
    as_of TIMESTAMPTZ NOT NULL
);

-- Short-lived credentials seen being issued (CloudTrail AssumeRole*/GetSessionToken, a
-- Kubernetes TokenRequest). Adapters copy each one's lifetime onto the events that used it,
-- whichever file came first (see sources/lifetimes.py).
CREATE TABLE IF NOT EXISTS issued_credentials (
    credential_id VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    issued_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    source_file VARCHAR NOT NULL,
    source_line BIGINT NOT NULL
);
