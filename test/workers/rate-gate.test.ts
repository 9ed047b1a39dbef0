// Outbound rate limit: the RateGate object never lets a sliding window hold more than the limit, makes callers
// wait for the next free slot, and refuses (429, nothing sent) when the wait would be too long.

import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RateLimitedError, SignedClient, type SlotGate } from "../../src/adapters/client.ts";
import { Keys } from "../../src/adapters/keys.ts";
import type { RateGate } from "../../src/adapters/rate-gate.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import { NO_RULES } from "../../src/core/guards.ts";
import type { Pacing, Priority } from "../../src/core/pacing.ts";
import { Credentials, type VenueConfig } from "../../src/core/venue-config.ts";
import { intx } from "../../src/venues/intx.ts";
import { fakeVenue, SECRET_B64 } from "../support/fake-venue.ts";

describe("RateGate", () => {
  it("one object per key hands out the key's grid points, in order, across callers", async () => {
    const stub = env.RATE_GATE.get(env.RATE_GATE.idFromName("grid-test"));
    await runInDurableObject(stub, (gate: RateGate) => {
      const pacing = { limit: 4, burst: 1, lagMs: 0 }; // points 250 ms apart
      const t0 = 1_000_000;
      // Paced only: no halt to read, no order to count, so admit answers the grid's wait or busy.
      const ask = (maxWaitMs: number, now: number) =>
        gate.admit({ pacing, priority: "write", maxWaitMs, haltable: false, ordersPerMinute: undefined }, now);
      const waits = Array.from({ length: 5 }, () => ask(5_000, t0));
      expect(waits).toEqual([0, 250, 500, 750, 1000].map((wait) => ({ wait })));
      expect(ask(100, t0)).toEqual({ refused: "busy" }); // too long a wait: refused, not reserved
      expect(ask(5_000, t0 + 10_000)).toEqual({ wait: 0 });
      expect(gate.state(t0 + 10_000).ordersLastMinute).toBe(0); // nothing was counted as an order
    });
  });
});

/** A gate that only paces: `reserve` answers the wait, or null for none in time, as `RateGate.admit`'s grid does. */
function slots(
  reserve: (pacing: Pacing | undefined, priority: Priority, maxWaitMs: number) => Promise<number | null>,
): SlotGate {
  return {
    admit: async ({ pacing, priority, maxWaitMs }) => {
      const wait = await reserve(pacing, priority, maxWaitMs);
      return wait === null ? { refused: "busy" } : { wait };
    },
  };
}

