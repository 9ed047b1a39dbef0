// Alerts: each event is raised by the real code path that causes it (driven through the simulator's faults, never
// by calling the alert function), recorded in D1, and sent through the queue to every sink that wants it, in the
// sink's format; the quiet period holds back repeats and counts them; a sink that is down never touches the request
// that raised the event.
import {
  createExecutionContext,
  createMessageBatch,
  createScheduledController,
  getQueueResult,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { beforeEach, describe, expect, it } from "vitest";
import { type AlertMessage, flushHeldAlerts } from "../../src/adapters/alerts.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue, withBrokenD1 } from "../support/env.ts";
import { DEV_ALPHA, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker, runCron } from "../support/worker.ts";

const OPS = "alerts-ops-token-0123456789";
const SW_SECRET = "whsec_YWxlcnRzLXRlc3Qtc2VjcmV0LTAxMjM0NTY3ODk=";
let n = 0;

// D1 lives as long as the file: each test starts with no alerts and no quiet periods running.
beforeEach(async () => {
  queued.length = 0;
  deliveries.sent.length = 0;
  await env.DB.batch(["alerts", "alert_sends", "alert_quiet"].map((table) => env.DB.prepare(`DELETE FROM ${table}`)));
});

/**
 * What `raise` queued. The queue is a recording stand-in: this runtime's own consumer would run with the base test
 * env, which has no sinks; the tests consume by hand, with their own env.
 */
const queued: AlertMessage[] = [];
/** What was sent to the deliveries queue: no alert ever is (a slow sink must not hold up a kill-switch's batch). */
const deliveries = recordingQueue<DeliveryMessage>();
const queue = {
  send: async (body: AlertMessage) => {
    queued.push(body);
  },
  sendBatch: async (messages: { body: AlertMessage }[]) => {
    queued.push(...messages.map((m) => m.body));
  },
};

function bindings(extra: Record<string, unknown> = {}) {
  const run = `${n++}-${Date.now()}`;
  return {
    run,
    env: simEnv(`alerts-${run}.sim.test`, {
      DELIVERIES: deliveries.queue,
      ALERTS_QUEUE: queue,
      ...DEV_ALPHA,
      ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx", guards: { max_size: { "*": "1" } } }]),
      RELAY_TOKENS: JSON.stringify([
        {
          name: "ops",
          token: OPS,
          allow: ["* /intx/*", "* /cde/*", "* /accounts/*/halt", "* /deliveries*", "GET /health"],
        },
      ]),
      ALERTS: JSON.stringify([
        { name: "chat", url: `https://sink.sim.test/_sim/alerts/${run}/chat`, format: "slack" },
        {
          name: "pager",
          url: `https://sink.sim.test/_sim/alerts/${run}/pager`,
          format: "standard-webhooks",
          secret_binding: "ALERT_SECRET",
          min_severity: "critical",
        },
        {
          name: "ops-discord",
          url: `https://sink.sim.test/_sim/alerts/${run}/discord`,
          format: "discord",
          events: ["account.halted", "account.resumed"],
        },
      ]),
      ALERT_SECRET: SW_SECRET,
      ...extra,
    }),
  };
}

function call(e: Env, path: string, init: RequestInit = {}) {
  return fetchWorker(e, path, init, OPS);
}

type AlertRow = {
  id: string;
  type: string;
  severity: string;
  subject: string;
  text: string;
  ids: string;
  suppressed: number;
};
async function raised(e: Env, type: string, subject: string): Promise<AlertRow[]> {
  const { results } = await e.DB.prepare(
    "SELECT id, type, severity, subject, text, ids, suppressed FROM alerts WHERE type = ?1 AND subject = ?2 ORDER BY raised_at",
  )
    .bind(type, subject)
    .all<AlertRow>();
  return results;
}
async function sends(e: Env, id: string) {
  const { results } = await e.DB.prepare("SELECT sink, state FROM alert_sends WHERE alert_id = ?1 ORDER BY sink")
    .bind(id)
    .all<{ sink: string; state: string }>();
  return results;
}

/** Moves every quiet period's start `ms` into the past: time passing, without waiting for it. */
async function agePeriods(e: Env, ms: number) {
  await e.DB.prepare("UPDATE alert_quiet SET sent_at = sent_at - ?1").bind(ms).run();
}

/** One cron trigger, through the Worker's scheduled handler. */
const trigger = (e: Env) => runCron(e);

/** Runs the queue consumer on one alert message, as the queue would. */
async function consumeAlert(e: Env, message: AlertMessage, attempts = 1) {
  const batch = createMessageBatch<AlertMessage>("skewguard-alerts", [
    { id: `a-${message.alert.id}-${message.sink}`, timestamp: new Date(), attempts, body: message },
  ]);
  const ctx = createExecutionContext();
  await worker.queue(batch as unknown as MessageBatch<DeliveryMessage>, e, ctx);
  return getQueueResult(batch, ctx);
}

const order = (size: string) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    client_order_id: crypto.randomUUID(),
    side: "BUY",
    size,
    tif: "GTC",
    type: "LIMIT",
    price: "10",
    instrument: "BTC-PERP",
  }),
});

