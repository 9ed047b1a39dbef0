/**
 * Who may call skewguard. Bearer tokens (`RELAY_TOKENS`) for every non-public route, each limited to its
 * `METHOD /path-glob` allow-list, and a coarse inbound rate limit per caller: the token's name once known, else the
 * client IP. Tokens are matched by digest in constant time (`TokenTable`).
 */

import { allows, type TokenEntry } from "../core/tokens.ts";
import { config } from "../runtime.ts";
import { HttpError } from "./http.ts";

/**
 * Throws 429 when `key` is over the inbound limit. The Workers rate-limiting binding counts per location: coarse
 * protection against a flood, not an exact quota. A missing binding (some tests) means no limit.
 */
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

/** A known token whose allow-list does not name the route: 403, and who it was (for the order ledger). */
export class NotAllowedError extends HttpError {
  readonly token: string;
  constructor(token: string, method: string, path: string) {
    super(403, "forbidden", `token "${token}" does not allow ${method} ${path}`);
    this.token = token;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/!#$%&'*^`|]+=*)$/;

/**
 * Authenticates `request` and checks that its token allows `method path` (the relay's own path, e.g.
 * `/intx/api/v1/orders`). Malformed header → 400; missing or unknown token → 401; not allowed → 403;
 * `RELAY_TOKENS` unusable → 503, so a misconfiguration closes the door instead of opening it.
 * Returns the token's name.
 */
export async function authenticate(request: Request, env: Env, method: string, path: string): Promise<string> {
  return (await authenticateEntry(request, env, method, path)).name;
}

/**
 * `authenticate`, returning the token's entry (its name and allow-list). `header` is the request's Authorization by
 * default; the feed's upgrade may bring it as a WebSocket subprotocol instead (routes/feed.ts).
 */
export async function authenticateEntry(
  request: Request,
  env: Env,
  method: string,
  path: string,
  header: string | null = request.headers.get("authorization"),
): Promise<TokenEntry> {
  const { tokens } = config(env);
  if (!tokens) throw new HttpError(503, "auth_not_configured", "RELAY_TOKENS is not usable; see GET /health");
  const challenge = { "www-authenticate": 'Bearer realm="skewguard"' };
  if (header === null) throw new HttpError(401, "unauthenticated", "missing Authorization: Bearer <token>", challenge);
  const m = BEARER.exec(header);
  if (!m) throw new HttpError(400, "malformed_authorization", "Authorization must be exactly: Bearer <token>");
  const match = await tokens.match(m[1] as string);
  if (!match) throw new HttpError(401, "unauthenticated", "unknown bearer token", challenge);
  await limitInbound(env, `token:${match.name}`);
  if (!allows(match.allow, method, path)) throw new NotAllowedError(match.name, method, path);
  return match;
}
