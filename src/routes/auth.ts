/**
 * Bearer authentication for every non-public route. Tokens are compared as SHA-256 digests in constant time,
 * and every configured token is checked, so timing says nothing about which one (or which byte) differed.
 */
import { log } from "../adapters/log.ts";
import { ConfigError } from "../core/errors.ts";
import { allows, digestsEqual, parseTokens, type TokenEntry } from "../core/tokens.ts";
import { HttpError } from "./errors.ts";
import { limitInbound } from "./limits.ts";

export interface Principal {
  name: string;
}

interface TokenTable {
  entries: { entry: TokenEntry; digest: Uint8Array }[];
}

const tables = new WeakMap<object, Promise<TokenTable | ConfigError>>();
const encoder = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function buildTable(value: unknown): Promise<TokenTable | ConfigError> {
  try {
    const entries = parseTokens(value);
    return { entries: await Promise.all(entries.map(async (entry) => ({ entry, digest: await sha256(entry.token) }))) };
  } catch (err) {
    if (err instanceof ConfigError) {
      log("error", { event: "config", binding: err.binding, problem: err.message });
      return err;
    }
    throw err;
  }
}

/** The parsed `RELAY_TOKENS` for this env, built once per isolate; a ConfigError when it is unusable. */
export function tokenTable(env: object): Promise<TokenTable | ConfigError> {
  let table = tables.get(env);
  if (!table) {
    table = buildTable((env as Record<string, unknown>).RELAY_TOKENS);
    tables.set(env, table);
  }
  return table;
}

const BEARER = /^Bearer ([A-Za-z0-9\-._~+/!#$%&'*^`|]+=*)$/;

/**
 * Authenticates `request` and checks that its token allows `method path` (the relay's own path, e.g.
 * `/intx/api/v1/orders`). Malformed header → 400; missing or unknown token → 401; not allowed → 403;
 * `RELAY_TOKENS` unusable → 503, so a misconfiguration closes the door instead of opening it.
 */
export async function authenticate(
  request: Request,
  env: { INBOUND_LIMITER?: RateLimit },
  method: string,
  path: string,
): Promise<Principal> {
  const table = await tokenTable(env);
  if (table instanceof ConfigError) {
    throw new HttpError(503, "auth_not_configured", `${table.binding} is not usable; see GET /health`);
  }
  const header = request.headers.get("authorization");
  const challenge = { "www-authenticate": 'Bearer realm="skewguard"' };
  if (header === null) throw new HttpError(401, "unauthenticated", "missing Authorization: Bearer <token>", challenge);
  const m = BEARER.exec(header);
  if (!m) throw new HttpError(400, "malformed_authorization", "Authorization must be exactly: Bearer <token>");
  const presented = await sha256(m[1] as string);
  let match: TokenEntry | undefined;
  for (const { entry, digest } of table.entries) {
    if (digestsEqual(presented, digest) && !match) match = entry;
  }
  if (!match) throw new HttpError(401, "unauthenticated", "unknown bearer token", challenge);
  await limitInbound(env, `token:${match.name}`);
  if (!allows(match.allow, method, path)) {
    throw new HttpError(403, "forbidden", `token "${match.name}" does not allow ${method} ${path}`);
  }
  return { name: match.name };
}
