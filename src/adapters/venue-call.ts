/**
 * One signed venue call's steps, for the library's one signed-call loop (lib/signed-call.ts): before each attempt
 * the account's send slot (a slot missed by a slow isolate is given up for a new one, at most MAX_STALE_GRANTS
 * times); the signing; the send (redirects not followed, a timeout); the bounded read and echo check; learning the
 * clock, with its alerts; and the failure retries of idempotent methods within a budget of waits. One object per
 * call, its steps methods, so a call allocates no closures.
 */
import type { SyncMode } from "../config.ts";
import { type AlertEvent, events } from "../core/alerts.ts";
import { isOrder, passesHalt, type Screened } from "../core/guards.ts";
import type { Audit, LedgerRow } from "../core/ledger.ts";
import type { IsolateMetrics } from "../core/metrics.ts";
import type { Priority } from "../core/pacing.ts";
import type { VenueConfig } from "../core/venue-config.ts";
import { DRIFT_PPM, halfWidthMs } from "../lib/estimator.ts";
import { isAuthRefusal, venueMessage } from "../lib/rejection.ts";
import { type AccessHeaders, signHeaders } from "../lib/sign.ts";
import type { Attempt, AttemptSlot, Failure, Observation, RetryPolicy, SignedCallSteps } from "../lib/signed-call.ts";
import type { RequestKind } from "../venues/profile.ts";
import { log } from "./log.ts";
import { readAnswer, type VenueAnswer } from "./venue-answer.ts";
import type { VenueClock } from "./venue-clock.ts";
import { RateLimitedError, RefusedError, UpstreamError } from "./venue-errors.ts";
import { type Ask, type SlotGate, takeSlot } from "./venue-gate.ts";
import { failureWait, IDEMPOTENT } from "./venue-retry.ts";

export interface VenueRequest {
  method: string;
  /** Wire path including the venue's API prefix, e.g. `/api/v1/orders`. Signed. */
  path: string;
  /** Raw query string without `?`, forwarded untouched. Not signed (docs/protocol.md, "Signing"). */
  query?: string;
  /** The exact bytes to send; they are what is signed. */
  body?: string | Uint8Array;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Who goes first at the rate gate; default: `read` for GET, HEAD and OPTIONS, else `write`. */
  priority?: Priority;
  /** Who asked, for the log line of a refusal: `token:<name>`, `hook:<route>`, `job:<name>`. */
  by?: string;
  /** Who asked and how, for the order ledger: an order-affecting call with it leaves a row (`ClientOptions.record`). */
  audit?: Audit;
}

export interface ClientOptions {
  fetch?: (input: Request) => Promise<Response>;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  /** Per-attempt timeout. */
  timeoutMs?: number;
  maxAttempts?: number;
  /** Total time that backoff waits may add. */
  retryBudgetMs?: number;
  store?: Parameters<VenueClock["ready"]>[0];
  gate?: SlotGate;
  waitUntil?: (promise: Promise<unknown>) => void;
  /** Raises an alert (after the response; see adapters/alerts.ts). Unset: alerts are not raised. */
  alert?: (event: AlertEvent) => void;
  /** Writes a ledger row (after the response; adapters/ledger.ts). Unset: nothing is recorded. */
  record?: (row: LedgerRow) => void;
  /** This isolate's counters (core/metrics.ts): venue answers, retries, refusals, the gate's waits and 429s. */
  metrics?: IsolateMetrics;
  /** Active clock probes: `cold` = one unsigned probe when there is no estimate at all; `always` = also narrow a
   * wide estimate with htpdate-style probes in the background. Default `never` (venueClient reads CLOCK_SYNC). */
  syncMode?: SyncMode;
}

/** What every call of one client shares: the account, its venue clock, and the injected I/O. */
export interface ClientParts {
  readonly config: VenueConfig;
  readonly clock: VenueClock;
  readonly options: ClientOptions;
  readonly fetch: (input: Request) => Promise<Response>;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

/** A grant this isolate was too slow to use is given up for a new one, at most this many times, then 429. */
const MAX_STALE_GRANTS = 3;
const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/** The offset and half-width an attempt was signed with; null uncertainty = no estimate yet. */
export function signedClock(attempt: Attempt<unknown>): { offsetMs: number; uncertaintyMs: number | null } {
  const { estimate } = attempt;
  return {
    offsetMs: Math.round(estimate?.offsetMs ?? 0),
    uncertaintyMs: estimate ? Math.ceil(halfWidthMs(estimate)) : null,
  };
}

export class VenueCall implements SignedCallSteps<AccessHeaders>, AttemptSlot, RetryPolicy {
  readonly now: () => number;
  readonly estimator: VenueClock["estimator"];
  readonly windowSeconds: number;
  /** Every attempt asks for its send slot (`takeSlot` answers at once when there is nothing to ask). */
  readonly beforeAttempt: AttemptSlot;
  /** Failure retries are for idempotent methods only. */
  readonly retry: RetryPolicy | undefined;
  readonly #parts: ClientParts;
  readonly #request: VenueRequest;
  readonly #method: string;
  readonly #url: string;
  readonly #payload: string | Uint8Array | undefined;
  readonly #key: CryptoKey;
  readonly #ask: Ask;
  #stale = 0;
  #budget: number;

