// Queue routing (src/index.ts, core/queues.ts): each batch goes to its queue's consumer by the queue's name. A
// delivery on a deliveries queue is sent (here: dead, since the base env configures no venue); an alert is posted
// (here: failed, since no sink is configured); a message no consumer takes is retried, never acked, logged and
// raised as `config.problem`. Batches are driven by hand (createMessageBatch) with the base test env.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AlertMessage } from "../../src/adapters/alerts.ts";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { scanConsole } from "../support/leaks.ts";

let n = 0;

function delivery(): DeliveryMessage {
  return {
    id: `sg-route-${++n}-${crypto.randomUUID()}`,
    route: "tv",
    venue: "intx",
    method: "POST",
    path: "/api/v1/orders",
    body: '{"client_order_id":"route-1"}',
    receivedAt: Date.now(),
    maxAgeSeconds: 60,
    retrySafe: true,
  };
}

function alert(): AlertMessage {
  const raised = { id: crypto.randomUUID(), at: new Date().toISOString(), suppressed: 0 };
  const event = { type: "job.failing", severity: "warning", subject: "j", text: "t", ids: {} } as const;
  return { kind: "alert", sink: "gone", alert: { ...raised, ...event } };
}

/** Runs the queue handler on one batch of `queue`; resolves to what it acked and retried, and its log lines. */
async function route(queue: string, bodies: (DeliveryMessage | AlertMessage)[]) {
  const lines: string[] = [];
  for (const m of ["log", "warn", "error"] as const) {
    vi.spyOn(console, m).mockImplementation((...a: unknown[]) => {
      lines.push(a.map(String).join(" "));
      scanConsole(a);
    });
  }
  const messages = bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body }));
  const batch = createMessageBatch<DeliveryMessage | AlertMessage>(queue, messages);
  // This runtime's queue result leaves a retry's delay out: each message's own retry is watched for it.
  const delays = batch.messages.map((m) => vi.spyOn(m, "retry"));
  const ctx = createExecutionContext();
  await worker.queue(batch, workerEnv({}), ctx);
  const result = await getQueueResult(batch, ctx);
  await waitOnExecutionContext(ctx);
  const retried = result.retryMessages.map((r) => {
    const i = batch.messages.findIndex((m) => m.id === r.msgId);
    return [r.msgId, delays[i]?.mock.calls[0]?.[0]?.delaySeconds];
  });
  return { acked: [...result.explicitAcks].sort(), retried, lines };
}

const state = (id: string) =>
  env.DB.prepare("SELECT state, reason FROM deliveries WHERE id = ?1").bind(id).first<{ state: string }>();

const undelivered = (lines: string[]) => lines.filter((l) => l.includes('"event":"alert_undelivered"'));

afterEach(() => vi.restoreAllMocks());

describe("queue routing", () => {
  it("a deliveries queue, of any environment, sends its deliveries", async () => {
    for (const queue of ["skewguard-deliveries", "skewguard-intx-deliveries", "skewguard-cde-deliveries"]) {
      const message = delivery();
      const { acked, retried } = await route(queue, [message]);
      expect([acked, retried]).toEqual([["m0"], []]);
      expect(await state(message.id)).toEqual({ state: "dead", reason: "intx is not configured" });
    }
  });

  it("an alerts queue, of any environment, posts its alerts", async () => {
    for (const queue of ["skewguard-alerts", "skewguard-intx-alerts", "skewguard-cde-alerts"]) {
      const { acked, retried, lines } = await route(queue, [alert(), alert()]);
      expect([acked, retried]).toEqual([["m0", "m1"], []]);
      expect(undelivered(lines)).toHaveLength(2);
    }
  });

  it("an alert left on a deliveries queue (queued before ALERTS_QUEUE) is still posted, next to the deliveries", async () => {
    const message = delivery();
    const { acked, retried, lines } = await route("skewguard-deliveries", [alert(), message]);
    expect([acked, retried]).toEqual([["m0", "m1"], []]);
    expect(undelivered(lines)).toHaveLength(1);
    expect((await state(message.id))?.state).toBe("dead");
  });

  it("a delivery on an alerts queue is not sent: retried in a minute, logged, raised", async () => {
    const message = delivery();
    const { acked, retried, lines } = await route("skewguard-alerts", [message, alert()]);
    expect([acked, retried]).toEqual([["m1"], [["m0", 60]]]);
    expect(await state(message.id)).toBeNull();
    expect(
      lines.filter((l) => l.includes('"event":"queue_unroutable","queue":"skewguard-alerts","messages":1')),
    ).toHaveLength(1);
  });

  it("a queue of any other name: nothing consumed or acked, every message retried in a minute, logged, raised", async () => {
    const message = delivery();
    const { acked, retried, lines } = await route("skewguard-jobs", [message, alert()]);
    expect([acked, retried]).toEqual([
      [],
      [
        ["m0", 60],
        ["m1", 60],
      ],
    ]);
    expect(await state(message.id)).toBeNull();
    expect(undelivered(lines)).toEqual([]);
    expect(
      lines.filter((l) => l.includes('"event":"queue_unroutable","queue":"skewguard-jobs","messages":2')),
    ).toHaveLength(1);
    const raised = await env.DB.prepare("SELECT text FROM alerts WHERE type = 'config.problem' AND subject = ?1")
      .bind("queues.consumers:skewguard-jobs")
      .all<{ text: string }>();
    expect(raised.results.map((r) => r.text)).toEqual([
      "Configuration problem in queues.consumers (skewguard-jobs): no consumer takes these messages: a queue's name must end in -deliveries or -alerts",
    ]);
  });
});
