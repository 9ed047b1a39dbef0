// Re-drive: a dead-lettered delivery can be sent again, once, by a token allowed to; it keeps its client_order_id
// and body, gets a fresh max age, and its history shows both attempts. `GET /deliveries?state=dead` lists the dead.
// The queue is a recording stand-in and each attempt is driven by hand (createMessageBatch): this runtime's own queue
// consumer would run with the base test env, where CDE is not configured.
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { redrive } from "../../src/adapters/deliveries.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import { type DeliveryMessage, STUCK_REDRIVE_MS } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { simControl, simEnv } from "../support/sim.ts";
import { fetchWorker, runCron } from "../support/worker.ts";

const OPS = "redrive-ops-token-0123456789";
const READER = "redrive-reader-token-012345";
let n = 0;
const queued: DeliveryMessage[] = [];
const e = simEnv("redrive.sim.test", {
  DELIVERIES: {
    send: async (body: DeliveryMessage) => {
      queued.push(body);
    },
  },
  RELAY_TOKENS: JSON.stringify([
    { name: "ops", token: OPS, allow: ["GET /deliveries*", "POST /deliveries/*/retry"] },
    { name: "reader", token: READER, allow: ["GET /deliveries*"] },
  ]),
});

function call(path: string, init: RequestInit = {}, token = OPS) {
  return fetchWorker(e, path, init, token);
}

async function consume(message: DeliveryMessage) {
  const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
    { id: `q-${message.id}-${Date.now()}`, timestamp: new Date(), attempts: 1, body: message },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch, e, ctx);
  return getQueueResult(batch, ctx);
}

/** Consumes everything re-drive queued. */
async function drain() {
  for (const message of queued.splice(0)) await consume(message);
}

/** A queued kill-switch that died on its first attempt: redirected by the venue, or (`stale`) too old to send. */
async function deadKillSwitch(stale = false, retrySafe = true): Promise<DeliveryMessage> {
  const message: DeliveryMessage = {
    id: `sg-${(++n).toString(16).padStart(8, "0")}${crypto.randomUUID().replaceAll("-", "").slice(0, 21)}`,
    route: "kill",
    venue: "cde",
    account: "default",
    method: "POST",
    path: "/rest/kill-switch",
    body: '{"only_cancel_no_trading_lock":true,"firm_uuid":"3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01"}',
    receivedAt: Date.now() - (stale ? 120_000 : 1_000),
    maxAgeSeconds: 60,
    retrySafe,
  };
  await simControl(stale ? { reset: true } : { reset: true, fault: { kind: "redirect", count: 1 } });
  await consume(message);
  return message;
}

type View = {
  state: string;
  reason: string | null;
  history: { event: string; by: string | null; reason: string | null }[];
};

