/**
 * The signing proxy: `ANY /<venue>/<path>` (one route per venue profile) → `<venue base URL>/<path>?<query>`, signed.
 * Everything is refused unless proven safe: the token must allow the exact method and path, the path must sit
 * under the venue's API prefix with no trick that changes it, and only allow-listed headers go either way.
 */
import { venueClient } from "../adapters/client.ts";
import { recordOrder } from "../adapters/ledger.ts";
import { UpstreamError } from "../adapters/venue-errors.ts";
import { ACCOUNT_NAME } from "../core/accounts.ts";
import { ledgerKind, ledgerRow } from "../core/ledger.ts";
import { accountKey } from "../core/venue-config.ts";
import { isJson } from "../lib/date.ts";
import { config } from "../runtime.ts";
import { checkVenuePath, classify, READ_METHODS, type VenueProfile } from "../venues/profile.ts";
import { authenticate, NotAllowedError } from "./auth.ts";
import { HttpError, readBody, venueFailure } from "./http.ts";

/** Largest request body the relay forwards (orders and kill-switches are a few hundred bytes). */
export const MAX_BODY_BYTES = 64 * 1024;

/** Response headers never passed back: hop-by-hop, cookies, and anything carrying credentials. */
const DROP_RESPONSE = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "set-cookie",
  "set-cookie2",
  "content-length",
]);

/** The raw path of the request line, before any URL normalisation. */
function rawPath(url: string): string {
  const afterScheme = url.indexOf("//") + 2;
  const start = url.indexOf("/", afterScheme);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

/**
 * The account and venue path of a relay URL: `/intx/api/v1/orders` is the default account's `/api/v1/orders`,
 * `/intx/alpha/api/v1/orders` account alpha's. Checked by the one venue path rule on the raw request line, before
 * the URL parser could normalise anything away; an account segment must be a plain account name.
 */
export function upstreamTarget(profile: VenueProfile, url: string): { account: string; path: string; written: string } {
  const venue = profile.name;
  const prefix = profile.apiPrefix;
  const written = rawPath(url).slice(venue.length + 1);
  const apiRoot = prefix.split("/")[1]; // the API prefix's first segment: `api` in `/api/v1/`
  const first = written.split("/")[1] ?? "";
  const account = first === apiRoot ? "default" : first;
  if (account !== "default" && !ACCOUNT_NAME.test(account)) {
    // Anything but plain lower-case unreserved characters (an encoded or upper-case spelling of an account, a `;`,
    // a scheme) is refused as a path that could mean something else; a plain unknown segment is simply not ours.
    if (/[^a-z0-9._~-]/.test(account)) {
      throw new HttpError(400, "bad_path", "path refused: the account part must be a plain account name");
    }
    throw new HttpError(
      404,
      "not_found",
      `only paths under /${venue}${prefix} or /${venue}/<account>${prefix} are relayed`,
    );
  }
  const path = account === "default" && first === apiRoot ? written : written.slice(account.length + 1);
  const problem = path === "" ? { status: 404 as const, reason: "no path" } : checkVenuePath(profile, path);
  if (problem?.status === 404) {
    throw new HttpError(
      404,
      "not_found",
      `only paths under /${venue}${prefix} or /${venue}/<account>${prefix} are relayed`,
    );
  }
  if (problem) throw new HttpError(400, "bad_path", `path refused: ${problem.reason}`);
  return { account, path, written };
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * The content type to send a request body with. The venues take JSON only, but clients label it loosely: ccxt
 * sends none, `fetch` adds `text/plain` to a string body. Such a body is accepted when it parses as JSON and sent
 * as `application/json`; an explicit other type (a form, multipart) is 415, and a body that is not JSON is 400,
 * before anything is signed or a send slot is taken.
 */
function jsonBodyType(type: string | null, body: Uint8Array): string {
  if (type !== null && !JSON_TYPE.test(type) && !/^text\/plain\s*(?:;|$)/i.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "request bodies must be JSON (application/json)");
  }
  try {
    JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body));
  } catch {
    throw new HttpError(400, "bad_json", "the request body is not valid JSON");
  }
  return type !== null && JSON_TYPE.test(type) ? type : "application/json";
}

