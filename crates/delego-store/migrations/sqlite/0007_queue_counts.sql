-- Queue counters, kept in the same transaction as every task change, so a queue view reads
-- a few rows instead of counting tasks. Tasks are counted per engagement, step, status
-- (open or claimed) and the minute their SLA falls due (-1 when they have no deadline).
CREATE TABLE queue_counts (
    engagement_id BLOB    NOT NULL REFERENCES engagements (id),
    step          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('open', 'claimed')),
    due_minute    INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (engagement_id, step, status, due_minute)
);
-- The oldest waiting task of a queue is an index lookup.
CREATE INDEX tasks_open_by_queue ON tasks (engagement_id, step, queued_at) WHERE status = 'open';
