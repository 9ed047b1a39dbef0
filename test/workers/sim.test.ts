// The exchange simulator is strict where the venues are (checked with an independent signer, @noble/hashes), and
// skewguard's signed client stays inside its window at every skew from −1 h to +1 h with at most one time-retry.

import { describe, expect, it } from "vitest";
import { venueClient } from "../../src/adapters/client.ts";
import { referenceSignature } from "../support/fake-venue.ts";
import { DEV, DEV_ALPHA, DEV_BETA, DEV_PORTFOLIOS, simControl, simEnv } from "../support/sim.ts";

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
  /** The query string, unsigned like the venues want; default `q=1`. */
  query?: string;
  /** Content-Type for a body; default application/json; `null` sends none, as ccxt does. */
  contentType?: string | null;
  /** The Accept header; default application/json (so errors come as JSON); `null` sends none. */
  accept?: string | null;
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
  const contentType = o.contentType === undefined ? "application/json" : o.contentType;
  if (body && contentType) headers.set("content-type", contentType);
  const accept = o.accept === undefined ? "application/json" : o.accept;
  if (accept !== null) headers.set("accept", accept);
  const url = `https://auth.sim.test${path}?${o.query ?? "q=1"}`;
  return fetch(url, { method, headers, body: body || undefined, redirect: o.redirect });
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

  /** The one body each venue answers every authentication refusal with. */
  const UNAUTHORIZED = { title: "io.javalin.http.UnauthorizedResponse: Unauthorized", status: 401 };

  it("refuses a wrong signature, key or passphrase, an expired, future or decimal timestamp, all with one generic body", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const now = Math.round(Date.now() / 1000);
    const CDE_UNAUTHORIZED = { message: "Unauthorized" };
    const cases: [string, Promise<Response>, number, unknown][] = [
      ["signature", send("intx", { secret: btoa("some other secret") }), 401, UNAUTHORIZED],
      [
        "body not signed",
        send("intx", { sign: referenceSignature(DEV.INTX_API_SECRET, String(now), "GET", "/api/v1/portfolios", "x") }),
        401,
        UNAUTHORIZED,
      ],
      ["key", send("intx", { key: "someone-else" }), 401, UNAUTHORIZED],
      ["passphrase", send("intx", { passphrase: "guess" }), 401, UNAUTHORIZED],
      ["expired (INTX)", send("intx", { timestamp: String(now - 7) }), 401, UNAUTHORIZED],
      ["future (INTX)", send("intx", { timestamp: String(now + 7) }), 401, UNAUTHORIZED],
      ["expired (CDE)", send("cde", { timestamp: String(now - 7) }), 400, CDE_UNAUTHORIZED],
      ["signature (CDE)", send("cde", { secret: btoa("some other secret") }), 401, CDE_UNAUTHORIZED],
      ["decimal", send("intx", { timestamp: `${now}.5` }), 401, UNAUTHORIZED],
      ["missing", send("intx", { timestamp: "" }), 401, UNAUTHORIZED],
    ];
    for (const [what, pending, status, body] of cases) {
      const r = await pending;
      expect([what, r.status, await r.json()]).toEqual([what, status, body]);
    }
    const state = await simControl();
    expect(state.effects.accepted).toBe(0);
    expect(state.effects.rejected).toEqual({
      signature: 3,
      key: 1,
      passphrase: 1,
      timestamp_window: 3,
      timestamp_format: 1,
      missing_headers: 1,
    });
  });

  it("timestamp_body: the timestamp refusal alone takes the legacy or v2 words; timestamp_status its status", async () => {
    const state = await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    expect([state.timestamp_body, state.timestamp_status]).toEqual(["generic", { intx: 401, cde: 400 }]);
    const stale = () => String(Math.round(Date.now() / 1000) - 7);
    const v2 = { errors: [{ id: "authentication_error", message: "request timestamp expired" }] };
    for (const [body, intx, cde] of [
      ["expired", { message: "request timestamp expired" }, { message: "request timestamp expired" }],
      ["v2", v2, v2],
      ["generic", UNAUTHORIZED, { message: "Unauthorized" }],
    ] as const) {
      expect((await simControl({ timestamp_body: body })).timestamp_body).toBe(body);
      const i = await send("intx", { timestamp: stale() });
      const c = await send("cde", { timestamp: stale() });
      expect([body, i.status, await i.json(), c.status, await c.json()]).toEqual([body, 401, intx, 400, cde]);
      // Only the timestamp refusal: a bad signature keeps the generic body.
      const sig = await send("intx", { secret: btoa("wrong") });
      expect([body, sig.status, await sig.json()]).toEqual([body, 401, UNAUTHORIZED]);
    }
    await simControl({ timestamp_body: "expired", timestamp_status: { intx: 400 } });
    const plain = await send("intx", { timestamp: stale(), accept: null });
    expect([plain.status, plain.headers.get("content-type"), await plain.text()]).toEqual([
      400,
      "text/plain",
      "request timestamp expired",
    ]);
    expect((await simControl({ reset: true })).timestamp_body).toBe("generic");
  });

  it("errors are plain text unless the request's Accept names JSON; successes stay JSON", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    const plain = async (r: Response) => [r.status, r.headers.get("content-type"), await r.text()];
    const json = async (r: Response) => [r.status, r.headers.get("content-type"), await r.json()];
    // Auth refusals, both venues: no Accept, */*, text/html, application/jsonx.
    for (const accept of [null, "*/*", "text/html, */*;q=0.8", "application/jsonx"]) {
      expect([accept, ...(await plain(await send("intx", { key: "nobody", accept })))]).toEqual([
        accept,
        401,
        "text/plain",
        "Unauthorized",
      ]);
      expect([accept, ...(await plain(await send("cde", { key: "nobody", accept })))]).toEqual([
        accept,
        401,
        "text/plain",
        "Unauthorized",
      ]);
    }
    // Accept naming JSON, alone, in a list, with parameters, or as application/*+json: JSON.
    for (const accept of ["application/json", "text/html, Application/JSON;q=0.9", "application/problem+json"]) {
      expect([accept, ...(await json(await send("intx", { key: "nobody", accept })))]).toEqual([
        accept,
        401,
        "application/json",
        UNAUTHORIZED,
      ]);
    }
    // Business errors: a Javalin 404 and 400, a CDE 400, an unknown path.
    const missing = await send("intx", {
      path: "/api/v1/orders/nope-1-0",
      query: "portfolio=1ai4ubgb-1-0",
      accept: null,
    });
    expect(await plain(missing)).toEqual([404, "text/plain", "Order not found"]);
    const noPortfolio = await send("intx", { path: "/api/v1/orders/nope-1-0", query: "", accept: null });
    expect(await plain(noPortfolio)).toEqual([400, "text/plain", "portfolio is a required field"]);
    const symbol = await send("cde", { path: "/rest/funding-rate", query: "symbol=NOPE", accept: null });
    expect(await plain(symbol)).toEqual([400, "text/plain", "Invalid symbol"]);
    expect(await plain(await send("intx", { path: "/api/v1/nowhere", accept: null }))).toEqual([
      404,
      "text/plain",
      "Not Found",
    ]);
    // skewguard's unsigned clock probe is refused like any unsigned request: 401, in plain text.
    for (const path of ["/api/v1/", "/rest/"]) {
      const probe = await fetch(`https://probe.sim.test${path}`);
      expect([path, ...(await plain(probe))]).toEqual([path, 401, "text/plain", "Unauthorized"]);
    }
    expect((await simControl()).effects.probes).toBe(2);
    // A success stays JSON whatever the Accept.
    const ok = await send("intx", { accept: "text/plain" });
    expect([ok.status, ok.headers.get("content-type")]).toEqual([200, "application/json"]);
    await ok.body?.cancel();
    // A 5xx fault is a front, not the venue: JSON either way.
    await simControl({ fault: { kind: "5xx" } });
    expect(await json(await send("intx", { accept: null }))).toEqual([
      503,
      "application/json",
      { message: "Service Unavailable" },
    ]);
  });

  it("client_order_id: the four INTX forms pass, anything else is 400 Invalid client_order_id, on create and modify", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0], intx_rate_limit: null });
    const good = [
      "!~ascii#$%&()*+,./", // 18 printable ASCII
      "abcdefghijklmnopqrs-", // 20 of letters, digits and dash
      "ABCDEFGHIJ-0123456789".slice(1), // 20, upper case
      "1234567890abcdef1234567890abcde", // 31 hex, no leading 0
      "f".repeat(31),
      "0b7c3e0a-4f2d-4c8b-9a1e-5d6f7a8b9c0d", // a lowercase UUID
    ];
    const bad = [
      "nfqkvdjp-1a2b3c4d", // 17: what ccxt generates
      "a".repeat(19),
      "short-1",
      "abcdefghijklmnopq r", // 19 with a space
      "abcdefghijklmnopq rs", // 20 with a space
      "abcdefghijklmnopqrs_", // 20 with an underscore
      "abcdefghijklmnopqrst1", // 21
      "ascii with space!!", // 18 with spaces
      "é".repeat(18), // 18 non-ASCII
      "0234567890abcdef1234567890abcde", // 31 hex with a leading 0
      "1234567890ABCDEF1234567890ABCDE", // 31 upper-case hex
      "1234567890abcdef1234567890abcdeg", // 32
      "0B7C3E0A-4F2D-4C8B-9A1E-5D6F7A8B9C0D", // an upper-case UUID
      "0b7c3e0a4f2d4c8b9a1e5d6f7a8b9c0d", // a UUID without hyphens
    ];
    for (const id of good) {
      const r = await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000));
      expect([id, r.status, (r.json as Json).client_order_id]).toEqual([id, 200, id]);
    }
    for (const id of bad) {
      expect([id, await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000))]).toEqual([
        id,
        javalin(400, "Invalid client_order_id"),
      ]);
    }
    const resting = (await intx("GET", "/api/v1/orders", { portfolio: PF })).json as { results: Json[] };
    const id = resting.results[0]?.order_id as string;
    for (const newId of bad) {
      const edit = { portfolio: PF, price: "60100", client_order_id: newId };
      expect([newId, await intx("PUT", `/api/v1/orders/${id}`, edit)]).toEqual([
        newId,
        javalin(400, "Invalid client_order_id"),
      ]);
    }
    const edited = await intx("PUT", `/api/v1/orders/${id}`, {
      portfolio: PF,
      price: "60100",
      client_order_id: "e".repeat(18),
    });
    expect(edited.json).toMatchObject({ client_order_id: "e".repeat(18), event_type: "REPLACED" });
    expect((await simControl()).effects).toMatchObject({ orders_placed: good.length, orders_modified: 1 });
  });

  it("client_order_id_lengths up_to: the three lengths are maximums (ccxt's 17), the UUID form unchanged", async () => {
    await simControl({ reset: true, skew_ms: 0, client_order_id_lengths: "up_to", intx_rate_limit: null });
    const good = ["nfqkvdjp-1a2b3c4d", "ccxt", "short-1", "a".repeat(19), "1", "abc1"];
    const bad = ["abcdefghijklmnopqrst1", "ascii with space", "é", "0B7C3E0A-4F2D-4C8B-9A1E-5D6F7A8B9C0D", ""];
    for (const id of good) {
      const r = await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000));
      expect([id, r.status]).toEqual([id, 200]);
    }
    for (const id of bad) {
      const r = await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000));
      expect([id, r.status]).toEqual([id, 400]);
    }
    expect((await simControl({ reset: true })).client_order_id_lengths).toBe("exact");
  });

  it("duplicate_scope open (default): an id is refused while its order is open, free again once it is done", async () => {
    const state = await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    expect(state.duplicate_scope).toBe("open");
    const id = "dup-1-00000000000000";
    const resting = await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000));
    expect(resting.json).toMatchObject({ client_order_id: id, order_status: "WORKING" });
    expect(await intx("POST", "/api/v1/orders", limit(id, "BUY", "BTC-PERP", "0.01", 60000))).toEqual(
      javalin(400, `Order rejected (DUPLICATE_CLIENT_ORDER_ID ${id})`),
    );
    // A modify may not take an open order's id either.
    const other = (
      await intx("POST", "/api/v1/orders", limit("other-1-000000000000", "BUY", "BTC-PERP", "0.01", 60000))
    ).json as Json;
    expect(
      await intx("PUT", `/api/v1/orders/${other.order_id}`, { portfolio: PF, price: "1", client_order_id: id }),
    ).toEqual(javalin(400, `Invalid replace order request (DUPLICATE_CLIENT_ORDER_ID ${id})`));
    // Cancelled: the id is free, and places a new order.
    await intx("DELETE", `/api/v1/orders/${(resting.json as Json).order_id}`, { portfolio: PF });
    const again = await intx("POST", "/api/v1/orders", { ...JSON.parse(ORDER(id)), portfolio: PF });
    expect(again.json).toMatchObject({ client_order_id: id, order_status: "DONE", event_type: "TRADE" });
    expect((again.json as Json).order_id).not.toBe((resting.json as Json).order_id);
    // Filled: free again.
    const third = await intx("POST", "/api/v1/orders", { ...JSON.parse(ORDER(id)), portfolio: PF });
    expect(third.json).toMatchObject({ client_order_id: id, event_type: "TRADE" });
    expect((await simControl()).effects.orders_placed).toBe(4);
  });

  it("duplicate_scope ever: any client_order_id the account ever used is refused the way INTX does, and counts one order", async () => {
    await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0], duplicate_scope: "ever" });
    expect((await simControl()).duplicate_scope).toBe("ever");
    const body = JSON.stringify({
      client_order_id: "dup-1-00000000000000",
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
      title: "io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID dup-1-00000000000000)",
      status: 400,
    });
    expect((await simControl()).effects.orders_placed).toBe(1);
    expect((await simControl({ reset: true })).duplicate_scope).toBe("open");
  });

  it("answers 429 past 40 requests a second per INTX key, in Javalin's words, with Retry-After only if retry_after", async () => {
    const state = await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] });
    expect(state.retry_after).toBe(false);
    const statuses = await Promise.all(Array.from({ length: 45 }, () => send("intx").then((r) => r.status)));
    // 40 in any rolling second: exactly 40 pass when the 45 arrived within one second, which a busy machine may
    // stretch; then at least 40, and any beyond arrived a second after an earlier one.
    const accepted = statuses.filter((s) => s === 200).length;
    if (spread((await simControl()).effects.arrivals[DEV.INTX_API_KEY]) < 1000) expect(accepted).toBe(40);
    else expect(accepted).toBeGreaterThanOrEqual(40);
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    const limited = await send("intx");
    expect([limited.status, limited.headers.get("retry-after"), await limited.json()]).toEqual([
      429,
      null,
      {
        title: "io.javalin.http.HttpResponseException: Rate limit exceeded - Server allows 100 requests per second",
        status: 429,
      },
    ]);
    // Two requests back to back at a limit of 1: the second is refused.
    const overLimit = async (o: Signed, control: Json = {}) => {
      await simControl({ reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0], intx_rate_limit: 1, ...control });
      await (await send("intx")).body?.cancel();
      return send("intx", o);
    };
    const text = await overLimit({ accept: null });
    expect([text.status, text.headers.get("content-type"), await text.text()]).toEqual([
      429,
      "text/plain",
      "Rate limit exceeded - Server allows 100 requests per second",
    ]);
    const withHeader = await overLimit({}, { retry_after: true });
    expect([withHeader.status, withHeader.headers.get("retry-after")]).toEqual([429, "1"]);
    await withHeader.body?.cancel();
    expect((await simControl()).retry_after).toBe(true);
    expect((await simControl({ reset: true })).retry_after).toBe(false);
  });
});

