// Talking to the exchange simulator from workerd tests. vitest.config.ts runs it as an auxiliary Worker and sends
// every outbound fetch a test does not intercept to it, so any base URL reaches it:
//   - `simEnv(host)` is an Env whose venues point at https://<host> with the simulator's dev credentials. Each
//     venue clock is keyed by venue and base URL, so a fresh host means a cold clock.
//   - `simControl(change)` POSTs to /_sim/control (skew, latency, faults, reset) and returns its state, including
//     the `effects` counters (orders placed, kill-switches...), for "at most one venue-side effect" assertions,
//     the same per account (`accounts`, with the order requests each account sent), the capture sink's log, and the
//     alert receiver's log (`alerts`, POSTs to /_sim/alerts...) and fault (`alerts_fault`). docs/simulator.md lists every field.
//   - `DEV` is the simulator's account `default` on each venue; `DEV_ALPHA` and `DEV_BETA` its other accounts,
//     under the variable names skewguard reads for them.
import { env } from "cloudflare:workers";

export const DEV = {
  INTX_API_KEY: "dev-intx-key",
  INTX_API_SECRET: "c2tld2d1YXJkLWRldi1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=",
  INTX_API_PASSPHRASE: "dev-intx-passphrase",
  CDE_API_KEY: "dev-cde-key",
  CDE_API_SECRET: "c2tld2d1YXJkLWNkZS1kZXYtc2VjcmV0LWZvci10aGUtc2ltdWxhdG9y",
  CDE_API_PASSPHRASE: "dev-cde-passphrase",
} as const;

/** The simulator's accounts `intx:alpha` and `cde:alpha` (sim/wrangler.toml): their own keys, secrets, portfolio. */
export const DEV_ALPHA = {
  INTX_ALPHA_API_KEY: "dev-intx-alpha-key",
  INTX_ALPHA_API_SECRET: "c2tld2d1YXJkLWRldi1pbnR4LWFscGhhLXNlY3JldCE=",
  INTX_ALPHA_API_PASSPHRASE: "dev-intx-alpha-passphrase",
  CDE_ALPHA_API_KEY: "dev-cde-alpha-key",
  CDE_ALPHA_API_SECRET: "c2tld2d1YXJkLWRldi1jZGUtYWxwaGEtc2VjcmV0ISE=",
  CDE_ALPHA_API_PASSPHRASE: "dev-cde-alpha-passphrase",
} as const;

/** The simulator's account `intx:beta` (INTX only). */
export const DEV_BETA = {
  INTX_BETA_API_KEY: "dev-intx-beta-key",
  INTX_BETA_API_SECRET: "c2tld2d1YXJkLWRldi1pbnR4LWJldGEtc2VjcmV0ISE=",
  INTX_BETA_API_PASSPHRASE: "dev-intx-beta-passphrase",
} as const;

/** The simulator's INTX portfolio ids per account. */
export const DEV_PORTFOLIOS = { default: "1ai4ubgb-1-0", alpha: "2alp7hq3-1-0", beta: "3bet9kx5-1-0" } as const;

export function simEnv(host: string, overrides: Record<string, unknown> = {}): Env {
  return {
    ...env,
    ...DEV,
    INTX_BASE_URL: `https://${host}`,
    CDE_BASE_URL: `https://${host}`,
    ...overrides,
  } as unknown as Env;
}

