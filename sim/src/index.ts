/**
 * skewguard-sim: a local stand-in for the Coinbase INTX (`/api/v1/...`) and CDE (`/rest/...`) REST gateways.
 * Strict where they are strict: it recomputes every CB-ACCESS-SIGN with its own HMAC (node:crypto, never
 * skewguard's code), refuses timestamps outside the window of its own skewed clock, stamps `Date` from that clock,
 * rate-limits INTX keys at 40/s, keeps a kill-switch lock per venue and, per account (API key), INTX orders, fills
 * and positions. `/_sim/control` changes skew, latency and faults at run time and reports the venue-side effects,
 * in total and per account (with the order requests that reached each INTX account's order routes), for tests
 * and demos only.
 * This file is the gateway (authentication, faults, control); the venues' routes are in intx.ts and cde.ts.
 * `/_sim/captured...` records whatever reaches it and `/_sim/redirect?to=` redirects, for redirect and leak tests.
 * `/_sim/alerts...` is an alert receiver for skewguard's alert sinks, which can play a sink that is down or slow
 * (alerts.ts).
 * docs/simulator.md describes every route and control field.
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import {
  ALERTS_FAULTS,
  type AlertsFault,
  alerts,
  alertsFault,
  isAlertsPath,
  receiveAlert,
  resetAlerts,
  setAlertsFault,
} from "./alerts.ts";
import { handleCde } from "./cde.ts";
import { handleIntx, isIntxPublic, resetIntx } from "./intx.ts";
import {
  feed,
  feedInterval,
  handleFeed,
  resetFeed,
  setFeedInterval,
  WS_FAULT_KINDS,
  type WsFaultKind,
  wsFault,
} from "./md.ts";
import {
  type AccountEffects,
  accountEffects,
  CLIENT_ORDER_ID_LENGTHS,
  type ClientOrderIdLengths,
  DUPLICATE_SCOPES,
  type DuplicateScope,
  effects,
  effectsOf,
  isObject,
  resetEffects,
  tradingLocked,
  type Venue,
  type VenueRequest,
} from "./shared.ts";

/**
 * The [vars] of sim/wrangler.toml. Accounts follow skewguard's naming: `INTX_API_KEY`, `_SECRET`, `_PASSPHRASE`
 * are the account `default`; `INTX_<NAME>_API_KEY`, `_SECRET`, `_PASSPHRASE` the account `<name>`; CDE likewise.
 */
interface SimEnv {
  SKEW_MS?: string;
  LATENCY_UP_MS?: string;
  LATENCY_DOWN_MS?: string;
  WINDOW_SECONDS?: string;
  [name: string]: unknown;
}

/** One API key a venue knows, with the secret and passphrase that go with it. */
interface Account {
  venue: Venue;
  /** `default` for the unprefixed variables, else `<NAME>` lowercased (`INTX_ALPHA_API_KEY`: `alpha`). */
  name: string;
  key: string;
  secret: string | undefined;
  passphrase: string | undefined;
}

const VENUES: readonly Venue[] = ["intx", "cde"];
const ACCOUNT_KEY = /^(INTX|CDE)_(?:([A-Z0-9]+(?:_[A-Z0-9]+)*)_)?API_KEY$/;

const accountCache = new WeakMap<object, Account[]>();

