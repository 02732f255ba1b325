-- A task of a step with hours (a call within the contact's calling hours) may only be
-- taken within its window; the sweep withdraws the tasks whose window closed untaken.
ALTER TABLE tasks ADD COLUMN opens_at BIGINT;
ALTER TABLE tasks ADD COLUMN closes_at BIGINT;
CREATE INDEX tasks_closing ON tasks (closes_at) WHERE status = 'open' AND closes_at IS NOT NULL;
