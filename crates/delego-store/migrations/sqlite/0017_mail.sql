-- The e-mail channel: the messages that came in to an engagement and what became of them,
-- the outgoing mail queue, the messages kept aside, and the history a mail quoted.

-- One row per message taken in, claimed as `pending` before anything is done with it: a
-- message delivered twice (a mailbox re-read after a crash, a relay retrying, two nodes
-- reading one maildir) is handled once, a reply finds its item by the ids it answers, and
-- a sender's recent messages can be counted. `id` (a UUIDv7) orders the
-- messages that came in at the same instant; `from_address` is lower-cased.
CREATE TABLE mail_in (
    id            BLOB    PRIMARY KEY,
    engagement_id BLOB    NOT NULL REFERENCES engagements (id),
    message_id    TEXT    NOT NULL,
    item_id       BLOB    REFERENCES work_items (id), -- NULL: a bounce of mail no item sent
    from_address  TEXT    NOT NULL,
    disposition   TEXT    NOT NULL
        CHECK (disposition IN ('pending', 'opened', 'replied', 'bounce', 'automatic', 'kept_aside')),
    -- The sender asked for no automatic replies (`X-Auto-Response-Suppress`).
    no_auto_reply INTEGER NOT NULL DEFAULT 0,
    received_at   INTEGER NOT NULL,
    -- Message ids are unique only per engagement: another engagement's ids never match.
    UNIQUE (engagement_id, message_id)
);
-- A sender's rate limit counts their messages to the engagement since an instant.
CREATE INDEX mail_in_by_sender ON mail_in (engagement_id, from_address, received_at);
-- An item's message ids, oldest first: the `References` of its next reply.
CREATE INDEX mail_in_by_item ON mail_in (item_id, received_at) WHERE item_id IS NOT NULL;

-- Mail for items' requesters, kept until delivered so that the queue survives a restart.
-- A node takes due mail by putting `next_attempt_at` off by a lease, so no other node
-- sends it meanwhile. `references_` is a JSON list of message ids, oldest first
-- (`references` is an SQL keyword).
CREATE TABLE mail_out (
    id              BLOB    PRIMARY KEY,
    client_id       BLOB    NOT NULL REFERENCES clients (id),
    engagement_id   BLOB    NOT NULL REFERENCES engagements (id),
    item_id         BLOB    NOT NULL REFERENCES work_items (id),
    message_id      TEXT    NOT NULL UNIQUE, -- a reply to it finds its item
    to_address      TEXT    NOT NULL,
    to_name         TEXT,
    subject         TEXT    NOT NULL,
    text            TEXT    NOT NULL,
    in_reply_to     TEXT,
    references_     TEXT    NOT NULL,
    attachments     TEXT    NOT NULL DEFAULT '[]', -- JSON list of the item's attachment ids sent with it
    automatic       INTEGER NOT NULL CHECK (automatic IN (0, 1)),
    status          TEXT    NOT NULL CHECK (status IN ('queued', 'sent', 'failed', 'bounced')),
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
-- The sender's poll reads only queued mail whose attempt is due; the partial index keeps it
-- small however much mail was ever sent.
CREATE INDEX mail_out_due ON mail_out (next_attempt_at) WHERE status = 'queued';
CREATE INDEX mail_out_by_item ON mail_out (item_id, created_at);

-- Messages that could not be read or taken in (unreadable, unknown sender, over a rate
-- limit, automatic with nothing to note them on), kept with their exact bytes for an admin
-- to look at: nothing that reached the mailbox is lost. Engagement and client are unknown
-- when the message could not be placed.
CREATE TABLE mail_kept_aside (
    id            BLOB    PRIMARY KEY,
    engagement_id BLOB    REFERENCES engagements (id),
    client_id     BLOB    REFERENCES clients (id),
    source        TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    from_address  TEXT,
    subject       TEXT,
    raw           BLOB    NOT NULL,
    size          INTEGER NOT NULL,
    received_at   INTEGER NOT NULL
);
-- The admin's list, newest first: all of them, or one client's.
CREATE INDEX mail_kept_aside_by_time ON mail_kept_aside (received_at);
CREATE INDEX mail_kept_aside_by_client ON mail_kept_aside (client_id, received_at);

-- The history an e-mail quoted below its new text: kept with the message, shown folded.
ALTER TABLE messages ADD COLUMN quoted TEXT;

-- An outbox message stays until its taker says it is delivered (as a notice on the thread
-- and as mail): a node that dies midway leaves it to be taken again when its lease ends.
ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
