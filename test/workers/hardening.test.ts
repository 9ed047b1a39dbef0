// What a security review found, each reproduced against the simulator and pinned: a venue page that echoes the
// request's credentials is never relayed, an answer that is not the venue's does not teach the clock, redirects are
// never followed with a signed request (nor by a job's forward), and `;` path parameters are refused.

import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { echoes, unescaped } from "../../src/adapters/venue-answer.ts";
import worker from "../../src/index.ts";
import { relay } from "../../src/routes/relay.ts";
import { intx } from "../../src/venues/intx.ts";
import { DEV, simControl, simEnv } from "../support/sim.ts";

const TOKEN = "hardening-token-0123456789abcdef";
let n = 0;
function bindings(overrides: Record<string, unknown> = {}) {
  return simEnv(`hardening-${n++}-${Date.now()}.sim.test`, {
    RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/*", "* /cde/*"] }]),
    INTX_RATE_LIMIT_PER_SECOND: "off",
    ...overrides,
  });
}

async function call(e: Env, path: string, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${TOKEN}`);
  const r = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), e, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

const order = (id: string) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    client_order_id: id,
    side: "BUY",
    size: "0.01",
    tif: "IOC",
    type: "MARKET",
    instrument: "BTC-PERP",
  }),
});

async function clockOffset(e: Env): Promise<number> {
  const r = await worker.fetch(new Request("https://relay.test/clock"), e, createExecutionContext());
  return ((await r.json()) as { intx: { offset_ms: number } }).intx.offset_ms;
}

afterEach(() => vi.restoreAllMocks());

describe("a venue page that reflects the request", () => {
  it("is withheld: 502 JSON, and none of the key, passphrase or signature reaches the caller", async () => {
    const e = bindings();
    await simControl({ reset: true, skew_ms: 9_000 });
    expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
    await simControl({ fault: { kind: "reflect", count: 1 } });
    const r = await call(e, "/intx/api/v1/orders", order(`reflect-${n}`));
    const text = await r.text();
    expect(r.status).toBe(502);
    expect(JSON.parse(text)).toEqual({
      error: {
        code: "venue_response_withheld",
        message: "intx answered with a body that echoed the request's credentials, so it is not passed on (status 500)",
      },
    });
    for (const secret of [DEV.INTX_API_KEY, DEV.INTX_API_PASSPHRASE]) expect(text).not.toContain(secret);
    expect((await simControl()).effects.orders_placed).toBe(0);
  });

  it("a non-JSON 5xx becomes skewguard's own 502 naming the status, and its Date teaches nothing", async () => {
    const e = bindings();
    await simControl({ reset: true, skew_ms: 41_000 });
    expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
    const learned = await clockOffset(e);
    expect(Math.abs(learned - 41_000)).toBeLessThan(1_100);
    // A front server's error page, stamped by a clock 41 s away from the venue's, three times (the GET is retried).
    const real = globalThis.fetch;
    let pages = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      if (pages >= 3) return real(input, init);
      pages++;
      return new Response("<html><body>Bad gateway</body></html>", {
        status: 502,
        headers: { "content-type": "text/html", date: new Date().toUTCString() },
      });
    });
    const r = await call(e, "/intx/api/v1/portfolios");
    expect(r.status).toBe(502);
    expect(await r.json()).toEqual({
      error: { code: "venue_error", message: "intx answered 502 with a body that is not JSON" },
    });
    expect(pages).toBe(3);
    expect(await clockOffset(e)).toBe(learned);
    const next = await call(e, "/intx/api/v1/portfolios");
    expect(next.status).toBe(200);
    expect(next.headers.get("x-skewguard-attempts")).toBe("1");
  });
});

describe("answers that are not the venue's API teach the clock nothing", () => {
  // docs/clock.md: "Only the venue's own answers teach the clock: those below 500 that are JSON or plain text ...
  // An HTML error page, any 5xx and any redirect ... their `Date` is ignored." Checked on a clock that knows nothing
  // yet (a fresh host, CLOCK_SYNC never in tests): any sample taught would show in GET /clock.
  async function intxClock(e: Env) {
    const r = await worker.fetch(new Request("https://relay.test/clock"), e, createExecutionContext());
    return ((await r.json()) as { intx: Record<string, unknown> }).intx;
  }
  const untaught = { offset_ms: null, uncertainty_ms: null, samples: 0, last_sample_at: null, source: "none" };
  /** The next venue call answers `page`, stamped with the local clock (41 s from the simulator's). */
  function answerNext(page: () => Response) {
    const real = globalThis.fetch;
    let used = false;
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      if (used) return real(input, init);
      used = true;
      const answer = page();
      const headers = new Headers(answer.headers);
      headers.set("date", new Date().toUTCString());
      return new Response(answer.body, { status: answer.status, headers });
    });
  }

  it("a JSON 5xx and an HTML page below 500 leave the clock untaught; the venue's own answer then teaches it", async () => {
    const e = bindings();
    await simControl({ reset: true, skew_ms: 41_000 });
    expect(await intxClock(e)).toMatchObject(untaught);

    // A JSON 503 (a POST: passed through once, never retried).
    answerNext(() => Response.json({ message: "service unavailable" }, { status: 503 }));
    const json5xx = await call(e, "/intx/api/v1/orders", order(`json-503-${n}`));
    expect([json5xx.status, json5xx.headers.get("x-skewguard-attempts")]).toEqual([503, "1"]);
    expect(await intxClock(e)).toMatchObject(untaught);
    vi.restoreAllMocks();

    // An HTML 404, as a gateway or a dev server in front of the venue would answer.
    answerNext(
      () =>
        new Response("<html><body>Not Found</body></html>", {
          status: 404,
          headers: { "content-type": "text/html; charset=utf-8" },
        }),
    );
    const html404 = await call(e, "/intx/api/v1/portfolios");
    expect([html404.status, html404.headers.get("x-skewguard-attempts")]).toEqual([404, "1"]);
    expect(await intxClock(e)).toMatchObject(untaught);
    vi.restoreAllMocks();

    // So the next request still signs with no estimate: the simulator, 41 s ahead, refuses it, and its JSON refusal
    // is what first teaches the clock (the one re-signed retry).
    const next = await call(e, "/intx/api/v1/portfolios");
    expect([next.status, next.headers.get("x-skewguard-attempts")]).toEqual([200, "2"]);
    const taught = await intxClock(e);
    expect(taught.source).toBe("responses");
    expect(Math.abs((taught.offset_ms as number) - 41_000)).toBeLessThan(1_100);
  });
});