const QUIET = { reset: true, skew_ms: 0, up_ms: [0, 0], down_ms: [0, 0] };

/** How far apart, in ms, the first and last of a key's arrivals at the simulator were. */
const spread = (arrivals: number[] | undefined) =>
  arrivals && arrivals.length > 0 ? Math.max(...arrivals) - Math.min(...arrivals) : 0;

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
    const body = ORDER("reflect-1-0000000000");
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
    const r = await send("intx", {
      method: "POST",
      path: "/api/v1/orders",
      body: ORDER("r-1-0000000000000000"),
      redirect: "manual",
    });
    expect(r.status).toBe(307);
    expect(r.headers.get("location")).toBe("http://redirect-target.sim/_sim/captured/api/v1/orders?q=1");
    const set = await simControl({ fault: { kind: "redirect", count: 2, location: "https://elsewhere.test/landing" } });
    expect(set.fault).toEqual({
      kind: "redirect",
      remaining: 2,
      slowMs: 15_000,
      location: "https://elsewhere.test/landing",
    });
    for (const id of ["r-2-0000000000000000", "r-3-0000000000000000"]) {
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
    const body = ORDER("followed-1-000000000");
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

describe("simulator: the alert receiver, /_sim/alerts", () => {
  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url, { method: "POST", headers, body });

  it("records each POST, on any host and sub-path, with its Standard Webhooks headers and raw body, and answers 200", async () => {
    await simControl(QUIET);
    const before = Date.now();
    const body = '{"type":"test","n":1}';
    const r = await post("https://sink.sim.test/_sim/alerts/x", body, {
      "content-type": "application/json",
      "webhook-id": "msg_1",
      "webhook-timestamp": "1793614507",
      "webhook-signature": "v1,c2lnbmF0dXJl",
      "x-other": "not recorded",
    });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
    const plain = await post("http://other.test/_sim/alerts", "plain text");
    expect(plain.status).toBe(200);
    await plain.body?.cancel();
    const state = await simControl();
    expect(state.alerts).toEqual([
      {
        at: expect.any(String),
        path: "/_sim/alerts/x",
        content_type: "application/json",
        headers: { "webhook-id": "msg_1", "webhook-timestamp": "1793614507", "webhook-signature": "v1,c2lnbmF0dXJl" },
        body,
        body_bytes: body.length,
        answered: 200,
      },
      {
        at: expect.any(String),
        path: "/_sim/alerts",
        content_type: "text/plain;charset=UTF-8",
        headers: {},
        body: "plain text",
        body_bytes: 10,
        answered: 200,
      },
    ]);
    const at = Date.parse(state.alerts[0]?.at ?? "");
    expect(state.alerts[0]?.at).toBe(new Date(at).toISOString());
    // The real clock, not the venue's skewed one.
    expect(at).toBeGreaterThanOrEqual(before - 1_000);
    expect(at).toBeLessThanOrEqual(Date.now() + 1_000);
    expect(state.alerts_fault).toBeNull();
    expect(state.effects.requests).toBe(0);
    expect(state.captured).toEqual([]);
  });

  it("keeps the first 16 KiB of a body, the last 100 entries oldest first, and takes POST only", async () => {
    await simControl(QUIET);
    const big = "é".repeat(10_000); // 20000 bytes (2 per "é"): the cut at 16384 falls between two characters
    await (await post("https://sink.sim.test/_sim/alerts/big", big)).body?.cancel();
    const [entry] = (await simControl()).alerts;
    expect(entry?.body_bytes).toBe(20_000);
    expect(entry?.body).toBe("é".repeat(8_192));
    const odd = `a${big}`; // the cut at 16384 splits an "é": it is dropped whole
    await (await post("https://sink.sim.test/_sim/alerts/odd", odd)).body?.cancel();
    expect((await simControl()).alerts[1]?.body).toBe(`a${"é".repeat(8_191)}`);

    for (let i = 0; i < 105; i++) await (await post(`https://sink.sim.test/_sim/alerts/${i}`, "{}")).body?.cancel();
    const { alerts } = await simControl();
    expect(alerts).toHaveLength(100);
    expect([alerts[0]?.path, alerts[99]?.path]).toEqual(["/_sim/alerts/5", "/_sim/alerts/104"]);

    await simControl(QUIET);
    const get = await fetch("https://sink.sim.test/_sim/alerts/x");
    expect([get.status, get.headers.get("allow")]).toEqual([405, "POST"]);
    await get.body?.cancel();
    const near = await post("https://sink.sim.test/_sim/alertsx", "{}");
    expect(near.status).toBe(404);
    await near.body?.cancel();
    expect((await simControl()).alerts).toEqual([]);
  });

  it("alerts_fault down: 503, still recorded with answered 503; null restores 200; reset clears the log and the fault", async () => {
    await simControl(QUIET);
    const down = await simControl({ alerts_fault: "down" });
    expect(down.alerts_fault).toBe("down");
    const r = await post("https://sink.sim.test/_sim/alerts/x", '{"n":1}');
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ ok: false });
    // A venue fault is a different thing: the receiver ignores it, and alerts_fault leaves venue paths alone.
    expect((await simControl()).fault).toBeNull();

    const restored = await simControl({ alerts_fault: null });
    expect(restored.alerts_fault).toBeNull();
    const ok = await post("https://sink.sim.test/_sim/alerts/x", '{"n":2}');
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    const state = await simControl();
    expect(state.alerts.map((a) => [a.path, a.body, a.answered])).toEqual([
      ["/_sim/alerts/x", '{"n":1}', 503],
      ["/_sim/alerts/x", '{"n":2}', 200],
    ]);

    expect((await simControl({ alerts_fault: "slow" })).alerts_fault).toBe("slow");
    const reset = await simControl({ reset: true });
    expect([reset.alerts, reset.alerts_fault]).toEqual([[], null]);
    const again = await post("https://sink.sim.test/_sim/alerts/x", "{}");
    expect(again.status).toBe(200);
    await again.body?.cancel();
  });

  it("alerts_fault slow: answers 200 after 5 s, recorded on arrival", async () => {
    await simControl({ ...QUIET, alerts_fault: "slow" });
    const started = Date.now();
    const pending = post("https://sink.sim.test/_sim/alerts/slow", "{}");
    await new Promise((r) => setTimeout(r, 200));
    expect((await simControl()).alerts.map((a) => [a.path, a.answered])).toEqual([["/_sim/alerts/slow", 200]]);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ ok: true });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_900);
    await simControl({ reset: true });
  }, 15_000);
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
    ["a zero rate limit", '{"intx_rate_limit": 0}', "intx_rate_limit must be a whole number"],
    ["a fractional rate limit", '{"intx_rate_limit": 1.5}', "intx_rate_limit must be a whole number"],
    ["a rate limit as text", '{"intx_rate_limit": "5"}', "intx_rate_limit must be a whole number"],
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
    ["an unknown alerts_fault", '{"alerts_fault": "flaky"}', "alerts_fault must be"],
    ["an alerts_fault that is an object", '{"alerts_fault": {"kind": "down"}}', "alerts_fault must be"],
    [
      "an unknown timestamp_body",
      '{"timestamp_body": "v3"}',
      'timestamp_body must be one of "generic", "expired", "v2"',
    ],
    ["a null timestamp_body", '{"timestamp_body": null}', "timestamp_body must be one of"],
    ["a retry_after as text", '{"retry_after": "true"}', "retry_after must be true or false"],
    ["a retry_after as a number", '{"retry_after": 1}', "retry_after must be true or false"],
    ["an unknown duplicate_scope", '{"duplicate_scope": "day"}', 'duplicate_scope must be one of "open", "ever"'],
    ["a null duplicate_scope", '{"duplicate_scope": null}', "duplicate_scope must be one of"],
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

