/**
 * The simulated INTX market-data WebSocket feed (`GET /ws-md` with `Upgrade: websocket`), as strict as INTX's
 * documents: every SUBSCRIBE and UNSUBSCRIBE carries `key`, `passphrase`, `time` and `signature` =
 * base64(HMAC-SHA256(secret, time + key + "CBINTLMD" + passphrase)), `time` within 30 s of the simulator's skewed
 * clock, else a REJECT frame and the connection is closed; a connection that has not subscribed within 3 s is closed.
 * It confirms with `SUBSCRIPTIONS` snapshots and streams MATCH, LEVEL1, LEVEL2, FUNDING and INSTRUMENTS for the
 * subscribed products, in the shapes ccxt's `coinbaseinternational` parses. Faults (`ws_fault` in /_sim/control):
 * `ws_close` closes every open connection (within a tick), `ws_stall` silences them (they stay open), `ws_refuse` answers the next
 * upgrades 503, `ws_redirect` answers the next upgrades 302 to `/ws-md?followed=1` (counted as `followed` if a client
 * comes there), `ws_echo` echoes the next accepted subscription messages back whole, credentials and all. docs/simulator.md, "The market-data feed".
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { isObject } from "./shared.ts";

/** The credentials of an INTX account the gateway knows (index.ts passes its lookup in). */
export interface FeedAccount {
  key: string;
  secret: string | undefined;
  passphrase: string | undefined;
}

export type WsFaultKind = "ws_close" | "ws_stall" | "ws_refuse" | "ws_redirect" | "ws_echo";
export const WS_FAULT_KINDS: readonly WsFaultKind[] = ["ws_close", "ws_stall", "ws_refuse", "ws_redirect", "ws_echo"];

const CHANNELS = ["MATCH", "LEVEL1", "LEVEL2", "FUNDING", "INSTRUMENTS"] as const;
const PRODUCTS: Record<string, number> = { "BTC-PERP": 64000, "ETH-PERP": 2500, "SOL-PERP": 142.5 };
const SUBSCRIBE_WITHIN_MS = 3_000;
const TIME_WINDOW_S = 30;
const TICK_MS = 250;
/** How often each connection sends an UPDATE per subscription (`ws_interval_ms`; new connections take it up). */
let tickMs = TICK_MS;

export function setFeedInterval(ms: number): void {
  tickMs = ms;
}

interface Connection {
  socket: WebSocket;
  subscriptions: Set<string>;
  sequence: number;
  stalled: boolean;
  /** `ws_close` asked: the connection's own timer closes it (I/O belongs to the request that opened it). */
  closing: boolean;
  timer: ReturnType<typeof setInterval> | undefined;
}

/** What /_sim/control reports as `ws_md`. */
export const feed = {
  connections: 0,
  open: 0,
  subscribes: 0,
  unsubscribes: 0,
  rejected: 0,
  refused: 0,
  redirected: 0,
  followed: 0,
};
export const feedInterval = () => tickMs;
let refuseRemaining = 0;
let redirectRemaining = 0;
/** `ws_echo`: this many accepted subscription messages are echoed back whole, credentials and all. */
let echoRemaining = 0;
const open = new Set<Connection>();

export function resetFeed(): void {
  Object.assign(feed, { connections: 0, subscribes: 0, unsubscribes: 0, rejected: 0, refused: 0 });
  Object.assign(feed, { redirected: 0, followed: 0 });
  refuseRemaining = 0;
  redirectRemaining = 0;
  echoRemaining = 0;
  tickMs = TICK_MS;
}

/** Applies a `ws_fault`: close or stall every open connection now, or refuse the next `count` upgrades. */
export function wsFault(kind: WsFaultKind, count: number): void {
  if (kind === "ws_refuse") refuseRemaining = count;
  if (kind === "ws_redirect") redirectRemaining = count;
  if (kind === "ws_echo") echoRemaining = count;
  for (const c of open) {
    if (kind === "ws_close") c.closing = true;
    if (kind === "ws_stall") c.stalled = true;
  }
}

