// ccxt's coinbaseinternational streams through skewguard's market-data feed (docs/websocket.md): its `watchTrades`
// and `watchOrderBook` pointed at `/intx/ws`, with a bearer token in the upgrade's headers and dummy credentials that
// skewguard replaces, while the simulator's clock is 37 s ahead. And a plain WebSocket client, with only a relay
// token, sent as the subprotocol `bearer.<token>`.
import ccxt from "ccxt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalWorker, startLocal } from "./local-worker.ts";

const TOKEN = "ccxt-feed-token-0123456789abcdef";
let local: LocalWorker;

beforeAll(async () => {
  local = await startLocal({
    INTX_WS_URL: "wss://feed.sim.local/ws-md",
    RELAY_TOKENS: JSON.stringify([{ name: "ccxt-bot", token: TOKEN, allow: ["GET /intx/api/v1/*", "GET /intx/ws"] }]),
  });
  await local.simControl({ reset: true });
}, 60_000);

afterAll(async () => {
  await local?.stop();
});

function client() {
  const exchange = new ccxt.pro.coinbaseinternational({
    apiKey: "ccxt-key-skewguard-ignores",
    secret: btoa("a secret skewguard never uses"),
    password: "ccxt-passphrase-skewguard-ignores",
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  exchange.urls.api = {
    ...exchange.urls.api,
    rest: `${local.url}/intx/api`,
    ws: `${local.url.replace(/^http/, "ws")}/intx/ws`,
  };
  exchange.options.ws = { options: { headers: { Authorization: `Bearer ${TOKEN}` } } };
  return exchange;
}

describe("ccxt.pro coinbaseinternational through skewguard's feed", () => {
  it("watchTrades and watchOrderBook receive the simulator's stream, its clock 37 s ahead", async () => {
    expect((await local.simControl()).skew_ms).toBeGreaterThan(37_000);
    const exchange = client();
    try {
      // ccxt in Node wants an http agent loaded for a ws:// URL (a local skewguard); wss:// needs none.
      await exchange.loadHttpProxyAgent();
      await exchange.loadMarkets();
      const symbol = "BTC/USDC:USDC";
      expect(exchange.markets?.[symbol]?.id).toBe("BTC-PERP");
      const trades = await exchange.watchTrades(symbol);
      expect(trades.length).toBeGreaterThan(0);
      // (ccxt reads the side from `agressor_side`, a misspelling of the feed's `aggressor_side`: it stays undefined.)
      expect(trades[0]).toMatchObject({ symbol, amount: 0.01 });
      expect(trades[0]?.price).toBeGreaterThan(60_000);
      const book = await exchange.watchOrderBook(symbol);
      expect(book.bids.length).toBeGreaterThan(0);
      expect(book.asks.length).toBeGreaterThan(0);
    } finally {
      await exchange.close();
    }
  }, 30_000);

  it("a plain WebSocket client (Node's own, as in a browser) with only a relay token, as a subprotocol", async () => {
    const socket = new WebSocket(`${local.url.replace(/^http/, "ws")}/intx/ws`, ["skewguard", `bearer.${TOKEN}`]);
    const trade = await new Promise<Record<string, unknown>>((resolve, reject) => {
      socket.addEventListener("open", () =>
        socket.send(JSON.stringify({ type: "SUBSCRIBE", channels: ["MATCH"], product_ids: ["ETH-PERP"] })),
      );
      socket.addEventListener("message", (event) => {
        const frame = JSON.parse(String(event.data)) as Record<string, unknown>;
        if (frame.channel === "MATCH") resolve(frame);
      });
      socket.addEventListener("error", () => reject(new Error("the WebSocket failed")));
    });
    expect(socket.protocol).toBe("skewguard");
    socket.close();
    expect(trade).toMatchObject({ product_id: "ETH-PERP" });
  }, 30_000);
});
