-- Custom field definitions, time entries, ticket links and idempotency keys.
CREATE TABLE custom_fields (
    id UUID PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    kind TEXT NOT NULL,
    options TEXT NOT NULL,
    required BOOLEAN NOT NULL,
    ticket_types TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE time_entries (
    id UUID PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    user_id UUID NOT NULL REFERENCES users(id),
    minutes BIGINT NOT NULL,
    note TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX time_entries_ticket ON time_entries(ticket_id, created_at);

-- kind 'parent': linked_id is the parent of ticket_id. 'related' is stored in both directions.
CREATE TABLE ticket_links (
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    linked_id UUID NOT NULL REFERENCES tickets(id),
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, linked_id)
);
CREATE INDEX ticket_links_linked ON ticket_links(linked_id, kind);

CREATE TABLE idempotency_keys (
    user_id UUID NOT NULL REFERENCES users(id),
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    target_id UUID NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, key)
);
