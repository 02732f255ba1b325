-- Per-engagement tuning of the pinned process (e.g. how long a wait step waits).
ALTER TABLE engagements ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
