-- Metrics read presence changes per worker, and tasks and items by when they ended or
-- arrived. The presence change's worker is a column so that both backends query it alike.
-- From here on a cancelled task records when it was cancelled in `done_at`.
ALTER TABLE audit_events ADD COLUMN presence_worker TEXT
    GENERATED ALWAYS AS (json_extract(detail, '$.worker')) VIRTUAL;
CREATE INDEX audit_events_presence ON audit_events (presence_worker, at)
    WHERE action = 'worker.presence';
CREATE INDEX audit_events_presence_at ON audit_events (at) WHERE action = 'worker.presence';
CREATE INDEX tasks_by_done ON tasks (done_at) WHERE done_at IS NOT NULL;
CREATE INDEX work_items_by_created ON work_items (created_at);
CREATE INDEX work_items_ended ON work_items (updated_at) WHERE status IN ('completed', 'cancelled');
