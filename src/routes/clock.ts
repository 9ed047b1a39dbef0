/**
 * `GET /clock`: what this isolate believes about each venue's clock. Public, like `/health`: offsets are not
 * secret, and they are the first thing to look at when a venue answers "timestamp expired".
 */
import { venueSetup } from "../adapters/setup.ts";
import { venueClock } from "../adapters/venue-clock.ts";
import { VENUES } from "../core/venue.ts";

export function clock(env: Env, now: number = Date.now()): Response {
  const { venues } = venueSetup(env);
  const body: Record<string, unknown> = {};
  for (const name of VENUES) {
    const config = venues[name];
    if (!config) {
      body[name] = { configured: false };
      continue;
    }
    const state = venueClock(name, config.baseUrl);
    const estimate = state.estimator.estimate(now);
    body[name] = {
      configured: true,
      offset_ms: estimate ? Math.round(estimate.offsetMs) : null,
      uncertainty_ms: estimate ? Math.ceil((estimate.highMs - estimate.lowMs) / 2) : null,
      samples: estimate?.samples ?? 0,
      last_sample_at: estimate ? new Date(estimate.updatedAt).toISOString() : null,
      source: state.source,
      window_seconds: config.windowSeconds,
    };
  }
  return Response.json(body, { headers: { "cache-control": "no-store" } });
}
