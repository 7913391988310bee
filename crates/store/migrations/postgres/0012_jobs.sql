-- The durable job queue (outgoing mail first): claimed with a lease so that any number of
-- processes can work it; retried with backoff; `dead` when it gave up, with the reason.
CREATE TABLE jobs (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- What the job is about, for rate limits and look-ups (e.g. "ack:ann@example.org").
    topic TEXT,
    state TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    ticket_id UUID REFERENCES tickets(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs(state, run_at);
CREATE INDEX jobs_topic ON jobs(topic, created_at);
CREATE INDEX jobs_ticket ON jobs(ticket_id);
