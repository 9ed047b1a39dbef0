/**
 * Outbound rate limit per venue API key, across every isolate: one Durable Object per (venue, key) hands out
 * send slots so that no sliding window of `windowMs` holds more than `limit` requests (INTX: 40 per second).
 * A Durable Object, not the rate-limiting binding: the binding counts per location, approximately, over 10 s or
 * 60 s periods, so it cannot promise "never more than 40 in any second"; one object serialising slots can.
 */
import { DurableObject } from "cloudflare:workers";

export class RateGate extends DurableObject<Env> {
  /** Granted slot times (this object's clock, ms), ascending; only the last `limit` matter. */
  #slots: number[] = [];

  /**
   * Reserves the earliest slot that keeps every window of `windowMs` at or under `limit` requests.
   * Returns how long the caller must wait before sending, or null (nothing reserved) if that is over `maxWaitMs`.
   */
  reserve(limit: number, windowMs: number, maxWaitMs: number, now: number = Date.now()): number | null {
    const slots = this.#slots;
    while (slots.length > limit) slots.shift();
    let at = Math.max(now, slots.at(-1) ?? now);
    if (slots.length >= limit) at = Math.max(at, (slots[slots.length - limit] as number) + windowMs);
    const wait = at - now;
    if (wait > maxWaitMs) return null;
    slots.push(at);
    return wait;
  }
}
