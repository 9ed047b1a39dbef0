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
  /** `manual` to see a 3xx itself; default `follow`, like fetch. */
  redirect?: RequestInit["redirect"];
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
  return fetch(`https://auth.sim.test${path}?q=1`, { method, headers, body: body || undefined, redirect: o.redirect });
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

const QUIET = { reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] };

const ORDER = (id: string) =>
  JSON.stringify({
    client_order_id: id,
    side: "BUY",
    size: "0.01",
    tif: "IOC",
    type: "MARKET",
    instrument: "BTC-PERP",
  });

describe("simulator: a misbehaving front (reflect and redirect faults)", () => {
  it("reflect: a 500 HTML page echoing every request header, dated by the real clock, never the skewed one", async () => {
    await simControl({ ...QUIET, skew_ms: 60_000, fault: { kind: "reflect", count: 1 } });
    const timestamp = String(Math.round(Date.now() / 1000) + 60);
    const body = ORDER("reflect-1");
    const sign = referenceSignature(DEV.INTX_API_SECRET, timestamp, "POST", "/api/v1/orders", body);
    const r = await send("intx", { method: "POST", path: "/api/v1/orders", body, timestamp });
    expect(r.status).toBe(500);
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await r.text();
    for (const text of ["cb-access-key", "cb-access-sign", "cb-access-passphrase", "cb-access-timestamp"]) {
      expect(page).toContain(text);
    }
    for (const value of [DEV.INTX_API_KEY, sign, DEV.INTX_API_PASSPHRASE, timestamp]) expect(page).toContain(value);
    expect(Math.abs(Date.parse(r.headers.get("date") ?? "") - Date.now())).toBeLessThan(2_000);
    const state = await simControl();
    expect(state.effects).toMatchObject({ requests: 1, accepted: 0, rejected: {}, orders_placed: 0 });
    expect(state.fault).toBeNull();
    // Spent: the next request reaches the venue again, and its Date is the venue's skewed clock.
    const next = await send("intx", { timestamp });
    expect(next.status).toBe(200);
    expect(Math.abs(Date.parse(next.headers.get("date") ?? "") - (Date.now() + 60_000))).toBeLessThan(1_500);
  });

  it("reflect fires before authentication: an unsigned probe gets the page too", async () => {
    await simControl({ ...QUIET, skew_ms: 60_000, fault: { kind: "reflect", count: 1 } });
    const r = await fetch("https://probe.sim.test/api/v1/portfolios", { headers: { "x-probe": "p-123" } });
    expect(r.status).toBe(500);
    expect(await r.text()).toContain("p-123");
    expect(Math.abs(Date.parse(r.headers.get("date") ?? "") - Date.now())).toBeLessThan(2_000);
    expect((await simControl()).effects.rejected).toEqual({});
  });

  it("redirect: 307 to the capture sink on another origin, or to the given location, without processing", async () => {
    await simControl({ ...QUIET, fault: { kind: "redirect", count: 1 } });
    const r = await send("intx", { method: "POST", path: "/api/v1/orders", body: ORDER("r-1"), redirect: "manual" });
    expect(r.status).toBe(307);
    expect(r.headers.get("location")).toBe("http://redirect-target.sim/_sim/captured/api/v1/orders?q=1");
    const set = await simControl({ fault: { kind: "redirect", count: 2, location: "https://elsewhere.test/landing" } });
    expect(set.fault).toEqual({
      kind: "redirect",
      remaining: 2,
      slowMs: 15_000,
      location: "https://elsewhere.test/landing",
    });
    for (const id of ["r-2", "r-3"]) {
      const custom = await send("intx", {
        method: "POST",
        path: "/api/v1/orders",
        body: ORDER(id),
        redirect: "manual",
      });
      expect([custom.status, custom.headers.get("location")]).toEqual([307, "https://elsewhere.test/landing"]);
    }
    const state = await simControl();
    expect(state.effects).toMatchObject({ requests: 3, accepted: 0, rejected: {}, orders_placed: 0 });
    expect(state.fault).toBeNull();
    expect(state.captured).toEqual([]);
  });

  it("redirect: a client that follows it hands its CB-ACCESS headers and body to the other origin", async () => {
    await simControl({ ...QUIET, fault: { kind: "redirect", count: 1 } });
    const body = ORDER("followed-1");
    const r = await send("intx", { method: "POST", path: "/api/v1/orders", body });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ captured: true });
    const state = await simControl();
    expect(state.captured).toEqual([
      {
        method: "POST",
        host: "redirect-target.sim",
        path: "/_sim/captured/api/v1/orders?q=1",
        cb_access_headers: 4,
        body_bytes: body.length,
      },
    ]);
    expect(state.effects.orders_placed).toBe(0);
  });
});

