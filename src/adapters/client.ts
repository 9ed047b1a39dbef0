/**
 * The clock-aware signed client that every outbound venue call goes through (relay, webhooks, cron).
 * It reads the clock right before signing, re-signs every attempt, learns from every response's `Date`,
 * and retries once, re-signed, when the venue refuses the timestamp. Retry policy, in one place:
 *   - timestamp rejection (any method): once, since the venue refused it before processing it;
 *   - network error, 5xx, 429 on idempotent methods only: full-jitter backoff honouring `Retry-After`,
 *     bounded by `maxAttempts` and `retryBudgetMs`;
 *   - a POST is never retried on 5xx, 429, network error or timeout: the venue may have processed it.
 */

import { config, type SyncMode } from "../config.ts";
import { type AlertEvent, events } from "../core/alerts.ts";
import { isOrder, passesHalt, type RequestKind, requestKind, type Screened, screen } from "../core/guards.ts";
import type { Priority } from "../core/pacing.ts";
import { accountKey, type VenueConfig, type VenueName } from "../core/venue.ts";
import { venueSample } from "../lib/date.ts";
import { type ClockEstimate, type ClockSample, halfWidthMs, timestampFor } from "../lib/estimator.ts";
import { KeyCache } from "../lib/key.ts";
import { isAuthRefusal, isTimestampRejection, venueMessage } from "../lib/rejection.ts";
import { signHeaders } from "../lib/sign.ts";
import { raiseLater } from "./alerts.ts";
import { syncClock } from "./clock-sync.ts";
import { log } from "./log.ts";
import type { Admission, Admitted } from "./rate-gate.ts";
import { readAtMost } from "./stream.ts";
import { DRIFT_PPM, type VenueClock, venueClock } from "./venue-clock.ts";

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
}

export interface VenueResult {
  response: Response;
  attempts: number;
  /** The offset and half-width used to sign the final attempt; null uncertainty = no estimate yet. */
  offsetMs: number;
  uncertaintyMs: number | null;
  timestamp: number;
}

/**
 * Why no usable answer came back. Whether the venue may have acted: `unreachable` no; `redirect` almost surely not
 * (a gateway answered instead); `timeout`, `broken` (the answer broke off), `withheld` (it echoed our credentials
 * and is not passed on), `undecodable` (a `Content-Encoding` skewguard cannot undo, so it cannot check the answer)
 * and `too_large` maybe.
 */
export type UpstreamFailure =
  | "unreachable"
  | "timeout"
  | "redirect"
  | "broken"
  | "withheld"
  | "undecodable"
  | "too_large";

const FAILURE_REASON: Record<UpstreamFailure, string> = {
  unreachable: "venue unreachable",
  timeout: "venue timeout",
  redirect: "venue redirect, not followed",
  broken: "venue answer broke off",
  withheld: "venue answer withheld: it echoed the request's credentials",
  undecodable: "venue answer withheld: its encoding cannot be checked",
  too_large: "venue answer too large",
};

/** A short reason for records and logs, e.g. `venue redirect, not followed: to evil.example`. */
export function failureReason(kind: UpstreamFailure, detail?: string): string {
  return detail ? `${FAILURE_REASON[kind]}: ${detail}` : FAILURE_REASON[kind];
}

/** The venue gave no usable answer. `detail` is safe to show: the redirect's host, or the status withheld. */
export class UpstreamError extends Error {
  override readonly name = "UpstreamError";
  readonly kind: UpstreamFailure;
  readonly attempts: number;
  readonly detail: string | undefined;
  constructor(kind: UpstreamFailure, attempts: number, detail?: string) {
    super(failureReason(kind, detail));
    this.kind = kind;
    this.attempts = attempts;
    this.detail = detail;
  }
}

