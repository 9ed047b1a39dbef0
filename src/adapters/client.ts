/**
 * The clock-aware signed client that every outbound venue call goes through (relay, webhooks, cron), and its
 * factories from the Worker's bindings. `send` screens the request under the account's rules, gets the clock ready
 * (the shared estimate or one cold probe, only when there is no estimate), then runs the library's one signed-call
 * loop (lib/signed-call.ts) with the Worker's steps (venue-call.ts): the account's send slot, the bounded read and
 * echo check, the clock's alerts, and the failure retries. Retry policy, in one place:
 *   - timestamp rejection (any method): once, since the venue refused it before processing it;
 *   - network error, 5xx, 429 on idempotent methods only: full-jitter backoff honouring `Retry-After`,
 *     bounded by `maxAttempts` and `retryBudgetMs` (venue-retry.ts);
 *   - a POST is never retried on 5xx, 429, network error or timeout: the venue may have processed it.
 */

import { ledgerKind } from "../core/ledger.ts";
import { accountKey, type VenueConfig } from "../core/venue-config.ts";
import { venueSample } from "../lib/date.ts";
import { type ClockEstimate, type ClockSample, halfWidthMs } from "../lib/estimator.ts";
import { importHmacKey, secretBytes } from "../lib/key.ts";
import { signedCall } from "../lib/signed-call.ts";
import { config, runtime } from "../runtime.ts";
import { classify, type RequestKind } from "../venues/profile.ts";
import { raiseLater } from "./alerts.ts";
import { syncClock } from "./clock-sync.ts";
import type { Keys } from "./keys.ts";
import { recordOrder } from "./ledger.ts";
import { auditError, auditSent } from "./venue-audit.ts";
import { type ClientOptions, type ClientParts, signedClock, VenueCall, type VenueRequest } from "./venue-call.ts";
import type { VenueClock } from "./venue-clock.ts";
import { screened } from "./venue-gate.ts";

export type { ClientOptions, VenueRequest } from "./venue-call.ts";
export { RateLimitedError, RefusedError, UpstreamError } from "./venue-errors.ts";
export type { SlotGate } from "./venue-gate.ts";
export { retryAfterMs } from "./venue-retry.ts";

export interface VenueResult {
  response: Response;
  attempts: number;
  /** The offset and half-width used to sign the final attempt; null uncertainty = no estimate yet. */
  offsetMs: number;
  uncertaintyMs: number | null;
  timestamp: number;
  /** The answer's body as text (already read and decoded by the signed call), when it was read. */
  text?: string | undefined;
}

export interface VenueClient {
  readonly config: VenueConfig;
  send(request: VenueRequest): Promise<VenueResult>;
  syncNow(): Promise<number>;
}

/** `always` mode narrows the estimate in the background when its half-width exceeds this. */
const SYNC_TARGET_HALF_WIDTH_MS = 100;

export class SignedClient implements VenueClient {
  readonly config: VenueConfig;
  readonly #clock: VenueClock;
  readonly #keys: Keys;
  readonly #parts: ClientParts;
  readonly #fetch: (input: Request) => Promise<Response>;
  readonly #now: () => number;
  readonly #options: ClientOptions;

