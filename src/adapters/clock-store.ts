/**
 * Shares each venue's clock estimate across isolates: one Durable Object per venue (`idFromName(venue)`).
 * A cold isolate seeds its estimator from here instead of starting blind; warm isolates offer improvements.
 */
import { DurableObject } from "cloudflare:workers";
import { type ClockEstimate, halfWidthMs as halfWidth } from "../core/clock/estimator.ts";

export class ClockState extends DurableObject<Env> {
  /** The last estimate offered, or null. The reader widens it for its age (it knows its own drift allowance). */
  async read(): Promise<ClockEstimate | null> {
    return (await this.ctx.storage.get<ClockEstimate>("estimate")) ?? null;
  }

  /**
   * Keeps `offered` if it is newer and not looser than what is stored widened to the same moment, or if
   * the stored one no longer overlaps it (the venue's clock stepped). `driftPpm` is the reader's allowance.
   */
  async offer(offered: ClockEstimate, driftPpm: number): Promise<boolean> {
    const stored = await this.read();
    if (stored && stored.updatedAt >= offered.updatedAt) {
      const age = stored.updatedAt - offered.updatedAt;
      const slack = (age * driftPpm) / 1e6;
      const overlaps = offered.lowMs - slack <= stored.highMs && stored.lowMs <= offered.highMs + slack;
      if (overlaps && halfWidth(stored) <= halfWidth(offered) + slack) return false;
    } else if (stored) {
      const slack = ((offered.updatedAt - stored.updatedAt) * driftPpm) / 1e6;
      const overlaps = stored.lowMs - slack <= offered.highMs && offered.lowMs <= stored.highMs + slack;
      if (overlaps && halfWidth(stored) + slack < halfWidth(offered)) return false;
    }
    await this.ctx.storage.put("estimate", offered);
    return true;
  }
}
