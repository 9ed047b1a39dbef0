// The exchange simulator is strict where the venues are (checked with an independent signer, @noble/hashes), and
// skewguard's signed client stays inside its window at every skew from −1 h to +1 h with at most one time-retry.

import { describe, expect, it } from "vitest";
import { venueClient } from "../../src/adapters/client.ts";
import { referenceSignature } from "../support/fake-venue.ts";
import { DEV, simControl, simEnv } from "../support/sim.ts";

interface Signed {
  key?: string;
  passphrase?: string;
  secret?: string;
  timestamp?: string;
  method?: string;
  path?: string;
  body?: string;
  sign?: string;
}

/** A request signed by the reference implementation, not skewguard's, with any part overridden. */
async function send(venue: "intx" | "cde", o: Signed = {}): Promise<Response> {
  const method = o.method ?? "GET";
  const path = o.path ?? (venue === "intx" ? "/api/v1/portfolios" : "/rest/v2/positions");
  const body = o.body ?? "";
  const timestamp = o.timestamp ?? String(Math.round(Date.now() / 1000));
  const secret = o.secret ?? (venue === "intx" ? DEV.INTX_API_SECRET : DEV.CDE_API_SECRET);
  const headers = new Headers({
    "cb-access-key": o.key ?? (venue === "intx" ? DEV.INTX_API_KEY : DEV.CDE_API_KEY),
    "cb-access-passphrase": o.passphrase ?? (venue === "intx" ? DEV.INTX_API_PASSPHRASE : DEV.CDE_API_PASSPHRASE),
    "cb-access-timestamp": timestamp,
    "cb-access-sign": o.sign ?? referenceSignature(secret, timestamp, method, path, body),
  });
  if (body) headers.set("content-type", "application/json");
  return fetch(`https://auth.sim.test${path}?q=1`, { method, headers, body: body || undefined });
}

describe("simulator: authentication", () => {
  it("accepts a request signed by an independent implementation, and stamps Date from its skewed clock", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const r = await send("intx");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual([expect.objectContaining({ portfolio_id: "1ai4ubgb-1-0" })]);
    await simControl({ skew_ms: 3_600_000 });
    const skewed = await send("intx", { timestamp: String(Math.round(Date.now() / 1000) + 3600) });
    expect(skewed.status).toBe(200);
    const date = Date.parse(skewed.headers.get("date") ?? "");
    expect(Math.abs(date - (Date.now() + 3_600_000))).toBeLessThan(1_500);
  });

  it("refuses a wrong signature, key or passphrase, an expired, future or decimal timestamp, each as documented", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const now = Math.round(Date.now() / 1000);
    const cases: [string, Promise<Response>, number, string][] = [
      ["signature", send("intx", { secret: btoa("some other secret") }), 401, "invalid signature"],
      [
        "body not signed",
        send("intx", { sign: referenceSignature(DEV.INTX_API_SECRET, String(now), "GET", "/api/v1/portfolios", "x") }),
        401,
        "invalid signature",
      ],
      ["key", send("intx", { key: "someone-else" }), 401, "invalid api key"],
      ["passphrase", send("intx", { passphrase: "guess" }), 401, "invalid passphrase"],
      ["expired (INTX)", send("intx", { timestamp: String(now - 7) }), 401, "request timestamp expired"],
      ["future (INTX)", send("intx", { timestamp: String(now + 7) }), 401, "request timestamp expired"],
      ["expired (CDE)", send("cde", { timestamp: String(now - 7) }), 400, "request timestamp expired"],
      ["decimal", send("intx", { timestamp: `${now}.5` }), 400, "invalid timestamp"],
      ["missing", send("intx", { timestamp: "" }), 401, "missing required authentication headers"],
    ];
    for (const [what, pending, status, message] of cases) {
      const r = await pending;
      expect([what, r.status, await r.json()]).toEqual([what, status, { message }]);
    }
    const state = await simControl();
    expect(state.effects.accepted).toBe(0);
  });

  it("rejects a duplicate client_order_id the way INTX does, and counts one order", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const body = JSON.stringify({
      client_order_id: "dup-1",
      side: "BUY",
      size: "0.01",
      tif: "IOC",
      type: "MARKET",
      instrument: "BTC-PERP",
    });
    const first = await send("intx", { method: "POST", path: "/api/v1/orders", body });
    expect(first.status).toBe(200);
    const again = await send("intx", { method: "POST", path: "/api/v1/orders", body });
    expect(again.status).toBe(400);
    expect(await again.json()).toEqual({
      title: "io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID dup-1)",
      status: 400,
    });
    expect((await simControl()).effects.orders_placed).toBe(1);
  });

  it("answers 429 with Retry-After past 40 requests a second per INTX key", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const statuses = await Promise.all(Array.from({ length: 45 }, () => send("intx").then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(40);
    const limited = await send("intx");
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("1");
  });
});

describe("skewguard against a skewed simulator", () => {
  const SKEWS_S = [-3600, -61.4, -5.5, 4.9, 37.25, 3600];

  it.each(SKEWS_S)("at %s s of skew, 100 signed calls in a row need at most one time-retry", async (skewS) => {
    await simControl({ reset: true, skew_ms: skewS * 1000, up_ms: [0, 6], down_ms: [0, 4] });
    const host = `skew${String(skewS).replace(/[^0-9]/g, "_")}-${Date.now()}.sim.test`;
    const client = venueClient(simEnv(host), "cde");
    if (!client) throw new Error("cde not configured");
    let timeRetries = 0;
    for (let i = 0; i < 100; i++) {
      const result = await client.send({ method: "GET", path: "/rest/funding-rate", query: "symbol=BIPZ30" });
      expect(result.response.status).toBe(200);
      await result.response.body?.cancel();
      expect(Number.isInteger(result.timestamp)).toBe(true);
      timeRetries += result.attempts - 1;
    }
    expect(timeRetries).toBeLessThanOrEqual(1);
    const state = await simControl();
    expect(state.effects.rejected.timestamp_window ?? 0).toBe(timeRetries);
    expect(state.effects.accepted).toBe(100);
  });
});
