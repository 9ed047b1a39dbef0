// Every fault the simulator can inject, through the Worker's real fetch and queue handlers: at most one venue-side
// effect per logical request, and every accepted webhook delivered or dead-lettered with a reason.

import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue } from "../support/env.ts";
import { simControl, simEnv } from "../support/sim.ts";

const TOKEN = "faults-token-0123456789abcdef";
const HOOK_TOKEN = "faults-hook-token-0123456789";
const HOOKS = [
  {
    name: "kill",
    verify: "bearer",
    secret_binding: "HOOK_TOKEN",
    delivery: "queue",
    max_age_seconds: 60,
    request: {
      venue: "cde",
      method: "POST",
      path: "/rest/kill-switch",
      body: { only_cancel_no_trading_lock: false, firm_uuid: "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01" },
    },
  },
  {
    name: "order",
    verify: "bearer",
    secret_binding: "HOOK_TOKEN",
    fields: { side: "side", size: "decimal" },
    timeout_ms: 300,
    request: {
      venue: "intx",
      method: "POST",
      path: "/api/v1/orders",
      body: {
        client_order_id: "{{client_order_id}}",
        side: "{{side}}",
        size: "{{size}}",
        type: "MARKET",
        tif: "IOC",
        instrument: "BTC-PERP",
      },
    },
  },
];

