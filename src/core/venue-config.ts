/**
 * Each venue account's configuration, parsed from the Worker's bindings by its venue's profile. Pure: the bindings
 * are passed in. An account with a problem is reported by binding name and left out; the others keep working.
 */
import { ConfigError } from "../lib/errors.ts";
import { type SecretEncoding, secretBytes } from "../lib/key.ts";
import type { Venues } from "../venues/index.ts";
import type { VenueProfile } from "../venues/profile.ts";
import { type AccountRules, NO_RULES } from "./guards.ts";
import type { Pacing } from "./pacing.ts";

/** The secret half of a venue's configuration. Redacted when serialised, so it cannot slip into a log line. */
export class Credentials {
  readonly apiKey: string;
  readonly secret: string;
  readonly passphrase: string;
  constructor(apiKey: string, secret: string, passphrase: string) {
    this.apiKey = apiKey;
    this.secret = secret;
    this.passphrase = passphrase;
  }
  toJSON(): string {
    return "[redacted]";
  }
  toString(): string {
    return "[redacted]";
  }
}

/** An account that is ready to sign for: one set of credentials on one venue. */
export interface VenueConfig {
  profile: VenueProfile;
  /** The account's name: `default` for the venue's `INTX_API_*` / `CDE_API_*`, else its `ACCOUNTS` name. */
  account: string;
  /** Origin only, e.g. `https://api.international.coinbase.com`. */
  baseUrl: string;
  windowSeconds: number;
  secretEncoding: SecretEncoding;
  /** How skewguard paces this key's requests; undefined = not paced. */
  pacing: Pacing | undefined;
  credentials: Credentials;
  /** `read_only` and order guards (core/guards.ts). */
  rules: AccountRules;
  /** The venue's market-data feed relay (docs/websocket.md); undefined when the venue has none or it is misconfigured. */
  feed?: FeedSettings;
}

/** The market-data feed relay's settings, the venue's for each of its accounts (`<prefix>WS_*`). */
export interface FeedSettings {
  /** `wss://…`, or `ws://` on a loopback host; a path is allowed. */
  url: string;
  signingWord: string;
  maxBots: number;
  subscribesPerSecond: number;
  /** No upstream message for this long: the connection has stalled and is replaced. */
  stallMs: number;
  /** What each bot is delivered at most per second, and how many more may wait (core/feed.ts, `Outbox`). */
  botRate: number;
  botQueue: number;
}

/** One thing wrong with one account's binding. Never includes the binding's value. */
export interface VenueProblem {
  venue: string;
  account: string;
  binding: string;
  message: string;
}

export interface VenueSetup {
  /** Per venue, the account whose host settings stand for the venue (its default, else its first). */
  venues: Record<string, VenueConfig>;
  /** Every available account, by `accountKey(venue, name)`. */
  accounts: Map<string, VenueConfig>;
  problems: VenueProblem[];
}

/** The map key of an account. */
export function accountKey(venue: string, account: string): string {
  return `${venue}/${account}`;
}

/** An account's own settings, from `ACCOUNTS` (the default account's come from the venue's bindings). */
export interface AccountSpec {
  name: string;
  venue: string;
  /** Prefix of its three secret bindings, e.g. `INTX_ALPHA_` for `INTX_ALPHA_API_KEY`. */
  secrets: string;
  secretEncoding?: string;
  /** Requests per second, or "off". */
  rate?: string;
  rules?: AccountRules;
}

/** The default account of a venue, reading today's `INTX_API_*` / `CDE_API_*`. */
export function defaultAccount(profile: VenueProfile): AccountSpec {
  return { name: "default", venue: profile.name, secrets: profile.envPrefix };
}

/** Hosts where plain http:// is allowed, for local testing. */
export const LOOPBACK: ReadonlySet<string> = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Validates a base URL: https, or http on a loopback host for local testing; an origin with no path or query. */
export function parseBaseUrl(value: string, binding: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(binding, "is not an absolute URL; expected e.g. https://api.international.coinbase.com");
  }
  const local = url.protocol === "http:" && LOOPBACK.has(url.hostname);
  if (url.protocol !== "https:" && !local) {
    throw new ConfigError(binding, `must use https:// (http:// is allowed only for 127.0.0.1, localhost or [::1])`);
  }
  if (url.username || url.password) throw new ConfigError(binding, "must not contain credentials");
  if (url.pathname !== "/" || url.search || url.hash) {
    throw new ConfigError(binding, "must be an origin only (scheme, host, port), with no path, query or fragment");
  }
  return url.origin;
}

