/**
 * Venue profiles and their configuration, parsed from the Worker's bindings. Pure: the bindings are passed in.
 * A venue with a problem is reported by binding name and left out; the other venue keeps working.
 */
import { ConfigError } from "../lib/errors.ts";
import { type SecretEncoding, secretBytes } from "../lib/key.ts";
import { type AccountRules, NO_RULES } from "./guards.ts";
import type { Pacing } from "./pacing.ts";

export type VenueName = "intx" | "cde";
export const VENUES: readonly VenueName[] = ["intx", "cde"];

/** What is fixed about each exchange (docs/protocol.md, "INTX" and "CDE"). */
export interface VenueProfile {
  name: VenueName;
  defaultBaseUrl: string;
  /** Every signed path starts with this. */
  apiPrefix: string;
  /** Binding-name prefix: `INTX_`, `CDE_`. */
  envPrefix: string;
  /** Requests per second per API key that the venue allows; undefined where it is not published. */
  defaultRatePerSecond: number | undefined;
  /**
   * What the venue requires of a webhook route's body template for this method and path, as problem messages
   * (checked when `HOOKS` is parsed, so `/health` names the route before a signal dies at the venue).
   */
  templateProblems(method: string, path: string, body: unknown, field: TemplateField): string[];
  /** POST paths that set a state rather than add one (CDE's kill-switch): sending one twice acts once. */
  statePaths: readonly string[];
  /**
   * For an order create that carries a `client_order_id`, the reads that find it at the venue (open orders, fills),
   * so an order whose outcome is unknown is re-sent only if the venue has no trace of it; undefined for any other
   * request. A venue without such reads has none, and its unknown outcomes are never re-sent.
   */
  orderLookup?(method: string, path: string, body: string | undefined): OrderLookup | undefined;
  /**
   * Why a 2xx answer to an order request says the order was rejected (INTX answers a crossing `post_only` 200 with
   * `event_type: "REJECTED"`), or undefined for an answer that does not.
   */
  rejectedOrder(method: string, path: string, status: number, text: string): string | undefined;
}

/**
 * Whether sending a request again cannot act twice: any method but POST (INTX's PUT and DELETE name the order
 * they act on), or a POST that sets a state (`statePaths`).
 */
export function safeToRepeat(venue: VenueName, method: string, path: string): boolean {
  return method !== "POST" || PROFILES[venue].statePaths.includes(path);
}

/** The reads that tell whether the venue has an order: any of them with a result means it does. */
export interface OrderLookup {
  clientOrderId: string;
  reads: readonly { path: string; query: string }[];
  /** Whether one read's answer (JSON text) holds the order. */
  found(text: string): boolean;
}

/** A declared payload field of a webhook route, by name: its type and whether it may be absent. */
export type TemplateField = (name: string) => { type: string; optional: boolean } | undefined;

/**
 * INTX's four forms of `client_order_id` (its order create and modify spec): 18 printable ASCII characters; 20
 * letters, digits or dashes; 31 lowercase hex digits without a leading 0; a lowercase, hyphenated UUID.
 */
const INTX_CLIENT_ORDER_ID = [
  /^[\x21-\x7e]{18}$/,
  /^[A-Za-z0-9-]{20}$/,
  /^[1-9a-f][0-9a-f]{30}$/,
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
];

/** Whether `id` has one of INTX's four `client_order_id` forms (docs/protocol.md, "INTX"). */
export function isIntxClientOrderId(id: string): boolean {
  return INTX_CLIENT_ORDER_ID.some((form) => form.test(id));
}

const WHOLE_PLACEHOLDER = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;
const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** How a template value is filled: a literal, one whole placeholder (a builtin or a declared field), or a mix. */
function templateValue(value: unknown, field: TemplateField) {
  if (typeof value !== "string") return { literal: value };
  const whole = WHOLE_PLACEHOLDER.exec(value);
  if (!whole) return value.includes("{{") ? { mixed: true as const } : { literal: value };
  const name = whole[1] as string;
  return { placeholder: name, spec: field(name) };
}