/** The simulator's known CDE uuids (docs/simulator.md, "The kill-switch lock"). */
const FIRM = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
const FCM = "8d0e4f6a-1b2c-4d3e-9f5a-6b7c8d9e0f02";
const TRADING_USER = "c4a1e7b9-5d2f-4e6a-8b3c-9d0e1f2a3b03";

describe("simulator: the kill-switch lock is per venue", () => {
  const cde = async (path: string, body: unknown) => {
    const r = await send("cde", { method: "POST", path, body: typeof body === "string" ? body : JSON.stringify(body) });
    return { status: r.status, json: await r.json() };
  };

  it("a CDE kill switch locks CDE only: an INTX order still goes through; unlock and reset lift it", async () => {
    await simControl(QUIET);
    expect((await simControl()).trading_locked).toEqual({ intx: false, cde: false });
    const killSwitch = { only_cancel_no_trading_lock: false, firm_uuid: FIRM };
    expect(await cde("/rest/kill-switch", killSwitch)).toEqual({
      status: 200,
      json: { num_users_affected: 2, num_orders_canceled: 0 },
    });
    expect((await simControl()).trading_locked).toEqual({ intx: false, cde: true });
    const order = await send("intx", { method: "POST", path: "/api/v1/orders", body: ORDER("after-cde-kill-00000") });
    expect(order.status).toBe(200);
    expect(await order.json()).toMatchObject({ client_order_id: "after-cde-kill-00000", exec_qty: "0.01" });
    expect(await cde("/rest/unlock-trading", { firm_uuid: FIRM })).toEqual({
      status: 200,
      json: { num_users_affected: 2 },
    });
    const state = await simControl();
    expect(state.trading_locked).toEqual({ intx: false, cde: false });
    expect(state.effects).toMatchObject({ kill_switches: 1, unlocks: 1, orders_placed: 1 });
    await cde("/rest/kill-switch", killSwitch);
    expect((await simControl()).trading_locked.cde).toBe(true);
    expect((await simControl({ reset: true })).trading_locked).toEqual({ intx: false, cde: false });
  });

  it("kill-switch and unlock take exactly one known uuid; only_cancel_no_trading_lock true cancels without locking", async () => {
    await simControl(QUIET);
    // Each uuid field: the users it affects; true cancels, counted, and leaves trading unlocked.
    for (const [field, uuid, users] of [
      ["trading_user_uuid", TRADING_USER, 1],
      ["fcm_uuid", FCM, 2],
      ["firm_uuid", FIRM.toUpperCase(), 2],
    ] as const) {
      expect([field, await cde("/rest/kill-switch", { only_cancel_no_trading_lock: true, [field]: uuid })]).toEqual([
        field,
        { status: 200, json: { num_users_affected: users, num_orders_canceled: 0 } },
      ]);
      expect((await simControl()).trading_locked.cde).toBe(false);
    }
    let state = await simControl();
    expect(state.effects).toMatchObject({ kill_switches: 3, unlocks: 0 });
    expect(state.accounts["cde:default"]?.kill_switches).toBe(3);
    expect(
      await cde("/rest/kill-switch", { only_cancel_no_trading_lock: false, trading_user_uuid: TRADING_USER }),
    ).toEqual({
      status: 200,
      json: { num_users_affected: 1, num_orders_canceled: 0 },
    });
    expect((await simControl()).trading_locked.cde).toBe(true);
    expect(await cde("/rest/unlock-trading", { trading_user_uuid: TRADING_USER })).toEqual({
      status: 200,
      json: { num_users_affected: 1 },
    });

    const refused: [string, string, unknown, number, string][] = [
      ["kill-switch", "not JSON", "nope", 400, "Invalid request body"],
      ["kill-switch", "an array", [FIRM], 400, "Invalid request body"],
      [
        "kill-switch",
        "no flag",
        { firm_uuid: FIRM },
        400,
        "only_cancel_no_trading_lock is required and must be true or false",
      ],
      [
        "kill-switch",
        "a flag as text",
        { only_cancel_no_trading_lock: "false", firm_uuid: FIRM },
        400,
        "only_cancel_no_trading_lock is required and must be true or false",
      ],
      ["kill-switch", "no uuid", { only_cancel_no_trading_lock: false }, 400, "Must only include one uuid"],
      [
        "kill-switch",
        "two uuids",
        { only_cancel_no_trading_lock: false, firm_uuid: FIRM, fcm_uuid: FCM },
        400,
        "Must only include one uuid",
      ],
      [
        "kill-switch",
        "a malformed uuid",
        { only_cancel_no_trading_lock: false, firm_uuid: "firm-1" },
        400,
        "Invalid firm_uuid",
      ],
      [
        "kill-switch",
        "a uuid as a number",
        { only_cancel_no_trading_lock: true, fcm_uuid: 7 },
        400,
        "Invalid fcm_uuid",
      ],
      [
        "kill-switch",
        "an unknown firm",
        { only_cancel_no_trading_lock: false, firm_uuid: "00000000-0000-4000-8000-000000000000" },
        404,
        "Firm not found",
      ],
      [
        "kill-switch",
        "the firm's uuid as an FCM",
        { only_cancel_no_trading_lock: false, fcm_uuid: FIRM },
        404,
        "FCM not found",
      ],
      [
        "kill-switch",
        "an unknown trading user",
        { only_cancel_no_trading_lock: false, trading_user_uuid: FCM },
        404,
        "Trading user not found",
      ],
      ["unlock-trading", "an empty body", "", 400, "Invalid request body"],
      ["unlock-trading", "no uuid", {}, 400, "Must only include one uuid"],
      [
        "unlock-trading",
        "two uuids",
        { firm_uuid: FIRM, trading_user_uuid: TRADING_USER },
        400,
        "Must only include one uuid",
      ],
      ["unlock-trading", "a malformed uuid", { trading_user_uuid: "me" }, 400, "Invalid trading_user_uuid"],
      ["unlock-trading", "an unknown FCM", { fcm_uuid: TRADING_USER }, 404, "FCM not found"],
    ];
    await cde("/rest/kill-switch", { only_cancel_no_trading_lock: false, firm_uuid: FIRM });
    for (const [route, what, body, status, message] of refused) {
      expect([route, what, await cde(`/rest/${route}`, body)]).toEqual([route, what, { status, json: { message } }]);
    }
    state = await simControl();
    // None of the refusals changed the lock or a counter.
    expect(state.trading_locked.cde).toBe(true);
    expect(state.effects).toMatchObject({ kill_switches: 5, unlocks: 1 });
  });
});

const PF = "1ai4ubgb-1-0";
const PF_UUID = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
const BTC_PERP = { instrument_id: "114jqr89-0-0", instrument_uuid: "b3469e0b-222c-4f8a-9f68-1f9e44d7e5e0" };
type Json = Record<string, unknown>;

/**
 * A signed INTX call made the way ccxt's coinbaseinternational makes it: the parameters as a query on GET and
 * DELETE, as a JSON body on POST, PUT and DELETE (a DELETE carries both), and never a content-type. `as` signs it
 * with another account's credentials (default: the account `default`).
 */
async function intx(
  method: string,
  path: string,
  params: Json = {},
  as: Signed = {},
): Promise<{ status: number; json: unknown }> {
  const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
  const body = method === "GET" || Object.keys(params).length === 0 ? "" : JSON.stringify(params);
  const inQuery = method === "GET" || method === "DELETE";
  const r = await send("intx", { ...as, method, path, body, query: inQuery ? query : "", contentType: null });
  return { status: r.status, json: await r.json() };
}

const javalin = (status: number, text: string) => {
  const kind = { 400: "BadRequestResponse", 403: "ForbiddenResponse", 404: "NotFoundResponse" }[status];
  return { status, json: { title: `io.javalin.http.${kind}: ${text}`, status } };
};

/** ccxt's createOrder body for a LIMIT GTC order: size a string, price the number it was given. */
const limit = (client_order_id: string, side: string, instrument: string, size: string, price: number) => ({
  client_order_id,
  side,
  instrument,
  size,
  type: "LIMIT",
  price,
  portfolio: PF,
  tif: "GTC",
});

