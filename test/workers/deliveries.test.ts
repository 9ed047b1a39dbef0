// Durable webhook delivery: a `delivery = "queue"` route answers 202 and records the delivery in D1; the queue
// consumer signs at send time, retries what is safe to retry, and dead-letters the rest with a reason. The
// consumer is driven with real message batches (createMessageBatch), the venue is a fetch spy.

import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type DeliveryMessage, retryDelaySeconds } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue, workerEnv } from "../support/env.ts";
import { referenceSignature, SECRET_B64 } from "../support/fake-venue.ts";

const TOKEN = "deliveries-reader-token-0123";
const HOOK_TOKEN = "queue-hook-token-0123456789";
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
];
const deliveries = recordingQueue<DeliveryMessage>();
/** A token allowed GET /health only. */
const HEALTH_READER = JSON.stringify([{ name: "health", token: "health-reader-0123456789", allow: ["GET /health"] }]);
const bindings = workerEnv({
  DELIVERIES: deliveries.queue,
  CDE_BASE_URL: "https://cde.venue.test",
  CDE_API_KEY: "cde-key",
  CDE_API_SECRET: SECRET_B64,
  CDE_API_PASSPHRASE: "cde-pass",
  INTX_BASE_URL: "https://intx.venue.test",
  INTX_API_KEY: "intx-key",
  INTX_API_SECRET: SECRET_B64,
  INTX_API_PASSPHRASE: "intx-pass",
  INTX_RATE_LIMIT_PER_SECOND: "off",
  HOOKS: JSON.stringify(HOOKS),
  HOOK_TOKEN,
  RELAY_TOKENS: JSON.stringify([{ name: "ops", token: TOKEN, allow: ["GET /deliveries/*"] }]),
});

/** A client_order_id in one of INTX's forms (a lowercase UUID). */
const CID = "5d0c3a8e-1f2b-4c6d-8e9f-0a1b2c3d4e5f";

let sent: { method: string; path: string; body: string; signed: boolean }[] = [];
function venue(respond: (request: Request) => Response) {
  sent = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const body = request.body ? await request.text() : "";
    const path = new URL(request.url).pathname;
    const ts = request.headers.get("cb-access-timestamp") ?? "";
    const signed =
      request.headers.get("cb-access-sign") === referenceSignature(SECRET_B64, ts, request.method, path, body);
    sent.push({ method: request.method, path, body, signed });
    const r = respond(request);
    const headers = new Headers(r.headers);
    headers.set("date", new Date().toUTCString());
    return new Response(r.body, { status: r.status, headers });
  });
}
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** Stops `Date` at its current reading (timers stay real), so an age worked out later in the test is exact. */
function stopTheClock(): number {
  const now = Date.now();
  vi.useFakeTimers({ toFake: ["Date"], now });
  return now;
}

let n = 0;
function message(overrides: Partial<DeliveryMessage> = {}): DeliveryMessage {
  n++;
  return {
    id: `sg-${n.toString(16).padStart(29, "0")}`,
    route: "kill",
    venue: "cde",
    method: "POST",
    path: "/rest/kill-switch",
    body: '{"only_cancel_no_trading_lock":false,"firm_uuid":"3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01"}',
    receivedAt: Date.now(),
    maxAgeSeconds: 60,
    retrySafe: true,
    ...overrides,
  };
}

async function consume(msg: DeliveryMessage, attempts = 1) {
  const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
    { id: `q-${msg.id}`, timestamp: new Date(msg.receivedAt), attempts, body: msg },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, bindings, ctx);
  return getQueueResult(batch, ctx);
}

async function row(id: string) {
  return env.DB.prepare("SELECT state, attempts, status, reason FROM deliveries WHERE id = ?1").bind(id).first();
}
async function deadLetter(id: string) {
  return env.DB.prepare("SELECT reason, attempts FROM dead_letters WHERE delivery_id = ?1").bind(id).first();
}

