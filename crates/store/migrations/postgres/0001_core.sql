-- Core schema: people, groups, categories, tickets, conversation, history, API tokens, search.
-- Instants are BIGINT microseconds since the Unix epoch (UTC), as in SQLite, so keyset cursors
-- and range filters share one code path.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organisations (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    shares_tickets BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation_id UUID REFERENCES organisations(id),
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_organisation ON users(organisation_id);

CREATE TABLE support_groups (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    support_level TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id UUID NOT NULL REFERENCES support_groups(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE categories (
    id UUID PRIMARY KEY,
    parent_id UUID REFERENCES categories(id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX categories_sibling_name ON categories(coalesce(parent_id::text, ''), name);

CREATE SEQUENCE ticket_number_seq START 1001;

CREATE TABLE tickets (
    number BIGINT NOT NULL UNIQUE DEFAULT nextval('ticket_number_seq'),
    id UUID PRIMARY KEY,
    ticket_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    requester_id UUID NOT NULL REFERENCES users(id),
    organisation_id UUID REFERENCES organisations(id),
    category_id UUID REFERENCES categories(id),
    impact TEXT NOT NULL,
    urgency TEXT NOT NULL,
    priority BIGINT NOT NULL,
    priority_overridden BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    pending_reason TEXT,
    group_id UUID REFERENCES support_groups(id),
    assignee_id UUID REFERENCES users(id),
    support_level TEXT NOT NULL,
    channel TEXT NOT NULL,
    tags TEXT NOT NULL,
    watchers TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    resolution_note TEXT,
    resolution_code TEXT,
    merged_into UUID REFERENCES tickets(id),
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    first_response_at BIGINT,
    resolved_at BIGINT,
    closed_at BIGINT,
    last_requester_activity_at BIGINT,
    last_agent_activity_at BIGINT,
    -- Internal notes only in search_all, so requesters' searches use search_public.
    search_public TSVECTOR NOT NULL DEFAULT ''::tsvector,
    search_all TSVECTOR NOT NULL DEFAULT ''::tsvector
);
CREATE INDEX tickets_status_priority ON tickets(status, priority, created_at);
CREATE INDEX tickets_group_status ON tickets(group_id, status);
CREATE INDEX tickets_assignee_status ON tickets(assignee_id, status);
CREATE INDEX tickets_requester ON tickets(requester_id);
CREATE INDEX tickets_organisation ON tickets(organisation_id);
CREATE INDEX tickets_created ON tickets(created_at);
CREATE INDEX tickets_updated ON tickets(updated_at);
CREATE INDEX tickets_search_public ON tickets USING GIN (search_public);
CREATE INDEX tickets_search_all ON tickets USING GIN (search_all);

CREATE TABLE ticket_tags (
    ticket_id UUID NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, ticket_id)
);
CREATE INDEX ticket_tags_ticket ON ticket_tags(ticket_id);

CREATE TABLE ticket_watchers (
    ticket_id UUID NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id),
    PRIMARY KEY (user_id, ticket_id)
);
CREATE INDEX ticket_watchers_ticket ON ticket_watchers(ticket_id);

CREATE TABLE comments (
    id UUID PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    author_id UUID REFERENCES users(id),
    body TEXT NOT NULL,
    internal BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX comments_ticket ON comments(ticket_id, created_at);

CREATE TABLE ticket_history (
    id BIGSERIAL PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets(id),
    actor_id UUID REFERENCES users(id),
    at BIGINT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX ticket_history_ticket ON ticket_history(ticket_id, id);
CREATE FUNCTION ticket_history_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'ticket history is immutable'; END $$;
CREATE TRIGGER ticket_history_no_change BEFORE UPDATE OR DELETE ON ticket_history
FOR EACH ROW EXECUTE FUNCTION ticket_history_immutable();

CREATE TABLE api_tokens (
    id UUID PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
