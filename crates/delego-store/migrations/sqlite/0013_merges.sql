-- A message moved from a duplicate to the item it was merged into keeps which item it was
-- written on. Ratings are read by when they were given, for the metrics.
ALTER TABLE messages ADD COLUMN merged_from BLOB;
CREATE INDEX csat_responses_by_at ON csat_responses (at);
