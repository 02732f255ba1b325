-- An item's conversation, when a worker started a task, and requesters' ratings.

CREATE TABLE messages (
    id          UUID    PRIMARY KEY,
    item_id     UUID    NOT NULL REFERENCES work_items (id),
    client_id   UUID    NOT NULL REFERENCES clients (id),
    author      JSONB   NOT NULL,
    visibility  TEXT    NOT NULL CHECK (visibility IN ('public', 'internal')),
    body        TEXT    NOT NULL,
    attachments JSONB   NOT NULL,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX messages_by_item ON messages (item_id, created_at);

ALTER TABLE tasks ADD COLUMN started_at BIGINT;

CREATE TABLE csat_responses (
    item_id UUID    PRIMARY KEY REFERENCES work_items (id),
    rating  BIGINT  NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    at      BIGINT  NOT NULL
);