/** Every configured account, `default` first, then the others by name, INTX before CDE. A key left empty is none. */
function accounts(env: SimEnv): Account[] {
  const cached = accountCache.get(env);
  if (cached) return cached;
  const text = (name: string) => {
    const value = env[name];
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  const found: Account[] = [];
  for (const variable of Object.keys(env).sort()) {
    const m = ACCOUNT_KEY.exec(variable);
    const key = m ? text(variable) : undefined;
    if (!m || key === undefined) continue;
    const [, prefix, infix] = m;
    const name = infix === undefined ? "default" : infix.toLowerCase();
    // `INTX_DEFAULT_API_KEY` would shadow the unprefixed account: not an account.
    if (infix !== undefined && name === "default") continue;
    const base = `${prefix}_${infix === undefined ? "" : `${infix}_`}API_`;
    found.push({
      venue: prefix === "INTX" ? "intx" : "cde",
      name,
      key,
      secret: text(`${base}SECRET`),
      passphrase: text(`${base}PASSPHRASE`),
    });
  }
  const rank = (a: Account) => `${VENUES.indexOf(a.venue)}${a.name === "default" ? "" : ` ${a.name}`}`;
  found.sort((a, b) => (rank(a) < rank(b) ? -1 : rank(a) > rank(b) ? 1 : 0));
  accountCache.set(env, found);
  return found;
}

type Range = [number, number];
/** `5xx`: answer 503 without processing. `drop`: fail the connection without processing. The `_after` kinds
 * process the request first (its effect happens) and then fail, like a response lost on the way back. These and
 * `slow` fire on an authenticated request. `reflect` and `redirect` are a misbehaving front (a proxy or gateway
 * that is not the venue): they fire on the next request to a venue path, before authentication, and nothing is
 * processed. `reflect` answers a 500 HTML page echoing every request header, dated by the real clock; `redirect`
 * answers 307 to another origin. */
type FaultKind = "5xx" | "5xx_after" | "drop" | "drop_after" | "slow" | "reflect" | "redirect";
const FAULT_KINDS: readonly FaultKind[] = ["5xx", "5xx_after", "drop", "drop_after", "slow", "reflect", "redirect"];

/**
 * `reflect` only: how the echo page is sent. `gzip`, `deflate` and `gzip, gzip` (gzip inside gzip) compress it and
 * say so in `Content-Encoding`; `utf-16le` and `utf-16be` encode its text so (with `charset=` saying which, and no
 * byte order mark). Undefined: UTF-8, uncompressed.
 */
type ReflectEncoding = "gzip" | "deflate" | "gzip, gzip" | "utf-16le" | "utf-16be";
const REFLECT_ENCODINGS: readonly ReflectEncoding[] = ["gzip", "deflate", "gzip, gzip", "utf-16le", "utf-16be"];

interface Fault {
  kind: FaultKind;
  remaining: number;
  slowMs: number;
  /** `redirect` only: the Location to answer; undefined = the capture sink on another origin (defaultLocation). */
  location?: string;
  /** `reflect` only: how the page is encoded (ReflectEncoding); undefined = UTF-8, uncompressed. */
  encoding?: ReflectEncoding;
}

interface Settings {
  skewMs: number;
  up: Range;
  down: Range;
  windowSeconds: number;
  /** Status for a timestamp outside the window (the real one is undocumented; docs/protocol.md). */
  timestampStatus: Record<Venue, number>;
  /** The body of that refusal: the venue's generic one, or the legacy or v2 Coinbase words. */
  timestampBody: TimestampBody;
  /** Whether INTX's 429 carries `Retry-After: 1` (INTX documents none). */
  retryAfter: boolean;
  /** When INTX refuses a client_order_id as a duplicate (intx.ts). */
  duplicateScope: DuplicateScope;
  /** How INTX reads its client_order_id forms' lengths (shared.ts). */
  clientOrderIdLengths: ClientOrderIdLengths;
  /** INTX's limit of authenticated requests per key in any rolling second; null = none (load tests). */
  intxRateLimit: number | null;
  fault: Fault | null;
}

/** One request that reached the capture sink (`/_sim/captured...`). */
interface Captured {
  method: string;
  host: string;
  path: string;
  /** How many request headers are named `cb-access-*`: 4 means a signed request was handed over whole. */
  cb_access_headers: number;
  body_bytes: number;
}

let settings: Settings | undefined;
const recentByKey = new Map<string, number[]>();
/** The capture sink's log, most recent last. */
const captured: Captured[] = [];
const CAPTURED_MAX = 50;
const CAPTURE_PREFIX = "/_sim/captured";
const REDIRECT_ORIGIN = "http://redirect-target.sim";
function range(text: string | undefined, fallback: Range): Range {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text ?? "");
  if (!m) return fallback;
  const low = Number(m[1]);
  return [low, Math.max(low, Number(m[2] ?? m[1]))];
}

function defaults(env: SimEnv): Settings {
  return {
    skewMs: Number(env.SKEW_MS ?? 0) || 0,
    up: range(env.LATENCY_UP_MS, [0, 0]),
    down: range(env.LATENCY_DOWN_MS, [0, 0]),
    windowSeconds: Number(env.WINDOW_SECONDS ?? 5) || 5,
    timestampStatus: { intx: 401, cde: 400 },
    timestampBody: "generic",
    retryAfter: false,
    duplicateScope: "open",
    clientOrderIdLengths: "exact",
    intxRateLimit: INTX_RATE_LIMIT,
    fault: null,
  };
}

