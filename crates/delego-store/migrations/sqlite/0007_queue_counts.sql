-- Queue counters, so that a queue view reads a few rows instead of counting tasks. Tasks
-- are counted per engagement, step, status (open or claimed) and the minute their SLA falls
-- due (-1 without a deadline). Every task change appends its +1/-1 to the ledger in its own
-- transaction (appends never wait on each other, so busy queues do not serialise on a
-- counter row); a background compaction folds the ledger into the totals.
CREATE TABLE queue_counts (
    engagement_id BLOB    NOT NULL REFERENCES engagements (id),
    step          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('open', 'claimed')),
    due_minute    INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (engagement_id, step, status, due_minute)
);
CREATE TABLE queue_count_changes (
    seq           INTEGER PRIMARY KEY,
    engagement_id BLOB    NOT NULL,
    step          TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    due_minute    INTEGER NOT NULL,
    delta         INTEGER NOT NULL
);
-- The oldest waiting task of a queue is an index lookup.
CREATE INDEX tasks_open_by_queue ON tasks (engagement_id, step, queued_at) WHERE status = 'open';