describe("simulator: capture sink and /_sim/redirect", () => {
  it("the sink records method, host, path, cb-access-* header count and body size, for any host and method", async () => {
    await simControl(QUIET);
    const put = await fetch("https://anywhere.test/_sim/captured/x/y?z=1", {
      method: "PUT",
      headers: { "CB-ACCESS-KEY": "k", "cb-access-sign": "s", "x-other": "1" },
      body: "hello",
    });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ captured: true });
    await (await fetch("http://other.test/_sim/captured")).body?.cancel();
    const state = await simControl();
    expect(state.captured).toEqual([
      { method: "PUT", host: "anywhere.test", path: "/_sim/captured/x/y?z=1", cb_access_headers: 2, body_bytes: 5 },
      { method: "GET", host: "other.test", path: "/_sim/captured", cb_access_headers: 0, body_bytes: 0 },
    ]);
    expect(state.effects.requests).toBe(0);
  });

  it("the sink keeps the 50 most recent, and reset clears it", async () => {
    await simControl(QUIET);
    for (let i = 0; i < 55; i++) await (await fetch(`https://sink.test/_sim/captured/${i}`)).body?.cancel();
    const { captured } = await simControl();
    expect(captured).toHaveLength(50);
    expect([captured[0]?.path, captured[49]?.path]).toEqual(["/_sim/captured/5", "/_sim/captured/54"]);
    expect((await simControl({ reset: true })).captured).toEqual([]);
  });

  it("/_sim/redirect answers 307 to `to` whatever the method, and records nothing", async () => {
    await simControl(QUIET);
    const to = "https://receiver.test/hook?x=1";
    for (const method of ["GET", "POST", "PUT"]) {
      const r = await fetch(`https://any.test/_sim/redirect?to=${encodeURIComponent(to)}`, {
        method,
        body: method === "GET" ? undefined : "{}",
        redirect: "manual",
      });
      expect([method, r.status, r.headers.get("location")]).toEqual([method, 307, to]);
    }
    for (const bad of ["", "?to=", "?to=not%20a%20url"]) {
      const r = await fetch(`https://any.test/_sim/redirect${bad}`, { redirect: "manual" });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("bad_redirect");
    }
    const state = await simControl();
    expect(state.captured).toEqual([]);
    expect(state.effects).toMatchObject({ requests: 0, accepted: 0, rejected: {} });
  });
});

