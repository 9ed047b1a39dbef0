/**
 * Retention: job runs, finished deliveries, dead letters, alerts, the order ledger and the clock history older than
 * `RUNS_RETENTION_DAYS` are deleted on each cron trigger. A queued delivery (with its dead letter and history) is
 * never pruned: it has not reached its end yet. A console logout goes once its session has expired.
 */

const DAY_MS = 86_400_000;
const QUEUED = "SELECT id FROM deliveries WHERE state = 'queued'";

/** Deletes history older than `days` before `now` from every history table, in one batch. */
export async function pruneHistory(db: D1Database, now: number, days: number): Promise<void> {
  const cutoff = now - days * DAY_MS;
  await db.batch([
    db.prepare("DELETE FROM job_runs WHERE scheduled_at < ?1").bind(cutoff),
    db.prepare("DELETE FROM deliveries WHERE updated_at < ?1 AND state != 'queued'").bind(cutoff),
    // Not the dead letter or history of a delivery still queued (a re-drive): the letter holds the message, and the
    // history tells a stuck re-drive and a late copy apart, until that copy is delivered or dies.
    db.prepare(`DELETE FROM dead_letters WHERE dead_at < ?1 AND delivery_id NOT IN (${QUEUED})`).bind(cutoff),
    db.prepare(`DELETE FROM delivery_history WHERE at < ?1 AND delivery_id NOT IN (${QUEUED})`).bind(cutoff),
    db.prepare("DELETE FROM alert_sends WHERE updated_at < ?1").bind(cutoff),
    db.prepare("DELETE FROM alerts WHERE raised_at < ?1").bind(cutoff),
    // Not a row still holding an event back: a flush that could not record it gave it back with sent_at 0.
    db.prepare("DELETE FROM alert_quiet WHERE sent_at < ?1 AND held IS NULL").bind(cutoff),
    db.prepare("DELETE FROM clock_history WHERE minute < ?1").bind(cutoff),
    db.prepare("DELETE FROM orders WHERE at < ?1").bind(cutoff),
    db.prepare("DELETE FROM console_logouts WHERE expires_at < ?1").bind(now), // expired: refused anyway
  ]);
}
