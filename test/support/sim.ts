// Talking to the exchange simulator from workerd tests. vitest.config.ts runs it as an auxiliary Worker and sends
// every outbound fetch a test does not intercept to it, so any base URL reaches it:
//   - `simEnv(host)` is an Env whose venues point at https://<host> with the simulator's dev credentials. Each
//     venue clock is keyed by venue and base URL, so a fresh host means a cold clock.
//   - `simControl(change)` POSTs to /_sim/control (skew, latency, faults, reset) and returns its state, including
//     the `effects` counters (orders placed, kill-switches...), for "at most one venue-side effect" assertions,
//     the same per account (`accounts`), and the capture sink's log. docs/simulator.md lists every field.
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
  fault: { kind: string; remaining: number; slowMs: number; location?: string | null } | null;
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
   * CB-ACCESS-KEY, the authenticated requests that reached the venue's routes as it, and the orders it placed.
   */
  accounts: Record<string, { key: string; requests: number; orders_placed: number }>;
  /** What reached the capture sink (`/_sim/captured...`), most recent last, at most 50. */
  captured: {
    method: string;
    host: string;
    path: string;
    /** Request headers named `cb-access-*`. */
    cb_access_headers: number;
    body_bytes: number;
  }[];
}

export async function simControl(change?: Record<string, unknown>): Promise<SimState> {
  const init = change ? { method: "POST", body: JSON.stringify(change) } : {};
  const response = await fetch("https://sim.control/_sim/control", init);
  return (await response.json()) as SimState;
}
