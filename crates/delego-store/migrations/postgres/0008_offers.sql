-- Push routing: tasks of push steps are offered to one worker at a time; an offer holds
-- the task for that worker (as a reservation) until accepted, rejected or expired.
ALTER TABLE tasks ADD COLUMN offer_timeout_secs BIGINT;
ALTER TABLE tasks ADD COLUMN worker_order TEXT NOT NULL DEFAULT 'longest_idle';
ALTER TABLE workers ADD COLUMN missed_offers BIGINT NOT NULL DEFAULT 0;

CREATE TABLE offers (
    id         UUID    PRIMARY KEY,
    task_id    UUID    NOT NULL REFERENCES tasks (id),
    worker_id  UUID    NOT NULL REFERENCES workers (id),
    offered_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    outcome    TEXT    NOT NULL CHECK (outcome IN ('pending', 'accepted', 'rejected', 'expired')),
    decided_at BIGINT
);
CREATE INDEX offers_pending ON offers (expires_at) WHERE outcome = 'pending';
CREATE INDEX offers_by_worker ON offers (worker_id) WHERE outcome = 'pending';
CREATE INDEX offers_by_task ON offers (task_id);
CREATE INDEX tasks_push ON tasks (serve_by) WHERE status = 'open' AND offer_timeout_secs IS NOT NULL;
