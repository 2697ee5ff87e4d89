-- Receipts: every command acknowledged to a chat platform, stored before the acknowledgement
-- and processed from here exactly once. The key (a request's signature, or an event's id) is
-- unique, which is also what refuses replays and counts redeliveries once.
CREATE TABLE receipts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    platform    TEXT NOT NULL,
    received_at TEXT NOT NULL,
    payload     TEXT NOT NULL,
    -- new -> processing -> done, or new -> done in one step (notes), or processing -> interrupted
    state       TEXT NOT NULL DEFAULT 'new',
    owner       TEXT,
    claimed_at  TEXT
);
CREATE INDEX receipts_by_state ON receipts (state, id);
CREATE INDEX receipts_by_age ON receipts (received_at);
