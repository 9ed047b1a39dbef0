// A halt survives a real restart: skewguard and the simulator run in workerd through Miniflare with their Durable
// Object storage on disk; alpha is halted, Miniflare is disposed entirely, and a new Miniflare on the same directory
// must still refuse alpha's orders with the same reason, until the halt is lifted. The same flow without persistent
// storage shows the check can fail: there the restarted Worker has forgotten the halt, so what carries it over is the
// RateGate's storage, nothing kept in memory or in the configuration.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type LocalWorker, startLocal } from "./local-worker.ts";

// test/support/sim.ts imports cloudflare:workers, so its DEV_ALPHA and DEV_PORTFOLIOS.alpha are repeated here.
const DEV_ALPHA = {
  INTX_ALPHA_API_KEY: "dev-intx-alpha-key",
  INTX_ALPHA_API_SECRET: "c2tld2d1YXJkLWRldi1pbnR4LWFscGhhLXNlY3JldCE=",
  INTX_ALPHA_API_PASSPHRASE: "dev-intx-alpha-passphrase",
};
const ALPHA_PORTFOLIO = "2alp7hq3-1-0";

const TOKEN = "halt-restart-ops-token-0123456789";
const VARS = {
  ...DEV_ALPHA,
  ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx" }]),
  RELAY_TOKENS: JSON.stringify([
    {
      name: "ops",
      token: TOKEN,
      allow: ["* /intx/*", "PUT /accounts/*/halt", "DELETE /accounts/*/halt", "GET /accounts"],
    },
  ]),
};
const REASON = "restart drill: strategy looping";

const dirs: string[] = [];
const running = new Set<LocalWorker>();

async function start(persistDir?: string): Promise<LocalWorker> {
  const local = await startLocal(VARS, { persistDir });
  running.add(local);
  return local;
}

async function stop(local: LocalWorker): Promise<void> {
  running.delete(local);
  await local.stop();
}

afterEach(async () => {
  // A failed assertion must not leave a workerd behind.
  for (const local of running) await stop(local);
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function call(local: LocalWorker, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${TOKEN}`);
  return fetch(`${local.url}${path}`, { ...init, headers });
}

const placeOrder = (local: LocalWorker) =>
  call(local, "/intx/alpha/api/v1/orders", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_order_id: crypto.randomUUID(),
      portfolio: ALPHA_PORTFOLIO,
      side: "BUY",
      size: "0.01",
      tif: "GTC",
      type: "LIMIT",
      price: "50000",
      instrument: "BTC-PERP",
    }),
  });

async function refusal(response: Response): Promise<{ code: string; message: string }> {
  expect(response.status).toBe(423);
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

async function alphaListed(local: LocalWorker): Promise<Record<string, unknown> | undefined> {
  const r = await call(local, "/accounts");
  expect(r.status).toBe(200);
  const { accounts } = (await r.json()) as { accounts: Record<string, unknown>[] };
  return accounts.find((a) => a.venue === "intx" && a.name === "alpha");
}

/** Halts alpha on a first Miniflare, checks the refusal, disposes it and starts a second on the same storage
 * setting; returns the second, and the refusal message the first gave. */
async function haltThenRestart(persistDir?: string): Promise<{ local: LocalWorker; before: string }> {
  const first = await start(persistDir);
  expect((await placeOrder(first)).status).toBe(200);
  const halt = await call(first, "/accounts/intx/alpha/halt", {
    method: "PUT",
    body: JSON.stringify({ reason: REASON }),
  });
  expect(halt.status).toBe(200);
  const refused = await refusal(await placeOrder(first));
  expect(refused.code).toBe("account_halted");
  expect(refused.message).toMatch(
    /^account intx\/alpha is halted: restart drill: strategy looping \(by ops at 20\d\d-/,
  );
  await stop(first);
  return { local: await start(persistDir), before: refused.message };
}

describe("a halt across a restart of the Worker", () => {
  it("is kept in the gate's persistent storage: a new Miniflare on the same directory still refuses", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skewguard-halt-"));
    dirs.push(dir);
    const { local, before } = await haltThenRestart(dir);

    // The very same refusal: the reason, the token that halted and the time all came back from storage.
    const refused = await refusal(await placeOrder(local));
    expect(refused).toEqual({ code: "account_halted", message: before });

    const alpha = await alphaListed(local);
    expect(alpha).toMatchObject({ halted: true, halt: { reason: REASON, by: "ops", at: expect.any(String) } });
    expect(before).toContain(`(by ops at ${(alpha?.halt as { at: string } | undefined)?.at})`);

    // Cancels still pass while halted (the restarted simulator has no orders left, so it lists none).
    const cancel = await call(local, `/intx/alpha/api/v1/orders?portfolio=${ALPHA_PORTFOLIO}`, { method: "DELETE" });
    expect(cancel.status).not.toBe(423);
    expect(cancel.status).toBe(200);

    expect((await call(local, "/accounts/intx/alpha/halt", { method: "DELETE" })).status).toBe(200);
    expect((await placeOrder(local)).status).toBe(200);
    expect(await alphaListed(local)).toMatchObject({ halted: false, halt: null });
  }, 90_000);

  it("without persistent storage the restarted Worker has forgotten it: persistence is what carries the halt", async () => {
    const { local } = await haltThenRestart();
    expect((await placeOrder(local)).status).toBe(200);
    expect(await alphaListed(local)).toMatchObject({ halted: false, halt: null });
  }, 90_000);
});
