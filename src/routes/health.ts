/**
 * `GET /health`: liveness, per-venue configuration and clock status, and the webhook routes' configuration.
 * Unauthenticated, so it says which binding or route is wrong but never any value.
 */
import { venueSetup } from "../adapters/setup.ts";
import { venueClock } from "../adapters/venue-clock.ts";
import { parseSyncMode } from "../core/clock/probe.ts";
import { VENUES } from "../core/venue.ts";
import { hookRoutes } from "./hooks.ts";
import { jobSetup } from "./jobs.ts";

export function health(env: Env, now: number = Date.now()): Response {
  const setup = venueSetup(env);
  const venues = Object.fromEntries(
    VENUES.map((name) => {
      const problems = setup.problems
        .filter((p) => p.venue === name)
        .map(({ binding, message }) => ({ binding, message }));
      const config = setup.venues[name];
      const status = config ? "configured" : problems.length > 0 ? "misconfigured" : "not_configured";
      if (!config) return [name, { status, problems }];
      const state = venueClock(name, config.baseUrl);
      const estimate = state.estimator.estimate(now);
      const clock = {
        source: state.source,
        uncertainty_ms: estimate ? Math.ceil((estimate.highMs - estimate.lowMs) / 2) : null,
      };
      return [name, { status, problems, clock }];
    }),
  );
  const hooks = hookRoutes(env);
  const jobs = jobSetup(env);
  return Response.json(
    {
      ok: true,
      venues,
      clock_sync:
        parseSyncMode((env as unknown as Record<string, unknown>).CLOCK_SYNC) ??
        "cold (CLOCK_SYNC is not never, cold or always)",
      hooks: { routes: [...hooks.routes.keys()], problems: hooks.problems },
      jobs: { names: jobs.jobs.map((job) => job.name), problems: jobs.problems },
    },
    { headers: { "cache-control": "no-store" } },
  );
}
