/**
 * Clock history in D1 (`clock_history`, migrations/0005): at most one row a minute per venue of the shared estimate,
 * written by the `ClockState` Durable Object when an offer arrives, read back for the operator console, and pruned
 * with the rest of the history (adapters/history.ts).
 */
import type { ClockEstimate } from "../lib/estimator.ts";

export const MINUTE_MS = 60_000;

/** One minute of a venue's clock: the shared estimate as it was held, local epoch ms of the minute's start. */
export interface ClockHistoryPoint {
  minute: number;
  offsetMs: number;
  lowMs: number;
  highMs: number;
}

/** The start of the minute that contains `now` (local epoch ms). */
export function minuteOf(now: number): number {
  return Math.floor(now / MINUTE_MS) * MINUTE_MS;
}

/** Records `estimate` for `venue` and `minute`, unless that minute already has a row (the first one stands). */
export async function recordClockMinute(
  db: D1Database,
  venue: string,
  minute: number,
  estimate: ClockEstimate,
): Promise<void> {
  await db
    .prepare(
      `INSERT INTO clock_history (venue, minute, offset_ms, low_ms, high_ms, samples) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT (venue, minute) DO NOTHING`,
    )
    .bind(venue, minute, estimate.offsetMs, estimate.lowMs, estimate.highMs, estimate.samples)
    .run();
}

/** The venue's rows from `since` (local epoch ms, inclusive) on, oldest first. */
export async function clockHistory(db: D1Database, venue: string, since: number): Promise<ClockHistoryPoint[]> {
  const { results } = await db
    .prepare(
      `SELECT minute, offset_ms, low_ms, high_ms FROM clock_history WHERE venue = ?1 AND minute >= ?2
       ORDER BY minute ASC`,
    )
    .bind(venue, since)
    .all<{ minute: number; offset_ms: number; low_ms: number; high_ms: number }>();
  return results.map((row) => ({
    minute: row.minute,
    offsetMs: row.offset_ms,
    lowMs: row.low_ms,
    highMs: row.high_ms,
  }));
}
