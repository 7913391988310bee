-- Custom field definitions, time entries, ticket links and idempotency keys.
CREATE TABLE custom_fields (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    options TEXT NOT NULL,
    required INTEGER NOT NULL,
    ticket_types TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE time_entries (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    minutes INTEGER NOT NULL,
    note TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX time_entries_ticket ON time_entries(ticket_id, created_at);

-- kind 'parent': linked_id is the parent of ticket_id. 'related' is stored in both directions.
CREATE TABLE ticket_links (
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    linked_id TEXT NOT NULL REFERENCES tickets(id),
    kind TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, linked_id)
);
CREATE INDEX ticket_links_linked ON ticket_links(linked_id, kind);

CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL REFERENCES users(id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    target_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);