/** `bytes` compressed with each of `formats` in turn, as a server applies the codings it lists. */
async function compressed(bytes: Uint8Array, ...formats: ("gzip" | "deflate")[]): Promise<Uint8Array<ArrayBuffer>> {
  let out = new Uint8Array(bytes);
  for (const format of formats) {
    const stream = new Blob([out]).stream().pipeThrough(new CompressionStream(format));
    out = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  return out;
}

/** Answers the next venue call with `make(the simulator's own answer)`; later calls reach the simulator. */
function rewriteNext(make: (answer: Response) => Promise<Response>) {
  const real = globalThis.fetch;
  let used = false;
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const answer = await real(input, init);
    if (used) return answer;
    used = true;
    return make(answer);
  });
}

describe("the echo check reads what the caller would read", () => {
  const withheld = {
    error: {
      code: "venue_response_withheld",
      message: "intx answered with a body that echoed the request's credentials, so it is not passed on (status 500)",
    },
  };

  // gzip is undone by workerd's fetch itself (the header stays); deflate and gzip inside gzip are not, and UTF-16
  // hides every ASCII value from a UTF-8 reading.
  for (const encoding of ["gzip", "deflate", "gzip, gzip", "utf-16le", "utf-16be"]) {
    it(`a reflected page sent as ${encoding} is withheld: 502, and nothing is placed`, async () => {
      const e = bindings();
      await simControl({ reset: true });
      expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
      await simControl({ fault: { kind: "reflect", count: 1, encoding } });
      const r = await call(e, "/intx/api/v1/orders", order(`reflect-${n}`));
      expect(r.status).toBe(502);
      expect(await r.json()).toEqual(withheld);
      expect(r.headers.get("content-encoding")).toBeNull();
      const state = await simControl();
      expect(state.effects.orders_placed).toBe(0);
      expect(state.fault).toBeNull(); // the fault fired: the page was sent
    });
  }

  it("workerd's fetch undoes a lone gzip and keeps the header, but not deflate nor gzip inside gzip", async () => {
    const seen: Record<string, [string | null, string]> = {};
    for (const encoding of ["gzip", "deflate", "gzip, gzip"]) {
      await simControl({ reset: true, fault: { kind: "reflect", count: 1, encoding } });
      const r = await fetch("https://pin.sim.test/api/v1/portfolios");
      const head = [...new Uint8Array(await r.arrayBuffer()).slice(0, 2)].map((b) => b.toString(16)).join(" ");
      seen[encoding] = [r.headers.get("content-encoding"), head];
    }
    // "<!" is the page itself; 78 9c a zlib header; 1f 8b gzip's magic number.
    expect(seen).toEqual({
      gzip: ["gzip", "3c 21"],
      deflate: ["deflate", "78 9c"],
      "gzip, gzip": ["gzip, gzip", "1f 8b"],
    });
  });

  for (const coding of ["br", "compress", "gzip, zstd"]) {
    it(`an answer in ${coding} is skewguard's own 502 naming it, never the bytes`, async () => {
      const e = bindings();
      await simControl({ reset: true });
      rewriteNext(async (answer) => {
        const headers = new Headers(answer.headers);
        headers.set("content-encoding", coding);
        return new Response(new Uint8Array([0x0b, 0x02, 0x80, 0x7b, 0x7d, 0x03]), { status: 200, headers });
      });
      const r = await call(e, "/intx/api/v1/portfolios");
      expect(r.status).toBe(502);
      const name = coding.split(", ").at(-1) === "zstd" ? "zstd" : coding;
      expect(await r.json()).toEqual({
        error: {
          code: "venue_response_undecodable",
          message: `intx answered in an encoding skewguard cannot decode, so it could not be checked and is not passed on (unsupported content-encoding ${name})`,
        },
      });
    });
  }

  it("a content-encoding that names nothing plain is not echoed back to the caller", async () => {
    const e = bindings();
    await simControl({ reset: true });
    rewriteNext(async (answer) => {
      const headers = new Headers(answer.headers);
      headers.set("content-encoding", "x<script>");
      return new Response("{}", { status: 200, headers });
    });
    const r = await call(e, "/intx/api/v1/portfolios");
    expect(r.status).toBe(502);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(
      /\(unsupported content-encoding that is not a plain name\)$/,
    );
  });

  it("a content-encoding header that echoes the key is withheld, even in a coding skewguard cannot decode", async () => {
    const e = bindings();
    await simControl({ reset: true });
    rewriteNext(async (answer) => {
      const headers = new Headers(answer.headers);
      headers.set("content-encoding", DEV.INTX_API_KEY);
      return new Response("{}", { status: 200, headers });
    });
    const r = await call(e, "/intx/api/v1/portfolios");
    expect(r.status).toBe(502);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("venue_response_withheld");
  });

  for (const formats of [["gzip"], ["deflate"], ["gzip", "gzip"]] as const) {
    it(`a venue answer in ${formats.join(" inside ")} passes through decoded and intact`, async () => {
      const e = bindings();
      await simControl({ reset: true });
      const plain = await call(e, "/intx/api/v1/portfolios");
      expect(plain.status).toBe(200);
      const expected = await plain.json();
      rewriteNext(async (answer) => {
        const headers = new Headers(answer.headers);
        headers.set("content-encoding", formats.join(", "));
        const bytes = new Uint8Array(await answer.arrayBuffer());
        return new Response(await compressed(bytes, ...formats), { status: answer.status, headers });
      });
      const r = await call(e, "/intx/api/v1/portfolios");
      expect(r.status).toBe(200);
      expect(r.headers.get("content-encoding")).toBeNull();
      expect(r.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await r.json()).toEqual(expected);
    });
  }

  it("finds a value in UTF-8, UTF-16 either way round, and behind JSON, HTML and percent escapes", () => {
    const key = "key+with/slash=";
    const headers = new Headers();
    const utf8 = (text: string) => new TextEncoder().encode(text);
    const utf16 = (text: string, littleEndian: boolean, offset = 0) => {
      const bytes = new Uint8Array(offset + text.length * 2);
      const view = new DataView(bytes.buffer);
      for (let i = 0; i < text.length; i++) view.setUint16(offset + i * 2, text.charCodeAt(i), littleEndian);
      return bytes;
    };
    const forms = [
      key,
      "key\\u002bwith\\/slash\\u003D",
      "key\\u002Bwith\\u002fslash=",
      "key&#43;with&#47;slash&#61;",
      "key&#x2b;with&#X2F;slash&#x3d",
      "key&plus;with&sol;slash&equals;",
      "key%2bwith%2Fslash%3d",
      "key%252Bwith%252Fslash%253D",
      "key&#92;u002Bwith/slash=",
    ];
    for (const form of forms) expect(echoes(utf8(`<p>${form}</p>`), headers, [key]), form).toBe(true);
    for (const littleEndian of [true, false]) {
      for (const offset of [0, 1]) {
        expect(echoes(utf16(`x ${key} y`, littleEndian, offset), headers, [key])).toBe(true);
        expect(echoes(utf16(`x key&#43;with/slash= y`, littleEndian, offset), headers, [key])).toBe(true);
      }
    }
    expect(echoes(utf8("nothing here"), new Headers({ "x-echo": "key%2Bwith%2Fslash%3D" }), [key])).toBe(true);
    expect(echoes(utf8("key+with/slash"), headers, [key])).toBe(false);
    // Shorter than 8 characters: not searched, or a test's one-letter key would match any body.
    expect(echoes(utf8("a short one: k3y+/=7"), headers, ["k3y+/=7"])).toBe(false);
    // Exactly 8 characters: searched.
    expect(echoes(utf8("eight: k3y+/=78"), headers, ["k3y+/=78"])).toBe(true);
    expect(unescaped("a&#x2B;b\\u0026c%41&lt;")).toBe("a+b&cA<");
  });
});

