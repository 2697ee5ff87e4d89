-- erlmcp-bot schema, SQLite. Timestamps are stored by sqlx as ISO-8601 text in UTC.
PRAGMA foreign_keys = ON;

CREATE TABLE incidents (
    id              TEXT PRIMARY KEY,
    day             TEXT NOT NULL,
    day_seq         INTEGER NOT NULL,
    title           TEXT NOT NULL,
    severity        TEXT NOT NULL,
    status          TEXT NOT NULL,
    channel         TEXT NOT NULL,
    drill           BOOLEAN NOT NULL,
    declared_by     TEXT NOT NULL,
    declared_at     TEXT NOT NULL,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    mitigated_at    TEXT,
    resolved_at     TEXT,
    closed_at       TEXT,
    summary         TEXT,
    roles           TEXT NOT NULL DEFAULT '{}',
    version         INTEGER NOT NULL,
    -- The chain's length and last hash, so that cutting rows off the end is detected too.
    timeline_len    INTEGER NOT NULL DEFAULT 0,
    timeline_head   TEXT NOT NULL,
    UNIQUE (day, day_seq)
);
CREATE INDEX incidents_by_channel ON incidents (channel, declared_at);

CREATE TABLE timeline (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
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
CREATE TRIGGER timeline_no_update BEFORE UPDATE ON timeline
BEGIN SELECT RAISE(ABORT, 'timeline is append-only: rows cannot be updated'); END;
CREATE TRIGGER timeline_no_delete BEFORE DELETE ON timeline
BEGIN SELECT RAISE(ABORT, 'timeline is append-only: rows cannot be deleted'); END;

CREATE TABLE approval_requests (
    id             TEXT PRIMARY KEY,
    day            TEXT NOT NULL,
    day_seq        INTEGER NOT NULL,
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
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    decided_at     TEXT,
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
    at            TEXT NOT NULL,
    -- One person counts once.
    PRIMARY KEY (request_id, approver_id)
);

CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    day         TEXT NOT NULL,
    day_seq     INTEGER NOT NULL,
    -- A request runs at most once.
    request_id  TEXT NOT NULL UNIQUE REFERENCES approval_requests (id),
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    playbook    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    state       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (day, day_seq)
);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE run_steps (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    idx             INTEGER NOT NULL,
    name            TEXT NOT NULL,
    action          TEXT NOT NULL,
    description     TEXT NOT NULL,
    changes_state   BOOLEAN NOT NULL,
    idempotent      BOOLEAN NOT NULL,
    timeout_seconds INTEGER NOT NULL,
    retries         INTEGER NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    result          TEXT,
    PRIMARY KEY (run_id, idx)
);
