/**
 * Active synchronisation, htpdate style: send a cheap unsigned request timed so that the venue stamps it right at
 * the edge of one of its seconds, as the current estimate predicts. Whichever second the `Date` then names cuts
 * the interval about in half (down to the round trip's own width), where a randomly timed sample cuts little.
 * Pure: the caller supplies the clock, the estimate and the round-trip guess.
 */
import type { ClockEstimate } from "../lib/estimator.ts";

/**
 * The local time at which to send the next probe: the earliest time ≥ `now` at which, if θ is the middle of the
 * estimate and the request reaches the venue after half the round trip, the venue's clock reads a whole second.
 */
export function nextProbeAt(now: number, estimate: ClockEstimate, rttMs: number): number {
  const mid = (estimate.lowMs + estimate.highMs) / 2;
  const oneWay = rttMs / 2;
  // Venue time at which the request would be stamped if sent now; aim for the next whole second after it.
  const stampedAt = now + oneWay + mid;
  const boundary = Math.ceil(stampedAt / 1000) * 1000;
  return boundary - mid - oneWay;
}
