// Outbound rate limit: the RateGate object never lets a sliding window hold more than the limit, makes callers
// wait for the next free slot, and refuses (429, nothing sent) when the wait would be too long.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RateLimitedError, SignedClient, type SlotGate } from "../../src/adapters/client.ts";
import type { RateGate } from "../../src/adapters/rate-gate.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import { KeyCache } from "../../src/core/key.ts";
import { Credentials, PROFILES, type VenueConfig } from "../../src/core/venue.ts";
import { fakeVenue, SECRET_B64 } from "../support/fake-venue.ts";

describe("RateGate", () => {
  it("grants at most `limit` slots in any window, spacing the rest", async () => {
    const stub = env.RATE_GATE.get(env.RATE_GATE.idFromName("window-test"));
    await runInDurableObject(stub, (gate: RateGate) => {
      const t0 = 1_000_000;
      const waits = Array.from({ length: 6 }, () => gate.reserve(3, 1000, 5_000, t0));
      expect(waits).toEqual([0, 0, 0, 1000, 1000, 1000]);
      // Every window of 1000 ms holds at most 3 granted slots: slots are at t0 ×3 and t0+1000 ×3.
      expect(gate.reserve(3, 1000, 5_000, t0 + 1500)).toBe(500); // next free slot: t0+2000
      expect(gate.reserve(3, 1000, 100, t0 + 1500)).toBeNull(); // too long a wait: refused, not reserved
      expect(gate.reserve(3, 1000, 5_000, t0 + 10_000)).toBe(0);
    });
  });
});

describe("client + gate", () => {
  const config: VenueConfig = {
    profile: PROFILES.intx,
    baseUrl: "https://intx.venue.test",
    windowSeconds: 5,
    secretEncoding: "base64",
    ratePerSecond: 2,
    credentials: new Credentials("k", SECRET_B64, "p"),
  };

  it("waits for the slot before signing, so the timestamp is read after the wait", async () => {
    const venue = fakeVenue({ skewMs: 0, upMs: 1, downMs: 1 });
    const asked: number[] = [];
    const gate: SlotGate = {
      reserve: async (limit) => {
        asked.push(limit);
        return asked.length === 1 ? 0 : 3_000;
      },
    };
    const slept: number[] = [];
    const c = new SignedClient(config, new VenueClock(), new KeyCache(), {
      fetch: venue.fetch,
      now: venue.now,
      gate,
      sleep: async (ms) => {
        slept.push(ms);
        venue.advance(ms);
      },
    });
    await c.send({ method: "GET", path: "/api/v1/portfolios" });
    const r = await c.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(asked).toEqual([2, 2]);
    expect(slept).toEqual([3_000]);
    // Signed after the 3 s wait: the second timestamp is ≥ 3 s after the first and still accepted.
    expect(Number(venue.seen[1]?.timestamp) - Number(venue.seen[0]?.timestamp)).toBeGreaterThanOrEqual(3);
    expect(r.response.status).toBe(200);
  });

  it("throws RateLimitedError and sends nothing when no slot is free in time", async () => {
    const venue = fakeVenue({ skewMs: 0 });
    const c = new SignedClient(config, new VenueClock(), new KeyCache(), {
      fetch: venue.fetch,
      now: venue.now,
      gate: { reserve: async () => null },
    });
    await expect(c.send({ method: "POST", path: "/api/v1/orders", body: "{}" })).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(venue.requests).toBe(0);
  });
});
