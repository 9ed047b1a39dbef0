// skewguard against the strict simulator, one test per point where it depends on what INTX and CDE really answer
// (issue 23): INTX's client_order_id forms, generic refusals read from their Date, plain-text errors, a 429 without
// Retry-After, CDE's kill-switch body, an order of unknown outcome found before any re-send (both duplicate
// scopes), and an order answered 200 but REJECTED. Each failed against the lenient simulator's counterpart.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue } from "../support/env.ts";
import { DEV_BETA, DEV_PORTFOLIOS, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const TOKEN = "fidelity-token-0123456789abcdef";
const HOOK = "fidelity-hook-secret-0123456789";
const FIRM = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const order = (fields: Record<string, unknown>) => ({
  client_order_id: "{{client_order_id}}",
  side: "BUY",
  size: "0.01",
  instrument: "BTC-PERP",
  ...fields,
});
const hook = (name: string, request: Record<string, unknown>, delivery = "direct") => ({
  name,
  verify: "bearer",
  secret_binding: "HOOK_SECRET",
  delivery,
  request,
});
const HOOKS = [
  hook("market", {
    venue: "intx",
    method: "POST",
    path: "/api/v1/orders",
    body: order({ type: "MARKET", tif: "IOC" }),
  }),
  hook("maker", {
    venue: "intx",
    method: "POST",
    path: "/api/v1/orders",
    body: order({ type: "LIMIT", tif: "GTC", price: "64001", post_only: true }),
  }),
  hook(
    "queued-market",
    { venue: "intx", method: "POST", path: "/api/v1/orders", body: order({ type: "MARKET", tif: "IOC" }) },
    "queue",
  ),
  hook(
    "kill",
    {
      venue: "cde",
      method: "POST",
      path: "/rest/kill-switch",
      body: { only_cancel_no_trading_lock: false, firm_uuid: FIRM },
    },
    "queue",
  ),
];

let n = 0;
function bindings(extra: Record<string, unknown> = {}) {
  const queue = recordingQueue<DeliveryMessage>();
  const env = simEnv(`fidelity-${n++}-${Date.now()}.sim.test`, {
    CLOCK_SYNC: "never",
    INTX_RATE_LIMIT_PER_SECOND: "off",
    RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/*", "* /cde/*"] }]),
    HOOKS: JSON.stringify(HOOKS),
    HOOK_SECRET: HOOK,
    DELIVERIES: queue.queue,
    ...extra,
  });
  return { env, queued: queue.sent };
}

const fire = (env: Env, route: string, key: string) =>
  fetchWorker(env, `/hooks/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${HOOK}`, "idempotency-key": key },
    body: "{}",
  });

async function consume(env: Env, message: DeliveryMessage, attempts: number) {
  const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
    { id: `q-${message.id}-${attempts}`, timestamp: new Date(), attempts, body: message },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  await getQueueResult(batch, ctx);
}

const deliveryRow = (env: Env, id: string) =>
  env.DB.prepare("SELECT state, attempts, status, reason FROM deliveries WHERE id = ?1").bind(id).first();

describe("fidelity: skewguard against the strict simulator", () => {
  it("1. a webhook order carries a client_order_id in one of INTX's forms, and is placed", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    const r = await fire(env, "market", "tv-alert-1");
    expect(r.status).toBe(200);
    const body = (await r.json()) as { sent: { client_order_id: string }; venue_response: { status: number } };
    expect(body.venue_response.status).toBe(200);
    expect(body.sent.client_order_id).toMatch(UUID);
    const state = await simControl();
    expect(state.accounts["intx:default"]?.orders_placed).toBe(1);
    expect(state.accounts["intx:default"]?.orders.map((o) => o.client_order_id)).toEqual([body.sent.client_order_id]);
  });

  it("2. the generic 401 for a stale timestamp is recognised from its Date; a wrong passphrase is not re-signed", async () => {
    const { env } = bindings({
      ACCOUNTS: JSON.stringify([{ name: "beta", venue: "intx" }]),
      ...DEV_BETA,
      INTX_BETA_API_PASSPHRASE: "not-beta-passphrase",
    });
    await simControl({ reset: true, skew_ms: 37_250 });
    expect((await simControl()).timestamp_body).toBe("generic");
    const r = await fetchWorker(env, "/intx/api/v1/portfolios", {}, TOKEN);
    expect(r.status).toBe(200);
    expect(r.headers.get("x-skewguard-attempts")).toBe("2");
    // beta shares the venue's clock, now warm: its refusal's Date shows the timestamp inside the window.
    const refused = await fetchWorker(env, "/intx/beta/api/v1/portfolios", {}, TOKEN);
    expect(refused.status).toBe(401);
    expect(refused.headers.get("x-skewguard-attempts")).toBe("1");
    const { effects } = await simControl();
    expect(effects.rejected).toEqual({ timestamp_window: 1, passphrase: 1 });
  });

  it("3. a refusal answered in plain text (the caller asked for no JSON) still teaches the clock", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: -61_400 });
    const r = await fetchWorker(
      env,
      "/cde/rest/funding-rate?symbol=BIPZ30",
      { headers: { accept: "text/plain" } },
      TOKEN,
    );
    expect(r.status).toBe(200);
    expect(r.headers.get("x-skewguard-attempts")).toBe("2");
    expect((await simControl()).effects.rejected).toEqual({ timestamp_window: 1 });
  });

  it("4. after a 429 without Retry-After a read is retried in a later second, and lands", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    expect((await fetchWorker(env, "/intx/api/v1/portfolios", {}, TOKEN)).status).toBe(200); // warms the clock
    // A reset forgets the warm-up's request (the limit counts a rolling second); skewguard's clock stays warm.
    await simControl({ reset: true, skew_ms: 0, intx_rate_limit: 1 });
    // Two at once: one lands, the other is refused (no Retry-After) and must land later, once its second is free: a
    // retry at the venue's next second may still be inside the first one's rolling second, the one after is not.
    const both = await Promise.all([0, 1].map(() => fetchWorker(env, "/intx/api/v1/portfolios", {}, TOKEN)));
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    const attempts = both.map((r) => Number(r.headers.get("x-skewguard-attempts")));
    expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
    const { effects } = await simControl();
    expect(effects.rejected.rate_limit).toBeGreaterThanOrEqual(1);
  });

  it("5. a queued CDE kill-switch naming one firm uuid is delivered, and CDE locks trading", async () => {
    const { env, queued } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    expect((await fire(env, "kill", "kill-1")).status).toBe(202);
    const [message] = queued;
    if (!message) throw new Error("nothing was queued");
    await consume(env, message, 1);
    expect(await deliveryRow(env, message.id)).toMatchObject({ state: "delivered", status: 200 });
    const state = await simControl();
    expect(state.trading_locked.cde).toBe(true);
    expect(state.effects.kill_switches).toBe(1);
  });

  for (const scope of ["open", "ever"] as const) {
    it(`6. an order whose answer was lost is found at the venue, not placed twice (duplicate_scope ${scope})`, async () => {
      const { env, queued } = bindings();
      await simControl({ reset: true, skew_ms: 0, duplicate_scope: scope });
      expect((await fetchWorker(env, "/intx/api/v1/portfolios", {}, TOKEN)).status).toBe(200); // warms the clock
      expect((await fire(env, "queued-market", `lost-${scope}`)).status).toBe(202);
      const [message] = queued;
      if (!message) throw new Error("nothing was queued");
      // The venue places and fills the order, and the connection drops before its answer arrives.
      await simControl({ fault: { kind: "drop_after", count: 1 } });
      await consume(env, message, 1);
      expect(await deliveryRow(env, message.id)).toMatchObject({ state: "queued", attempts: 1 });
      await consume(env, message, 2);
      expect(await deliveryRow(env, message.id)).toMatchObject({ state: "delivered", attempts: 2, status: 200 });
      const state = await simControl();
      expect(state.accounts["intx:default"]?.orders_placed).toBe(1);
      expect(state.accounts["intx:default"]?.orders.filter((o) => o.action === "create")).toHaveLength(1);
    });
  }

  it("7. a post_only order the venue answers 200 but REJECTED is a refusal for the webhook's sender", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    const r = await fire(env, "maker", "maker-1");
    expect(r.status).toBe(502);
    const body = (await r.json()) as { error: { code: string; message: string }; venue_response: { status: number } };
    expect(body.venue_response.status).toBe(200);
    expect(body.error.code).toBe("venue_rejected");
    expect(body.error.message).toMatch(/^intx rejected the order: /);
  });

  it("7. portfolio travels as the caller sends it: a cancel with it is accepted, one without it refused", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    const placed = await fetchWorker(
      env,
      "/intx/api/v1/orders",
      {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          client_order_id: crypto.randomUUID(),
          side: "BUY",
          size: "0.01",
          type: "LIMIT",
          tif: "GTC",
          price: "50000",
          instrument: "BTC-PERP",
        }),
      },
      TOKEN,
    );
    const { order_id } = (await placed.json()) as { order_id: string };
    const bare = await fetchWorker(env, `/intx/api/v1/orders/${order_id}`, { method: "DELETE" }, TOKEN);
    expect(bare.status).toBe(400);
    const pf = DEV_PORTFOLIOS.default;
    const cancel = await fetchWorker(
      env,
      `/intx/api/v1/orders/${order_id}?portfolio=${pf}`,
      { method: "DELETE" },
      TOKEN,
    );
    expect(cancel.status).toBe(200);
  });
});
