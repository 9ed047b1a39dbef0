// Shared clock state: a warm isolate offers its estimate to the venue's ClockState Durable Object, and a cold
// isolate seeds from it, so its first signed request needs no time-retry.
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { SignedClient } from "../../src/adapters/client.ts";
import { Keys } from "../../src/adapters/keys.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import { NO_RULES } from "../../src/core/guards.ts";
import { Credentials, type VenueConfig } from "../../src/core/venue-config.ts";
import { cde } from "../../src/venues/cde.ts";
import { fakeVenue, SECRET_B64 } from "../support/fake-venue.ts";

const config: VenueConfig = {
  profile: cde,
  account: "default",
  baseUrl: "https://cde.venue.test",
  windowSeconds: 5,
  secretEncoding: "base64",
  pacing: undefined,
  credentials: new Credentials("k", SECRET_B64, "p"),
  rules: NO_RULES,
};

describe("clock shared across isolates", () => {
  it("a cold isolate starts from the shared estimate and needs no retry", async () => {
    const store = env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName("share-test"));
    const venue = fakeVenue({ skewMs: 37_250, upMs: 15, downMs: 25 });
    const pending: Promise<unknown>[] = [];
    const options = { fetch: venue.fetch, now: venue.now, store, waitUntil: (p: Promise<unknown>) => pending.push(p) };

    const warm = new SignedClient(config, new VenueClock(), new Keys(), options);
    const first = await warm.send({ method: "GET", path: "/rest/v2/positions" });
    expect(first.attempts).toBe(2); // nothing shared yet: the first call learns from its rejection
    await Promise.all(pending);
    const shared = await store.read();
    expect(shared).not.toBeNull();
    expect(shared?.lowMs).toBeLessThanOrEqual(37_250);
    expect(shared?.highMs).toBeGreaterThanOrEqual(37_250);

    venue.advance(60_000);
    const coldClock = new VenueClock();
    const cold = new SignedClient(config, coldClock, new Keys(), options);
    const r = await cold.send({ method: "GET", path: "/rest/v2/positions" });
    expect(r.attempts).toBe(1);
    expect(r.response.status).toBe(200);
    expect(Math.abs(r.offsetMs - 37_250)).toBeLessThanOrEqual(r.uncertaintyMs as number);
  });

  it("the store keeps the tighter of two overlapping estimates and takes a non-overlapping newer one (a step)", async () => {
    const store = env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName("offer-test"));
    const tight = { offsetMs: 1000, lowMs: 990, highMs: 1010, samples: 5, updatedAt: 1_000_000 };
    const loose = { offsetMs: 1000, lowMs: 500, highMs: 1500, samples: 1, updatedAt: 1_001_000 };
    const stepped = { offsetMs: 9000, lowMs: 8500, highMs: 9500, samples: 1, updatedAt: 1_002_000 };
    expect(await store.offer(tight, 100)).toBe(true);
    expect(await store.offer(loose, 100)).toBe(false);
    expect((await store.read())?.lowMs).toBe(990);
    expect(await store.offer(stepped, 100)).toBe(true);
    expect((await store.read())?.offsetMs).toBe(9000);
  });
});

// docs/clock.md and docs/relay.md, "Where the Durable Objects live": a cold isolate reads the shared estimate "with a
// 250 ms cap"; an isolate writes improvements to `ClockState` "at most every 10 s"; background probes run "at most
// every 30 s per isolate" (that one in clock-sync.test.ts). Each cap checked at its boundary, with time injected (the numbers are the docs', not
// imported from the code).
describe("the clock's caps", () => {
  afterEach(() => vi.useRealTimers());

  it("the shared-estimate read is waited for 250 ms at most: still waiting at 249 ms, released at 250 ms", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let reads = 0;
    const silent = {
      read: () => {
        reads++;
        return new Promise<null>(() => {}); // a ClockState that never answers
      },
      offer: async () => true,
    };
    let released = false;
    const ready = new VenueClock().ready(silent).then(() => {
      released = true;
    });
    await vi.advanceTimersByTimeAsync(249);
    expect([reads, released]).toEqual([1, false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(released).toBe(true);
    await ready;
  });

  it("an isolate offers its estimate to the shared store at most every 10 s: not at 9,999 ms, again at 10,000 ms", () => {
    const clock = new VenueClock();
    const t0 = 1_800_000_000_000;
    // One response taught it (a sample stamped in the second of t0, a 10 ms round trip).
    clock.observe({ tSend: t0 - 10, tRecv: t0, date: Math.floor(t0 / 1000) });
    expect(clock.takeOffer(t0)).toBeDefined();
    expect(clock.takeOffer(t0 + 9_999)).toBeUndefined();
    expect(clock.takeOffer(t0 + 10_000)).toBeDefined();
    expect(clock.takeOffer(t0 + 19_999)).toBeUndefined();
    expect(clock.takeOffer(t0 + 20_000)).toBeDefined();
  });
});
