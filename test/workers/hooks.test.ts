// Webhook routes through the Worker's real fetch handler: every verification outcome for each method (the
// `standardwebhooks` package is the independent sender), payload mapping and validation, idempotent replay,
// and the limits. The venue is a spy on fetch that checks the signature with @noble/hashes.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { sha256 } from "@noble/hashes/sha2.js";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { config } from "../../src/runtime.ts";
import { workerEnv } from "../support/env.ts";
import { referenceSignature, SECRET_B64 } from "../support/fake-venue.ts";

const WHSEC = `whsec_${btoa("standard-webhooks-test-key-32byt")}`;
const OLD_WHSEC = `whsec_${btoa("the-previous-key-still-accepted!")}`;
const TV_PASS = "tv-passphrase-0123456789";
const BEARER = "hook-bearer-token-0123456789";
const TV_IP = "52.89.214.238";

const ORDER_BODY = {
  client_order_id: "{{client_order_id}}",
  side: "{{side}}",
  size: "{{size}}",
  price: "{{price}}",
  type: "LIMIT",
  tif: "GTC",
  instrument: "{{instrument}}",
  portfolio: "pf-1",
};
const ORDER_FIELDS = { side: "side", size: "decimal", price: "decimal?", instrument: "instrument" };

const HOOKS = [
  {
    name: "sw-order",
    verify: "standard-webhooks",
    secret_binding: "HOOK_SW_SECRET",
    fields: ORDER_FIELDS,
    request: { venue: "intx", method: "POST", path: "/api/v1/orders", body: ORDER_BODY },
  },
  {
    name: "tv-order",
    verify: "tradingview",
    secret_binding: "HOOK_TV_PASSPHRASE",
    fields: ORDER_FIELDS,
    request: { venue: "intx", method: "POST", path: "/api/v1/orders", body: ORDER_BODY },
  },
  {
    name: "bearer-cancel",
    verify: "bearer",
    secret_binding: "HOOK_BEARER_TOKEN",
    fields: { order_id: "id" },
    request: { venue: "intx", method: "DELETE", path: "/api/v1/orders/{{order_id}}" },
  },
  {
    name: "sw-bad-secret",
    verify: "standard-webhooks",
    secret_binding: "HOOK_BAD_WHSEC",
    request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
  },
  {
    name: "missing-secret",
    verify: "bearer",
    secret_binding: "HOOK_NOT_SET",
    request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
  },
];

const bindings = workerEnv({
  INTX_BASE_URL: "https://intx.venue.test",
  INTX_API_KEY: "intx-key",
  INTX_API_SECRET: SECRET_B64,
  INTX_API_PASSPHRASE: "intx-pass",
  INTX_RATE_LIMIT_PER_SECOND: "off",
  CDE_BASE_URL: "",
  HOOKS: JSON.stringify(HOOKS),
  HOOK_SW_SECRET: WHSEC,
  HOOK_TV_PASSPHRASE: TV_PASS,
  HOOK_BEARER_TOKEN: BEARER,
  HOOK_BAD_WHSEC: "whsec_not base64!",
});

let sent: { request: Request; body: string }[] = [];
function venue(respond: (body: string) => Response = () => Response.json({ order_id: "o-1", status: "NEW" })) {
  sent = [];
  return vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const body = request.body ? await request.clone().text() : "";
    sent.push({ request, body });
    const path = new URL(request.url).pathname;
    const ts = request.headers.get("cb-access-timestamp") ?? "";
    const ok = request.headers.get("cb-access-sign") === referenceSignature(SECRET_B64, ts, request.method, path, body);
    const response = ok ? respond(body) : Response.json({ message: "invalid signature" }, { status: 401 });
    const headers = new Headers(response.headers);
    headers.set("date", new Date().toUTCString());
    return new Response(response.body, { status: response.status, headers });
  });
}