const record = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** INTX: an order create or modify carries a `client_order_id` that is sure to have one of the four forms. */
function intxTemplateProblems(method: string, path: string, body: unknown, field: TemplateField): string[] {
  const create = method === "POST" && path === "/api/v1/orders";
  const modify = method === "PUT" && /^\/api\/v1\/orders\/[^/]+$/.test(path);
  if (!create && !modify) return [];
  const forms =
    "INTX takes {{client_order_id}} (skewguard's own id, a UUID), a declared uuid field, or a literal of 18 ASCII " +
    "characters, 20 letters, digits or dashes, 31 lowercase hex digits, or a lowercase UUID";
  if (!record(body) || !("client_order_id" in body)) {
    return create ? [`request.body.client_order_id is required by INTX orders; ${forms}`] : [];
  }
  const value = templateValue(body.client_order_id, field);
  if ("literal" in value) {
    return typeof value.literal === "string" && isIntxClientOrderId(value.literal)
      ? []
      : [`request.body.client_order_id ${JSON.stringify(value.literal)} is not in one of INTX's forms; ${forms}`];
  }
  if ("placeholder" in value) {
    if (value.placeholder === "client_order_id" || value.placeholder === "delivery_id") return [];
    if (value.spec?.type === "uuid" && !value.spec.optional) return [];
  }
  return [`request.body.client_order_id may not meet INTX's forms; ${forms}`];
}

