/**
 * `sendJson`: the one venue call that returns a tagged `VenueOutcome` instead of throwing, for the callers that keep
 * or echo the answer (webhooks, queued deliveries, jobs).
 */
import type { Audit } from "../core/ledger.ts";
import type { Priority } from "../core/pacing.ts";
import { venueClient } from "./client.ts";
import { readText } from "./venue-answer.ts";
import { RateLimitedError, RefusedError, UpstreamError, type UpstreamFailure } from "./venue-errors.ts";

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
  /** Who asked and how, for the order ledger (an order-affecting call with it leaves a row). */
  audit?: Audit;
}

/** Sends one JSON request through the signed client and reads at most `maxBytes` of the answer. */
export async function sendJson(
  env: Env,
  ctx: ExecutionContext,
  venue: string,
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
