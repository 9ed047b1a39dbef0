/**
 * What a venue profile says, and the rules every venue shares. A venue is one profile (src/venues/<name>.ts, listed
 * in src/venues/index.ts): its host, API prefix and bindings, how its paths are classified, which requests are safe
 * to send twice, its timestamp window and rate, and what its answers mean. Everything else in skewguard (the router,
 * accounts, guards, re-drive, logs) derives from the profiles and names no venue. Pure.
 */

/**
 * What a venue request does, as far as `read_only`, halts, order guards and re-sending are concerned:
 * - `read`: only reads (every GET, HEAD and OPTIONS, and a venue's POST queries);
 * - `order_create`, `order_modify`: an order; order guards and the per-minute count apply;
 * - `cancel`, `cancel_all`: cancels one order, or many;
 * - `kill_switch`: sets a state that stops trading (passes a halt, like a cancel);
 * - `state`: sets another state (sending it twice acts once), e.g. lifting a venue's trading lock;
 * - `write`: any other write the profile names.
 */
export type RequestKind =
  | "read"
  | "order_create"
  | "order_modify"
  | "cancel"
  | "cancel_all"
  | "kill_switch"
  | "state"
  | "write";

/** The methods that only read: they pass a halt and `read_only`, so they carry no body (the relay refuses one). */
export const READ_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * One line of a venue's path table: a method (`*` = any write) and a path, in lower case without a trailing slash:
 * a string is the path itself, a `prefix` everything under it (itself included).
 */
export type PathRule =
  | { method: string; path: string; kind: RequestKind }
  | { method: string; prefix: string; kind: RequestKind };

/** The reads that tell whether the venue has an order: any of them with a result means it does. */
export interface OrderLookup {
  clientOrderId: string;
  reads: readonly { path: string; query: string }[];
  /** Whether one read's answer (JSON text) holds the order. */
  found(text: string): boolean;
}

/** A declared payload field of a webhook route, by name: its type and whether it may be absent. */
export type TemplateField = (name: string) => { type: string; optional: boolean } | undefined;

export interface VenueProfile {
  /** Lower case: the relay's first path segment (`/intx/…`), the `venue` of accounts, routes and jobs. */
  name: string;
  /** How people write it, for messages: `INTX`. */
  title: string;
  defaultBaseUrl: string;
  /** Every signed path starts with this (`/api/v1/`); its first segment can never be an account name. */
  apiPrefix: string;
  /** Binding-name prefix: `INTX_` for `INTX_API_KEY`, `INTX_BASE_URL`… */
  envPrefix: string;
  /** The venue's timestamp window, seconds, unless `<envPrefix>WINDOW_SECONDS` says otherwise. */
  windowSeconds: number;
  /** Requests per second per API key that the venue allows; undefined where it is not published. */
  defaultRatePerSecond: number | undefined;
  /** A cheap signed read that the venue refuses first when its timestamp is stale (`npm run probe-venue` sends it). */
  probeRead: string;
  /**
   * How a write is classified, first match wins (reads are `read` whatever the table says). Required: a write that no
   * line matches is treated as an order create (fail closed: the order guards and the per-minute count apply).
   */
  paths: readonly PathRule[];
  /**
   * What the venue requires of a webhook route's body template for this method and path, as problem messages
   * (checked when `HOOKS` is parsed, so `/health` names the route before a signal dies at the venue).
   */
  templateProblems?(method: string, path: string, body: unknown, field: TemplateField): string[];
  /**
   * For an order create that carries a `client_order_id`, the reads that find it at the venue (open orders, fills),
   * so an order whose outcome is unknown is re-sent only if the venue has no trace of it. A venue without such reads
   * has none, and its unknown outcomes are never re-sent.
   */
  orderLookup?(method: string, path: string, body: string | undefined): OrderLookup | undefined;
  /** The venue's id of the order an answer is about (for the order ledger), or undefined. */
  orderId?(text: string): string | undefined;
  /** Why a 2xx answer to an order request says the order was rejected, or undefined for one that does not. */
  rejectedOrder?(kind: RequestKind, status: number, text: string): string | undefined;
  /** The venue's market-data WebSocket feed, when it has one: where it is, and the word its subscription signs. */
  marketData?: { defaultUrl: string; signingWord: string };
}

/**
 * The kind of `method path` on `profile` (a venue path, already checked by `checkVenuePath`). Paths compare in
 * lower case and without a trailing slash, so no spelling of an order path escapes its line. Fail closed: a write
 * the profile's table does not name is an order create.
 */
export function classify(profile: VenueProfile, method: string, path: string): RequestKind {
  const m = method.toUpperCase();
  if (READ_METHODS.has(m)) return "read";
  const p = path.toLowerCase().replace(/\/+$/, "");
  for (const rule of profile.paths) {
    if (rule.method !== "*" && rule.method !== m) continue;
    if ("path" in rule ? p === rule.path : p === rule.prefix || p.startsWith(`${rule.prefix}/`)) return rule.kind;
  }
  return "order_create";
}

/**
 * Whether sending a request again cannot act twice: a read or a state, or anything but a POST (a PUT or DELETE names
 * what it acts on). A POST that creates something (an order, an unclassified write) is not.
 */
export function safeToRepeat(profile: VenueProfile, method: string, path: string): boolean {
  const kind = classify(profile, method, path);
  return kind === "read" || kind === "kill_switch" || kind === "state" || method.toUpperCase() !== "POST";
}

/** Why the venue's 2xx answer to `method path` says the order was not placed (`rejectedOrder`), or undefined. */
export function orderRejection(
  profile: VenueProfile,
  method: string,
  path: string,
  status: number,
  text: string,
): string | undefined {
  return profile.rejectedOrder?.(classify(profile, method, path), status, text);
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
export function checkVenuePath(profile: VenueProfile, path: string): PathProblem | undefined {
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
  const prefix = profile.apiPrefix;
  if (!path.startsWith(prefix) || path.length === prefix.length) return { status: 404, reason: `not under ${prefix}` };
  return undefined;
}

const WHOLE_PLACEHOLDER = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

/** How a template value is filled: a literal, one whole placeholder (a builtin or a declared field), or a mix. */
export function templateValue(
  value: unknown,
  field: TemplateField,
): { literal: unknown } | { mixed: true } | { placeholder: string; spec: ReturnType<TemplateField> } {
  if (typeof value !== "string") return { literal: value };
  const whole = WHOLE_PLACEHOLDER.exec(value);
  if (!whole?.[1]) return value.includes("{{") ? { mixed: true } : { literal: value };
  return { placeholder: whole[1], spec: field(whole[1]) };
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A JSON object's fields, or undefined for anything else. */
export function jsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
