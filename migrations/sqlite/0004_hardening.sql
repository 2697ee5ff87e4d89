-- Approver groups match platform user ids: keep which platform an approver's id belongs to.
ALTER TABLE approvals ADD COLUMN approver_platform TEXT;

-- Structured facts of an entry (requests, approvals, runs, steps), part of its hash, so the
-- tables can be held to the chain; and the keyed MAC of an entry (ERLMCP_TIMELINE_KEY).
ALTER TABLE timeline ADD COLUMN data TEXT;
ALTER TABLE timeline ADD COLUMN mac TEXT;
-- The keyed MAC of the chain's length and head, so cutting entries off needs the key too.
ALTER TABLE incidents ADD COLUMN timeline_head_mac TEXT;

-- The executor mode a request's plan was made for: it is approved where it will run so.
ALTER TABLE approval_requests ADD COLUMN mode TEXT;

-- `/erlmcp stop`: who asked a running run to stop before its next step.
ALTER TABLE runs ADD COLUMN stop_requested_by TEXT;
