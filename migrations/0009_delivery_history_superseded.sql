-- A late copy of a delivery (the queue delivers at least once; a re-drive replaces the message) is no longer
-- dropped with only a log line: its attempt is written into the history as 'superseded', with what came of it.
-- SQLite changes a CHECK only by rebuilding the table.
CREATE TABLE delivery_history_new (
  delivery_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  event TEXT NOT NULL CHECK (event IN ('dead', 'redriven', 'delivered', 'superseded')),
  attempts INTEGER,
  reason TEXT,
  by TEXT
);
INSERT INTO delivery_history_new (delivery_id, at, event, attempts, reason, by)
  SELECT delivery_id, at, event, attempts, reason, by FROM delivery_history;
DROP TABLE delivery_history;
ALTER TABLE delivery_history_new RENAME TO delivery_history;
CREATE INDEX delivery_history_by_delivery ON delivery_history (delivery_id, at);