async function post(path: string, body: string, headers: Record<string, string>) {
  const ctx = createExecutionContext();
  const response = await worker.fetch(
    new Request(`https://relay.test${path}`, { method: "POST", body, headers }),
    bindings,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return response;
}

/** Standard Webhooks headers from the reference package, the way a real sender signs. */
function swHeaders(id: string, body: string, secret = WHSEC, at = new Date()): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

/**
 * The client_order_id the route must derive, computed independently (noble SHA-256): the first 16 bytes of the hash
 * as an RFC 9562 version-8 UUID (version nibble 8, variant bits 10), lowercase and hyphenated, one of INTX's forms.
 */
function expectedOrderId(route: string, key: string): string {
  const bytes = sha256(new TextEncoder().encode(`${route}\n${key}`)).slice(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A token allowed GET /health only: its full report names routes. */
const HEALTH_READER = JSON.stringify([{ name: "health", token: "health-reader-0123456789", allow: ["GET /health"] }]);

let n = 0;
const uniqueId = () => `msg_${Date.now()}_${n++}`;
const alert = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ side: "buy", size: "0.25", instrument: "btc-perp", ...extra });

afterEach(() => vi.restoreAllMocks());

describe("webhooks: standard-webhooks", () => {
  it("a valid delivery places exactly the mapped order, signed, and says what it sent", async () => {
    venue();
    const id = uniqueId();
    const body = alert({ price: 65000.5 });
    const r = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(r.status).toBe(200);
    const coid = expectedOrderId("sw-order", id);
    expect(sent).toHaveLength(1);
    expect(new URL(sent[0]?.request.url ?? "").pathname).toBe("/api/v1/orders");
    expect(sent[0]?.body).toBe(
      `{"client_order_id":"${coid}","side":"BUY","size":"0.25","price":"65000.5","type":"LIMIT","tif":"GTC","instrument":"BTC-PERP","portfolio":"pf-1"}`,
    );
    const json = (await r.json()) as Record<string, unknown>;
    expect(json).toEqual({
      route: "sw-order",
      delivery_id: coid,
      sent: { venue: "intx", method: "POST", path: "/api/v1/orders", client_order_id: coid },
      venue_response: { status: 200, body: { order_id: "o-1", status: "NEW" } },
      attempts: 1,
    });
    expect(r.headers.get("x-skewguard-replayed")).toBe("false");
  });

  it("an optional field left out drops its key from the body", async () => {
    venue();
    const id = uniqueId();
    const body = alert();
    expect((await post("/hooks/sw-order", body, swHeaders(id, body))).status).toBe(200);
    expect(JSON.parse(sent[0]?.body ?? "{}")).not.toHaveProperty("price");
  });

  it("401 for a tampered body, a wrong key, a stale timestamp, or missing headers; nothing is sent", async () => {
    venue();
    const id = uniqueId();
    const body = alert();
    const tampered = await post("/hooks/sw-order", alert({ size: "25" }), swHeaders(id, body));
    const wrongKey = await post("/hooks/sw-order", body, swHeaders(uniqueId(), body, OLD_WHSEC));
    // Well outside the 300 s tolerance (the exact edge is tested with an injected clock in standard-webhooks.test.ts).
    const stale = await post(
      "/hooks/sw-order",
      body,
      swHeaders(uniqueId(), body, WHSEC, new Date(Date.now() - 330_000)),
    );
    const future = await post(
      "/hooks/sw-order",
      body,
      swHeaders(uniqueId(), body, WHSEC, new Date(Date.now() + 330_000)),
    );
    const bare = await post("/hooks/sw-order", body, { "content-type": "application/json" });
    for (const r of [tampered, wrongKey, stale, future, bare]) {
      expect(r.status).toBe(401);
      expect(await r.json()).toEqual({ error: { code: "unauthenticated", message: expect.any(String) } });
    }
    expect(sent).toHaveLength(0);
  });

  it("accepts a delivery carrying several signatures when one of them is valid (key rotation)", async () => {
    venue();
    const id = uniqueId();
    const body = alert();
    const headers = swHeaders(id, body);
    const old = new Webhook(OLD_WHSEC).sign(id, new Date(Number(headers["webhook-timestamp"]) * 1000), body);
    headers["webhook-signature"] = `${old} ${headers["webhook-signature"]}`;
    expect((await post("/hooks/sw-order", body, headers)).status).toBe(200);
    expect(sent).toHaveLength(1);
  });

  it("a replayed webhook-id gets the first answer and places no second order", async () => {
    venue();
    const id = uniqueId();
    const body = alert();
    const first = await post("/hooks/sw-order", body, swHeaders(id, body));
    const again = await post("/hooks/sw-order", body, swHeaders(id, body, WHSEC, new Date(Date.now() + 2_000)));
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.headers.get("x-skewguard-replayed")).toBe("true");
    expect(await again.json()).toEqual(await first.json());
    expect(sent).toHaveLength(1);
  });

  it("422 lists every field that is wrong, and nothing is sent", async () => {
    venue();
    const id = uniqueId();
    const body = JSON.stringify({ side: "hold", size: "0", instrument: "btc perp", price: "-1" });
    const r = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(r.status).toBe(422);
    const json = (await r.json()) as { error: { code: string; details: { field: string }[] } };
    expect(json.error.code).toBe("invalid_payload");
    expect(json.error.details.map((d) => d.field).sort()).toEqual(["instrument", "price", "side", "size"]);
    expect(sent).toHaveLength(0);
  });
});

