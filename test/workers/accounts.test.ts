// Several API keys per venue in one deployment, proven by the simulator's per-account state: the relay signs with
// the account its path names, a token allowed one account reaches no other (whatever the spelling of the account
// part), the default account keeps today's paths, each account has its own rate gate, and every configuration
// mistake is reported by name.
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue } from "../support/env.ts";
import { DEV_ALPHA, DEV_BETA, DEV_PORTFOLIOS, simControl, simEnv } from "../support/sim.ts";

const ALL = "accounts-all-token-0123456789";
const ALPHA_ONLY = "accounts-alpha-token-0123456789";
let n = 0;
function bindings(overrides: Record<string, unknown> = {}) {
  return simEnv(`accounts-${n++}-${Date.now()}.sim.test`, {
    ...DEV_ALPHA,
    ...DEV_BETA,
    ACCOUNTS: JSON.stringify([
      { name: "alpha", venue: "intx" },
      { name: "beta", venue: "intx", rate_limit_per_second: 40 },
    ]),
    RELAY_TOKENS: JSON.stringify([
      { name: "all", token: ALL, allow: ["* /intx/*", "GET /accounts", "GET /health"] },
      { name: "alpha-bot", token: ALPHA_ONLY, allow: ["* /intx/alpha/*"] },
    ]),
    ...overrides,
  });
}

