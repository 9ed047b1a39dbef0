/**
 * `GET /health`: every configuration problem by binding name (never a value), each venue's status and clock, and
 * the webhook routes and jobs in use. 200 with `"ok": true` only when nothing is wrong and a venue is usable;
 * otherwise 503 with `"ok": false`, so a monitor can watch it. Unauthenticated.
 */
import { preparedClock } from "../adapters/client.ts";
import { config, healthProblems } from "../config.ts";
import { VENUES, type VenueName } from "../core/venue.ts";
import { halfWidthMs } from "../lib/index.ts";

async function venueHealth(env: Env, name: VenueName) {
  const setup = config(env);
  const problems = setup.venueProblems
    .filter((p) => p.venue === name)
    .map(({ binding, message }) => ({ binding, message }));
  const venue = setup.venues[name];
  const state = await preparedClock(env, name);
  const accounts = {
    available: [...setup.accounts.values()].filter((a) => a.profile.name === name).length,
    unavailable: setup.venueProblems.filter((p) => p.venue === name).length,
  };
  if (!venue || !state) {
    return { status: problems.length > 0 ? "misconfigured" : "not_configured", problems, accounts };
  }
  const estimate = state.estimator.estimate(Date.now());
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
  return { status: "configured", problems, accounts, clock };
}

export async function health(env: Env): Promise<Response> {
  const setup = config(env);
  const venues = Object.fromEntries(
    await Promise.all(VENUES.map(async (name) => [name, await venueHealth(env, name)])),
  );
  const problems = healthProblems(setup);
  const ok = problems.length === 0;
  return Response.json(
    {
      ok,
      problems,
      venues,
      clock_sync: setup.clockSync,
      hooks: { routes: [...setup.hooks.routes.keys()], problems: setup.hooks.problems },
      jobs: { names: setup.jobs.jobs.map((job) => job.name), problems: setup.jobs.problems },
    },
    { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } },
  );
}
