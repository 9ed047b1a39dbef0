/**
 * Pacing for one API key. The venue counts each key's requests in any 1 s window at its end (INTX: 40), so grants
 * go out on an even grid instead of in bursts, and a send that leaves late still cannot bunch with later ones.
 *
 * Grid points are `intervalMs` apart. A grant takes one free point; an idle key may take points up to
 * (burst − 1) · interval in the past, so up to `burst` requests go at once. A granted request leaves no earlier than
 * its point and, enforced by the caller, at most `lagMs` after the grant. Then the requests reaching the venue in a
 * 1 s window were granted within 1000 + lagMs, on points within 1000 + lagMs + (burst − 1) · interval, and there are
 * at most `limit` such points when interval = (1000 + lagMs) / (limit − burst + 1). Network jitter between the
 * Worker and the venue comes on top: placement keeps it small.
 *
 * Orders first: a read may not take every `WRITE_EVERY`-th point, so however many reads queue, writes (orders,
 * cancels, kill-switches, webhook deliveries) keep a quarter of the rate and wait at most a few points.
 * Pure: time is passed in.
 */

export type Priority = "read" | "write";

export interface Pacing {
  /** Requests per second per key that the venue allows. */
  limit: number;
  /** Requests that may go at once when the key is idle (1 = none beyond the one). */
  burst: number;
  /** How late after its grant a request may leave; a later one must take a new grant. */
  lagMs: number;
}

/** The share of points kept for writes: every fourth. */
export const WRITE_EVERY = 4;

/** Grid spacing that keeps any 1 s window at the venue at or under `limit` (see above). */
export function intervalMs({ limit, burst, lagMs }: Pacing): number {
  return (1000 + lagMs) / (limit - burst + 1);
}

/** One key's grid of granted points. */
export class SendSchedule {
  /** Indices of granted points (point i is at i · interval, epoch ms) that may still matter. */
  readonly #taken = new Set<number>();

  /**
   * Grants the earliest free point this priority may use, and returns how long to wait before sending; or null
   * (nothing granted) when that wait would exceed `maxWaitMs`.
   */
  reserve(pacing: Pacing, priority: Priority, maxWaitMs: number, now: number): number | null {
    const interval = intervalMs(pacing);
    const first = Math.ceil((now - (pacing.burst - 1) * interval) / interval);
    for (const index of this.#taken) if (index < first) this.#taken.delete(index);
    const last = Math.floor((now + maxWaitMs) / interval);
    for (let index = first; index <= last; index++) {
      if (this.#taken.has(index) || (priority === "read" && index % WRITE_EVERY === 0)) continue;
      this.#taken.add(index);
      return Math.max(0, index * interval - now);
    }
    return null;
  }
}

/**
 * Sends counted over a rolling period (an account's orders per minute): the send times still inside it. A time may
 * be in the future (a granted slot not yet reached); it counts from the moment it is granted.
 */
export class RollingCount {
  readonly #periodMs: number;
  /** Ascending. */
  readonly #times: number[] = [];

  constructor(periodMs: number) {
    this.#periodMs = periodMs;
  }

  /** How many counted sends fall after `now − period`. */
  count(now: number): number {
    while (this.#times.length > 0 && (this.#times[0] as number) <= now - this.#periodMs) this.#times.shift();
    return this.#times.length;
  }

  add(at: number): void {
    let i = this.#times.length;
    while (i > 0 && (this.#times[i - 1] as number) > at) i--;
    this.#times.splice(i, 0, at);
  }

  /** Whole seconds from `now` until fewer than `limit` sends are inside the period. */
  retryAfterSeconds(limit: number, now: number): number {
    const blocking = this.#times[this.#times.length - limit];
    return blocking === undefined ? 0 : Math.max(1, Math.ceil((blocking + this.#periodMs - now) / 1000));
  }
}