/** Authenticated INTX requests per key in any rolling second (the venue's published limit). */
const INTX_RATE_LIMIT = 40;

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
const pick = ([low, high]: Range) => low + Math.random() * (high - low);

/** `generic`: the venue's one auth refusal; `expired`: `{"message": "request timestamp expired"}`; `v2`: the same
 * words in Coinbase's v2 `errors[]` shape. Only the timestamp refusal's body changes. */
type TimestampBody = "generic" | "expired" | "v2";
const TIMESTAMP_BODIES: readonly TimestampBody[] = ["generic", "expired", "v2"];

/** Every authentication refusal of a venue answers this one body (INTX: Javalin's UnauthorizedResponse). */
const GENERIC_AUTH: Record<Venue, unknown> = {
  intx: { title: "io.javalin.http.UnauthorizedResponse: Unauthorized", status: 401 },
  cde: { message: "Unauthorized" },
};

const TIMESTAMP_TEXT = "request timestamp expired";

/** The words INTX's 429 carries: Javalin's RateLimiter message, as INTX documents it (the limit enforced is 40/s). */
const RATE_LIMIT_TEXT = "Rate limit exceeded - Server allows 100 requests per second";

function reject(key: string, status: number, body: unknown, headers: Record<string, string> = {}): Response {
  effects.rejected[key] = (effects.rejected[key] ?? 0) + 1;
  return Response.json(body, { status, headers });
}

/**
 * Checks the four CB-ACCESS headers against the venue's rules and the account the key names: its secret, its
 * passphrase. A Response means refused; an Account, authenticated as that account. Every refusal but the rate
 * limit answers the venue's generic body (GENERIC_AUTH); `effects.rejected` tells the reasons apart.
 */
function authenticate(
  env: SimEnv,
  s: Settings,
  venue: Venue,
  request: Request,
  body: Uint8Array,
  serverMs: number,
): Response | Account {
  const h = request.headers;
  const key = h.get("cb-access-key");
  const sign = h.get("cb-access-sign");
  const timestamp = h.get("cb-access-timestamp");
  const passphrase = h.get("cb-access-passphrase");
  const refuse = (reason: string) => reject(reason, 401, GENERIC_AUTH[venue]);
  if (!key || !sign || !timestamp || !passphrase) return refuse("missing_headers");
  const creds = accounts(env).find((a) => a.venue === venue && a.key === key);
  if (!creds?.secret) return refuse("key");
  if (passphrase !== creds.passphrase) return refuse("passphrase");
  if (!/^\d{1,12}$/.test(timestamp)) return refuse("timestamp_format");
  if (Math.abs(Number(timestamp) * 1000 - serverMs) > s.windowSeconds * 1000) {
    const text =
      s.timestampBody === "expired"
        ? { message: TIMESTAMP_TEXT }
        : s.timestampBody === "v2"
          ? { errors: [{ id: "authentication_error", message: TIMESTAMP_TEXT }] }
          : GENERIC_AUTH[venue];
    return reject("timestamp_window", s.timestampStatus[venue], text);
  }
  const path = new URL(request.url).pathname;
  const expected = createHmac("sha256", Buffer.from(creds.secret, "base64"))
    .update(`${timestamp}${request.method.toUpperCase()}${path}`)
    .update(body)
    .digest("base64");
  if (sign !== expected) return refuse("signature");
  if (venue === "intx" && s.intxRateLimit !== null) {
    const recent = (recentByKey.get(key) ?? []).filter((t) => t > serverMs - 1000);
    if (recent.length >= s.intxRateLimit) {
      const body = { title: `io.javalin.http.HttpResponseException: ${RATE_LIMIT_TEXT}`, status: 429 };
      return reject("rate_limit", 429, body, s.retryAfter ? { "retry-after": "1" } : {});
    }
    recent.push(serverMs);
    recentByKey.set(key, recent);
  }
  return creds;
}

/** True when the request's Accept asks for JSON by name: `application/json` or an `application/*+json` type. */
function wantsJson(request: Request): boolean {
  const accept = request.headers.get("accept");
  if (accept === null) return false;
  return accept
    .split(",")
    .map((part) => (part.split(";")[0] ?? "").trim().toLowerCase())
    .some((type) => type === "application/json" || /^application\/[^/]+\+json$/.test(type));
}

