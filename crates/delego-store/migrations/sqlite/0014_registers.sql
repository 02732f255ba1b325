-- Registers: reference data that items' fields name (a client's asset register, say),
-- kept per client or provider-wide (no client). And an item's parent: the major incident
-- whose resolution its linked incidents follow.

-- `key` is as given (trimmed); `key_match` is its lower-case form, computed by the store
-- (not by SQL `lower()`, which differs between the backends), for lookups and uniqueness.
CREATE TABLE register_entries (
    register   TEXT    NOT NULL,
    client_id  BLOB    REFERENCES clients (id), -- NULL: provider-wide
    key        TEXT    NOT NULL,
    key_match  TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);
-- NULLs are distinct in a UNIQUE constraint, so each scope has a partial index of its own;
-- they also serve the pages, in key order.
CREATE UNIQUE INDEX register_entries_of_clients
    ON register_entries (register, client_id, key_match) WHERE client_id IS NOT NULL;
CREATE UNIQUE INDEX register_entries_of_provider
    ON register_entries (register, key_match) WHERE client_id IS NULL;

ALTER TABLE work_items ADD COLUMN parent_id BLOB REFERENCES work_items (id);
CREATE INDEX work_items_by_parent ON work_items (parent_id) WHERE parent_id IS NOT NULL;
