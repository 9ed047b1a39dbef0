// Scheduled jobs against the simulator: each cron runs its jobs, rows land in D1 with the right fields, a
// re-delivered trigger neither re-sends nor duplicates, venue errors are recorded, forwards verify with the
// `standardwebhooks` package and are retried on the next run, old runs are pruned, and the read API is guarded.

import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseJobs } from "../../src/core/jobs.ts";
import worker from "../../src/index.ts";
import { DEFAULT_VENUES } from "../../src/venues/index.ts";
import { workerEnv } from "../support/env.ts";
import { simControl, simEnv } from "../support/sim.ts";

const FORWARD_SECRET = `whsec_${btoa("forward-secret-for-the-receiver!")}`;
const TOKEN = "jobs-reader-token-0123456789";
const JOBS = [
  { name: "cde-funding", cron: "*/5 * * * *", venue: "cde", path: "/rest/funding-rate", query: "symbol=BIPZ30" },
  { name: "cde-bad-symbol", cron: "*/5 * * * *", venue: "cde", path: "/rest/funding-rate", query: "symbol=NOPE" },
  {
    name: "intx-positions",
    cron: "* * * * *",
    venue: "intx",
    path: "/api/v1/portfolios/1ai4ubgb-1-0/positions",
    forward: { url: "https://receiver.test/runs", secret_binding: "FORWARD_SECRET" },
  },
  { name: "not-a-trigger", cron: "0 * * * *", venue: "cde", path: "/rest/v2/positions" },
];
const bindings = simEnv(`jobs-${Date.now()}.sim.test`, {
  JOBS: JSON.stringify(JOBS),
  FORWARD_SECRET,
  INTX_RATE_LIMIT_PER_SECOND: "off",
  RELAY_TOKENS: JSON.stringify([
    { name: "ops", token: TOKEN, allow: ["GET /jobs", "GET /jobs/*", "GET /health"] },
    { name: "other", token: "other-token-0123456789", allow: ["GET /intx/*"] },
  ]),
});

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

async function trigger(cron: string, scheduledTime: number, e: Env = bindings) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron, scheduledTime }), e, ctx);
  await waitOnExecutionContext(ctx);
}

async function runs(job: string) {
  return (
    await env.DB.prepare("SELECT * FROM job_runs WHERE job = ?1 ORDER BY scheduled_at")
      .bind(job)
      .all<Record<string, unknown>>()
  ).results;
}

/** Receives forwards (anything else goes on to the simulator); `status` is what the receiver answers. */
function receiver(status = 200) {
  const got: { headers: Record<string, string>; body: string }[] = [];
  const real = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (new URL(request.url).host !== "receiver.test") return real(request);
    got.push({ headers: Object.fromEntries(request.headers), body: await request.text() });
    return new Response(null, { status });
  });
  return got;
}

afterEach(() => vi.restoreAllMocks());