/** The human message of an error body in any of the three shapes: Javalin's title after ": ", `message`, `errors[]`. */
function errorText(json: unknown): string | undefined {
  if (!isObject(json)) return undefined;
  if (typeof json.title === "string") {
    const at = json.title.indexOf(": ");
    return at === -1 ? json.title : json.title.slice(at + 2);
  }
  if (typeof json.message === "string") return json.message;
  if (Array.isArray(json.errors)) {
    const texts = json.errors.flatMap((e) => (isObject(e) && typeof e.message === "string" ? [e.message] : []));
    if (texts.length > 0) return texts.join("; ");
  }
  return undefined;
}

/**
 * A venue error (status >= 400) as Javalin renders it for a request that did not ask for JSON: `text/plain`, the
 * message alone (a body with no message, whole). Success answers, and errors to a request whose Accept names JSON,
 * pass unchanged.
 */
async function asVenueError(request: Request, response: Response): Promise<Response> {
  if (response.status < 400 || wantsJson(request)) return response;
  const raw = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  const text = errorText(json) ?? raw;
  const headers = new Headers(response.headers);
  headers.set("content-type", "text/plain");
  return new Response(text, { status: response.status, headers });
}

/** The venue's business logic, after authentication (or none, for a public INTX route). */
function handle(venue: Venue, req: VenueRequest): Response {
  return venue === "intx" ? handleIntx(req) : handleCde(req);
}

class BadControl extends Error {}

const CONTROL_KEYS = [
  "reset",
  "skew_ms",
  "up_ms",
  "down_ms",
  "window_seconds",
  "timestamp_status",
  "timestamp_body",
  "retry_after",
  "duplicate_scope",
  "client_order_id_lengths",
  "intx_rate_limit",
  "fault",
  "alerts_fault",
  "ws_fault",
  "ws_interval_ms",
];
const FAULT_KEYS = ["kind", "count", "slow_ms", "location", "encoding"];

const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function unknownKeys(object: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) throw new BadControl(`unknown key ${JSON.stringify(`${where}${key}`)}`);
  }
}

function latency(value: unknown, name: string): Range {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((v) => isNumber(v) && v >= 0)) {
    throw new BadControl(`${name} must be [min, max]: two non-negative numbers of milliseconds`);
  }
  const [low, high] = value as Range;
  if (low > high) throw new BadControl(`${name} must be [min, max] with min <= max`);
  return [low, high];
}

