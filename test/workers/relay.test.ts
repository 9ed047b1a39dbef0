// The signing proxy through the Worker's real fetch handler. The venue is a spy on fetch, so these tests pin
// down what leaves the relay (path, query, body bytes, headers) and what comes back out.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { referenceSignature, SECRET_B64 } from "../support/fake-venue.ts";

const TOKEN = "relay-test-token-0123456789";
const READONLY = "read-only-token-0123456789";
const bindings = workerEnv({
  INTX_BASE_URL: "https://intx.venue.test",
  INTX_API_KEY: "intx-key",
  INTX_API_SECRET: SECRET_B64,
  INTX_API_PASSPHRASE: "intx-pass",
  CDE_BASE_URL: "",
  CDE_API_KEY: "",
  CDE_API_SECRET: "",
  CDE_API_PASSPHRASE: "",
  RELAY_TOKENS: JSON.stringify([
    { name: "bot", token: TOKEN, allow: ["* /intx/api/v1/*"] },
    { name: "reader", token: READONLY, allow: ["GET /intx/api/v1/portfolios*"] },
  ]),
});

let sent: Request[] = [];
function venue(respond: (r: Request) => Response | Promise<Response> = () => Response.json({ ok: true })) {
  sent = [];
  return vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    sent.push(request.clone());
    const response = await respond(request);
    const headers = new Headers(response.headers);
    headers.set("date", new Date().toUTCString());
    return new Response(response.body, { status: response.status, headers });
  });
}

