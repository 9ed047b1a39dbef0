// ccxt, the most used exchange client, as a bot behind skewguard: its `coinbaseinternational` pointed at the relay
// (base URL `<skewguard>/intx/api`, a bearer token in its headers, credentials skewguard ignores) runs a first
// script against the simulator. ccxt sends JSON bodies with no content-type, also on DELETE; skewguard drops ccxt's
// own CB-ACCESS-* headers and signs with its key and its learned clock, so ccxt's dummy key and clock do not matter.
import ccxt from "ccxt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalWorker, startLocal } from "./local-worker.ts";

const TOKEN = "ccxt-bot-token-0123456789abcdef";
let local: LocalWorker;

beforeAll(async () => {
  local = await startLocal({
    RELAY_TOKENS: JSON.stringify([{ name: "ccxt-bot", token: TOKEN, allow: ["* /intx/api/v1/*"] }]),
  });
  // ccxt 4.5.84 sends its own 17-character client_order_id ("nfqkvdjp-" and a cut uuid) whatever the caller passes,
  // which INTX's spec, read as exact lengths, refuses; ccxt's own recorded INTX answers show ids of 4 and 18
  // characters accepted, so the lengths are likely maximums: the simulator's knob for that reading
  // (docs/simulator.md, docs/protocol.md "INTX").
  await local.simControl({ reset: true, client_order_id_lengths: "up_to" });
}, 60_000);

afterAll(async () => {
  await local?.stop();
});

function client() {
  const exchange = new ccxt.coinbaseinternational({
    apiKey: "ccxt-key-skewguard-ignores",
    secret: btoa("a secret skewguard never uses"),
    password: "ccxt-passphrase-skewguard-ignores",
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  exchange.urls.api = { ...exchange.urls.api, rest: `${local.url}/intx/api` };
  return exchange;
}

describe("ccxt coinbaseinternational through skewguard", () => {
  it("loadMarkets, fetchBalance, createOrder, fetchOrder, editOrder, cancelOrder, cancelAllOrders", async () => {
    const exchange = client();
    const markets = await exchange.loadMarkets();
    const btc = Object.values(markets).find((m) => m?.id === "BTC-PERP");
    expect(btc).toMatchObject({ base: "BTC", quote: "USDC", settle: "USDC", swap: true });
    const symbol = btc?.symbol as string;

    const balance = await exchange.fetchBalance();
    expect(balance.USDC?.total).toBeGreaterThan(0);

    const placed = await exchange.createOrder(symbol, "limit", "buy", 0.01, 50_000);
    const id = placed.id as string;
    expect(id).toEqual(expect.any(String));
    const fetched = await exchange.fetchOrder(id, symbol);
    expect(fetched).toMatchObject({ id: id, symbol, side: "buy", type: "limit", price: 50_000, amount: 0.01 });
    expect(fetched.status).toBe("open");

    // ccxt's editOrder needs the client order id INTX's replace requires.
    const edited = await exchange.editOrder(id, symbol, "limit", "buy", 0.02, 49_000, {
      clientOrderId: "edit-order-000000001",
    });
    expect(edited).toMatchObject({ id, price: 49_000, amount: 0.02 });

    const cancelled = await exchange.cancelOrder(id, symbol);
    expect(cancelled.id).toBe(id);
    // INTX reports a finished order as DONE and says why in event_type; ccxt passes order_status through.
    const after = await exchange.fetchOrder(id, symbol);
    expect(after.status).toBe("DONE");
    expect(after.info.event_type).toBe("CANCELED");

    await exchange.createOrder(symbol, "limit", "sell", 0.01, 90_000);
    await exchange.cancelAllOrders(symbol);
    expect(await exchange.fetchOpenOrders(symbol)).toEqual([]);

    const effects = (await local.simControl()).effects as Record<string, unknown>;
    expect(effects).toMatchObject({ orders_placed: 2, orders_modified: 1, orders_cancelled: 2 });
    // Every signed request carried skewguard's key and signature, and none was refused, for its clock or anything.
    // The one refusal is skewguard's unsigned cold probe (CLOCK_SYNC=cold), which taught it the 37 s skew.
    expect(effects.rejected).toEqual({ missing_headers: 1 });
  });
});
