-- The order ledger (docs/orders.md): one row per order-affecting request skewguard signed or refused. `at` is epoch
-- milliseconds (rendered as ISO 8601 on output), so ordering and the since/until filters are exact; `id` breaks ties.
-- The order's own fields have no declared type, so each keeps what the body had: a string stays a string (`"0.10"`
-- is not turned into 0.1) and a number a number. Never a credential, a signature or the raw body.
CREATE TABLE orders (
  id TEXT PRIMARY KEY,
  at INTEGER NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('relay', 'hook', 'delivery', 'redrive', 'job')),
  actor TEXT NOT NULL,
  venue TEXT NOT NULL,
  account TEXT NOT NULL,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('create', 'modify', 'cancel', 'cancel_all', 'state')),
  client_order_id,
  instrument,
  side,
  size,
  price,
  type,
  tif,
  outcome TEXT NOT NULL CHECK (outcome IN ('sent', 'refused', 'failed')),
  status INTEGER,
  refusal TEXT,
  venue_order_id TEXT,
  attempts INTEGER,
  latency_ms INTEGER,
  delivery TEXT
);
-- Newest first (and the cursor), with the other filters applied on the way; the count of the last minute.
CREATE INDEX orders_by_time ON orders (at, id);
CREATE INDEX orders_by_account ON orders (account, at, id);
CREATE INDEX orders_by_actor ON orders (actor, at, id);
CREATE INDEX orders_by_client_order_id ON orders (client_order_id, at, id);
