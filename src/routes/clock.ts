/**
 * `GET /clock`: what this isolate believes about each venue's clock. Public, like `/health`: offsets are not
 * secret, and they are the first thing to look at when a venue answers "timestamp expired".
 */
import { venueClock } from "../adapters/venue-clock.ts";
import { config } from "../config.ts";
import { halfWidthMs } from "../core/clock/estimator.ts";
import { VENUES } from "../core/venue.ts";

export function clock(env: Env, now: number = Date.now()): Response {
  const { venues } = config(env);
  const body: Record<string, unknown> = {};
  for (const name of VENUES) {
    const venue = venues[name];
    if (!venue) {
      body[name] = { configured: false };
      continue;
    }
    const state = venueClock(name, venue.baseUrl);
    const estimate = state.estimator.estimate(now);
    body[name] = {
      configured: true,
      offset_ms: estimate ? Math.round(estimate.offsetMs) : null,
      uncertainty_ms: estimate ? Math.ceil(halfWidthMs(estimate)) : null,
      samples: estimate?.samples ?? 0,
      last_sample_at: estimate ? new Date(estimate.updatedAt).toISOString() : null,
      source: state.source,
      window_seconds: venue.windowSeconds,
    };
  }
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}