  constructor(config: VenueConfig, clock: VenueClock, keys: Keys, options: ClientOptions = {}) {
    this.config = config;
    this.#clock = clock;
    this.#keys = keys;
    this.#options = options;
    this.#fetch = options.fetch ?? ((input) => fetch(input));
    this.#now = options.now ?? Date.now;
    this.#parts = {
      config,
      clock,
      options,
      fetch: this.#fetch,
      now: this.#now,
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      random: options.random ?? Math.random,
    };
  }

  async send(request: VenueRequest): Promise<VenueResult> {
    const method = request.method.toUpperCase();
    const kind = classify(this.config.profile, method, request.path);
    const ledger = request.audit && this.#options.record ? ledgerKind(kind) : undefined;
    if (!ledger || !request.audit) return this.#send(request, method, kind);
    // An order-affecting call leaves one ledger row, however it ends (adapters/venue-audit.ts).
    const audited = { audit: request.audit, method, path: request.path, kind: ledger, body: request.body };
    try {
      const result = await this.#send(request, method, kind);
      auditSent(this.#parts, audited, result);
      return result;
    } catch (err) {
      auditError(this.#parts, audited, err);
      throw err;
    }
  }

  async #send(request: VenueRequest, method: string, kind: RequestKind): Promise<VenueResult> {
    // The account's rules come first: a refused request is never signed, and takes no send slot.
    const screen = screened(this.#parts, kind, request);
    let key = this.#key();
    if (!(key instanceof CryptoKey)) key = await key;
    // Hot path: with an estimate, nothing to wait for (no await). Cold: the shared estimate, else the one probe.
    const known = this.#clock.estimator.estimate(this.#now());
    if (known) this.#narrowLater(known);
    else await this.#coldStart();
    const call = new VenueCall(this.#parts, request, method, kind, key, screen);
    const { response, attempt, text } = await signedCall(call);
    const { offsetMs, uncertaintyMs } = signedClock(attempt);
    return { response, attempts: attempt.number, offsetMs, uncertaintyMs, timestamp: attempt.timestamp, text };
  }

  /**
   * The account's key. The account's configuration lives as long as the runtime: its key is looked up by its
   * credentials object, so the hot path neither imports nor reads the secret again (a bad one throws here).
   */
  #key(): CryptoKey | Promise<CryptoKey> {
    const { credentials, secretEncoding, profile } = this.config;
    return this.#keys.get(credentials, () =>
      importHmacKey(secretBytes(credentials.secret, secretEncoding, `${profile.envPrefix}API_SECRET`)),
    );
  }

  /**
   * An unsigned, cheap request to the venue's API root: any answer with a `Date` is a clock sample. It is given up
   * after `timeoutMs` (default 2 s, for the background's timed probes; see `#coldProbeTimeoutMs` for the cold one).
   */
  async #probe(timeoutMs = 2_000): Promise<ClockSample | undefined> {
    const { baseUrl, profile } = this.config;
    const tSend = this.#now();
    const response = await this.#fetch(
      new Request(`${baseUrl}${profile.apiPrefix}`, {
        headers: { accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      }),
    );
    const tRecv = this.#now();
    await response.body?.cancel();
    return venueSample(response, tSend, tRecv);
  }

  /**
   * A request that found no estimate: it waits for the shared estimate (capped at 250 ms), then, unless `syncMode` is
   * `never`, for the isolate's one cold probe (`VenueClock.coldStart`), so that it signs with what that probe taught.
   */
  async #coldStart(): Promise<void> {
    await this.#clock.ready(this.#options.store);
    if ((this.#options.syncMode ?? "never") === "never") return;
    // Cold: one probe now costs the same round trip as a refused first request, and the request then lands.
    const timeoutMs = this.#coldProbeTimeoutMs();
    await this.#clock.coldStart(this.#now, () => this.#probe(timeoutMs), timeoutMs + 1_000);
  }

  /**
   * How long the cold probe's answer is awaited: (window − 1) s, 4 s for the venues' 5 s window. Requests wait for it
   * rather than sign blind, so it must outlast a CPU-starved isolate's slow round trip (2 s was too short under
   * contention) while its answer still helps: a round trip r leaves a half-width of (1 s + r) / 2, so r = 4 s signs
   * within 2.5 s + 0.5 s of rounding, leaving 2 s of the window for the signed request's own trip.
   */
  #coldProbeTimeoutMs(): number {
    return Math.max(2_000, (this.config.windowSeconds - 1) * 1_000);
  }

  /** `always`: narrows a wide estimate with timed probes in the background (`waitUntil`), at most every 30 s. */
  #narrowLater(estimate: ClockEstimate): void {
    if (this.#options.syncMode !== "always" || !this.#options.waitUntil) return;
    if (halfWidthMs(estimate) > SYNC_TARGET_HALF_WIDTH_MS && this.#clock.claimSync(this.#now())) {
      this.#options.waitUntil(this.syncNow());
    }
  }

  /** Narrows the estimate with up to 4 timed probes within 4.5 s (the background half of `always`, and cron). */
  syncNow(): Promise<number> {
    // Never beside the cold probe (or another sync): one probe run per venue per isolate at a time.
    return this.#clock
      .exclusive(() =>
        syncClock(this.#clock, () => this.#probe(), {
          maxProbes: 4,
          budgetMs: 4_500,
          targetHalfWidthMs: SYNC_TARGET_HALF_WIDTH_MS,
          now: this.#now,
        }),
      )
      .catch(() => 0);
  }
}

function clockStore(env: Env, venue: string, baseUrl: string) {
  const shared = runtime(env);
  const id = shared.objectId(env.CLOCK_STATE, "clock", `${venue} ${baseUrl}`);
  return env.CLOCK_STATE.get(id, shared.config.durableObjects);
}

/**
 * This isolate's clock for `venue`, seeded from the shared estimate first if it is cold, exactly as the next signed
 * request would be; undefined when the venue is not configured. For `/clock` and `/health`.
 */
export async function preparedClock(env: Env, venue: string): Promise<VenueClock | undefined> {
  const venueConfig = config(env).venues[venue];
  if (!venueConfig) return undefined;
  const clock = runtime(env).clock(venue, venueConfig.baseUrl);
  await clock.ready(clockStore(env, venue, venueConfig.baseUrl));
  return clock;
}

/** The clock of a venue endpoint, seeded from the shared estimate if it is cold: the market-data feed's. */
export async function feedClock(env: Env, venue: string, baseUrl: string): Promise<VenueClock> {
  const clock = runtime(env).clock(venue, baseUrl);
  await clock.ready(clockStore(env, venue, baseUrl));
  return clock;
}

/** An account's gate (adapters/rate-gate.ts): its halt, order count and send slots. */
export function accountGate(env: Env, venue: string, account: string) {
  const shared = runtime(env);
  const id = shared.objectId(env.RATE_GATE, "gate", `account ${accountKey(venue, account)}`);
  return env.RATE_GATE.get(id, shared.config.durableObjects);
}

/** The signed client for an account of `venue` (default `default`), or undefined when it is not configured. */
export function venueClient(
  env: Env,
  venue: string,
  ctx?: { waitUntil(promise: Promise<unknown>): void },
  options: ClientOptions & { account?: string } = {},
): VenueClient | undefined {
  const { config: setup, keys } = runtime(env);
  const { accounts, clockSync } = setup;
  // One client per account; the clock is per venue host, the rate gate per API key.
  const venueConfig = accounts.get(accountKey(venue, options.account ?? "default"));
  if (!venueConfig) return undefined;
  const store = clockStore(env, venue, venueConfig.baseUrl);
  const gate = accountGate(env, venue, venueConfig.account);
  return new SignedClient(venueConfig, runtime(env).clock(venue, venueConfig.baseUrl), keys, {
    store,
    gate,
    waitUntil: ctx ? (p) => ctx.waitUntil(p) : undefined,
    alert: ctx ? (event) => raiseLater(env, ctx, event) : undefined,
    record: ctx && setup.ledger ? (row) => recordOrder(env, ctx, row) : undefined,
    syncMode: clockSync,
    metrics: runtime(env).metrics,
    ...options,
  });
}