function drop(c: Connection): void {
  if (!open.delete(c)) return;
  feed.open = open.size;
  if (c.timer !== undefined) clearInterval(c.timer);
}

/** `GET /ws-md`: the upgrade, answered with `Date` from the skewed clock. */
export function handleFeed(request: Request, nowMs: () => number, account: (key: string) => FeedAccount | undefined) {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("Expected Upgrade: websocket", { status: 426 });
  }
  if (refuseRemaining > 0) {
    refuseRemaining--;
    feed.refused++;
    return new Response("Service Unavailable", { status: 503 });
  }
  if (new URL(request.url).searchParams.has("followed")) feed.followed++;
  else if (redirectRemaining > 0) {
    redirectRemaining--;
    feed.redirected++;
    return new Response(null, { status: 302, headers: { location: "/ws-md?followed=1" } });
  }
  const pair = new WebSocketPair();
  const socket = pair[1];
  socket.accept();
  const c: Connection = {
    socket,
    subscriptions: new Set(),
    sequence: 0,
    stalled: false,
    closing: false,
    timer: undefined,
  };
  open.add(c);
  feed.connections++;
  feed.open = open.size;
  setTimeout(() => {
    if (c.subscriptions.size > 0 || !open.has(c)) return;
    send(c, { message: "No subscription received", reason: "Timed out", channel: "SUBSCRIPTIONS", type: "REJECT" });
    socket.close(1008, "no subscription");
    drop(c);
  }, SUBSCRIBE_WITHIN_MS);
  socket.addEventListener("message", (event) => onMessage(c, event.data, nowMs(), account));
  socket.addEventListener("close", () => drop(c));
  socket.addEventListener("error", () => drop(c));
  c.timer = setInterval(() => tick(c, nowMs()), tickMs);
  const date = new Date(Math.floor(nowMs() / 1000) * 1000).toUTCString();
  return new Response(null, { status: 101, webSocket: pair[0], headers: { date } });
}

function send(c: Connection, message: object): void {
  try {
    c.socket.send(JSON.stringify(message));
  } catch {
    drop(c);
  }
}

/** Why a subscription message is refused, or undefined when its credentials and time are good. */
function authProblem(m: Record<string, unknown>, nowMs: number, account: (key: string) => FeedAccount | undefined) {
  const { key, passphrase, time, signature } = m;
  if (typeof key !== "string" || typeof passphrase !== "string" || typeof signature !== "string") return "missing";
  if (typeof time !== "string" || !/^\d{1,12}$/.test(time)) return "time";
  const creds = account(key);
  if (!creds?.secret || creds.passphrase !== passphrase) return "key";
  if (Math.abs(Number(time) * 1000 - nowMs) > TIME_WINDOW_S * 1000) return "time";
  const expected = createHmac("sha256", Buffer.from(creds.secret, "base64"))
    .update(`${time}${key}CBINTLMD${passphrase}`)
    .digest("base64");
  return signature === expected ? undefined : "signature";
}

