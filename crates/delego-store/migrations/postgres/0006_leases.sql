-- A claimed task is held on a lease its worker's client renews; a lapsed lease puts the
-- task back in its place in line.
ALTER TABLE tasks ADD COLUMN lease_until BIGINT;
CREATE INDEX tasks_leases ON tasks (lease_until) WHERE status = 'claimed';