describe("simulator: INTX public routes, which ccxt calls unsigned", () => {
  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`https://public.sim.test${path}`, { headers: { accept: "application/json", ...headers } });

  it("assets, instruments and quotes answer without CB-ACCESS headers, and ignore wrong ones", async () => {
    await simControl(QUIET);
    const usdc = {
      asset_id: "1",
      asset_uuid: "2b92315d-eab7-5bef-84fa-089a131333f5",
      asset_name: "USDC",
      status: "ACTIVE",
      collateral_weight: 1,
      supported_networks_enabled: true,
    };
    const assets = (await (await get("/api/v1/assets")).json()) as Json[];
    expect(assets.map((a) => a.asset_name)).toEqual(["USDC", "BTC", "ETH", "SOL"]);
    expect(assets[0]).toEqual(usdc);
    expect(await (await get("/api/v1/assets/USDC")).json()).toEqual(usdc);

    const instruments = (await (await get("/api/v1/instruments")).json()) as Json[];
    expect(instruments.map((i) => i.symbol)).toEqual(["BTC-PERP", "ETH-PERP", "SOL-PERP"]);
    const btc = {
      ...BTC_PERP,
      symbol: "BTC-PERP",
      type: "PERP",
      base_asset_name: "BTC",
      quote_asset_id: "1",
      quote_asset_name: "USDC",
      base_increment: "0.0001",
      quote_increment: "0.1",
      base_imf: "0.1",
      position_limit_qty: "800",
      min_notional_value: "10",
      trading_state: "TRADING",
      quote: {
        best_bid_price: "64000",
        best_bid_size: "1.25",
        best_ask_price: "64000.1",
        best_ask_size: "0.8",
        trade_price: "64000.1",
        trade_qty: "0.01",
        index_price: "63998.5",
        mark_price: "64000",
        settlement_price: "63990",
        limit_up: "67200",
        limit_down: "60800",
        predicted_funding: "0.000012",
        timestamp: expect.any(String),
      },
    };
    expect(instruments[0]).toMatchObject(btc);
    // By symbol, instrument_id or instrument_uuid; a wrong signature is not even looked at.
    const wrong = {
      "cb-access-key": "nobody",
      "cb-access-sign": "nonsense",
      "cb-access-timestamp": "1",
      "cb-access-passphrase": "guess",
    };
    for (const ref of ["BTC-PERP", BTC_PERP.instrument_id, BTC_PERP.instrument_uuid]) {
      const r = await get(`/api/v1/instruments/${ref}`, wrong);
      expect([ref, r.status, await r.json()]).toEqual([ref, 200, expect.objectContaining(btc)]);
    }
    const quote = (await (await get("/api/v1/instruments/ETH-PERP/quote")).json()) as Json;
    expect(quote).toMatchObject({ best_bid_price: "2490.8", best_ask_price: "2490.81", mark_price: "2490.8" });
    expect(Math.abs(Date.parse(quote.timestamp as string) - Date.now())).toBeLessThan(2_000);

    for (const [path, text] of [
      ["/api/v1/instruments/DOGE-PERP", "Instrument not found"],
      ["/api/v1/instruments/DOGE-PERP/quote", "Instrument not found"],
      ["/api/v1/assets/DOGE", "Asset not found"],
    ] as const) {
      const r = await get(path);
      expect({ status: r.status, json: await r.json() }).toEqual(javalin(404, text));
    }
    const state = await simControl();
    expect(state.effects).toMatchObject({ requests: 10, accepted: 10, rejected: {} });
  });

  it("a private route without a signature is 401, and so is a public path with another method", async () => {
    await simControl(QUIET);
    const unsigned: [string, string][] = [
      ["GET", "/api/v1/orders"],
      ["GET", "/api/v1/portfolios/fills"],
      ["GET", `/api/v1/portfolios/${PF}/balances`],
      ["DELETE", "/api/v1/orders/x-1-0"],
      ["POST", "/api/v1/instruments"],
    ];
    for (const [method, path] of unsigned) {
      // No Accept: INTX's refusal comes as plain text.
      const r = await fetch(`https://public.sim.test${path}`, { method });
      expect([path, r.status, r.headers.get("content-type"), await r.text()]).toEqual([
        path,
        401,
        "text/plain",
        "Unauthorized",
      ]);
    }
    expect((await simControl()).effects).toMatchObject({ accepted: 0, rejected: { missing_headers: 5 } });
  });
});

