-- Routing: per-channel capacity, certifications, ethical walls and idleness of workers;
-- each task's place in line (serve_by), channel, relaxations and reservation; and how much
-- service each engagement has had, for fairness between engagements sharing workers.

ALTER TABLE workers DROP COLUMN capacity;
ALTER TABLE workers ADD COLUMN capacity JSONB NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN certifications JSONB NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN exclusions JSONB NOT NULL DEFAULT '{}';
ALTER TABLE workers ADD COLUMN idle_since BIGINT;
ALTER TABLE workers ADD COLUMN wrap_up_secs BIGINT NOT NULL DEFAULT 0;

ALTER TABLE tasks ADD COLUMN channel TEXT NOT NULL DEFAULT 'back_office';
ALTER TABLE tasks ADD COLUMN certifications JSONB NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN relax JSONB NOT NULL DEFAULT '[]';
ALTER TABLE tasks ADD COLUMN reserved_worker UUID;
ALTER TABLE tasks ADD COLUMN reserved_until BIGINT;
ALTER TABLE tasks ADD COLUMN serve_by BIGINT NOT NULL DEFAULT 0;

DROP INDEX tasks_open;
CREATE INDEX tasks_open ON tasks (skill, serve_by, queued_at, id) WHERE status = 'open';

CREATE TABLE engagement_shares (
    engagement_id UUID    PRIMARY KEY REFERENCES engagements (id),
    served        BIGINT  NOT NULL
);
