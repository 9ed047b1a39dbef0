/**
 * `GET /health`: liveness, per-venue configuration and clock status, and the webhook routes' and jobs'
 * configuration. Unauthenticated, so it says which binding or route is wrong but never any value.
 */
import { venueClock } from "../adapters/venue-clock.ts";
import { config } from "../config.ts";
import { halfWidthMs } from "../core/clock/estimator.ts";
import { VENUES } from "../core/venue.ts";

export function health(env: Env, now: number = Date.now()): Response {
  const setup = config(env);
  const venues = Object.fromEntries(
    VENUES.map((name) => {
      const problems = setup.venueProblems
        .filter((p) => p.venue === name)
        .map(({ binding, message }) => ({ binding, message }));
      const venue = setup.venues[name];
      const status = venue ? "configured" : problems.length > 0 ? "misconfigured" : "not_configured";
      if (!venue) return [name, { status, problems }];
      const state = venueClock(name, venue.baseUrl);
      const estimate = state.estimator.estimate(now);
      const uncertainty = estimate ? Math.ceil(halfWidthMs(estimate)) : null;
      // A signed timestamp is off by at most the half-width plus 0.5 s of rounding; warn a second before the window.
      const worst = uncertainty === null ? null : uncertainty + 500;
      const near = worst !== null && worst >= venue.windowSeconds * 1000 - 1000;
      const clock = {
        source: state.source,
        uncertainty_ms: uncertainty,
        ...(near
          ? { warning: `timestamps may be off by ${worst} ms, within 1 s of the ${venue.windowSeconds} s window` }
          : {}),
      };
      return [name, { status, problems, clock }];
    }),
  );
  const clockSyncWrong = setup.problems.some((p) => p.binding === "CLOCK_SYNC");
  return Response.json(
    {
      ok: true,
      venues,
      clock_sync: clockSyncWrong ? "cold (CLOCK_SYNC is not never, cold or always)" : setup.clockSync,
      hooks: { routes: [...setup.hooks.routes.keys()], problems: setup.hooks.problems },
      jobs: { names: setup.jobs.jobs.map((job) => job.name), problems: setup.jobs.problems },
    },
    { headers: { "cache-control": "no-store" } },
  );
}
