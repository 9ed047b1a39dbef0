/**
 * The market-data feed relay's upgrade: `GET /<venue>/ws` (the default account) and `GET /<venue>/<account>/ws`
 * with `Upgrade: websocket`, for a venue whose profile has a feed (docs/websocket.md). The bearer token comes in
 * `Authorization`, or, for a browser, as the subprotocol `bearer.<token>`; never in the URL. Only the non-secret
 * protocol `skewguard` is echoed back, when the client offered it. The account's `MarketFeed` Durable Object
 * (adapters/market-feed.ts) takes the bot.
 */
import { type FeedSetup, feedObject, feedSetup } from "../adapters/market-feed.ts";
import { ACCOUNT_NAME } from "../core/accounts.ts";
import { accountKey } from "../core/venue-config.ts";
import { config } from "../runtime.ts";
import type { VenueProfile } from "../venues/profile.ts";
import { authenticateEntry } from "./auth.ts";
import { HttpError } from "./http.ts";

/** The subprotocol skewguard echoes: it names the relay, never a token. */
export const FEED_PROTOCOL = "skewguard";
const BEARER_PROTOCOL = "bearer.";

function offeredProtocols(request: Request): string[] {
  const header = request.headers.get("sec-websocket-protocol") ?? "";
  return header
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
}

/** The Authorization to check: the header itself, else `Bearer <token>` from a `bearer.<token>` subprotocol. */
function bearerHeader(request: Request, offered: string[]): string | null {
  const header = request.headers.get("authorization");
  if (header !== null) return header;
  const protocol = offered.find((p) => p.startsWith(BEARER_PROTOCOL));
  return protocol === undefined ? null : `Bearer ${protocol.slice(BEARER_PROTOCOL.length)}`;
}

/** The account's feed configuration for its Durable Object, or the relay's error for why there is none. */
function accountFeed(env: Env, profile: VenueProfile, account: string): FeedSetup {
  const venue = profile.name;
  const { accounts, broken } = config(env);
  const venueConfig = accounts.get(accountKey(venue, account));
  if (!venueConfig) {
    if (broken.has(accountKey(venue, account)) || account === "default") {
      throw new HttpError(503, "account_not_configured", `${venue} account ${account} is not usable; see GET /health`);
    }
    throw new HttpError(404, "no_such_account", `${venue} has no account ${account}; see GET /accounts`);
  }
  const setup = feedSetup(venueConfig);
  if (!setup)
    throw new HttpError(503, "feed_not_configured", `${venue}'s feed settings are not usable; see GET /health`);
  return setup;
}

export async function feedUpgrade(profile: VenueProfile, account: string, request: Request, env: Env) {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new HttpError(426, "upgrade_required", "this route is a WebSocket: send Upgrade: websocket");
  }
  if (!ACCOUNT_NAME.test(account))
    throw new HttpError(400, "bad_path", "the account part must be a plain account name");
  const offered = offeredProtocols(request);
  const path = new URL(request.url).pathname;
  const entry = await authenticateEntry(request, env, "GET", path, bearerHeader(request, offered));
  const feed = feedObject(env, profile.name, account);
  await feed.prepare(accountFeed(env, profile, account));
  const answer = await feed.fetch("https://feed.internal/", {
    headers: { upgrade: "websocket", "x-skewguard-token": entry.name },
  });
  if (!answer.webSocket) {
    const refusal = (await answer.json()) as { code?: string; message?: string };
    throw new HttpError(answer.status, refusal.code ?? "feed_unavailable", refusal.message ?? "the feed refused");
  }
  const headers = offered.includes(FEED_PROTOCOL) ? { "sec-websocket-protocol": FEED_PROTOCOL } : undefined;
  return new Response(null, { status: 101, webSocket: answer.webSocket, headers });
}
