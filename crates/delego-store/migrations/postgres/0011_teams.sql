-- Workers belong to teams, so that metrics add up per team.
ALTER TABLE workers ADD COLUMN team TEXT;
