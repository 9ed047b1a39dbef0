-- skewguard's history: scheduled job runs, webhook deliveries, and the dead letters of deliveries given up on.
-- Times are local epoch milliseconds.

-- One row per (job, scheduled time): a re-delivered cron trigger updates nothing and inserts nothing.
CREATE TABLE job_runs (
  job TEXT NOT NULL,
  scheduled_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  status INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  offset_ms REAL,
  uncertainty_ms REAL,
  body TEXT,
  body_truncated INTEGER NOT NULL DEFAULT 0,
  error TEXT,
  forward_state TEXT,
  forward_attempts INTEGER NOT NULL DEFAULT 0,
  forward_error TEXT,
  PRIMARY KEY (job, scheduled_at)
);
CREATE INDEX job_runs_pending_forward ON job_runs (forward_state) WHERE forward_state = 'failed';

-- A webhook accepted for durable delivery (`delivery = "queue"`), from enqueue to its final state.
CREATE TABLE deliveries (
  id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  venue TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  client_order_id TEXT,
  state TEXT NOT NULL CHECK (state IN ('queued', 'delivered', 'failed', 'dead')),
  received_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  status INTEGER,
  response TEXT,
  reason TEXT
);
CREATE INDEX deliveries_by_time ON deliveries (received_at);

-- Deliveries dropped without reaching the venue: too old, out of retries, or refused. Never deleted silently:
-- pruning is by the same retention as everything else.
CREATE TABLE dead_letters (
  delivery_id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  dead_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  reason TEXT NOT NULL,
  payload TEXT NOT NULL
);
