-- E-mail channel: mailboxes, every raw inbound message (stored before it is processed), the
-- de-duplication keys, Message-IDs known to belong to a ticket, per-instance secrets, bounces.
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    imap_host TEXT,
    imap_port INTEGER,
    imap_security TEXT NOT NULL,
    imap_username TEXT,
    imap_password TEXT,
    imap_folder TEXT NOT NULL,
    poll_seconds INTEGER NOT NULL,
    after_processing TEXT NOT NULL,
    move_to TEXT,
    default_group_id TEXT REFERENCES support_groups(id),
    default_category_id TEXT REFERENCES categories(id),
    default_type TEXT NOT NULL,
    active INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE inbound_messages (
    id TEXT PRIMARY KEY,
    mailbox_id TEXT REFERENCES mailboxes(id),
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    raw BLOB NOT NULL,
    size INTEGER NOT NULL,
    message_id TEXT,
    dedup_key TEXT NOT NULL,
    from_address TEXT,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    automation TEXT,
    error TEXT,
    ticket_id TEXT REFERENCES tickets(id),
    comment_id TEXT REFERENCES comments(id),
    duplicate_of TEXT REFERENCES inbound_messages(id),
    attempts INTEGER NOT NULL,
    processed_at INTEGER
);
CREATE INDEX inbound_messages_status ON inbound_messages(status, received_at);
CREATE INDEX inbound_messages_ticket ON inbound_messages(ticket_id);

-- One row per distinct message (Message-ID, or content hash without one): the first copy.
CREATE TABLE inbound_keys (
    dedup_key TEXT PRIMARY KEY,
    inbound_id TEXT NOT NULL REFERENCES inbound_messages(id)
);

CREATE TABLE mail_threads (
    message_id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX mail_threads_ticket ON mail_threads(ticket_id);

CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE email_bounces (
    address TEXT PRIMARY KEY,
    bounces INTEGER NOT NULL,
    last_bounce_at INTEGER NOT NULL
);
