-- SLA escalations: each item says when its SLA clocks next need a look (NULL: as soon as
-- possible, after any change), and team leads get notifications in an in-app inbox.
ALTER TABLE work_items ADD COLUMN sla_check_at INTEGER;
CREATE INDEX work_items_sla_check ON work_items (sla_check_at) WHERE status IN ('active', 'waiting');

CREATE TABLE notifications (
    id         BLOB    PRIMARY KEY,
    user_id    BLOB    NOT NULL REFERENCES users (id),
    item_id    BLOB    REFERENCES work_items (id),
    kind       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