/** A POST body, checked whole before anything changes: a 400 leaves the simulator as it was. */
function parseControl(text: string) {
  let change: unknown;
  try {
    change = JSON.parse(text);
  } catch {
    throw new BadControl("body is not valid JSON");
  }
  if (!isObject(change)) throw new BadControl("body must be a JSON object");
  unknownKeys(change, CONTROL_KEYS, "");
  const {
    reset,
    skew_ms,
    up_ms,
    down_ms,
    window_seconds,
    timestamp_status,
    timestamp_body,
    retry_after,
    duplicate_scope,
    client_order_id_lengths,
    intx_rate_limit,
    fault,
    alerts_fault,
    ws_fault,
    ws_interval_ms,
  } = change;
  const oneOf = (values: readonly string[]) => values.map((v) => JSON.stringify(v)).join(", ");
  if (timestamp_body !== undefined && !TIMESTAMP_BODIES.includes(timestamp_body as TimestampBody)) {
    throw new BadControl(`timestamp_body must be one of ${oneOf(TIMESTAMP_BODIES)}`);
  }
  if (retry_after !== undefined && typeof retry_after !== "boolean") {
    throw new BadControl("retry_after must be true or false");
  }
  if (duplicate_scope !== undefined && !DUPLICATE_SCOPES.includes(duplicate_scope as DuplicateScope)) {
    throw new BadControl(`duplicate_scope must be one of ${oneOf(DUPLICATE_SCOPES)}`);
  }
  if (
    client_order_id_lengths !== undefined &&
    !CLIENT_ORDER_ID_LENGTHS.includes(client_order_id_lengths as ClientOrderIdLengths)
  ) {
    throw new BadControl(`client_order_id_lengths must be one of ${oneOf(CLIENT_ORDER_ID_LENGTHS)}`);
  }
  if (alerts_fault !== undefined && alerts_fault !== null && !ALERTS_FAULTS.includes(alerts_fault as AlertsFault)) {
    throw new BadControl(`alerts_fault must be ${ALERTS_FAULTS.map((k) => JSON.stringify(k)).join(", ")} or null`);
  }
  if (reset !== undefined && typeof reset !== "boolean") throw new BadControl("reset must be true or false");
  if (skew_ms !== undefined && !isNumber(skew_ms)) throw new BadControl("skew_ms must be a number of milliseconds");
  if (window_seconds !== undefined && !(isNumber(window_seconds) && window_seconds > 0)) {
    throw new BadControl("window_seconds must be a positive number");
  }
  if (intx_rate_limit !== undefined && intx_rate_limit !== null) {
    if (!(Number.isInteger(intx_rate_limit) && (intx_rate_limit as number) >= 1)) {
      throw new BadControl("intx_rate_limit must be a whole number, at least 1, or null for no limit");
    }
  }
  const wsFault = parseWsFault(ws_fault);
  if (ws_interval_ms !== undefined && !(Number.isInteger(ws_interval_ms) && (ws_interval_ms as number) >= 5)) {
    throw new BadControl("ws_interval_ms must be a whole number of milliseconds, at least 5");
  }
  let statuses: Partial<Record<Venue, number>> | undefined;
  if (timestamp_status !== undefined) {
    if (!isObject(timestamp_status)) throw new BadControl('timestamp_status must be an object like {"intx": 401}');
    unknownKeys(timestamp_status, ["intx", "cde"], "timestamp_status.");
    statuses = {};
    for (const [venue, status] of Object.entries(timestamp_status)) {
      if (!Number.isInteger(status) || (status as number) < 200 || (status as number) > 599) {
        throw new BadControl(`timestamp_status.${venue} must be an HTTP status from 200 to 599`);
      }
      statuses[venue as Venue] = status as number;
    }
  }
  let newFault: Fault | null | undefined;
  if (fault === null) newFault = null;
  else if (fault !== undefined) {
    if (!isObject(fault)) throw new BadControl("fault must be an object or null");
    unknownKeys(fault, FAULT_KEYS, "fault.");
    const { kind, count, slow_ms, location, encoding } = fault;
    if (!FAULT_KINDS.includes(kind as FaultKind)) {
      throw new BadControl(`fault.kind must be one of ${FAULT_KINDS.join(", ")}`);
    }
    if (count !== undefined && !(Number.isInteger(count) && (count as number) >= 1)) {
      throw new BadControl("fault.count must be a whole number, at least 1");
    }
    if (slow_ms !== undefined) {
      if (kind !== "slow") throw new BadControl("fault.slow_ms applies to kind slow only");
      if (!(isNumber(slow_ms) && slow_ms >= 0)) throw new BadControl("fault.slow_ms must be a non-negative number");
    }
    if (location !== undefined) {
      if (kind !== "redirect") throw new BadControl("fault.location applies to kind redirect only");
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      if (typeof location !== "string" || location === "" || /[\u0000-\u001f\u007f]/.test(location)) {
        throw new BadControl("fault.location must be a non-empty string without control characters");
      }
    }
    if (encoding !== undefined) {
      if (kind !== "reflect") throw new BadControl("fault.encoding applies to kind reflect only");
      if (!REFLECT_ENCODINGS.includes(encoding as ReflectEncoding)) {
        throw new BadControl(
          `fault.encoding must be one of ${REFLECT_ENCODINGS.map((e) => JSON.stringify(e)).join(", ")}`,
        );
      }
    }
    newFault = {
      kind: kind as FaultKind,
      remaining: (count as number | undefined) ?? 1,
      slowMs: (slow_ms as number | undefined) ?? 15_000,
      ...(location !== undefined ? { location: location as string } : {}),
      ...(encoding !== undefined ? { encoding: encoding as ReflectEncoding } : {}),
    };
  }
  return {
    reset: reset === true,
    skewMs: skew_ms as number | undefined,
    up: up_ms === undefined ? undefined : latency(up_ms, "up_ms"),
    down: down_ms === undefined ? undefined : latency(down_ms, "down_ms"),
    windowSeconds: window_seconds as number | undefined,
    statuses,
    timestampBody: timestamp_body as TimestampBody | undefined,
    retryAfter: retry_after as boolean | undefined,
    duplicateScope: duplicate_scope as DuplicateScope | undefined,
    clientOrderIdLengths: client_order_id_lengths as ClientOrderIdLengths | undefined,
    intxRateLimit: intx_rate_limit as number | null | undefined,
    fault: newFault,
    alertsFault: alerts_fault as AlertsFault | null | undefined,
    wsFault,
    wsIntervalMs: ws_interval_ms as number | undefined,
  };
}