export interface SimState {
  skew_ms: number;
  /** Per venue, the status of a timestamp refusal (default intx 401, cde 400). */
  timestamp_status: { intx: number; cde: number };
  /** The timestamp refusal's body: the venue's generic one (default), or the legacy or v2 words. */
  timestamp_body: "generic" | "expired" | "v2";
  /** Whether INTX's 429 carries `Retry-After: 1` (default false). */
  retry_after: boolean;
  /** When INTX refuses a client_order_id as a duplicate: while an order with it is open (default), or ever. */
  duplicate_scope: "open" | "ever";
  /** Whether the client_order_id forms' lengths are exact (default) or maximums. */
  client_order_id_lengths: "exact" | "up_to";
  /** INTX's per-key limit per rolling second, `null` for none. */
  intx_rate_limit: number | null;
  fault: { kind: string; remaining: number; slowMs: number; location?: string | null; encoding?: string } | null;
  /** Per venue: CDE's kill switch locks CDE only. */
  trading_locked: { intx: boolean; cde: boolean };
  effects: {
    requests: number;
    accepted: number;
    rejected: Record<string, number>;
    orders_placed: number;
    orders_cancelled: number;
    orders_modified: number;
    kill_switches: number;
    unlocks: number;
    probes: number;
    arrivals: Record<string, number[]>;
  };
  /**
   * Per configured account, keyed `"<venue>:<name>"` (`"intx:default"`, `"intx:alpha"`, `"cde:alpha"`...): its
   * CB-ACCESS-KEY, the authenticated requests that reached the venue's routes as it, the orders it placed and
   * modified, the CDE kill switches it called, and the order requests that reached INTX's order routes as it.
   */
  accounts: Record<string, SimAccount>;
  /** What reached the capture sink (`/_sim/captured...`), most recent last, at most 50. */
  captured: {
    method: string;
    host: string;
    path: string;
    /** Request headers named `cb-access-*`. */
    cb_access_headers: number;
    body_bytes: number;
  }[];
  /** What reached the alert receiver (`POST /_sim/alerts[/...]`), oldest first, at most 100. */
  alerts: SimAlert[];
  /** `"down"`: the receiver answers 503; `"slow"`: 200 after 5 s; `null`: 200 at once. */
  alerts_fault: "down" | "slow" | null;
  /** The market-data feed (GET /ws-md): upgrades accepted, open now, signed (un)subscriptions, rejections, refusals. */
  ws_md?: {
    connections: number;
    open: number;
    subscribes: number;
    unsubscribes: number;
    rejected: number;
    refused: number;
  };
}

/** One POST to the alert receiver, recorded on arrival whatever it was answered. */
export interface SimAlert {
  /** When it arrived, ISO 8601 with ms, UTC, by the real clock (not the venue's skewed one). */
  at: string;
  /** The request path with its query string, e.g. `/_sim/alerts/x`. */
  path: string;
  /** The Content-Type header as sent, or `null`. */
  content_type: string | null;
  /** The Standard Webhooks headers, each only if the request had it. */
  headers: { "webhook-id"?: string; "webhook-timestamp"?: string; "webhook-signature"?: string };
  /** The body as UTF-8 text, cut to its first 16 KiB (16384 bytes). */
  body: string;
  /** The whole body's size in bytes; more than 16384 means `body` was cut. */
  body_bytes: number;
  /** What the receiver answers: 200, or 503 while `alerts_fault` is `"down"`. */
  answered: number;
}

/** One entry of `SimState.accounts`. Every field is there on every account, at zero where the venue has no route. */
export interface SimAccount {
  key: string;
  requests: number;
  orders_placed: number;
  /** Successful INTX modifies (`PUT /api/v1/orders/{id}` answered 200). */
  orders_modified: number;
  /** CDE `POST /rest/kill-switch` calls. */
  kill_switches: number;
  /** The last 200 requests that reached INTX's create or modify route as this account, accepted or not, oldest first. */
  orders: SimOrderRecord[];
}

/**
 * One order request as the venue received it. The body fields are copied as sent (a string, a number, `null`...)
 * and absent when the body lacked them or was not a JSON object.
 */
export interface SimOrderRecord {
  action: "create" | "modify";
  /** modify only: the `{id}` of the path, percent-decoded. */
  order_id?: string;
  client_order_id?: unknown;
  instrument?: unknown;
  side?: unknown;
  type?: unknown;
  tif?: unknown;
  size?: unknown;
  price?: unknown;
  close_only?: unknown;
  /** When the route ran, ISO 8601 with ms, by the simulator's skewed clock (the clock of an order's `submit_time`). */
  at: string;
}

export async function simControl(change?: Record<string, unknown>): Promise<SimState> {
  const init = change ? { method: "POST", body: JSON.stringify(change) } : {};
  const response = await fetch("https://sim.control/_sim/control", init);
  return (await response.json()) as SimState;
}
