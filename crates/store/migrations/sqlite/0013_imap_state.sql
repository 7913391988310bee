-- What the IMAP poller remembers per mailbox: the folder's UIDVALIDITY and the highest UID
-- already stored (so a restart resumes, and a recreated folder is noticed), and how the
-- last poll went.
ALTER TABLE mailboxes ADD COLUMN imap_uidvalidity INTEGER;
ALTER TABLE mailboxes ADD COLUMN imap_last_uid INTEGER;
ALTER TABLE mailboxes ADD COLUMN last_poll_at INTEGER;
ALTER TABLE mailboxes ADD COLUMN last_error TEXT;
