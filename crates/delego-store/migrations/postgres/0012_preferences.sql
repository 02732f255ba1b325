-- Each user's own language and time zone for the web UI; unset means "from the browser"
-- and UTC.
ALTER TABLE users ADD COLUMN language TEXT;
ALTER TABLE users ADD COLUMN time_zone TEXT;
