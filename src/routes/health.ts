/**
 * `GET /health`: liveness and per-venue configuration status. Unauthenticated, so it says which binding
 * is wrong but never any value.
 */
import { venueSetup } from "../adapters/setup.ts";
import { VENUES } from "../core/venue.ts";

export function health(env: Env): Response {
  const setup = venueSetup(env);
  const venues = Object.fromEntries(
    VENUES.map((name) => {
      const problems = setup.problems
        .filter((p) => p.venue === name)
        .map(({ binding, message }) => ({ binding, message }));
      const status = setup.venues[name] ? "configured" : problems.length > 0 ? "misconfigured" : "not_configured";
      return [name, { status, problems }];
    }),
  );
  return Response.json({ ok: true, venues });
}
