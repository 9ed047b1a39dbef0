-- Two corrections to 0001.

-- The forward retry reads `forward_state IN ('failed', 'pending')`; the old partial index covered 'failed' only,
-- so the query could not use it. Index exactly the rows the query reads.
DROP INDEX job_runs_pending_forward;
CREATE INDEX job_runs_forward_retry ON job_runs (scheduled_at) WHERE forward_state IN ('failed', 'pending');

-- deliveries.state allowed 'failed', which nothing writes. SQLite cannot change a CHECK in place: rebuild the table.
CREATE TABLE deliveries_v2 (
  id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  venue TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  client_order_id TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'dead')),
  received_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  status INTEGER,
  response TEXT,
  reason TEXT
);
INSERT INTO deliveries_v2 SELECT id, route, venue, method, path, client_order_id, state, received_at, updated_at,
  attempts, status, response, reason FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_v2 RENAME TO deliveries;
CREATE INDEX deliveries_by_time ON deliveries (received_at);
