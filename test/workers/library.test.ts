// The library entry, imported as a user would ("skewguard", the built dist/lib), inside workerd: the published
// signing vectors through the signer's own HMAC core and through an independent HMAC (@noble/hashes), the Worker's
// outbound signature checked against that independent HMAC, signatures cross-checked against it, and a
// CoinbaseClient against the simulator, whose clock runs 37 s ahead: one timestamp refusal, then never again, also
// for a second client seeded from a shared store.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import {
  CoinbaseClient,
  importHmacKey,
  MemoryEstimateStore,
  SigningInputError,
  secretBytes,
  signedWithOf,
  signHeaders,
  signRequest,
} from "skewguard";
import { afterEach, describe, expect, it, vi } from "vitest";
// The signer's HMAC core in the same built module the entry uses; not part of the entry (its timestamp is unchecked).
import { macPrehash } from "../../dist/lib/sign.js";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { referenceSignature } from "../support/fake-venue.ts";
import { DEV, simControl } from "../support/sim.ts";

// docs/protocol.md, "Signing": the legacy Coinbase Exchange vectors.
const VECTOR_SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";
const TRANSFER =
  '{"from":"86602c68-306a-4500-ac73-4ce56a91d83c","to":"e87429d3-f0a7-4f28-8dff-8dd93d383de1","currency":"ETH","amount":100}';
const VECTORS: [method: string, path: string, body: string, sign: string][] = [
  ["GET", "/accounts", "", "7fF/Orhb4TQmCJ+nQ3f/q25/4ZU3kwDGCkOr/JyG4jA="],
  ["GET", "/users/self/verify", "", "EMszpon/Yv43GqmRLemmJgTBB2i5YRWnKV0+gXUe8Xc="],
  ["POST", "/profiles/transfer", TRANSFER, "xBQCYBLmE0rX9tKUzNL4vgeuX7kIlpMdqILMftUiFzU="],
];

afterEach(() => vi.restoreAllMocks());

describe("published vectors", () => {
  it("the built signer's HMAC core (what signature() runs after its timestamp check) reproduces them", async () => {
    const key = await importHmacKey(secretBytes(VECTOR_SECRET, "base64", "secret"));
    for (const [method, path, body, sign] of VECTORS) {
      expect(await macPrehash(key, 1573653521.402, method, path, body)).toBe(sign);
    }
  });

  it("the independent HMAC (@noble/hashes) that the Worker is checked against reproduces them", () => {
    for (const [method, path, body, sign] of VECTORS) {
      expect(referenceSignature(VECTOR_SECRET, "1573653521.402", method, path, body)).toBe(sign);
    }
  });

  it("the Worker relays a request signed as the independent HMAC signs it, on a whole-second timestamp", async () => {
    const TOKEN = "vector-relay-token-0123456789";
    const env = workerEnv({
      INTX_BASE_URL: "https://intx.venue.test",
      INTX_API_KEY: "vector-key",
      INTX_API_SECRET: VECTOR_SECRET,
      INTX_API_PASSPHRASE: "vector-pass",
      CDE_BASE_URL: "",
      CDE_API_KEY: "",
      CDE_API_SECRET: "",
      CDE_API_PASSPHRASE: "",
      RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/api/v1/*"] }]),
    });
    const sent: Request[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      sent.push(new Request(input, init));
      return Response.json({ ok: true }, { headers: { date: new Date().toUTCString() } });
    });
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request("https://relay.test/intx/api/v1/profiles/transfer?x=1", {
        method: "POST",
        body: TRANSFER,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(1);
    const out = sent[0] as Request;
    expect(await out.clone().text()).toBe(TRANSFER);
    const ts = out.headers.get("cb-access-timestamp") as string;
    expect(ts).toMatch(/^\d{10}$/);
    // CLOCK_SYNC=never and no venue sample yet: the local clock, whole seconds.
    expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(2);
    expect(out.headers.get("cb-access-sign")).toBe(
      referenceSignature(VECTOR_SECRET, ts, "POST", "/api/v1/profiles/transfer", TRANSFER),
    );
  });
});

describe("the library entry in workerd", () => {
  it("signHeaders and signRequest match an independent HMAC, byte for byte, and refuse a decimal timestamp", async () => {
    const key = await importHmacKey(secretBytes(DEV.INTX_API_SECRET, "base64", "secret"));
    const identity = { apiKey: "k-1", passphrase: "p-1", key };
    const body = '{"client_order_id":"é-1","size":"0.01"}';
    const url = "https://api.international.coinbase.com/api/v1/orders?portfolio=x";
    const headers = await signHeaders(identity, { method: "post", url, body }, 1_800_000_000);
    expect(headers).toEqual({
      "CB-ACCESS-KEY": "k-1",
      "CB-ACCESS-PASSPHRASE": "p-1",
      "CB-ACCESS-SIGN": referenceSignature(DEV.INTX_API_SECRET, "1800000000", "POST", "/api/v1/orders", body),
      "CB-ACCESS-TIMESTAMP": "1800000000",
    });
    const request = await signRequest(new Request(url, { method: "POST", body }), identity, 1_800_000_000);
    expect(request.headers.get("cb-access-sign")).toBe(headers["CB-ACCESS-SIGN"]);
    expect(await request.text()).toBe(body);
    await expect(signHeaders(identity, { method: "GET", url }, 1_800_000_000.5)).rejects.toBeInstanceOf(
      SigningInputError,
    );
  });

  it("CoinbaseClient: one refusal on a 37 s skew, then none; a second client seeded from the store needs none", async () => {
    await simControl({ reset: true, skew_ms: 37_250 });
    const store = new MemoryEstimateStore();
    const options = {
      apiKey: DEV.INTX_API_KEY,
      secret: DEV.INTX_API_SECRET,
      passphrase: DEV.INTX_API_PASSPHRASE,
      store,
    };
    const client = new CoinbaseClient(options);
    const first = await client.fetch("https://lib.sim.test/api/v1/portfolios");
    expect(first.status).toBe(200);
    expect(signedWithOf(first)?.attempts).toBe(2);
    const second = await client.fetch("https://lib.sim.test/api/v1/portfolios");
    expect(signedWithOf(second)?.attempts).toBe(1);
    const offset = signedWithOf(second)?.estimate?.offsetMs ?? 0;
    expect(Math.abs(offset - 37_250)).toBeLessThan(1_100);

    const fresh = new CoinbaseClient(options);
    const seeded = await fresh.fetch("https://lib.sim.test/api/v1/orders", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_order_id: crypto.randomUUID(),
        side: "BUY",
        size: "0.01",
        tif: "IOC",
        type: "MARKET",
        instrument: "BTC-PERP",
      }),
    });
    expect(seeded.status).toBe(200);
    expect(signedWithOf(seeded)?.attempts).toBe(1);
    const { effects } = await simControl();
    expect(effects.rejected).toEqual({ timestamp_window: 1 });
    expect(effects.orders_placed).toBe(1);
  });

  it("CoinbaseClient returns a redirect instead of following it with a signed request", async () => {
    await simControl({ reset: true, fault: { kind: "redirect", count: 1 } });
    const client = new CoinbaseClient({ apiKey: "k", secret: DEV.INTX_API_SECRET, passphrase: "p" });
    const r = await client.fetch("https://lib.sim.test/api/v1/portfolios");
    expect(r.status).toBe(307);
    expect((await simControl()).captured).toEqual([]);
  });
});
