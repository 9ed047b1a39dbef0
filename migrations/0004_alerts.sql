-- Alerts and re-drive. Times are local epoch milliseconds.

-- Every alert raised (those the quiet period held back are counted in the next one, not stored).
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  severity TEXT NOT NULL,
  subject TEXT NOT NULL,
  venue TEXT,
  account TEXT,
  text TEXT NOT NULL,
  ids TEXT NOT NULL,
  suppressed INTEGER NOT NULL DEFAULT 0,
  raised_at INTEGER NOT NULL
);
CREATE INDEX alerts_by_time ON alerts (raised_at);

-- Each alert's send to each sink that wants it: queued, sent, or failed (kept, with the error, after the retries).
CREATE TABLE alert_sends (
  alert_id TEXT NOT NULL,
  sink TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL,
  error TEXT,
  PRIMARY KEY (alert_id, sink)
);

-- The quiet period per (type, subject): when one was last sent, how many were held back since, and how many were
-- held back before that send (reported with it).
CREATE TABLE alert_quiet (
  type TEXT NOT NULL,
  subject TEXT NOT NULL,
  sent_at INTEGER NOT NULL,
  suppressed INTEGER NOT NULL DEFAULT 0,
  carried INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (type, subject)
);

-- What happened to a delivery over time, so a re-driven one shows every attempt: dead (with the reason), re-driven
-- (by which token), delivered.
CREATE TABLE delivery_history (
  delivery_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL CHECK (event IN ('dead', 'redriven', 'delivered')),
  attempts INTEGER,
  reason TEXT,
  by TEXT
);
CREATE INDEX delivery_history_by_delivery ON delivery_history (delivery_id, at);
CREATE INDEX deliveries_by_state ON deliveries (state, updated_at);
