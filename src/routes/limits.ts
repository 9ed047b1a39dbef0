/**
 * Inbound rate limit per caller: the bearer token's name once known, else the client IP. Uses the Workers
 * rate-limiting binding, which counts per location: coarse protection against a flood, not an exact quota.
 */
import { HttpError } from "./errors.ts";

/** Throws 429 when `key` is over the inbound limit. A missing binding (some tests) means no limit. */
export async function limitInbound(env: { INBOUND_LIMITER?: RateLimit }, key: string): Promise<void> {
  if (!env.INBOUND_LIMITER) return;
  const { success } = await env.INBOUND_LIMITER.limit({ key });
  if (!success) {
    throw new HttpError(429, "rate_limited", "too many requests from this caller; slow down", { "retry-after": "10" });
  }
}

/** The inbound key for an unauthenticated request. */
export function clientKey(request: Request): string {
  return `ip:${request.headers.get("cf-connecting-ip") ?? "unknown"}`;
}