async function get(path: string, token: string | null = TOKEN) {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const r = await worker.fetch(new Request(`https://relay.test${path}`, { headers }), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

describe("scheduled jobs", () => {
  it("the */5 trigger runs its two jobs and records each run's fields; errors keep the venue's reason", async () => {
    await simControl({ reset: true, skew_ms: 37_250, up_ms: [0, 2], down_ms: [0, 2] });
    await trigger("*/5 * * * *", T0);
    const [ok] = await runs("cde-funding");
    expect(ok).toMatchObject({ job: "cde-funding", scheduled_at: T0, status: 200, error: null, body_truncated: 0 });
    expect(ok?.attempts).toBeGreaterThanOrEqual(1);
    expect(ok?.attempts).toBeLessThanOrEqual(2);
    expect(Math.abs((ok?.offset_ms as number) - 37_250)).toBeLessThan(1_500);
    expect(JSON.parse(ok?.body as string)).toEqual([
      expect.objectContaining({ symbol: "BIPZ30", funding_rate: "0.000125" }),
    ]);
    expect(ok?.ended_at as number).toBeGreaterThanOrEqual(ok?.started_at as number);
    const [bad] = await runs("cde-bad-symbol");
    expect(bad).toMatchObject({ status: 400, error: "venue answered 400: Invalid symbol" });
    expect(await runs("intx-positions")).toEqual([]);
  });

  it("a re-delivered trigger neither sends again nor adds a row", async () => {
    // A venue host of its own: a clock no other test has taught, in step with the simulator (skew 0), so the first
    // delivery sends exactly one request per */5 job (cde-funding, cde-bad-symbol), whatever ran before.
    const fresh = simEnv(`jobs-redelivered-${Date.now()}.sim.test`, {
      JOBS: JSON.stringify(JOBS),
      FORWARD_SECRET,
      INTX_RATE_LIMIT_PER_SECOND: "off",
    });
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    await trigger("*/5 * * * *", T0 + 300_000, fresh);
    expect((await simControl()).effects.requests).toBe(2);
    await trigger("*/5 * * * *", T0 + 300_000, fresh);
    expect((await simControl()).effects.requests).toBe(2);
    for (const job of ["cde-funding", "cde-bad-symbol"]) {
      expect((await runs(job)).filter((r) => r.scheduled_at === T0 + 300_000)).toHaveLength(1);
    }
  });

  it("an unreachable venue is recorded with its reason", async () => {
    const down = simEnv("unused.sim.test", {
      JOBS: JSON.stringify(JOBS.slice(0, 1)),
      CDE_BASE_URL: "http://127.0.0.1:9",
    });
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError("connection refused"));
    await trigger("*/5 * * * *", T0 + 600_000, down);
    const row = (await runs("cde-funding")).find((r) => r.scheduled_at === T0 + 600_000);
    expect(row).toMatchObject({ status: null, error: "venue unreachable", attempts: 3 });
  });

  it("forwards each run signed as Standard Webhooks; the package verifies it", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const got = receiver(200);
    await trigger("* * * * *", T0);
    expect(got).toHaveLength(1);
    const payload = new Webhook(FORWARD_SECRET).verify(got[0]?.body ?? "", got[0]?.headers ?? {}) as Record<
      string,
      unknown
    >;
    expect(got[0]?.headers["webhook-id"]).toBe(`intx-positions:${T0}`);
    expect(payload).toMatchObject({ job: "intx-positions", scheduled_at: new Date(T0).toISOString(), status: 200 });
    expect(typeof payload.body).toBe("object"); // the venue's JSON as JSON, as GET /jobs/<name>/runs shows it
    const [row] = await runs("intx-positions");
    expect(row).toMatchObject({ forward_state: "delivered", forward_attempts: 1, forward_error: null });
  });

  it("a failed forward is recorded and retried on the next run until delivered", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    receiver(503);
    await trigger("* * * * *", T0 + 60_000);
    let row = (await runs("intx-positions")).find((r) => r.scheduled_at === T0 + 60_000);
    expect(row).toMatchObject({ forward_state: "failed", forward_attempts: 1, forward_error: "receiver answered 503" });
    vi.restoreAllMocks();
    const got = receiver(204);
    await trigger("* * * * *", T0 + 120_000);
    row = (await runs("intx-positions")).find((r) => r.scheduled_at === T0 + 60_000);
    expect(row).toMatchObject({ forward_state: "delivered", forward_attempts: 2, forward_error: null });
    expect(got.map((g) => g.headers["webhook-id"]).sort()).toEqual(
      [`intx-positions:${T0 + 60_000}`, `intx-positions:${T0 + 120_000}`].sort(),
    );
  });

  it("a failed forward of a job that no longer forwards is recorded as abandoned, not retried forever", async () => {
    await env.DB.prepare(
      "INSERT INTO job_runs (job, scheduled_at, started_at, forward_state, forward_attempts) VALUES ('gone', ?1, ?1, 'failed', 1)",
    )
      .bind(T0 - 60_000)
      .run();
    await trigger("0 * * * *", T0);
    expect((await runs("gone"))[0]).toMatchObject({
      forward_state: "abandoned",
      forward_error: "the job no longer has a forward configured",
    });
  });

  it("prunes runs older than RUNS_RETENTION_DAYS", async () => {
    await env.DB.prepare("INSERT INTO job_runs (job, scheduled_at, started_at) VALUES ('old-job', ?1, ?1)")
      .bind(T0 - 3 * 86_400_000)
      .run();
    await env.DB.prepare("INSERT INTO job_runs (job, scheduled_at, started_at) VALUES ('old-job', ?1, ?1)")
      .bind(T0 - 1 * 86_400_000)
      .run();
    // Alerts and delivery histories go by the same retention.
    for (const [id, at] of [
      ["old-alert", T0 - 3 * 86_400_000],
      ["new-alert", T0 - 86_400_000],
    ] as const) {
      await env.DB.batch([
        env.DB.prepare(
          `INSERT INTO alerts (id, type, severity, subject, text, ids, raised_at)
           VALUES (?1, 'job.failing', 'warning', 'job:x', 't', '{}', ?2)`,
        ).bind(id, at),
        env.DB.prepare("INSERT INTO alert_sends (alert_id, sink, state, updated_at) VALUES (?1, 's', 'sent', ?2)").bind(
          id,
          at,
        ),
        env.DB.prepare("INSERT INTO delivery_history (delivery_id, at, event) VALUES (?1, ?2, 'dead')").bind(id, at),
      ]);
    }
    await trigger("0 * * * *", T0, workerEnv({ ...bindings, RUNS_RETENTION_DAYS: "2" }));
    expect((await runs("old-job")).map((r) => r.scheduled_at)).toEqual([T0 - 86_400_000]);
    for (const [table, column] of [
      ["alerts", "id"],
      ["alert_sends", "alert_id"],
      ["delivery_history", "delivery_id"],
    ]) {
      const { results } = await env.DB.prepare(
        `SELECT ${column} AS id FROM ${table} WHERE ${column} LIKE '%-alert'`,
      ).all();
      expect([table, results.map((r) => r.id)]).toEqual([table, ["new-alert"]]);
    }
  });
});

