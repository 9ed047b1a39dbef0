/**
 * `GET /health`: 200 with `"ok": true` only when nothing is wrong and a venue is usable, otherwise 503 with
 * `"ok": false`, so a monitor can watch it. Without a token it says only that, and the binding each problem is
 * in: binding names are public (docs/configuration.md), and an operator whose `RELAY_TOKENS` is broken has no token
 * to ask with, while route, job and account names are the operator's own. With a token allowed `GET /health`:
 * every problem in full, each venue's status and clock (and, per account, its market-data feed), and the webhook
 * routes and jobs in use.
 */
import { preparedClock } from "../adapters/client.ts";
import { type FeedStatus, feedObject } from "../adapters/market-feed.ts";
import { healthProblems, type Problem } from "../config.ts";
import { halfWidthMs } from "../lib/estimator.ts";
import { config } from "../runtime.ts";
import { authenticate } from "./auth.ts";

async function venueHealth(env: Env, name: string) {
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
  return { status: "configured", problems, accounts, clock, ...(await feeds(env, name)) };
}

/**
 * Per account of a venue with a market-data feed, the feed's state (adapters/market-feed.ts, `FeedStatus`): upstream
 * state, connected bots, subscriptions, last message age, messages in and out.
 */
async function feeds(env: Env, name: string): Promise<{ feeds?: Record<string, FeedStatus> }> {
  const withFeed = [...config(env).accounts.values()].filter((a) => a.profile.name === name && a.feed);
  if (withFeed.length === 0) return {};
  const entries = await Promise.all(
    withFeed.map(
      async (a): Promise<[string, FeedStatus]> => [a.account, await feedObject(env, name, a.account).status()],
    ),
  );
  return { feeds: Object.fromEntries(entries) };
}

export async function health(request: Request, env: Env): Promise<Response> {
  const setup = config(env);
  const problems = healthProblems(setup);
  const ok = problems.length === 0;
  const headers = { "cache-control": "no-store" };
  const status = ok ? 200 : 503;
  if (!request.headers.has("authorization")) {
    const bindings = [...new Set(problems.flatMap((p) => (p.via ?? p.binding).split(", ")))];
    return Response.json({ ok, problems: bindings.map((binding) => ({ binding })) }, { status, headers });
  }
  await authenticate(request, env, "GET", "/health");
  const venues = Object.fromEntries(
    await Promise.all(config(env).profiles.names.map(async (name) => [name, await venueHealth(env, name)])),
  );
  return Response.json(
    {
      ok,
      problems: problems.map(shown),
      venues,
      clock_sync: setup.clockSync,
      hooks: { routes: [...setup.hooks.routes.keys()], problems: setup.hooks.problems },
      jobs: { names: setup.jobs.jobs.map((job) => job.name), problems: setup.jobs.problems },
    },
    { status, headers },
  );
}

/** A problem as the full report shows it (`via` is for the unauthenticated one). */
function shown({ via: _via, ...problem }: Problem) {
  return problem;
}
