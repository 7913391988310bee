-- Core schema: people, groups, categories, tickets, conversation, history, API tokens, search.
-- Instants are INTEGER microseconds since the Unix epoch (UTC). Ids are UUID text.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    shares_tickets INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    organisation_id TEXT REFERENCES organisations(id),
    password_hash TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX users_organisation ON users(organisation_id);

CREATE TABLE support_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    support_level TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES support_groups(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members(user_id);

CREATE TABLE categories (
    id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES categories(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX categories_sibling_name ON categories(coalesce(parent_id, ''), name);

CREATE TABLE tickets (
    number INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    ticket_type TEXT NOT NULL,
    subject TEXT NOT NULL,
    description TEXT NOT NULL,
    requester_id TEXT NOT NULL REFERENCES users(id),
    organisation_id TEXT REFERENCES organisations(id),
    category_id TEXT REFERENCES categories(id),
    impact TEXT NOT NULL,
    urgency TEXT NOT NULL,
    priority INTEGER NOT NULL,
    priority_overridden INTEGER NOT NULL,
    status TEXT NOT NULL,
    pending_reason TEXT,
    group_id TEXT REFERENCES support_groups(id),
    assignee_id TEXT REFERENCES users(id),
    support_level TEXT NOT NULL,
    channel TEXT NOT NULL,
    tags TEXT NOT NULL,
    watchers TEXT NOT NULL,
    custom_fields TEXT NOT NULL,
    resolution_note TEXT,
    resolution_code TEXT,
    merged_into TEXT REFERENCES tickets(id),
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    first_response_at INTEGER,
    resolved_at INTEGER,
    closed_at INTEGER,
    last_requester_activity_at INTEGER,
    last_agent_activity_at INTEGER
);
CREATE INDEX tickets_status_priority ON tickets(status, priority, created_at);
CREATE INDEX tickets_group_status ON tickets(group_id, status);
CREATE INDEX tickets_assignee_status ON tickets(assignee_id, status);
CREATE INDEX tickets_requester ON tickets(requester_id);
CREATE INDEX tickets_organisation ON tickets(organisation_id);
CREATE INDEX tickets_created ON tickets(created_at);
CREATE INDEX tickets_updated ON tickets(updated_at);

CREATE TABLE ticket_tags (
    ticket_id TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (tag, ticket_id)
);
CREATE INDEX ticket_tags_ticket ON ticket_tags(ticket_id);

CREATE TABLE ticket_watchers (
    ticket_id TEXT NOT NULL REFERENCES tickets(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (user_id, ticket_id)
);
CREATE INDEX ticket_watchers_ticket ON ticket_watchers(ticket_id);

CREATE TABLE comments (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    author_id TEXT REFERENCES users(id),
    body TEXT NOT NULL,
    internal INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX comments_ticket ON comments(ticket_id, created_at);

CREATE TABLE ticket_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id TEXT NOT NULL REFERENCES tickets(id),
    actor_id TEXT REFERENCES users(id),
    at INTEGER NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX ticket_history_ticket ON ticket_history(ticket_id, id);
CREATE TRIGGER ticket_history_no_update BEFORE UPDATE ON ticket_history
BEGIN SELECT RAISE(ABORT, 'ticket history is immutable'); END;
CREATE TRIGGER ticket_history_no_delete BEFORE DELETE ON ticket_history
BEGIN SELECT RAISE(ABORT, 'ticket history is immutable'); END;

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

-- rowid = tickets.number. Internal notes live in their own column so requesters' searches
-- can be limited to what they may read.
CREATE VIRTUAL TABLE ticket_search USING fts5(
    subject, description, public_text, internal_text,
    tokenize = 'unicode61 remove_diacritics 2'
);
