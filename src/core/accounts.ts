/**
 * `ACCOUNTS`: several API keys per venue in one deployment. Each entry names an account on a venue, where its
 * three secret bindings are (default: the venue and the name in upper case, `-` as `_`: `alpha` on INTX reads
 * `INTX_ALPHA_API_KEY`, `…_API_SECRET`, `…_API_PASSPHRASE`), and optionally its own secret encoding and rate limit.
 * Today's `INTX_API_*` / `CDE_API_*` are the account `default`, which may be listed to give it settings. Pure.
 */
import type { Venues } from "../venues/index.ts";
import type { VenueProfile } from "../venues/profile.ts";
import { type AccountRules, parseGuards } from "./guards.ts";
import { isRecord, parseJsonList } from "./parse.ts";
import type { AccountSpec } from "./venue-config.ts";

/** Account names: short and safe in a URL path segment, never the first segment of a venue's API prefix. */
export const ACCOUNT_NAME = /^[a-z0-9-]{1,32}$/;

export interface AccountProblem {
  account: string;
  message: string;
}

const KEYS = new Set(["name", "venue", "secrets", "secret_encoding", "rate_limit_per_second", "guards", "read_only"]);

/**
 * The default account's rules when its settings cannot be read: it keeps working (it needs no `ACCOUNTS` entry), but
 * refuses every order, and every write if the entry tried to make it read-only. Guards that did not parse must not
 * leave it unguarded.
 */
function failClosed(venue: VenueProfile, why: string, readOnly: boolean): AccountSpec {
  const rules: AccountRules = { readOnly, guards: why, configured: undefined };
  return { name: "default", venue: venue.name, secrets: venue.envPrefix, rules };
}

/**
 * Parses `ACCOUNTS`; an entry with a problem is left out and reported under its name (or `#n`). The default account
 * cannot be left out, so when its entry (or the whole list) is unusable it fails closed instead (`failClosed`).
 */
export function parseAccounts(value: unknown, venues: Venues): { specs: AccountSpec[]; problems: AccountProblem[] } {
  const list = parseJsonList(value, "ACCOUNTS");
  if (typeof list === "string") {
    const why = "ACCOUNTS cannot be parsed";
    const specs = venues.list.map((v) => failClosed(v, why, false));
    return { specs, problems: [{ account: "ACCOUNTS", message: list }] };
  }
  const specs: AccountSpec[] = [];
  const problems: AccountProblem[] = [];
  for (const [i, raw] of list.entries()) {
    const label = isRecord(raw) && typeof raw.name === "string" ? raw.name : `#${i + 1}`;
    const before = problems.length;
    const problem = (message: string) => problems.push({ account: label, message });
    if (!isRecord(raw)) {
      problem("an account must be an object");
      continue;
    }
    const unknown = Object.keys(raw).filter((key) => !KEYS.has(key));
    if (unknown.length > 0)
      problem(`unknown key ${JSON.stringify(unknown[0]?.slice(0, 40))}; the keys are ${[...KEYS].join(", ")}`);
    const { name, venue, secrets, secret_encoding, rate_limit_per_second, guards, read_only } = raw;
    if (typeof name !== "string" || !ACCOUNT_NAME.test(name)) problem("name must be 1-32 of a-z, 0-9 and -");
    else if (venues.reserved.has(name)) problem(`name ${name} is reserved (it is part of a venue's API path)`);
    const profile = venues.get(venue);
    if (!profile) problem(`venue must be one of ${venues.names.join(", ")}`);
    if (secrets !== undefined && (typeof secrets !== "string" || !/^[A-Z][A-Z0-9_]{0,40}_$/.test(secrets))) {
      problem('secrets must be a binding prefix ending in "_", e.g. INTX_ALPHA_');
    }
    if (secret_encoding !== undefined && secret_encoding !== "base64" && secret_encoding !== "raw") {
      problem('secret_encoding must be "base64" or "raw"');
    }
    const rate =
      rate_limit_per_second === "off" || rate_limit_per_second === undefined
        ? rate_limit_per_second
        : Number.isInteger(rate_limit_per_second) && (rate_limit_per_second as number) > 0
          ? String(rate_limit_per_second)
          : null;
    if (rate === null) problem('rate_limit_per_second must be a whole number of requests per second, or "off"');
    if (problems.length > before) {
      if (name === "default" && !specs.some((spec) => spec.name === "default" && spec.venue === venue)) {
        const why = "its ACCOUNTS entry has problems";
        for (const v of profile ? [profile] : venues.list) {
          specs.push(failClosed(v, why, read_only !== undefined && read_only !== false));
        }
      }
      continue;
    }
    if (!profile || typeof name !== "string") continue; // reported above
    const account = name;
    const venueName = profile.name;
    if (specs.some((spec) => spec.venue === venueName && spec.name === account)) {
      problem(`the name is used twice on ${venueName}`);
      continue;
    }
    // Guards and read_only fail closed: the account stays (reads and cancels work) and every order is refused.
    const rules: AccountRules = { readOnly: read_only === true, guards: undefined, configured: guards };
    if (read_only !== undefined && typeof read_only !== "boolean") {
      problem("read_only must be true or false; the account is read-only until it is fixed");
      rules.readOnly = true;
    }
    if (guards !== undefined) {
      try {
        rules.guards = parseGuards(guards);
      } catch (err) {
        rules.guards = err instanceof Error ? err.message : "unusable";
        problem(`guards: ${rules.guards}; every order on this account is refused until it is fixed`);
      }
    }
    const prefix = `${profile.envPrefix}${account.toUpperCase().replaceAll("-", "_")}_`;
    specs.push({
      name: account,
      venue: venueName,
      secrets: (secrets as string | undefined) ?? prefix,
      ...(secret_encoding === undefined ? {} : { secretEncoding: secret_encoding as string }),
      ...(rate === undefined ? {} : { rate: rate as string }),
      rules,
    });
  }
  return { specs, problems };
}
