// Nothing dropped, nothing doubled (issue 24, items 1, 2, 4 and 7), against the strict simulator: a repeated
// delivery id after its dedupe window is a new delivery; a refusal that sent nothing is not kept for replay; a
// request that must not be sent twice is not, even when D1 fails after it was sent; caller text in a venue refusal
// never passes for a timestamp refusal.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type DeliveryMessage, retrySafe } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { cde } from "../../src/venues/cde.ts";
import { intx } from "../../src/venues/intx.ts";
import { recordingQueue } from "../support/env.ts";
import { simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const TOKEN = "no-loss-token-0123456789abcdef";
const HOOK = "no-loss-hook-secret-0123456789";
const FIRM = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";

const route = (name: string, request: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  verify: "bearer",
  secret_binding: "HOOK_SECRET",
  request,
  ...extra,
});
const KILL = {
  venue: "cde",
  method: "POST",
  path: "/rest/kill-switch",
  body: { only_cancel_no_trading_lock: false, firm_uuid: FIRM },
};
const ORDER = {
  venue: "intx",
  method: "POST",
  path: "/api/v1/orders",
  body: {
    client_order_id: "{{client_order_id}}",
    side: "BUY",
    size: "0.01",
    type: "MARKET",
    tif: "IOC",
    instrument: "BTC-PERP",
  },
};
const HOOKS = [
  route("kill", KILL, { delivery: "queue", dedupe_seconds: 1 }),
  route("order-now", ORDER),
  // A POST with no client_order_id that sets no state: it must never be sent twice.
  route(
    "transfer",
    { venue: "intx", method: "POST", path: "/api/v1/transfers/withdraw", body: { amount: "1" } },
    { delivery: "queue" },
  ),
];

let n = 0;
function bindings(extra: Record<string, unknown> = {}) {
  const queue = recordingQueue<DeliveryMessage>();
  const env = simEnv(`no-loss-${n++}-${Date.now()}.sim.test`, {
    INTX_RATE_LIMIT_PER_SECOND: "off",
    RELAY_TOKENS: JSON.stringify([
      { name: "bot", token: TOKEN, allow: ["* /intx/*", "* /cde/*", "GET /deliveries/*"] },
    ]),
    HOOKS: JSON.stringify(HOOKS),
    HOOK_SECRET: HOOK,
    DELIVERIES: queue.queue,
    ...extra,
  });
  return { env, queued: queue.sent };
}

const fire = (env: Env, name: string, key: string) =>
  fetchWorker(env, `/hooks/${name}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${HOOK}`, "idempotency-key": key },
    body: "{}",
  });