describe("redirects", () => {
  it("a 307 from the venue is a 502 naming the host; nothing reaches the other origin and nothing is placed", async () => {
    const e = bindings();
    await simControl({ reset: true });
    expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
    await simControl({ fault: { kind: "redirect", count: 1 } });
    const r = await call(e, "/intx/api/v1/orders", order(`redirect-${n}`));
    expect(r.status).toBe(502);
    expect(await r.json()).toEqual({
      error: {
        code: "venue_redirect",
        message:
          "intx answered with a redirect; skewguard never follows one with a signed request (to redirect-target.sim)",
      },
    });
    const state = await simControl();
    expect(state.captured).toEqual([]);
    expect(state.effects.orders_placed).toBe(0);
  });

  it("a job's forward is not redirected past the https rule: recorded as failed, naming the host", async () => {
    const secret = `whsec_${btoa("forward-secret-for-the-receiver!")}`;
    const to = encodeURIComponent("http://redirect-target.sim/_sim/captured/forward");
    const e = bindings({
      FORWARD_SECRET: secret,
      JOBS: JSON.stringify([
        {
          name: "redirected",
          cron: "* * * * *",
          venue: "cde",
          path: "/rest/funding-rate",
          query: "symbol=BIPZ30",
          forward: { url: `https://forward.sim.test/_sim/redirect?to=${to}`, secret_binding: "FORWARD_SECRET" },
        },
      ]),
    });
    await simControl({ reset: true });
    const scheduledTime = Date.UTC(2026, 10, 23, 9, 0, 0);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime }), e, ctx);
    await waitOnExecutionContext(ctx);
    const row = await env.DB.prepare(
      "SELECT forward_state, forward_error FROM job_runs WHERE job = 'redirected'",
    ).first();
    expect(row).toEqual({
      forward_state: "failed",
      forward_error: "receiver answered a redirect to redirect-target.sim; not followed",
    });
    expect((await simControl()).captured).toEqual([]);
  });
});