let n = 0;
function bindings() {
  return simEnv(`faults-${n++}-${Date.now()}.sim.test`, {
    DELIVERIES: recordingQueue<DeliveryMessage>().queue, // the consumer is driven by hand
    RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/*", "* /cde/*"] }]),
    HOOKS: JSON.stringify(HOOKS),
    HOOK_TOKEN,
    INTX_RATE_LIMIT_PER_SECOND: "off",
  });
}

async function call(e: Env, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${TOKEN}`);
  const r = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), e, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

const ORDER = (id: string) =>
  JSON.stringify({
    client_order_id: id,
    side: "BUY",
    size: "0.01",
    tif: "IOC",
    type: "MARKET",
    instrument: "BTC-PERP",
  });

async function fresh(change: Record<string, unknown> = {}) {
  await simControl({ reset: true, skew_ms: 12_000, up_ms: [0, 2], down_ms: [0, 2], ...change });
}

describe("faults through the relay", () => {
  it("a 5xx burst: a GET is retried through it; a POST is passed through once and never re-sent", async () => {
    const e = bindings();
    await fresh({ fault: { kind: "5xx", count: 2 } });
    const get = await call(e, "/cde/rest/v2/positions");
    expect(get.status).toBe(200);
    expect(get.headers.get("x-skewguard-attempts")).toBe("4"); // one time-retry (cold clock), then two 503s
    await fresh({ fault: { kind: "5xx_after", count: 1 } });
    await call(e, "/cde/rest/v2/positions"); // warm the clock so the POST's only attempt is the faulted one
    await simControl({ fault: { kind: "5xx_after", count: 1 } });
    const before = (await simControl()).effects.orders_placed;
    const post = await call(e, "/intx/api/v1/orders", {
      method: "POST",
      body: ORDER("burst-1".padEnd(20, "-")),
      headers: { "content-type": "application/json" },
    });
    expect(post.status).toBe(500);
    expect((await simControl()).effects.orders_placed - before).toBe(1);
  });

  it("a dropped connection: 502 for a POST, with at most one order placed", async () => {
    const e = bindings();
    await fresh();
    await call(e, "/intx/api/v1/portfolios");
    await simControl({ fault: { kind: "drop_after", count: 1 } });
    const r = await call(e, "/intx/api/v1/orders", {
      method: "POST",
      body: ORDER("drop-1".padEnd(20, "-")),
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(502);
    expect(await r.json()).toEqual({ error: { code: "venue_unreachable", message: "intx could not be reached" } });
    expect((await simControl()).effects.orders_placed).toBe(1);
  });

  it("a dropped connection on a GET is retried and succeeds", async () => {
    const e = bindings();
    await fresh();
    await call(e, "/intx/api/v1/portfolios");
    await simControl({ fault: { kind: "drop", count: 1 } });
    const r = await call(e, "/intx/api/v1/portfolios");
    expect(r.status).toBe(200);
    expect(r.headers.get("x-skewguard-attempts")).toBe("2");
  });

  it("a clock step mid-stream costs exactly one re-signed retry, then none", async () => {
    const e = bindings();
    await fresh();
    for (let i = 0; i < 5; i++) expect((await call(e, "/cde/rest/v2/positions")).status).toBe(200);
    await simControl({ skew_ms: -47_000 });
    const stepped = await call(e, "/cde/rest/v2/positions");
    expect(stepped.status).toBe(200);
    expect(stepped.headers.get("x-skewguard-attempts")).toBe("2");
    for (let i = 0; i < 5; i++) {
      const r = await call(e, "/cde/rest/v2/positions");
      expect(r.headers.get("x-skewguard-attempts")).toBe("1");
    }
    expect(Math.abs(Number(stepped.headers.get("x-skewguard-offset-ms")) + 47_000)).toBeLessThan(1_500);
  });

  it("a 429 with Retry-After: a GET waits and retries within budget", async () => {
    const e = bindings();
    await fresh();
    // The clock is learned, and the key has one request in the simulator's last second: with a limit of one a
    // second, the next request, milliseconds later, is refused with 429 and Retry-After: 1.
    expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
    await simControl({ intx_rate_limit: 1 });
    const r = await call(e, "/intx/api/v1/portfolios");
    expect(r.status).toBe(200);
    expect(Number(r.headers.get("x-skewguard-attempts"))).toBeGreaterThanOrEqual(2);
    expect((await simControl()).effects.rejected.rate_limit ?? 0).toBeGreaterThanOrEqual(1);
  });
});

describe("faults under durable delivery", () => {
  async function consume(e: Env, msg: DeliveryMessage, attempts: number) {
    const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
      { id: `q-${msg.id}-${attempts}`, timestamp: new Date(msg.receivedAt), attempts, body: msg },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, e, ctx);
    return getQueueResult(batch, ctx);
  }

  it("a duplicate webhook during an outage is one delivery, delivered once when the venue is back", async () => {
    const e = bindings();
    await fresh({ fault: { kind: "5xx", count: 3 } });
    const send = () =>
      call(e, "/hooks/kill", {
        method: "POST",
        body: "{}",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${HOOK_TOKEN}`,
          "idempotency-key": "k-1",
        },
      });
    const first = (await (await send()).json()) as { delivery_id: string };
    const second = (await (await send()).json()) as { delivery_id: string };
    expect(second.delivery_id).toBe(first.delivery_id);
    const msg: DeliveryMessage = {
      id: first.delivery_id,
      route: "kill",
      venue: "cde",
      method: "POST",
      path: "/rest/kill-switch",
      body: '{"only_cancel_no_trading_lock":false,"firm_uuid":"3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01"}',
      receivedAt: Date.now(),
      maxAgeSeconds: 60,
      retrySafe: true,
    };
    let attempt = 1;
    for (; attempt <= 8; attempt++) {
      const result = await consume(e, msg, attempt);
      if (result.explicitAcks.length > 0) break;
      expect(result.retryMessages).toHaveLength(1);
    }
    const row = await env.DB.prepare("SELECT state FROM deliveries WHERE id = ?1").bind(first.delivery_id).first();
    expect(row).toEqual({ state: "delivered" });
    expect((await simControl()).effects.kill_switches).toBe(1);
  });

  it("an order webhook replayed after a lost response places one order: the venue refuses the duplicate id", async () => {
    const e = bindings();
    await fresh();
    const body = JSON.stringify({ side: "buy", size: "0.5" });
    const send = (key: string) =>
      call(e, "/hooks/order", {
        method: "POST",
        body,
        headers: { "content-type": "application/json", authorization: `Bearer ${HOOK_TOKEN}`, "idempotency-key": key },
      });
    expect((await send("o-1")).status).toBe(200);
    expect((await send("o-1")).headers.get("x-skewguard-replayed")).toBe("true");
    expect((await simControl()).effects.orders_placed).toBe(1);
  });

  it("a slow venue past the route's timeout: 504, the order processed once, and a replay is not re-sent", async () => {
    const e = bindings();
    await fresh();
    await call(e, "/intx/api/v1/portfolios");
    await simControl({ fault: { kind: "slow", count: 1, slow_ms: 1_500 } });
    const send = () =>
      call(e, "/hooks/order", {
        method: "POST",
        body: JSON.stringify({ side: "sell", size: "1" }),
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${HOOK_TOKEN}`,
          "idempotency-key": "slow-1",
        },
      });
    const r = await send();
    expect(r.status).toBe(504);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("venue_timeout");
    const again = await send();
    expect(again.status).toBe(504);
    expect(again.headers.get("x-skewguard-replayed")).toBe("true");
    await new Promise((resolve) => setTimeout(resolve, 1_600)); // let the slow request finish at the venue
    expect((await simControl()).effects.orders_placed).toBe(1);
  });
});
