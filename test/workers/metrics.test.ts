// GET /metrics (docs/metrics.md): after known traffic through the Worker's real fetch handler, the exposition is
// read back with a real parser of the Prometheus text format, and each count is exact: requests by route template
// and status, venue answers and retries through a 5xx burst, a read_only refusal, the order ledger, deliveries, dead
// letters and alerts from D1, the clock gauges, the feed's state; a token without `GET /metrics` gets 403.
import { env } from "cloudflare:workers";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { DEV_ALPHA, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const OPS = "metrics-ops-token-0123456789";
const BOT = "metrics-bot-token-0123456789";
const e = simEnv("metrics.sim.test", {
  ...DEV_ALPHA,
  ACCOUNTS: JSON.stringify([
    { name: "default", venue: "cde" },
    { name: "alpha", venue: "cde", read_only: true },
  ]),
  RELAY_TOKENS: JSON.stringify([
    { name: "ops", token: OPS, allow: ["GET /metrics", "* /cde/*"] },
    { name: "bot", token: BOT, allow: ["* /cde/*"] },
  ]),
});

/** The value of `name`'s sample with exactly `labels`, or undefined when there is none. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const sample = family?.metrics.find((m) => JSON.stringify(m.labels ?? {}) === JSON.stringify(labels));
  return sample === undefined ? undefined : Number(sample.value);
}

async function seedD1() {
  const order = (id: string, kind: string, outcome: string) =>
    env.DB.prepare(
      `INSERT INTO orders (id, at, source, actor, venue, account, method, path, kind, outcome)
       VALUES (?1, ?2, 'relay', 'ops', 'cde', 'default', 'POST', '/rest/orders', ?3, ?4)`,
    ).bind(id, Date.now(), kind, outcome);
  const delivery = (id: string, state: string) =>
    env.DB.prepare(
      `INSERT INTO deliveries (id, route, venue, method, path, state, received_at, updated_at)
       VALUES (?1, 'tv', 'cde', 'POST', '/rest/orders', ?2, 1, 1)`,
    ).bind(id, state);
  const alert = (id: string, type: string) =>
    env.DB.prepare(
      `INSERT INTO alerts (id, type, severity, subject, text, ids, raised_at) VALUES (?1, ?2, 'warning', 's', 't', '[]', 1)`,
    ).bind(id, type);
  await env.DB.batch([
    order("o1", "create", "sent"),
    order("o2", "create", "sent"),
    order("o3", "cancel", "refused"),
    delivery("d1", "delivered"),
    delivery("d2", "dead"),
    env.DB.prepare(
      `INSERT INTO dead_letters (delivery_id, route, received_at, dead_at, attempts, reason, payload)
       VALUES ('d2', 'tv', 1, 1, 1, 'r', '{}')`,
    ),
    alert("a1", "clock.stepped"),
    alert("a2", "clock.stepped"),
    alert("a3", "order.refused"),
  ]);
}

describe("GET /metrics", () => {
  it("counts known traffic exactly, in a format a real parser reads", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0], fault: { kind: "5xx", count: 2 } });
    expect((await fetchWorker(e, "/cde/rest/v2/positions", {}, OPS)).status).toBe(200);
    const refused = await fetchWorker(e, "/cde/alpha/rest/v2/kill-switch", { method: "POST", body: "{}" }, OPS);
    expect(refused.status).toBe(403);
    expect((await fetchWorker(e, "/metrics", {}, BOT)).status).toBe(403);
    expect((await fetchWorker(e, "/hooks/nobody-here", { method: "POST" }, OPS)).status).toBe(404);
    await seedD1();

    const first = await fetchWorker(e, "/metrics", {}, OPS);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const text = await first.text();
    expect(value(text, "skewguard_requests_total", { route: "/cde/*", status: "200" })).toBe(1);
    expect(value(text, "skewguard_requests_total", { route: "/cde/*", status: "403" })).toBe(1);
    expect(value(text, "skewguard_requests_total", { route: "/metrics", status: "403" })).toBe(1);
    expect(value(text, "skewguard_requests_total", { route: "/hooks/:name", status: "404" })).toBe(1);
    expect(value(text, "skewguard_venue_answers_total", { venue: "cde", status: "503" })).toBe(2);
    expect(value(text, "skewguard_venue_answers_total", { venue: "cde", status: "200" })).toBe(1);
    expect(value(text, "skewguard_venue_retries_total", { venue: "cde" })).toBe(2);
    expect(value(text, "skewguard_refusals_total", { venue: "cde", account: "alpha", reason: "read_only" })).toBe(1);
    const created = { venue: "cde", account: "default", kind: "create", outcome: "sent" };
    expect(value(text, "skewguard_orders", created)).toBe(2);
    expect(value(text, "skewguard_orders", { ...created, kind: "cancel", outcome: "refused" })).toBe(1);
    expect(value(text, "skewguard_deliveries", { state: "delivered" })).toBe(1);
    expect(value(text, "skewguard_deliveries", { state: "dead" })).toBe(1);
    expect(value(text, "skewguard_dead_letters", { route: "tv" })).toBe(1);
    expect(value(text, "skewguard_alerts", { type: "clock.stepped" })).toBe(2);
    expect(value(text, "skewguard_alerts", { type: "order.refused" })).toBe(1);
    expect(Math.abs(value(text, "skewguard_clock_offset_seconds", { venue: "cde" }) ?? 99)).toBeLessThan(1);
    expect(value(text, "skewguard_clock_uncertainty_seconds", { venue: "cde" })).toBeGreaterThanOrEqual(0);
    for (const source of ["d1", "clock", "feed"])
      expect(value(text, "skewguard_metrics_source_up", { source })).toBe(1);
    expect(text).not.toContain(OPS);
    expect(text).not.toContain("nobody-here");

    const second = await (await fetchWorker(e, "/metrics", {}, OPS)).text();
    expect(value(second, "skewguard_requests_total", { route: "/metrics", status: "200" })).toBe(1);
  });

  it("shows each feed account's bots and upstream state from its Durable Object", async () => {
    const tokens = JSON.stringify([{ name: "ops", token: OPS, allow: ["GET /metrics"] }]);
    const quiet = simEnv("metrics-feed.sim.test", { RELAY_TOKENS: tokens });
    const text = await (await fetchWorker(quiet, "/metrics", {}, OPS)).text();
    const account = { venue: "intx", account: "default" };
    expect(parsePrometheusTextFormat(text).find((f) => f.name === "skewguard_feed_bots")?.metrics).toEqual([
      { labels: account, value: "0" },
    ]);
    expect(value(text, "skewguard_feed_upstream", { ...account, state: "idle" })).toBe(1);
    for (const state of ["connecting", "open", "backoff"]) {
      expect(value(text, "skewguard_feed_upstream", { ...account, state })).toBe(0);
    }
  });

  it("counts the rate gate's waits and its 429s", async () => {
    const tokens = JSON.stringify([{ name: "ops", token: OPS, allow: ["GET /metrics", "GET /intx/*"] }]);
    const paced = (host: string, rate: string) =>
      simEnv(host, {
        RELAY_TOKENS: tokens,
        INTX_RATE_LIMIT_PER_SECOND: rate,
        INTX_RATE_BURST: "1",
        CLOCK_SYNC: "never",
      });
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const burst = (target: Env, n: number) =>
      Promise.all(
        Array.from({ length: n }, () => fetchWorker(target, "/intx/api/v1/portfolios", {}, OPS).then((r) => r.status)),
      );
    const waited = paced("metrics-wait.sim.test", "10");
    // A grant may wait a few ms to its grid point; in a burst of two, the second waits a whole step (1.2 s / 10).
    expect(await burst(waited, 2)).toEqual([200, 200]);
    const text = await (await fetchWorker(waited, "/metrics", {}, OPS)).text();
    const account = { venue: "intx", account: "default" };
    // On a loaded machine a grant the isolate was too slow to use is taken again (at most 3 times, each wait at most
    // a read's 0.5 s cap): two requests make at most 8 waits and 4 s of them.
    expect(value(text, "skewguard_gate_waits_total", account)).toBeGreaterThanOrEqual(1);
    expect(value(text, "skewguard_gate_waits_total", account)).toBeLessThanOrEqual(8);
    expect(value(text, "skewguard_gate_wait_seconds_total", account)).toBeGreaterThanOrEqual(0.1);
    expect(value(text, "skewguard_gate_wait_seconds_total", account)).toBeLessThanOrEqual(4);
    const limited = paced("metrics-busy.sim.test", "1");
    // One slot per 1.2 s, and a read waits at most 0.5 s: of three at once, at least two get 429.
    const refused = (await burst(limited, 3)).filter((status) => status === 429).length;
    expect(refused).toBeGreaterThanOrEqual(2);
    const busy = await (await fetchWorker(limited, "/metrics", {}, OPS)).text();
    expect(value(busy, "skewguard_gate_rate_limited_total", { venue: "intx", reason: "busy" })).toBe(refused);
    expect(value(busy, "skewguard_requests_total", { route: "/intx/*", status: "429" })).toBe(refused);
  });

  it("other methods get 405, and no token 401", async () => {
    expect((await fetchWorker(e, "/metrics", { method: "POST" }, OPS)).status).toBe(405);
    expect((await fetchWorker(e, "/metrics")).status).toBe(401);
  });
});