describe("path parameters", () => {
  it("a ; anywhere in the path is 400 before authentication, and nothing is sent", async () => {
    const e = bindings();
    await simControl({ reset: true });
    for (const path of ["/intx/api/v1/portfolios/..;/orders", "/intx/api/v1/orders;jsessionid=x"]) {
      const r = await worker.fetch(new Request(`https://relay.test${path}`), e, createExecutionContext());
      expect(r.status).toBe(400);
      expect(await r.json()).toEqual({ error: { code: "bad_path", message: "path refused: path parameter (;)" } });
    }
    expect((await simControl()).effects.requests).toBe(0);
  });
});

describe("requests and status that tell the truth", () => {
  it("a GET with a body is 400 before any send slot is taken, and nothing is sent", async () => {
    const e = bindings({ INTX_RATE_LIMIT_PER_SECOND: "40" });
    await simControl({ reset: true });
    // curl -X GET -d '{}' arrives like this from the network; `new Request` cannot build one, so a POST is dressed
    // as a GET for the route (method and headers are all it reads besides the URL and the body).
    const post = new Request("https://relay.test/intx/api/v1/portfolios", { method: "POST", body: "{}" });
    const headers = new Headers({ authorization: `Bearer ${TOKEN}`, "content-type": "application/json" });
    const getWithBody = new Proxy(post, {
      get(target, key) {
        if (key === "method") return "GET";
        if (key === "headers") return headers;
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    await expect(relay(intx, getWithBody, e, createExecutionContext())).rejects.toMatchObject({
      status: 400,
      code: "body_not_allowed",
      message: "a GET request cannot carry a body",
    });
    expect((await simControl()).effects.requests).toBe(0);
  });

  it("an OPTIONS with a body is 400 like a GET's, and nothing reaches the venue", async () => {
    const e = bindings();
    await simControl({ reset: true });
    // OPTIONS counts as a read (it passes a halt, read_only and the guards): sent with an order body, it would be a
    // write that no rule looked at.
    const r = await call(e, "/intx/api/v1/orders", { ...order(`options-${n}`), method: "OPTIONS" });
    expect(r.status).toBe(400);
    expect(await r.json()).toEqual({
      error: { code: "body_not_allowed", message: "an OPTIONS request cannot carry a body" },
    });
    const { effects } = await simControl();
    expect(effects.requests).toBe(0);
    expect(effects.orders_placed).toBe(0);
  });

  it("/clock after a restart reports the shared estimate the next request will use", async () => {
    const host = `restart-${Date.now()}.sim.test`;
    const e = bindings({ INTX_BASE_URL: `https://${host}` });
    const now = Date.now();
    const stored = { offsetMs: 37_250, lowMs: 37_100, highMs: 37_400, samples: 12, updatedAt: now - 1_000 };
    await env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName(`intx https://${host}`)).offer(stored, 100);
    const r = await worker.fetch(new Request("https://relay.test/clock"), e, createExecutionContext());
    const intx = ((await r.json()) as { intx: Record<string, unknown> }).intx;
    expect(intx).toMatchObject({ configured: true, source: "shared", offset_ms: 37_250 });
    // ±150 ms as stored, widened by the 100 ppm drift allowance for its age of about a second.
    expect(intx.uncertainty_ms).toBeGreaterThanOrEqual(150);
    expect(intx.uncertainty_ms).toBeLessThanOrEqual(152);
  });
});
