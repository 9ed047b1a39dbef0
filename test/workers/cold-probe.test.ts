// The cold probe under load, with every timing injected: many concurrent sends to a cold isolate share one probe,
// wait for its answer (even a slow one) before signing, and a probe that taught nothing is not followed at once by
// another. The venue is test/support/fake-venue.ts (37.25 s ahead), so a request signed without an estimate is
// refused for its timestamp.
import { describe, expect, it } from "vitest";
import { type ClientOptions, SignedClient } from "../../src/adapters/client.ts";
import { Keys } from "../../src/adapters/keys.ts";
import { VenueClock } from "../../src/adapters/venue-clock.ts";
import type { ClockEstimate } from "../../src/lib/estimator.ts";
import { intx } from "../../src/venues/intx.ts";
import { FAKE_INTX, fakeVenue } from "../support/fake-venue.ts";

const config = FAKE_INTX;
const SKEW_MS = 37_250;
const isProbe = (request: Request) => new URL(request.url).pathname === intx.apiPrefix;

/** A promise and its resolver. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Real milliseconds (the AbortSignal timeouts are real timers, in the same event loop). */
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The fake venue behind a fetch that counts probes and answers each one as `probeAnswer` decides. A probe's
 * answer honours the request's signal, as a real fetch does: aborted, it rejects with the signal's reason.
 */
function rig(probeAnswer: (request: Request, answer: () => Response) => Promise<Response>) {
  const venue = fakeVenue({ skewMs: SKEW_MS, upMs: 5, downMs: 5 });
  let probes = 0;
  const fetch = async (request: Request): Promise<Response> => {
    if (!isProbe(request)) return venue.fetch(request);
    probes++;
    // The venue stamps the probe as the simulated clock reads when it is answered; unsigned, it is refused (401).
    const answer = () =>
      new Response("Unauthorized", {
        status: 401,
        headers: {
          "content-type": "text/plain",
          date: new Date(Math.floor((venue.now() + SKEW_MS) / 1000) * 1000).toUTCString(),
        },
      });
    return await new Promise<Response>((resolve, reject) => {
      request.signal.addEventListener("abort", () => reject(request.signal.reason));
      probeAnswer(request, answer).then(resolve, reject);
    });
  };
  return {
    venue,
    fetch,
    get probes() {
      return probes;
    },
    refusals: () => venue.seen.filter((s) => !s.accepted).length,
  };
}

function coldClient(r: ReturnType<typeof rig>, store: ClientOptions["store"]) {
  return new SignedClient(config, new VenueClock(), new Keys(), {
    fetch: r.fetch,
    now: r.venue.now,
    sleep: async (ms) => r.venue.advance(ms),
    random: () => 0.5,
    syncMode: "cold",
    store,
  });
}

/** A shared store that answers `value` only after `delayMs` real ms (the seed gives up at 250 ms). */
function lateStore(delayMs: number, value: ClockEstimate | null = null) {
  let reads = 0;
  return {
    read: async () => {
      reads++;
      await pause(delayMs);
      return value;
    },
    offer: async () => true,
    get reads() {
      return reads;
    },
  };
}

describe("cold probe under load", { timeout: 20_000 }, () => {
  it("300 concurrent sends, shared read past its cap, a slow probe answer: 1 probe, 0 refusals, all attempts 1", async () => {
    // The probe's answer comes 2.5 s (real) after it was sent, the round trip of a CPU-starved isolate: past the 2 s
    // the probe used to be given, so the waiting requests used to sign blind and be refused, and later ones probed
    // again. The simulated clock moves by that round trip too, so the sample is as wide as it would be.
    const r = rig(async (_request, answer) => {
      await pause(2_500);
      r.venue.advance(1_250);
      const response = answer();
      r.venue.advance(1_250);
      return response;
    });
    const store = lateStore(400);
    const client = coldClient(r, store);
    const sends = Array.from({ length: 300 }, (_, i) =>
      i % 6 === 5
        ? client.send({ method: "POST", path: "/api/v1/orders", body: `{"n":${i}}` })
        : client.send({ method: "GET", path: "/api/v1/portfolios", query: `n=${i}` }),
    );
    // Stragglers: requests that reach the clock after the shared read gave up, while the probe is in flight.
    await pause(600);
    const late = Array.from({ length: 20 }, (_, i) =>
      client.send({ method: "GET", path: "/api/v1/portfolios", query: `late=${i}` }),
    );
    const results = await Promise.all([...sends, ...late]);
    expect(store.reads).toBe(1);
    expect(r.probes).toBe(1);
    expect(r.refusals()).toBe(0);
    expect(results.map((x) => x.attempts)).toEqual(results.map(() => 1));
    expect(results.every((x) => x.response.status === 200 && x.uncertaintyMs !== null)).toBe(true);
    // And a request after the burst finds the clock warm: no probe, no wait.
    const after = await client.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(after.attempts).toBe(1);
    expect(r.probes).toBe(1);
  });

  it("a probe that failed is not followed by another from the requests still cold; they fall back to one re-sign", async () => {
    // The probe fails; the signed requests then wait at the venue until released, so that nothing teaches the clock
    // while a second wave arrives. That second wave used to send a probe of its own.
    const held = deferred();
    const r = rig(async () => {
      throw new TypeError("network connection lost");
    });
    const fetch = r.fetch;
    const client = new SignedClient(config, new VenueClock(), new Keys(), {
      fetch: async (request) => {
        if (!isProbe(request)) await held.promise;
        return fetch(request);
      },
      now: r.venue.now,
      sleep: async (ms) => r.venue.advance(ms),
      random: () => 0.5,
      syncMode: "cold",
      store: lateStore(0),
    });
    const first = Array.from({ length: 10 }, (_, i) =>
      client.send({ method: "GET", path: "/api/v1/portfolios", query: `a=${i}` }),
    );
    await pause(50);
    expect(r.probes).toBe(1);
    const second = Array.from({ length: 10 }, (_, i) =>
      client.send({ method: "GET", path: "/api/v1/portfolios", query: `b=${i}` }),
    );
    await pause(50);
    held.resolve();
    const results = await Promise.all([...first, ...second]);
    expect(r.probes).toBe(1);
    // The documented fallback: refused once, re-signed with what the refusal taught, then it lands.
    expect(results.every((x) => x.response.status === 200 && x.attempts <= 2)).toBe(true);
  });

  it("a shared estimate that arrives after the cap, while the probe is in flight, releases the waiting requests", async () => {
    const probe = deferred<Response>();
    const r = rig(() => probe.promise);
    const t = r.venue.now();
    const shared = { offsetMs: SKEW_MS, lowMs: SKEW_MS - 200, highMs: SKEW_MS + 200, samples: 5, updatedAt: t };
    const client = coldClient(r, lateStore(400, shared));
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => client.send({ method: "GET", path: "/api/v1/portfolios", query: `n=${i}` })),
    );
    probe.resolve(new Response("Unauthorized", { status: 401 }));
    expect(r.probes).toBe(1);
    expect(r.refusals()).toBe(0);
    expect(results.every((x) => x.attempts === 1 && x.uncertaintyMs !== null)).toBe(true);
  });
});