  constructor(
    parts: ClientParts,
    request: VenueRequest,
    method: string,
    kind: RequestKind,
    key: CryptoKey,
    screened: Screened,
  ) {
    const { config, options } = parts;
    this.now = parts.now;
    this.estimator = parts.clock.estimator;
    this.windowSeconds = config.windowSeconds;
    this.beforeAttempt = this;
    this.retry = IDEMPOTENT.has(method) ? this : undefined;
    this.#parts = parts;
    this.#request = request;
    this.#method = method;
    this.#url = `${config.baseUrl}${request.path}${request.query ? `?${request.query}` : ""}`;
    this.#payload = screened.body;
    this.#key = key;
    const priority = request.priority ?? (READS.has(method) ? "read" : "write");
    const { ordersPerMinute } = screened;
    this.#ask = { priority, haltable: !passesHalt(kind), ordersPerMinute, countOrder: isOrder(kind) };
    this.#budget = options.retryBudgetMs ?? 2_000;
  }

  take(): Promise<number> {
    const slot = takeSlot(this.#parts, this.#ask, this.#request.by);
    // An order is counted once, by its first grant: a re-signed or repeated attempt is the same order.
    this.#ask.ordersPerMinute = undefined;
    this.#ask.countOrder = false;
    return slot;
  }

  /** Too late for its grant: sent now it could bunch with later grants at the venue. A new one is taken. */
  missed(): void {
    if (++this.#stale <= MAX_STALE_GRANTS) return;
    const venue = this.#parts.config.profile.name;
    this.#parts.options.metrics?.gateRateLimited.inc(venue, "stale");
    throw new RateLimitedError(venue, 1);
  }

  sign(timestamp: number): Promise<AccessHeaders> {
    const { apiKey, passphrase } = this.#parts.config.credentials;
    const request = { method: this.#method, url: this.#url, body: this.#payload };
    return signHeaders({ apiKey, passphrase, key: this.#key }, request, timestamp);
  }

  send(attempt: Attempt<AccessHeaders>): Promise<Response> {
    const headers = new Headers(this.#request.headers);
    // The venues render errors as JSON only when asked (INTX's Javalin answers plain text otherwise).
    if (!headers.has("accept")) headers.set("accept", "application/json");
    // Only codings skewguard can undo, so it can check the answer for echoes (venue-answer.ts); others are refused.
    headers.set("accept-encoding", "gzip, deflate");
    for (const [name, value] of Object.entries(attempt.signed)) headers.set(name, value);
    const timeoutMs = this.#request.timeoutMs ?? this.#parts.options.timeoutMs ?? 10_000;
    return this.#parts.fetch(
      new Request(this.#url, {
        method: this.#method,
        headers,
        body: this.#payload ?? null,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      }),
    );
  }

  sendError(error: unknown, attempt: Attempt<AccessHeaders>): UpstreamError {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    this.#parts.options.metrics?.venueAnswers.inc(
      this.#parts.config.profile.name,
      timedOut ? "timeout" : "unreachable",
    );
    return new UpstreamError(timedOut ? "timeout" : "unreachable", attempt.number);
  }

  read(response: Response, attempt: Attempt<AccessHeaders>): Promise<VenueAnswer> {
    const { apiKey, passphrase, secret } = this.#parts.config.credentials;
    const sent = [apiKey, passphrase, secret, attempt.signed["CB-ACCESS-SIGN"]];
    return readAnswer(response, this.#method, this.#url, attempt.number, sent);
  }

  observe(seen: Observation<AccessHeaders>): void {
    const { config, clock } = this.#parts;
    const venue = config.profile.name;
    this.#parts.options.metrics?.venueAnswers.inc(venue, String(seen.status));
    // A refused timestamp proves the estimate wrong: this sample then overrides the brackets it disagrees with.
    const step = clock.observe(seen.sample, seen.rejected);
    this.#share(seen.tRecv);
    if (step !== undefined) this.#alert(events.clockStepped(venue, step));
    const text = seen.text ?? "";
    if (seen.refusedTime && seen.attempt.resigned) {
      const { offsetMs, uncertaintyMs } = signedClock(seen.attempt);
      this.#alert(events.rejectedTwice(venue, config.account, offsetMs, uncertaintyMs));
    } else if (isAuthRefusal(seen.status, text, seen)) {
      this.#alert(events.authFailed(venue, config.account, seen.status, venueMessage(text)));
    }
    if (seen.rejected) {
      log("info", { event: "timestamp_rejected", venue, attempt: seen.attempt.number, timestamp: seen.timestamp });
    }
  }

  after(failure: Failure, attempt: Attempt<unknown>): number | undefined {
    const { options, random, clock } = this.#parts;
    const limits = { maxAttempts: options.maxAttempts ?? 3, random, estimator: clock.estimator };
    const wait = failureWait(failure, attempt, limits);
    if (wait === undefined || wait > this.#budget) return undefined;
    this.#budget -= wait;
    options.metrics?.retries.inc(this.#parts.config.profile.name);
    return wait;
  }

  /** When a failure retry cannot get a send slot, what the venue already answered stands: a 429 then would hide
   * that an attempt may have reached the venue. */
  keepsPrevious(error: unknown): boolean {
    return error instanceof RateLimitedError || error instanceof RefusedError;
  }

  sleep(ms: number): Promise<void> {
    return this.#parts.sleep(ms);
  }

  #alert(event: AlertEvent): void {
    this.#parts.options.alert?.(event);
  }

  #share(now: number): void {
    const { store, waitUntil } = this.#parts.options;
    if (!store || !waitUntil) return;
    const offer = this.#parts.clock.takeOffer(now);
    if (offer) waitUntil(store.offer(offer, DRIFT_PPM, this.#parts.config.profile.name).catch(() => false));
  }
}
