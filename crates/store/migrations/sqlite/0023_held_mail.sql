-- Mail that proves nothing about its sender is held on its ticket as an internal note until an
-- agent accepts or discards it: the note it is held as, and who decided and when.
ALTER TABLE inbound_messages ADD COLUMN held_note_id TEXT REFERENCES comments(id);
ALTER TABLE inbound_messages ADD COLUMN decided_by TEXT REFERENCES users(id);
ALTER TABLE inbound_messages ADD COLUMN decided_at INTEGER;
CREATE INDEX inbound_messages_held ON inbound_messages(held_note_id) WHERE held_note_id IS NOT NULL;