describe("webhooks: tradingview", () => {
  const tv = (body: string, ip = TV_IP, type = "application/json") =>
    post("/hooks/tv-order", body, { "content-type": type, "cf-connecting-ip": ip });

  it("the right passphrase from a TradingView address places the order; the passphrase is not forwarded", async () => {
    venue();
    const r = await tv(alert({ passphrase: TV_PASS, id: uniqueId() }));
    expect(r.status).toBe(200);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).not.toContain(TV_PASS);
    expect(JSON.parse(sent[0]?.body ?? "{}")).toMatchObject({ side: "BUY", size: "0.25", instrument: "BTC-PERP" });
  });

  it("accepts a JSON alert labelled text/plain, as TradingView may send it", async () => {
    venue();
    expect((await tv(alert({ passphrase: TV_PASS, id: uniqueId() }), TV_IP, "text/plain; charset=utf-8")).status).toBe(
      200,
    );
  });

  it("401 for a wrong or missing passphrase, 403 from another address, 400 for non-JSON", async () => {
    venue();
    expect((await tv(alert({ passphrase: "wrong" }))).status).toBe(401);
    expect((await tv(alert())).status).toBe(401);
    const other = await tv(alert({ passphrase: TV_PASS }), "203.0.113.9");
    expect(other.status).toBe(403);
    expect(await other.json()).toEqual({ error: { code: "forbidden_source", message: expect.any(String) } });
    expect((await tv("buy 1 BTC now", TV_IP, "text/plain")).status).toBe(400);
    expect(sent).toHaveLength(0);
  });

  it("the same alert body twice is one order (dedupe by body hash)", async () => {
    venue();
    const body = alert({ passphrase: TV_PASS, id: uniqueId() });
    expect((await tv(body)).status).toBe(200);
    const again = await tv(body);
    expect(again.headers.get("x-skewguard-replayed")).toBe("true");
    expect(sent).toHaveLength(1);
  });
});

