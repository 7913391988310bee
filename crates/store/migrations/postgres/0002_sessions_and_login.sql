-- Server-side, revocable sessions (the secret is stored only as a hash) and the login throttle.
CREATE TABLE sessions (
    id UUID PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

-- One row per throttled key (an account or an address): attempts in the current window.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    attempts BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
