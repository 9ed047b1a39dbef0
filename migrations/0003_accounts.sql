-- Several accounts per venue: each job run and each delivery records the account that signed it (its name, never
-- its key). Rows from before accounts existed were signed by the venue's default account.
ALTER TABLE job_runs ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE deliveries ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