async function call(path: string, init: RequestInit & { token?: string | null } = {}) {
  const headers = new Headers(init.headers);
  const token = init.token === undefined ? TOKEN : init.token;
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  const ctx = createExecutionContext();
  const response = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

afterEach(() => vi.restoreAllMocks());

describe("relay: authentication", () => {
  it("401 without a token, with a JSON error and a challenge", async () => {
    venue();
    const r = await call("/intx/api/v1/portfolios", { token: null });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain("Bearer");
    expect(await r.json()).toEqual({ error: { code: "unauthenticated", message: expect.any(String) } });
    expect(sent).toHaveLength(0);
  });

  it("401 for an unknown token", async () => {
    venue();
    const r = await call("/intx/api/v1/portfolios", { token: `${TOKEN}x` });
    expect(r.status).toBe(401);
    expect(sent).toHaveLength(0);
  });

  it("400 for a malformed Authorization header", async () => {
    venue();
    const r = await call("/intx/api/v1/portfolios", { token: null, headers: { authorization: `Basic ${TOKEN}` } });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("malformed_authorization");
  });

  it("403 when the token's allow-list does not cover the method or path", async () => {
    venue();
    const post = await call("/intx/api/v1/orders", {
      method: "POST",
      token: READONLY,
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(post.status).toBe(403);
    const other = await call("/intx/api/v1/orders", { token: READONLY });
    expect(other.status).toBe(403);
    expect(sent).toHaveLength(0);
  });

  it("503, not an open door, when RELAY_TOKENS is unusable", async () => {
    venue();
    const ctx = createExecutionContext();
    const r = await worker.fetch(
      new Request("https://relay.test/intx/api/v1/portfolios", { headers: { authorization: `Bearer ${TOKEN}` } }),
      workerEnv({ ...bindings, RELAY_TOKENS: "not json" }),
      ctx,
    );
    expect(r.status).toBe(503);
    expect(sent).toHaveLength(0);
  });
});

describe("relay: paths", () => {
  // The URL parser resolves `../` and `%2e%2e/` before the Worker sees them, so those land outside the prefix (404);
  // every other encoded or doubled trick reaches the path rule intact and is refused as a bad path (400).
  const refused: [string, number][] = [
    ["/intx/api/v1/../../admin", 404],
    ["/intx/api/v1/%2e%2e/secret", 404],
    ["/intx/api/v1/orders%2Fx", 400],
    ["/intx/api/v1/a%5cb", 400],
    ["/intx/api/v1//portfolios", 400],
    ["/intx/api/v1/x%00y", 400],
    // An encoded letter would spell `orders` past the order guards and the allow-lists.
    ["/intx/api/v1/%6Frders", 400],
    ["/intx/api/v1/order%73", 400],
    ["/intx/api/v1/instruments/BTC%2DPERP", 400],
  ];
  for (const [path, status] of refused) {
    it(`refuses ${path} with ${status}`, async () => {
      venue();
      const r = await call(path);
      expect(r.status).toBe(status);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe(
        status === 400 ? "bad_path" : "not_found",
      );
      expect(sent).toHaveLength(0);
    });
  }

  it("refuses anything outside the venue's API prefix with 404", async () => {
    venue();
    for (const path of ["/intx/rest/funding-rate", "/intx/api/v1/", "/intx/api/v2/orders", "/intx/api/v1"]) {
      const r = await call(path);
      expect(r.status).toBe(404);
    }
    const absolute = await call("/intx/https://evil.test/api/v1/x");
    expect(absolute.status).toBe(400);
    expect(sent).toHaveLength(0);
  });

  it("a dot segment the URL parser already resolved is authorised and forwarded as the resolved path", async () => {
    venue();
    // `new Request` (like the platform) resolves `/./`; what is checked is exactly what is sent.
    const r = await call("/intx/api/v1/./portfolios", { token: READONLY });
    expect(r.status).toBe(200);
    expect(new URL((sent[0] as Request).url).pathname).toBe("/api/v1/portfolios");
    const escaped = await call("/intx/api/v1/../../cde/rest/kill-switch", { token: READONLY });
    expect(escaped.status).toBe(404);
    expect(sent).toHaveLength(1);
  });

  it("forwards path and query untouched, signing the path only", async () => {
    venue();
    const r = await call("/intx/api/v1/portfolios/p-1/fills?result_limit=5&order_id=a%20b");
    expect(r.status).toBe(200);
    expect(sent).toHaveLength(1);
    const out = sent[0] as Request;
    expect(out.url).toBe("https://intx.venue.test/api/v1/portfolios/p-1/fills?result_limit=5&order_id=a%20b");
    const ts = out.headers.get("cb-access-timestamp") as string;
    expect(out.headers.get("cb-access-sign")).toBe(
      referenceSignature(SECRET_B64, ts, "GET", "/api/v1/portfolios/p-1/fills", ""),
    );
    expect(out.headers.get("cb-access-key")).toBe("intx-key");
    expect(out.headers.get("authorization")).toBeNull();
  });
});

describe("relay: bodies and responses", () => {
  it("forwards the exact body bytes and signs those bytes", async () => {
    venue();
    const body = '{"client_order_id":"c-1","side":"BUY","size":"0.01","note":"caf\\u00e9 ☕"}';
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(200);
    const out = sent[0] as Request;
    expect(await out.text()).toBe(body);
    const ts = out.headers.get("cb-access-timestamp") as string;
    expect(out.headers.get("cb-access-sign")).toBe(referenceSignature(SECRET_B64, ts, "POST", "/api/v1/orders", body));
  });

  it("413 over the size cap, before anything is sent", async () => {
    venue();
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body: `{"x":"${"a".repeat(70_000)}"}`,
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(413);
    expect(sent).toHaveLength(0);
  });

  // Clients label JSON loosely: ccxt sends no content-type (also on DELETE, where it repeats the query as a JSON
  // body), and `fetch` labels a string body text/plain. A byte body gets no content-type from `Request`.
  const bytes = (text: string) => new TextEncoder().encode(text);
  const CANCEL = '{"portfolio":"1ai4ubgb-1-0","instrument":"BTC-PERP"}';
  const accepted: [string, string, string, BodyInit, string | undefined][] = [
    ["JSON with no content-type", "POST", "/api/v1/orders", bytes('{"side":"BUY"}'), undefined],
    ["JSON labelled text/plain", "POST", "/api/v1/orders", '{"side":"SELL"}', "text/plain;charset=UTF-8"],
    ["a DELETE with a JSON body and no content-type", "DELETE", "/api/v1/orders/o-1", bytes(CANCEL), undefined],
    [
      "JSON labelled application/json; charset",
      "PUT",
      "/api/v1/orders/o-1",
      '{"price":"1"}',
      "application/json; charset=utf-8",
    ],
  ];
  for (const [what, method, path, body, type] of accepted) {
    it(`${what}: forwarded byte for byte, signed, as application/json`, async () => {
      venue();
      const r = await call(`/intx${path}`, { method, body, headers: type ? { "content-type": type } : {} });
      expect(r.status).toBe(200);
      const out = sent[0] as Request;
      const text = typeof body === "string" ? body : new TextDecoder().decode(body as Uint8Array);
      expect(out.method).toBe(method);
      expect(await out.text()).toBe(text);
      expect(out.headers.get("content-type")).toBe(type?.startsWith("application/json") ? type : "application/json");
      const ts = out.headers.get("cb-access-timestamp") as string;
      expect(out.headers.get("cb-access-sign")).toBe(referenceSignature(SECRET_B64, ts, method, path, text));
    });
  }

  const refused: [string, BodyInit, string | undefined, number, string][] = [
    ["not JSON, no content-type", bytes("side=BUY"), undefined, 400, "bad_json"],
    ["not JSON, text/plain", "side=BUY", "text/plain", 400, "bad_json"],
    ["not JSON, application/json", "{side: BUY}", "application/json", 400, "bad_json"],
    ["not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), "application/json", 400, "bad_json"],
    ["a form", "side=BUY", "application/x-www-form-urlencoded", 415, "unsupported_media_type"],
    ["multipart", '{"side":"BUY"}', "multipart/form-data; boundary=x", 415, "unsupported_media_type"],
    ["HTML", '{"side":"BUY"}', "text/html", 415, "unsupported_media_type"],
  ];
  for (const [what, body, type, status, code] of refused) {
    it(`${what}: ${status} ${code}, before anything is sent`, async () => {
      venue();
      const r = await call("/intx/api/v1/orders", {
        method: "POST",
        body,
        headers: type ? { "content-type": type } : {},
      });
      expect(r.status).toBe(status);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(sent).toHaveLength(0);
    });
  }

  it("passes status and body through, strips set-cookie, hop-by-hop and CB-ACCESS headers, adds x-skewguard-*", async () => {
    venue(() =>
      Response.json(
        { title: "io.javalin.http.BadRequestResponse: Order rejected (DUPLICATE_CLIENT_ORDER_ID)", status: 400 },
        {
          status: 400,
          headers: { "set-cookie": "a=b", "cb-access-sign": "leak", connection: "close", "x-venue": "1" },
        },
      ),
    );
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { status: number }).status).toBe(400);
    expect(r.headers.get("set-cookie")).toBeNull();
    expect(r.headers.get("cb-access-sign")).toBeNull();
    expect(r.headers.get("connection")).toBeNull();
    expect(r.headers.get("x-venue")).toBe("1");
    expect(r.headers.get("x-skewguard-attempts")).toBe("1");
    expect(r.headers.get("x-skewguard-offset-ms")).toMatch(/^-?\d+$/);
  });

  it("502 with a JSON body when the venue is unreachable", async () => {
    venue(() => {
      throw new TypeError("network down");
    });
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(502);
    expect(await r.json()).toEqual({ error: { code: "venue_unreachable", message: "intx could not be reached" } });
  });

  it("504 with a JSON body when the venue does not answer in time, and a POST is not re-sent", async () => {
    venue(() => {
      // What fetch throws when the request's AbortSignal.timeout fires.
      throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
    });
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    expect(r.status).toBe(504);
    expect(await r.json()).toEqual({
      error: { code: "venue_timeout", message: "intx did not answer in time; it may have processed the request" },
    });
    expect(sent).toHaveLength(1);
  });

  it("503 naming the problem when the venue is not configured", async () => {
    venue();
    const ctx = createExecutionContext();
    const r = await worker.fetch(
      new Request("https://relay.test/cde/rest/funding-rate?symbol=BIPZ30", {
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
      workerEnv({ ...bindings, RELAY_TOKENS: JSON.stringify([{ name: "all", token: TOKEN, allow: ["* /*"] }]) }),
      ctx,
    );
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("venue_not_configured");
  });
});

describe("relay: documented behaviour the audit found untested", () => {
  // docs/relay.md, "Signing proxy": only `content-type` and `accept` are forwarded to the venue; the caller's
  // `Authorization` never is (and its own CB-ACCESS-* headers are replaced by skewguard's).
  it("forwards only the caller's content-type and accept; every other caller header stays behind", async () => {
    venue();
    const body = '{"client_order_id":"h-1","side":"BUY"}';
    const r = await call("/intx/api/v1/orders", {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json; charset=utf-8",
        accept: "application/json;q=0.9, text/plain;q=0.1",
        "user-agent": "bot/1.0",
        cookie: "session=caller",
        "x-forwarded-for": "198.51.100.7",
        "cf-connecting-ip": "198.51.100.7",
        "x-custom": "caller",
        "idempotency-key": "caller-key",
        origin: "https://caller.example",
        "cb-access-key": "caller-key",
        "cb-access-sign": "caller-sign",
        "cb-access-timestamp": "1",
        "cb-access-passphrase": "caller-pass",
      },
    });
    expect(r.status).toBe(200);
    const out = sent[0] as Request;
    const names = [...out.headers.keys()].sort();
    // The caller's two, skewguard's accept-encoding (docs/relay.md, "Compressed answers") and the four signed ones.
    expect(names).toEqual([
      "accept",
      "accept-encoding",
      "cb-access-key",
      "cb-access-passphrase",
      "cb-access-sign",
      "cb-access-timestamp",
      "content-type",
    ]);
    expect(out.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(out.headers.get("accept")).toBe("application/json;q=0.9, text/plain;q=0.1");
    expect(out.headers.get("cb-access-key")).toBe("intx-key");
    expect(out.headers.get("cb-access-passphrase")).toBe("intx-pass");
    const ts = out.headers.get("cb-access-timestamp") as string;
    expect(out.headers.get("cb-access-sign")).toBe(referenceSignature(SECRET_B64, ts, "POST", "/api/v1/orders", body));
  });

  // docs/relay.md: responses are read whole, at most 2 MiB; over it: 502 `venue_response_too_large`.
  it("a venue answer of exactly 2 MiB is relayed; one byte more is 502 venue_response_too_large", async () => {
    const MIB2 = 2 * 1024 * 1024;
    // A JSON string of `size` bytes in all: `"` + padding + `"`.
    const answer = (size: number) => `"${"a".repeat(size - 2)}"`;
    let size = MIB2;
    venue(() => new Response(answer(size), { headers: { "content-type": "application/json" } }));
    const at = await call("/intx/api/v1/portfolios");
    expect(at.status).toBe(200);
    expect((await at.arrayBuffer()).byteLength).toBe(MIB2);

    size = MIB2 + 1;
    const over = await call("/intx/api/v1/portfolios");
    expect(over.status).toBe(502);
    expect(await over.json()).toEqual({
      error: {
        code: "venue_response_too_large",
        message: `intx answered with a body too large to relay (over ${MIB2} bytes)`,
      },
    });
    // Declared too large by Content-Length: refused the same, without reading it.
    venue(
      () =>
        new Response(answer(MIB2 + 1), {
          headers: { "content-type": "application/json", "content-length": String(MIB2 + 1) },
        }),
    );
    const declared = await call("/intx/api/v1/portfolios");
    expect([declared.status, ((await declared.json()) as { error: { code: string } }).error.code]).toEqual([
      502,
      "venue_response_too_large",
    ]);
  });

  // docs/relay.md: every relayed answer carries `x-skewguard-uncertainty-ms`, `unknown` before the first sample;
  // docs/clock.md: a response brackets θ in [D − t_recv, D + 1 s − t_send], and the header is that half-width. With
  // the local clock frozen (t_send = t_recv = T) a venue stamping D gives exactly θ ∈ [D − T, D − T + 1000]: offset
  // D − T + 500, half-width 500, and GET /clock says the same.
  it("x-skewguard-uncertainty-ms: unknown before the first sample, then the bracket's half-width, as /clock shows", async () => {
    const e = workerEnv({
      ...bindings,
      INTX_BASE_URL: `https://uncertainty-${Date.now()}.venue.test`,
      INTX_RATE_LIMIT_PER_SECOND: "off",
    });
    const T = Date.parse("2026-03-01T12:00:00.300Z");
    const D = "Sun, 01 Mar 2026 12:00:37 GMT"; // the venue 37 s ahead
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(T);
      sent = [];
      vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
        sent.push(new Request(input, init));
        return Response.json([], { headers: { date: D } });
      });
      const get = async () => {
        const ctx = createExecutionContext();
        const request = new Request("https://relay.test/intx/api/v1/portfolios", {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const response = await worker.fetch(request, e, ctx);
        await waitOnExecutionContext(ctx);
        return response;
      };
      const first = await get();
      expect(first.status).toBe(200);
      expect(first.headers.get("x-skewguard-uncertainty-ms")).toBe("unknown");
      expect(first.headers.get("x-skewguard-offset-ms")).toBe("0");
      const second = await get();
      expect(second.headers.get("x-skewguard-uncertainty-ms")).toBe("500");
      expect(second.headers.get("x-skewguard-offset-ms")).toBe(String(37_000 - 300 + 500));
      const clock = await worker.fetch(new Request("https://relay.test/clock"), e, createExecutionContext());
      expect(((await clock.json()) as { intx: unknown }).intx).toMatchObject({
        uncertainty_ms: 500,
        offset_ms: 37_200,
        source: "responses",
      });
      expect(sent).toHaveLength(2);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("relay: what the caller asked for, what the clock knew, how much is relayed", () => {
  it("the caller's Accept goes to the venue as is (application/json only when it named none)", async () => {
    venue();
    await call("/intx/api/v1/portfolios", { headers: { accept: "text/plain" } });
    await call("/intx/api/v1/portfolios");
    expect(sent.map((r) => r.headers.get("accept"))).toEqual(["text/plain", "application/json"]);
  });

  it("x-skewguard-uncertainty-ms is unknown before the clock has an estimate, whole milliseconds after", async () => {
    // Its own base URL: a clock of its own, which no earlier test taught.
    const fresh = { ...bindings, INTX_BASE_URL: "https://intx-uncertainty.venue.test" };
    venue();
    const ask = async () => {
      const ctx = createExecutionContext();
      const headers = { authorization: `Bearer ${TOKEN}` };
      const r = await worker.fetch(new Request("https://relay.test/intx/api/v1/portfolios", { headers }), fresh, ctx);
      await waitOnExecutionContext(ctx);
      return r.headers.get("x-skewguard-uncertainty-ms");
    };
    expect(await ask()).toBe("unknown");
    expect(await ask()).toMatch(/^\d+$/);
  });

  it("a venue answer of exactly 2 MiB is relayed whole; one byte more is 502 venue_response_too_large", async () => {
    const MIB2 = 2 * 1024 * 1024; // docs/relay.md: read whole, at most 2 MiB
    const json = (bytes: number) => `"${"a".repeat(bytes - 2)}"`;
    venue(() => new Response(json(MIB2), { headers: { "content-type": "application/json" } }));
    const whole = await call("/intx/api/v1/portfolios");
    expect(whole.status).toBe(200);
    expect((await whole.arrayBuffer()).byteLength).toBe(MIB2);
    venue(() => new Response(json(MIB2 + 1), { headers: { "content-type": "application/json" } }));
    const over = await call("/intx/api/v1/portfolios");
    expect(over.status).toBe(502);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("venue_response_too_large");
  });
});