async function consume(env: Env, message: DeliveryMessage, attempts: number) {
  const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
    { id: `q-${message.id}-${attempts}-${n++}`, timestamp: new Date(), attempts, body: message },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

const view = async (env: Env, id: string) =>
  (await (await fetchWorker(env, `/deliveries/${id}`, {}, TOKEN)).json()) as {
    id: string;
    state: string;
    reason: string | null;
    history: { event: string; reason: string | null }[];
  };

describe("nothing dropped, nothing doubled", () => {
  it("1. the same id after its dedupe window is a new delivery: its own id and status URL, delivered", async () => {
    const { env, queued } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    const first = await fire(env, "kill", "signal:kill");
    expect(first.status).toBe(202);
    const a = (await first.json()) as { delivery_id: string; status_url: string };
    await consume(env, queued[0] as DeliveryMessage, 1);
    expect((await view(env, a.delivery_id)).state).toBe("delivered");
    // Within the window: the first answer again, nothing queued.
    const replay = await fire(env, "kill", "signal:kill");
    expect([replay.status, replay.headers.get("x-skewguard-replayed")]).toEqual([202, "true"]);
    expect(queued).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // dedupe_seconds 1
    const second = await fire(env, "kill", "signal:kill");
    expect([second.status, second.headers.get("x-skewguard-replayed")]).toEqual([202, "false"]);
    const b = (await second.json()) as { delivery_id: string; status_url: string };
    expect(b.delivery_id).not.toBe(a.delivery_id);
    expect(b.status_url).toBe(`/deliveries/${b.delivery_id}`);
    expect(queued).toHaveLength(2);
    await consume(env, queued[1] as DeliveryMessage, 1);
    expect((await view(env, b.delivery_id)).state).toBe("delivered");
    expect((await view(env, a.delivery_id)).state).toBe("delivered");
    expect((await simControl()).effects.kill_switches).toBe(2);
  });

  it("2. a redirect before the venue: the 502 is not kept, and the sender's retry is delivered", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    expect((await fetchWorker(env, "/intx/api/v1/portfolios", {}, TOKEN)).status).toBe(200); // warms the clock
    await simControl({ fault: { kind: "redirect", count: 1 } });
    const refused = await fire(env, "order-now", "alert-7");
    expect(refused.status).toBe(502);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("venue_redirect");
    const retried = await fire(env, "order-now", "alert-7");
    expect([retried.status, retried.headers.get("x-skewguard-replayed")]).toEqual([200, "false"]);
    expect((await simControl()).accounts["intx:default"]?.orders_placed).toBe(1);
    // Now the answer came from the venue: it is kept.
    const replayed = await fire(env, "order-now", "alert-7");
    expect([replayed.status, replayed.headers.get("x-skewguard-replayed")]).toEqual([200, "true"]);
  });

  it("4. a POST that must not be sent twice is not, when D1 fails after it was sent", async () => {
    const { env, queued } = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    expect((await fire(env, "transfer", "t-1")).status).toBe(202);
    const message = queued[0] as DeliveryMessage;
    expect(message.retrySafe).toBe(false);
    // D1 answers the reads and the pre-send mark, then fails to record the outcome (its batch).
    const failingBatch = new Proxy(env.DB, {
      get: (target, key) =>
        key === "batch"
          ? () => Promise.reject(new Error("D1 is down"))
          : (Reflect.get(target, key) as (...args: unknown[]) => unknown).bind(target),
    });
    const first = await consume({ ...env, DB: failingBatch } as Env, message, 1);
    expect(first.retryMessages).toHaveLength(1);
    const sentOnce = (await simControl()).effects.requests;
    const second = await consume(env, message, 2);
    expect(second.explicitAcks).toHaveLength(1);
    expect((await simControl()).effects.requests).toBe(sentOnce); // not sent again
    const after = await view(env, message.id);
    expect(after.state).toBe("dead");
    expect(after.reason).toBe(
      "outcome unknown: attempt 1 was sent and its outcome never recorded; not re-sent, so it cannot act twice",
    );
  });

  it("4. whether a body carries a client_order_id is read from its JSON, never its text", () => {
    const mapped = (body: string) => ({
      venue: "intx" as const,
      account: "default",
      method: "POST",
      path: "/api/v1/orders",
      body,
    });
    expect(retrySafe(intx, mapped('{"client_order_id":"5d0c3a8e-1f2b-4c6d-8e9f-0a1b2c3d4e5f"}'))).toBe(true);
    expect(retrySafe(intx, mapped('{"note":"\\"client_order_id\\":\\"x\\"","size":"1"}'))).toBe(false);
    expect(retrySafe(intx, mapped('{"client_order_id":""}'))).toBe(false);
    expect(retrySafe(intx, mapped("not json"))).toBe(false);
    expect(retrySafe(cde, { ...mapped(""), venue: "cde", path: "/rest/kill-switch" })).toBe(true);
  });

  it("7. a duplicate client_order_id that says 'timestamp' is a duplicate, not a clock problem: no re-sign, no alert", async () => {
    const { env } = bindings();
    await simControl({ reset: true, skew_ms: 0, duplicate_scope: "ever" });
    const order = JSON.stringify({
      client_order_id: "timestamp-dup-0001",
      side: "BUY",
      size: "0.01",
      type: "MARKET",
      tif: "IOC",
      instrument: "BTC-PERP",
    });
    const post = () =>
      fetchWorker(
        env,
        "/intx/api/v1/orders",
        { method: "POST", headers: { "content-type": "application/json" }, body: order },
        TOKEN,
      );
    expect((await post()).status).toBe(200);
    const again = await post();
    expect(again.status).toBe(400);
    expect(again.headers.get("x-skewguard-attempts")).toBe("1");
    expect(await again.text()).toContain("DUPLICATE_CLIENT_ORDER_ID timestamp-dup-0001");
    expect((await simControl()).effects.rejected.timestamp_window ?? 0).toBe(0);
    const alerts = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM alerts WHERE type = 'clock.rejected_twice' AND subject LIKE 'intx/%'",
    ).first<{ n: number }>();
    expect(alerts?.n).toBe(0);
  });
});
