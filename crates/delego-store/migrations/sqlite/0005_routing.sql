-- Routing: per-channel capacity, certifications, ethical walls and idleness of workers;
-- each task's place in line (serve_by), channel, relaxations and reservation; and how much
-- service each engagement has had, for fairness between engagements sharing workers.

ALTER TABLE workers DROP COLUMN capacity;
ALTER TABLE workers ADD COLUMN capacity TEXT NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN certifications TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN exclusions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN idle_since INTEGER;
ALTER TABLE workers ADD COLUMN wrap_up_secs INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tasks ADD COLUMN channel TEXT NOT NULL DEFAULT 'back_office';
ALTER TABLE tasks ADD COLUMN certifications TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN relax TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN reserved_worker BLOB;
ALTER TABLE tasks ADD COLUMN reserved_until INTEGER;
ALTER TABLE tasks ADD COLUMN serve_by INTEGER NOT NULL DEFAULT 0;

DROP INDEX tasks_open;
CREATE INDEX tasks_open ON tasks (skill, serve_by, queued_at, id) WHERE status = 'open';

CREATE TABLE engagement_shares (
    engagement_id BLOB    PRIMARY KEY REFERENCES engagements (id),
    served        INTEGER NOT NULL
);