describe("webhooks: bearer, limits, configuration", () => {
  it("the right bearer token cancels the order named in the payload; a wrong one gets 401", async () => {
    venue(() => Response.json({ order_id: "o-9", status: "CANCELLED" }));
    const body = JSON.stringify({ order_id: "o-9" });
    const wrong = await post("/hooks/bearer-cancel", body, {
      "content-type": "application/json",
      authorization: "Bearer nope",
    });
    expect(wrong.status).toBe(401);
    const ok = await post("/hooks/bearer-cancel", body, {
      "content-type": "application/json",
      authorization: `Bearer ${BEARER}`,
      "idempotency-key": uniqueId(),
    });
    expect(ok.status).toBe(200);
    expect(sent.map((s) => [s.request.method, new URL(s.request.url).pathname])).toEqual([
      ["DELETE", "/api/v1/orders/o-9"],
    ]);
  });

  it("the same delivery again while the first is still at the venue is 409 in_progress, and sends nothing", async () => {
    let answer: () => void = () => {};
    const answered = new Promise<void>((resolve) => {
      answer = resolve;
    });
    let reached: () => void = () => {};
    const atVenue = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const paths: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      paths.push(new URL(new Request(input, init).url).pathname);
      reached();
      await answered;
      return Response.json({ order_id: "o-7", status: "CANCELLED" }, { headers: { date: new Date().toUTCString() } });
    });
    const headers = {
      "content-type": "application/json",
      authorization: `Bearer ${BEARER}`,
      "idempotency-key": uniqueId(),
    };
    const body = JSON.stringify({ order_id: "o-7" });
    const first = post("/hooks/bearer-cancel", body, headers);
    await atVenue;
    const second = await post("/hooks/bearer-cancel", body, headers);
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe("in_progress");
    answer();
    expect((await first).status).toBe(200);
    expect(paths).toEqual(["/api/v1/orders/o-7"]);
  });

  it("a payload value cannot reshape the path", async () => {
    venue();
    const body = JSON.stringify({ order_id: "../portfolios" });
    const r = await post("/hooks/bearer-cancel", body, {
      "content-type": "application/json",
      authorization: `Bearer ${BEARER}`,
    });
    expect(r.status).toBe(422);
    expect(sent).toHaveLength(0);
  });

  it("404 for an unknown route, 405 for GET, 415 for a form, 413 for a large body, 503 for a missing secret", async () => {
    venue();
    expect((await post("/hooks/nope", "{}", { "content-type": "application/json" })).status).toBe(404);
    const ctx = createExecutionContext();
    const get = await worker.fetch(new Request("https://relay.test/hooks/sw-order"), bindings, ctx);
    expect(get.status).toBe(405);
    expect((await post("/hooks/sw-order", "a=b", { "content-type": "application/x-www-form-urlencoded" })).status).toBe(
      415,
    );
    const big = JSON.stringify({ pad: "x".repeat(20_000) });
    expect((await post("/hooks/sw-order", big, swHeaders(uniqueId(), big))).status).toBe(413);
    const badKey = await post("/hooks/sw-bad-secret", "{}", swHeaders(uniqueId(), "{}"));
    expect(badKey.status).toBe(503);
    expect(await badKey.json()).toEqual({
      error: { code: "hook_not_configured", message: "the secret binding HOOK_BAD_WHSEC is not a whsec_ key" },
    });
    const missing = await post("/hooks/missing-secret", "{}", { "content-type": "application/json" });
    expect(missing.status).toBe(503);
    expect(await missing.json()).toEqual({
      error: { code: "hook_not_configured", message: "the secret binding HOOK_NOT_SET is not set" },
    });
    expect(sent).toHaveLength(0);
  });

  it("a venue refusal is a 502 that carries the venue's answer, and is remembered for replays", async () => {
    venue(() => Response.json({ message: "Insufficient margin" }, { status: 400 }));
    const id = uniqueId();
    const body = alert();
    const r = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(r.status).toBe(502);
    const json = (await r.json()) as { error: { code: string; message: string }; venue_response: unknown };
    expect(json.error).toEqual({ code: "venue_rejected", message: "intx answered 400: Insufficient margin" });
    expect(json.venue_response).toEqual({ status: 400, body: { message: "Insufficient margin" } });
    const again = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(again.status).toBe(502);
    expect(sent).toHaveLength(1);
  });
});

