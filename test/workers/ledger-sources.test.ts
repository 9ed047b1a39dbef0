// The order ledger end to end (issue 26): orders through every source (the relay on two accounts, a TradingView
// route, a queued Standard Webhooks route, a re-drive, a guard's refusal, an order while halted, an allow-list
// refusal, a cancel) are read back from GET /orders as exactly those rows, with the fields each call had, and no
// credential anywhere. The simulator answers the orders; the queue is a recording stand-in consumed by hand.
import { createExecutionContext, createMessageBatch, waitOnExecutionContext } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { DEV, DEV_ALPHA, DEV_BETA, DEV_PORTFOLIOS, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const OPS = "ledger-ops-token-0123456789";
const BETA_ONLY = "ledger-beta-token-0123456789";
const TV_PASSPHRASE = "ledger-tv-passphrase-0123";
const WHSEC = "whsec_bGVkZ2VyLWtpbGwtc3dpdGNoLXNlY3JldC0zMi1ieSE=";
const FIRM = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
const queued: DeliveryMessage[] = [];

const e = simEnv("ledger.sim.test", {
  ...DEV_ALPHA,
  ...DEV_BETA,
  ACCOUNTS: JSON.stringify([
    { name: "alpha", venue: "intx", guards: { max_size: { "*": "1" } } },
    { name: "beta", venue: "intx" },
  ]),
  RELAY_TOKENS: JSON.stringify([
    {
      name: "ops",
      token: OPS,
      allow: [
        "* /intx/*",
        "* /cde/*",
        "GET /orders",
        "* /accounts/*/halt",
        "GET /deliveries*",
        "POST /deliveries/*/retry",
      ],
    },
    { name: "beta-bot", token: BETA_ONLY, allow: ["* /intx/beta/*", "GET /orders"] },
  ]),
  HOOKS: JSON.stringify([
    {
      name: "tv",
      verify: "tradingview",
      secret_binding: "HOOK_TV",
      source_ips: "any",
      fields: { side: "side", size: "decimal" },
      request: {
        venue: "intx",
        account: "alpha",
        method: "POST",
        path: "/api/v1/orders",
        body: {
          client_order_id: "{{client_order_id}}",
          side: "{{side}}",
          size: "{{size}}",
          type: "MARKET",
          tif: "IOC",
          instrument: "ETH-PERP",
          portfolio: DEV_PORTFOLIOS.alpha,
        },
      },
    },
    {
      name: "kill",
      verify: "standard-webhooks",
      secret_binding: "HOOK_KILL",
      delivery: "queue",
      request: {
        venue: "cde",
        method: "POST",
        path: "/rest/kill-switch",
        body: { only_cancel_no_trading_lock: true, firm_uuid: FIRM },
      },
    },
  ]),
  HOOK_TV: TV_PASSPHRASE,
  HOOK_KILL: WHSEC,
  DELIVERIES: {
    send: async (body: DeliveryMessage) => {
      queued.push(body);
    },
  },
});

const post = (body: unknown): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});
const order = (size: string, portfolio: string) => ({
  client_order_id: crypto.randomUUID(),
  side: "BUY",
  size,
  price: "50000",
  type: "LIMIT",
  tif: "GTC",
  instrument: "BTC-PERP",
  portfolio,
});

async function consumeQueued(): Promise<void> {
  for (const message of queued.splice(0)) {
    const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
      { id: `q-${message.id}-${Date.now()}`, timestamp: new Date(), attempts: 1, body: message },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, e, ctx);
    await waitOnExecutionContext(ctx);
  }
}

type Row = Record<string, unknown>;

