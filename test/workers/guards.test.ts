// Order guards, read_only and the halt, end to end through the Worker against the simulator, which enforces none
// of them and records every order request that reaches it per account: so what the simulator lists is exactly what
// got past skewguard.
import { createExecutionContext, createMessageBatch, getQueueResult, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { accountGate } from "../../src/adapters/client.ts";
import type { RateGate } from "../../src/adapters/rate-gate.ts";
import type { DeliveryMessage } from "../../src/core/deliveries.ts";
import worker from "../../src/index.ts";
import { recordingQueue } from "../support/env.ts";
import { DEV_ALPHA, DEV_BETA, DEV_PORTFOLIOS, simControl, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const OPS = "guards-ops-token-0123456789";
const BOT = "guards-bot-token-0123456789";
const ALPHA_GUARDS = {
  instruments: ["BTC-PERP", "ETH-*", "SOL-*"],
  max_size: { "BTC-PERP": "0.5", "SOL-PERP": "5" },
  max_notional: { "BTC-PERP": "30000", "ETH-PERP": "1000" },
  types: ["LIMIT", "MARKET"],
  tif: ["GTC", "IOC"],
};
let n = 0;
function bindings(accounts: unknown[] = [{ name: "alpha", venue: "intx", guards: ALPHA_GUARDS }], extra = {}) {
  return simEnv(`guards-${n++}-${Date.now()}.sim.test`, {
    ...DEV_ALPHA,
    ...DEV_BETA,
    ACCOUNTS: JSON.stringify(accounts),
    RELAY_TOKENS: JSON.stringify([
      {
        name: "ops",
        token: OPS,
        allow: ["* /intx/*", "* /cde/*", "GET /accounts", "* /accounts/*/halt", "* /halt", "GET /health"],
      },
      { name: "bot", token: BOT, allow: ["* /intx/*"] },
    ]),
    ...extra,
  });
}

function call(e: Env, path: string, init: RequestInit = {}, token = OPS) {
  return fetchWorker(e, path, init, token);
}

/** Account alpha's portfolio in the simulator (docs/simulator.md, "Accounts"). */
const ALPHA_PF = "2alp7hq3-1-0";

function order(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_order_id: crypto.randomUUID(),
    side: "BUY",
    size: "0.1",
    tif: "GTC",
    type: "LIMIT",
    price: "50000",
    instrument: "BTC-PERP",
    ...fields,
  };
}
const post = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: typeof body === "string" ? body : JSON.stringify(body),
});
const placed = async (account = "intx:alpha") => (await simControl()).accounts[account]?.orders ?? [];