async function call(e: Env, path: string, token = ALL, init: RequestInit = {}) {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${token}`);
  const r = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), e, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

const order = (id: string): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    client_order_id: id,
    side: "BUY",
    size: "0.01",
    tif: "GTC",
    type: "LIMIT",
    price: "50000",
    instrument: "BTC-PERP",
  }),
});

describe("accounts", () => {
  it("each path signs with its own account: the simulator sees alpha's order under alpha only", async () => {
    const e = bindings();
    await simControl({ reset: true });
    const portfolio = async (path: string) =>
      ((await (await call(e, path)).json()) as { portfolio_id: string }[]).map((p) => p.portfolio_id);
    expect(await portfolio("/intx/alpha/api/v1/portfolios")).toEqual([DEV_PORTFOLIOS.alpha]);
    expect(await portfolio("/intx/beta/api/v1/portfolios")).toEqual([DEV_PORTFOLIOS.beta]);
    expect(await portfolio("/intx/api/v1/portfolios")).toEqual([DEV_PORTFOLIOS.default]);
    expect(await portfolio("/intx/default/api/v1/portfolios")).toEqual([DEV_PORTFOLIOS.default]);
    const placed = await call(e, "/intx/alpha/api/v1/orders", ALL, order(`acct-${n}`.padEnd(20, "-")));
    expect(placed.status).toBe(200);
    const { accounts } = await simControl();
    expect(accounts["intx:alpha"]?.orders_placed).toBe(1);
    expect(accounts["intx:beta"]?.orders_placed).toBe(0);
    expect(accounts["intx:default"]?.orders_placed).toBe(0);
  });

  it("a token allowed /intx/alpha/* reaches alpha and nothing else, however the account part is spelled", async () => {
    const e = bindings();
    await simControl({ reset: true });
    expect((await call(e, "/intx/alpha/api/v1/portfolios", ALPHA_ONLY)).status).toBe(200);
    const refused: [string, number][] = [
      ["/intx/beta/api/v1/portfolios", 403],
      ["/intx/api/v1/portfolios", 403],
      ["/intx/default/api/v1/portfolios", 403],
      ["/intx/alpha/../beta/api/v1/portfolios", 403], // resolved to /intx/beta/… before the Worker sees it
      ["/intx/alpha/%2e%2e/beta/api/v1/portfolios", 403], // likewise
      ["/intx/ALPHA/api/v1/portfolios", 400],
      ["/intx/%61lpha/api/v1/portfolios", 400],
      ["/intx/alpha%2fbeta/api/v1/portfolios", 400],
      ["/intx/alpha;/api/v1/portfolios", 400],
    ];
    for (const [path, status] of refused) {
      const r = await call(e, path, ALPHA_ONLY);
      expect([path, r.status]).toEqual([path, status]);
    }
    const { accounts } = await simControl();
    expect(accounts["intx:alpha"]?.requests).toBe(1);
    expect(accounts["intx:beta"]?.requests).toBe(0);
    expect(accounts["intx:default"]?.requests).toBe(0);
  });

  it("a path that is neither an API nor an account is 404; a listed account that is broken is 503", async () => {
    const e = bindings({ INTX_BETA_API_PASSPHRASE: "" });
    expect((await call(e, "/intx/robots.txt")).status).toBe(404);
    expect((await call(e, "/intx/")).status).toBe(404);
    const broken = await call(e, "/intx/beta/api/v1/portfolios");
    expect(broken.status).toBe(503);
    expect(((await broken.json()) as { error: { code: string } }).error.code).toBe("account_not_configured");
  });

  // Issue 24, item 11: counted only where max_orders_per_minute was set, so the default account showed 0 after an order.
  it("orders_last_minute counts every account's orders, guarded or not; reads are not orders", async () => {
    const e = bindings();
    await simControl({ reset: true, skew_ms: 0 });
    const count = async (name: string) => {
      const { accounts } = (await (await call(e, "/accounts")).json()) as {
        accounts: { venue: string; name: string; orders_last_minute: number }[];
      };
      return accounts.find((a) => a.venue === "intx" && a.name === name)?.orders_last_minute;
    };
    const [before, alphaBefore] = [await count("default"), await count("alpha")];
    expect((await call(e, "/intx/api/v1/orders", ALL, order(crypto.randomUUID()))).status).toBe(200);
    expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200);
    expect(await count("default")).toBe((before ?? 0) + 1);
    expect(await count("alpha")).toBe(alphaBefore);
  });

  it("an unknown account is 404 to a token that may ask; GET /accounts lists each one, never a key", async () => {
    const e = bindings({ INTX_BETA_API_PASSPHRASE: "" });
    const unknown = await call(e, "/intx/gamma/api/v1/portfolios");
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe("no_such_account");
    const r = await call(e, "/accounts");
    const text = await r.text();
    // No guards, not read-only, not halted (test/workers/guards.test.ts covers the other cases); the order count
    // includes this file's earlier orders, and is tested on its own above.
    const unguarded = {
      read_only: false,
      guards: null,
      halted: false,
      halt: null,
      halt_all: null,
      orders_last_minute: expect.any(Number),
    };
    expect(JSON.parse(text)).toEqual({
      accounts: [
        { venue: "intx", name: "default", available: true, rate_limit_per_second: 40, burst: 2, ...unguarded },
        { venue: "intx", name: "alpha", available: true, rate_limit_per_second: 40, burst: 2, ...unguarded },
        { venue: "cde", name: "default", available: true, rate_limit_per_second: null, burst: null, ...unguarded },
        {
          venue: "intx",
          name: "beta",
          available: false,
          problem: { binding: "INTX_BETA_API_PASSPHRASE", message: expect.stringContaining("is not set") },
        },
      ],
    });
    for (const key of ["dev-intx-alpha-key", "dev-intx-beta-key", "dev-intx-key"]) expect(text).not.toContain(key);
  });

  it("reports every mistake in ACCOUNTS, HOOKS and JOBS by name, and keeps the good accounts working", async () => {
    const e = bindings({
      ACCOUNTS: JSON.stringify([
        { name: "alpha", venue: "intx" },
        { name: "alpha", venue: "intx" },
        { name: "api", venue: "intx" },
        { name: "Gamma", venue: "intx" },
        { name: "delta", venue: "kraken" },
        { name: "twin", venue: "intx", secrets: "INTX_ALPHA_" },
        { name: "lost", venue: "cde" },
      ]),
      HOOKS: JSON.stringify([
        {
          name: "h",
          verify: "bearer",
          secret_binding: "HOOK_T",
          request: { venue: "intx", account: "zeta", method: "GET", path: "/api/v1/portfolios" },
        },
      ]),
      HOOK_T: "hook-token-0123456789",
      JOBS: JSON.stringify([
        { name: "j", cron: "* * * * *", venue: "intx", account: "zeta", path: "/api/v1/portfolios" },
      ]),
    });
    const asked = new Request("https://relay.test/health", { headers: { authorization: `Bearer ${ALL}` } });
    const r = await worker.fetch(asked, e, createExecutionContext());
    expect(r.status).toBe(503);
    const problems = ((await r.json()) as { problems: { binding: string; subject?: string; message: string }[] })
      .problems;
    expect(problems.map((p) => [p.binding, p.subject, p.message])).toEqual([
      ["ACCOUNTS", "alpha", "the name is used twice on intx"],
      ["ACCOUNTS", "api", "name api is reserved (it is part of a venue's API path)"],
      ["ACCOUNTS", "Gamma", "name must be 1-32 of a-z, 0-9 and -"],
      ["ACCOUNTS", "delta", "venue must be one of intx, cde"],
      ["INTX_ALPHA_API_KEY", "intx:twin", "INTX_ALPHA_API_KEY: is the same key as account alpha"],
      ["CDE_LOST_API_KEY", "cde:lost", "CDE_LOST_API_KEY: is not set; account lost is unavailable"],
      ["HOOKS", "h", "account zeta on intx is not configured (see /health); the route answers 503"],
      ["JOBS", "j", "account zeta on intx is not configured (see /health)"],
    ]);
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200);
  });

  // docs/accounts.md: account names are 1-32 of a-z, 0-9 and -; `api` and `rest` are reserved (an account segment
  // `rest` would read as CDE's `/rest/` API prefix).
  it("the account name rest is reserved: ACCOUNTS refuses it by name, and /cde/rest/... stays CDE's default account", async () => {
    const e = bindings({
      ACCOUNTS: JSON.stringify([
        { name: "rest", venue: "cde", secrets: "CDE_ALPHA_" },
        { name: "alpha", venue: "intx" },
      ]),
      ...DEV_ALPHA,
      RELAY_TOKENS: JSON.stringify([{ name: "all", token: ALL, allow: ["* /intx/*", "* /cde/*", "GET /health"] }]),
    });
    await simControl({ reset: true });
    const health = await call(e, "/health");
    expect(health.status).toBe(503);
    const { problems } = (await health.json()) as {
      problems: { binding: string; subject?: string; message: string }[];
    };
    expect(problems.map((p) => [p.binding, p.subject, p.message])).toEqual([
      ["ACCOUNTS", "rest", "name rest is reserved (it is part of a venue's API path)"],
    ]);
    expect((await call(e, "/cde/rest/v2/positions")).status).toBe(200);
    // The default account's key signed it; the key the refused entry named did not.
    const state = await simControl();
    expect(state.accounts["cde:default"]?.requests).toBe(1);
    expect(state.accounts["cde:alpha"]?.requests).toBe(0);
  });

  it("each account has its own rate gate: a flood on alpha leaves beta's requests untouched", async () => {
    // Alpha at 2 a second: 40 reads at once are over its share whatever the machine's speed (a read waits 0.5 s at
    // most), so the flood is real; beta keeps the venue's 40.
    const e = bindings({
      ACCOUNTS: JSON.stringify([
        { name: "alpha", venue: "intx", rate_limit_per_second: 2 },
        { name: "beta", venue: "intx", rate_limit_per_second: 40 },
      ]),
    });
    await simControl({ reset: true });
    await call(e, "/intx/alpha/api/v1/portfolios");
    await call(e, "/intx/beta/api/v1/portfolios");
    const flood = Array.from({ length: 40 }, () => call(e, "/intx/alpha/api/v1/portfolios").then((r) => r.status));
    const beta = await Promise.all(
      Array.from({ length: 5 }, () => call(e, "/intx/beta/api/v1/portfolios").then((r) => r.status)),
    );
    const alpha = await Promise.all(flood);
    expect(alpha.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(beta).toEqual([200, 200, 200, 200, 200]);
  });

  it("a job run and a queued delivery record the account that signed them, by name", async () => {
    const queued = recordingQueue<DeliveryMessage>();
    const e = bindings({
      DELIVERIES: queued.queue,
      JOBS: JSON.stringify([
        {
          name: "alpha-balances",
          cron: "* * * * *",
          venue: "intx",
          account: "alpha",
          path: `/api/v1/portfolios/${DEV_PORTFOLIOS.alpha}/balances`,
        },
      ]),
      HOOKS: JSON.stringify([
        {
          name: "alpha-order",
          verify: "bearer",
          secret_binding: "HOOK_T",
          delivery: "queue",
          request: {
            venue: "intx",
            account: "alpha",
            method: "POST",
            path: "/api/v1/orders",
            body: {
              client_order_id: "{{client_order_id}}",
              side: "BUY",
              size: "0.01",
              tif: "GTC",
              type: "LIMIT",
              price: "50000",
              instrument: "BTC-PERP",
            },
          },
        },
      ]),
      HOOK_T: "hook-token-0123456789",
    });
    await simControl({ reset: true });
    const scheduledTime = Date.UTC(2026, 10, 24, 8, 0, 0);
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "* * * * *", scheduledTime }), e, ctx);
    await waitOnExecutionContext(ctx);
    const run = await env.DB.prepare("SELECT account, status FROM job_runs WHERE job = 'alpha-balances'").first();
    expect(run).toEqual({ account: "alpha", status: 200 });
    expect((await simControl()).accounts["intx:alpha"]?.requests).toBe(1);
    const hookCtx = createExecutionContext();
    const accepted = await worker.fetch(
      new Request("https://relay.test/hooks/alpha-order", {
        method: "POST",
        body: "{}",
        headers: {
          authorization: "Bearer hook-token-0123456789",
          "content-type": "application/json",
          "idempotency-key": `acct-q-${n}`,
        },
      }),
      e,
      hookCtx,
    );
    await waitOnExecutionContext(hookCtx);
    const { delivery_id } = (await accepted.json()) as { delivery_id: string };
    const row = await env.DB.prepare("SELECT account FROM deliveries WHERE id = ?1").bind(delivery_id).first();
    expect(row).toEqual({ account: "alpha" });
    expect(queued.sent.map((m) => [m.id, m.account])).toEqual([[delivery_id, "alpha"]]);
  });
});
