-- The last event a quiet period held back (JSON, with the time it was raised): sent by the cron trigger when the
-- period ends, with the count of the others held before it, so a burst's count arrives even if nothing follows it.
ALTER TABLE alert_quiet ADD COLUMN held TEXT;