describe("jobs: configuration and read API", () => {
  it("a job whose cron is not a trigger, or whose venue is not configured, is reported by name", async () => {
    const { problems } = parseJobs(JOBS, new Set(["intx/default"]), DEFAULT_VENUES);
    expect(problems).toEqual([
      { job: "cde-funding", message: "venue cde is not configured (see /health)" },
      { job: "cde-bad-symbol", message: "venue cde is not configured (see /health)" },
      {
        job: "not-a-trigger",
        message: 'cron "0 * * * *" is not in wrangler.toml [triggers] crons (*/5 * * * *, * * * * *)',
      },
      { job: "not-a-trigger", message: "venue cde is not configured (see /health)" },
    ]);
    const health = (await (await get("/health")).json()) as { jobs: unknown };
    expect(health.jobs).toEqual({
      names: ["cde-funding", "cde-bad-symbol", "intx-positions"],
      problems: [
        {
          job: "not-a-trigger",
          message: 'cron "0 * * * *" is not in wrangler.toml [triggers] crons (*/5 * * * *, * * * * *)',
        },
      ],
    });
  });

  it("GET /jobs and /jobs/<name>/runs need a token allowed to read them", async () => {
    expect((await get("/jobs", null)).status).toBe(401);
    expect((await get("/jobs", "other-token-0123456789")).status).toBe(403);
    expect((await get("/jobs/cde-funding/runs", "other-token-0123456789")).status).toBe(403);
    const list = (await (await get("/jobs")).json()) as { jobs: { name: string; last_run: unknown }[] };
    expect(list.jobs.map((j) => j.name)).toEqual(["cde-funding", "cde-bad-symbol", "intx-positions"]);
    expect((await get("/jobs/nope/runs")).status).toBe(404);
    expect((await get("/jobs/cde-funding/runs?limit=0")).status).toBe(400);
    expect((await get("/jobs/cde-funding/runs?before=yesterday")).status).toBe(400);
  });

  it("a GET job with a body is reported and not run", () => {
    const job = { name: "get-body", cron: "* * * * *", venue: "cde", path: "/rest/funding-rate", body: { x: 1 } };
    expect(parseJobs([job], new Set(["cde/default"]), DEFAULT_VENUES).problems).toEqual([
      { job: "get-body", message: "body is not allowed with GET" },
    ]);
  });

  it("runs come newest first and page with next_before", async () => {
    for (let i = 1; i <= 5; i++) {
      await env.DB.prepare(
        "INSERT OR IGNORE INTO job_runs (job, scheduled_at, started_at, status) VALUES ('cde-funding', ?1, ?1, 200)",
      )
        .bind(T0 + i * 86_400_000)
        .run();
    }
    const first = (await (await get("/jobs/cde-funding/runs?limit=2")).json()) as {
      runs: { scheduled_at: string }[];
      next_before: string;
    };
    expect(first.runs.map((r) => r.scheduled_at)).toEqual([
      new Date(T0 + 5 * 86_400_000).toISOString(),
      new Date(T0 + 4 * 86_400_000).toISOString(),
    ]);
    expect(first.next_before).toBe(new Date(T0 + 4 * 86_400_000).toISOString());
    const second = (await (await get(`/jobs/cde-funding/runs?limit=2&before=${first.next_before}`)).json()) as {
      runs: { scheduled_at: string }[];
    };
    expect(second.runs.map((r) => r.scheduled_at)).toEqual([
      new Date(T0 + 3 * 86_400_000).toISOString(),
      new Date(T0 + 2 * 86_400_000).toISOString(),
    ]);
  });

  it("GET /jobs shows how each last run went but not its body, which stays with /jobs/<name>/runs", async () => {
    await trigger("*/5 * * * *", T0 + 7 * 86_400_000);
    const list = (await (await get("/jobs")).json()) as { jobs: { name: string; last_run: Record<string, unknown> }[] };
    const funding = list.jobs.find((j) => j.name === "cde-funding")?.last_run;
    expect(funding).toMatchObject({
      status: 200,
      error: null,
      scheduled_at: new Date(T0 + 7 * 86_400_000).toISOString(),
    });
    expect(Object.keys(funding ?? {})).not.toContain("body");
    expect(Object.keys(funding ?? {})).not.toContain("body_truncated");
    const runs = (await (await get("/jobs/cde-funding/runs?limit=1")).json()) as { runs: { body: unknown }[] };
    expect(JSON.stringify(runs.runs[0]?.body)).toContain("BIPZ30");
    expect(typeof runs.runs[0]?.body).toBe("object"); // the venue's JSON, not JSON inside a string
  });
});
