// The scanner that setup-leaks.ts runs after every workerd test file must catch a leak, or it proves nothing.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { SECRET_B64 } from "../support/fake-venue.ts";
import { findLeaks, LEAK_SCANNER, type LeakScanner } from "../support/leaks.ts";

afterEach(() => vi.restoreAllMocks());

describe("leak scanner", () => {
  it("finds a secret inside a log line or a body, and nothing in clean text", () => {
    const secrets = ["s3cr3t-passphrase", "Zm9vYmFyYmF6cXV4"];
    expect(findLeaks(secrets, ['{"level":"info","route":"/x"}', "ok"])).toEqual([]);
    const found = findLeaks(secrets, ['{"passphrase":"s3cr3t-passphrase"}', "sig=Zm9vYmFyYmF6cXV4;"]);
    expect(found).toHaveLength(2);
    expect(found.join("\n")).not.toContain("s3cr3t-passphrase");
  });

  it("learns a signature the Worker sent through a test's mocked fetch, and reports it once it is logged", async () => {
    const scanner = (globalThis as Record<symbol, unknown>)[LEAK_SCANNER] as LeakScanner;
    const TOKEN = "leak-relay-token-0123456789";
    const env = workerEnv({
      INTX_BASE_URL: "https://intx.venue.test",
      INTX_API_KEY: "leak-key",
      INTX_API_SECRET: SECRET_B64,
      INTX_API_PASSPHRASE: "leak-pass",
      CDE_BASE_URL: "",
      CDE_API_KEY: "",
      CDE_API_SECRET: "",
      CDE_API_PASSPHRASE: "",
      RELAY_TOKENS: JSON.stringify([{ name: "bot", token: TOKEN, allow: ["* /intx/api/v1/*"] }]),
    });
    const body = '{"client_order_id":"leak-1","side":"BUY","size":"0.01"}';
    let sign = "";
    let ts = "";
    // The way relay, hooks, deliveries and fuzz tests stand in for the venue: setup-leaks.ts's fetch wrapper is
    // replaced, so it never sees this request. The stand-in then logs what it was sent: the leak under test.
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
      const request = new Request(input, init);
      sign = request.headers.get("cb-access-sign") ?? "";
      ts = request.headers.get("cb-access-timestamp") ?? "";
      console.log(`venue stand-in got CB-ACCESS-SIGN ${sign}`);
      return Response.json({ ok: true }, { headers: { date: new Date().toUTCString() } });
    });
    const ctx = createExecutionContext();
    try {
      const response = await worker.fetch(
        new Request("https://relay.test/intx/api/v1/orders", {
          method: "POST",
          body,
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        }),
        env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(response.status).toBe(200);
      expect(sign).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      expect(findLeaks(scanner.secrets, scanner.captured)).toEqual([
        `${sign.slice(0, 4)}… in: venue stand-in got CB-ACCESS-SIGN [SECRET]`,
      ]);
      // The prehash is learnt too: a log line quoting it is a leak.
      const prehash = `${ts}POST/api/v1/orders${body}`;
      expect(findLeaks(scanner.secrets, [`signed ${prehash}`])).toEqual([
        `${prehash.slice(0, 4)}… in: signed [SECRET]`,
      ]);
    } finally {
      // This test's own deliberate leak must not fail the file's real scan.
      for (let i = scanner.captured.length - 1; i >= 0; i--) {
        if (sign && scanner.captured[i]?.includes(sign)) scanner.captured.splice(i, 1);
      }
    }
  });
});