describe("re-drive", () => {
  it("sends a dead kill-switch again exactly once, with a fresh max age; history shows both attempts", async () => {
    const message = await deadKillSwitch(true);
    const { id } = message;
    const dead = (await (await call(`/deliveries/${id}`)).json()) as View;
    expect(dead.state).toBe("dead");
    expect((await simControl()).effects.kill_switches).toBe(0);

    // 120 s old against a 60 s max age: only a fresh max age lets it go.
    const r = await call(`/deliveries/${id}/retry`, { method: "POST" });
    expect(r.status).toBe(202);
    expect(await r.json()).toEqual({ delivery_id: id, state: "queued", status_url: `/deliveries/${id}` });
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({ ...message, redrivenAt: expect.any(Number) }); // same body, same client_order_id
    await drain();
    const after = (await (await call(`/deliveries/${id}`)).json()) as View;
    expect(after.state).toBe("delivered");
    expect(after.history.map((h) => [h.event, h.by])).toEqual([
      ["dead", null],
      ["redriven", "token:ops"],
      ["delivered", null],
    ]);
    expect(after.history[0]?.reason).toBe("stale: 120 s old, over max_age_seconds 60");
    const effects = (await simControl()).effects;
    expect(effects.kill_switches).toBe(1);
    // Done is done: a second re-drive is a conflict, and nothing more reaches the venue.
    expect((await call(`/deliveries/${id}/retry`, { method: "POST" })).status).toBe(409);
    expect((await simControl()).effects.kill_switches).toBe(1);
  });

  it("two re-drives at once: one wins, the other is 409", async () => {
    const { id } = await deadKillSwitch();
    const [a, b] = await Promise.all([
      call(`/deliveries/${id}/retry`, { method: "POST" }),
      call(`/deliveries/${id}/retry`, { method: "POST" }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    expect(queued).toHaveLength(1);
    // Re-driven while queued: 409 too, and the history holds one re-drive only.
    expect((await call(`/deliveries/${id}/retry`, { method: "POST" })).status).toBe(409);
    const view = (await (await call(`/deliveries/${id}`)).json()) as View;
    expect(view.history.map((h) => h.event)).toEqual(["dead", "redriven"]);
    await drain();
    expect((await simControl()).effects.kill_switches).toBe(1);
  });

  it("a message that may have reached the venue and has no client_order_id needs ?force=true", async () => {
    const { id } = await deadKillSwitch(false, false);
    const r = await call(`/deliveries/${id}/retry`, { method: "POST" });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("unsafe_to_resend");
    expect(queued).toHaveLength(0);
    const listed = (await (await call("/deliveries?state=dead&limit=1")).json()) as { deliveries: unknown[] };
    expect(listed.deliveries[0]).toMatchObject({ id, retry_safe: false });
    expect((await call(`/deliveries/${id}/retry?force=true`, { method: "POST" })).status).toBe(202);
    await drain();
    expect((await simControl()).effects.kill_switches).toBe(1);
  });

  it("is allowed per token; unknown ids are 404; a queued or delivered delivery is 409", async () => {
    const { id } = await deadKillSwitch();
    expect((await call(`/deliveries/${id}/retry`, { method: "POST" }, READER)).status).toBe(403);
    expect((await call(`/deliveries/${id}/retry`, { method: "GET" })).status).toBe(405);
    expect((await call(`/deliveries/sg-${"0".repeat(29)}/retry`, { method: "POST" })).status).toBe(404);
    expect((await call("/deliveries/not-an-id/retry", { method: "POST" })).status).toBe(404);
    expect((await call(`/deliveries/${id}`, {}, READER)).status).toBe(200);
  });

  it("a re-drive whose send never happened: left alone at first, then taken over by a re-drive or ended by cron", async () => {
    const hanging = { ...e, DELIVERIES: { send: () => new Promise<void>(() => {}) } } as unknown as Env;
    const stuck = async () => {
      const { id } = await deadKillSwitch();
      // The claim is written, then the request dies before the queue has the message: its send never settles.
      void redrive(hanging, id, "token:ops", Date.now());
      await expect.poll(async () => ((await (await call(`/deliveries/${id}`)).json()) as View).state).toBe("queued");
      return id;
    };
    /** Time passing for one delivery: its row and its whole history move `ms` into the past. */
    const age = async (id: string, ms: number) => {
      await e.DB.batch([
        e.DB.prepare("UPDATE deliveries SET updated_at = updated_at - ?2 WHERE id = ?1").bind(id, ms),
        e.DB.prepare("UPDATE delivery_history SET at = at - ?2 WHERE delivery_id = ?1").bind(id, ms),
      ]);
    };
    const trigger = () => runCron(e);

    // Younger than STUCK_REDRIVE_MS: a copy may still be on its way, so neither a re-drive nor the cron touches it.
    const taken = await stuck();
    await age(taken, STUCK_REDRIVE_MS - 60_000);
    expect((await call(`/deliveries/${taken}/retry`, { method: "POST" })).status).toBe(409);
    await trigger();
    expect(((await (await call(`/deliveries/${taken}`)).json()) as View).state).toBe("queued");
    // Past it (and past its 60 s max age plus a minute): a re-drive takes it over, once.
    await age(taken, 120_000);
    expect((await call(`/deliveries/${taken}/retry`, { method: "POST" })).status).toBe(202);
    await drain();
    const over = (await (await call(`/deliveries/${taken}`)).json()) as View;
    expect([over.state, over.history.map((h) => h.event)]).toEqual([
      "delivered",
      ["dead", "redriven", "redriven", "delivered"],
    ]);

    // Or the cron trigger ends it: dead again, saying why, with an alert, and re-drivable.
    const ended = await stuck();
    await age(ended, STUCK_REDRIVE_MS + 60_000);
    await trigger();
    const dead = (await (await call(`/deliveries/${ended}`)).json()) as View;
    expect(dead.state).toBe("dead");
    expect(dead.reason).toBe("re-drive did not reach the queue: no attempt recorded in 16 min");
    expect(dead.history.map((h) => [h.event, h.reason])).toEqual([
      ["dead", expect.stringMatching(/^venue redirect, not followed/)],
      ["redriven", null],
      ["dead", "re-drive did not reach the queue: no attempt recorded in 16 min"],
    ]);
    const { results: alerts } = await e.DB.prepare(
      "SELECT severity, text FROM alerts WHERE type = 'delivery.dead_lettered' AND subject = ?1 ORDER BY raised_at, rowid",
    )
      .bind(`delivery:${ended}`)
      .all<{ severity: string; text: string }>();
    // The first death's alert, then this one's.
    expect(alerts.map((a) => [a.severity, /was dead-lettered: (.+?)\. Re-drive/.exec(a.text)?.[1]])).toEqual([
      ["critical", "venue redirect, not followed: to redirect-target.sim"],
      ["critical", "re-drive did not reach the queue: no attempt recorded in 16 min"],
    ]);
    await trigger(); // ended once
    expect(((await (await call(`/deliveries/${ended}`)).json()) as View).history).toHaveLength(3);
    expect((await call(`/deliveries/${ended}/retry`, { method: "POST" })).status).toBe(202);
    await drain();
    expect(((await (await call(`/deliveries/${ended}`)).json()) as View).state).toBe("delivered");
    expect((await simControl()).effects.kill_switches).toBe(1); // since deadKillSwitch reset the simulator
  });

  it("a late copy of a delivery re-driven since is not sent, is written down as superseded, raises nothing; pruning keeps its dead letter", async () => {
    const original = await deadKillSwitch(true); // dead as stale
    const { id } = original;
    expect((await call(`/deliveries/${id}/retry`, { method: "POST" })).status).toBe(202);
    const deaths = async () =>
      (
        await e.DB.prepare("SELECT COUNT(*) AS n FROM alerts WHERE type = 'delivery.dead_lettered' AND subject = ?1")
          .bind(`delivery:${id}`)
          .first<{ n: number }>()
      )?.n;
    expect(await deaths()).toBe(1);
    // The first copy again (the queue delivers at least once): stale, but the re-drive's copy is the current one.
    const late = await consume(original);
    expect([late.explicitAcks.length, late.retryMessages.length]).toEqual([1, 0]);
    const queuedView = (await (await call(`/deliveries/${id}`)).json()) as View;
    expect([queuedView.state, queuedView.history.map((h) => h.event)]).toEqual([
      "queued",
      ["dead", "redriven", "superseded"],
    ]);
    expect(queuedView.history[2]?.reason).toBe("re-driven since");
    expect(await deaths()).toBe(1);
    // Retention does not take the dead letter while the re-drive is queued: it holds the message.
    const later = Date.now() + 40 * 86_400_000;
    await pruneHistory(e.DB, later, 30);
    const letter = () => e.DB.prepare("SELECT 1 AS kept FROM dead_letters WHERE delivery_id = ?1").bind(id).first();
    expect(await letter()).toEqual({ kept: 1 });
    // The alert itself went: raised today, it is 40 days old at `later`, past the 30 days kept.
    expect(await deaths()).toBe(0);
    await drain();
    await consume(original); // and once more after the delivery: it stays delivered
    const done = (await (await call(`/deliveries/${id}`)).json()) as View;
    expect([done.state, done.history.map((h) => h.event)]).toEqual([
      "delivered",
      ["dead", "redriven", "superseded", "delivered", "superseded"],
    ]);
    expect(await deaths()).toBe(0); // the late copy raised no dead-letter alert again
    expect((await simControl()).effects.kill_switches).toBe(1);
    await pruneHistory(e.DB, later, 30);
    expect(await letter()).toBeNull();
  });

  it("GET /deliveries?state=dead lists the dead letters with their reasons, newest first", async () => {
    const first = await deadKillSwitch();
    const second = await deadKillSwitch();
    const r = await call("/deliveries?state=dead&limit=2", {}, READER);
    expect(r.status).toBe(200);
    const { deliveries } = (await r.json()) as { deliveries: { id: string; state: string; reason: string }[] };
    expect(deliveries.map((d) => d.id)).toEqual([second.id, first.id]);
    for (const d of deliveries) {
      expect(d.state).toBe("dead");
      expect(d.reason).toMatch(/^venue redirect, not followed/);
      expect(d).not.toHaveProperty("response");
    }
    expect((await call("/deliveries?state=gone", {}, READER)).status).toBe(400);
    expect((await call("/deliveries?limit=0", {}, READER)).status).toBe(400);
    expect((await call("/deliveries?limit=201", {}, READER)).status).toBe(400);
  });
});
