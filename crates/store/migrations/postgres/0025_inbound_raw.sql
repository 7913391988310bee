-- Raw messages in a table of their own: a message's status changes (processed, quarantined,
-- held, accepted) never touch its bytes.
CREATE TABLE inbound_raw (
    id UUID PRIMARY KEY REFERENCES inbound_messages(id),
    raw BYTEA NOT NULL
);
INSERT INTO inbound_raw (id, raw) SELECT id, raw FROM inbound_messages;
ALTER TABLE inbound_messages DROP COLUMN raw;