/** `ws_fault`: `{"kind": "ws_close" | "ws_stall" | "ws_refuse" | "ws_redirect" | "ws_echo", "count"?: n}` (count, default 1). */
function parseWsFault(value: unknown): { kind: WsFaultKind; count: number } | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) throw new BadControl("ws_fault must be an object");
  unknownKeys(value, ["kind", "count"], "ws_fault.");
  if (!WS_FAULT_KINDS.includes(value.kind as WsFaultKind)) {
    throw new BadControl(`ws_fault.kind must be one of ${WS_FAULT_KINDS.join(", ")}`);
  }
  const count = value.count ?? 1;
  if (!(Number.isInteger(count) && (count as number) >= 1)) {
    throw new BadControl("ws_fault.count must be a whole number, at least 1");
  }
  return { kind: value.kind as WsFaultKind, count: count as number };
}

/**
 * Per configured account, `"<venue>:<name>"`: its key (not a secret) and what the venue did for it, every field
 * present on every account (an INTX account's `kill_switches` and a CDE account's order fields stay at zero).
 */
function accountsState(env: SimEnv) {
  const out: Record<string, { key: string } & AccountEffects> = {};
  for (const a of accounts(env)) {
    const counted = accountEffects[`${a.venue}:${a.name}`];
    out[`${a.venue}:${a.name}`] = {
      key: a.key,
      requests: counted?.requests ?? 0,
      orders_placed: counted?.orders_placed ?? 0,
      orders_modified: counted?.orders_modified ?? 0,
      kill_switches: counted?.kill_switches ?? 0,
      orders: counted?.orders ?? [],
    };
  }
  return out;
}

function state(current: Settings, env: SimEnv) {
  const fault = current.fault && {
    ...current.fault,
    ...(current.fault.kind === "redirect" ? { location: current.fault.location ?? null } : {}),
  };
  return {
    skew_ms: current.skewMs,
    up_ms: current.up,
    down_ms: current.down,
    window_seconds: current.windowSeconds,
    timestamp_status: current.timestampStatus,
    timestamp_body: current.timestampBody,
    retry_after: current.retryAfter,
    duplicate_scope: current.duplicateScope,
    client_order_id_lengths: current.clientOrderIdLengths,
    intx_rate_limit: current.intxRateLimit,
    fault,
    trading_locked: { ...tradingLocked },
    effects,
    accounts: accountsState(env),
    captured,
    alerts,
    alerts_fault: alertsFault(),
    ws_md: { ...feed },
    ws_interval_ms: feedInterval(),
  };
}

/** `/_sim/control`: GET reads settings and effects; POST changes them. For tests and demos only. */
async function control(request: Request, env: SimEnv): Promise<Response> {
  if (request.method === "POST") {
    let change: ReturnType<typeof parseControl>;
    try {
      change = parseControl(await request.text());
    } catch (err) {
      const message = err instanceof BadControl ? err.message : "body could not be read";
      return Response.json({ error: { code: "bad_control", message } }, { status: 400 });
    }
    if (change.reset) {
      settings = defaults(env);
      resetIntx();
      recentByKey.clear();
      tradingLocked.intx = false;
      tradingLocked.cde = false;
      captured.length = 0;
      resetAlerts();
      resetEffects();
      resetFeed();
    }
    const current = settings ?? defaults(env);
    settings = current;
    if (change.skewMs !== undefined) current.skewMs = change.skewMs;
    if (change.up) current.up = change.up;
    if (change.down) current.down = change.down;
    if (change.windowSeconds !== undefined) current.windowSeconds = change.windowSeconds;
    if (change.statuses) Object.assign(current.timestampStatus, change.statuses);
    if (change.timestampBody !== undefined) current.timestampBody = change.timestampBody;
    if (change.retryAfter !== undefined) current.retryAfter = change.retryAfter;
    if (change.duplicateScope !== undefined) current.duplicateScope = change.duplicateScope;
    if (change.clientOrderIdLengths !== undefined) current.clientOrderIdLengths = change.clientOrderIdLengths;
    if (change.intxRateLimit !== undefined) current.intxRateLimit = change.intxRateLimit;
    if (change.fault !== undefined) current.fault = change.fault;
    if (change.alertsFault !== undefined) setAlertsFault(change.alertsFault);
    if (change.wsFault) wsFault(change.wsFault.kind, change.wsFault.count);
    if (change.wsIntervalMs !== undefined) setFeedInterval(change.wsIntervalMs);
  }
  return Response.json(state(settings ?? defaults(env), env));
}