describe("webhooks: hardening", () => {
  const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  it("an alert without id_field dedupes on its payload without the passphrase, never on the raw body", async () => {
    venue();
    const body = alert({ passphrase: TV_PASS, id: uniqueId() });
    const r = await post("/hooks/tv-order", body, { "content-type": "application/json", "cf-connecting-ip": TV_IP });
    expect(r.status).toBe(200);
    const { passphrase: _, ...withoutSecret } = JSON.parse(body) as Record<string, unknown>;
    const key = `sha256:${hex(sha256(new TextEncoder().encode(JSON.stringify(withoutSecret))))}`;
    const placed = JSON.parse(sent[0]?.body ?? "{}") as { client_order_id: string };
    expect(placed.client_order_id).toBe(expectedOrderId("tv-order", key));
    const fromRawBody = `sha256:${hex(sha256(new TextEncoder().encode(body)))}`;
    expect(placed.client_order_id).not.toBe(expectedOrderId("tv-order", fromRawBody));
  });

  it("400 for a webhook-signature with more than 8 signatures or over 1024 characters, before any HMAC", async () => {
    venue();
    const body = alert();
    const id = uniqueId();
    const valid = swHeaders(id, body);
    const nine = { ...valid, "webhook-signature": `${"v1,AAAA ".repeat(8)}${valid["webhook-signature"]}` };
    const r = await post("/hooks/sw-order", body, nine);
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({
      error: { code: "bad_signature_header", message: "webhook-signature has more than 8 signatures" },
    });
    const long = { ...valid, "webhook-signature": `v1,${"A".repeat(1100)} ${valid["webhook-signature"]}` };
    const r2 = await post("/hooks/sw-order", body, long);
    expect(r2.status).toBe(400);
    expect(await r2.json()).toEqual({
      error: { code: "bad_signature_header", message: "webhook-signature is over 1024 characters" },
    });
    expect(sent).toHaveLength(0);
  });

  it("a venue answer that breaks off keeps the delivery id: the replay gets the same 502 and sends nothing", async () => {
    venue(
      () =>
        new Response(
          new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode('{"order_id":'));
              controller.error(new Error("connection reset"));
            },
          }),
          { headers: { "content-type": "application/json" } },
        ),
    );
    const id = uniqueId();
    const body = alert();
    const r = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(r.status).toBe(502);
    const first = (await r.json()) as { error: unknown };
    expect(first.error).toEqual({
      code: "venue_response_broken",
      message: "intx answered, but the answer broke off; it may have processed the request",
    });
    const again = await post("/hooks/sw-order", body, swHeaders(id, body));
    expect(again.status).toBe(502);
    expect(again.headers.get("x-skewguard-replayed")).toBe("true");
    expect(sent).toHaveLength(1);
  });

  it("two Standard Webhooks routes with one secret: the second is left out; a short dedupe is refused", async () => {
    const route = (name: string, secret_binding: string, extra: Record<string, unknown> = {}) => ({
      name,
      verify: "standard-webhooks",
      secret_binding,
      request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
      ...extra,
    });
    const e = workerEnv({
      ...bindings,
      HOOK_A: WHSEC,
      HOOK_B: WHSEC.slice("whsec_".length), // the same key without its prefix
      HOOKS: JSON.stringify([
        route("sw-a", "HOOK_A"),
        route("sw-b", "HOOK_B"),
        route("sw-short", "HOOK_SW_SECRET", { tolerance_seconds: 300, dedupe_seconds: 300 }),
        route("sw-get-body", "HOOK_BAD_WHSEC", {
          request: { venue: "intx", method: "GET", path: "/api/v1/x", body: {} },
        }),
      ]),
    });
    const asked = new Request("https://relay.test/health", {
      headers: { authorization: "Bearer health-reader-0123456789" },
    });
    const r = await worker.fetch(asked, { ...e, RELAY_TOKENS: HEALTH_READER } as Env, createExecutionContext());
    const health = (await r.json()) as { hooks: { routes: string[]; problems: unknown[] } };
    expect(health.hooks).toEqual({
      routes: ["sw-a"],
      problems: [
        {
          route: "sw-short",
          message:
            "dedupe_seconds must be at least 2 × tolerance_seconds (600): a message stamped up to tolerance_seconds " +
            "ahead is accepted for 2 × tolerance_seconds, and a replay after its record expired would act again",
        },
        { route: "sw-get-body", message: "request.body is not allowed with GET" },
        {
          route: "sw-b",
          message: "shares its secret with route sw-a: a message signed for one would be accepted by both",
        },
      ],
    });
    const body = "{}";
    const replayed = await worker.fetch(
      new Request("https://relay.test/hooks/sw-b", { method: "POST", body, headers: swHeaders(uniqueId(), body) }),
      e,
      createExecutionContext(),
    );
    expect(replayed.status).toBe(404);
  });
});

