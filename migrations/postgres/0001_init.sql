-- erlmcp-bot schema, PostgreSQL.

CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    day             TEXT NOT NULL,
    day_seq         BIGINT NOT NULL,
    title           TEXT NOT NULL,
    severity        TEXT NOT NULL,
    status          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    drill           BOOLEAN NOT NULL,
    declared_by     TEXT NOT NULL,
    declared_at     TIMESTAMPTZ NOT NULL,
    acknowledged_at TIMESTAMPTZ,
    acknowledged_by TEXT,
    mitigated_at    TIMESTAMPTZ,
    resolved_at     TIMESTAMPTZ,
    closed_at       TIMESTAMPTZ,
    summary         TEXT,
    roles           TEXT NOT NULL DEFAULT '{}',
    version         BIGINT NOT NULL,
    -- The chain's length and last hash, so that cutting rows off the end is detected too.
    timeline_len    BIGINT NOT NULL DEFAULT 0,
    timeline_head   TEXT NOT NULL,
    UNIQUE (day, day_seq)
);
CREATE INDEX incidents_by_channel ON incidents (channel, declared_at);

CREATE TABLE timeline (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         BIGINT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    actor_id    TEXT NOT NULL,
    source      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);

-- Append-only: the application never updates or deletes timeline rows; the database refuses to.
-- (Tampering with the file itself is what the hash chain and `timeline verify` catch.)
CREATE FUNCTION timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'timeline is append-only: rows cannot be %', lower(TG_OP) || 'd';
END;
$$;
CREATE TRIGGER timeline_no_update_or_delete BEFORE UPDATE OR DELETE ON timeline
FOR EACH ROW EXECUTE FUNCTION timeline_append_only();

CREATE TABLE approval_requests (
    id             TEXT PRIMARY KEY,
    day            TEXT NOT NULL,
    day_seq        BIGINT NOT NULL,
    incident_id    TEXT NOT NULL REFERENCES incidents (id),
    channel        TEXT NOT NULL,
    requester_id   TEXT NOT NULL,
    requester_name TEXT NOT NULL,
    command        TEXT NOT NULL,
    playbook       TEXT NOT NULL,
    params         TEXT NOT NULL,
    severity       TEXT NOT NULL,
    plan_text      TEXT NOT NULL,
    plan_digest    TEXT NOT NULL,
    policy         TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    decided_at     TIMESTAMPTZ,
    decided_by     TEXT,
    reason         TEXT,
    UNIQUE (day, day_seq)
);
CREATE INDEX approval_requests_by_incident ON approval_requests (incident_id);
CREATE INDEX approval_requests_by_state ON approval_requests (state);

CREATE TABLE approvals (
    request_id    TEXT NOT NULL REFERENCES approval_requests (id),
    approver_id   TEXT NOT NULL,
    approver_name TEXT NOT NULL,
    digest        TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL,
    -- One person counts once.
    PRIMARY KEY (request_id, approver_id)
);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    day         TEXT NOT NULL,
    day_seq     BIGINT NOT NULL,
    -- A request runs at most once.
    request_id  TEXT NOT NULL UNIQUE REFERENCES approval_requests (id),
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    playbook    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    UNIQUE (day, day_seq)
);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE run_steps (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    idx             BIGINT NOT NULL,
    name            TEXT NOT NULL,
    action          TEXT NOT NULL,
    description     TEXT NOT NULL,
    changes_state   BOOLEAN NOT NULL,
    idempotent      BOOLEAN NOT NULL,
    timeout_seconds BIGINT NOT NULL,
    retries         BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ,
    result          TEXT,
    PRIMARY KEY (run_id, idx)
);
