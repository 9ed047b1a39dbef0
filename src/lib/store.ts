/**
 * Sharing a clock estimate between clients (isolates, processes): a cold client seeds its estimator from the store
 * instead of starting blind, and warm clients offer improvements. The Worker's `ClockState` Durable Object is one
 * implementation; `MemoryEstimateStore` is another, for one process.
 */
import { type ClockEstimate, halfWidthMs } from "./estimator.ts";
import { withTimeout } from "./timeout.ts";

/** How long a cold client waits for the shared estimate before it signs without it. */
export const SHARED_READ_TIMEOUT_MS = 250;

/** Where a shared estimate lives. `driftPpm` is the offering client's drift allowance. */
export interface EstimateStore {
  read(): Promise<ClockEstimate | null>;
  offer(estimate: ClockEstimate, driftPpm: number): Promise<unknown>;
}

/**
 * Whether to replace `stored` with `offered`: when it is newer and not looser than the stored one widened to the
 * same moment, or when the two no longer overlap (the venue's clock stepped).
 */
export function shouldReplace(stored: ClockEstimate | null, offered: ClockEstimate, driftPpm: number): boolean {
  if (!stored) return true;
  const slack = (Math.abs(stored.updatedAt - offered.updatedAt) * driftPpm) / 1e6;
  const overlaps = offered.lowMs - slack <= stored.highMs && stored.lowMs <= offered.highMs + slack;
  if (!overlaps) return true;
  return stored.updatedAt >= offered.updatedAt
    ? halfWidthMs(stored) > halfWidthMs(offered) + slack
    : halfWidthMs(stored) + slack >= halfWidthMs(offered);
}

/** A store in this process's memory. */
export class MemoryEstimateStore implements EstimateStore {
  #estimate: ClockEstimate | null = null;

  async read(): Promise<ClockEstimate | null> {
    return this.#estimate;
  }

  async offer(estimate: ClockEstimate, driftPpm: number): Promise<boolean> {
    if (!shouldReplace(this.#estimate, estimate, driftPpm)) return false;
    this.#estimate = estimate;
    return true;
  }
}

/** Reads the shared estimate: null when the store has none or fails (`failed` hears why); it never throws. */
export function readShared(
  store: Pick<EstimateStore, "read">,
  failed?: (error: unknown) => void,
): Promise<ClockEstimate | null> {
  return Promise.resolve()
    .then(() => store.read())
    .catch((error: unknown) => {
      failed?.(error);
      return null;
    });
}

/** A cold client's wait for the shared read: its value, or undefined after `SHARED_READ_TIMEOUT_MS` (it goes on). */
export function sharedReadWait<T>(read: Promise<T>): Promise<T | undefined> {
  return withTimeout(read, SHARED_READ_TIMEOUT_MS);
}
