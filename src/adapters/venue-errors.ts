/**
 * The errors of a venue call that callers act on: the venue gave no usable answer (`UpstreamError`), skewguard's own
 * outbound limit stopped it (`RateLimitedError`), or the account's rules refused it (`RefusedError`). Every message
 * is safe to show: none carries a secret, a signature or the answer's body.
 */

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