/** `/_sim/captured...`: any host, any method. Records what arrived (counts, not values) and answers 200. */
async function capture(request: Request, url: URL): Promise<Response> {
  const body = await readBody(request);
  let cbAccess = 0;
  for (const [name] of request.headers) if (name.toLowerCase().startsWith("cb-access-")) cbAccess++;
  captured.push({
    method: request.method,
    host: url.host,
    path: url.pathname + url.search,
    cb_access_headers: cbAccess,
    body_bytes: body.byteLength,
  });
  if (captured.length > CAPTURED_MAX) captured.splice(0, captured.length - CAPTURED_MAX);
  return Response.json({ captured: true });
}

/** `/_sim/redirect?to=<absolute URL>`: 307 to it, whatever the method. Records nothing. */
function redirectTo(url: URL): Response {
  const to = url.searchParams.get("to");
  if (to === null || !URL.canParse(to)) {
    return Response.json(
      {
        error: {
          code: "bad_redirect",
          message: "to must be an absolute URL, e.g. /_sim/redirect?to=https%3A%2F%2Fexample.test%2F",
        },
      },
      { status: 400 },
    );
  }
  return new Response(null, { status: 307, headers: { location: new URL(to).href } });
}

/** Takes one firing of a front fault (`reflect`, `redirect`), if one is set. */
function takeFrontFault(s: Settings): Fault | undefined {
  const fault = s.fault;
  if (!fault || fault.remaining <= 0 || (fault.kind !== "reflect" && fault.kind !== "redirect")) return undefined;
  fault.remaining--;
  if (fault.remaining === 0) s.fault = null;
  return fault;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A gateway's debug error page: echoes the request line and every request header (values HTML-escaped only). */
async function reflectPage(request: Request, url: URL, encoding: ReflectEncoding | undefined): Promise<Response> {
  const rows = [...request.headers].map(
    ([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`,
  );
  const html = [
    "<!doctype html>",
    "<html><head><title>500 Internal Server Error</title></head><body>",
    "<h1>500 Internal Server Error</h1>",
    `<p>upstream error while handling <code>${escapeHtml(`${request.method} ${url.pathname}${url.search}`)}</code></p>`,
    "<h2>Request headers</h2>",
    "<table>",
    ...rows,
    "</table>",
    "</body></html>",
    "",
  ].join("\n");
  if (encoding === "utf-16le" || encoding === "utf-16be") {
    const bytes = new Uint8Array(html.length * 2);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < html.length; i++) view.setUint16(i * 2, html.charCodeAt(i), encoding === "utf-16le");
    return new Response(bytes, { status: 500, headers: { "content-type": `text/html; charset=${encoding}` } });
  }
  if (encoding === undefined) {
    return new Response(html, { status: 500, headers: { "content-type": "text/html; charset=utf-8" } });
  }
  // Compressed by hand, each coding in the order listed, and sent as is (`encodeBody: "manual"`): the runtime
  // would otherwise compress the body once more itself.
  let bytes: Uint8Array = new TextEncoder().encode(html);
  for (const coding of encoding.split(", ")) {
    const format = coding === "gzip" ? "gzip" : "deflate";
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream(format));
    bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  return new Response(bytes, {
    status: 500,
    headers: { "content-type": "text/html; charset=utf-8", "content-encoding": encoding },
    encodeBody: "manual",
  });
}

async function readBody(request: Request): Promise<Uint8Array> {
  return request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array(0);
}

/**
 * A dropped connection: the caller's fetch rejects. The message starts the way workerd words a lost peer
 * ("disconnected: operation canceled"), which the test runner's log filter knows, so a passing run stays quiet.
 */
class DroppedConnection extends Error {
  constructor(when: string) {
    super(`disconnected: operation canceled (simulated dropped connection ${when})`);
  }
}

/** Counts probes, and notes when each keyed request arrived, so tests can check the per-second peak per key. */
function recordArrival(request: Request, url: URL): void {
  const key = request.headers.get("cb-access-key");
  if (key === null) {
    if (url.pathname === "/api/v1/" || url.pathname === "/rest/") effects.probes++;
    return;
  }
  effects.arrivals[key] ??= [];
  const times = effects.arrivals[key];
  times.push(Date.now());
  if (times.length > 2000) times.shift();
}

export default {
  async fetch(request: Request, env: SimEnv): Promise<Response> {
    settings ??= defaults(env);
    const s = settings;
    const url = new URL(request.url);
    if (url.pathname === "/_sim/control") return control(request, env);
    if (url.pathname.startsWith(CAPTURE_PREFIX)) return capture(request, url);
    if (url.pathname === "/_sim/redirect") return redirectTo(url);
    if (isAlertsPath(url.pathname)) return receiveAlert(request, url);
    if (url.pathname === "/ws-md") {
      const intxAccount = (key: string) => accounts(env).find((a) => a.venue === "intx" && a.key === key);
      return handleFeed(request, () => Date.now() + (settings?.skewMs ?? 0), intxAccount);
    }
    const venue: Venue | undefined = url.pathname.startsWith("/api/v1/")
      ? "intx"
      : url.pathname.startsWith("/rest/")
        ? "cde"
        : undefined;
    if (!venue) return Response.json({ message: "Not Found" }, { status: 404 });
    effects.requests++;
    recordArrival(request, url);
    const body = await readBody(request);
    await sleep(pick(s.up));
    const serverMs = Date.now() + s.skewMs;
    const date = new Date(Math.floor(serverMs / 1000) * 1000).toUTCString();

    const front = takeFrontFault(s);
    if (front?.kind === "reflect") {
      const page = await reflectPage(request, url, front.encoding);
      await sleep(pick(s.down));
      // Not the venue: the front's own clock, which is the real one, never the venue's skewed one.
      page.headers.set("date", new Date().toUTCString());
      return page;
    }
    let response: Response | undefined;
    if (front?.kind === "redirect") {
      const location = front.location ?? `${REDIRECT_ORIGIN}${CAPTURE_PREFIX}${url.pathname}${url.search}`;
      response = new Response(null, { status: 307, headers: { location } });
    }

    const method = request.method.toUpperCase();
    const req: VenueRequest = {
      method,
      url,
      body,
      nowMs: serverMs,
      duplicateScope: s.duplicateScope,
      clientOrderIdLengths: s.clientOrderIdLengths,
    };
    // A public INTX route (assets, instruments, quotes) ignores the CB-ACCESS headers, signed or not.
    const isPublic = venue === "intx" && isIntxPublic(method, url.pathname);
    if (!isPublic && !response) {
      const auth = authenticate(env, s, venue, request, body, serverMs);
      if (auth instanceof Response) response = auth;
      else req.account = auth.name;
    }
    /** The route ran: count it, in total and for the account that signed it. */
    const accepted = () => {
      effects.accepted++;
      if (req.account !== undefined) effectsOf(venue, req.account).requests++;
    };
    /** A `5xx` fault's answer is a front's, not the venue's: it stays JSON whatever the Accept. */
    let front5xx = false;
    const fault = s.fault;
    if (!response && fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.remaining === 0) s.fault = null;
      if (fault.kind === "5xx") response = Response.json({ message: "Service Unavailable" }, { status: 503 });
      front5xx = fault.kind === "5xx" || fault.kind === "5xx_after";
      if (fault.kind === "drop") throw new DroppedConnection("before processing");
      if (fault.kind === "5xx_after" || fault.kind === "drop_after" || fault.kind === "slow") {
        const processed = handle(venue, req);
        accepted();
        if (fault.kind === "drop_after") throw new DroppedConnection("after processing");
        if (fault.kind === "slow") await sleep(fault.slowMs);
        response =
          fault.kind === "slow" ? processed : Response.json({ message: "Internal Server Error" }, { status: 500 });
      }
    }
    if (!response) {
      response = handle(venue, req);
      accepted();
    }
    if (!front5xx) response = await asVenueError(request, response);
    await sleep(pick(s.down));
    const headers = new Headers(response.headers);
    headers.set("date", date);
    return new Response(response.body, { status: response.status, headers });
  },
};