/** A JSON object's fields, or undefined for anything else. */
function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return record(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** INTX: open orders and fills, both filtered by `client_order_id` (and the order's portfolio, when it names one). */
function intxOrderLookup(method: string, path: string, body: string | undefined): OrderLookup | undefined {
  if (method !== "POST" || path !== "/api/v1/orders") return undefined;
  const order = jsonObject(body);
  const id = order?.client_order_id;
  if (typeof id !== "string" || id === "") return undefined;
  const portfolio = typeof order?.portfolio === "string" ? order.portfolio : undefined;
  const query = (scope: string) =>
    new URLSearchParams({ client_order_id: id, ...(portfolio ? { [scope]: portfolio } : {}) }).toString();
  return {
    clientOrderId: id,
    reads: [
      { path: "/api/v1/orders", query: query("portfolio") },
      { path: "/api/v1/portfolios/fills", query: query("portfolios") },
    ],
    found: (text) => {
      const results = jsonObject(text)?.results;
      return Array.isArray(results) && results.length > 0;
    },
  };
}

/** INTX: an order answered 200 whose `event_type` is `REJECTED` was not placed; its `reject_reason` says why. */
function intxRejectedOrder(method: string, path: string, status: number, text: string): string | undefined {
  if (status < 200 || status > 299 || !path.startsWith("/api/v1/orders") || method === "GET") return undefined;
  const answer = jsonObject(text);
  if (answer?.event_type !== "REJECTED" && answer?.order_status !== "REJECTED") return undefined;
  const reason = answer.reject_reason ?? answer.reject_message ?? answer.text;
  return typeof reason === "string" && reason !== "" ? reason.slice(0, 200) : "REJECTED";
}

const CDE_UUIDS = ["fcm_uuid", "firm_uuid", "trading_user_uuid"] as const;

/**
 * CDE: a kill-switch carries `only_cancel_no_trading_lock` (a boolean) and exactly one of `fcm_uuid`, `firm_uuid`,
 * `trading_user_uuid`; an unlock exactly one uuid (CDE's reference: "Must only include one uuid").
 */
function cdeTemplateProblems(method: string, path: string, body: unknown, field: TemplateField): string[] {
  const kill = path === "/rest/kill-switch";
  if (method !== "POST" || (!kill && path !== "/rest/unlock-trading")) return [];
  const what = kill ? "a CDE kill-switch" : "a CDE unlock-trading";
  if (!record(body)) return [`request.body must be an object: ${what} names exactly one of ${CDE_UUIDS.join(", ")}`];
  const problems: string[] = [];
  const sure = (name: string, type: string, literal: (v: unknown) => boolean): boolean => {
    const value = templateValue(body[name], field);
    if ("literal" in value) return literal(value.literal);
    return "placeholder" in value && value.spec?.type === type && !value.spec.optional;
  };
  if (kill && !sure("only_cancel_no_trading_lock", "boolean", (v) => typeof v === "boolean")) {
    problems.push(
      `request.body.only_cancel_no_trading_lock is required by ${what}: true or false, or a required boolean field`,
    );
  }
  const named = CDE_UUIDS.filter((name) => name in body);
  if (named.length !== 1) {
    problems.push(
      `request.body must name exactly one of ${CDE_UUIDS.join(", ")} for ${what} (it names ${named.length})`,
    );
  } else {
    const [name] = named as [string];
    if (!sure(name, "uuid", (v) => typeof v === "string" && UUID_TEXT.test(v))) {
      problems.push(`request.body.${name} must be a lowercase UUID, or a required uuid field`);
    }
  }
  return problems;
}

export const PROFILES: Readonly<Record<VenueName, VenueProfile>> = {
  intx: {
    name: "intx",
    defaultBaseUrl: "https://api.international.coinbase.com",
    apiPrefix: "/api/v1/",
    envPrefix: "INTX_",
    defaultRatePerSecond: 40,
    templateProblems: intxTemplateProblems,
    statePaths: [],
    orderLookup: intxOrderLookup,
    rejectedOrder: intxRejectedOrder,
  },
  cde: {
    name: "cde",
    defaultBaseUrl: "https://api.exchange.fairx.net",
    apiPrefix: "/rest/",
    envPrefix: "CDE_",
    defaultRatePerSecond: undefined,
    templateProblems: cdeTemplateProblems,
    statePaths: ["/rest/kill-switch", "/rest/unlock-trading"],
    // CDE takes orders over FIX/SBE only: no REST answer rejects one.
    rejectedOrder: () => undefined,
  },
};

export const DEFAULT_WINDOW_SECONDS = 5;

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
}

/** One thing wrong with one account's binding. Never includes the binding's value. */
export interface VenueProblem {
  venue: VenueName;
  account: string;
  binding: string;
  message: string;
}

export interface VenueSetup {
  /** Per venue, the account whose host settings stand for the venue (its default, else its first). */
  venues: Partial<Record<VenueName, VenueConfig>>;
  /** Every available account, by `accountKey(venue, name)`. */
  accounts: Map<string, VenueConfig>;
  problems: VenueProblem[];
}

/** The map key of an account. */
export function accountKey(venue: VenueName, account: string): string {
  return `${venue}/${account}`;
}

/** An account's own settings, from `ACCOUNTS` (the default account's come from the venue's bindings). */
export interface AccountSpec {
  name: string;
  venue: VenueName;
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
    windowSeconds: windowValue ? parseWindow(windowValue, `${p}WINDOW_SECONDS`) : DEFAULT_WINDOW_SECONDS,
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
export function parseVenues(env: object, specs: readonly AccountSpec[] = []): VenueSetup {
  const setup: VenueSetup = { venues: {}, accounts: new Map(), problems: [] };
  for (const venue of VENUES) {
    const profile = PROFILES[venue];
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

/** Why a venue path is refused: 400 for a path that could mean something else, 404 outside the API prefix. */
export interface PathProblem {
  status: 400 | 404;
  reason: string;
}

/**
 * The one rule for every path skewguard signs and sends to a venue (relay, webhook routes, jobs): the path exactly
 * as it goes on the wire, already in normal form, under the venue's API prefix, and with nothing a server or
 * gateway on the way could read as another path: no dot or empty segments, no encoded slash, backslash or dot, no
 * `;` path parameters, no control characters. Returns undefined when the path is fine.
 */
export function checkVenuePath(venue: VenueName, path: string): PathProblem | undefined {
  const bad = (reason: string): PathProblem => ({ status: 400, reason });
  if (/%(2f|5c|2e|00|0[1-9a-f]|1[0-9a-f]|7f)/i.test(path)) {
    return bad("encoded slash, backslash, dot or control character");
  }
  // No venue path needs an escape (symbols and ids are plain), and an escape the venue decodes could spell what an
  // allow-list or an order guard did not see: `/api/v1/%6Frders` is `/api/v1/orders`, `%3B` a `;`.
  if (path.includes("%")) return bad("percent-encoded character");
  if ([...path].some((c) => c === "\\" || c <= " " || c === "\x7f"))
    return bad("backslash, space or control character");
  if (/[?#]/.test(path)) return bad("query or fragment in the path");
  // Jetty-based gateways (INTX's errors name Javalin) read `..;` as `..`: no path parameters anywhere.
  if (path.includes(";")) return bad("path parameter (;)");
  const segments = path.split("/").slice(1);
  if (!path.startsWith("/") || segments.some((s) => s === "." || s === "..")) return bad("dot segment");
  if (segments.slice(0, -1).some((s) => s === "")) return bad("empty segment");
  if (new URL(path, "https://venue.invalid").pathname !== path) return bad("not in normal form");
  const prefix = PROFILES[venue].apiPrefix;
  if (!path.startsWith(prefix) || path.length === prefix.length) return { status: 404, reason: `not under ${prefix}` };
  return undefined;
}
