/**
 * The venues skewguard serves: one profile file each. Adding a venue is a new profile here (and its simulator
 * routes); the router, accounts, guards, re-drive and logs read this list and name no venue themselves.
 */
import { cde } from "./cde.ts";
import { intx } from "./intx.ts";
import type { VenueProfile } from "./profile.ts";

export const VENUE_PROFILES: readonly VenueProfile[] = [intx, cde];

/** A list of profiles, looked up by name: what the Worker's runtime is built with. */
export class Venues {
  readonly list: readonly VenueProfile[];
  readonly names: readonly string[];
  /** Account names that could be read as the start of a venue's API path (`api`, `rest`). */
  readonly reserved: ReadonlySet<string>;
  readonly #byName: ReadonlyMap<string, VenueProfile>;

  constructor(list: readonly VenueProfile[]) {
    this.list = list;
    this.names = list.map((p) => p.name);
    this.#byName = new Map(list.map((p) => [p.name, p]));
    this.reserved = new Set(list.map((p) => p.apiPrefix.split("/")[1] ?? ""));
    if (this.#byName.size !== list.length) throw new Error("two venue profiles share a name");
  }

  get(name: unknown): VenueProfile | undefined {
    return typeof name === "string" ? this.#byName.get(name) : undefined;
  }

  /** The venue and account a relay path addresses (`/intx/alpha/api/v1/orders`), for the log line; never a key. */
  of(route: string): { venue?: string; account?: string } {
    const [, venue, account] = route.split("/", 3);
    const profile = this.get(venue);
    if (!profile || account === undefined || !/^[a-z0-9-]{1,32}$/.test(account)) return {};
    if (!route.startsWith(`/${venue}/${account}/`)) return {};
    return { venue: profile.name, account: this.reserved.has(account) ? "default" : account };
  }
}

export const DEFAULT_VENUES = new Venues(VENUE_PROFILES);
export type { RequestKind, VenueProfile } from "./profile.ts";