function onMessage(c: Connection, data: unknown, nowMs: number, account: (key: string) => FeedAccount | undefined) {
  let m: unknown;
  try {
    m = JSON.parse(typeof data === "string" ? data : "");
  } catch {
    m = undefined;
  }
  const type = isObject(m) ? m.type : undefined;
  if (!isObject(m) || (type !== "SUBSCRIBE" && type !== "UNSUBSCRIBE")) {
    send(c, {
      message: "Failed to parse message",
      reason: "Invalid message",
      channel: "SUBSCRIPTIONS",
      type: "REJECT",
    });
    return;
  }
  const problem = authProblem(m, nowMs, account);
  if (problem !== undefined) {
    feed.rejected++;
    send(c, {
      message: "Failed to subscribe",
      reason: "Unable to authenticate",
      channel: "SUBSCRIPTIONS",
      type: "REJECT",
    });
    c.socket.close(1008, "Unable to authenticate");
    drop(c);
    return;
  }
  const channels = Array.isArray(m.channels) ? m.channels.filter((x): x is string => typeof x === "string") : [];
  const products = Array.isArray(m.product_ids) ? m.product_ids.filter((x) => typeof x === "string") : [];
  const known = products.filter((p) => p in PRODUCTS);
  for (const channel of channels.filter((x) => (CHANNELS as readonly string[]).includes(x))) {
    for (const product of known.length > 0 ? known : Object.keys(PRODUCTS)) {
      const id = `${channel} ${product}`;
      if (type === "UNSUBSCRIBE") c.subscriptions.delete(id);
      else {
        c.subscriptions.add(id);
        send(c, update(c, channel, product, nowMs, "SNAPSHOT"));
      }
    }
  }
  if (echoRemaining > 0) {
    echoRemaining--;
    send(c, { ...m, channel: "MATCH", product_id: "BTC-PERP", echoed: true });
  }
  if (type === "SUBSCRIBE") feed.subscribes++;
  else feed.unsubscribes++;
  send(c, confirmation(c, nowMs));
}

function confirmation(c: Connection, nowMs: number) {
  const byChannel = new Map<string, string[]>();
  for (const id of c.subscriptions) {
    const [channel = "", product = ""] = id.split(" ");
    byChannel.set(channel, [...(byChannel.get(channel) ?? []), product]);
  }
  const channels = [...byChannel].map(([name, product_ids]) => ({ name, product_ids }));
  return { channels, authenticated: true, channel: "SUBSCRIPTIONS", type: "SNAPSHOT", time: iso(nowMs) };
}

const iso = (ms: number) => new Date(ms).toISOString();

function tick(c: Connection, nowMs: number): void {
  if (c.closing) {
    c.socket.close(1011, "simulated close");
    drop(c);
  }
  if (c.stalled || !open.has(c)) return;
  for (const id of c.subscriptions) {
    const [channel = "", product = ""] = id.split(" ");
    send(c, update(c, channel, product, nowMs, "UPDATE"));
  }
}

/** One message of `channel` for `product`, in INTX's shape (ccxt's coinbaseinternational parses each). */
function update(c: Connection, channel: string, product: string, nowMs: number, type: "SNAPSHOT" | "UPDATE") {
  const base = PRODUCTS[product] ?? 100;
  const price = (base * (1 + (Math.random() - 0.5) / 1000)).toFixed(2);
  const head = { sequence: c.sequence++, product_id: product, time: iso(nowMs) };
  const tail = { channel, type };
  if (channel === "MATCH") {
    const trade = { match_id: String(nowMs * 1000 + c.sequence), trade_qty: "0.01", aggressor_side: "BUY" };
    return { ...head, ...trade, trade_price: price, ...tail };
  }
  if (channel === "LEVEL1") {
    const bid = (base * 0.9999).toFixed(2);
    const ask = (base * 1.0001).toFixed(2);
    return { ...head, bid_price: bid, bid_qty: "1.5", ask_price: ask, ask_qty: "2.5", ...tail };
  }
  if (channel === "LEVEL2" && type === "SNAPSHOT") {
    const bids = [1, 2, 3].map((i) => [(base - i).toFixed(2), "1"]);
    const asks = [1, 2, 3].map((i) => [(base + i).toFixed(2), "1"]);
    return { ...head, bids, asks, ...tail };
  }
  if (channel === "LEVEL2") return { ...head, changes: [["BUY", (base - 1).toFixed(2), "2"]], ...tail };
  if (channel === "FUNDING") return { ...head, funding_rate: "0.000015", is_final: false, ...tail };
  return {
    ...head,
    instrument_type: "PERP",
    base_asset_name: product.split("-")[0],
    quote_asset_name: "USDC",
    ...tail,
  };
}
