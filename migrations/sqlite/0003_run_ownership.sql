-- Exactly once across processes: a run is owned by one process at a time, which holds a lease it
-- renews while it executes; another process takes the run over only after the lease expired.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until TEXT;
-- The executor mode the run was approved for: a simulated console never takes over a live run
-- (runs from before this column have none, and any executing process may continue them).
ALTER TABLE runs ADD COLUMN mode TEXT;
-- The last person who decided how a stopped run goes on (resume done|retry|abort).
ALTER TABLE runs ADD COLUMN decided_by TEXT;
ALTER TABLE runs ADD COLUMN decided_at TEXT;
CREATE INDEX runs_by_lease ON runs (state, lease_until);

-- A request to run a stopped, non-idempotent step again is itself a change with its approvals.
ALTER TABLE approval_requests ADD COLUMN retry_run TEXT;
ALTER TABLE approval_requests ADD COLUMN retry_step INTEGER;

-- Notices the periodic work sends (severity clock reminders and call-outs): each once, whichever
-- replica gets there first.
CREATE TABLE notices (
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    kind        TEXT NOT NULL,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (incident_id, kind)
);
