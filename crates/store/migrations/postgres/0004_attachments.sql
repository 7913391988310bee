-- Attachments: content-addressed blobs (stored once however often attached) and their uses.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    data BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE attachments (
    id UUID PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    comment_id UUID REFERENCES comments(id),
    internal BOOLEAN NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs(sha256),
    uploaded_by UUID REFERENCES users(id),
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_ticket ON attachments(ticket_id, created_at);
CREATE INDEX attachments_uploader ON attachments(uploaded_by, created_at);
