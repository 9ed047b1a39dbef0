/**
 * Shares each venue's clock estimate across isolates: one Durable Object per venue (`idFromName(venue)`).
 * A cold isolate seeds its estimator from here instead of starting blind; warm isolates offer improvements.
 */
import { DurableObject } from "cloudflare:workers";
import { type ClockEstimate, type EstimateStore, shouldReplace } from "../lib/index.ts";

export class ClockState extends DurableObject<Env> implements EstimateStore {
  /** The last estimate offered, or null. The reader widens it for its age (it knows its own drift allowance). */
  async read(): Promise<ClockEstimate | null> {
    return (await this.ctx.storage.get<ClockEstimate>("estimate")) ?? null;
  }

  /** Keeps `offered` when it is better than what is stored (`shouldReplace`); `driftPpm` is the reader's allowance. */
  async offer(offered: ClockEstimate, driftPpm: number): Promise<boolean> {
    if (!shouldReplace(await this.read(), offered, driftPpm)) return false;
    await this.ctx.storage.put("estimate", offered);
    return true;
  }
}
