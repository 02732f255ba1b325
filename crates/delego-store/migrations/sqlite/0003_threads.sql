-- An item's conversation, when a worker started a task, and requesters' ratings.

CREATE TABLE messages (
    id          BLOB    PRIMARY KEY,
    item_id     BLOB    NOT NULL REFERENCES work_items (id),
    client_id   BLOB    NOT NULL REFERENCES clients (id),
    author      TEXT    NOT NULL,
    visibility  TEXT    NOT NULL CHECK (visibility IN ('public', 'internal')),
    body        TEXT    NOT NULL,
    attachments TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX messages_by_item ON messages (item_id, created_at);

ALTER TABLE tasks ADD COLUMN started_at INTEGER;

CREATE TABLE csat_responses (
    item_id BLOB    PRIMARY KEY REFERENCES work_items (id),
    rating  INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment TEXT,
    at      INTEGER NOT NULL
);