describe("order guards on the relay", () => {
  it("refuses the issue's example with exactly its 422, and the venue never sees it", async () => {
    const e = bindings([{ name: "alpha", venue: "intx", guards: { max_size: { "BTC-PERP": "0.5" } } }]);
    await simControl({ reset: true });
    const r = await call(e, "/intx/alpha/api/v1/orders", post(order({ size: "2", price: "1" })));
    expect(r.status).toBe(422);
    expect(await r.json()).toEqual({
      error: { code: "order_refused", message: "size 2 is over max_size 0.5 for BTC-PERP (account intx/alpha)" },
    });
    expect(await placed()).toEqual([]);
  });

  it("each rule: at the limit reaches the venue, one tick over does not", async () => {
    const e = bindings();
    await simControl({ reset: true });
    const cases: [Record<string, unknown>, number, string?][] = [
      [{ size: "0.5", price: "60000" }, 200], // max_size exactly; notional 30000 exactly
      [{ size: "0.50000000", price: "60000.0" }, 200], // the same, written longer
      [{ size: "0.50000001", price: "1" }, 422, "max_size"],
      [{ size: "0.5", price: "60000.00000001" }, 422, "max_notional"],
      [{ size: "5", instrument: "SOL-PERP", price: "3000" }, 200], // no notional limit on SOL
      [{ size: "5.000000001", instrument: "SOL-PERP", price: "3000" }, 422, "max_size"],
      [{ instrument: "DOGE-PERP" }, 422, "instruments"],
      [{ instrument: "149264167780483072" }, 422, "instrument"], // an instrument ID would dodge the names
      [{ type: "STOP_LIMIT", stop_price: "1" }, 422, "types"],
      [{ tif: "FOK" }, 422, "tif"],
      [{ type: "MARKET", tif: "IOC", price: undefined }, 200], // no price, but BTC's max_size bounds it
      [{ size: "0.1", instrument: "ETH-PERP", price: "10000" }, 200], // notional 1000 exactly
      [{ size: "0.1", instrument: "ETH-PERP", price: "10000.00000001" }, 422, "max_notional"],
      [{ size: "0.1", instrument: "ETH-PERP", price: undefined, type: "MARKET" }, 422, "max_notional"], // no max_size
      [{ size: 0.1 }, 422, "size"], // a JSON number is not an exact decimal
    ];
    for (const [fields, status, rule] of cases) {
      const r = await call(e, "/intx/alpha/api/v1/orders", post(order(fields)));
      expect([fields, r.status]).toEqual([fields, status]);
      if (rule) expect(((await r.json()) as { error: { code: string } }).error.code).toBe("order_refused");
    }
    const sizes = (await placed()).map((o) => [o.instrument, o.size, o.price]);
    expect(sizes).toEqual([
      ["BTC-PERP", "0.5", "60000"],
      ["BTC-PERP", "0.50000000", "60000.0"],
      ["SOL-PERP", "5", "3000"],
      ["BTC-PERP", "0.1", undefined],
      ["ETH-PERP", "0.1", "10000"],
    ]);
  });

  it("sends exactly the order it checked: a duplicate key cannot make the venue read another size", async () => {
    const e = bindings();
    await simControl({ reset: true });
    const id = `dup-${n}`.padEnd(18, "-");
    // JSON.parse keeps the last "size"; a parser that kept the first would read 9.
    const tricky = `{"client_order_id":"${id}","side":"BUY","size":"9","size":"0.1","tif":"GTC","type":"LIMIT","price":"100","instrument":"BTC-PERP"}`;
    expect((await call(e, "/intx/alpha/api/v1/orders", post(tricky))).status).toBe(200);
    expect((await placed()).map((o) => o.size)).toEqual(["0.1"]);
    // Unicode escapes are read as the plain key, and a body that is not an object is not an order.
    const escaped = `{"client_order_id":"${id}-2-","side":"BUY","\\u0073ize":"7","tif":"GTC","type":"LIMIT","price":"1","instrument":"BTC-PERP"}`;
    expect((await call(e, "/intx/alpha/api/v1/orders", post(escaped))).status).toBe(422);
    expect((await call(e, "/intx/alpha/api/v1/orders", post([order()]))).status).toBe(422);
    expect(await placed()).toHaveLength(1);
  });

  it("a modify is held to the tightest limits; cancels and reads are not orders", async () => {
    const e = bindings();
    await simControl({ reset: true });
    const created = (await (await call(e, "/intx/alpha/api/v1/orders", post(order({ price: "100" })))).json()) as {
      order_id: string;
    };
    // INTX requires the portfolio on a modify (body) and a cancel (query): alpha's, in the simulator.
    const modify = (body: object) =>
      call(e, `/intx/alpha/api/v1/orders/${created.order_id}`, {
        ...post({ ...body, portfolio: ALPHA_PF }),
        method: "PUT",
      });
    const next = () => crypto.randomUUID();
    expect((await modify({ client_order_id: next(), size: "0.6", price: "100" })).status).toBe(422); // over 0.5
    // The tightest notional is ETH-PERP's 1000, though this is a BTC order: a modify does not say.
    expect((await modify({ client_order_id: next(), size: "0.02", price: "50000.00000001" })).status).toBe(422);
    expect((await modify({ client_order_id: next(), size: "0.02", price: "50000" })).status).toBe(200);
    expect((await modify({ client_order_id: next(), price: "60000" })).status).toBe(422); // notional unknowable
    const cancel = await call(e, `/intx/alpha/api/v1/orders/${created.order_id}?portfolio=${ALPHA_PF}`, {
      method: "DELETE",
    });
    expect(cancel.status).toBe(200);
    const state = await simControl();
    expect(state.accounts["intx:alpha"]?.orders.map((o) => [o.action, o.size ?? null])).toEqual([
      ["create", "0.1"],
      ["modify", "0.02"],
    ]);
  });

  it("guards are per account: the default account and beta trade unguarded", async () => {
    const e = bindings([
      { name: "alpha", venue: "intx", guards: ALPHA_GUARDS },
      { name: "beta", venue: "intx" },
    ]);
    await simControl({ reset: true });
    expect((await call(e, "/intx/api/v1/orders", post(order({ size: "3" })))).status).toBe(200);
    expect((await call(e, "/intx/beta/api/v1/orders", post(order({ size: "3" })))).status).toBe(200);
    expect((await call(e, "/intx/alpha/api/v1/orders", post(order({ size: "3" })))).status).toBe(422);
    const state = await simControl();
    expect([state.accounts["intx:default"]?.orders_placed, state.accounts["intx:beta"]?.orders_placed]).toEqual([1, 1]);
    expect(state.accounts["intx:alpha"]?.orders).toEqual([]);
  });

  it("guards on the default account are set by listing it", async () => {
    const e = bindings([{ name: "default", venue: "intx", guards: { max_size: { "*": "1" } } }]);
    await simControl({ reset: true });
    expect((await call(e, "/intx/api/v1/orders", post(order({ size: "1.01" })))).status).toBe(422);
    expect((await call(e, "/intx/default/api/v1/orders", post(order({ size: "1.01" })))).status).toBe(422);
    expect((await call(e, "/intx/api/v1/orders", post(order({ size: "1" })))).status).toBe(200);
  });

  it("guards that cannot be parsed are a problem by name, and the account refuses every order (fail closed)", async () => {
    const e = bindings([{ name: "alpha", venue: "intx", guards: { max_size: { "BTC-PERP": "1e3" } } }]);
    await simControl({ reset: true });
    const health = (await (await call(e, "/health")).json()) as { ok: boolean; problems: unknown[] };
    expect(health.ok).toBe(false);
    expect(health.problems).toContainEqual({
      binding: "ACCOUNTS",
      subject: "alpha",
      message:
        'guards: max_size BTC-PERP: "1e3" is not a plain decimal string such as "0.5"; every order on this account is refused until it is fixed',
    });
    const r = await call(e, "/intx/alpha/api/v1/orders", post(order({ size: "0.001" })));
    expect(r.status).toBe(422);
    expect(((await r.json()) as { error: { message: string } }).error.message).toBe(
      "account intx/alpha has guards that cannot be parsed, so every order is refused",
    );
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200); // reads still work
    expect(await placed()).toEqual([]);
  });

  it("the default account fails closed when its ACCOUNTS entry, or ACCOUNTS itself, cannot be used", async () => {
    await simControl({ reset: true });
    const cases: [string, number][] = [
      // A read-only default whose entry has another mistake stays read-only; unknown keys are mistakes.
      [JSON.stringify([{ name: "default", venue: "intx", read_only: true, secret_encoding: "hex" }]), 403],
      [JSON.stringify([{ name: "default", venue: "intx", guard: { max_size: { "*": "1" } } }]), 422],
      ['[{"name": "default", "venue": "intx", "guards": {"max_size": {"*": "1"}}},]', 422], // not JSON
    ];
    for (const [accounts, status] of cases) {
      const e = simEnv(`guards-fc-${n++}.sim.test`, { ACCOUNTS: accounts, RELAY_TOKENS: bindings().RELAY_TOKENS });
      const r = await call(e, "/intx/api/v1/orders", post(order({ size: "50" })));
      expect([accounts, r.status]).toEqual([accounts, status]);
      expect((await call(e, "/intx/api/v1/portfolios")).status).toBe(200); // reads still work
      const health = (await (await call(e, "/health")).json()) as { problems: { binding: string }[] };
      expect(health.problems.map((p) => p.binding)).toContain("ACCOUNTS");
    }
    expect((await simControl()).accounts["intx:default"]?.orders).toEqual([]);
  });

  it("an unknown key in an account's entry leaves the account out, named", async () => {
    const e = bindings([{ name: "alpha", venue: "intx", readonly: true }]);
    expect((await call(e, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(503);
    const health = (await (await call(e, "/health")).json()) as { problems: unknown[] };
    expect(health.problems).toContainEqual({
      binding: "ACCOUNTS",
      subject: "alpha",
      message:
        'unknown key "readonly"; the keys are name, venue, secrets, secret_encoding, rate_limit_per_second, guards, read_only',
    });
  });

  // docs/accounts.md, "Fail closed": "A `read_only` that is not `true` or `false` makes the account read-only", and,
  // like every mistake in ACCOUNTS, it is a configuration problem named in GET /health.
  it("a read_only that is not a boolean is a problem by name, and the account is read-only until it is fixed", async () => {
    for (const value of ["false", 0, null]) {
      const e = bindings([{ name: "alpha", venue: "intx", read_only: value }]);
      await simControl({ reset: true });
      const health = await call(e, "/health");
      expect(health.status).toBe(503);
      expect(((await health.json()) as { problems: unknown[] }).problems).toContainEqual({
        binding: "ACCOUNTS",
        subject: "alpha",
        message: "read_only must be true or false; the account is read-only until it is fixed",
      });
      expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200);
      const refused = await call(e, "/intx/alpha/api/v1/orders", post(order()));
      expect([value, refused.status]).toEqual([value, 403]);
      const listed = (await (await call(e, "/accounts")).json()) as {
        accounts: { name: string; read_only: boolean }[];
      };
      expect(listed.accounts.find((a) => a.name === "alpha")?.read_only).toBe(true);
      expect((await simControl()).accounts["intx:alpha"]?.requests).toBe(1);
    }
  });

  it("read_only refuses everything but reads", async () => {
    const e = bindings([{ name: "alpha", venue: "intx", read_only: true }]);
    await simControl({ reset: true });
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200);
    const refused = await call(e, "/intx/alpha/api/v1/orders", post(order()));
    expect(refused.status).toBe(403);
    expect(await refused.json()).toEqual({ error: { code: "read_only", message: "account intx/alpha is read_only" } });
    expect((await call(e, "/intx/alpha/api/v1/orders", { method: "DELETE" })).status).toBe(403);
    expect((await simControl()).accounts["intx:alpha"]?.requests).toBe(1);
  });
});

