-- The largest message each mailbox takes (50 MiB unless its admin says otherwise): larger
-- ones are kept, unread, in the quarantine, and their sender is told.
ALTER TABLE mailboxes ADD COLUMN max_message_bytes INTEGER NOT NULL DEFAULT 52428800;
