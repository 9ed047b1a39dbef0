// The signer reuses one buffer for the bytes it MACs. Many signatures in flight at once must still each sign
// their own message: checked against @noble/hashes, an implementation that shares nothing with src/core.
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import { KeyCache } from "../../src/lib/key.ts";
import { signature } from "../../src/lib/sign.ts";

const SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";
const keyBytes = Uint8Array.from(atob(SECRET), (c) => c.charCodeAt(0));
const reference = (message: string) =>
  btoa(String.fromCharCode(...hmac(sha256, keyBytes, new TextEncoder().encode(message))));

describe("signing under concurrency", () => {
  it("interleaved signatures of different sizes each match their own reference", async () => {
    const key = await new KeyCache().get(SECRET, "base64", "TEST_SECRET");
    const bodies = Array.from(
      { length: 200 },
      (_, i) => `{"n":${i},"pad":"${"é".repeat(i % 7)}${"x".repeat((i * 97) % 5000)}"}`,
    );
    const signed = await Promise.all(
      bodies.map((b, i) => signature(key, 1_700_000_000 + i, "POST", `/api/v1/o/${i}`, b)),
    );
    signed.forEach((s, i) => {
      expect(s).toBe(reference(`${1_700_000_000 + i}POST/api/v1/o/${i}${bodies[i]}`));
    });
  });

  it("a body larger than the reusable buffer signs correctly, and so does a small one after it", async () => {
    const key = await new KeyCache().get(SECRET, "base64", "TEST_SECRET");
    const big = "y".repeat(3 << 20);
    expect(await signature(key, 1_700_000_000, "PUT", "/rest/x", big)).toBe(reference(`1700000000PUT/rest/x${big}`));
    expect(await signature(key, 1_700_000_001, "GET", "/rest/x")).toBe(reference("1700000001GET/rest/x"));
  });

  it("a warm KeyCache returns the CryptoKey itself, and imports once per secret", async () => {
    const cache = new KeyCache(2);
    const first = cache.get(SECRET, "base64", "TEST_SECRET");
    expect(first).toBeInstanceOf(Promise);
    const key = await first;
    expect(cache.get(SECRET, "base64", "TEST_SECRET")).toBe(key);
    cache.get("c2Vjb25k", "base64", "B");
    cache.get("dGhpcmQ=", "base64", "C");
    // Bounded: the least recently used entry went, so the first secret is imported again.
    expect(cache.get(SECRET, "base64", "TEST_SECRET")).toBeInstanceOf(Promise);
  });
});
