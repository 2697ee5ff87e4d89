-- Chat adapters' bookkeeping: deliveries already handled (Slack retries events) and which chat
-- message presents which approval request (reactions and in-place updates find it).
CREATE TABLE chat_events (
    platform    TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (platform, event_id)
);

CREATE TABLE chat_messages (
    platform   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    ts         TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (platform, channel, ts)
);
CREATE INDEX chat_messages_by_request ON chat_messages (platform, request_id);
