// Adding a venue is one profile: a Worker built with the test-only venue TVX (test/support/test-venue.ts) routes its
// paths, signs for its accounts (checked against an independent HMAC), guards its orders, fails closed on a write
// its profile does not name, halts it, and lists it, with nothing else in skewguard edited.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_VENUES, VENUE_PROFILES, Venues } from "../../src/venues/index.ts";
import { createWorker } from "../../src/worker.ts";
import { referenceSignature, SECRET_B64 } from "../support/fake-venue.ts";
import { TEST_VENUE } from "../support/test-venue.ts";

const worker = createWorker(new Venues([...VENUE_PROFILES, TEST_VENUE]));
const OPS = "tvx-ops-token-0123456789";

function tvxEnv(): Env {
  return {
    ...env,
    TVX_API_KEY: "tvx-key",
    TVX_API_SECRET: SECRET_B64,
    TVX_API_PASSPHRASE: "tvx-pass",
    TVX_ALPHA_API_KEY: "tvx-alpha-key",
    TVX_ALPHA_API_SECRET: SECRET_B64,
    TVX_ALPHA_API_PASSPHRASE: "tvx-alpha-pass",
    ACCOUNTS: JSON.stringify([
      { name: "alpha", venue: "tvx", guards: { instruments: ["BTC-PERP"], max_size: { "*": "1" } } },
    ]),
    RELAY_TOKENS: JSON.stringify([
      { name: "ops", token: OPS, allow: ["* /tvx/*", "GET /accounts", "* /accounts/*/halt", "GET /health"] },
    ]),
  } as unknown as Env;
}

interface Seen {
  method: string;
  url: string;
  key: string | null;
  signatureOk: boolean;
}

/** The venue: every request it gets is recorded, with whether its signature is the one TVX would compute. */
function venue(): Seen[] {
  const seen: Seen[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const ts = request.headers.get("cb-access-timestamp") ?? "";
    const body = await request.text();
    const expected = referenceSignature(SECRET_B64, ts, request.method, url.pathname, body);
    const signatureOk = request.headers.get("cb-access-sign") === expected;
    seen.push({ method: request.method, url: request.url, key: request.headers.get("cb-access-key"), signatureOk });
    return Response.json({ ok: true }, { headers: { date: new Date().toUTCString() } });
  });
  return seen;
}

async function call(e: Env, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${OPS}`);
  const response = await worker.fetch(new Request(`https://relay.test${path}`, { ...init, headers }), e, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

const post = (body: unknown): RequestInit => ({
  method: "POST",
  body: JSON.stringify(body),
  headers: { "content-type": "application/json" },
});
const order = (size: string) => ({ instrument: "BTC-PERP", side: "BUY", type: "LIMIT", size, price: "1" });

afterEach(() => vi.restoreAllMocks());

describe("a venue added by its profile alone", () => {
  it("routes and signs its paths, for its default account and a listed one", async () => {
    const e = tvxEnv();
    const seen = venue();
    expect((await call(e, "/tvx/v2/account?x=1")).status).toBe(200);
    expect((await call(e, "/tvx/alpha/v2/account")).status).toBe(200);
    expect(seen).toEqual([
      { method: "GET", url: "https://api.tvx.test/v2/account?x=1", key: "tvx-key", signatureOk: true },
      { method: "GET", url: "https://api.tvx.test/v2/account", key: "tvx-alpha-key", signatureOk: true },
    ]);
    // Outside its API prefix: not relayed.
    expect((await call(e, "/tvx/api/v1/orders")).status).toBe(404);
  });

  it("guards its orders, and treats a write its profile does not name as an order", async () => {
    const e = tvxEnv();
    const seen = venue();
    expect((await call(e, "/tvx/alpha/v2/order", post(order("1")))).status).toBe(200);
    const over = await call(e, "/tvx/alpha/v2/order", post(order("1.1")));
    expect(over.status).toBe(422);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe("order_refused");
    // POST /v2/transfer is named nowhere in the profile: it is held to the order guards, and has no instrument.
    const unnamed = await call(e, "/tvx/alpha/v2/transfer", post({ amount: "5" }));
    expect(unnamed.status).toBe(422);
    expect(await unnamed.json()).toMatchObject({
      error: { code: "order_refused", message: "instrument is missing (account tvx/alpha)" },
    });
    expect(seen.map((s) => `${s.method} ${new URL(s.url).pathname}`)).toEqual(["POST /v2/order"]);
  });

  it("halts it: orders and unnamed writes stop, its cancel and its kill-switch pass", async () => {
    const e = tvxEnv();
    const seen = venue();
    const halt = await call(e, "/accounts/tvx/alpha/halt", { method: "PUT", body: '{"reason":"drill"}' });
    expect(halt.status).toBe(200);
    expect((await call(e, "/tvx/alpha/v2/order", post(order("1")))).status).toBe(423);
    expect((await call(e, "/tvx/alpha/v2/transfer", post({ instrument: "BTC-PERP", size: "1" }))).status).toBe(423);
    expect((await call(e, "/tvx/alpha/v2/order/7", { method: "DELETE" })).status).toBe(200);
    expect((await call(e, "/tvx/alpha/v2/panic", post({}))).status).toBe(200);
    expect(seen.map((s) => `${s.method} ${new URL(s.url).pathname}`)).toEqual(["DELETE /v2/order/7", "POST /v2/panic"]);
    expect((await call(e, "/accounts/tvx/alpha/halt", { method: "DELETE" })).status).toBe(200);
  });

  it("lists its accounts, and reserves its API prefix's first segment as an account name", async () => {
    const e = { ...tvxEnv(), ACCOUNTS: JSON.stringify([{ name: "v2", venue: "tvx" }]) } as Env;
    const accounts = (await (await call(e, "/accounts")).json()) as { accounts: { venue: string; name: string }[] };
    expect(accounts.accounts.filter((a) => a.venue === "tvx").map((a) => a.name)).toEqual(["default"]);
    const health = (await (await call(e, "/health")).json()) as { problems: { binding: string; message: string }[] };
    expect(health.problems).toContainEqual(
      expect.objectContaining({
        binding: "ACCOUNTS",
        message: "name v2 is reserved (it is part of a venue's API path)",
      }),
    );
  });

  it("the Worker built with the default venues does not know it", async () => {
    const e = tvxEnv();
    venue();
    const ctx = createExecutionContext();
    const request = new Request("https://relay.test/tvx/v2/account", { headers: { authorization: `Bearer ${OPS}` } });
    const response = await createWorker(DEFAULT_VENUES).fetch(request, e, ctx);
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(404);
  });

  it("a venue cannot take the name of one of skewguard's own routes", () => {
    expect(() => createWorker(new Venues([{ ...TEST_VENUE, name: "health" }]))).toThrow(
      "venue name health is one of skewguard's own routes",
    );
  });
});