describe("alert events from their real code paths", () => {
  it("order.refused: a guard refusal raises one warning, to the sinks that want warnings", async () => {
    const { env: e } = bindings();
    expect((await call(e, "/intx/alpha/api/v1/orders", order("2"))).status).toBe(422);
    const [alert, ...more] = await raised(e, "order.refused", "intx/alpha");
    expect(more).toEqual([]);
    expect(alert).toMatchObject({ severity: "warning", suppressed: 0 });
    expect(alert?.text).toBe(
      "An order from token:ops was refused by max_size: size 2 is over max_size 1 for BTC-PERP (account intx/alpha)",
    );
    expect(JSON.parse(alert?.ids ?? "")).toEqual({ rule: "max_size", by: "token:ops" });
    // chat takes everything from info up; pager only critical; ops-discord only halts.
    expect(await sends(e, alert?.id ?? "")).toEqual([{ sink: "chat", state: "queued" }]);
    // Queued on the alerts' own queue, not on the deliveries'.
    expect(queued.map((m) => [m.kind, m.sink, m.alert.id])).toEqual([["alert", "chat", alert?.id]]);
    expect(deliveries.sent).toEqual([]);
  });

  it("account.halted and account.resumed, with who did it", async () => {
    const { env: e } = bindings();
    const put = { method: "PUT", body: JSON.stringify({ reason: "drill" }) };
    expect((await call(e, "/accounts/intx/alpha/halt", put)).status).toBe(200);
    expect((await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" })).status).toBe(200);
    const [halted] = await raised(e, "account.halted", "intx/alpha");
    const [resumed] = await raised(e, "account.resumed", "intx/alpha");
    expect(halted?.text).toBe("intx/alpha was halted by token:ops: drill");
    expect(resumed?.text).toBe("intx/alpha was resumed by token:ops.");
    expect(await sends(e, halted?.id ?? "")).toEqual([
      { sink: "chat", state: "queued" },
      { sink: "ops-discord", state: "queued" },
    ]);
  });

  it("venue.auth_failed: a 401 that is not about the timestamp (a wrong passphrase)", async () => {
    const { env: e } = bindings({ INTX_ALPHA_API_PASSPHRASE: "not-the-passphrase" });
    await simControl({ reset: true });
    const r = await call(e, "/intx/alpha/api/v1/portfolios");
    expect(r.status).toBe(401);
    const [alert] = await raised(e, "venue.auth_failed", "intx/alpha");
    expect(alert?.severity).toBe("critical");
    expect(alert?.text).toMatch(/^intx refused account alpha's credentials \(401: .+\)\. Check its API key/);
    expect(alert?.text).not.toContain("not-the-passphrase");
    expect((await sends(e, alert?.id ?? "")).map((s) => s.sink)).toEqual(["chat", "pager"]);
  });

  it("clock.rejected_twice: the venue refuses the re-signed retry too; clock.stepped: the estimate jumped", async () => {
    // skewguard is told the window the simulator will be set to below: a refusal is read from its Date against
    // the window, so with 0.1 ms on both sides every whole-second timestamp is refused, and read as such.
    const { env: e } = bindings({ INTX_WINDOW_SECONDS: "0.0001" });
    await simControl({ reset: true, skew_ms: 0 }); // the simulator's default skew is not 0
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200); // a warm clock at skew 0
    await simControl({ skew_ms: 30_000 });
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200); // refused once, re-signed, accepted
    const [stepped] = await raised(e, "clock.stepped", "intx");
    expect(stepped?.text).toMatch(/^intx's clock moved by \+\d+ ms against skewguard's estimate\.$/);
    const moved = Number(/\+(\d+) ms/.exec(stepped?.text ?? "")?.[1]);
    expect(moved).toBeGreaterThan(28_000);
    expect(moved).toBeLessThan(32_000);
    // A timestamp is whole seconds; with half a millisecond more skew the venue's clock is never on a whole
    // second, so no timestamp is within 0.1 ms of it: both the first attempt and the re-signed retry are refused.
    await simControl({ skew_ms: 30_000.5, window_seconds: 0.0001 });
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(401);
    const [twice] = await raised(e, "clock.rejected_twice", "intx/alpha");
    expect(twice?.severity).toBe("critical");
    expect(await raised(e, "venue.auth_failed", "intx/alpha")).toEqual([]); // a timestamp refusal is not a key refusal
    await simControl({ reset: true });
  });

  it("delivery.dead_lettered: a queued kill-switch the venue redirects is dead, and the alert names it", async () => {
    const { env: e } = bindings();
    await simControl({ reset: true, fault: { kind: "redirect", count: 1 } });
    const id = `sg-${crypto.randomUUID().replaceAll("-", "").slice(0, 29)}`;
    const message: DeliveryMessage = {
      id,
      route: "kill",
      venue: "cde",
      account: "default",
      method: "POST",
      path: "/rest/kill-switch",
      body: '{"only_cancel_no_trading_lock":false,"firm_uuid":"3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01"}',
      receivedAt: Date.now(),
      maxAgeSeconds: 60,
      retrySafe: true,
    };
    const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
      { id: `q-${id}`, timestamp: new Date(), attempts: 1, body: message },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, e, ctx);
    await getQueueResult(batch, ctx);
    const [alert] = await raised(e, "delivery.dead_lettered", `delivery:${id}`);
    expect(alert?.severity).toBe("critical");
    expect(JSON.parse(alert?.ids ?? "")).toEqual({ route: "kill", delivery_id: id });
    expect(alert?.text).toContain(`Re-drive it with POST /deliveries/${id}/retry.`);
    await simControl({ reset: true });
  });

  it("job.failing after N failed runs in a row, once; job.recovered when one succeeds", async () => {
    const job = `flaky-${n}`;
    const jobs = (path: string) =>
      JSON.stringify([{ name: job, cron: "* * * * *", venue: "intx", path, alert_after_failures: 2 }]);
    const failing = bindings({ JOBS: jobs("/api/v1/no-such-thing") }).env;
    const t0 = Date.UTC(2026, 10, 26, 0, 0, 0) + n * 600_000;
    const tick = async (e: Env, i: number) => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ scheduledTime: t0 + i * 60_000, cron: "* * * * *" }), e, ctx);
      await waitOnExecutionContext(ctx);
    };
    await tick(failing, 0);
    expect(await raised(failing, "job.failing", `job:${job}`)).toEqual([]);
    await tick(failing, 1);
    await tick(failing, 2); // the third failure is the same streak: no second alert
    const alerts = await raised(failing, "job.failing", `job:${job}`);
    expect(alerts.map((a) => a.text)).toEqual([
      `Job ${job} has failed 2 runs in a row; the last: venue answered 404: Not Found.`,
    ]);
    const healthy = { ...failing, JOBS: jobs("/api/v1/portfolios") } as Env;
    await tick(healthy, 3);
    expect((await raised(failing, "job.recovered", `job:${job}`)).map((a) => a.text)).toEqual([
      `Job ${job} succeeded again after failing.`,
    ]);
  });

  it("forward.abandoned: a run whose job no longer forwards is abandoned, and said so", async () => {
    const job = `fwd-${n}`;
    const spec = (forward: boolean) =>
      JSON.stringify([
        {
          name: job,
          cron: "* * * * *",
          venue: "intx",
          path: "/api/v1/portfolios",
          ...(forward
            ? { forward: { url: "https://receiver.sim.test/_sim/alerts/fwd", secret_binding: "FORWARD_SECRET" } }
            : {}),
        },
      ]);
    const { env: e } = bindings({ JOBS: spec(true), FORWARD_SECRET: SW_SECRET });
    await simControl({ reset: true, alerts_fault: "down" });
    const t0 = Date.UTC(2026, 10, 27, 0, 0, 0) + n * 600_000;
    const tick = async (env: Env, i: number) => {
      const ctx = createExecutionContext();
      await worker.scheduled(
        createScheduledController({ scheduledTime: t0 + i * 60_000, cron: "* * * * *" }),
        env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
    };
    await tick(e, 0); // the forward fails: kept for a retry
    await tick({ ...e, JOBS: spec(false) } as Env, 1);
    const [alert] = await raised(e, "forward.abandoned", `job:${job}`);
    expect(alert?.text).toBe(
      `Job ${job}: the forward of the run scheduled at ${new Date(t0).toISOString()} was abandoned: the job no longer has a forward configured.`,
    );
    await simControl({ reset: true });
  });

  it("config.problem: once per isolate and problem", async () => {
    const { env: e } = bindings({ CLOCK_SYNC: `sometimes-${n}` });
    await call(e, "/health");
    await call(e, "/health");
    const problems = await raised(e, "config.problem", "CLOCK_SYNC:");
    expect(problems.map((p) => p.text)).toEqual([
      "Configuration problem in CLOCK_SYNC: must be never, cold or always; using cold",
    ]);
  });
});

