// One JSON log line per request with a request id that is also returned; /health and /clock say nothing secret.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { SECRET_B64 } from "../support/fake-venue.ts";
import { scanConsole } from "../support/leaks.ts";

const TOKEN = "observability-token-0123456789";
const bindings = workerEnv({
  INTX_BASE_URL: "https://intx.venue.test",
  INTX_API_KEY: "intx-key",
  INTX_API_SECRET: SECRET_B64,
  INTX_API_PASSPHRASE: "intx-passphrase-value",
  CDE_BASE_URL: "https://cde.venue.test",
  CDE_API_KEY: "cde-key",
  CDE_API_SECRET: "not base64!",
  CDE_API_PASSPHRASE: "cde-passphrase-value",
  RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/*", "GET /health"] }]),
});

async function call(path: string, headers: Record<string, string> = {}) {
  const ctx = createExecutionContext();
  const r = await worker.fetch(new Request(`https://relay.test${path}`, { headers }), bindings, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

afterEach(() => vi.restoreAllMocks());

/**
 * `bindings` on an INTX endpoint of its own (each base URL has its own clock), whose clock has learnt from exactly
 * one response: a test that reads the clock depends on no other test.
 */
async function taughtOnce(host: string, extra: Record<string, unknown> = {}): Promise<Env> {
  const e = workerEnv({ ...bindings, INTX_BASE_URL: `https://${host}.venue.test`, ...extra });
  const spy = vi
    .spyOn(globalThis, "fetch")
    .mockImplementation(async () => Response.json([], { headers: { date: new Date().toUTCString() } }));
  const ctx = createExecutionContext();
  const request = new Request("https://relay.test/intx/api/v1/portfolios", {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const r = await worker.fetch(request, e, ctx);
  await waitOnExecutionContext(ctx);
  expect(r.status).toBe(200);
  await r.body?.cancel();
  expect(spy).toHaveBeenCalledTimes(1);
  spy.mockRestore();
  return e;
}

/** A /health request with a token allowed GET /health: the full report. */
const detailed = () => new Request("https://relay.test/health", { headers: { authorization: `Bearer ${TOKEN}` } });

describe("observability", () => {
  it("returns a request id and logs one JSON line for it, with route, status, attempts and no secrets", async () => {
    const lines: string[] = [];
    for (const m of ["log", "warn", "error"] as const) {
      vi.spyOn(console, m).mockImplementation((...a: unknown[]) => {
        lines.push(a.map(String).join(" "));
        scanConsole(a);
      });
    }
    vi.spyOn(globalThis, "fetch").mockImplementation(async () =>
      Response.json([], { headers: { date: new Date().toUTCString() } }),
    );
    const r = await call("/intx/api/v1/portfolios?x=1", { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(200);
    const id = r.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const mine = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.id === id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      event: "request",
      method: "GET",
      route: "/intx/api/v1/portfolios",
      venue: "intx",
      status: 200,
      attempts: 1,
    });
    for (const secret of [TOKEN, SECRET_B64, "intx-passphrase-value"]) expect(lines.join("\n")).not.toContain(secret);
  });

  it("GET /health names the misconfigured binding without its value, and answers 503 ok:false", async () => {
    const r = await call("/health", { authorization: `Bearer ${TOKEN}` });
    expect(r.status).toBe(503);
    const body = (await r.json()) as {
      ok: boolean;
      problems: { binding: string; subject?: string }[];
      venues: Record<string, { status: string; problems: { binding: string }[] }>;
    };
    expect(body.ok).toBe(false);
    expect(body.problems.map((p) => [p.binding, p.subject])).toEqual([["CDE_API_SECRET", "cde"]]);
    expect(body.venues.intx?.status).toBe("configured");
    expect(body.venues.cde?.status).toBe("misconfigured");
    expect(body.venues.cde?.problems.map((p) => p.binding)).toEqual(["CDE_API_SECRET"]);
    const text = JSON.stringify(body);
    for (const secret of ["not base64!", "cde-passphrase-value", SECRET_B64, TOKEN]) expect(text).not.toContain(secret);
  });

  it("GET /health reports each bad webhook route by name and what is wrong, and the clock's state", async () => {
    const hooks = JSON.stringify([
      {
        name: "ok",
        verify: "bearer",
        secret_binding: "HOOK_T",
        request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
      },
      {
        name: "bad",
        verify: "magic",
        secret_binding: "HOOK_T",
        request: { venue: "intx", method: "GET", path: "/etc" },
      },
      {
        name: "tmpl",
        verify: "bearer",
        secret_binding: "HOOK_T",
        request: { venue: "cde", method: "POST", path: "/rest/instruments", body: { x: "{{nope}}" } },
      },
      {
        name: "cid",
        verify: "bearer",
        secret_binding: "HOOK_T",
        request: {
          venue: "intx",
          method: "POST",
          path: "/api/v1/orders",
          body: { client_order_id: "tv-order-1", side: "BUY", size: "1", type: "MARKET", tif: "IOC", instrument: "X" },
        },
      },
      {
        name: "kill",
        verify: "bearer",
        secret_binding: "HOOK_T",
        request: {
          venue: "cde",
          method: "POST",
          path: "/rest/kill-switch",
          body: { only_cancel_no_trading_lock: true },
        },
      },
    ]);
    // The same env, so the same runtime: /health shows the clock that one relayed response taught.
    const taught = await taughtOnce("obs-hooks", { HOOKS: hooks });
    const ctx = createExecutionContext();
    const r = await worker.fetch(detailed(), taught, ctx);
    const body = (await r.json()) as { hooks: unknown; venues: { intx: { clock: unknown } } };
    expect(body.hooks).toEqual({
      routes: ["ok"],
      problems: [
        { route: "bad", message: "verify must be standard-webhooks, tradingview or bearer" },
        { route: "bad", message: "request.path must be a path under /api/v1/, with no query or dot segments" },
        { route: "tmpl", message: "the template uses {{nope}}, which is not a declared field" },
        {
          route: "cid",
          message:
            'request.body.client_order_id "tv-order-1" is not in one of INTX\'s forms; INTX takes {{client_order_id}} ' +
            "(skewguard's own id, a UUID), a declared uuid field, or a literal of 18 ASCII characters, 20 letters, " +
            "digits or dashes, 31 lowercase hex digits, or a lowercase UUID",
        },
        {
          route: "kill",
          message:
            "request.body must name exactly one of fcm_uuid, firm_uuid, trading_user_uuid for a CDE kill-switch " +
            "(it names 0)",
        },
      ],
    });
    // One response taught the clock: a single whole-second Date brackets ±500 ms (+ the round trip, 0–10 ms here).
    const clock = body.venues.intx.clock as { source: string; uncertainty_ms: number };
    expect(clock.source).toBe("responses");
    expect(clock.uncertainty_ms).toBeGreaterThanOrEqual(500);
    expect(clock.uncertainty_ms).toBeLessThanOrEqual(510);
  });

  it("GET /health is 200 ok:true only when nothing is wrong; it names RELAY_TOKENS and a hook's missing secret", async () => {
    const health = async (overrides: Record<string, unknown>) => {
      const e = workerEnv({ ...bindings, CDE_API_SECRET: SECRET_B64, ...overrides });
      const r = await worker.fetch(detailed(), e, createExecutionContext());
      return { status: r.status, body: (await r.json()) as { ok: boolean; problems: Record<string, string>[] } };
    };
    const good = await health({});
    expect(good).toMatchObject({ status: 200, body: { ok: true, problems: [] } });
    // Without tokens nobody can authenticate: the unauthenticated report still names the binding.
    const e = workerEnv({ ...bindings, CDE_API_SECRET: SECRET_B64, RELAY_TOKENS: "" });
    const noTokens = await worker.fetch(new Request("https://relay.test/health"), e, createExecutionContext());
    expect(noTokens.status).toBe(503);
    expect(await noTokens.json()).toEqual({ ok: false, problems: [{ binding: "RELAY_TOKENS" }] });
    expect((await worker.fetch(detailed(), e, createExecutionContext())).status).toBe(503);
    const hooks = JSON.stringify([
      {
        name: "kill",
        verify: "bearer",
        secret_binding: "HOOK_UNSET",
        request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
      },
    ]);
    const noSecret = await health({ HOOKS: hooks });
    expect(noSecret.status).toBe(503);
    expect(noSecret.body.problems).toEqual([
      { binding: "HOOK_UNSET", subject: "kill", message: "is not set; the route answers 503" },
    ]);
    const nothing = await health({
      INTX_API_KEY: "",
      INTX_API_SECRET: "",
      INTX_API_PASSPHRASE: "",
      CDE_API_KEY: "",
      CDE_API_SECRET: "",
      CDE_API_PASSPHRASE: "",
    });
    expect(nothing.status).toBe(503);
    expect(nothing.body.problems.map((p) => p.binding)).toEqual(["INTX_API_KEY, CDE_API_KEY"]);
  });

  // Unauthenticated /health says whether all is well and which bindings are wrong, and nothing an operator named
  // (issue 24, item 6): binding names are public, route, job, sink and account names are not.
  it("GET /health without a token: ok and the bindings at fault only; with a token allowed GET /health, all", async () => {
    const hooks = JSON.stringify([
      {
        name: "secret-route",
        verify: "bearer",
        secret_binding: "HOOK_SECRET_NAME",
        request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
      },
      {
        name: "other-route",
        verify: "magic",
        secret_binding: "HOOK_X",
        request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
      },
    ]);
    const e = workerEnv({
      ...bindings,
      CDE_API_SECRET: SECRET_B64,
      HOOKS: hooks,
      ACCOUNTS: JSON.stringify([{ name: "zulu", venue: "intx" }]),
      JOBS: JSON.stringify([{ name: "secret-job", cron: "*/5 * * * *", venue: "nowhere", path: "/x" }]),
    });
    const open = await worker.fetch(new Request("https://relay.test/health"), e, createExecutionContext());
    expect(open.status).toBe(503);
    const text = await open.text();
    expect(JSON.parse(text)).toEqual({
      ok: false,
      problems: [{ binding: "ACCOUNTS" }, { binding: "HOOKS" }, { binding: "JOBS" }],
    });
    for (const name of ["secret-route", "other-route", "HOOK_SECRET_NAME", "zulu", "ZULU", "secret-job"]) {
      expect(text).not.toContain(name);
    }
    const full = await worker.fetch(detailed(), e, createExecutionContext());
    expect(full.status).toBe(503);
    const body = await full.text();
    for (const name of ["secret-route", "other-route", "HOOK_SECRET_NAME", "zulu", "secret-job"])
      expect(body).toContain(name);
    const wrongToken = new Request("https://relay.test/health", {
      headers: { authorization: "Bearer not-a-token-0123456789" },
    });
    expect((await worker.fetch(wrongToken, e, createExecutionContext())).status).toBe(401);
  });

  it("GET /health warns when the clock's worst error comes within 1 s of the venue's window", async () => {
    // One response bracketed ±500–510 ms: with 0.5 s of rounding, at most about 1.01 s off.
    const taught = await taughtOnce("obs-warning");
    const health = async (window: string) => {
      const e = workerEnv({ ...taught, INTX_WINDOW_SECONDS: window });
      const r = await worker.fetch(detailed(), e, createExecutionContext());
      return ((await r.json()) as { venues: { intx: { clock: { uncertainty_ms: number; warning?: string } } } }).venues
        .intx.clock;
    };
    expect((await health("5")).warning).toBeUndefined();
    const near = await health("2");
    // ±500 ms from the one whole-second Date, the round trip (0–10 ms here), and 500 ms of rounding the header.
    const said = /^timestamps may be off by (\d+) ms, within 1 s of the 2 s window$/.exec(near.warning ?? "");
    expect(said).not.toBeNull();
    expect(Number(said?.[1])).toBeGreaterThanOrEqual(1_000);
    expect(Number(said?.[1])).toBeLessThanOrEqual(1_010);
  });

  it("GET /clock reports each venue, null before any sample", async () => {
    const r = await call("/clock");
    expect(r.status).toBe(200);
    const body = (await r.json()) as Record<string, Record<string, unknown>>;
    expect(body.cde).toEqual({ configured: false });
    expect(body.intx).toMatchObject({ configured: true, window_seconds: 5 });
    expect(Object.keys(body.intx ?? {}).sort()).toEqual(
      ["configured", "last_sample_at", "offset_ms", "samples", "source", "uncertainty_ms", "window_seconds"].sort(),
    );
  });

  it("405 for a non-GET on /health, 404 JSON for an unknown route", async () => {
    const ctx = createExecutionContext();
    const post = await worker.fetch(new Request("https://relay.test/health", { method: "POST" }), bindings, ctx);
    expect(post.status).toBe(405);
    const missing = await call("/nope");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: { code: "not_found", message: expect.any(String) } });
  });
});
