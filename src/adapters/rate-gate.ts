/**
 * Outbound pacing per venue API key, across every isolate: one Durable Object per (venue, key) holds the key's
 * `SendSchedule` (src/core/pacing.ts), so all isolates together stay under the venue's per-key limit. A Durable
 * Object, not the rate-limiting binding: the binding counts per location, approximately, over 10 s or 60 s periods,
 * so it cannot promise "never more than 40 in any second"; one object serialising grants can. The schedule lives
 * in memory: an object is only evicted after it has been idle far longer than the venue's 1 s window.
 */
import { DurableObject } from "cloudflare:workers";
import { type Pacing, type Priority, SendSchedule } from "../core/pacing.ts";

export class RateGate extends DurableObject<Env> {
  readonly #schedule = new SendSchedule();

  /** How long the caller must wait before sending, or null (nothing granted) if that is over `maxWaitMs`. */
  reserve(pacing: Pacing, priority: Priority, maxWaitMs: number, now: number = Date.now()): number | null {
    return this.#schedule.reserve(pacing, priority, maxWaitMs, now);
  }
}
