/**
 * When the Worker sends a failed venue call again (the loop's failure retries, lib/signed-call.ts). Only idempotent
 * methods are: a POST is never retried on a 5xx, a 429, a network error or a timeout, since the venue may have
 * processed it. A network error (not a timeout), a 5xx and a 429 are retried after a full-jitter backoff that honours
 * `Retry-After`, and after a 429 waits at least for the venue's next second; at most `maxAttempts` sends besides the
 * one timestamp re-sign, which never takes a failure retry's place. The caller keeps the budget of waits.
 */
import { type ClockEstimate, halfWidthMs, type OffsetEstimator } from "../lib/estimator.ts";
import type { Attempt, Failure } from "../lib/signed-call.ts";
import { UpstreamError } from "./venue-errors.ts";

export const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** Seconds or an HTTP date in `Retry-After`, as milliseconds from `now`; undefined if absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Full jitter: uniform in [0, min(1 s, 100 ms · 2^(attempt−1))]. */
export function backoffMs(attempt: number, random: () => number): number {
  return Math.floor(random() * Math.min(1_000, 100 * 2 ** (attempt - 1)));
}

/**
 * Milliseconds from local time `now` until the venue's clock has surely passed its next whole second, for every
 * offset the estimate allows; a full second without an estimate (or with one wider than that).
 */
export function untilNextVenueSecond(now: number, estimate: ClockEstimate | undefined): number {
  if (!estimate) return 1_000;
  const half = halfWidthMs(estimate);
  const latest = now + estimate.offsetMs + half;
  const boundary = Math.ceil(latest / 1_000) * 1_000 + (latest % 1_000 === 0 ? 1_000 : 0);
  return Math.min(1_000, Math.ceil(boundary - estimate.offsetMs + half - now));
}

/** What a retry decision reads besides the failure: the attempt cap, the jitter source, the venue clock. */
export interface RetryLimits {
  maxAttempts: number;
  random: () => number;
  estimator: Pick<OffsetEstimator, "estimate">;
}

/**
 * The wait before an idempotent call is sent again after `failure`, or undefined when it is not retried: a timeout,
 * an answer other than 5xx and 429, or `maxAttempts` sends already (the timestamp re-sign not counted).
 */
export function failureWait(failure: Failure, attempt: Attempt<unknown>, limits: RetryLimits): number | undefined {
  const sends = attempt.number - (attempt.resigned ? 1 : 0);
  if (sends >= limits.maxAttempts) return undefined;
  if (failure.response === undefined) {
    const { error } = failure;
    const retried = error instanceof UpstreamError && error.kind === "unreachable";
    return retried ? backoffMs(attempt.number, limits.random) : undefined;
  }
  const { response, tRecv } = failure;
  if (response.status < 500 && response.status !== 429) return undefined;
  // INTX's 429 carries no Retry-After (docs/protocol.md, "Rate limits"): a retry inside the same second of the
  // venue's clock would be refused again, so it waits at least for the next one.
  const retryAfter = retryAfterMs(response.headers.get("retry-after"), tRecv);
  const floor =
    retryAfter ?? (response.status === 429 ? untilNextVenueSecond(tRecv, limits.estimator.estimate(tRecv)) : 0);
  return Math.max(backoffMs(attempt.number, limits.random), floor);
}