describe("webhooks: documented behaviour the audit found untested", () => {
  /** `bindings` with more routes, and a POST to one of them. */
  const withRoutes = (routes: unknown[]) => workerEnv({ ...bindings, HOOKS: JSON.stringify([...HOOKS, ...routes]) });
  async function postTo(e: Env, path: string, body: string, headers: Record<string, string>) {
    const ctx = createExecutionContext();
    const r = await worker.fetch(new Request(`https://relay.test${path}`, { method: "POST", body, headers }), e, ctx);
    await waitOnExecutionContext(ctx);
    return r;
  }
  const tvRoute = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    verify: "tradingview",
    secret_binding: "HOOK_TV_PASSPHRASE",
    fields: ORDER_FIELDS,
    request: { venue: "intx", method: "POST", path: "/api/v1/orders", body: ORDER_BODY },
    ...extra,
  });

  // docs/webhooks.md, "Idempotency": a replay gets the first answer, "or 409 while the first one is still in flight".
  it("409 in_progress for a duplicate while the first is in flight; once it answered, the replay gets its answer", async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    sent = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const request = new Request(input, init);
      sent.push({ request, body: await request.clone().text() });
      await held;
      return Response.json({ order_id: "o-held", status: "NEW" }, { headers: { date: new Date().toUTCString() } });
    });
    const id = uniqueId();
    const body = alert();
    const headers = swHeaders(id, body);
    const first = post("/hooks/sw-order", body, headers);
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    const duplicate = await post("/hooks/sw-order", body, headers);
    expect(duplicate.status).toBe(409);
    expect(await duplicate.json()).toEqual({
      error: {
        code: "in_progress",
        message: "this webhook is being delivered; its first delivery's answer will follow",
      },
    });
    release();
    const answered = await first;
    expect(answered.status).toBe(200);
    const replay = await post("/hooks/sw-order", body, headers);
    expect([replay.status, replay.headers.get("x-skewguard-replayed")]).toEqual([200, "true"]);
    expect(sent).toHaveLength(1);
  });

  // docs/webhooks.md, `tradingview`: `CF-Connecting-IP` in `source_ips`, default TradingView's four published
  // addresses (docs/protocol.md, "Webhook senders"), `"any"` to disable.
  it('source_ips "any" accepts any address; the default list accepts each of the four published ones only', async () => {
    venue();
    const e = withRoutes([tvRoute("tv-any", { source_ips: "any" })]);
    const from = (route: string, ip: string) =>
      postTo(e, `/hooks/${route}`, alert({ passphrase: TV_PASS, id: uniqueId() }), {
        "content-type": "application/json",
        "cf-connecting-ip": ip,
      });
    for (const ip of ["203.0.113.9", "2001:db8::1", "52.89.214.238"])
      expect((await from("tv-any", ip)).status).toBe(200);
    for (const ip of ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"]) {
      expect([ip, (await from("tv-order", ip)).status]).toEqual([ip, 200]);
    }
    for (const ip of ["203.0.113.9", "52.89.214.239", "2001:db8::1"]) {
      expect([ip, (await from("tv-order", ip)).status]).toEqual([ip, 403]);
    }
    expect(sent).toHaveLength(7);
  });

  // docs/webhooks.md, "Answer": 504 if the venue did not answer within `timeout_ms`; TradingView routes default to
  // 2.5 s (TradingView gives up after 3 s), other routes to the relay's 10 s.
  it("timeout_ms defaults to 2500 ms on TradingView routes (10 s on others); a venue slower than it gets 504", async () => {
    const e = withRoutes([tvRoute("tv-quick", { timeout_ms: 200 })]);
    const routes = config(e).hooks.routes;
    expect(routes.get("tv-order")?.timeoutMs).toBe(2_500);
    expect(routes.get("sw-order")?.timeoutMs).toBe(10_000);
    expect(routes.get("tv-quick")?.timeoutMs).toBe(200);
    // The venue answers 700 ms late, unless the request is given up first.
    sent = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const request = new Request(input, init);
      sent.push({ request, body: "" });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, 700);
        request.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(request.signal.reason);
        });
      });
      return Response.json({ order_id: "o-late" }, { headers: { date: new Date().toUTCString() } });
    });
    const started = Date.now();
    const r = await postTo(e, "/hooks/tv-quick", alert({ passphrase: TV_PASS, id: uniqueId() }), {
      "content-type": "application/json",
      "cf-connecting-ip": TV_IP,
    });
    const took = Date.now() - started;
    expect(r.status).toBe(504);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("venue_timeout");
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(700);
    expect(sent).toHaveLength(1);
  });
});
