-- People and files: users and their sessions and API tokens, requesters, attachments'
-- metadata and the provider's secrets. Conventions as in 0001: ids are UUIDs (16-byte
-- BLOBs), timestamps microseconds since the Unix epoch, JSON columns serde_json text.
-- The PostgreSQL schema has the same shape.

-- `email` keeps the address as given; `email_key` is its lowercase form (computed by the
-- store), so two spellings of one address cannot make two users.
CREATE TABLE users (
    id            BLOB    PRIMARY KEY,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    client_id     BLOB    REFERENCES clients (id), -- client users only
    worker_id     BLOB    REFERENCES workers (id), -- roles that work tasks
    password_hash TEXT,                            -- argon2 PHC string; NULL: no password
    created_at    INTEGER NOT NULL
);
CREATE INDEX users_by_client ON users (client_id, email_key);

-- Sessions and tokens are found by the SHA-256 of their secret; the secret is never stored.
CREATE TABLE sessions (
    secret_hash BLOB    PRIMARY KEY,
    user_id     BLOB    NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           BLOB    PRIMARY KEY,
    user_id      BLOB    NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

-- One requester per address and client; requesters without an address (NULL keys) may
-- be many.
CREATE TABLE requesters (
    id         BLOB    PRIMARY KEY,
    client_id  BLOB    NOT NULL REFERENCES clients (id),
    email      TEXT,
    email_key  TEXT,
    name       TEXT,
    phone      TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (client_id, email_key)
);

CREATE TABLE attachments (
    id           BLOB    PRIMARY KEY,
    client_id    BLOB    NOT NULL REFERENCES clients (id),
    item_id      BLOB    REFERENCES work_items (id),
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX attachments_by_item ON attachments (item_id);

CREATE TABLE secrets (
    name       TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
