-- The knowledge base: articles kept per engagement, which agents search while they work
-- and a resolution names. `search_text` is the title, body and tags lower-cased by the
-- store (not by SQL `lower()`, which differs between the backends), searched with LIKE.
CREATE TABLE articles (
    id            BLOB    PRIMARY KEY,
    client_id     BLOB    NOT NULL REFERENCES clients (id),
    engagement_id BLOB    NOT NULL REFERENCES engagements (id),
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    tags          TEXT    NOT NULL,
    search_text   TEXT    NOT NULL,
    created_by    TEXT    NOT NULL,
    updated_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    version       INTEGER NOT NULL
);
CREATE INDEX articles_by_engagement ON articles (engagement_id, updated_at);
