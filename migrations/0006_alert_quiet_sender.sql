-- The quiet period's sender: each send claims the (type, subject) row with its own id, so two events raised in the
-- same millisecond cannot both take it. And deliveries listed or pruned by their last update.
ALTER TABLE alert_quiet ADD COLUMN sent_id TEXT;
CREATE INDEX deliveries_by_update ON deliveries (updated_at);
