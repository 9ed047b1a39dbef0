/**
 * The parsed configuration for one set of bindings, built once per isolate and reused by every request.
 */
import { parseVenues, type VenueSetup } from "../core/venue.ts";

const cache = new WeakMap<object, VenueSetup>();

/** The venues configured by `env`, parsed on first use and cached for the isolate's life. */
export function venueSetup(env: object): VenueSetup {
  let setup = cache.get(env);
  if (!setup) {
    setup = parseVenues(env as Record<string, unknown>);
    cache.set(env, setup);
  }
  return setup;
}