describe("the order ledger records every order-affecting call, from every source", () => {
  it("reads back exactly the calls made, newest first, with their fields", async () => {
    await simControl({ reset: true });
    const since = new Date().toISOString();
    const alphaOrder = order("0.5", DEV_PORTFOLIOS.alpha);
    const placed = await fetchWorker(e, "/intx/alpha/api/v1/orders", post(alphaOrder), OPS);
    expect(placed.status).toBe(200);
    const { order_id: alphaId } = (await placed.json()) as { order_id: string };
    const betaOrder = order("2", DEV_PORTFOLIOS.beta);
    expect((await fetchWorker(e, "/intx/beta/api/v1/orders", post(betaOrder), OPS)).status).toBe(200);
    // Over alpha's max_size: refused by the guard, never sent.
    const tooBig = order("3", DEV_PORTFOLIOS.alpha);
    expect((await fetchWorker(e, "/intx/alpha/api/v1/orders", post(tooBig), OPS)).status).toBe(422);
    // beta halted: refused by the halt.
    const halt = { method: "PUT", body: '{"reason":"ledger drill"}' };
    expect((await fetchWorker(e, "/accounts/intx/beta/halt", halt, OPS)).status).toBe(200);
    const whileHalted = order("1", DEV_PORTFOLIOS.beta);
    expect((await fetchWorker(e, "/intx/beta/api/v1/orders", post(whileHalted), OPS)).status).toBe(423);
    expect((await fetchWorker(e, "/accounts/intx/beta/halt", { method: "DELETE" }, OPS)).status).toBe(200);
    // A token allowed beta only tries alpha: refused by its allow-list.
    const elsewhere = order("1", DEV_PORTFOLIOS.alpha);
    expect((await fetchWorker(e, "/intx/alpha/api/v1/orders", post(elsewhere), BETA_ONLY)).status).toBe(403);
    // Cancel alpha's order.
    const cancelPath = `/intx/alpha/api/v1/orders/${alphaId}?portfolio=${DEV_PORTFOLIOS.alpha}`;
    expect((await fetchWorker(e, cancelPath, { method: "DELETE" }, OPS)).status).toBe(200);
    // A TradingView alert becomes an order on alpha.
    const tv = await fetchWorker(e, "/hooks/tv", post({ passphrase: TV_PASSPHRASE, side: "SELL", size: "0.25" }));
    expect(tv.status).toBe(200);
    const { delivery_id: tvId } = (await tv.json()) as { delivery_id: string };
    // A queued kill-switch: its first attempt is redirected (dead), then it is re-driven and sent.
    const body = JSON.stringify({ reason: "drill" });
    const at = new Date();
    const headers = {
      "content-type": "application/json",
      "webhook-id": "msg-ledger-1",
      "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
      "webhook-signature": new Webhook(WHSEC).sign("msg-ledger-1", at, body),
    };
    const kill = await fetchWorker(e, "/hooks/kill", { method: "POST", body, headers });
    expect(kill.status).toBe(202);
    const { delivery_id: killId } = (await kill.json()) as { delivery_id: string };
    await simControl({ fault: { kind: "redirect", count: 1 } });
    await consumeQueued();
    expect((await fetchWorker(e, `/deliveries/${killId}/retry`, { method: "POST" }, OPS)).status).toBe(202);
    await consumeQueued();
    expect((await simControl()).effects.kill_switches).toBe(1);

    const read = await fetchWorker(e, `/orders?since=${encodeURIComponent(since)}`, {}, OPS);
    expect(read.status).toBe(200);
    const text = await read.text();
    const { orders } = JSON.parse(text) as { orders: Row[] };
    const summary = orders.map((r) => [r.source, r.actor, r.account, r.method, r.kind, r.outcome, r.status ?? null]);
    expect(summary).toEqual([
      ["redrive", "kill", "default", "POST", "state", "sent", 200],
      ["delivery", "kill", "default", "POST", "state", "failed", null],
      ["hook", "tv", "alpha", "POST", "create", "sent", 200],
      ["relay", "ops", "alpha", "DELETE", "cancel", "sent", 200],
      ["relay", "beta-bot", "alpha", "POST", "create", "refused", 403],
      ["relay", "ops", "beta", "POST", "create", "refused", 423],
      ["relay", "ops", "alpha", "POST", "create", "refused", 422],
      ["relay", "ops", "beta", "POST", "create", "sent", 200],
      ["relay", "ops", "alpha", "POST", "create", "sent", 200],
    ]);
    const [redriven, deadFirst, hook, cancel, forbidden, halted, guarded, beta, alpha] = orders as Row[];
    // The first order: its fields exactly as sent, the venue's order id, a latency, and two attempts: the simulator's
    // clock is 37 s off and this runtime's was cold, so the venue refused the first timestamp and it was re-signed.
    expect(alpha).toMatchObject({
      venue: "intx",
      path: "/api/v1/orders",
      client_order_id: alphaOrder.client_order_id,
      instrument: "BTC-PERP",
      side: "BUY",
      size: "0.5",
      price: "50000",
      type: "LIMIT",
      tif: "GTC",
      venue_order_id: alphaId,
      attempts: 2,
    });
    expect(alpha?.latency_ms).toEqual(expect.any(Number));
    expect(alpha?.refusal).toBeUndefined();
    expect(alpha?.delivery).toBeUndefined();
    expect(beta).toMatchObject({ client_order_id: betaOrder.client_order_id, size: "2", attempts: 1 });
    expect(guarded).toMatchObject({
      size: "3",
      refusal: "max_size: size 3 is over max_size 1 for BTC-PERP (account intx/alpha)",
    });
    expect(guarded?.venue_order_id).toBeUndefined();
    expect(halted?.refusal).toMatch(/^halt: account intx\/beta is halted: ledger drill \(by ops at 20\d\d-/);
    expect(forbidden?.refusal).toBe('allow-list: token "beta-bot" does not allow POST /intx/alpha/api/v1/orders');
    // The cancel's path has no query; the order it cancelled is named by the venue's answer.
    expect(cancel).toMatchObject({ path: `/api/v1/orders/${alphaId}`, venue_order_id: alphaId });
    expect(hook).toMatchObject({ client_order_id: tvId, side: "SELL", size: "0.25", type: "MARKET", tif: "IOC" });
    expect(hook?.delivery).toBeUndefined();
    expect(deadFirst).toMatchObject({ venue: "cde", path: "/rest/kill-switch", delivery: killId, attempts: 1 });
    // CDE's clock learnt nothing from the redirect (not the venue's answer): the re-drive's first timestamp was refused.
    expect(redriven).toMatchObject({ venue: "cde", delivery: killId, attempts: 2 });
    for (const row of orders) expect(row.at).toMatch(/^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // No credential, signature or body in any row.
    for (const secret of [...Object.values(DEV), ...Object.values(DEV_ALPHA), ...Object.values(DEV_BETA)]) {
      expect(text).not.toContain(secret);
    }
    for (const word of [TV_PASSPHRASE, WHSEC, OPS, BETA_ONLY, "passphrase", "portfolio", FIRM]) {
      expect(text).not.toContain(word);
    }

    // The token allowed beta only sees beta's rows.
    const scoped = (await (await fetchWorker(e, `/orders?since=${since}`, {}, BETA_ONLY)).json()) as { orders: Row[] };
    expect(scoped.orders.map((r) => [r.account, r.outcome])).toEqual([
      ["beta", "refused"],
      ["beta", "sent"],
    ]);
  });
});
