/**
 * Runs bounded htpdate-style probes against a venue to narrow its clock estimate: at most `maxProbes` unsigned
 * requests, all within `budgetMs`, stopping as soon as the half-width is at or under `targetHalfWidthMs`.
 */

import { nextProbeAt } from "../core/probe.ts";
import { type ClockSample, halfWidthMs } from "../lib/estimator.ts";
import type { VenueClock } from "./venue-clock.ts";

export interface SyncOptions {
  maxProbes: number;
  budgetMs: number;
  targetHalfWidthMs: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Sends probes until the estimate is tight enough or the count or time budget runs out; returns probes sent. */
export async function syncClock(
  clock: VenueClock,
  probe: () => Promise<ClockSample | undefined>,
  options: SyncOptions,
): Promise<number> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const deadline = now() + options.budgetMs;
  let rtt = 50;
  let sent = 0;
  while (sent < options.maxProbes) {
    const t = now();
    const estimate = clock.estimator.estimate(t);
    if (estimate && halfWidthMs(estimate) <= options.targetHalfWidthMs) break;
    const at = estimate ? nextProbeAt(t, estimate, rtt) : t;
    if (at + rtt > deadline) break;
    if (at > t) await sleep(at - t);
    sent++;
    const sample = await probe().catch(() => undefined);
    if (!sample) break;
    rtt = Math.max(1, sample.tRecv - sample.tSend);
    clock.observe(sample);
  }
  return sent;
}
