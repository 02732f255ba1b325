-- SLA escalations: each item says when its SLA clocks next need a look (NULL: as soon as
-- possible, after any change), and team leads get notifications in an in-app inbox.
ALTER TABLE work_items ADD COLUMN sla_check_at BIGINT;
CREATE INDEX work_items_sla_check ON work_items (sla_check_at) WHERE status IN ('active', 'waiting');

CREATE TABLE notifications (
    id         UUID    PRIMARY KEY,
    user_id    UUID    NOT NULL REFERENCES users (id),
    item_id    UUID    REFERENCES work_items (id),
    kind       TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    detail     JSONB   NOT NULL,
    created_at BIGINT  NOT NULL,
    read_at    BIGINT
);
CREATE INDEX notifications_by_user ON notifications (user_id, created_at);
