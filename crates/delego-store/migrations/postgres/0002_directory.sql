-- People and files: users and their sessions and API tokens, requesters, attachments'
-- metadata and the provider's secrets. Conventions as in 0001: ids are native UUIDs,
-- timestamps microseconds since the Unix epoch, JSON columns JSONB. The SQLite schema has
-- the same shape.

-- `email` keeps the address as given; `email_key` is its lowercase form (computed by the
-- store), so two spellings of one address cannot make two users.
CREATE TABLE users (
    id            UUID    PRIMARY KEY,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    client_id     UUID    REFERENCES clients (id), -- client users only
    worker_id     UUID    REFERENCES workers (id), -- roles that work tasks
    password_hash TEXT,                            -- argon2 PHC string; NULL: no password
    created_at    BIGINT  NOT NULL
);
CREATE INDEX users_by_client ON users (client_id, email_key);

-- Sessions and tokens are found by the SHA-256 of their secret; the secret is never stored.
CREATE TABLE sessions (
    secret_hash BYTEA   PRIMARY KEY,
    user_id     UUID    NOT NULL REFERENCES users (id),
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           UUID    PRIMARY KEY,
    user_id      UUID    NOT NULL REFERENCES users (id),
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    secret_hash  BYTEA   NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

-- One requester per address and client; requesters without an address (NULL keys) may
-- be many.
CREATE TABLE requesters (
    id         UUID    PRIMARY KEY,
    client_id  UUID    NOT NULL REFERENCES clients (id),
    email      TEXT,
    email_key  TEXT,
    name       TEXT,
    phone      TEXT,
    created_at BIGINT  NOT NULL,
    UNIQUE (client_id, email_key)
);

CREATE TABLE attachments (
    id           UUID    PRIMARY KEY,
    client_id    UUID    NOT NULL REFERENCES clients (id),
    item_id      UUID    REFERENCES work_items (id),
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         BIGINT  NOT NULL CHECK (size >= 0),
    sha256       TEXT    NOT NULL,
    uploaded_by  JSONB   NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX attachments_by_item ON attachments (item_id);

CREATE TABLE secrets (
    name       TEXT    PRIMARY KEY,
    value      BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL
);