describe("simulator: /_sim/control refuses what it cannot apply", () => {
  const cases: [string, string, string][] = [
    ["not JSON", "{skew_ms: 1}", "body is not valid JSON"],
    ["an empty body", "", "body is not valid JSON"],
    ["an array", "[1]", "body must be a JSON object"],
    ["null", "null", "body must be a JSON object"],
    ["a string", '"reset"', "body must be a JSON object"],
    ["an unknown top-level key", '{"skew": 5000}', 'unknown key "skew"'],
    ["a good field next to an unknown key", '{"skew_ms": 5000, "fualt": null}', 'unknown key "fualt"'],
    ["an unknown fault kind", '{"fault": {"kind": "meteor"}}', "fault.kind must be one of"],
    ["a fault without a kind", '{"fault": {"count": 1}}', "fault.kind must be one of"],
    ["a fault that is a string", '{"fault": "5xx"}', "fault must be an object or null"],
    ["an unknown fault key", '{"fault": {"kind": "5xx", "times": 2}}', 'unknown key "fault.times"'],
    ["a string count", '{"fault": {"kind": "5xx", "count": "2"}}', "fault.count"],
    ["a zero count", '{"fault": {"kind": "5xx", "count": 0}}', "fault.count"],
    ["a string slow_ms", '{"fault": {"kind": "slow", "slow_ms": "1s"}}', "fault.slow_ms"],
    ["slow_ms on another kind", '{"fault": {"kind": "5xx", "slow_ms": 10}}', "fault.slow_ms"],
    ["a numeric location", '{"fault": {"kind": "redirect", "location": 5}}', "fault.location"],
    ["a location with a newline", '{"fault": {"kind": "redirect", "location": "x\\ny"}}', "fault.location"],
    ["location on another kind", '{"fault": {"kind": "reflect", "location": "https://x.test/"}}', "fault.location"],
    ["a string reset", '{"reset": "yes"}', "reset"],
    ["a string skew_ms", '{"skew_ms": "5000"}', "skew_ms"],
    ["a one-element up_ms", '{"up_ms": [5]}', "up_ms"],
    ["a reversed down_ms", '{"down_ms": [10, 5]}', "down_ms"],
    ["a zero window", '{"window_seconds": 0}', "window_seconds"],
    ["a boolean window", '{"window_seconds": true}', "window_seconds"],
    ["a string status", '{"timestamp_status": {"intx": "401"}}', "timestamp_status.intx"],
    ["a status out of range", '{"timestamp_status": {"cde": 99}}', "timestamp_status.cde"],
    ["an unknown venue status", '{"timestamp_status": {"fix": 401}}', 'unknown key "timestamp_status.fix"'],
  ];

  it.each(cases)("400 bad_control for %s, and nothing changes", async (_what, body, message) => {
    await simControl(QUIET);
    const before = await simControl();
    const r = await fetch("https://sim.control/_sim/control", { method: "POST", body });
    expect(r.status).toBe(400);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
    const json = (await r.json()) as { error: { code: string; message: string } };
    expect(json.error.code).toBe("bad_control");
    expect(json.error.message).toContain(message);
    expect(json.error.message).not.toMatch(/\n\s+at /);
    expect(await simControl()).toEqual(before);
  });
});

describe("simulator: the kill-switch lock is per venue", () => {
  it("a CDE kill switch locks CDE only: an INTX order still goes through; unlock and reset lift it", async () => {
    await simControl(QUIET);
    expect((await simControl()).trading_locked).toEqual({ intx: false, cde: false });
    const killSwitch = '{"only_cancel_no_trading_lock":false}';
    const kill = await send("cde", { method: "POST", path: "/rest/kill-switch", body: killSwitch });
    expect(kill.status).toBe(200);
    expect(await kill.json()).toEqual({ status: "ok", trading_locked: true });
    expect((await simControl()).trading_locked).toEqual({ intx: false, cde: true });
    const order = await send("intx", { method: "POST", path: "/api/v1/orders", body: ORDER("after-cde-kill") });
    expect(order.status).toBe(200);
    expect(await order.json()).toMatchObject({ client_order_id: "after-cde-kill", order_status: "WORKING" });
    const unlock = await send("cde", { method: "POST", path: "/rest/unlock-trading", body: "{}" });
    expect(await unlock.json()).toEqual({ status: "ok", trading_locked: false });
    const state = await simControl();
    expect(state.trading_locked).toEqual({ intx: false, cde: false });
    expect(state.effects).toMatchObject({ kill_switches: 1, unlocks: 1, orders_placed: 1 });
    await (await send("cde", { method: "POST", path: "/rest/kill-switch", body: killSwitch })).body?.cancel();
    expect((await simControl()).trading_locked.cde).toBe(true);
    expect((await simControl({ reset: true })).trading_locked).toEqual({ intx: false, cde: false });
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