describe("max_orders_per_minute", () => {
  it("50 concurrent distinct orders: exactly N reach the venue, the rest are refused with the rule", async () => {
    const limit = 7;
    // Every account counts its orders (GET /accounts orders_last_minute), and this file's earlier orders on alpha
    // are still inside the minute: an account of its own name (so a gate of its own) signs with alpha's key.
    const name = `per-minute-${n}`;
    const guards = { max_orders_per_minute: limit };
    const e = bindings([{ name, venue: "intx", secrets: "INTX_ALPHA_", guards }]);
    await simControl({ reset: true });
    const results = await Promise.all(
      Array.from({ length: 50 }, () => call(e, `/intx/${name}/api/v1/orders`, post(order({ size: "0.001" })))),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(limit);
    expect(statuses.filter((s) => s === 422)).toHaveLength(50 - limit);
    const refusal = results.find((r) => r.status === 422) as Response;
    expect(refusal.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(((await refusal.json()) as { error: { message: string } }).error.message).toMatch(
      new RegExp(`^max_orders_per_minute 7 reached \\(account intx/${name}\\); retry after \\d+ s$`),
    );
    const state = await simControl();
    expect(state.accounts["intx:alpha"]?.orders_placed).toBe(limit);
    // Reads and cancels do not count and are not refused.
    expect((await call(e, `/intx/${name}/api/v1/portfolios`)).status).toBe(200);
    const cancelAll = `/intx/${name}/api/v1/orders?portfolio=${DEV_PORTFOLIOS.alpha}`;
    expect((await call(e, cancelAll, { method: "DELETE" })).status).toBe(200);
  });
});

describe("halt", () => {
  const halt = (e: Env, path: string, method: string, reason?: string, token = OPS) =>
    call(e, path, reason === undefined ? { method } : { method, body: JSON.stringify({ reason }) }, token);

  it("refuses creates and modifies with 423 and the reason; cancels, reads and the CDE kill-switch pass", async () => {
    const e = bindings([
      { name: "alpha", venue: "intx" },
      { name: "beta", venue: "intx" },
    ]);
    await simControl({ reset: true });
    const live = (await (await call(e, "/intx/alpha/api/v1/orders", post(order()))).json()) as { order_id: string };
    const set = await halt(e, "/accounts/intx/alpha/halt", "PUT", "drill: strategy looping");
    expect(set.status).toBe(200);
    const body = (await set.json()) as { accounts: { halt: { reason: string; by: string; at: string } }[] };
    expect(body.accounts[0]?.halt).toMatchObject({ reason: "drill: strategy looping", by: "ops" });

    const refused = await call(e, "/intx/alpha/api/v1/orders", post(order()));
    expect(refused.status).toBe(423);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("account_halted");
    expect(error.message).toMatch(/^account intx\/alpha is halted: drill: strategy looping \(by ops at 20\d\d-/);
    const modify = await call(e, `/intx/alpha/api/v1/orders/${live.order_id}`, {
      ...post({ client_order_id: crypto.randomUUID(), price: "1", portfolio: ALPHA_PF }),
      method: "PUT",
    });
    expect(modify.status).toBe(423);
    const cancel = `/intx/alpha/api/v1/orders/${live.order_id}?portfolio=${ALPHA_PF}`;
    expect((await call(e, cancel, { method: "DELETE" })).status).toBe(200);
    expect((await call(e, "/intx/alpha/api/v1/portfolios")).status).toBe(200);
    // Other accounts trade on; a withdrawal-like write on the halted one is refused too.
    expect((await call(e, "/intx/beta/api/v1/orders", post(order()))).status).toBe(200);
    expect((await call(e, "/intx/alpha/api/v1/transfers/withdraw", post({ amount: "1" }))).status).toBe(423);

    const all = await halt(e, "/halt", "PUT", "desk closed");
    expect(all.status).toBe(200);
    expect((await call(e, "/intx/beta/api/v1/orders", post(order()))).status).toBe(423);
    const kill = await call(
      e,
      "/cde/rest/kill-switch",
      post({ only_cancel_no_trading_lock: true, firm_uuid: "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01" }),
    );
    expect(kill.status).toBe(200);

    const state = await simControl();
    expect(state.accounts["intx:alpha"]?.orders.map((o) => o.action)).toEqual(["create"]);
    expect(state.accounts["intx:beta"]?.orders_placed).toBe(1);
    expect(state.effects.kill_switches).toBe(1);
    expect(state.effects.orders_cancelled).toBe(1);

    // Lifting the halt of every account leaves alpha's own halt, and its reason, in force.
    expect((await halt(e, "/halt", "DELETE")).status).toBe(200);
    expect((await call(e, "/intx/beta/api/v1/orders", post(order()))).status).toBe(200);
    const still = await call(e, "/intx/alpha/api/v1/orders", post(order()));
    expect([still.status, ((await still.json()) as { error: { message: string } }).error.message]).toEqual([
      423,
      expect.stringContaining("is halted: drill: strategy looping"),
    ]);
    expect((await halt(e, "/accounts/intx/alpha/halt", "DELETE")).status).toBe(200);
    expect((await call(e, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(200);
  });

  it("is durable: a new isolate's configuration and a reloaded gate still see it; GET /accounts shows who and when", async () => {
    const e = bindings([{ name: "alpha", venue: "intx", guards: { max_size: { "*": "1" } } }]);
    await simControl({ reset: true });
    expect((await halt(e, "/accounts/intx/alpha/halt", "PUT", "risk review")).status).toBe(200);
    // A fresh env object is a fresh parse of the configuration: nothing cached in the isolate carries the halt.
    const again = { ...e } as Env;
    expect((await call(again, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(423);
    // The gate keeps it in its storage, not only in memory.
    await runInDurableObject(accountGate(e, "intx", "alpha"), (_gate: RateGate, state) => {
      expect(state.storage.kv.get("halt")).toMatchObject({ reason: "risk review", by: "ops" });
    });
    const listed = (await (await call(e, "/accounts")).json()) as { accounts: Record<string, unknown>[] };
    const alpha = listed.accounts.find((a) => a.name === "alpha");
    expect(alpha).toMatchObject({
      venue: "intx",
      halted: true,
      halt: { reason: "risk review", by: "ops" },
      guards: { max_size: { "*": "1" } },
      read_only: false,
    });
    const at = (alpha?.halt as { at: string } | undefined)?.at;
    expect(Date.parse(String(at))).toBeGreaterThan(Date.now() - 60_000);
    expect(listed.accounts.find((a) => a.name === "default")).toMatchObject({
      halted: false,
      halt: null,
      guards: null,
    });
    expect((await halt(e, "/accounts/intx/alpha/halt", "DELETE")).status).toBe(200);
    expect((await call(again, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(200);
  });

  // docs/accounts.md, "Halt": "`/halt` halts the accounts configured now; one added later starts unhalted."
  it("an account added to ACCOUNTS after PUT /halt starts unhalted; the accounts halted then stay halted", async () => {
    await simControl({ reset: true });
    const before = bindings([{ name: "alpha", venue: "intx" }]);
    expect((await halt(before, "/halt", "PUT", "desk closed")).status).toBe(200);
    // beta is added to ACCOUNTS afterwards (a new configuration: a new env object).
    const after = bindings([
      { name: "alpha", venue: "intx" },
      { name: "beta", venue: "intx" },
    ]);
    try {
      expect((await call(after, "/intx/beta/api/v1/orders", post(order()))).status).toBe(200);
      expect((await call(after, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(423);
      const listed = (await (await call(after, "/accounts")).json()) as { accounts: Record<string, unknown>[] };
      expect(listed.accounts.find((a) => a.name === "beta")).toMatchObject({
        halted: false,
        halt: null,
        halt_all: null,
      });
      expect(listed.accounts.find((a) => a.name === "alpha")).toMatchObject({
        halted: true,
        halt: null,
        halt_all: { reason: "desk closed", by: "ops" },
      });
      const state = await simControl();
      expect([state.accounts["intx:beta"]?.orders_placed, state.accounts["intx:alpha"]?.orders_placed]).toEqual([1, 0]);
    } finally {
      expect((await halt(after, "/halt", "DELETE")).status).toBe(200);
    }
  });

  // docs/accounts.md, "Halt": "An answer in which an account's gate did not answer is 503, as is a halt call that did
  // not take on every account."
  it("an account whose gate does not answer: GET /accounts and halt calls are 503, naming it; the others stand", async () => {
    const brokenId = env.RATE_GATE.idFromName("account intx/beta");
    const unreachable = new Proxy(
      {},
      {
        get: (_target, key) =>
          key === "then"
            ? undefined
            : async () => {
                throw new Error("Durable Object is unreachable");
              },
      },
    );
    const RATE_GATE = new Proxy(env.RATE_GATE, {
      get(target, key) {
        if (key === "get") {
          return (id: DurableObjectId, options?: DurableObjectNamespaceGetDurableObjectOptions) =>
            id.equals(brokenId) ? unreachable : target.get(id, options);
        }
        const value = Reflect.get(target, key, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const e = bindings(
      [
        { name: "alpha", venue: "intx" },
        { name: "beta", venue: "intx" },
      ],
      { RATE_GATE },
    );
    const listed = await call(e, "/accounts");
    expect(listed.status).toBe(503);
    const accounts = ((await listed.json()) as { accounts: Record<string, unknown>[] }).accounts;
    expect(accounts.find((a) => a.name === "beta")).toMatchObject({
      halted: null,
      halt: null,
      halt_all: null,
      halt_error: "the account's gate did not answer; try again",
    });
    expect(accounts.find((a) => a.name === "alpha")).toMatchObject({ halted: false, halt: null, halt_all: null });
    expect(accounts.find((a) => a.name === "alpha")).not.toHaveProperty("halt_error");

    const one = await halt(e, "/accounts/intx/beta/halt", "PUT", "risk review");
    expect(one.status).toBe(503);
    expect(await one.json()).toEqual({
      accounts: [
        { venue: "intx", name: "beta", error: "the account's gate did not answer; nothing changed, try again" },
      ],
    });
    const all = await halt(e, "/halt", "PUT", "desk closed");
    expect(all.status).toBe(503);
    const results = ((await all.json()) as { accounts: Record<string, unknown>[] }).accounts;
    expect(results.find((r) => r.name === "beta")).toEqual({
      venue: "intx",
      name: "beta",
      error: "the account's gate did not answer; nothing changed, try again",
    });
    expect(results.find((r) => r.name === "alpha")).toMatchObject({
      scope: "all",
      halt: { reason: "desk closed", by: "ops" },
    });
    expect((await halt(e, "/halt", "DELETE")).status).toBe(503); // beta still cannot be reached; the others resume
    expect((await call(e, "/intx/alpha/api/v1/orders", post(order()))).status).toBe(200);
  });

  it("the allow-lists decide who may halt; a halt needs a reason; unknown accounts are 404", async () => {
    const e = bindings();
    expect((await halt(e, "/accounts/intx/alpha/halt", "PUT", "x", BOT)).status).toBe(403);
    expect((await halt(e, "/halt", "DELETE", undefined, BOT)).status).toBe(403);
    expect((await halt(e, "/accounts/intx/alpha/halt", "PUT")).status).toBe(400);
    expect((await halt(e, "/accounts/intx/alpha/halt", "PUT", "")).status).toBe(400);
    expect((await halt(e, "/accounts/intx/alpha/halt", "PUT", "a\u0000b")).status).toBe(400);
    expect((await halt(e, "/accounts/intx/nobody/halt", "PUT", "x")).status).toBe(404);
    expect((await halt(e, "/accounts/nyse/alpha/halt", "PUT", "x")).status).toBe(404);
    expect((await halt(e, "/accounts/intx/alpha/halt", "POST", "x")).status).toBe(405);
    expect((await halt(e, "/halt", "GET")).status).toBe(405);
  });
});

describe("guards on webhook routes and queued deliveries", () => {
  const HOOK_SECRET = "guards-hook-secret-0123456789";
  const request = {
    venue: "intx",
    account: "alpha",
    method: "POST",
    path: "/api/v1/orders",
    body: {
      client_order_id: "{{client_order_id}}",
      side: "BUY",
      size: "{{size}}",
      type: "LIMIT",
      tif: "GTC",
      price: "100",
      instrument: "BTC-PERP",
    },
  };
  const hooks = [
    { name: "now", verify: "bearer", secret_binding: "HOOK_SECRET", fields: { size: "decimal" }, request },
    {
      name: "later",
      verify: "bearer",
      secret_binding: "HOOK_SECRET",
      delivery: "queue",
      fields: { size: "decimal" },
      request,
    },
  ];
  const queued = recordingQueue<DeliveryMessage>(); // the consumer is driven by hand
  const hookEnv = () =>
    bindings([{ name: "alpha", venue: "intx", guards: { max_size: { "BTC-PERP": "0.5" } } }], {
      HOOKS: JSON.stringify(hooks),
      HOOK_SECRET,
      DELIVERIES: queued.queue,
    });
  const fire = (e: Env, route: string, size: string, key: string) =>
    call(
      e,
      `/hooks/${route}`,
      {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": key },
        body: JSON.stringify({ size }),
      },
      HOOK_SECRET,
    );

  it("a webhook over a guard gets the 422, and its redelivery is judged again (nothing was sent); nothing reaches the venue", async () => {
    const e = hookEnv();
    await simControl({ reset: true });
    const key = crypto.randomUUID();
    const first = await fire(e, "now", "2", key);
    expect(first.status).toBe(422);
    const body = (await first.json()) as { error: unknown; route: string };
    expect(body.error).toEqual({
      code: "order_refused",
      message: "size 2 is over max_size 0.5 for BTC-PERP (account intx/alpha)",
    });
    const again = await fire(e, "now", "2", key);
    expect([again.status, again.headers.get("x-skewguard-replayed")]).toEqual([422, "false"]);
    expect((await fire(e, "now", "0.5", crypto.randomUUID())).status).toBe(200);
    expect((await placed()).map((o) => o.size)).toEqual(["0.5"]);
  });

  it("a queued route refuses at receipt, and nothing is recorded or queued", async () => {
    const e = hookEnv();
    const r = await fire(e, "later", "0.6", `q-${crypto.randomUUID()}`);
    expect(r.status).toBe(422);
    const { delivery_id } = (await r.json()) as { delivery_id: string };
    const row = await e.DB.prepare("SELECT id FROM deliveries WHERE id = ?1").bind(delivery_id).first();
    expect(row).toBeNull();
    expect(queued.sent).toEqual([]);
  });

  it("a queued delivery is checked again at send time: over a guard or halted, it is dead-lettered, not retried", async () => {
    const e = hookEnv();
    await simControl({ reset: true });
    const consume = async (body: Record<string, unknown>) => {
      const message: DeliveryMessage = {
        id: `sg-${crypto.randomUUID().replaceAll("-", "").slice(0, 29)}`,
        route: "later",
        venue: "intx",
        account: "alpha",
        method: "POST",
        path: "/api/v1/orders",
        body: JSON.stringify(body),
        receivedAt: Date.now(),
        maxAgeSeconds: 60,
        retrySafe: true,
      };
      const batch = createMessageBatch<DeliveryMessage>("skewguard-deliveries", [
        { id: `q-${message.id}`, timestamp: new Date(), attempts: 1, body: message },
      ]);
      const ctx = createExecutionContext();
      await worker.queue(batch, e, ctx);
      const result = await getQueueResult(batch, ctx);
      const dead = await e.DB.prepare("SELECT reason FROM dead_letters WHERE delivery_id = ?1")
        .bind(message.id)
        .first<{ reason: string }>();
      return { acked: result.explicitAcks.length, retried: result.retryMessages.length, reason: dead?.reason };
    };
    expect(await consume(order({ size: "2", price: "1" }))).toEqual({
      acked: 1,
      retried: 0,
      reason: "refused (max_size): size 2 is over max_size 0.5 for BTC-PERP (account intx/alpha)",
    });
    expect((await call(e, "/accounts/intx/alpha/halt", { method: "PUT", body: '{"reason":"night"}' })).status).toBe(
      200,
    );
    const halted = await consume(order({ size: "0.1" }));
    expect(halted).toMatchObject({ acked: 1, retried: 0 });
    expect(halted.reason).toMatch(/^refused \(halt\): account intx\/alpha is halted: night \(by ops at /);
    expect(await placed()).toEqual([]);
    await call(e, "/accounts/intx/alpha/halt", { method: "DELETE" });
  });
});