describe("client + gate", () => {
  const config: VenueConfig = {
    profile: intx,
    account: "default",
    baseUrl: "https://intx.venue.test",
    windowSeconds: 5,
    secretEncoding: "base64",
    pacing: { limit: 2, burst: 1, lagMs: 200 },
    credentials: new Credentials("k", SECRET_B64, "p"),
    rules: NO_RULES,
  };

  it("waits for the slot before signing, so the timestamp is read after the wait", async () => {
    const venue = fakeVenue({ skewMs: 0, upMs: 1, downMs: 1 });
    const asked: unknown[][] = [];
    const gate: SlotGate = {
      ...slots(async (...args) => {
        asked.push(args);
        return asked.length === 1 ? 0 : 3_000;
      }),
    };
    const slept: number[] = [];
    const c = new SignedClient(config, new VenueClock(), new Keys(), {
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
    // A read asks with the read cap (500 ms); the stub grants 3 s anyway, to show the wait comes before signing.
    expect(asked).toEqual([
      [config.pacing, "read", 500],
      [config.pacing, "read", 500],
    ]);
    expect(slept).toEqual([3_000]);
    // Signed after the 3 s wait: the second timestamp is ≥ 3 s after the first and still accepted.
    expect(Number(venue.seen[1]?.timestamp) - Number(venue.seen[0]?.timestamp)).toBeGreaterThanOrEqual(3);
    expect(r.response.status).toBe(200);
  });

  it("throws RateLimitedError and sends nothing when no slot is free in time", async () => {
    const venue = fakeVenue({ skewMs: 0 });
    const c = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: venue.fetch,
      now: venue.now,
      gate: slots(async () => null),
    });
    await expect(c.send({ method: "POST", path: "/api/v1/orders", body: "{}" })).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(venue.requests).toBe(0);
  });

  it("a write asks with the write cap; a webhook delivery is a write whatever its method", async () => {
    const venue = fakeVenue({ skewMs: 0 });
    const asked: unknown[][] = [];
    const c = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: venue.fetch,
      now: venue.now,
      gate: slots(async (...args) => {
        asked.push(args);
        return 0;
      }),
    });
    await c.send({ method: "POST", path: "/api/v1/orders", body: "{}" });
    await c.send({ method: "GET", path: "/api/v1/portfolios", priority: "write" });
    expect(asked.map((a) => a.slice(1))).toEqual([
      ["write", 1_000],
      ["write", 1_000],
    ]);
  });

  it("a grant used more than lagMs late is given up for a new one; after three, 429 and nothing sent", async () => {
    const venue = fakeVenue({ skewMs: 0, upMs: 1, downMs: 1 });
    let grants = 0;
    const late = (lateGrants: number) =>
      new SignedClient(config, new VenueClock(), new Keys(), {
        fetch: venue.fetch,
        now: venue.now,
        // Each of the first `lateGrants` grants says "wait 100 ms", but this isolate oversleeps by 250 ms.
        gate: slots(async () => (++grants <= lateGrants ? 100 : 0)),
        sleep: async (ms) => venue.advance(ms + 250),
      });
    const r = await late(2).send({ method: "POST", path: "/api/v1/orders", body: "{}" });
    expect(grants).toBe(3);
    expect(r.attempts).toBe(1);
    expect(venue.requests).toBe(1);
    grants = 0;
    await expect(late(10).send({ method: "POST", path: "/api/v1/orders", body: "{}" })).rejects.toBeInstanceOf(
      RateLimitedError,
    );
    expect(grants).toBe(4);
    expect(venue.requests).toBe(1);
  });

  it("a slow gate does not make grants stale: the lag is counted from when the grant arrives", async () => {
    const venue = fakeVenue({ skewMs: 0, upMs: 1, downMs: 1 });
    let grants = 0;
    const c = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: venue.fetch,
      now: venue.now,
      gate: slots(async () => {
        grants++;
        venue.advance(300); // a Durable Object 150 ms away each way
        return 0;
      }),
    });
    const r = await c.send({ method: "POST", path: "/api/v1/orders", body: "{}" });
    expect([grants, r.attempts, venue.requests]).toEqual([1, 1, 1]);
  });

  it("a gate that fails is a refusal before anything is sent; a retry that gets no slot returns the venue's answer", async () => {
    const venue = fakeVenue({
      skewMs: 0,
      respond: (_r, n) => (n === 1 ? Response.json({ message: "busy" }, { status: 503 }) : undefined),
    });
    const failing = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: venue.fetch,
      now: venue.now,
      gate: slots(() => Promise.reject(new Error("Durable Object reset"))),
    });
    await expect(failing.send({ method: "GET", path: "/api/v1/portfolios" })).rejects.toBeInstanceOf(RateLimitedError);
    expect(venue.requests).toBe(0);
    let grants = 0;
    const retrying = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: venue.fetch,
      now: venue.now,
      random: () => 0,
      sleep: async (ms) => venue.advance(ms),
      gate: slots(async () => (++grants === 1 ? 0 : null)),
    });
    // The DELETE reached the venue and got 503; its retry finds no slot, so the 503 stands instead of a 429.
    const r = await retrying.send({ method: "DELETE", path: "/api/v1/orders" });
    expect(r.response.status).toBe(503);
    expect(await r.response.json()).toEqual({ message: "busy" });
    expect(venue.requests).toBe(1);
  });
});
