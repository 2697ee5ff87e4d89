-- Chat adapters' bookkeeping: deliveries already handled (Slack retries events) and which chat
-- message presents which approval request (reactions and in-place updates find it).
CREATE TABLE chat_events (
    platform    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (platform, event_id)
);
CREATE INDEX chat_events_by_age ON chat_events (platform, received_at);

CREATE TABLE chat_messages (
    platform   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    ts         TEXT NOT NULL,
    request_id TEXT NOT NULL,
    -- The card's text, so it can be updated in place after a restart too.
    body       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (platform, channel, ts)
);
CREATE INDEX chat_messages_by_request ON chat_messages (platform, request_id);
