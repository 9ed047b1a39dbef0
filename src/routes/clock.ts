/**
 * `GET /clock`: what each venue's clock is believed to be, as the next signed request would use it (a cold isolate
 * first reads the shared estimate). Public, like `/health`: offsets are not secret, and they are the first thing to
 * look at when a venue answers "timestamp expired".
 */
import { preparedClock } from "../adapters/client.ts";
import { halfWidthMs } from "../lib/estimator.ts";
import { config } from "../runtime.ts";

export async function clock(env: Env): Promise<Response> {
  const { venues, profiles } = config(env);
  const body: Record<string, unknown> = {};
  for (const name of profiles.names) {
    const venue = venues[name];
    const state = await preparedClock(env, name);
    if (!venue || !state) {
      body[name] = { configured: false };
      continue;
    }
    const estimate = state.estimator.estimate(Date.now());
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
