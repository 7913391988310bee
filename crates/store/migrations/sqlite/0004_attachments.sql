-- Attachments: content-addressed blobs (stored once however often attached) and their uses.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    comment_id TEXT REFERENCES comments(id),
    internal INTEGER NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    uploaded_by TEXT REFERENCES users(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX attachments_ticket ON attachments(ticket_id, created_at);
CREATE INDEX attachments_uploader ON attachments(uploaded_by, created_at);