async function call(path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://relay.test${path}`, init), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

describe("durable delivery: the consumer", () => {
  it("delivers, signed at send time, and records it", async () => {
    venue(() => Response.json({ ok: true }));
    const msg = message();
    const result = await consume(msg);
    expect(result.explicitAcks).toEqual([`q-${msg.id}`]);
    expect(sent).toEqual([
      {
        method: "POST",
        path: "/rest/kill-switch",
        body: '{"only_cancel_no_trading_lock":false,"firm_uuid":"3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01"}',
        signed: true,
      },
    ]);
    expect(await row(msg.id)).toEqual({ state: "delivered", attempts: 1, status: 200, reason: null });
  });

  it("a message older than its route's max age goes to the dead letters unsent", async () => {
    venue(() => Response.json({ ok: true }));
    const msg = message({ receivedAt: stopTheClock() - 61_000 });
    const result = await consume(msg);
    expect(result.explicitAcks).toEqual([`q-${msg.id}`]);
    expect(sent).toHaveLength(0);
    expect(await row(msg.id)).toMatchObject({ state: "dead" });
    expect(await deadLetter(msg.id)).toEqual({ reason: "stale: 61 s old, over max_age_seconds 60", attempts: 1 });
  });

  it("a 5xx on a state-setting POST is retried with a delay; after the last attempt it is dead-lettered", async () => {
    venue(() => Response.json({ message: "busy" }, { status: 503 }));
    const msg = message();
    const first = await consume(msg, 1);
    expect(first.retryMessages).toEqual([{ msgId: `q-${msg.id}` }]);
    expect(await row(msg.id)).toMatchObject({ state: "queued", attempts: 1, status: 503 });
    const last = await consume(msg, 8);
    expect(last.explicitAcks).toEqual([`q-${msg.id}`]);
    expect(await deadLetter(msg.id)).toEqual({ reason: "gave up after 8 attempts: venue error 503", attempts: 8 });
  });

  it("a 5xx on an order without a client_order_id is not re-sent: the venue may have processed it", async () => {
    venue(() => Response.json({ message: "oops" }, { status: 500 }));
    const msg = message({ venue: "intx", path: "/api/v1/orders", body: '{"side":"BUY"}', retrySafe: false });
    const result = await consume(msg);
    expect(result.explicitAcks).toEqual([`q-${msg.id}`]);
    expect(sent).toHaveLength(1);
    expect(await deadLetter(msg.id)).toEqual({
      reason: "venue error 500; the venue may have processed it, so it is not re-sent",
      attempts: 1,
    });
  });

  it("a duplicate client_order_id refusal proves an earlier attempt landed: delivered, not dead", async () => {
    venue((request) =>
      request.method === "GET"
        ? Response.json({ pagination: {}, results: [] })
        : Response.json(
            { title: "io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID)", status: 400 },
            { status: 400 },
          ),
    );
    const msg = message({ venue: "intx", path: "/api/v1/orders", body: `{"client_order_id":"${CID}"}` });
    await consume(msg, 2);
    expect(await row(msg.id)).toMatchObject({ state: "delivered", attempts: 2, status: 400 });
    expect(await deadLetter(msg.id)).toBeNull();
  });

  // Exactly once without trusting the venue's duplicate rule (issue 23, item 6): a re-send first asks the venue.
  const order = (extra: Partial<DeliveryMessage> = {}) =>
    message({
      venue: "intx",
      path: "/api/v1/orders",
      body: `{"client_order_id":"${CID}","portfolio":"pf-1"}`,
      ...extra,
    });
  const lookups = [
    { method: "GET", path: "/api/v1/orders", body: "", signed: true },
    { method: "GET", path: "/api/v1/portfolios/fills", body: "", signed: true },
  ];

  it("a re-send that finds the order among the venue's fills is delivered, and not sent again", async () => {
    const queries: string[] = [];
    venue((request) => {
      const url = new URL(request.url);
      queries.push(url.search);
      const results = url.pathname.endsWith("/fills") ? [{ fill_id: "f-1", client_order_id: CID }] : [];
      return Response.json({ pagination: {}, results });
    });
    const msg = order();
    await consume(msg, 2);
    expect(sent).toEqual(lookups);
    expect(queries).toEqual([`?client_order_id=${CID}&portfolio=pf-1`, `?client_order_id=${CID}&portfolios=pf-1`]);
    expect(await row(msg.id)).toMatchObject({ state: "delivered", attempts: 2, status: 200, reason: null });
  });

  it("a re-send that finds no trace of the order sends it; a first attempt never asks", async () => {
    venue((request) =>
      request.method === "GET" ? Response.json({ pagination: {}, results: [] }) : Response.json({ order_id: "o-1" }),
    );
    const first = order();
    await consume(first, 1);
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual(["POST /api/v1/orders"]);
    const again = order();
    await consume(again, 3);
    expect(sent.map((s) => `${s.method} ${s.path}`)).toEqual([
      "POST /api/v1/orders", // the first message's only request
      "GET /api/v1/orders",
      "GET /api/v1/portfolios/fills",
      "POST /api/v1/orders",
    ]);
    expect(await row(again.id)).toMatchObject({ state: "delivered", attempts: 3, status: 200 });
  });

  it("a re-driven order is looked up before it is sent, even on its first attempt after the re-drive", async () => {
    venue(() => Response.json({ pagination: {}, results: [{ order_id: "o-1", client_order_id: CID }] }));
    const msg = order({ redrivenAt: Date.now() });
    await consume(msg, 1);
    expect(sent).toEqual([lookups[0]]);
    expect(await row(msg.id)).toMatchObject({ state: "delivered", attempts: 1, status: 200 });
  });

  it("when the venue cannot tell, the order is dead-lettered as outcome unknown, never re-sent", async () => {
    venue(() => Response.json({ message: "busy" }, { status: 503 }));
    const msg = order();
    const result = await consume(msg, 2);
    expect(result.explicitAcks).toEqual([`q-${msg.id}`]);
    expect(sent.every((s) => s.method === "GET")).toBe(true);
    expect(await deadLetter(msg.id)).toEqual({
      reason: `outcome unknown: looking up client_order_id ${CID}: answered 503; not re-sent, so it cannot act twice`,
      attempts: 2,
    });
  });

  it("an order the venue answers 200 but REJECTED is dead-lettered with the venue's reason", async () => {
    venue(() => Response.json({ order_id: "o-2", event_type: "REJECTED", reject_reason: "POST_ONLY_WOULD_CROSS" }));
    const msg = order();
    await consume(msg, 1);
    expect(await row(msg.id)).toMatchObject({ state: "dead", status: 200 });
    expect(await deadLetter(msg.id)).toEqual({
      reason: "venue rejected the order: POST_ONLY_WOULD_CROSS",
      attempts: 1,
    });
  });

  it("an unexpected error is an unknown outcome: retried where repeating is safe, else dead-lettered unsent again", async () => {
    venue(() => Response.json({ ok: true }));
    // No clock store binding: the client throws before it sends (the consumer cannot tell it did not).
    const broken = workerEnv({ ...bindings, CLOCK_STATE: undefined });
    const run = async (msg: DeliveryMessage) => {
      const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
        { id: `q-${msg.id}`, timestamp: new Date(msg.receivedAt), attempts: 1, body: msg },
      ]);
      const ctx = createExecutionContext();
      await worker.queue(batch, broken, ctx);
      return getQueueResult(batch, ctx);
    };
    const safe = message();
    expect((await run(safe)).retryMessages).toEqual([{ msgId: `q-${safe.id}` }]);
    const once = message({ venue: "intx", path: "/api/v1/orders", body: '{"side":"BUY"}', retrySafe: false });
    expect((await run(once)).explicitAcks).toEqual([`q-${once.id}`]);
    expect(await deadLetter(once.id)).toEqual({
      reason: "internal error (TypeError); the venue may have processed it, so it is not re-sent",
      attempts: 1,
    });
    expect(sent).toEqual([]);
  });

  it("a plain venue refusal is dead-lettered with the venue's message", async () => {
    venue(() => Response.json({ message: "Invalid firm" }, { status: 400 }));
    const msg = message();
    await consume(msg);
    expect(await deadLetter(msg.id)).toEqual({ reason: "venue refused: 400 Invalid firm", attempts: 1 });
  });
});

