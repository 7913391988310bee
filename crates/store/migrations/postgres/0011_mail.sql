-- E-mail channel: mailboxes, every raw inbound message (stored before it is processed), the
-- de-duplication keys, Message-IDs known to belong to a ticket, per-instance secrets, bounces.
CREATE TABLE mailboxes (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL,
    imap_host TEXT,
    imap_port BIGINT,
    imap_security TEXT NOT NULL,
    imap_username TEXT,
    imap_password TEXT,
    imap_folder TEXT NOT NULL,
    poll_seconds BIGINT NOT NULL,
    after_processing TEXT NOT NULL,
    move_to TEXT,
    default_group_id UUID REFERENCES support_groups(id),
    default_category_id UUID REFERENCES categories(id),
    default_type TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE inbound_messages (
    id UUID PRIMARY KEY,
    mailbox_id UUID REFERENCES mailboxes(id),
    source TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    raw BYTEA NOT NULL,
    size BIGINT NOT NULL,
    message_id TEXT,
    dedup_key TEXT NOT NULL,
    from_address TEXT,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    automation TEXT,
    error TEXT,
    ticket_id UUID REFERENCES tickets(id),
    comment_id UUID REFERENCES comments(id),
    duplicate_of UUID REFERENCES inbound_messages(id),
    attempts BIGINT NOT NULL,
    processed_at BIGINT
);
CREATE INDEX inbound_messages_status ON inbound_messages(status, received_at);
CREATE INDEX inbound_messages_ticket ON inbound_messages(ticket_id);

-- One row per distinct message (Message-ID, or content hash without one): the first copy.
CREATE TABLE inbound_keys (
    dedup_key TEXT PRIMARY KEY,
    inbound_id UUID NOT NULL REFERENCES inbound_messages(id)
);

CREATE TABLE mail_threads (
    message_id TEXT PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX mail_threads_ticket ON mail_threads(ticket_id);

CREATE TABLE instance_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE email_bounces (
    address TEXT PRIMARY KEY,
    bounces BIGINT NOT NULL,
    last_bounce_at BIGINT NOT NULL
);
