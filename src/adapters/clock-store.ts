/**
 * Shares each venue's clock estimate across isolates: one Durable Object per venue (`idFromName(venue)`).
 * A cold isolate seeds its estimator from here instead of starting blind; warm isolates offer improvements.
 * It also keeps the clock history (adapters/clock-history.ts): at most one D1 row a minute of the estimate it holds.
 */
import { DurableObject } from "cloudflare:workers";
import type { ClockEstimate } from "../lib/estimator.ts";
import { type EstimateStore, shouldReplace } from "../lib/store.ts";
import { minuteOf, recordClockMinute } from "./clock-history.ts";
import { errorName, log } from "./log.ts";

export class ClockState extends DurableObject<Env> implements EstimateStore {
  /** The minute this object last wrote (or is writing) a history row for; forgotten on eviction, which is harmless:
   * the insert does nothing when the minute already has a row. */
  #historyMinute = Number.NEGATIVE_INFINITY;

  /** The last estimate offered, or null. The reader widens it for its age (it knows its own drift allowance). */
  async read(): Promise<ClockEstimate | null> {
    return (await this.ctx.storage.get<ClockEstimate>("estimate")) ?? null;
  }

  /**
   * Keeps `offered` when it is better than what is stored (`shouldReplace`); `driftPpm` is the reader's allowance.
   * With `venue`, the estimate now held is also recorded in the clock history, once per minute; that write never
   * makes the offer fail. `now` (local epoch ms, default the clock when the row is recorded) picks the minute; tests
   * pass it.
   */
  async offer(offered: ClockEstimate, driftPpm: number, venue?: string, now?: number): Promise<boolean> {
    const held = await this.read();
    const accepted = shouldReplace(held, offered, driftPpm);
    if (accepted) await this.ctx.storage.put("estimate", offered);
    if (venue !== undefined) await this.#record(venue, accepted ? offered : held, now);
    return accepted;
  }

  async #record(venue: string, estimate: ClockEstimate | null, now = Date.now()): Promise<void> {
    const minute = minuteOf(now);
    if (!estimate || minute <= this.#historyMinute) return;
    // Claimed before the write: offers that arrive while it is under way do not write the same minute again.
    this.#historyMinute = minute;
    try {
      await recordClockMinute(this.env.DB, venue, minute, estimate);
    } catch (err) {
      // Nothing was written: a later offer in this minute may try again.
      if (this.#historyMinute === minute) this.#historyMinute = Number.NEGATIVE_INFINITY;
      log("warn", { event: "clock_history_write_failed", venue, error: errorName(err) });
    }
  }
}