/** skewguard's own outbound limit for this API key would be exceeded; nothing was sent. Maps to 429. */
export class RateLimitedError extends Error {
  override readonly name = "RateLimitedError";
  readonly retryAfterSeconds: number;
  constructor(venue: string, retryAfterSeconds: number) {
    super(`${venue}: the API key's request rate limit is reached; retry after ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * skewguard refused the request under the account's rules, before anything was signed or sent: `read_only` (403),
 * an order guard (422 `order_refused`) or a halt (423). The message is safe to show and names the account.
 */
export class RefusedError extends Error {
  override readonly name = "RefusedError";
  readonly status: 403 | 422 | 423;
  readonly code: "read_only" | "order_refused" | "account_halted";
  /** The rule at fault: a guard's key (`max_size`), or `read_only`, `halt`. */
  readonly rule: string;
  readonly retryAfterSeconds: number | undefined;
  constructor(status: 403 | 422 | 423, code: RefusedError["code"], rule: string, message: string, retryAfter?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.rule = rule;
    this.retryAfterSeconds = retryAfter;
  }
}

/** The account's gate (the `RateGate` Durable Object): halt, order count and send slot, in one round trip. */
export interface SlotGate {
  admit(admission: Admission): Promise<Admitted>;
}

/** A read waits at most this long for a send slot, a write (order, cancel, kill-switch, webhook) this long. */
const READ_MAX_WAIT_MS = 500;
const WRITE_MAX_WAIT_MS = 1_000;
/** A grant this isolate was too slow to use is given up for a new one, at most this many times, then 429. */
const MAX_STALE_GRANTS = 3;

export interface VenueClient {
  readonly config: VenueConfig;
  send(request: VenueRequest): Promise<VenueResult>;
  syncNow(): Promise<number>;
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
  /** Active clock probes: `cold` = one unsigned probe when there is no estimate at all; `always` = also narrow a
   * wide estimate with htpdate-style probes in the background. Default `never` (venueClient reads CLOCK_SYNC). */
  syncMode?: SyncMode;
}

/** `always` mode narrows the estimate in the background when its half-width exceeds this. */
const SYNC_TARGET_HALF_WIDTH_MS = 100;

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
const READS = new Set(["GET", "HEAD", "OPTIONS"]);
/** The most of a venue's answer skewguard reads into memory (order books and fills are paginated well below). */
export const MAX_RESPONSE_BYTES = 2 * 1024 * 1024;

/** Seconds or an HTTP date in `Retry-After`, as milliseconds from `now`; undefined if absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class SignedClient implements VenueClient {
  readonly config: VenueConfig;
  readonly #clock: VenueClock;
  readonly #keys: KeyCache;
  readonly #fetch: (input: Request) => Promise<Response>;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #random: () => number;
  readonly #options: ClientOptions;

  constructor(config: VenueConfig, clock: VenueClock, keys: KeyCache, options: ClientOptions = {}) {
    this.config = config;
    this.#clock = clock;
    this.#keys = keys;
    this.#options = options;
    this.#fetch = options.fetch ?? ((input) => fetch(input));
    this.#now = options.now ?? Date.now;
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.#random = options.random ?? Math.random;
  }

  async send(request: VenueRequest): Promise<VenueResult> {
    const { credentials, secretEncoding, baseUrl, profile } = this.config;
    const method = request.method.toUpperCase();
    const kind = requestKind(profile.name, method, request.path);
    // The account's rules come first: a refused request is never signed, and takes no send slot.
    const { body: payload, ordersPerMinute } = this.#screen(kind, request);
    const url = `${baseUrl}${request.path}${request.query ? `?${request.query}` : ""}`;
    // The account's configuration lives as long as the isolate: its key is looked up by that object, so the hot
    // path neither imports nor fingerprints the secret again (the KeyCache does the first import).
    let key = importedKeys.get(credentials);
    if (!key) {
      const pending = this.#keys.get(credentials.secret, secretEncoding, `${profile.envPrefix}API_SECRET`);
      importedKeys.set(credentials, pending);
      Promise.resolve(pending).then(
        (imported) => importedKeys.set(credentials, imported),
        () => importedKeys.delete(credentials),
      );
      key = pending;
    }
    if (!(key instanceof CryptoKey)) key = await key;
    // Hot path: with an estimate, nothing to wait for (no await). Cold: the shared estimate, else the one probe.
    const known = this.#clock.estimator.estimate(this.#now());
    if (known) this.#narrowLater(known);
    else await this.#coldStart();

    // Failure retries (network, 5xx, 429) are counted apart from the one time-retry, which never takes their place.
    const maxAttempts = this.#options.maxAttempts ?? 3;
    let budget = this.#options.retryBudgetMs ?? 2_000;
    let timeRetried = false;
    let stale = 0;
    const priority = request.priority ?? (READS.has(method) ? "read" : "write");
    const admission = { priority, haltable: !passesHalt(kind), ordersPerMinute, countOrder: isOrder(kind) };
    // When a failure retry (after a 5xx, 429 or network error) cannot get a send slot, what the venue already
    // answered stands: a 429 then would hide that an attempt may have reached the venue.
    let fallback: (() => VenueResult) | undefined;
    for (let attempt = 1; ; attempt++) {
      let sendBy: number;
      try {
        sendBy = await this.#slot(admission, request.by);
      } catch (err) {
        if (fallback && (err instanceof RateLimitedError || err instanceof RefusedError)) return fallback();
        throw err;
      }
      // An order is counted once, by its first grant: a re-signed or repeated attempt is the same order.
      admission.ordersPerMinute = undefined;
      admission.countOrder = false;
      // The clock is read after the last await that precedes the fetch (only the HMAC itself follows).
      const now = this.#now();
      const estimate = this.#clock.estimator.estimate(now);
      const timestamp = timestampFor(now, estimate);
      const headers = new Headers(request.headers);
      // The venues render errors as JSON only when asked (INTX's Javalin answers plain text otherwise).
      if (!headers.has("accept")) headers.set("accept", "application/json");
      // Only codings skewguard can undo, so it can check the answer for echoes (decodedBody); others are refused.
      headers.set("accept-encoding", "gzip, deflate");
      const signed = await signHeaders(
        { apiKey: credentials.apiKey, passphrase: credentials.passphrase, key },
        { method, url, body: payload },
        timestamp,
      );
      for (const [name, value] of Object.entries(signed)) headers.set(name, value);
      if (this.#now() > sendBy) {
        // Too late for its grant: sent now it could bunch with later grants at the venue. Take a new one.
        if (++stale > MAX_STALE_GRANTS) throw new RateLimitedError(profile.name, 1);
        attempt--;
        continue;
      }
      const used = {
        attempts: attempt,
        offsetMs: Math.round(estimate?.offsetMs ?? 0),
        uncertaintyMs: estimate ? Math.ceil(halfWidthMs(estimate)) : null,
        timestamp,
      };

      let response: Response;
      const tSend = this.#now();
      try {
        response = await this.#fetch(
          new Request(url, {
            method,
            headers,
            body: payload ?? null,
            redirect: "manual",
            signal: AbortSignal.timeout(request.timeoutMs ?? this.#options.timeoutMs ?? 10_000),
          }),
        );
      } catch (err) {
        const kind =
          err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")
            ? "timeout"
            : "unreachable";
        const wait = this.#backoff(attempt);
        if (
          kind === "unreachable" &&
          IDEMPOTENT.has(method) &&
          attempt < maxAttempts + (timeRetried ? 1 : 0) &&
          wait <= budget
        ) {
          const failed = attempt;
          fallback = () => {
            throw new UpstreamError("unreachable", failed);
          };
          budget -= wait;
          await this.#sleep(wait);
          continue;
        }
        throw new UpstreamError(kind, attempt);
      }
      const tRecv = this.#now();
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel();
        throw new UpstreamError("redirect", attempt, `to ${locationHost(response.headers.get("location"), url)}`);
      }
      const raw =
        method === "HEAD" ? await cancelled(response) : await readBytes(response, MAX_RESPONSE_BYTES, attempt);
      const sent = [credentials.apiKey, credentials.passphrase, credentials.secret, signed["CB-ACCESS-SIGN"]];
      // The echo check runs on what the caller will read: the body with every Content-Encoding undone (and passed
      // on so). An answer that cannot be undone cannot be checked, so it is not passed on either.
      let body: Uint8Array<ArrayBuffer>;
      try {
        body = await decodedBody(raw, response.headers, attempt);
      } catch (err) {
        if (echoes(new Uint8Array(0), response.headers, sent)) {
          throw new UpstreamError("withheld", attempt, `status ${response.status}`);
        }
        throw err;
      }
      if (echoes(body, response.headers, sent)) {
        throw new UpstreamError("withheld", attempt, `status ${response.status}`);
      }
      const text = new TextDecoder().decode(body);
      // Only the venue's own answers teach the clock (`venueSample`): a proxy's or dev server's error page may be
      // stamped by another machine's clock.
      const sample = venueSample(response, tSend, tRecv);
      // A timestamp refusal is read from the refusal's own Date first, its words only as a hint (lib/rejection.ts).
      const evidence = { timestamp, windowSeconds: this.config.windowSeconds, date: sample?.date };
      const refusedTime = isTimestampRejection(response.status, text, evidence);
      const rejected = refusedTime && !timeRetried;
      // A refused timestamp proves the estimate wrong: this sample then overrides the brackets it disagrees with.
      const step = this.#clock.observe(sample, rejected);
      this.#share(tRecv);
      if (step !== undefined) this.#alert(events.clockStepped(profile.name, step));
      if (refusedTime && timeRetried) {
        this.#alert(events.rejectedTwice(profile.name, this.config.account, used.offsetMs, used.uncertaintyMs));
      } else if (isAuthRefusal(response.status, text, evidence)) {
        this.#alert(events.authFailed(profile.name, this.config.account, response.status, venueMessage(text)));
      }
      if (rejected) {
        timeRetried = true;
        log("info", { event: "timestamp_rejected", venue: profile.name, attempt, timestamp });
        continue; // re-signed with the estimate this very response just taught us
      }
      if (
        (response.status >= 500 || response.status === 429) &&
        IDEMPOTENT.has(method) &&
        attempt < maxAttempts + (timeRetried ? 1 : 0)
      ) {
        // INTX's 429 carries no Retry-After (docs/protocol.md, "Rate limits"): a retry inside the same second of
        // the venue's clock would be refused again, so it waits at least for the next one.
        const retryAfter = retryAfterMs(response.headers.get("retry-after"), tRecv);
        const floor = retryAfter ?? (response.status === 429 ? this.#untilNextVenueSecond(tRecv) : 0);
        const wait = Math.max(this.#backoff(attempt), floor);
        if (wait <= budget) {
          const last = { response, body, used };
          fallback = () => ({ response: rebuilt(last.response, last.body), ...last.used });
          budget -= wait;
          await this.#sleep(wait);
          continue;
        }
      }
      return { response: rebuilt(response, body), ...used };
    }
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

  /** The account's own rules (core/guards.ts `screen`); a refusal is logged with who asked and thrown. */
  #screen(kind: RequestKind, request: VenueRequest): Screened {
    const { profile, account, rules } = this.config;
    const screened = screen(rules, kind, request.body, `${profile.name}/${account}`);
    if (!("refused" in screened)) return screened;
    const { status, code, rule, message } = screened.refused;
    throw this.#refused(request.by, new RefusedError(status, code, rule, message));
  }

  #refused(by: string | undefined, err: RefusedError): RefusedError {
    const { profile, account } = this.config;
    log("warn", { event: "refused", venue: profile.name, account, by, rule: err.rule, status: err.status });
    if (err.code === "order_refused")
      this.#alert(events.orderRefused(profile.name, account, err.rule, by, err.message));
    return err;
  }

  #alert(event: AlertEvent): void {
    this.#options.alert?.(event);
  }

  /**
   * Asks the account's gate (halt, order count, send slot) when there is anything to ask, and returns the local time
   * by which the request must leave (core/pacing.ts: at most `lagMs` after the grant). Throws RateLimitedError past
   * the priority's wait cap, RefusedError for a halt or a full minute of orders.
   */
  async #slot(ask: Omit<Admission, "pacing" | "maxWaitMs">, by: string | undefined): Promise<number> {
    const { gate } = this.#options;
    const { pacing, profile, account } = this.config;
    if (!gate || (!pacing && !ask.haltable && ask.ordersPerMinute === undefined)) return Number.POSITIVE_INFINITY;
    const cap = ask.priority === "write" ? WRITE_MAX_WAIT_MS : READ_MAX_WAIT_MS;
    // Without a grant nothing may be sent: a gate that fails is a refusal (429), never a 500 after a send.
    const admitted = await gate.admit({ ...ask, pacing, maxWaitMs: cap }).catch(() => ({ refused: "busy" as const }));
    const label = `${profile.name}/${account}`;
    if ("refused" in admitted) {
      if (admitted.refused === "busy") throw new RateLimitedError(profile.name, 1);
      if (admitted.refused === "halted") {
        const { reason, by: who, at } = admitted.halt;
        const message = `account ${label} is halted: ${reason} (by ${who} at ${at})`;
        throw this.#refused(by, new RefusedError(423, "account_halted", "halt", message));
      }
      const { retryAfterSeconds } = admitted;
      const limit = ask.ordersPerMinute;
      const message = `max_orders_per_minute ${limit} reached (account ${label}); retry after ${retryAfterSeconds} s`;
      throw this.#refused(
        by,
        new RefusedError(422, "order_refused", "max_orders_per_minute", message, retryAfterSeconds),
      );
    }
    const { wait } = admitted;
    if (!pacing) return Number.POSITIVE_INFINITY;
    // Counted from when the grant reaches this isolate: the gate's return trip (a few ms with DO_LOCATION_HINT) is
    // on top of lagMs, and a slow gate cannot make every grant stale.
    const granted = this.#now();
    if (wait > 0) await this.#sleep(wait);
    return granted + wait + pacing.lagMs;
  }

  /**
   * Milliseconds from local time `now` until the venue's clock has surely passed its next whole second, for every
   * offset the estimate allows; a full second without an estimate (or with one wider than that).
   */
  #untilNextVenueSecond(now: number): number {
    const estimate = this.#clock.estimator.estimate(now);
    if (!estimate) return 1_000;
    const half = halfWidthMs(estimate);
    const latest = now + estimate.offsetMs + half;
    const boundary = Math.ceil(latest / 1_000) * 1_000 + (latest % 1_000 === 0 ? 1_000 : 0);
    return Math.min(1_000, Math.ceil(boundary - estimate.offsetMs + half - now));
  }

  /** Full jitter: uniform in [0, min(1 s, 100 ms · 2^(attempt−1))]. */
  #backoff(attempt: number): number {
    return Math.floor(this.#random() * Math.min(1_000, 100 * 2 ** (attempt - 1)));
  }

  #share(now: number): void {
    const { store, waitUntil } = this.#options;
    if (!store || !waitUntil) return;
    const offer = this.#clock.takeOffer(now);
    if (offer) waitUntil(store.offer(offer, DRIFT_PPM, this.config.profile.name).catch(() => false));
  }
}

/**
 * The venue's answer again, from the bytes already read and decoded: without `content-encoding` (they are decoded,
 * so labelled so they would be decoded twice, or compressed again by the runtime) and `content-length`.
 */
function rebuilt(response: Response, body: Uint8Array<ArrayBuffer>): Response {
  const headers = new Headers(response.headers);
  headers.delete("content-encoding");
  headers.delete("content-length");
  return new Response(body.byteLength === 0 ? null : body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}

/** A HEAD answer has no body, whatever its content-length says. */
async function cancelled(response: Response): Promise<Uint8Array<ArrayBuffer>> {
  await response.body?.cancel();
  return new Uint8Array(0);
}

/** The host a redirect points at, for the error message; never the path or query, which may carry data. */
function locationHost(location: string | null, base: string): string {
  if (location === null) return "nowhere (no Location)";
  return URL.canParse(location, base) ? new URL(location, base).host : "an unparsable Location";
}

/** Reads the whole body, at most `limit` bytes; a body that breaks off or is over the limit is an UpstreamError. */
async function readBytes(response: Response, limit: number, attempt: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  let bytes: Uint8Array<ArrayBuffer> | null = null;
  if (declared <= limit) {
    try {
      bytes = await readAtMost(response.body, limit);
    } catch {
      throw new UpstreamError("broken", attempt);
    }
  } else await response.body?.cancel();
  if (!bytes) throw new UpstreamError("too_large", attempt, `over ${limit} bytes`);
  return bytes;
}

/** The codings skewguard undoes, by their `Content-Encoding` names (`x-gzip` is gzip's old name, RFC 9110). */
const CODINGS = new Map<string, "gzip" | "deflate">([
  ["gzip", "gzip"],
  ["x-gzip", "gzip"],
  ["deflate", "deflate"],
]);

/**
 * The body with every coding of `Content-Encoding` undone, last applied first, at most MAX_RESPONSE_BYTES of it.
 * A coding skewguard cannot undo (`br`, `compress`, `zstd`...) or bytes that do not decode are `undecodable`.
 */
async function decodedBody(
  bytes: Uint8Array<ArrayBuffer>,
  headers: Headers,
  attempt: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const header = headers.get("content-encoding");
  if (header === null || bytes.byteLength === 0) return bytes;
  const codings = header
    .split(",")
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== "" && coding !== "identity");
  const unknown = codings.find((coding) => !CODINGS.has(coding));
  if (unknown !== undefined) {
    // The name is shown to the caller: a plain token only (the headers were checked for echoes before this is shown).
    const name = /^[\w.+-]{1,32}$/.test(unknown) ? unknown : "that is not a plain name";
    throw new UpstreamError("undecodable", attempt, `unsupported content-encoding ${name}`);
  }
  // workerd's fetch undoes a lone `gzip` itself and keeps the header (and only that: not `deflate`, nor `gzip, gzip`;
  // test/workers/hardening.test.ts pins it): bytes without gzip's magic number are then already plain. A fetch that
  // does not (a stand-in in tests) hands over the gzip bytes, which start with it.
  if (codings.length === 1 && CODINGS.get(codings[0] ?? "") === "gzip" && !(bytes[0] === 0x1f && bytes[1] === 0x8b)) {
    return bytes;
  }
  let out = bytes;
  for (const coding of codings.reverse()) {
    const format = CODINGS.get(coding) === "gzip" ? "gzip" : zlibWrapped(out) ? "deflate" : "deflate-raw";
    let decoded: Uint8Array<ArrayBuffer> | null;
    try {
      const stream = new Blob([out]).stream().pipeThrough(new DecompressionStream(format));
      decoded = await readAtMost(stream, MAX_RESPONSE_BYTES);
    } catch {
      throw new UpstreamError("undecodable", attempt, `content-encoding ${coding} does not decode`);
    }
    if (!decoded) throw new UpstreamError("too_large", attempt, `over ${MAX_RESPONSE_BYTES} bytes decoded`);
    out = decoded;
  }
  return out;
}

/** Whether `deflate` bytes carry the zlib header HTTP's `deflate` names (RFC 9110); some servers send raw deflate. */
function zlibWrapped(bytes: Uint8Array): boolean {
  const [cmf = 0, flg = 0] = bytes;
  return (cmf & 0x0f) === 8 && ((cmf << 8) | flg) % 31 === 0;
}

/** Values shorter than this are not searched for: a test's one-letter key would match any body. */
const MIN_SECRET_LENGTH = 8;

/** HTML's named character references for what base64 and keys hold besides letters and digits. */
const NAMED_ENTITIES: Record<string, string> = {
  plus: "+",
  sol: "/",
  equals: "=",
  amp: "&",
  lowbar: "_",
  hyphen: "-",
  dash: "-",
  period: ".",
  colon: ":",
  quot: '"',
  apos: "'",
  lt: "<",
  gt: ">",
};

/**
 * `text` with the escapes a page or an API may write a reflected header in undone: JSON's `\uXXXX` and `\/`,
 * HTML's numeric (`&#43;`, `&#x2B;`) and named (`&plus;`) references, and percent-escapes, in any case, until
 * nothing changes (an escape inside another, `&#92;u002B`), at most four rounds.
 */
export function unescaped(text: string): string {
  let current = text;
  for (let round = 0; round < 4; round++) {
    const next = current
      .replace(/\\u([0-9a-f]{4})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
      .replace(/\\\//g, "/")
      .replace(/&#x0*([0-9a-f]{1,6});?/gi, (m, hex: string) => fromCodePoint(Number.parseInt(hex, 16), m))
      .replace(/&#0*([0-9]{1,7});?/g, (m, dec: string) => fromCodePoint(Number.parseInt(dec, 10), m))
      .replace(/&([a-z]+);/gi, (m, name: string) => NAMED_ENTITIES[name.toLowerCase()] ?? m)
      .replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === current) break;
    current = next;
  }
  return current;
}

function fromCodePoint(code: number, otherwise: string): string {
  return code <= 0x10ffff ? String.fromCodePoint(code) : otherwise;
}

/**
 * The texts a reader could make of `body`: UTF-8, and, when it may hold UTF-16 (a NUL byte, which UTF-16 puts
 * beside every ASCII character, or a value that is not ASCII), UTF-16 in both byte orders, from either byte.
 */
function readings(body: Uint8Array, values: readonly string[]): string[] {
  const texts = [new TextDecoder().decode(body)];
  const ascii = values.every((value) => [...value].every((c) => c.charCodeAt(0) < 0x80));
  if (body.includes(0) || !ascii) {
    for (const label of ["utf-16le", "utf-16be"]) {
      texts.push(new TextDecoder(label).decode(body), new TextDecoder(label).decode(body.subarray(1)));
    }
  }
  return texts;
}

/**
 * Whether the body (decoded already) or a header echoes any of `values` (the key, passphrase, secret and signature
 * just sent): a gateway or debug page that reflects the request. The body is read as UTF-8 and as UTF-16 in both
 * byte orders, and each text is searched as is and with its escapes undone (`unescaped`).
 */
export function echoes(body: Uint8Array, headers: Headers, values: readonly string[]): boolean {
  const searched = values.filter((value) => value.length >= MIN_SECRET_LENGTH);
  if (searched.length === 0) return false;
  const headerText = [...headers].map(([name, value]) => `${name}: ${value}`).join("\n");
  const texts = [headerText, ...readings(body, searched)].flatMap((text) => [text, unescaped(text)]);
  return searched.some((value) => texts.some((text) => text.includes(value)));
}

const keys = new KeyCache();
const importedKeys = new WeakMap<object, CryptoKey | Promise<CryptoKey>>();

function clockStore(env: Env, venue: VenueName, baseUrl: string) {
  return env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName(`${venue} ${baseUrl}`), config(env).durableObjects);
}

/**
 * This isolate's clock for `venue`, seeded from the shared estimate first if it is cold, exactly as the next signed
 * request would be; undefined when the venue is not configured. For `/clock` and `/health`.
 */
export async function preparedClock(env: Env, venue: VenueName): Promise<VenueClock | undefined> {
  const venueConfig = config(env).venues[venue];
  if (!venueConfig) return undefined;
  const clock = venueClock(venue, venueConfig.baseUrl);
  await clock.ready(clockStore(env, venue, venueConfig.baseUrl));
  return clock;
}

/** An account's gate (adapters/rate-gate.ts): its halt, order count and send slots. */
export function accountGate(env: Env, venue: VenueName, account: string) {
  return env.RATE_GATE.get(
    env.RATE_GATE.idFromName(`account ${accountKey(venue, account)}`),
    config(env).durableObjects,
  );
}

/** The signed client for an account of `venue` (default `default`), or undefined when it is not configured. */
export function venueClient(
  env: Env,
  venue: VenueName,
  ctx?: { waitUntil(promise: Promise<unknown>): void },
  options: ClientOptions & { account?: string } = {},
): VenueClient | undefined {
  const { accounts, clockSync } = config(env);
  // One client per account; the clock is per venue host, the rate gate per API key.
  const venueConfig = accounts.get(accountKey(venue, options.account ?? "default"));
  if (!venueConfig) return undefined;
  const store = clockStore(env, venue, venueConfig.baseUrl);
  const gate = accountGate(env, venue, venueConfig.account);
  return new SignedClient(venueConfig, venueClock(venue, venueConfig.baseUrl), keys, {
    store,
    gate,
    waitUntil: ctx ? (p) => ctx.waitUntil(p) : undefined,
    alert: ctx ? (event) => raiseLater(env, ctx, event) : undefined,
    syncMode: clockSync,
    ...options,
  });
}

/**
 * What came of one logical venue call, for the callers that keep or echo the answer (webhooks, queued deliveries,
 * jobs): the venue answered (any status), it gave no usable answer (an `UpstreamFailure`), skewguard's own rate gate
 * refused to send, the account's rules refused it (read_only, a guard, a halt), or the venue is not configured.
 */
export type VenueOutcome =
  | {
      kind: "answered";
      status: number;
      /** The body as text, cut at the caller's limit. */
      text: string;
      truncated: boolean;
      attempts: number;
      offsetMs: number;
      uncertaintyMs: number | null;
    }
  | { kind: UpstreamFailure; attempts: number; detail: string | undefined }
  | { kind: "rate_limited"; retryAfterSeconds: number }
  | { kind: "refused"; error: RefusedError }
  | { kind: "not_configured" };

/** A JSON request to a venue: the body (if any) is sent and signed exactly as given. */
export interface JsonRequest {
  method: string;
  path: string;
  query?: string;
  body?: string;
  timeoutMs?: number;
  priority?: Priority;
  /** The account that signs it; default `default`. */
  account?: string;
  /** Who asked, for the log line of a refusal (`hook:<route>`, `job:<name>`). */
  by?: string;
}

/** Sends one JSON request through the signed client and reads at most `maxBytes` of the answer. */
export async function sendJson(
  env: Env,
  ctx: ExecutionContext,
  venue: VenueName,
  request: JsonRequest,
  maxBytes: number,
): Promise<VenueOutcome> {
  const client = venueClient(env, venue, ctx, { account: request.account });
  if (!client) return { kind: "not_configured" };
  try {
    const { response, attempts, offsetMs, uncertaintyMs } = await client.send({
      ...request,
      headers: request.body === undefined ? {} : { "content-type": "application/json" },
    });
    const { text, truncated } = await readText(response, maxBytes);
    return { kind: "answered", status: response.status, text, truncated, attempts, offsetMs, uncertaintyMs };
  } catch (err) {
    if (err instanceof UpstreamError) return { kind: err.kind, attempts: err.attempts, detail: err.detail };
    if (err instanceof RateLimitedError) return { kind: "rate_limited", retryAfterSeconds: err.retryAfterSeconds };
    if (err instanceof RefusedError) return { kind: "refused", error: err };
    throw err;
  }
}

/** Reads at most `maxBytes` of a body as UTF-8 text, cancelling the rest. */
export async function readText(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: "", truncated: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), truncated: false };
    const room = maxBytes - size;
    size += value.byteLength;
    if (value.byteLength > room) {
      await reader.cancel();
      return { text: text + decoder.decode(value.subarray(0, room)), truncated: true };
    }
    text += decoder.decode(value, { stream: true });
  }
}
