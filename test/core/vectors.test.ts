// The published legacy Coinbase Exchange vectors (docs/protocol.md, "Signing"): same HMAC construction, base64 key.
// They run through the signer's own code: the key through `KeyCache` (secretBytes + importHmacKey), the bytes
// through `writePrehash` and the HMAC and base64 through `macPrehash`, which is exactly what `signature` runs after
// `checkTimestamp`. The vectors' timestamp is the legacy decimal 1573653521.402, which `signature` refuses, so
// they enter one step below it; the refusal itself is checked last.
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { describe, expect, it } from "vitest";
import { KeyCache } from "../../src/lib/key.ts";
import { prehash } from "../../src/lib/prehash.ts";
import { macPrehash, signature, signHeaders, subscriptionSignature } from "../../src/lib/sign.ts";

const SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";
const TIMESTAMP = 1573653521.402;
const TRANSFER =
  '{"from":"86602c68-306a-4500-ac73-4ce56a91d83c","to":"e87429d3-f0a7-4f28-8dff-8dd93d383de1","currency":"ETH","amount":100}';

const key = () => new KeyCache().get(SECRET, "base64", "TEST_SECRET");

describe("published vectors, through the signer's HMAC core", () => {
  it("GET /accounts, no body", async () => {
    expect(prehash(TIMESTAMP, "GET", "/accounts")).toBe("1573653521.402GET/accounts");
    expect(await macPrehash(await key(), TIMESTAMP, "GET", "/accounts")).toBe(
      "7fF/Orhb4TQmCJ+nQ3f/q25/4ZU3kwDGCkOr/JyG4jA=",
    );
  });
  it("GET /users/self/verify, empty body", async () => {
    expect(await macPrehash(await key(), TIMESTAMP, "GET", "/users/self/verify", "")).toBe(
      "EMszpon/Yv43GqmRLemmJgTBB2i5YRWnKV0+gXUe8Xc=",
    );
  });
  it("POST /profiles/transfer, JSON body, as a string and as bytes", async () => {
    const expected = "xBQCYBLmE0rX9tKUzNL4vgeuX7kIlpMdqILMftUiFzU=";
    expect(await macPrehash(await key(), TIMESTAMP, "POST", "/profiles/transfer", TRANSFER)).toBe(expected);
    const bytes = new TextEncoder().encode(TRANSFER);
    expect(await macPrehash(await key(), TIMESTAMP, "POST", "/profiles/transfer", bytes)).toBe(expected);
  });
  it("signature() and signHeaders() refuse the decimal legacy timestamp rather than signing it", async () => {
    const k = await key();
    await expect(signature(k, TIMESTAMP, "GET", "/accounts")).rejects.toThrow(/whole seconds/);
    const identity = { apiKey: "k", passphrase: "p", key: k };
    await expect(signHeaders(identity, { method: "GET", url: "https://x.test/accounts" }, TIMESTAMP)).rejects.toThrow(
      /whole seconds/,
    );
  });
});

describe("a market-data subscription's signature", () => {
  it("is base64(HMAC-SHA256(secret, time + key + word + passphrase)), as an independent HMAC computes it", async () => {
    const secret = "c2tld2d1YXJkLWRldi1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=";
    const identity = { apiKey: "md-key", passphrase: "md-pass", key: await new KeyCache().get(secret, "base64", "S") };
    const raw = Uint8Array.from(atob(secret), (c) => c.charCodeAt(0));
    const expected = btoa(
      String.fromCharCode(...hmac(sha256, raw, new TextEncoder().encode("1796590000md-keyCBINTLMDmd-pass"))),
    );
    expect(await subscriptionSignature(identity, 1796590000, "CBINTLMD")).toBe(expected);
    // The word and every part are signed: change one and the signature changes.
    expect(await subscriptionSignature(identity, 1796590001, "CBINTLMD")).not.toBe(expected);
    expect(await subscriptionSignature(identity, 1796590000, "CBINTLMX")).not.toBe(expected);
    await expect(subscriptionSignature(identity, 1796590000.5, "CBINTLMD")).rejects.toThrow();
  });
});
