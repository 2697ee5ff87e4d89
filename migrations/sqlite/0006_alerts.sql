-- Alerts: which incident an alert (by fingerprint), an Alertmanager group (by group key) or a
-- person's label matcher (`/erlmcp attach-alert`) belongs to, with the last status and start
-- seen, so a repeated notification is not recorded twice. One key leads to one incident.
CREATE TABLE alert_links (
    key         TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL REFERENCES incidents (id),
    status      TEXT NOT NULL,
    starts_at   TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX alert_links_by_incident ON alert_links (incident_id);