describe("simulator: INTX portfolios, orders and fills as ccxt reads them", () => {
  it("the default portfolio ccxt looks for, its balances and its positions", async () => {
    await simControl(QUIET);
    const portfolio = {
      portfolio_id: PF,
      portfolio_uuid: PF_UUID,
      name: "dev",
      user_uuid: "5c1f7a0e-2d5b-4c4e-9a51-1c0ffee0d001",
      maker_fee_rate: "0.0002",
      taker_fee_rate: "0.0004",
      trading_lock: false,
      borrow_disabled: false,
      is_lsp: false,
      is_default: true,
      cross_collateral_enabled: false,
    };
    expect(await intx("GET", "/api/v1/portfolios")).toEqual({ status: 200, json: [portfolio] });
    expect(await intx("GET", `/api/v1/portfolios/${PF_UUID}`)).toEqual({ status: 200, json: portfolio });
    expect(await intx("GET", `/api/v1/portfolios/${PF}/balances`)).toEqual({
      status: 200,
      json: [
        {
          asset_id: "1",
          asset_name: "USDC",
          asset_uuid: "2b92315d-eab7-5bef-84fa-089a131333f5",
          quantity: "100000",
          hold: "2500",
          hold_available_for_collateral: "0",
          transfer_hold: "0",
          collateral_value: "100000",
          max_withdraw_amount: "97500",
          loan: "0",
          loan_collateral_requirement: "0",
        },
      ],
    });
    const btc = {
      symbol: "BTC-PERP",
      ...BTC_PERP,
      vwap: "63759",
      net_size: "0.5",
      buy_order_size: "0",
      sell_order_size: "0",
      im_contribution: "3200",
      unrealized_pnl: "120.5",
      mark_price: "64000",
      entry_vwap: "63759",
    };
    expect(await intx("GET", `/api/v1/portfolios/${PF}/positions`)).toEqual({ status: 200, json: [btc] });
    expect(await intx("GET", `/api/v1/portfolios/${PF}/positions/BTC-PERP`)).toEqual({ status: 200, json: btc });
    expect((await intx("GET", `/api/v1/portfolios/${PF}/positions/ETH-PERP`)).json).toMatchObject({
      symbol: "ETH-PERP",
      net_size: "0",
      unrealized_pnl: "0",
    });
    expect(await intx("GET", `/api/v1/portfolios/${PF}/positions/DOGE-PERP`)).toEqual(
      javalin(404, "Instrument not found"),
    );
    for (const path of ["/api/v1/portfolios/nope-1-0", "/api/v1/portfolios/nope-1-0/positions"]) {
      expect(await intx("GET", path)).toEqual(javalin(404, "Portfolio not found"));
    }
  });

  it("an order's life: create, get, list, modify, cancel, cancel again (400), cancel all", async () => {
    await simControl(QUIET);
    const created = await intx(
      "POST",
      "/api/v1/orders",
      limit("nfqkvdjp-life-1-0000", "BUY", "BTC-PERP", "0.01", 60000),
    );
    expect(created.status).toBe(200);
    const order = created.json as Json;
    expect(order).toEqual({
      order_id: expect.stringMatching(/^[0-9a-f]{8}-1-0$/),
      client_order_id: "nfqkvdjp-life-1-0000",
      side: "BUY",
      ...BTC_PERP,
      symbol: "BTC-PERP",
      portfolio_id: PF,
      portfolio_uuid: PF_UUID,
      type: "LIMIT",
      price: "60000",
      size: "0.01",
      tif: "GTC",
      stp_mode: "BOTH",
      post_only: false,
      event_type: "NEW",
      event_time: order.submit_time,
      submit_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      order_status: "WORKING",
      leaves_qty: "0.01",
      exec_qty: "0",
      avg_price: "0",
      fee: "0",
    });
    const id = order.order_id as string;
    // fetchOrder; then fetchOpenOrders(symbol), which sends ccxt's unified symbol as the instrument.
    expect(await intx("GET", `/api/v1/orders/${id}`, { portfolio: PF })).toEqual({ status: 200, json: order });
    const open = { portfolio: PF, result_offset: 0, instrument: "BTC/USDC:USDC" };
    expect(await intx("GET", "/api/v1/orders", open)).toEqual({
      status: 200,
      json: { pagination: { result_limit: 25, result_offset: 0 }, results: [order] },
    });
    expect((await intx("GET", `/api/v1/portfolios/${PF}/positions/BTC-PERP`)).json).toMatchObject({
      net_size: "0.5",
      buy_order_size: "0.01",
    });

    // editOrder: size and price as strings, a client_order_id, and the clientOrderId ccxt leaves in the params.
    const edit = {
      portfolio: PF,
      size: "0.02",
      price: "60500",
      client_order_id: "life-2-0000000000000",
      clientOrderId: "life-2-0000000000000",
    };
    const modified = await intx("PUT", `/api/v1/orders/${id}`, edit);
    expect(modified).toEqual({
      status: 200,
      json: {
        ...order,
        client_order_id: "life-2-0000000000000",
        price: "60500",
        size: "0.02",
        leaves_qty: "0.02",
        event_type: "REPLACED",
        event_time: expect.any(String),
      },
    });
    // get-order takes the order_id only: the client_order_id is not an order's id there.
    expect(await intx("GET", "/api/v1/orders/life-2-0000000000000", { portfolio: PF })).toEqual(
      javalin(404, "Order not found"),
    );

    // cancelOrder: ?portfolio= and the same as a JSON body without a content-type.
    const cancelled = await intx("DELETE", `/api/v1/orders/${id}`, { portfolio: PF });
    expect(cancelled).toEqual({
      status: 200,
      json: {
        ...(modified.json as Json),
        order_status: "DONE",
        event_type: "CANCELED",
        event_time: expect.any(String),
      },
    });
    expect(await intx("DELETE", `/api/v1/orders/${id}`, { portfolio: PF })).toEqual(javalin(400, "Order already done"));
    expect(
      await intx("PUT", `/api/v1/orders/${id}`, { price: "61000", client_order_id: "life-3-0000000000000" }),
    ).toEqual(javalin(400, "Invalid replace order request (ORDER_DONE)"));
    for (const method of ["GET", "PUT", "DELETE"]) {
      const params = method === "PUT" ? { price: "1", client_order_id: "life-4-0000000000000" } : { portfolio: PF };
      expect(await intx(method, "/api/v1/orders/nope-1-0", params)).toEqual(javalin(404, "Order not found"));
    }
    expect((await intx("GET", `/api/v1/orders/${id}`, { portfolio: PF })).json).toMatchObject({
      order_status: "DONE",
      event_type: "CANCELED",
    });

    // cancelAllOrders: by instrument, then the rest of the portfolio, then nothing left.
    await intx("POST", "/api/v1/orders", limit("all-btc-000000000000", "BUY", "BTC-PERP", "0.01", 60000));
    await intx("POST", "/api/v1/orders", limit("all-eth-000000000000", "SELL", "ETH-PERP", "0.5", 2600));
    await intx("POST", "/api/v1/orders", limit("all-sol-000000000000", "BUY", "SOL-PERP", "3", 100));
    const names = (r: { json: unknown }) =>
      (r.json as Json[]).map((o) => [o.client_order_id, o.order_status, o.event_type]);
    const eth = await intx("DELETE", "/api/v1/orders", { portfolio: PF, instrument: "ETH-PERP" });
    expect([eth.status, names(eth)]).toEqual([200, [["all-eth-000000000000", "DONE", "CANCELED"]]]);
    const rest = await intx("DELETE", "/api/v1/orders", { portfolio: PF });
    expect(names(rest)).toEqual([
      ["all-btc-000000000000", "DONE", "CANCELED"],
      ["all-sol-000000000000", "DONE", "CANCELED"],
    ]);
    expect(await intx("DELETE", "/api/v1/orders", { portfolio: PF })).toEqual({ status: 200, json: [] });
    expect(await intx("DELETE", "/api/v1/orders")).toEqual(javalin(400, "portfolio is a required field"));
    expect(((await intx("GET", "/api/v1/orders", { portfolio: PF })).json as Json).results).toEqual([]);
    expect((await simControl()).effects).toMatchObject({ orders_placed: 4, orders_modified: 1, orders_cancelled: 4 });
  });

  it("a MARKET IOC order fills at once at the touch: DONE, not open, in both fills routes, and in the position", async () => {
    await simControl(QUIET);
    const market = {
      client_order_id: "mkt-1-00000000000000",
      side: "BUY",
      instrument: "BTC-PERP",
      size: "0.01",
      type: "MARKET",
    };
    const placed = await intx("POST", "/api/v1/orders", { ...market, portfolio: PF, tif: "IOC" });
    const order = placed.json as Json;
    expect(order).toMatchObject({
      order_status: "DONE",
      event_type: "TRADE",
      size: "0.01",
      exec_qty: "0.01",
      leaves_qty: "0",
      avg_price: "64000.1",
      fee: "0.2560004",
    });
    expect(order).not.toHaveProperty("price");
    const fill = {
      portfolio_id: PF,
      portfolio_uuid: PF_UUID,
      portfolio_name: "dev",
      fill_id: expect.stringMatching(/^[0-9a-f]{8}-1-\d+$/),
      exec_id: expect.stringMatching(/^\d+$/),
      order_id: order.order_id,
      ...BTC_PERP,
      symbol: "BTC-PERP",
      match_id: expect.stringMatching(/^\d+$/),
      fill_price: "64000.1",
      fill_qty: "0.01",
      client_id: "1ai4ubgb-1-1",
      client_order_id: "mkt-1-00000000000000",
      order_qty: "0.01",
      limit_price: "",
      total_filled: "0.01",
      filled_vwap: "64000.1",
      expire_time: "",
      stop_price: "",
      side: "BUY",
      tif: "IOC",
      stp_mode: "BOTH",
      flags: "",
      fee: "0.2560004",
      fee_asset: "USDC",
      order_status: "DONE",
      event_time: order.event_time,
    };
    const fills = { status: 200, json: { pagination: { result_limit: 25, result_offset: 0 }, results: [fill] } };
    // fetchMyTrades sends result_offset (and result_limit, time_from, ref_datetime when given).
    expect(await intx("GET", "/api/v1/portfolios/fills", { result_offset: 0 })).toEqual(fills);
    expect(await intx("GET", `/api/v1/portfolios/${PF}/fills`, { order_id: order.order_id })).toEqual(fills);
    const later = { time_from: new Date(Date.now() + 60_000).toISOString() };
    expect(((await intx("GET", "/api/v1/portfolios/fills", later)).json as Json).results).toEqual([]);
    expect(((await intx("GET", "/api/v1/orders", { portfolio: PF })).json as Json).results).toEqual([]);
    const position = (await intx("GET", `/api/v1/portfolios/${PF}/positions/BTC-PERP`)).json as Json;
    expect(position.net_size).toBe("0.51");
    expect(Number(position.entry_vwap)).toBeCloseTo((0.5 * 63759 + 0.01 * 64000.1) / 0.51, 6);

    // A LIMIT that crosses fills at the touch too; selling the whole position leaves it flat and unlisted.
    const sell = await intx("POST", "/api/v1/orders", limit("sell-all-00000000000", "SELL", "BTC-PERP", "0.51", 63000));
    expect(sell.json).toMatchObject({ order_status: "DONE", event_type: "TRADE", avg_price: "64000" });
    expect(await intx("GET", `/api/v1/portfolios/${PF}/positions`)).toEqual({ status: 200, json: [] });

    // A resting order modified across the quote fills; a non-crossing IOC is done unfilled; post_only rests.
    const resting = await intx("POST", "/api/v1/orders", limit("rest-1-0000000000000", "BUY", "ETH-PERP", "1", 2400));
    const crossed = await intx("PUT", `/api/v1/orders/${(resting.json as Json).order_id}`, {
      price: "2500",
      client_order_id: "rest-2-0000000000000",
      portfolio: PF,
    });
    expect(crossed.json).toMatchObject({ order_status: "DONE", event_type: "TRADE", avg_price: "2490.81" });
    const ioc = await intx("POST", "/api/v1/orders", {
      ...limit("ioc-1-00000000000000", "BUY", "ETH-PERP", "1", 2400),
      tif: "IOC",
    });
    expect(ioc.json).toMatchObject({ order_status: "DONE", event_type: "CANCELED", exec_qty: "0" });
    const postOnly = { ...limit("po-1-000000000000000", "BUY", "ETH-PERP", "1", 2400), post_only: true };
    expect((await intx("POST", "/api/v1/orders", postOnly)).json).toMatchObject({ order_status: "WORKING" });

    expect(
      await intx("POST", "/api/v1/orders", { ...market, client_order_id: "mkt-2-00000000000000", tif: "GTC" }),
    ).toEqual(javalin(400, "Order rejected (market orders must be IoC)"));
    expect(await intx("GET", "/api/v1/portfolios/fills", { result_limit: 101 })).toEqual(
      javalin(400, "invalid result_limit"),
    );
    const page = await intx("GET", "/api/v1/portfolios/fills", { result_limit: 1, result_offset: 1 });
    expect(page.json).toMatchObject({
      pagination: { result_limit: 1, result_offset: 1 },
      results: [{ client_order_id: "sell-all-00000000000" }],
    });
    expect((await simControl()).effects).toMatchObject({ orders_placed: 5, orders_modified: 1, orders_cancelled: 0 });
  });
});