describe("sinks", () => {
  it("each format gets its shape; a Standard Webhooks sink verifies with the standardwebhooks package", async () => {
    const { env: e, run } = bindings();
    await simControl({ reset: true });
    const put = { method: "PUT", body: JSON.stringify({ reason: "format check" }) };
    await call(e, "/accounts/intx/alpha/halt", put);
    await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" });
    const [row] = await raised(e, "account.halted", "intx/alpha");
    const messages = queued.filter((m) => m.alert.id === row?.id);
    expect(messages.map((m) => m.sink).sort()).toEqual(["chat", "ops-discord"]);
    for (const message of messages) expect((await consumeAlert(e, message)).explicitAcks).toHaveLength(1);
    // The pager takes critical events only; posted by hand here to check the Standard Webhooks shape.
    const alert = (messages[0] as AlertMessage).alert;
    await consumeAlert(e, { kind: "alert", sink: "pager", alert });
    const got = (await simControl()).alerts.filter((a) => a.path.startsWith(`/_sim/alerts/${run}/`));
    const byPath = Object.fromEntries(got.map((a) => [a.path.split("/").at(-1), a]));
    // Slack, Discord and Standard Webhooks receivers all take JSON labelled so (fetch would say text/plain).
    expect(["chat", "discord", "pager"].map((sink) => byPath[sink]?.content_type)).toEqual([
      "application/json",
      "application/json",
      "application/json",
    ]);
    const title = "[warning] account.halted (intx/alpha)";
    const text = "intx/alpha was halted by token:ops: format check";
    expect(JSON.parse(byPath.chat?.body ?? "")).toEqual({
      text: `${title}: ${text}`,
      blocks: [
        { type: "header", text: { type: "plain_text", text: title } },
        { type: "section", text: { type: "mrkdwn", text, verbatim: true } },
      ],
    });
    // Discord is told to parse no mentions: a halt's reason cannot ping @everyone.
    expect(JSON.parse(byPath.discord?.body ?? "")).toEqual({
      content: `**\\[warning\\] account.halted \\(intx/alpha\\)**\n${text}`,
      allowed_mentions: { parse: [] },
    });
    const pager = byPath.pager;
    const verified = new Webhook(SW_SECRET).verify(pager?.body ?? "", {
      "webhook-id": pager?.headers["webhook-id"] ?? "",
      "webhook-timestamp": pager?.headers["webhook-timestamp"] ?? "",
      "webhook-signature": pager?.headers["webhook-signature"] ?? "",
    });
    expect(verified).toEqual(alert);
    expect(await sends(e, alert.id)).toEqual([
      { sink: "chat", state: "sent" },
      { sink: "ops-discord", state: "sent" },
    ]);
  });

  it("caller text cannot make a link or a mention in Slack or Discord, nor reach the title", async () => {
    const { env: base, run } = bindings();
    const sinks = [
      { name: "chat", url: `https://sink.sim.test/_sim/alerts/${run}/chat`, format: "slack" },
      { name: "ops-discord", url: `https://sink.sim.test/_sim/alerts/${run}/discord`, format: "discord" },
    ];
    const e = {
      ...base,
      ALERTS: JSON.stringify(sinks),
      ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx", guards: { types: ["LIMIT"] } }]),
    } as Env;
    await simControl({ reset: true });
    // An order whose type is a masked link (a guard quotes it in the refusal), then a halt whose reason is a Slack
    // link and a mass mention: both reach the sinks through their real code paths.
    const refused = JSON.parse(order("1").body) as Record<string, unknown>;
    refused.type = "[Re-login](https://evil.example/x)";
    const r = await call(e, "/intx/alpha/api/v1/orders", { ...order("1"), body: JSON.stringify(refused) });
    expect(r.status).toBe(422);
    const halt = { method: "PUT", body: JSON.stringify({ reason: "<https://evil.example|click> @everyone & co" }) };
    expect((await call(e, "/accounts/intx/alpha/halt", halt)).status).toBe(200);
    const [refusal] = await raised(e, "order.refused", "intx/alpha");
    const [halted] = await raised(e, "account.halted", "intx/alpha");
    expect(refusal?.text).toBe(
      "An order from token:ops was refused by types: type [Re-login](https://evil.example/x) is not in types (account intx/alpha)",
    );
    expect(halted?.text).toBe("intx/alpha was halted by token:ops: <https://evil.example|click> @everyone & co");
    for (const message of queued) expect((await consumeAlert(e, message)).explicitAcks).toHaveLength(1);
    const got = (await simControl()).alerts.filter((a) => a.path.startsWith(`/_sim/alerts/${run}/`));
    const bodies = (sink: string) =>
      got.filter((a) => a.path.endsWith(`/${sink}`)).map((a) => JSON.parse(a.body) as Record<string, unknown>);

    const slackRefusal =
      "An order from token:ops was refused by types: type [Re-login](https[:]//evil.example/x) is not in types (account intx/alpha)";
    const slackHalt = "intx/alpha was halted by token:ops: &lt;https[:]//evil.example|click&gt; @everyone &amp; co";
    expect(bodies("chat")).toEqual([
      {
        text: `[warning] order.refused (intx/alpha): ${slackRefusal}`,
        blocks: [
          { type: "header", text: { type: "plain_text", text: "[warning] order.refused (intx/alpha)" } },
          { type: "section", text: { type: "mrkdwn", text: slackRefusal, verbatim: true } },
        ],
      },
      {
        text: `[warning] account.halted (intx/alpha): ${slackHalt}`,
        blocks: [
          { type: "header", text: { type: "plain_text", text: "[warning] account.halted (intx/alpha)" } },
          { type: "section", text: { type: "mrkdwn", text: slackHalt, verbatim: true } },
        ],
      },
    ]);
    expect(bodies("discord")).toEqual([
      {
        content:
          "**\\[warning\\] order.refused \\(intx/alpha\\)**\n" +
          "An order from token:ops was refused by types: type \\[Re-login\\]\\(https\\://evil.example/x\\) is not in types \\(account intx/alpha\\)",
        allowed_mentions: { parse: [] },
      },
      {
        content:
          "**\\[warning\\] account.halted \\(intx/alpha\\)**\n" +
          "intx/alpha was halted by token:ops: <https\\://evil.example\\|click\\> \\@everyone & co",
        allowed_mentions: { parse: [] },
      },
    ]);
    // Nothing a caller wrote is in a title: the Slack header, and Discord's first line.
    for (const body of bodies("chat")) {
      expect(JSON.stringify((body.blocks as unknown[])[0])).not.toMatch(/evil|everyone|Re-login/);
    }
    for (const body of bodies("discord")) {
      expect(String(body.content).split("\n")[0]).not.toMatch(/evil|everyone|Re-login/);
    }
    await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" });
    await simControl({ reset: true });
  });

  it("a sink that is down: retried with backoff, then kept as failed; the request that raised it is untouched", async () => {
    const { env: e, run } = bindings();
    await simControl({ reset: true, alerts_fault: "slow" });
    expect((await call(e, "/intx/alpha/api/v1/orders", order("5"))).status).toBe(422);
    // The request did not wait on the (slow) sink: when it answered, its alert was queued and the sink sent nothing.
    expect(queued.map((m) => [m.kind, m.sink])).toEqual([["alert", "chat"]]);
    expect((await simControl()).alerts.filter((a) => a.path.startsWith(`/_sim/alerts/${run}/`))).toEqual([]);
    await simControl({ alerts_fault: "down" });
    // A send of its own, driven by hand.
    const [row] = await raised(e, "order.refused", "intx/alpha");
    const alert = { ...(row as AlertRow), id: crypto.randomUUID(), ids: {}, at: new Date().toISOString() };
    await e.DB.prepare("INSERT INTO alert_sends (alert_id, sink, state, updated_at) VALUES (?1, 'chat', 'queued', 0)")
      .bind(alert.id)
      .run();
    const message = { kind: "alert", sink: "chat", alert } as unknown as AlertMessage;
    const first = await consumeAlert(e, message, 1);
    expect(first.retryMessages).toHaveLength(1);
    const last = await consumeAlert(e, message, 5);
    expect(last.explicitAcks).toHaveLength(1);
    const kept = await e.DB.prepare("SELECT state, attempts, error FROM alert_sends WHERE alert_id = ?1")
      .bind(alert.id)
      .first();
    expect(kept).toEqual({ state: "failed", attempts: 5, error: "gave up after 5 attempts: the sink answered 503" });
    await simControl({ reset: true });
  });

  // docs/alerts.md, "Durable, and never in the way": the consumer posts it "(10 s timeout, no redirects followed)".
  it("a sink that answers a redirect: not followed, recorded as failed at once, and the target gets nothing", async () => {
    const target = `https://redirect-target.sim/_sim/captured/alert-${n}-${Date.now()}`;
    const { env: e } = bindings({
      ALERTS: JSON.stringify([
        { name: "moved", url: `https://sink.sim.test/_sim/redirect?to=${encodeURIComponent(target)}`, format: "slack" },
      ]),
    });
    await simControl({ reset: true });
    expect((await call(e, "/intx/alpha/api/v1/orders", order("5"))).status).toBe(422);
    const [row] = await raised(e, "order.refused", "intx/alpha");
    expect(queued.map((m) => m.sink)).toEqual(["moved"]);
    const result = await consumeAlert(e, queued[0] as AlertMessage, 1);
    // A redirect is final: acknowledged, never retried.
    expect([result.explicitAcks.length, result.retryMessages.length]).toEqual([1, 0]);
    const kept = await e.DB.prepare("SELECT sink, state, attempts, error FROM alert_sends WHERE alert_id = ?1")
      .bind(row?.id)
      .first();
    expect(kept).toEqual({ sink: "moved", state: "failed", attempts: 1, error: "the sink answered a redirect" });
    const state = await simControl();
    expect(state.captured).toEqual([]);
    expect(state.alerts).toEqual([]);
  });

  it("a broken alert store never fails the request: the refusal is still answered", async () => {
    const { env: good } = bindings();
    const broken = withBrokenD1(good);
    const r = await call(broken, "/intx/alpha/api/v1/orders", order("3"));
    expect(r.status).toBe(422);
  });

  it("the quiet period holds repeats of (type, subject) back, and the next one says how many", async () => {
    const { env: e } = bindings({ ALERTS_QUIET_SECONDS: "600" });
    for (const size of ["2", "3", "4"])
      expect((await call(e, "/intx/alpha/api/v1/orders", order(size))).status).toBe(422);
    expect((await raised(e, "order.refused", "intx/alpha")).map((a) => a.suppressed)).toEqual([0]);
    // 590 s into the 600 s period (and the few ms this test took), a repeat is still held back; past 600 s it goes
    // out, with the count.
    await agePeriods(e, 590_000);
    expect((await call(e, "/intx/alpha/api/v1/orders", order("5"))).status).toBe(422);
    expect(await raised(e, "order.refused", "intx/alpha")).toHaveLength(1);
    await agePeriods(e, 11_000);
    expect((await call(e, "/intx/alpha/api/v1/orders", order("6"))).status).toBe(422);
    const alerts = await raised(e, "order.refused", "intx/alpha");
    expect(alerts.map((a) => a.suppressed)).toEqual([0, 3]);
    expect(alerts[1]?.text).toContain("size 6 is over");
    // That event took the held ones with it: when its own period has ended, the cron trigger's flush finds nothing.
    await agePeriods(e, 601_000);
    await trigger(e);
    expect(await raised(e, "order.refused", "intx/alpha")).toHaveLength(2);
  });

  it("when the quiet period ends, the next cron trigger sends the last event held, counting the others", async () => {
    const { env: e } = bindings({ ALERTS_QUIET_SECONDS: "600" });
    for (const size of ["2", "3", "4"])
      expect((await call(e, "/intx/alpha/api/v1/orders", order(size))).status).toBe(422);
    const heldAt = Date.now();
    await agePeriods(e, 590_000);
    await trigger(e); // the period has not ended: nothing more goes out
    expect((await raised(e, "order.refused", "intx/alpha")).map((a) => a.suppressed)).toEqual([0]);
    await agePeriods(e, 11_000);
    queued.length = 0;
    await Promise.all([trigger(e), trigger(e)]); // two triggers at once (*/5 and * * * * * share a minute): sent once
    const alerts = await raised(e, "order.refused", "intx/alpha");
    // The last one held (size 4), as it was raised, with the one held before it (size 3) counted.
    expect(alerts.map((a) => [a.suppressed, /size (\d) is over/.exec(a.text)?.[1]])).toEqual([
      [0, "2"],
      [1, "4"],
    ]);
    const flushed = alerts[1];
    expect(queued.map((m) => [m.sink, m.alert.id, m.alert.suppressed])).toEqual([["chat", flushed?.id, 1]]);
    expect(Date.parse(queued[0]?.alert.at ?? "")).toBeLessThanOrEqual(heldAt);
    expect(JSON.parse(alerts[1]?.ids ?? "")).toEqual({ rule: "max_size", by: "token:ops" });
    // The flush started a new quiet period: the next refusal is held, and counted from zero.
    expect((await call(e, "/intx/alpha/api/v1/orders", order("5"))).status).toBe(422);
    expect(await raised(e, "order.refused", "intx/alpha")).toHaveLength(2);
    const row = await e.DB.prepare("SELECT suppressed FROM alert_quiet WHERE type = 'order.refused'").first();
    expect(row).toEqual({ suppressed: 1 });
  });

  it("a flush whose alert cannot be recorded gives the event and its count back, and pruning keeps them", async () => {
    const { env: e } = bindings();
    for (const size of ["2", "3", "4"])
      expect((await call(e, "/intx/alpha/api/v1/orders", order(size))).status).toBe(422);
    await agePeriods(e, 3_600_000);
    const quiet = () =>
      e.DB.prepare("SELECT suppressed, held IS NOT NULL AS held FROM alert_quiet WHERE type = 'order.refused'").first();
    expect(await quiet()).toEqual({ suppressed: 2, held: 1 });
    // Recording takes one batch (the alert and its sends): that is what fails here; every other statement works.
    const failing = new Proxy(e.DB, {
      get: (target, key) =>
        key === "batch"
          ? () => Promise.reject(new Error("D1 is down"))
          : (Reflect.get(target, key) as (...args: unknown[]) => unknown).bind(target),
    });
    expect(await flushHeldAlerts({ ...e, DB: failing })).toEqual([]);
    expect(await quiet()).toEqual({ suppressed: 2, held: 1 });
    // The give-back left the row with no period running (sent_at 0): the trigger's pruning must not take it.
    await pruneHistory(e.DB, Date.now(), 30);
    expect(await quiet()).toEqual({ suppressed: 2, held: 1 });
    const [flushed, ...more] = await flushHeldAlerts(e);
    expect(more).toEqual([]);
    expect([flushed?.suppressed, /size (\d) is over/.exec(flushed?.text ?? "")?.[1]]).toEqual([1, "4"]);
    expect((await raised(e, "order.refused", "intx/alpha")).map((a) => a.suppressed)).toEqual([0, 1]);
  });

  it("a quiet period that held nothing back sends nothing when it ends", async () => {
    const { env: e } = bindings();
    expect((await call(e, "/intx/alpha/api/v1/orders", order("2"))).status).toBe(422);
    await agePeriods(e, 3_600_000);
    queued.length = 0;
    await trigger(e);
    expect(queued).toEqual([]);
    expect(await raised(e, "order.refused", "intx/alpha")).toHaveLength(1);
  });

  it("changes of state are never held back: halt, resume, halt again all go out", async () => {
    const { env: e } = bindings();
    const put = { method: "PUT", body: JSON.stringify({ reason: "again" }) };
    await call(e, "/accounts/intx/alpha/halt", put);
    await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" });
    await call(e, "/accounts/intx/alpha/halt", put);
    expect((await raised(e, "account.halted", "intx/alpha")).length).toBe(2);
    expect((await raised(e, "account.resumed", "intx/alpha")).length).toBe(1);
    await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" });
  });

  it("GET /alerts lists them, newest first, for a token allowed to read them", async () => {
    const { env: e } = bindings();
    await call(e, "/intx/alpha/api/v1/orders", order("2"));
    const r = await call(e, "/alerts?limit=1");
    expect(r.status).toBe(403); // ops is not allowed GET /alerts
    const reader = { ...e, RELAY_TOKENS: JSON.stringify([{ name: "r", token: OPS, allow: ["GET /alerts"] }]) } as Env;
    const listed = (await (await call(reader, "/alerts?limit=1")).json()) as { alerts: { type: string }[] };
    expect(listed.alerts.map((a) => a.type)).toEqual(["order.refused"]);
    expect((await call(reader, "/alerts?limit=0")).status).toBe(400);
  });

  it("a bad sink is a problem by name in /health, and the good ones keep working", async () => {
    const { env: e } = bindings({
      ALERTS: JSON.stringify([
        { name: "plain", url: "http://sink.example/x", format: "slack" },
        { name: "odd", url: "https://sink.example/x", format: "teams" },
        { name: "nosecret", url: "https://sink.example/x", format: "standard-webhooks", secret_binding: "NOPE" },
        { name: "fine", url: "https://sink.example/x", format: "discord", events: ["job.failing"] },
      ]),
    });
    const health = (await (await call(e, "/health")).json()) as { problems: unknown[] };
    expect(health.problems).toEqual(
      expect.arrayContaining([
        {
          binding: "ALERTS",
          subject: "plain",
          message: "url must be an https:// URL (http:// only on a loopback host)",
        },
        { binding: "ALERTS", subject: "odd", message: "format must be one of slack, discord, standard-webhooks" },
        { binding: "NOPE", subject: "nosecret", message: "is not set; the sink is left out" },
      ]),
    );
    expect(JSON.stringify(health.problems)).not.toContain('"fine"');
  });
});

