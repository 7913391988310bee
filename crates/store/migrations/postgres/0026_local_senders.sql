-- Mail from addresses without a dotted domain (cron and monitoring on the mail host) is
-- quarantined unless the mailbox names the user it opens tickets as.
ALTER TABLE mailboxes ADD COLUMN local_senders_as UUID REFERENCES users(id);