describe("simulator: INTX order rules from the reference", () => {
  it("close_only: only an order that reduces the position is taken", async () => {
    await simControl(QUIET);
    // default starts 0.5 BTC-PERP long, flat in ETH-PERP.
    const closeOnly = (id: string, side: string, instrument: string, size: string) => ({
      ...JSON.parse(ORDER(id)),
      side,
      instrument,
      size,
      close_only: true,
      portfolio: PF,
    });
    const refusal = javalin(400, "Order rejected (CLOSE_ONLY order would not reduce the position)");
    expect(await intx("POST", "/api/v1/orders", closeOnly("co-buy-long-00000000", "BUY", "BTC-PERP", "0.1"))).toEqual(
      refusal,
    );
    expect(await intx("POST", "/api/v1/orders", closeOnly("co-too-big-000000000", "SELL", "BTC-PERP", "0.6"))).toEqual(
      refusal,
    );
    expect(await intx("POST", "/api/v1/orders", closeOnly("co-flat-000000000000", "SELL", "ETH-PERP", "0.1"))).toEqual(
      refusal,
    );
    expect(await intx("POST", "/api/v1/orders", closeOnly("co-flat-buy-00000000", "BUY", "ETH-PERP", "0.1"))).toEqual(
      refusal,
    );
    const reduce = await intx("POST", "/api/v1/orders", closeOnly("co-reduce-0000000000", "SELL", "BTC-PERP", "0.2"));
    expect(reduce.json).toMatchObject({ order_status: "DONE", event_type: "TRADE" });
    const all = await intx("POST", "/api/v1/orders", closeOnly("co-all-0000000000000", "SELL", "BTC-PERP", "0.3"));
    expect(all.json).toMatchObject({ order_status: "DONE", event_type: "TRADE" });
    // Now flat: even the side that reduced before is refused.
    expect(await intx("POST", "/api/v1/orders", closeOnly("co-after-00000000000", "SELL", "BTC-PERP", "0.1"))).toEqual(
      refusal,
    );
    // A short (alpha: 2 ETH-PERP short) takes a close_only BUY up to its size; close_only false is not checked.
    const alphaBuy = { ...closeOnly("co-alpha-00000000000", "BUY", "ETH-PERP", "2"), portfolio: PF_ALPHA };
    expect((await intx("POST", "/api/v1/orders", alphaBuy, ALPHA)).json).toMatchObject({ event_type: "TRADE" });
    const plain = { ...closeOnly("co-off-0000000000000", "BUY", "ETH-PERP", "1"), close_only: false };
    expect((await intx("POST", "/api/v1/orders", plain)).json).toMatchObject({ event_type: "TRADE" });
    expect((await simControl()).effects.orders_placed).toBe(4);
  });

  it("portfolio is required in modify's body and in the query of get-order, cancel and cancel-all", async () => {
    await simControl(QUIET);
    const placed = (
      await intx("POST", "/api/v1/orders", limit("pf-req-1-00000000000", "BUY", "BTC-PERP", "0.01", 60000))
    ).json as Json;
    const id = placed.order_id as string;
    const required = javalin(400, "portfolio is a required field");
    expect(await intx("GET", `/api/v1/orders/${id}`)).toEqual(required);
    expect(
      await intx("PUT", `/api/v1/orders/${id}`, { price: "60100", client_order_id: "pf-req-2-00000000000" }),
    ).toEqual(required);
    expect(await intx("DELETE", `/api/v1/orders/${id}`)).toEqual(required);
    expect(await intx("DELETE", "/api/v1/orders")).toEqual(required);
    // In a DELETE's body only, it is not in the query: still required.
    const bodyOnly = JSON.stringify({ portfolio: PF });
    for (const path of [`/api/v1/orders/${id}`, "/api/v1/orders"]) {
      const r = await send("intx", { method: "DELETE", path, body: bodyOnly, query: "", contentType: null });
      expect([path, r.status, await r.json()]).toEqual([path, 400, required.json]);
    }
    // An unknown portfolio is 404 as before.
    const unknown = javalin(404, "Portfolio not found");
    expect(await intx("GET", `/api/v1/orders/${id}`, { portfolio: "nope-1-0" })).toEqual(unknown);
    expect(
      await intx("PUT", `/api/v1/orders/${id}`, {
        portfolio: "nope-1-0",
        price: "1",
        client_order_id: "pf-req-3-00000000000",
      }),
    ).toEqual(unknown);
    expect(await intx("DELETE", `/api/v1/orders/${id}`, { portfolio: "nope-1-0" })).toEqual(unknown);
    expect(await intx("DELETE", "/api/v1/orders", { portfolio: "nope-1-0" })).toEqual(unknown);
    // Nothing happened to the order; by portfolio uuid it is found, modified, and cancelled by client_order_id.
    expect((await intx("GET", `/api/v1/orders/${id}`, { portfolio: PF_UUID })).json).toMatchObject({
      order_status: "WORKING",
      event_type: "NEW",
    });
    const edit = { portfolio: PF_UUID, price: "60100", client_order_id: "pf-req-4-00000000000" };
    expect((await intx("PUT", `/api/v1/orders/${id}`, edit)).json).toMatchObject({ event_type: "REPLACED" });
    expect((await intx("DELETE", "/api/v1/orders/pf-req-4-00000000000", { portfolio: PF })).json).toMatchObject({
      order_id: id,
      event_type: "CANCELED",
    });
  });

  it("a post_only LIMIT that would cross is answered REJECTED, does not rest, and frees its client_order_id", async () => {
    await simControl({ ...QUIET, duplicate_scope: "ever" });
    const id = "po-cross-00000000000";
    const rejected = await intx("POST", "/api/v1/orders", {
      ...limit(id, "BUY", "BTC-PERP", "0.01", 64000.1),
      post_only: true,
    });
    expect(rejected.status).toBe(200);
    const order = rejected.json as Json;
    expect(order).toMatchObject({
      client_order_id: id,
      post_only: true,
      order_status: "DONE",
      event_type: "REJECTED",
      leaves_qty: "0.01",
      exec_qty: "0",
    });
    const sell = await intx("POST", "/api/v1/orders", {
      ...limit("po-cross-sell-000000", "SELL", "BTC-PERP", "0.01", 64000),
      post_only: true,
    });
    expect(sell.json).toMatchObject({ event_type: "REJECTED" });
    expect(((await intx("GET", "/api/v1/orders", { portfolio: PF })).json as Json).results).toEqual([]);
    expect((await intx("GET", `/api/v1/orders/${order.order_id}`, { portfolio: PF })).json).toEqual(order);
    expect(((await intx("GET", "/api/v1/portfolios/fills")).json as Json).results).toEqual([]);
    // Freed even under duplicate_scope ever: the same id rests below the ask.
    const resting = await intx("POST", "/api/v1/orders", {
      ...limit(id, "BUY", "BTC-PERP", "0.01", 64000),
      post_only: true,
    });
    expect(resting.json).toMatchObject({ client_order_id: id, order_status: "WORKING", event_type: "NEW" });
    // A modify of a resting post_only order across the book is refused, and the order stays as it was.
    const restingId = (resting.json as Json).order_id;
    expect(
      await intx("PUT", `/api/v1/orders/${restingId}`, { portfolio: PF, price: "64000.1", client_order_id: id }),
    ).toEqual(javalin(400, "Invalid replace order request (POST_ONLY_WOULD_CROSS)"));
    expect((await intx("GET", `/api/v1/orders/${restingId}`, { portfolio: PF })).json).toMatchObject({
      price: "64000",
      order_status: "WORKING",
    });
    expect((await simControl()).effects).toMatchObject({ orders_placed: 1, orders_modified: 0 });
  });

  it("GET /api/v1/instruments/{instrument}/funding is public: hourly rates, newest first, paged", async () => {
    await simControl(QUIET);
    const r = await fetch("https://public.sim.test/api/v1/instruments/BTC-PERP/funding?result_limit=3", {
      headers: { accept: "application/json" },
    });
    expect(r.status).toBe(200);
    const json = (await r.json()) as { pagination: Json; results: Json[] };
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    expect(json.pagination).toEqual({ result_limit: 3, result_offset: 0 });
    expect(json.results).toHaveLength(3);
    expect(json.results[0]).toEqual({
      instrument_id: BTC_PERP.instrument_id,
      funding_rate: "0.000012",
      mark_price: "64000",
      event_time: expect.any(String),
    });
    const times = json.results.map((e) => Date.parse(e.event_time as string));
    expect(Math.abs((times[0] as number) - hour)).toBeLessThanOrEqual(3_600_000);
    expect(times.map((t) => t - (times[0] as number))).toEqual([0, -3_600_000, -7_200_000]);
    // By instrument_id too, and the ccxt way (result_offset); unknown: 404.
    const eth = await fetch(`https://public.sim.test/api/v1/instruments/149264164756389888/funding?result_offset=0`);
    expect(((await eth.json()) as { results: Json[] }).results).toHaveLength(25);
    const doge = await fetch("https://public.sim.test/api/v1/instruments/DOGE-PERP/funding");
    expect([doge.status, await doge.text()]).toEqual([404, "Instrument not found"]);
    expect((await simControl()).effects).toMatchObject({ requests: 3, accepted: 3, rejected: {} });
  });
});

/** The simulator's other accounts, as `send`/`intx` overrides. */
const ALPHA: Signed = {
  key: DEV_ALPHA.INTX_ALPHA_API_KEY,
  secret: DEV_ALPHA.INTX_ALPHA_API_SECRET,
  passphrase: DEV_ALPHA.INTX_ALPHA_API_PASSPHRASE,
};
const BETA: Signed = {
  key: DEV_BETA.INTX_BETA_API_KEY,
  secret: DEV_BETA.INTX_BETA_API_SECRET,
  passphrase: DEV_BETA.INTX_BETA_API_PASSPHRASE,
};
const CDE_ALPHA: Signed = {
  key: DEV_ALPHA.CDE_ALPHA_API_KEY,
  secret: DEV_ALPHA.CDE_ALPHA_API_SECRET,
  passphrase: DEV_ALPHA.CDE_ALPHA_API_PASSPHRASE,
};
const PF_ALPHA = DEV_PORTFOLIOS.alpha;
const PF_BETA = DEV_PORTFOLIOS.beta;

/** One `accounts` entry of /_sim/control with every counter at zero and no order logged. */
const idle = (key: string) => ({
  key,
  requests: 0,
  orders_placed: 0,
  orders_modified: 0,
  kill_switches: 0,
  orders: [],
});

/** `accounts` of /_sim/control with every counter at zero. */
const idleAccounts = () => ({
  "intx:default": idle(DEV.INTX_API_KEY),
  "intx:alpha": idle(DEV_ALPHA.INTX_ALPHA_API_KEY),
  "intx:beta": idle(DEV_BETA.INTX_BETA_API_KEY),
  "cde:default": idle(DEV.CDE_API_KEY),
  "cde:alpha": idle(DEV_ALPHA.CDE_ALPHA_API_KEY),
});

