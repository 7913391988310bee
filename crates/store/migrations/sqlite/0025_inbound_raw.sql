-- Raw messages in a table of their own: a message's status changes (processed, quarantined,
-- held, accepted) no longer rewrite its bytes, which SQLite does for any update of a row.
CREATE TABLE inbound_raw (
    id TEXT PRIMARY KEY REFERENCES inbound_messages(id),
    raw BLOB NOT NULL
);
INSERT INTO inbound_raw (id, raw) SELECT id, raw FROM inbound_messages;
ALTER TABLE inbound_messages DROP COLUMN raw;
