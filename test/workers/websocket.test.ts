// The market-data feed relay (docs/websocket.md) against the simulator's feed, whose clock is 37 s ahead: bots with
// only a relay token stream, share one upstream connection, are told of a reconnect, and a slow one is cut alone.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { feedObject } from "../../src/adapters/market-feed.ts";
import { findLeaks, LEAK_SCANNER, type LeakScanner } from "../support/leaks.ts";
import { DEV, DEV_ALPHA, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";
import { type Frame, type TestSocket, track } from "../support/ws.ts";

const TOKEN = "feed-bot-token-0123456789";
const OTHER = "relay-only-token-0123456789";
const TOKENS = JSON.stringify([
  { name: "feed", token: TOKEN, allow: ["GET /intx/ws", "GET /intx/alpha/ws"] },
  { name: "relay", token: OTHER, allow: ["* /intx/api/v1/*"] },
]);

function feedEnv(overrides: Record<string, unknown> = {}): Env {
  return simEnv("feed.sim", { INTX_WS_URL: "wss://feed.sim/ws-md", RELAY_TOKENS: TOKENS, ...overrides });
}

const bots: TestSocket[] = [];

async function connect(env: Env, init: RequestInit = {}, token: string | undefined = TOKEN): Promise<TestSocket> {
  const headers = new Headers(init.headers);
  headers.set("upgrade", "websocket");
  const bot = track(await fetchWorker(env, "/intx/ws", { ...init, headers }, token));
  bots.push(bot);
  return bot;
}

const subscribe = (channels: string[], products = ["BTC-PERP"]) => ({
  type: "SUBSCRIBE",
  channels,
  product_ids: products,
});
const isTrade = (f: Frame) => f.channel === "MATCH" && f.type === "UPDATE";

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("the market-data feed relay", () => {
  beforeEach(async () => {
    await simControl({ reset: true });
  });

  afterEach(async () => {
    for (const bot of bots.splice(0)) if (!bot.closed) bot.socket.close(1000, "test over");
    await until(async () => (await simControl()).ws_md?.open === 0);
  });

  it("a bot with only a relay token receives trades while the venue's clock is 37 s off", async () => {
    expect((await simControl()).skew_ms).toBeGreaterThan(37_000);
    const bot = await connect(feedEnv());
    bot.send({ ...subscribe(["MATCH"]), key: "mine", passphrase: "x", time: "1", signature: "bogus" });
    expect(await bot.next((f) => f.channel === "SUBSCRIPTIONS")).toMatchObject({
      channels: [{ name: "MATCH", product_ids: ["BTC-PERP"] }],
    });
    expect(await bot.next(isTrade)).toMatchObject({ product_id: "BTC-PERP" });
    const sim = await simControl();
    expect(sim.ws_md).toMatchObject({ connections: 1, rejected: 0 });
  });

  it("/health shows each account's feed: upstream state, bots, subscriptions, last message age", async () => {
    const env = feedEnv({
      RELAY_TOKENS: JSON.stringify([{ name: "ops", token: TOKEN, allow: ["GET /health", "GET /intx/ws"] }]),
    });
    const bot = await connect(env);
    bot.send(subscribe(["MATCH", "LEVEL1"]));
    await bot.next(isTrade);
    const health = (await (await fetchWorker(env, "/health", {}, TOKEN)).json()) as {
      venues: { intx: { feeds: Record<string, unknown> } };
    };
    expect(health.venues.intx.feeds.default).toMatchObject({ upstream: "open", bots: 1, subscriptions: 2 });
    expect(health.venues.intx.feeds.default).toHaveProperty("last_message_age_ms", expect.any(Number));
  });

  it("GET /intx/alpha/ws streams as the account alpha, on an upstream of its own", async () => {
    const env = feedEnv({ ...DEV_ALPHA, ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx" }]) });
    const response = await fetchWorker(env, "/intx/alpha/ws", { headers: { upgrade: "websocket" } }, TOKEN);
    const bot = track(response);
    bots.push(bot);
    bot.send(subscribe(["MATCH"]));
    await bot.next(isTrade);
    expect(await feedObject(env, "intx", "alpha").status()).toMatchObject({ upstream: "open", bots: 1 });
    expect((await fetchWorker(env, "/intx/gamma/ws", { headers: { upgrade: "websocket" } }, TOKEN)).status).toBe(403);
  });

  it("the token may come as the subprotocol bearer.<token>; only `skewguard` is echoed", async () => {
    const response = await fetchWorker(feedEnv(), "/intx/ws", {
      headers: { upgrade: "websocket", "sec-websocket-protocol": `skewguard, bearer.${TOKEN}` },
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("sec-websocket-protocol")).toBe("skewguard");
    const bot = track(response);
    bots.push(bot);
    bot.send(subscribe(["MATCH"]));
    await bot.next(isTrade);
  });

  it("refuses a token without the route, no token, and a request without Upgrade, with JSON errors", async () => {
    const env = feedEnv();
    const upgrade = { headers: { upgrade: "websocket" } };
    const forbidden = await fetchWorker(env, "/intx/ws", upgrade, OTHER);
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ error: { code: "forbidden" } });
    expect((await fetchWorker(env, "/intx/ws", upgrade)).status).toBe(401);
    const plain = await fetchWorker(env, "/intx/ws", {}, TOKEN);
    expect(plain.status).toBe(426);
    expect(await plain.json()).toMatchObject({ error: { code: "upgrade_required" } });
    expect((await fetchWorker(env, "/intx/beta/ws", upgrade, TOKEN)).status).toBe(403);
    expect((await simControl()).ws_md?.connections).toBe(0);
  });

  it("refuses a non-subscription message with an error frame, and forwards nothing", async () => {
    const bot = await connect(feedEnv());
    bot.send({ type: "ORDER", side: "BUY" });
    expect(await bot.next((f) => f.type === "SKEWGUARD")).toMatchObject({ event: "error" });
    expect((await simControl()).ws_md?.connections).toBe(0);
  });

  it("no frame a bot receives contains the key, passphrase or a signature", async () => {
    const bot = await connect(feedEnv());
    bot.send(subscribe(["MATCH", "LEVEL1", "LEVEL2", "FUNDING", "INSTRUMENTS"]));
    await bot.next((f) => f.channel === "INSTRUMENTS");
    await bot.next((f) => f.channel === "LEVEL2" && f.type === "UPDATE");
    const scanner = (globalThis as Record<symbol, unknown>)[LEAK_SCANNER] as LeakScanner;
    const learned = [...scanner.secrets];
    expect(learned.length).toBeGreaterThan(0);
    expect(findLeaks([...learned, DEV.INTX_API_KEY, DEV.INTX_API_PASSPHRASE], bot.raw)).toEqual([]);
    scanner.captured.push(...bot.raw);
  });

  it("an upstream frame that carries the account's credentials is dropped, not passed on", async () => {
    const env = feedEnv();
    const bot = await connect(env);
    bot.send(subscribe(["MATCH"]));
    await bot.next(isTrade);
    await simControl({ ws_fault: { kind: "ws_echo" } });
    bot.send(subscribe(["LEVEL1"]));
    await bot.next((f) => f.channel === "LEVEL1");
    await until(async () => (await feedObject(env, "intx", "default").status()).frames_dropped === 1);
    expect(bot.frames.some((f) => f.echoed === true)).toBe(false);
    expect(findLeaks([DEV.INTX_API_KEY, DEV.INTX_API_PASSPHRASE], bot.raw)).toEqual([]);
    const scanner = (globalThis as Record<symbol, unknown>)[LEAK_SCANNER] as LeakScanner;
    scanner.captured.push(...bot.raw);
  });

  it("two bots on one channel share one upstream; the second leaving does not cut the first", async () => {
    const env = feedEnv();
    const first = await connect(env);
    const second = await connect(env);
    first.send(subscribe(["MATCH"]));
    await first.next(isTrade);
    second.send(subscribe(["MATCH"]));
    await second.next(isTrade);
    second.socket.close(1000, "done");
    await new Promise((r) => setTimeout(r, 300));
    const seen = first.frames.length;
    await until(async () => first.frames.length > seen + 2);
    expect((await simControl()).ws_md).toMatchObject({ connections: 1, open: 1 });
    expect(first.closed).toBeUndefined();
  });

  it("each bot receives only what it subscribed to", async () => {
    const env = feedEnv();
    const btc = await connect(env);
    const eth = await connect(env);
    btc.send(subscribe(["MATCH"], ["BTC-PERP"]));
    eth.send(subscribe(["MATCH"], ["ETH-PERP"]));
    await btc.next(isTrade);
    await eth.next(isTrade);
    await new Promise((r) => setTimeout(r, 600));
    expect(btc.frames.filter(isTrade).every((f) => f.product_id === "BTC-PERP")).toBe(true);
    expect(eth.frames.filter(isTrade).every((f) => f.product_id === "ETH-PERP")).toBe(true);
  });

  it("a stalled upstream is reconnected and both bots are told", async () => {
    const env = feedEnv({ INTX_WS_STALL_SECONDS: "1" });
    const first = await connect(env);
    const second = await connect(env);
    first.send(subscribe(["MATCH"]));
    second.send(subscribe(["MATCH"], ["ETH-PERP"]));
    await first.next(isTrade);
    await second.next(isTrade);
    await simControl({ ws_fault: { kind: "ws_stall" } });
    const told = (f: Frame) => f.type === "SKEWGUARD" && f.event === "reconnected";
    await Promise.all([first.next(told, 6000), second.next(told, 6000)]);
    const after = first.frames.length;
    await until(async () => first.frames.slice(after).some(isTrade));
    expect((await simControl()).ws_md?.connections).toBe(2);
  });

  it("an upstream the venue closes is reconnected too", async () => {
    const bot = await connect(feedEnv());
    bot.send(subscribe(["MATCH"]));
    await bot.next(isTrade);
    await simControl({ ws_fault: { kind: "ws_close" } });
    await bot.next((f) => f.type === "SKEWGUARD" && f.event === "reconnected", 6000);
    expect(bot.closed).toBeUndefined();
  });

  it("a redirect from the feed is not followed: the credentials go to the configured host only", async () => {
    await simControl({ ws_fault: { kind: "ws_redirect" } });
    const bot = await connect(feedEnv());
    bot.send(subscribe(["MATCH"]));
    // The first upgrade is redirected and given up; the reconnect, to the same URL, streams.
    await bot.next(isTrade, 8000);
    expect((await simControl()).ws_md).toMatchObject({ redirected: 1, followed: 0, connections: 1 });
  });

  it("a slow bot is cut alone, with a reason", async () => {
    const env = feedEnv({ INTX_WS_BOT_MESSAGES_PER_SECOND: "10", INTX_WS_BOT_QUEUE: "20" });
    const steady = await connect(env);
    const greedy = await connect(env);
    steady.send(subscribe(["MATCH"]));
    await steady.next(isTrade);
    greedy.send(
      subscribe(["MATCH", "LEVEL1", "LEVEL2", "FUNDING", "INSTRUMENTS"], ["BTC-PERP", "ETH-PERP", "SOL-PERP"]),
    );
    const closed = await greedy.closing(6000);
    expect(closed).toMatchObject({ code: 1008, reason: "too slow: more than 20 messages waiting" });
    const seen = steady.frames.length;
    await until(async () => steady.frames.length > seen + 2);
    expect(steady.closed).toBeUndefined();
    expect((await simControl()).ws_md?.connections).toBe(1);
    const status = await feedObject(env, "intx", "default").status();
    expect(status).toMatchObject({ upstream: "open", bots: 1, bots_cut: 1 });
  });

  it("halting the account does not cut its market data", async () => {
    const env = feedEnv({
      RELAY_TOKENS: JSON.stringify([{ name: "ops", token: TOKEN, allow: ["GET /intx/ws", "* /accounts/*/halt"] }]),
    });
    const bot = await connect(env);
    bot.send(subscribe(["MATCH"]));
    await bot.next(isTrade);
    const halt = { method: "PUT", body: JSON.stringify({ reason: "feed drill" }) };
    expect((await fetchWorker(env, "/accounts/intx/default/halt", halt, TOKEN)).status).toBe(200);
    const seen = bot.frames.length;
    bot.send(subscribe(["LEVEL1"]));
    await bot.next((f) => f.channel === "LEVEL1");
    await until(async () => bot.frames.slice(seen).filter(isTrade).length > 2);
    expect((await fetchWorker(env, "/accounts/intx/default/halt", { method: "DELETE" }, TOKEN)).status).toBe(200);
  });

  it("caps the bots per account and the subscribe messages per second per bot", async () => {
    const env = feedEnv({ INTX_WS_MAX_BOTS: "1", INTX_WS_SUBSCRIBES_PER_SECOND: "2" });
    const bot = await connect(env);
    const refused = await fetchWorker(env, "/intx/ws", { headers: { upgrade: "websocket" } }, TOKEN);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { code: "too_many_bots" } });
    for (let i = 0; i < 3; i++) bot.send(subscribe(["MATCH"]));
    expect(await bot.next((f) => f.type === "SKEWGUARD")).toMatchObject({ event: "error" });
  });
});