describe("simulator: several accounts per venue, each with its own key and portfolio", () => {
  it("each account authenticates with its own key, secret and passphrase, and sees only its own portfolio", async () => {
    const reset = await simControl(QUIET);
    expect(reset.accounts).toEqual(idleAccounts());

    const list = async (as: Signed) => (await intx("GET", "/api/v1/portfolios", {}, as)).json as Json[];
    expect((await list({})).map((p) => [p.portfolio_id, p.name])).toEqual([[PF, "dev"]]);
    const alpha = await list(ALPHA);
    expect(alpha).toEqual([
      {
        portfolio_id: PF_ALPHA,
        portfolio_uuid: "7c4e2a91-3b5d-4f6e-8a1c-2d9e0f1a0a02",
        name: "alpha",
        user_uuid: "5c1f7a0e-2d5b-4c4e-9a51-1c0ffee0d002",
        maker_fee_rate: "0.0002",
        taker_fee_rate: "0.0004",
        trading_lock: false,
        borrow_disabled: false,
        is_lsp: false,
        is_default: true,
        cross_collateral_enabled: false,
      },
    ]);
    expect((await list(BETA)).map((p) => [p.portfolio_id, p.name])).toEqual([[PF_BETA, "beta"]]);

    // Balances and positions are the account's own.
    const usdc = async (pf: string, as: Signed) =>
      ((await intx("GET", `/api/v1/portfolios/${pf}/balances`, {}, as)).json as Json[])[0];
    expect(await usdc(PF, {})).toMatchObject({ quantity: "100000", hold: "2500", max_withdraw_amount: "97500" });
    expect(await usdc(PF_ALPHA, ALPHA)).toMatchObject({ quantity: "25000", hold: "500", max_withdraw_amount: "24500" });
    expect(await usdc(PF_BETA, BETA)).toMatchObject({ quantity: "5000", hold: "0", max_withdraw_amount: "5000" });
    const held = async (pf: string, as: Signed) =>
      ((await intx("GET", `/api/v1/portfolios/${pf}/positions`, {}, as)).json as Json[]).map((p) => [
        p.symbol,
        p.net_size,
      ]);
    expect(await held(PF, {})).toEqual([["BTC-PERP", "0.5"]]);
    expect(await held(PF_ALPHA, ALPHA)).toEqual([["ETH-PERP", "-2"]]);
    expect(await held(PF_BETA, BETA)).toEqual([]);

    // Another account's portfolio, by id or uuid, is as unknown as a made-up one.
    for (const [path, as] of [
      [`/api/v1/portfolios/${PF}`, ALPHA],
      [`/api/v1/portfolios/${PF_UUID}/balances`, BETA],
      [`/api/v1/portfolios/${PF_ALPHA}/positions`, BETA],
      [`/api/v1/portfolios/${PF_BETA}/fills`, {}],
    ] as const) {
      expect([path, await intx("GET", path, {}, as)]).toEqual([path, javalin(404, "Portfolio not found")]);
    }
    expect(await intx("GET", "/api/v1/portfolios/fills", { portfolios: PF }, ALPHA)).toEqual(
      javalin(404, "Portfolio not found"),
    );

    // CDE's second account authenticates with its own key too.
    const cde = await send("cde", CDE_ALPHA);
    expect(cde.status).toBe(200);
    await cde.body?.cancel();

    const state = await simControl();
    expect(state.accounts).toEqual({
      ...idleAccounts(),
      "intx:default": { ...idle(DEV.INTX_API_KEY), requests: 4 },
      "intx:alpha": { ...idle(DEV_ALPHA.INTX_ALPHA_API_KEY), requests: 5 },
      "intx:beta": { ...idle(DEV_BETA.INTX_BETA_API_KEY), requests: 5 },
      "cde:alpha": { ...idle(DEV_ALPHA.CDE_ALPHA_API_KEY), requests: 1 },
    });
    expect(state.effects).toMatchObject({ accepted: 15, rejected: {} });
  });

  it("a key signed with another account's secret, or sent with its passphrase, is refused", async () => {
    await simControl(QUIET);
    // Each venue's one generic refusal; effects.rejected tells the reasons apart.
    const intxRefusal = { title: "io.javalin.http.UnauthorizedResponse: Unauthorized", status: 401 };
    const cdeRefusal = { message: "Unauthorized" };
    const cases: [string, Promise<Response>, unknown][] = [
      ["alpha key, beta secret", send("intx", { ...ALPHA, secret: BETA.secret }), intxRefusal],
      ["alpha key, default secret", send("intx", { ...ALPHA, secret: DEV.INTX_API_SECRET }), intxRefusal],
      ["beta key, alpha passphrase", send("intx", { ...BETA, passphrase: ALPHA.passphrase }), intxRefusal],
      ["default key, alpha secret", send("intx", { secret: ALPHA.secret }), intxRefusal],
      ["cde alpha key, default secret", send("cde", { ...CDE_ALPHA, secret: DEV.CDE_API_SECRET }), cdeRefusal],
      ["intx alpha key at CDE", send("cde", ALPHA), cdeRefusal],
      ["cde alpha key at INTX", send("intx", CDE_ALPHA), intxRefusal],
    ];
    for (const [what, pending, body] of cases) {
      const r = await pending;
      expect([what, r.status, await r.json()]).toEqual([what, 401, body]);
    }
    const state = await simControl();
    expect(state.effects).toMatchObject({ accepted: 0, rejected: { signature: 4, passphrase: 1, key: 2 } });
    expect(state.accounts).toEqual(idleAccounts());
  });

  it("an order placed by alpha is alpha's alone: beta and default can neither see, fetch, modify nor cancel it", async () => {
    await simControl(QUIET);
    const resting = { ...limit("acct-rest-1-00000000", "BUY", "BTC-PERP", "0.01", 60000), portfolio: undefined };
    const placed = await intx("POST", "/api/v1/orders", resting, ALPHA);
    expect(placed.status).toBe(200);
    const order = placed.json as Json;
    expect(order).toMatchObject({
      client_order_id: "acct-rest-1-00000000",
      portfolio_id: PF_ALPHA,
      portfolio_uuid: "7c4e2a91-3b5d-4f6e-8a1c-2d9e0f1a0a02",
      order_status: "WORKING",
    });
    const id = order.order_id as string;

    // Alpha sees it: by id, in its open orders and its position's resting size.
    expect(await intx("GET", `/api/v1/orders/${id}`, { portfolio: PF_ALPHA }, ALPHA)).toEqual({
      status: 200,
      json: order,
    });
    const open = (as: Signed, params: Json = {}) =>
      intx("GET", "/api/v1/orders", params, as).then((r) =>
        ((r.json as Json).results as Json[]).map((o) => o.order_id),
      );
    expect(await open(ALPHA)).toEqual([id]);
    expect((await intx("GET", `/api/v1/portfolios/${PF_ALPHA}/positions/BTC-PERP`, {}, ALPHA)).json).toMatchObject({
      buy_order_size: "0.01",
    });

    // Nobody else does.
    expect(await open(BETA)).toEqual([]);
    expect(await open({})).toEqual([]);
    expect((await intx("GET", `/api/v1/portfolios/${PF}/positions/BTC-PERP`)).json).toMatchObject({
      buy_order_size: "0",
    });
    for (const [who, as, portfolio] of [
      ["beta", BETA, PF_BETA],
      ["default", {}, PF],
    ] as const) {
      for (const ref of [id, "acct-rest-1-00000000"]) {
        expect([who, await intx("GET", `/api/v1/orders/${ref}`, { portfolio }, as)]).toEqual([
          who,
          javalin(404, "Order not found"),
        ]);
        expect([who, await intx("DELETE", `/api/v1/orders/${ref}`, { portfolio }, as)]).toEqual([
          who,
          javalin(404, "Order not found"),
        ]);
        const edit = { price: "60100", client_order_id: `${who}-edit`.padEnd(20, "0"), portfolio };
        expect([who, await intx("PUT", `/api/v1/orders/${ref}`, edit, as)]).toEqual([
          who,
          javalin(404, "Order not found"),
        ]);
      }
    }
    // Naming alpha's portfolio does not help: it is not theirs.
    expect(await intx("GET", "/api/v1/orders", { portfolio: PF_ALPHA }, BETA)).toEqual(
      javalin(404, "Portfolio not found"),
    );
    expect(await intx("DELETE", "/api/v1/orders", { portfolio: PF_ALPHA }, BETA)).toEqual(
      javalin(404, "Portfolio not found"),
    );
    expect(await intx("DELETE", `/api/v1/orders/${id}`, { portfolio: PF_ALPHA }, BETA)).toEqual(
      javalin(404, "Portfolio not found"),
    );
    expect(
      await intx(
        "POST",
        "/api/v1/orders",
        { ...limit("beta-in-alpha-000000", "BUY", "BTC-PERP", "0.01", 60000), portfolio: PF_ALPHA },
        BETA,
      ),
    ).toEqual(javalin(404, "Portfolio not found"));
    // Beta's cancel-all in its own portfolio finds nothing to cancel.
    expect(await intx("DELETE", "/api/v1/orders", { portfolio: PF_BETA }, BETA)).toEqual({ status: 200, json: [] });

    let state = await simControl();
    expect(state.effects).toMatchObject({ orders_placed: 1, orders_cancelled: 0, orders_modified: 0 });
    expect(state.accounts["intx:alpha"]).toMatchObject({ key: DEV_ALPHA.INTX_ALPHA_API_KEY, orders_placed: 1 });
    expect(state.accounts["intx:beta"]?.orders_placed).toBe(0);
    expect(state.accounts["intx:default"]?.orders_placed).toBe(0);

    // Still WORKING, so alpha can cancel it.
    expect((await intx("DELETE", `/api/v1/orders/${id}`, { portfolio: PF_ALPHA }, ALPHA)).json).toMatchObject({
      order_id: id,
      order_status: "DONE",
      event_type: "CANCELED",
    });

    // A fill is alpha's too: in its fills, with its portfolio name and client id, and in its position only.
    const market = {
      client_order_id: "acct-mkt-1-000000000",
      side: "BUY",
      instrument: "ETH-PERP",
      size: "0.5",
      type: "MARKET",
    };
    const filled = (await intx("POST", "/api/v1/orders", { ...market, tif: "IOC" }, ALPHA)).json as Json;
    expect(filled).toMatchObject({ portfolio_id: PF_ALPHA, order_status: "DONE", event_type: "TRADE" });
    const fills = async (as: Signed) =>
      ((await intx("GET", "/api/v1/portfolios/fills", {}, as)).json as Json).results as Json[];
    expect(await fills(ALPHA)).toEqual([
      expect.objectContaining({
        order_id: filled.order_id,
        portfolio_id: PF_ALPHA,
        portfolio_name: "alpha",
        client_id: "2alp7hq3-1-1",
      }),
    ]);
    expect(await fills(BETA)).toEqual([]);
    expect(await fills({})).toEqual([]);
    expect((await intx("GET", `/api/v1/portfolios/${PF_ALPHA}/positions/ETH-PERP`, {}, ALPHA)).json).toMatchObject({
      net_size: "-1.5",
    });
    expect((await intx("GET", `/api/v1/portfolios/${PF}/positions/ETH-PERP`)).json).toMatchObject({ net_size: "0" });

    state = await simControl();
    expect(state.effects).toMatchObject({ orders_placed: 2, orders_cancelled: 1 });
    expect(state.accounts["intx:alpha"]?.orders_placed).toBe(2);
    expect(state.accounts["intx:beta"]?.orders_placed).toBe(0);
    expect(state.accounts["intx:default"]?.orders_placed).toBe(0);

    // reset: every account's orders, fills, positions and counters back to the start.
    expect((await simControl({ reset: true })).accounts).toEqual(idleAccounts());
    await simControl(QUIET);
    expect(await open(ALPHA)).toEqual([]);
    expect(await fills(ALPHA)).toEqual([]);
    expect(await intx("GET", `/api/v1/orders/${id}`, { portfolio: PF_ALPHA }, ALPHA)).toEqual(
      javalin(404, "Order not found"),
    );
    expect((await intx("GET", `/api/v1/portfolios/${PF_ALPHA}/positions/ETH-PERP`, {}, ALPHA)).json).toMatchObject({
      net_size: "-2",
    });
  });

  it("the rate limit is per key: alpha's 40 in a second leave beta's untouched", async () => {
    await simControl(QUIET);
    const alpha = await Promise.all(Array.from({ length: 41 }, () => send("intx", ALPHA).then((r) => r.status)));
    // Exactly one refused when the 41 arrived within one second (a busy machine may stretch them: then at most one).
    const refused = alpha.filter((s) => s === 429).length;
    if (spread((await simControl()).effects.arrivals[DEV_ALPHA.INTX_ALPHA_API_KEY]) < 1000) expect(refused).toBe(1);
    else expect(refused).toBeLessThanOrEqual(1);
    expect((await send("intx", BETA)).status).toBe(200);
    const state = await simControl();
    expect(state.accounts["intx:alpha"]?.requests).toBe(41 - refused);
    expect(state.accounts["intx:beta"]?.requests).toBe(1);
  });
});

