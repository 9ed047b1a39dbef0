/**
 * What the simulator's gateway (index.ts) and its two venues (intx.ts, cde.ts) share: the effect counters (totals
 * and per account, with each account's order log), the kill-switch lock, the request a venue handler sees, and a few answer and number helpers.
 */

export type Venue = "intx" | "cde";

/** One authenticated (or public) venue request, as a route handler sees it. */
export interface VenueRequest {
  method: string;
  url: URL;
  body: Uint8Array;
  /** The simulator's skewed clock at arrival, in ms: every timestamp the venue writes comes from it. */
  nowMs: number;
  /** The account whose key authenticated the request (`default`, `alpha`...); undefined on a public INTX route. */
  account?: string;
  /** The `duplicate_scope` knob: INTX refuses a client_order_id while an order with it is open, or ever used. */
  duplicateScope: DuplicateScope;
}

/** `open`: a client_order_id is taken while a WORKING order has it; `ever`: once used, always taken. */
export type DuplicateScope = "open" | "ever";
export const DUPLICATE_SCOPES: readonly DuplicateScope[] = ["open", "ever"];

/** Counters of what the venue did, so tests can assert "at most one venue-side effect per logical request". */
export interface Effects {
  requests: number;
  accepted: number;
  rejected: Record<string, number>;
  orders_placed: number;
  orders_cancelled: number;
  orders_modified: number;
  kill_switches: number;
  unlocks: number;
  /** Unsigned requests to an API root (`/api/v1/`, `/rest/`): the clock probes a client sends. */
  probes: number;
  /** Per CB-ACCESS-KEY, when each request reached the gateway (real clock, epoch ms), the last 2000. */
  arrivals: Record<string, number[]>;
}

function freshEffects(): Effects {
  return {
    requests: 0,
    accepted: 0,
    rejected: {},
    orders_placed: 0,
    orders_cancelled: 0,
    orders_modified: 0,
    kill_switches: 0,
    unlocks: 0,
    probes: 0,
    arrivals: {},
  };
}

export let effects = freshEffects();

/** The request-body fields an order record copies, as sent: any JSON value, a field the body lacked left out. */
export const ORDER_RECORD_FIELDS = [
  "client_order_id",
  "instrument",
  "side",
  "type",
  "tif",
  "size",
  "price",
  "close_only",
] as const;

/**
 * One order request that reached an INTX order route (`POST /api/v1/orders`, `PUT /api/v1/orders/{id}`), whether
 * the venue then accepted it or not. Each body field is copied as the body had it (a string, a number, `null`...),
 * and left out when the body did not have it or was not a JSON object.
 */
export type OrderRecord = {
  action: "create" | "modify";
  /** modify only: the `{id}` of the path, percent-decoded, as the route looked it up. */
  order_id?: string;
} & { [field in (typeof ORDER_RECORD_FIELDS)[number]]?: unknown } & {
  /** The simulator's skewed clock when the route ran (ISO 8601, ms, UTC): the clock of the order's `submit_time`. */
  at: string;
};

/** How many order records an account keeps: the most recent, oldest first. */
export const ORDERS_KEPT = 200;

/** Per account, what the venue did for it: the `accounts` of `/_sim/control`, without the key. */
export interface AccountEffects {
  /** Authenticated requests that reached the venue's routes as this account (its share of `effects.accepted`). */
  requests: number;
  orders_placed: number;
  /** INTX modifies that succeeded (its share of `effects.orders_modified`). */
  orders_modified: number;
  /** CDE kill switches it called (its share of `effects.kill_switches`). */
  kill_switches: number;
  /** The last `ORDERS_KEPT` order requests that reached an INTX order route as this account, oldest first. */
  orders: OrderRecord[];
}

/** Keyed `"<venue>:<account>"`, e.g. `"intx:alpha"`; an entry appears on the account's first counted request. */
export let accountEffects: Record<string, AccountEffects> = {};

/** The counters of one account, created at zero. */
export function effectsOf(venue: Venue, account: string): AccountEffects {
  const id = `${venue}:${account}`;
  accountEffects[id] ??= { requests: 0, orders_placed: 0, orders_modified: 0, kill_switches: 0, orders: [] };
  return accountEffects[id];
}

/**
 * Notes an order request that reached an INTX order route as `account`, before the route checks anything: the
 * venue records what it received, not what it accepted. `body` is the raw request body.
 */
export function recordOrder(
  account: string,
  action: OrderRecord["action"],
  body: Uint8Array,
  nowMs: number,
  orderId?: string,
): void {
  let parsed: unknown;
  try {
    parsed = jsonBody(body);
  } catch {
    parsed = undefined;
  }
  const sent: Partial<Record<(typeof ORDER_RECORD_FIELDS)[number], unknown>> = {};
  if (isObject(parsed)) {
    for (const field of ORDER_RECORD_FIELDS) if (parsed[field] !== undefined) sent[field] = parsed[field];
  }
  const record: OrderRecord = {
    action,
    ...(orderId !== undefined ? { order_id: orderId } : {}),
    ...sent,
    at: iso(nowMs),
  };
  const orders = effectsOf("intx", account).orders;
  orders.push(record);
  if (orders.length > ORDERS_KEPT) orders.splice(0, orders.length - ORDERS_KEPT);
}

/** Clears the totals and every account's counters and order log. */
export function resetEffects(): void {
  effects = freshEffects();
  accountEffects = {};
}

/** Per venue: a CDE kill switch locks CDE only. No simulated route locks INTX; INTX orders honour the flag. */
export const tradingLocked: Record<Venue, boolean> = { intx: false, cde: false };

/** INTX's Javalin error shape (docs/protocol.md, "Error shapes"): `{"title": "io.javalin.http.<kind>: …", "status"}`. */
export const javalin = (status: number, kind: string, text: string) =>
  Response.json({ title: `io.javalin.http.${kind}: ${text}`, status }, { status });

/** The `{"message"}` error shape both venues use. */
export const message = (status: number, text: string) => Response.json({ message: text }, { status });

export const notFound = () => message(404, "Not Found");

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The body as JSON, whatever its Content-Type (ccxt sends none). `undefined` for an empty body; throws if not JSON. */
export function jsonBody(body: Uint8Array): unknown {
  const text = new TextDecoder().decode(body);
  return text.trim() === "" ? undefined : JSON.parse(text);
}

/** A number as a plain decimal string: at most 10 decimals, no exponent, no trailing zeros (`0.5`, `64000.1`). */
export function dec(value: number): string {
  const text = value.toFixed(10).replace(/\.?0+$/, "");
  return text === "-0" ? "0" : text;
}

/** ISO 8601 with milliseconds, UTC, as INTX writes times. */
export const iso = (ms: number) => new Date(ms).toISOString();