describe("POST /alerts/test", () => {
  const tokens = (allow: string[]) =>
    JSON.stringify([
      { name: "ops", token: OPS, allow },
      { name: "reader", token: "alerts-reader-token-0123456789", allow: ["GET /alerts"] },
    ]);
  const testAlert = (e: Env, body?: unknown, token = OPS) =>
    fetchWorker(
      e,
      "/alerts/test",
      body === undefined ? { method: "POST" } : { method: "POST", body: JSON.stringify(body) },
      token,
    );

  it("posts one alert.test to every sink, whatever its filters, and answers each sink's status", async () => {
    await simControl({ reset: true });
    const { env: e, run } = bindings({ RELAY_TOKENS: tokens(["POST /alerts/test"]) });
    const r = await testAlert(e);
    expect(r.status).toBe(200);
    const answer = (await r.json()) as { ok: boolean; alert: { id: string; type: string }; sinks: unknown[] };
    expect(answer.ok).toBe(true);
    expect(answer.alert.type).toBe("alert.test");
    expect(answer.sinks).toEqual([
      { sink: "chat", format: "slack", ok: true, status: 200, error: null },
      { sink: "pager", format: "standard-webhooks", ok: true, status: 200, error: null },
      { sink: "ops-discord", format: "discord", ok: true, status: 200, error: null },
    ]);
    const got = (await simControl()).alerts.filter((a) => a.path.startsWith(`/_sim/alerts/${run}/`));
    expect(got.map((a) => a.path.split("/").at(-1)).sort()).toEqual(["chat", "discord", "pager"]);
    const chat = JSON.parse(got.find((a) => a.path.endsWith("/chat"))?.body ?? "{}") as { text: string };
    expect(chat.text).toBe(
      "[info] alert.test: A test alert, sent by token:ops with POST /alerts/test to check that this sink receives skewguard's alerts. Nothing needs doing.",
    );
    // The pager's message is signed like any alert: the reference library verifies it.
    const pager = got.find((a) => a.path.endsWith("/pager"));
    const verified = new Webhook(SW_SECRET).verify(pager?.body ?? "", pager?.headers ?? {}) as {
      type: string;
      id: string;
    };
    expect(verified).toMatchObject({ type: "alert.test", id: answer.alert.id });
    // A test is not an alert of record: nothing in D1, no quiet period.
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM alerts").first<{ n: number }>())?.n).toBe(0);
  });

  it("to the one sink named; an unknown name is 404, no sinks 409, a token without the route 403", async () => {
    await simControl({ reset: true });
    const { env: e, run } = bindings({ RELAY_TOKENS: tokens(["POST /alerts/test"]) });
    const one = await testAlert(e, { sink: "chat" });
    expect(one.status).toBe(200);
    expect(((await one.json()) as { sinks: { sink: string }[] }).sinks.map((s) => s.sink)).toEqual(["chat"]);
    const got = (await simControl()).alerts.filter((a) => a.path.startsWith(`/_sim/alerts/${run}/`));
    expect(got.map((a) => a.path.split("/").at(-1))).toEqual(["chat"]);
    const unknown = await testAlert(e, { sink: "nope" });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({
      error: { code: "no_such_sink", message: 'no alert sink is named "nope"; the sinks are chat, pager, ops-discord' },
    });
    expect((await testAlert(e, undefined, "alerts-reader-token-0123456789")).status).toBe(403);
    const none = bindings({ RELAY_TOKENS: tokens(["POST /alerts/test"]), ALERTS: "" }).env;
    const empty = await testAlert(none);
    expect(empty.status).toBe(409);
    expect(((await empty.json()) as { error: { code: string } }).error.code).toBe("no_alert_sinks");
    expect((await fetchWorker(e, "/alerts/test", {}, OPS)).status).toBe(405);
  });

  it("a sink that is down: 502, with its status and why, and the others' results", async () => {
    await simControl({ reset: true, alerts_fault: "down" });
    const { env: e } = bindings({ RELAY_TOKENS: tokens(["POST /alerts/test"]) });
    const r = await testAlert(e, { sink: "pager" });
    expect(r.status).toBe(502);
    expect(await r.json()).toMatchObject({
      ok: false,
      sinks: [{ sink: "pager", ok: false, status: 503, error: "the sink answered 503" }],
    });
    await simControl({ reset: true });
  });
});
