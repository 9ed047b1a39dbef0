// The published legacy Coinbase Exchange vectors (docs/protocol.md, "Signing"): same HMAC construction, base64 key.
import { describe, expect, it } from "vitest";
import { KeyCache } from "../../src/lib/key.ts";
import { signature } from "../../src/lib/sign.ts";

const SECRET = "QiM6irV9cW5NJo3xei+MLD0a4GLnsz+HSFwucGXdt+c8gZwRUxTltMfh09w8pZ2VHXKdM8LzqxhaMUg4WHSsvQ==";

// The vectors use the legacy decimal timestamp 1573653521.402; the algorithm is what is being checked, so the
// prehash is built from the same text. `signature` takes whole seconds, so these go through its byte path.
import { encodeBase64 } from "../../src/lib/base64.ts";

async function legacy(method: string, path: string, body: string): Promise<string> {
  const key = await new KeyCache().get(SECRET, "base64", "TEST_SECRET");
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`1573653521.402${method}${path}${body}`));
  return encodeBase64(mac);
}

describe("published vectors", () => {
  it("GET /accounts, no body", async () => {
    expect(await legacy("GET", "/accounts", "")).toBe("7fF/Orhb4TQmCJ+nQ3f/q25/4ZU3kwDGCkOr/JyG4jA=");
  });
  it("GET /users/self/verify, empty body", async () => {
    expect(await legacy("GET", "/users/self/verify", "")).toBe("EMszpon/Yv43GqmRLemmJgTBB2i5YRWnKV0+gXUe8Xc=");
  });
  it("POST /profiles/transfer, JSON body", async () => {
    const body =
      '{"from":"86602c68-306a-4500-ac73-4ce56a91d83c","to":"e87429d3-f0a7-4f28-8dff-8dd93d383de1","currency":"ETH","amount":100}';
    expect(await legacy("POST", "/profiles/transfer", body)).toBe("xBQCYBLmE0rX9tKUzNL4vgeuX7kIlpMdqILMftUiFzU=");
  });
  it("signature() refuses the decimal legacy timestamp rather than signing it", async () => {
    const key = await new KeyCache().get(SECRET, "base64", "TEST_SECRET");
    await expect(signature(key, 1573653521.402, "GET", "/accounts")).rejects.toThrow(/whole seconds/);
  });
});
