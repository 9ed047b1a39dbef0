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

/** A `rate_limit_per_second`: requests per second, or "off"; null when it is neither. */
function parseRate(value: unknown): string | undefined | null {
  if (value === "off" || value === undefined) return value;
  return typeof value === "number" && Number.isInteger(value) && value > 0 ? String(value) : null;
}

/** One entry's settings; undefined, with every problem reported, when one is wrong. Its rules come after. */
function parseAccount(
  raw: Record<string, unknown>,
  problem: (message: string) => void,
  venues: Venues,
): AccountSpec | undefined {
  const unknown = Object.keys(raw).filter((key) => !KEYS.has(key));
  if (unknown.length > 0)
    problem(`unknown key ${JSON.stringify(unknown[0]?.slice(0, 40))}; the keys are ${[...KEYS].join(", ")}`);
  const name = typeof raw.name === "string" && ACCOUNT_NAME.test(raw.name) ? raw.name : undefined;
  if (name === undefined) problem("name must be 1-32 of a-z, 0-9 and -");
  else if (venues.reserved.has(name)) problem(`name ${name} is reserved (it is part of a venue's API path)`);
  const venue = venues.get(raw.venue);
  if (venue === undefined) problem(`venue must be one of ${venues.names.join(", ")}`);
  const { secrets, secret_encoding } = raw;
  const secretsOk = secrets === undefined || (typeof secrets === "string" && /^[A-Z][A-Z0-9_]{0,40}_$/.test(secrets));
  if (!secretsOk) problem('secrets must be a binding prefix ending in "_", e.g. INTX_ALPHA_');
  const encodingOk = secret_encoding === undefined || secret_encoding === "base64" || secret_encoding === "raw";
  if (!encodingOk) problem('secret_encoding must be "base64" or "raw"');
  const rate = parseRate(raw.rate_limit_per_second);
  if (rate === null) problem('rate_limit_per_second must be a whole number of requests per second, or "off"');
  if (name === undefined || venues.reserved.has(name) || !venue || rate === null || !secretsOk || !encodingOk) {
    return undefined;
  }
  return {
    name,
    venue: venue.name,
    secrets: secrets ?? `${venue.envPrefix}${name.toUpperCase().replaceAll("-", "_")}_`,
    ...(secret_encoding === undefined ? {} : { secretEncoding: secret_encoding }),
    ...(rate === undefined ? {} : { rate }),
  };
}

/** An entry's `read_only` and `guards`, failing closed: a wrong one is reported, and refuses (writes or orders). */
function parseRules(raw: Record<string, unknown>, problem: (message: string) => void): AccountRules {
  const { guards, read_only } = raw;
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
  return rules;
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
    const spec = parseAccount(raw, problem, venues);
    if (!spec || problems.length > before) {
      const { name, venue, read_only } = raw;
      if (name === "default" && !specs.some((other) => other.name === "default" && other.venue === venue)) {
        const why = "its ACCOUNTS entry has problems";
        const named = venues.get(venue);
        for (const v of named ? [named] : venues.list) {
          specs.push(failClosed(v, why, read_only !== undefined && read_only !== false));
        }
      }
      continue;
    }
    if (specs.some((other) => other.venue === spec.venue && other.name === spec.name)) {
      problem(`the name is used twice on ${spec.venue}`);
      continue;
    }
    // Guards and read_only fail closed: the account stays (reads and cancels work) and every order is refused.
    spec.rules = parseRules(raw, problem);
    specs.push(spec);
  }
  return { specs, problems };
}
