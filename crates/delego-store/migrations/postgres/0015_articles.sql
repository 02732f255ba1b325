-- The knowledge base: articles kept per engagement, which agents search while they work
-- and a resolution names. `search_text` is the title, body and tags lower-cased by the
-- store (not by SQL `lower()`, which differs between the backends), searched with LIKE.
CREATE TABLE articles (
    id            UUID    PRIMARY KEY,
    client_id     UUID    NOT NULL REFERENCES clients (id),
    engagement_id UUID    NOT NULL REFERENCES engagements (id),
    title         TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    tags          JSONB   NOT NULL,
    search_text   TEXT    NOT NULL,
    created_by    JSONB   NOT NULL,
    updated_by    JSONB   NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    version       BIGINT  NOT NULL
);
CREATE INDEX articles_by_engagement ON articles (engagement_id, updated_at);