describe("durable delivery: backoff", () => {
  it("doubles from 2 s with full jitter, at least 1 s, capped at 60 s", () => {
    expect([1, 2, 3, 5, 6, 10].map((a) => retryDelaySeconds(a, () => 0.999))).toEqual([2, 4, 8, 32, 60, 60]);
    expect([1, 6].map((a) => retryDelaySeconds(a, () => 0))).toEqual([1, 1]);
    expect(retryDelaySeconds(4, () => 0.5)).toBe(8);
  });
});

describe("durable delivery: through the webhook route", () => {
  const kill = (key: string) =>
    call("/hooks/kill", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json", authorization: `Bearer ${HOOK_TOKEN}`, "idempotency-key": key },
    });

  // Issue 24, item 9: a route whose account cannot sign was answered 202 queued, and then died.
  it("a route whose account cannot sign answers 503 at once, queues nothing, and /health names it", async () => {
    venue(() => Response.json({ ok: true }));
    const broken = workerEnv({ ...bindings, CDE_API_SECRET: "not base64!", RELAY_TOKENS: HEALTH_READER });
    const before = deliveries.sent.length;
    const ctx = createExecutionContext();
    const r = await worker.fetch(
      new Request("https://relay.test/hooks/kill", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json", authorization: `Bearer ${HOOK_TOKEN}`, "idempotency-key": "k" },
      }),
      broken,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({
      error: { code: "hook_not_configured", message: "this route's account cannot sign now; nothing was queued" },
    });
    expect(deliveries.sent.length).toBe(before);
    expect(sent).toEqual([]);
    const health = await worker.fetch(
      new Request("https://relay.test/health", { headers: { authorization: "Bearer health-reader-0123456789" } }),
      broken,
      createExecutionContext(),
    );
    const body = (await health.json()) as { hooks: { routes: string[]; problems: unknown[] } };
    expect(body.hooks).toEqual({
      routes: [],
      problems: [
        {
          route: "kill",
          message: "account default on cde cannot sign: its bindings are wrong (see /health); the route answers 503",
        },
      ],
    });
  });

  it("answers 202 with a delivery id at once; a duplicate during an outage is the same delivery", async () => {
    venue(() => Response.json({ message: "down" }, { status: 503 }));
    const first = await kill("outage-1");
    expect(first.status).toBe(202);
    const body = (await first.json()) as { delivery_id: string; status_url: string; state: string };
    expect(body.state).toBe("queued");
    expect(body.status_url).toBe(`/deliveries/${body.delivery_id}`);
    const again = await kill("outage-1");
    expect(again.status).toBe(202);
    expect(again.headers.get("x-skewguard-replayed")).toBe("true");
    expect(((await again.json()) as { delivery_id: string }).delivery_id).toBe(body.delivery_id);
    expect(sent).toHaveLength(0); // nothing is sent from the request path
    expect(await row(body.delivery_id)).toMatchObject({ state: "queued" });
  });

  it("GET /deliveries/<id> needs a token, and shows the state and reason", async () => {
    venue(() => Response.json({ ok: true }));
    const accepted = (await (await kill("status-1")).json()) as { delivery_id: string };
    const msg = message({ id: accepted.delivery_id, receivedAt: stopTheClock() - 120_000 });
    await consume(msg);
    expect((await call(`/deliveries/${accepted.delivery_id}`)).status).toBe(401);
    const r = await call(`/deliveries/${accepted.delivery_id}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({
      id: accepted.delivery_id,
      route: "kill",
      state: "dead",
      reason: "stale: 120 s old, over max_age_seconds 60",
    });
    // One time format across the API: ISO 8601 UTC with milliseconds.
    const again = (await (
      await call(`/deliveries/${accepted.delivery_id}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as Record<string, string>;
    for (const field of ["received_at", "updated_at", "dead_at"]) {
      expect(again[field]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(Math.abs(Date.parse(again[field] as string) - Date.now())).toBeLessThan(60_000);
    }
    const unknown = await call(`/deliveries/sg-${"f".repeat(29)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(unknown.status).toBe(404);
  });
});
