// The library entry, imported as a user would ("skewguard", the built dist/lib), inside workerd: the published
// signing vectors, signatures cross-checked against an independent HMAC (@noble/hashes), and a CoinbaseClient
// against the simulator, whose clock runs 37 s ahead: one timestamp refusal, then never again, also for a second
// client seeded from a shared store.
import {
  CoinbaseClient,
  encodeBase64,
  importHmacKey,
  MemoryEstimateStore,
  SigningInputError,
  secretBytes,
  signedWithOf,
  signHeaders,
  signRequest,
} from "skewguard";
import { describe, expect, it } from "vitest";
import { referenceSignature } from "../support/fake-venue.ts";
import { DEV, simControl } from "../support/sim.ts";

const VECTOR_SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";

describe("the library entry in workerd", () => {
  it("reproduces the published vectors with its key import and base64", async () => {
    const key = await importHmacKey(secretBytes(VECTOR_SECRET, "base64", "secret"));
    const sign = async (text: string) =>
      encodeBase64(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text)));
    expect(await sign("1573653521.402GET/accounts")).toBe("7fF/Orhb4TQmCJ+nQ3f/q25/4ZU3kwDGCkOr/JyG4jA=");
    expect(await sign("1573653521.402GET/users/self/verify")).toBe("EMszpon/Yv43GqmRLemmJgTBB2i5YRWnKV0+gXUe8Xc=");
  });

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
