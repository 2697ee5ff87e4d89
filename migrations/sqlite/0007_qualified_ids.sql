-- Chat ids carry their platform (`slack:C123`, `discord:…`, `console:alice`): ids are unique
-- only within a platform, and messages must be routed to the platform a channel belongs to.
-- Before this, every chat id was Slack's or the console's. `console` and `alertmanager` are no
-- chat channel and stay as they are. The timeline is append-only and keeps the bare ids it
-- recorded; the chain check accepts a bare recorded id for its migrated `slack:`/`console:` form.

UPDATE incidents SET channel = 'slack:' || channel
 WHERE channel NOT IN ('console', 'alertmanager') AND channel NOT LIKE '%:%';
UPDATE approval_requests SET channel = 'slack:' || channel
 WHERE channel NOT IN ('console', 'alertmanager') AND channel NOT LIKE '%:%';
UPDATE runs SET channel = 'slack:' || channel
 WHERE channel NOT IN ('console', 'alertmanager') AND channel NOT LIKE '%:%';

-- A requester acted where the request was made.
UPDATE approval_requests
   SET requester_id = CASE WHEN channel LIKE 'slack:%' THEN 'slack:' ELSE 'console:' END || requester_id
 WHERE requester_id NOT LIKE '%:%';

-- An approver's platform was kept beside the id (or, before that, is the request's).
UPDATE approvals
   SET approver_id = COALESCE(
           approver_platform,
           (SELECT CASE WHEN r.channel LIKE 'slack:%' THEN 'slack' ELSE 'console' END
              FROM approval_requests r WHERE r.id = approvals.request_id)
       ) || ':' || approver_id
 WHERE approver_id NOT LIKE '%:%';
UPDATE approvals
   SET approver_platform = substr(approver_id, 1, instr(approver_id, ':') - 1)
 WHERE approver_platform IS NULL;