/** Validates a feed URL: wss, or ws on a loopback host; no credentials, query or fragment. */
export function parseFeedUrl(value: string, binding: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(binding, "is not an absolute URL; expected e.g. wss://ws-md.international.coinbase.com");
  }
  const local = url.protocol === "ws:" && LOOPBACK.has(url.hostname);
  if (url.protocol !== "wss:" && !local) {
    throw new ConfigError(binding, "must use wss:// (ws:// is allowed only for 127.0.0.1, localhost or [::1])");
  }
  if (url.username || url.password) throw new ConfigError(binding, "must not contain credentials");
  if (url.search || url.hash) throw new ConfigError(binding, "must have no query or fragment");
  return url.href;
}

function wholeNumber(env: object, binding: string, fallback: number, max: number): number {
  const value = text(env, binding);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > max) {
    throw new ConfigError(
      binding,
      `must be a whole number from 1 to ${max}, got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return n;
}

/** The venue's feed settings, or undefined when its profile has no market-data feed. Throws a ConfigError. */
export function parseFeed(env: object, profile: VenueProfile): FeedSettings | undefined {
  if (!profile.marketData) return undefined;
  const p = `${profile.envPrefix}WS_`;
  return {
    url: parseFeedUrl(text(env, `${p}URL`) ?? profile.marketData.defaultUrl, `${p}URL`),
    signingWord: profile.marketData.signingWord,
    maxBots: wholeNumber(env, `${p}MAX_BOTS`, 100, 10_000),
    subscribesPerSecond: wholeNumber(env, `${p}SUBSCRIBES_PER_SECOND`, 10, 1_000),
    stallMs: wholeNumber(env, `${p}STALL_SECONDS`, 30, 3_600) * 1000,
    botRate: wholeNumber(env, `${p}BOT_MESSAGES_PER_SECOND`, 2_000, 100_000),
    botQueue: wholeNumber(env, `${p}BOT_QUEUE`, 1_000, 100_000),
  };
}

function parseWindow(value: string, binding: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !(n > 0 && n <= 300)) {
    throw new ConfigError(binding, `must be a number of seconds between 0 and 300, got ${JSON.stringify(value)}`);
  }
  return n;
}

function parseRate(value: string, binding: string): number | undefined {
  if (value === "off") return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 10_000) {
    throw new ConfigError(
      binding,
      `must be a whole number of requests per second (1-10000) or "off", got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return n;
}

/** How late after its grant a paced request may leave (the caller takes a new grant past it): see core/pacing.ts. */
export const PACING_LAG_MS = 200;
const DEFAULT_BURST = 2;

function parsePacing(
  rateValue: string | undefined,
  burstValue: string | undefined,
  profile: VenueProfile,
  rateBinding = `${profile.envPrefix}RATE_LIMIT_PER_SECOND`,
) {
  const p = profile.envPrefix;
  const limit = rateValue ? parseRate(rateValue, rateBinding) : profile.defaultRatePerSecond;
  if (limit === undefined) return undefined;
  const burst = burstValue === undefined ? DEFAULT_BURST : Number(burstValue);
  if (!/^\d+$/.test(burstValue ?? "1") || burst < 1) {
    throw new ConfigError(`${p}RATE_BURST`, "must be a whole number, at least 1");
  }
  // The venue's burst applies to every account, at most each account's own limit.
  return { limit, burst: Math.min(burst, limit), lagMs: PACING_LAG_MS };
}

function parseEncoding(value: string, binding: string): SecretEncoding {
  if (value === "base64" || value === "raw") return value;
  throw new ConfigError(binding, `must be "base64" or "raw", got ${JSON.stringify(value.slice(0, 40))}`);
}

/** A binding's text value; bindings are read by name (`INTX_` + `API_KEY`), so by reflection. */
function text(env: object, name: string): string | undefined {
  const v: unknown = Reflect.get(env, name);
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * One venue's configuration, or throws the first ConfigError found. Returns `undefined` when none of the
 * venue's credentials are set: an unconfigured venue is unavailable, not an error.
 */
export function parseVenue(
  env: object,
  profile: VenueProfile,
  spec: AccountSpec = defaultAccount(profile),
): VenueConfig | undefined {
  const p = profile.envPrefix;
  const s = spec.secrets;
  const names = [`${s}API_KEY`, `${s}API_SECRET`, `${s}API_PASSPHRASE`] as const;
  const [apiKey, secret, passphrase] = names.map((n) => text(env, n));
  if (!apiKey && !secret && !passphrase) return undefined;
  if (!apiKey || !secret || !passphrase) {
    const missing = names.filter((n) => !text(env, n));
    throw new ConfigError(missing.join(", "), "is not set; set it with `wrangler secret put` (or in .dev.vars)");
  }
  const baseUrlValue = text(env, `${p}BASE_URL`);
  const windowValue = text(env, `${p}WINDOW_SECONDS`);
  const encodingValue = spec.secretEncoding ?? text(env, `${p}SECRET_ENCODING`);
  const rateValue = spec.rate ?? text(env, `${p}RATE_LIMIT_PER_SECOND`);
  const burstValue = text(env, `${p}RATE_BURST`);
  const where = spec.secretEncoding ? `ACCOUNTS (${spec.name})` : `${p}SECRET_ENCODING`;
  const secretEncoding = encodingValue ? parseEncoding(encodingValue, where) : "base64";
  secretBytes(secret, secretEncoding, `${s}API_SECRET`); // a bad secret is a start-up error, not a 401
  return {
    profile,
    account: spec.name,
    baseUrl: parseBaseUrl(baseUrlValue ?? profile.defaultBaseUrl, `${p}BASE_URL`),
    windowSeconds: windowValue ? parseWindow(windowValue, `${p}WINDOW_SECONDS`) : profile.windowSeconds,
    secretEncoding,
    pacing: parsePacing(rateValue, burstValue, profile, spec.rate ? `ACCOUNTS (${spec.name})` : undefined),
    credentials: new Credentials(apiKey, secret, passphrase),
    rules: spec.rules ?? NO_RULES,
  };
}

/**
 * Every account of every venue (the default ones and those `specs` lists), with each problem named by binding. An
 * account whose bindings are missing or wrong is left out; the others keep working. Two accounts with one API key
 * would share a rate gate the venue counts as one: the later is left out.
 */
export function parseVenues(env: object, venues: Venues, specs: readonly AccountSpec[] = []): VenueSetup {
  const setup: VenueSetup = { venues: {}, accounts: new Map(), problems: [] };
  for (const profile of venues.list) {
    const venue = profile.name;
    let feed: FeedSettings | undefined;
    try {
      feed = parseFeed(env, profile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      setup.problems.push({ venue, account: "default", binding: err.binding, message: err.message });
    }
    const listed = specs.filter((spec) => spec.venue === venue);
    const own = listed.find((spec) => spec.name === "default");
    const all = [
      { ...defaultAccount(profile), ...own, secrets: profile.envPrefix },
      ...listed.filter((x) => x !== own),
    ];
    for (const spec of all) {
      try {
        const account = parseVenue(env, profile, spec);
        if (!account) {
          if (spec.name === "default") continue; // a venue without a default account is not an error
          throw new ConfigError(`${spec.secrets}API_KEY`, `is not set; account ${spec.name} is unavailable`);
        }
        const twin = [...setup.accounts.values()].find(
          (other) => other.profile.name === venue && other.credentials.apiKey === account.credentials.apiKey,
        );
        if (twin) throw new ConfigError(`${spec.secrets}API_KEY`, `is the same key as account ${twin.account}`);
        if (feed) account.feed = feed;
        setup.accounts.set(accountKey(venue, spec.name), account);
        setup.venues[venue] ??= account;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        setup.problems.push({ venue, account: spec.name, binding: err.binding, message: err.message });
      }
    }
  }
  return setup;
}
