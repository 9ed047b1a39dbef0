/**
 * What the simulator's gateway (index.ts) and its two venues (intx.ts, cde.ts) share: the effect counters (totals
 * and per account), the kill-switch lock, the request a venue handler sees, and a few answer and number helpers.
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
}

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

/** Per account, what the venue did for it: the `accounts` of `/_sim/control`, without the key. */
export interface AccountEffects {
  /** Authenticated requests that reached the venue's routes as this account (its share of `effects.accepted`). */
  requests: number;
  orders_placed: number;
}

/** Keyed `"<venue>:<account>"`, e.g. `"intx:alpha"`; an entry appears on the account's first counted request. */
export let accountEffects: Record<string, AccountEffects> = {};

/** The counters of one account, created at zero. */
export function effectsOf(venue: Venue, account: string): AccountEffects {
  const id = `${venue}:${account}`;
  accountEffects[id] ??= { requests: 0, orders_placed: 0 };
  return accountEffects[id];
}

/** Clears the totals and every account's counters. */
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
