// Inbound limits: a caller over its limit gets 429 with Retry-After and nothing is forwarded; the key is the
// token's name once authenticated, else the client IP.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index.ts";
import { workerEnv } from "../support/env.ts";
import { SECRET_B64 } from "../support/fake-venue.ts";

const TOKEN = "limits-token-0123456789abc";

function bindings(limited: (key: string) => boolean, keys: string[]) {
  return workerEnv({
    INTX_BASE_URL: "https://intx.venue.test",
    INTX_API_KEY: "k",
    INTX_API_SECRET: SECRET_B64,
    INTX_API_PASSPHRASE: "intx-passphrase",
    RELAY_TOKENS: JSON.stringify([{ name: "bot-7", token: TOKEN, allow: ["GET /intx/*"] }]),
    INBOUND_LIMITER: {
      limit: async ({ key }: { key: string }) => {
        keys.push(key);
        return { success: !limited(key) };
      },
    },
  });
}

async function call(b: Env, headers: Record<string, string>) {
  const ctx = createExecutionContext();
  const r = await worker.fetch(new Request("https://relay.test/intx/api/v1/portfolios", { headers }), b, ctx);
  await waitOnExecutionContext(ctx);
  return r;
}

afterEach(() => vi.restoreAllMocks());

describe("inbound limits", () => {
  it("limits by client IP first, then by token name", async () => {
    const spy = vi.spyOn(globalThis, "fetch").mockResolvedValue(Response.json([]));
    const keys: string[] = [];
    const r = await call(
      bindings(() => false, keys),
      { authorization: `Bearer ${TOKEN}`, "cf-connecting-ip": "203.0.113.9" },
    );
    expect(r.status).toBe(200);
    expect(keys).toEqual(["ip:203.0.113.9", "token:bot-7"]);
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it("429 with Retry-After for an IP over its limit, before authentication, nothing forwarded", async () => {
    const spy = vi.spyOn(globalThis, "fetch").mockResolvedValue(Response.json([]));
    const r = await call(
      bindings((k) => k.startsWith("ip:"), []),
      { authorization: `Bearer ${TOKEN}` },
    );
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("10");
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("rate_limited");
    expect(spy).not.toHaveBeenCalled();
  });

  it("429 for a token over its limit", async () => {
    const spy = vi.spyOn(globalThis, "fetch").mockResolvedValue(Response.json([]));
    const r = await call(
      bindings((k) => k === "token:bot-7", []),
      { authorization: `Bearer ${TOKEN}` },
    );
    expect(r.status).toBe(429);
    expect(spy).not.toHaveBeenCalled();
  });

  it("the real binding counts: the 601st request in a minute from one IP is refused", async () => {
    const b = workerEnv({ RELAY_TOKENS: "[]" });
    // The local binding counts in windows aligned to the wall-clock minute. Rather than wait for a quiet part of the
    // minute, send until the first refusal and see whether a minute ended on the way.
    const minute = () => Math.floor(Date.now() / 60_000);
    const first = minute();
    let passed = 0;
    let status = 200;
    while (status === 200 && passed <= 1_200) {
      const ctx = createExecutionContext();
      const r = await worker.fetch(
        new Request("https://relay.test/clock", { headers: { "cf-connecting-ip": "198.51.100.77" } }),
        b,
        ctx,
      );
      status = r.status;
      if (status === 200) passed++;
    }
    expect(status).toBe(429);
    if (minute() === first) {
      expect(passed).toBe(600); // one window: exactly 600 let through
    } else {
      // A window ended on the way (once at most: 1 200 requests take seconds): its count restarted, so the refusal
      // came after 600 in the new window, on top of the old window's share.
      expect(passed).toBeGreaterThanOrEqual(600);
      expect(passed).toBeLessThanOrEqual(1_200);
    }
  }, 20_000);
});
