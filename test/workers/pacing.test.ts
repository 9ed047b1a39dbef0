// Pacing where the venue counts: through the relay, the real RateGate and the simulator (which notes when each
// request reaches it), a burst never puts more than 40 requests of one key in any 1 s window, a webhook order is
// not starved by a flood of reads, and concurrent cold requests share one clock probe.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { peak } from "../support/peak.ts";
import { DEV, simControl, simEnv } from "../support/sim.ts";

const READER = "pacing-reader-token-0123456789";
const HOOK_TOKEN = "pacing-hook-token-0123456789";
const HOOKS = [
  {
    name: "tv-order",
    verify: "bearer",
    secret_binding: "HOOK_TOKEN",
    fields: { side: "side", id: "id" },
    id_field: "id",
    request: {
      venue: "intx",
      method: "POST",
      path: "/api/v1/orders",
      body: {
        client_order_id: "{{client_order_id}}",
        side: "{{side}}",
        size: "0.01",
        type: "MARKET",
        tif: "IOC",
        instrument: "BTC-PERP",
      },
    },
  },
];

let n = 0;
function bindings(overrides: Record<string, unknown> = {}) {
  return simEnv(`pacing-${n++}-${Date.now()}.sim.test`, {
    RELAY_TOKENS: JSON.stringify([{ name: "reader", token: READER, allow: ["GET /intx/*", "GET /health"] }]),
    HOOKS: JSON.stringify(HOOKS),
    HOOK_TOKEN,
    ...overrides,
  });
}

async function read(e: Env) {
  const ctx = createExecutionContext();
  const r = await worker.fetch(
    new Request("https://relay.test/intx/api/v1/portfolios", { headers: { authorization: `Bearer ${READER}` } }),
    e,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return r.status;
}

async function order(e: Env, id: string) {
  const ctx = createExecutionContext();
  const r = await worker.fetch(
    new Request("https://relay.test/hooks/tv-order", {
      method: "POST",
      body: JSON.stringify({ side: "buy", id }),
      headers: { authorization: `Bearer ${HOOK_TOKEN}`, "content-type": "application/json" },
    }),
    e,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return r.status;
}

describe("pacing at the venue", () => {
  it("a burst of 150 reads and orders: no 1 s window at the venue holds more than 40 of the key's requests", async () => {
    const e = bindings();
    await simControl({ reset: true, up_ms: [0, 5], down_ms: [0, 5] });
    expect(await read(e)).toBe(200); // warm the clock, so no request is re-sent for its timestamp
    const warm = (await simControl()).effects.arrivals[DEV.INTX_API_KEY]?.length ?? 0;
    // When skewguard hands each signed request to the network, by the isolate's own clock: what pacing controls.
    // (The simulator's arrival times add the transport's scheduling, which a busy machine can bunch; what pacing
    // promises is the send times, with the lag bound leaving the slack for the rest: core/pacing.ts.)
    const sends: number[] = [];
    const forward = globalThis.fetch;
    vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
      const request = new Request(input, init);
      if (request.headers.get("cb-access-key") === DEV.INTX_API_KEY) sends.push(Date.now());
      return forward(request);
    });
    const statuses = await Promise.all(
      Array.from({ length: 150 }, (_, i) => (i % 5 === 0 ? order(e, `burst-${n}-${i}`) : read(e))),
    );
    vi.restoreAllMocks();
    const arrivals = (await simControl()).effects.arrivals[DEV.INTX_API_KEY] ?? [];
    // Every request that was not refused by skewguard's own gate (429, nothing sent) was sent (a retry sends again),
    // and every send reached the venue.
    const sent = statuses.filter((s) => s !== 429).length;
    expect(sends.length).toBeGreaterThanOrEqual(sent);
    expect(arrivals).toHaveLength(warm + sends.length);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(peak(sends)).toBeLessThanOrEqual(40);
    expect(sent).toBeGreaterThan(20); // the gate let a real burst through, it did not refuse everything
  }, 30_000);

  it("webhook orders 0.2 s and 0.4 s into a flood of reads are placed, not refused", async () => {
    // At 10 a second, 50 reads at once are far over what a read may wait for (0.5 s) however slowly they arrive,
    // so the flood is real; the orders still find a point kept for writes within their 1 s (core/pacing.ts).
    const e = bindings({ INTX_RATE_LIMIT_PER_SECOND: "10" });
    await simControl({ reset: true });
    expect(await read(e)).toBe(200);
    const reads = Array.from({ length: 50 }, () => read(e));
    const later = (ms: number, id: string) =>
      new Promise<number>((resolve) => setTimeout(() => resolve(order(e, id)), ms));
    const orders = await Promise.all([later(200, `flood-a-${n}`), later(400, `flood-b-${n}`)]);
    const readStatuses = await Promise.all(reads);
    expect(orders).toEqual([200, 200]);
    expect(readStatuses.filter((s) => s === 429).length).toBeGreaterThan(0); // the reads did fill their share
    expect((await simControl()).effects.orders_placed).toBe(2);
  }, 30_000);

  it("20 concurrent requests to a cold venue send one clock probe between them", async () => {
    const e = bindings({ CLOCK_SYNC: "cold", INTX_RATE_LIMIT_PER_SECOND: "off" });
    await simControl({ reset: true });
    const statuses = await Promise.all(Array.from({ length: 20 }, () => read(e)));
    expect(statuses).toEqual(Array(20).fill(200));
    const { effects } = await simControl();
    expect(effects.probes).toBe(1);
    expect(effects.rejected.timestamp_window ?? 0).toBe(0);
  });

  it("DO_LOCATION_HINT places every Durable Object on the request path; an unknown hint is a /health problem", async () => {
    const hints: unknown[] = [];
    const recorded = <T extends Rpc.DurableObjectBranded | undefined>(ns: DurableObjectNamespace<T>, name: string) => ({
      idFromName: (id: string) => ns.idFromName(id),
      get: (id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions) => {
        hints.push([name, options?.locationHint]);
        return ns.get(id, options);
      },
    });
    const e = bindings({
      DO_LOCATION_HINT: "apac",
      CLOCK_STATE: recorded(env.CLOCK_STATE, "ClockState"),
      RATE_GATE: recorded(env.RATE_GATE, "RateGate"),
      HOOK_LEDGER: recorded(env.HOOK_LEDGER, "HookLedger"),
    });
    await simControl({ reset: true });
    expect(await order(e, `hint-${n}`)).toBe(200);
    expect(new Set(hints.map((h) => JSON.stringify(h)))).toEqual(
      new Set(
        [
          ["HookLedger", "apac"],
          ["ClockState", "apac"],
          ["RateGate", "apac"],
        ].map((h) => JSON.stringify(h)),
      ),
    );
    const wrong = bindings({ DO_LOCATION_HINT: "mars" });
    const asked = new Request("https://relay.test/health", { headers: { authorization: `Bearer ${READER}` } });
    const r = await worker.fetch(asked, wrong, createExecutionContext());
    expect(r.status).toBe(503);
    expect(((await r.json()) as { problems: { binding: string }[] }).problems.map((p) => p.binding)).toEqual([
      "DO_LOCATION_HINT",
    ]);
  });
});