/** The body fields the simulator's order log copies (docs/simulator.md, "GET output", `accounts`). */
const LOGGED = ["client_order_id", "instrument", "side", "type", "tif", "size", "price", "close_only"] as const;

/** The log entry expected for a body the test sent: its logged fields as sent, nothing else; `at` checked apart. */
const logged = (action: "create" | "modify", sent: Json, orderId?: string) => ({
  action,
  ...(orderId === undefined ? {} : { order_id: orderId }),
  ...Object.fromEntries(LOGGED.filter((f) => f in sent).map((f) => [f, sent[f]])),
  at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
});

describe("simulator: per account, the order requests that reached INTX and what they did", () => {
  it("logs each create and modify as sent, accepted or not, and counts modifies and kill switches per account", async () => {
    await simControl(QUIET);
    const started = Date.now();

    // alpha: a resting LIMIT (price a number, as ccxt sends it; portfolio and post_only are not logged), a modify
    // of it, a create the venue refuses (no tif), and a body that is not JSON.
    const alphaCreate = {
      ...limit("log-a-1-000000000000", "BUY", "BTC-PERP", "0.01", 60000),
      portfolio: PF_ALPHA,
      close_only: false,
    };
    const alphaPlaced = await intx("POST", "/api/v1/orders", { ...alphaCreate, post_only: false }, ALPHA);
    expect(alphaPlaced.status).toBe(200);
    const alphaOrder = alphaPlaced.json as Json;
    const alphaId = alphaOrder.order_id as string;
    const alphaModify = { client_order_id: "log-a-2-000000000000", price: "60100", size: 0.02, portfolio: PF_ALPHA };
    const alphaModified = await intx("PUT", `/api/v1/orders/${alphaId}`, alphaModify, ALPHA);
    expect(alphaModified.json).toMatchObject({ client_order_id: "log-a-2-000000000000", event_type: "REPLACED" });
    const alphaRefused = {
      client_order_id: "log-a-3-000000000000",
      side: "SELL",
      instrument: "ETH-PERP",
      size: "0.5",
      type: "MARKET",
    };
    expect(await intx("POST", "/api/v1/orders", alphaRefused, ALPHA)).toEqual(
      javalin(400, "Order rejected (MISSING_FIELD tif)"),
    );
    const notJson = await send("intx", { ...ALPHA, method: "POST", path: "/api/v1/orders", body: "not json" });
    expect(notJson.status).toBe(400);
    await notJson.body?.cancel();
    // Refused at authentication: it never reached the order route, so it is not logged for anyone.
    const forged = await send("intx", {
      ...ALPHA,
      secret: BETA.secret,
      method: "POST",
      path: "/api/v1/orders",
      body: ORDER("log-forged-000000000"),
    });
    expect(forged.status).toBe(401);
    await forged.body?.cancel();

    // default: a MARKET IOC with close_only and a null price (close_only allowed: it reduces the long), a resting LIMIT
    // and its modify, and a modify of an order it does not have.
    const defaultMarket = {
      ...JSON.parse(ORDER("log-d-1-000000000000")),
      side: "SELL",
      close_only: true,
      price: null,
    } as Json;
    const filled = await intx("POST", "/api/v1/orders", defaultMarket);
    expect(filled.json).toMatchObject({ order_status: "DONE", event_type: "TRADE" });
    const defaultCreate = limit("log-d-2-000000000000", "SELL", "ETH-PERP", "1", 2600);
    const defaultPlaced = (await intx("POST", "/api/v1/orders", defaultCreate)).json as Json;
    const defaultId = defaultPlaced.order_id as string;
    const defaultModify = { client_order_id: "log-d-3-000000000000", size: "2", portfolio: PF };
    const defaultModified = await intx("PUT", `/api/v1/orders/${defaultId}`, defaultModify);
    expect(defaultModified.status).toBe(200);
    const unknownModify = { client_order_id: "log-d-4-000000000000", price: "1" };
    expect(await intx("PUT", "/api/v1/orders/nope-1-0", unknownModify)).toEqual(javalin(404, "Order not found"));

    // cde:alpha pulls the kill switch; cde:default only reads.
    const killSwitch = JSON.stringify({ only_cancel_no_trading_lock: false, firm_uuid: FIRM });
    const kill = await send("cde", { ...CDE_ALPHA, method: "POST", path: "/rest/kill-switch", body: killSwitch });
    expect(kill.status).toBe(200);
    await kill.body?.cancel();
    await (await send("cde")).body?.cancel();

    const state = await simControl();
    const alpha = state.accounts["intx:alpha"];
    expect(alpha?.orders).toEqual([
      logged("create", alphaCreate),
      logged("modify", alphaModify, alphaId),
      logged("create", alphaRefused),
      { action: "create", at: expect.any(String) },
    ]);
    // The entries' exact values, spelled out once: copied as sent, a number stays a number.
    expect(alpha?.orders[0]).toEqual({
      action: "create",
      client_order_id: "log-a-1-000000000000",
      instrument: "BTC-PERP",
      side: "BUY",
      type: "LIMIT",
      tif: "GTC",
      size: "0.01",
      price: 60000,
      close_only: false,
      at: alphaOrder.submit_time,
    });
    expect(alpha?.orders[1]).toEqual({
      action: "modify",
      order_id: alphaId,
      client_order_id: "log-a-2-000000000000",
      price: "60100",
      size: 0.02,
      at: (alphaModified.json as Json).event_time,
    });
    expect(alpha).toMatchObject({ requests: 4, orders_placed: 1, orders_modified: 1, kill_switches: 0 });

    const dflt = state.accounts["intx:default"];
    expect(dflt?.orders).toEqual([
      logged("create", defaultMarket),
      logged("create", defaultCreate),
      logged("modify", defaultModify, defaultId),
      logged("modify", unknownModify, "nope-1-0"),
    ]);
    expect(dflt?.orders[0]).toMatchObject({ close_only: true, price: null, at: (filled.json as Json).submit_time });
    expect(dflt?.orders[2]?.at).toBe((defaultModified.json as Json).event_time);
    expect(dflt).toMatchObject({ requests: 4, orders_placed: 2, orders_modified: 1, kill_switches: 0 });

    // Oldest first, by the simulator's clock (skew 0 here): between the test's start and now.
    for (const { at } of [...(alpha?.orders ?? []), ...(dflt?.orders ?? [])]) {
      expect(Date.parse(at)).toBeGreaterThanOrEqual(started - 1_000);
      expect(Date.parse(at)).toBeLessThanOrEqual(Date.now() + 1_000);
    }
    const times = (dflt?.orders ?? []).map((o) => Date.parse(o.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));

    expect(state.accounts["intx:beta"]).toEqual(idle(DEV_BETA.INTX_BETA_API_KEY));
    expect(state.accounts["cde:alpha"]).toEqual({
      ...idle(DEV_ALPHA.CDE_ALPHA_API_KEY),
      requests: 1,
      kill_switches: 1,
    });
    expect(state.accounts["cde:default"]).toEqual({ ...idle(DEV.CDE_API_KEY), requests: 1 });
    expect(state.effects).toMatchObject({ orders_placed: 3, orders_modified: 2, kill_switches: 1 });

    // reset clears the log and the counters of every account.
    expect((await simControl({ reset: true })).accounts).toEqual(idleAccounts());
  });

  it("keeps the last 200 order requests per account, oldest first", async () => {
    await simControl({ ...QUIET, intx_rate_limit: null });
    const sent = Array.from({ length: 203 }, (_, i) => ({ client_order_id: `cap-${i}` }));
    for (const body of sent) {
      const r = await intx("POST", "/api/v1/orders", body, ALPHA);
      expect(r.status).toBe(400);
    }
    const { orders } = (await simControl()).accounts["intx:alpha"] ?? { orders: [] };
    expect(orders).toHaveLength(200);
    expect(orders).toEqual(sent.slice(3).map((body) => logged("create", body)));
    expect((await simControl()).accounts["intx:default"]?.orders).toEqual([]);
  });
});

describe("simulator: CDE instruments and positions by firm", () => {
  it("POST /rest/instruments filters by product code, symbol (with *), id and state; positions by firm_uuid", async () => {
    await simControl(QUIET);
    const firm = PF_UUID;
    const byFirm = await send("cde", { path: `/rest/v2/positions/${firm}` });
    expect([byFirm.status, await byFirm.json()]).toEqual([
      200,
      [{ symbol: "BIPZ30", firm_uuid: firm, long_qty: 3, short_qty: 0 }],
    ]);
    const other = await send("cde", { path: "/rest/v2/positions/00000000-0000-0000-0000-000000000000" });
    expect([other.status, await other.json()]).toEqual([404, { message: "Firm not found" }]);

    const instruments = async (body = "") => {
      const r = await send("cde", { method: "POST", path: "/rest/instruments", body });
      return { status: r.status, json: (await r.json()) as Json[] };
    };
    const all = await instruments();
    expect(all.json.map((i) => i.symbol)).toEqual(["BIPZ30", "ETPZ30", "BIT-28NOV25-CDE"]);
    expect(all.json[0]).toEqual({
      product_id: 409,
      instrument_id: 410,
      contract_type: "OUTRIGHT",
      product_group: "CRYPTO",
      symbol: "BIPZ30",
      product_code: "BIP",
      trading_state: "OPEN",
      contract_unit: "Bitcoin",
      contract_size: 0.01,
      tick_size: 5,
      expiration_time: "2030-12-20T16:00",
      last_trading_date: "2030-12-20",
    });
    const symbols = async (filter: Json) => (await instruments(JSON.stringify(filter))).json.map((i) => i.symbol);
    expect(await symbols({})).toHaveLength(3);
    expect(await symbols({ symbols: ["B*"] })).toEqual(["BIPZ30", "BIT-28NOV25-CDE"]);
    expect(await symbols({ product_codes: ["ETP"], trading_states: ["OPEN"] })).toEqual(["ETPZ30"]);
    expect(await symbols({ instrument_ids: [414] })).toEqual(["BIT-28NOV25-CDE"]);
    expect(await symbols({ trading_states: ["EXPIRED"] })).toEqual([]);
    expect(await instruments('{"symbols": "BIPZ30"}')).toEqual({ status: 400, json: { message: "Invalid symbols" } });
    expect(await instruments("nope")).toEqual({ status: 400, json: { message: "Invalid request body" } });
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
