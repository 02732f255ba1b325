-- Timestamps are microseconds since the Unix epoch (UTC); ids are UUIDs (native UUIDs).
-- JSON columns are JSONB. The SQLite schema has the same shape.

CREATE TABLE services (
    key          TEXT    NOT NULL,
    version      BIGINT  NOT NULL,
    source       TEXT    NOT NULL,
    published_at BIGINT  NOT NULL,
    PRIMARY KEY (key, version)
);

CREATE TABLE clients (
    id         UUID    PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE TABLE workers (
    id         UUID    PRIMARY KEY,
    name       TEXT    NOT NULL,
    skills JSONB NOT NULL,
    languages JSONB NOT NULL,
    clearances JSONB NOT NULL,
    capacity   BIGINT  NOT NULL CHECK (capacity >= 0),
    presence JSONB NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE engagements (
    id              UUID    PRIMARY KEY,
    client_id       UUID    NOT NULL REFERENCES clients (id),
    name            TEXT    NOT NULL,
    service_key     TEXT    NOT NULL,
    service_version BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL,
    FOREIGN KEY (service_key, service_version) REFERENCES services (key, version)
);
CREATE INDEX engagements_by_client ON engagements (client_id);

CREATE TABLE work_items (
    id              UUID    PRIMARY KEY,
    client_id       UUID    NOT NULL REFERENCES clients (id),
    engagement_id   UUID    NOT NULL REFERENCES engagements (id),
    service_key     TEXT    NOT NULL,
    service_version BIGINT  NOT NULL,
    requester_id    UUID,
    status          TEXT    NOT NULL,
    step            TEXT,
    priority        BIGINT  NOT NULL,
    state JSONB NOT NULL,
    version         BIGINT  NOT NULL,
    idempotency_key TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (client_id, idempotency_key)
);
CREATE INDEX work_items_by_engagement ON work_items (engagement_id, id);
CREATE INDEX work_items_by_client ON work_items (client_id, id);

CREATE TABLE tasks (
    id              UUID    PRIMARY KEY,
    item_id         UUID    NOT NULL REFERENCES work_items (id),
    client_id       UUID    NOT NULL REFERENCES clients (id),
    engagement_id   UUID    NOT NULL REFERENCES engagements (id),
    step            TEXT    NOT NULL,
    visit           BIGINT  NOT NULL,
    skill           TEXT    NOT NULL,
    min_level       BIGINT  NOT NULL,
    language        TEXT,
    excluded_worker UUID,
    priority        BIGINT  NOT NULL,
    queued_at       BIGINT  NOT NULL,
    due_at          BIGINT ,
    status          TEXT    NOT NULL CHECK (status IN ('open', 'claimed', 'done', 'cancelled')),
    worker_id       UUID    REFERENCES workers (id),
    claimed_at      BIGINT ,
    outcome         TEXT,
    done_at         BIGINT ,
    UNIQUE (item_id, visit)
);
-- The claim path reads only open tasks, best first; the partial index keeps it small.
CREATE INDEX tasks_open ON tasks (skill, priority DESC, queued_at, id) WHERE status = 'open';
CREATE INDEX tasks_held ON tasks (worker_id) WHERE status = 'claimed';
CREATE INDEX tasks_by_item ON tasks (item_id);

CREATE TABLE timers (
    item_id UUID    NOT NULL REFERENCES work_items (id),
    step    TEXT    NOT NULL,
    visit   BIGINT  NOT NULL,
    due_at  BIGINT  NOT NULL,
    PRIMARY KEY (item_id, visit)
);
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE outbox (
    id         UUID    PRIMARY KEY,
    client_id  UUID    NOT NULL REFERENCES clients (id),
    item_id    UUID    NOT NULL REFERENCES work_items (id),
    message JSONB NOT NULL,
    created_at BIGINT  NOT NULL,
    sent_at    BIGINT 
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

CREATE TABLE audit_events (
    seq       BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id        UUID    NOT NULL UNIQUE,
    client_id UUID    REFERENCES clients (id), -- NULL for provider-level changes
    item_id   UUID,
    actor JSONB NOT NULL,
    action    TEXT    NOT NULL,
    detail JSONB NOT NULL,
    at        BIGINT  NOT NULL
);
CREATE INDEX audit_events_by_item ON audit_events (item_id, seq);
CREATE INDEX audit_events_by_client ON audit_events (client_id, seq);