/**
 * An order-affecting request refused by the token's allow-list (after authentication) is a ledger row: the token
 * tried to trade on an account it may not use. Only the order's own fields of its body are kept, and the body is
 * not read for it (the relay refuses before reading it): the row names the call, not its contents.
 */
function recordNotAllowed(
  env: Env,
  ctx: ExecutionContext,
  profile: VenueProfile,
  account: string,
  method: string,
  path: string,
  err: NotAllowedError,
  receivedAt: number,
): void {
  const kind = ledgerKind(classify(profile, method, path));
  if (!kind) return;
  const audit = { source: "relay" as const, actor: err.token, receivedAt };
  const call = { venue: profile.name, account, method, path, kind, body: undefined };
  const end = { outcome: "refused" as const, status: 403, refusal: `allow-list: ${err.message}` };
  recordOrder(env, ctx, ledgerRow(audit, call, end, Date.now(), crypto.randomUUID()));
}

/** The proxy handler for one venue. */
export async function relay(
  profile: VenueProfile,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
): Promise<Response> {
  const receivedAt = Date.now();
  const venue = profile.name;
  const method = request.method.toUpperCase();
  const { account, path, written } = upstreamTarget(profile, request.url);
  // The allow-list sees the path as written: `* /intx/alpha/*` reaches alpha only, never beta or default.
  const token = await authenticate(request, env, method, `/${venue}${written}`).catch((err: unknown) => {
    if (err instanceof NotAllowedError) recordNotAllowed(env, ctx, profile, account, method, path, err, receivedAt);
    throw err;
  });
  const client = venueClient(env, venue, ctx, { account });
  if (!client && account !== "default") {
    if (config(env).broken.has(accountKey(venue, account)))
      throw new HttpError(503, "account_not_configured", `${venue} account ${account} is not usable; see GET /health`);
    throw new HttpError(404, "no_such_account", `${venue} has no account ${account}; see GET /accounts`);
  }
  if (!client) {
    throw new HttpError(503, "venue_not_configured", `${venue} is not configured; see GET /health for what is missing`);
  }
  const body = await readBody(request, MAX_BODY_BYTES);
  // A read never carries a body: an OPTIONS with one would pass halt, `read_only` and the guards as a read and be
  // sent with it, so it is refused like GET and HEAD.
  if (body && READ_METHODS.has(method)) {
    throw new HttpError(
      400,
      "body_not_allowed",
      `${method === "OPTIONS" ? "an" : "a"} ${method} request cannot carry a body`,
    );
  }
  const headers: Record<string, string> = {};
  const accept = request.headers.get("accept");
  if (accept !== null) headers.accept = accept;
  if (body) headers["content-type"] = jsonBodyType(request.headers.get("content-type"), body);
  const query = new URL(request.url).search.slice(1);
  try {
    const audit = { source: "relay" as const, actor: token, receivedAt };
    const result = await client.send({ method, path, query, body, headers, by: `token:${token}`, audit });
    const { status } = result.response;
    if (status >= 500 && !isJson(result.response.headers)) {
      // A gateway's error page, not the venue's API: its text is not ours to pass on.
      throw new HttpError(502, "venue_error", `${venue} answered ${status} with a body that is not JSON`);
    }
    const out = new Headers();
    for (const [name, value] of result.response.headers) {
      if (!DROP_RESPONSE.has(name) && !name.startsWith("cb-access-")) out.set(name, value);
    }
    out.set("x-skewguard-offset-ms", String(result.offsetMs));
    out.set("x-skewguard-uncertainty-ms", result.uncertaintyMs === null ? "unknown" : String(result.uncertaintyMs));
    out.set("x-skewguard-attempts", String(result.attempts));
    return new Response(result.response.body, { status, headers: out });
  } catch (err) {
    if (err instanceof UpstreamError) throw venueFailure(venue, err.kind, err.detail);
    throw err;
  }
}
