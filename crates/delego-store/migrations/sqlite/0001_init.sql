-- Timestamps are microseconds since the Unix epoch (UTC); ids are UUIDs (16-byte BLOBs).
-- JSON columns hold serde_json text. The PostgreSQL schema has the same shape.

CREATE TABLE services (
    key          TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    source       TEXT    NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (key, version)
);

CREATE TABLE clients (
    id         BLOB    PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE workers (
    id         BLOB    PRIMARY KEY,
    name       TEXT    NOT NULL,
    skills     TEXT    NOT NULL,
    languages  TEXT    NOT NULL,
    clearances TEXT    NOT NULL,
    capacity   INTEGER NOT NULL CHECK (capacity >= 0),
    presence   TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE engagements (
    id              BLOB    PRIMARY KEY,
    client_id       BLOB    NOT NULL REFERENCES clients (id),
    name            TEXT    NOT NULL,
    service_key     TEXT    NOT NULL,
    service_version INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    FOREIGN KEY (service_key, service_version) REFERENCES services (key, version)
);
CREATE INDEX engagements_by_client ON engagements (client_id);

CREATE TABLE work_items (
    id              BLOB    PRIMARY KEY,
    client_id       BLOB    NOT NULL REFERENCES clients (id),
    engagement_id   BLOB    NOT NULL REFERENCES engagements (id),
    service_key     TEXT    NOT NULL,
    service_version INTEGER NOT NULL,
    requester_id    BLOB,
    status          TEXT    NOT NULL,
    step            TEXT,
    priority        INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX work_items_by_engagement ON work_items (engagement_id, id);
CREATE INDEX work_items_by_client ON work_items (client_id, id);

CREATE TABLE tasks (
    id              BLOB    PRIMARY KEY,
    item_id         BLOB    NOT NULL REFERENCES work_items (id),
    client_id       BLOB    NOT NULL REFERENCES clients (id),
    engagement_id   BLOB    NOT NULL REFERENCES engagements (id),
    step            TEXT    NOT NULL,
    visit           INTEGER NOT NULL,
    skill           TEXT    NOT NULL,
    min_level       INTEGER NOT NULL,
    language        TEXT,
    excluded_worker BLOB,
    priority        INTEGER NOT NULL,
    queued_at       INTEGER NOT NULL,
    due_at          INTEGER,
    status          TEXT    NOT NULL CHECK (status IN ('open', 'claimed', 'done', 'cancelled')),
    worker_id       BLOB    REFERENCES workers (id),
    claimed_at      INTEGER,
    outcome         TEXT,
    done_at         INTEGER,
    UNIQUE (item_id, visit)
);
-- The claim path reads only open tasks, best first; the partial index keeps it small.
CREATE INDEX tasks_open ON tasks (skill, priority DESC, queued_at, id) WHERE status = 'open';
CREATE INDEX tasks_held ON tasks (worker_id) WHERE status = 'claimed';
CREATE INDEX tasks_by_item ON tasks (item_id);

CREATE TABLE timers (
    item_id BLOB    NOT NULL REFERENCES work_items (id),
    step    TEXT    NOT NULL,
    visit   INTEGER NOT NULL,
    due_at  INTEGER NOT NULL,
    PRIMARY KEY (item_id, visit)
);
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE outbox (
    id         BLOB    PRIMARY KEY,
    client_id  BLOB    NOT NULL REFERENCES clients (id),
    item_id    BLOB    NOT NULL REFERENCES work_items (id),
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

CREATE TABLE audit_events (
    seq       INTEGER PRIMARY KEY,
    id        BLOB    NOT NULL UNIQUE,
    client_id BLOB    REFERENCES clients (id), -- NULL for provider-level changes
    item_id   BLOB,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX audit_events_by_item ON audit_events (item_id, seq);
CREATE INDEX audit_events_by_client ON audit_events (client_id, seq);
