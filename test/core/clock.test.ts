// The offset estimator against a simulated venue whose true offset is known: honesty (the interval always
// contains the truth), monotone narrowing, convergence, clock steps, outliers, and strict Date parsing.
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fromVenueApi, parseImfFixdate, sampleFromResponse } from "../../src/lib/date.ts";
import { type ClockSample, OffsetEstimator, timestampFor } from "../../src/lib/estimator.ts";

/**
 * One exchange of a request: local send, server stamp (floored to the second), local receive. The server stamps
 * `at` (0..1) of the way through its `serverMs`; properties draw it, so a failure replays from fast-check's seed.
 */
function exchange(
  local: number,
  skewMs: number,
  upMs: number,
  serverMs: number,
  downMs: number,
  at = 0.5,
): ClockSample {
  const stampLocal = local + upMs;
  return {
    tSend: local,
    tRecv: stampLocal + serverMs + downMs,
    date: Math.floor((stampLocal + skewMs + at * serverMs) / 1000),
  };
}

const skew = fc.double({ min: -3_600_000, max: 3_600_000, noNaN: true });
const delays = fc.array(
  fc.record({
    up: fc.integer({ min: 0, max: 300 }),
    server: fc.integer({ min: 0, max: 50 }),
    down: fc.integer({ min: 0, max: 300 }),
    gap: fc.integer({ min: 1, max: 5_000 }),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
  { minLength: 1, maxLength: 40 },
);

describe("offset estimator", () => {
  it("the interval always contains the true offset, and never widens as honest samples arrive", () => {
    fc.assert(
      fc.property(skew, delays, fc.integer({ min: 0, max: 999 }), (skewMs, steps, phase) => {
        const est = new OffsetEstimator({ driftPpm: 0 });
        let local = 1_800_000_000_000 + phase;
        let width = Number.POSITIVE_INFINITY;
        for (const s of steps) {
          est.add(exchange(local, skewMs, s.up, s.server, s.down, s.at));
          local += s.up + s.server + s.down + s.gap;
          const e = est.estimate(local);
          if (!e) throw new Error("no estimate");
          expect(e.lowMs).toBeLessThanOrEqual(skewMs);
          expect(e.highMs).toBeGreaterThanOrEqual(skewMs);
          expect(e.highMs - e.lowMs).toBeLessThanOrEqual(width + 1e-6);
          width = e.highMs - e.lowMs;
        }
      }),
      { numRuns: 200 },
    );
  });

  it("stays honest with drift: a 50 ppm clock inside a 100 ppm allowance, over hours", () => {
    const est = new OffsetEstimator({ driftPpm: 100 });
    let local = 1_800_000_000_000;
    for (let i = 0; i < 60; i++) {
      const trueOffset = 37_250 + (i * 120_000 * 50) / 1e6; // the venue gains 50 ppm
      est.add(exchange(local, trueOffset, 20, 1, 20));
      local += 120_000;
      const e = est.estimate(local);
      const now = 37_250 + ((i + 1) * 120_000 * 50) / 1e6;
      expect(e?.lowMs).toBeLessThanOrEqual(now);
      expect(e?.highMs).toBeGreaterThanOrEqual(now);
    }
  });

  it("converges: after 50 jittered samples (10–80 ms round trips) the interval is 10× narrower than one sample's", () => {
    const est = new OffsetEstimator();
    let local = 1_800_000_000_123;
    let seed = 42;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    est.add(exchange(local, 37_250, 20, 1, 20));
    const one = est.estimate(local + 40);
    for (let i = 0; i < 50; i++) {
      local += 300 + Math.floor(next() * 2_000);
      est.add(exchange(local, 37_250, 5 + next() * 35, 1, 5 + next() * 35));
    }
    const e = est.estimate(local + 100);
    const width = (e?.highMs ?? 0) - (e?.lowMs ?? 0);
    expect((one?.highMs ?? 0) - (one?.lowMs ?? 0)).toBeGreaterThanOrEqual(1_000);
    expect(width).toBeLessThan(100);
    expect(Math.abs((e?.offsetMs ?? 0) - 37_250)).toBeLessThanOrEqual(width / 2);
  });

  it("one bad Date neither empties nor moves the interval", () => {
    const est = new OffsetEstimator();
    let local = 1_800_000_000_000;
    for (let i = 0; i < 8; i++) {
      est.add(exchange(local, 5_000, 10, 1, 10));
      local += 737;
    }
    const before = est.estimate(local);
    est.add({ tSend: local, tRecv: local + 20, date: Math.floor((local + 5_000) / 1000) + 3600 }); // a stale proxy
    local += 900;
    const after = est.estimate(local);
    expect(after?.lowMs).toBeLessThanOrEqual(5_000);
    expect(after?.highMs).toBeGreaterThanOrEqual(5_000);
    expect(Math.abs((after?.offsetMs ?? 0) - (before?.offsetMs ?? 0))).toBeLessThan(2);
  });

  it("recovers from a clock step: two agreeing samples, or one refused timestamp", () => {
    const est = new OffsetEstimator();
    let local = 1_800_000_000_000;
    for (let i = 0; i < 10; i++) {
      est.add(exchange(local, 1_000, 10, 1, 10));
      local += 1_000;
    }
    est.add(exchange(local, -60_000, 10, 1, 10));
    local += 1_000;
    // One disagreeing sample is treated as an outlier: the interval still holds the true +1 s and nothing near −60 s.
    const held = est.estimate(local);
    expect(held?.lowMs).toBeLessThanOrEqual(1_000);
    expect(held?.highMs).toBeGreaterThanOrEqual(1_000);
    expect(held?.lowMs).toBeGreaterThan(-1_000);
    est.add(exchange(local, -60_000, 10, 1, 10));
    local += 1_000;
    const stepped = est.estimate(local);
    expect(stepped?.lowMs).toBeLessThanOrEqual(-60_000);
    expect(stepped?.highMs).toBeGreaterThanOrEqual(-60_000);

    const refused = new OffsetEstimator();
    for (let i = 0; i < 10; i++) refused.add(exchange(local + i * 1000, 1_000, 10, 1, 10));
    refused.add(exchange(local + 11_000, 30_000, 10, 1, 10), { rejected: true });
    const e = refused.estimate(local + 12_000);
    expect(e?.lowMs).toBeLessThanOrEqual(30_000);
    expect(e?.highMs).toBeGreaterThanOrEqual(30_000);
  });

  it("ignores absurd round trips, and signs with the nearest whole second", () => {
    const est = new OffsetEstimator({ maxRttMs: 10_000 });
    expect(est.add({ tSend: 2_000, tRecv: 1_000, date: 1 })).toBe(false);
    expect(est.add({ tSend: 0, tRecv: 20_000, date: 1 })).toBe(false);
    expect(est.estimate(30_000)).toBeUndefined();
    const e = { offsetMs: 37_250, lowMs: 37_000, highMs: 37_500, samples: 3, updatedAt: 0 };
    expect(timestampFor(1_800_000_000_000, e)).toBe(1_800_000_037);
    expect(timestampFor(1_800_000_000_300, e)).toBe(1_800_000_038);
    expect(Number.isInteger(timestampFor(1_800_000_000_123.7, e))).toBe(true);
  });
});

describe("Date header parsing", () => {
  it("reads IMF-fixdate exactly, and nothing else", () => {
    expect(parseImfFixdate("Sun, 06 Nov 1994 08:49:37 GMT")).toBe(784111777);
    expect(parseImfFixdate(new Date(1_800_000_000_000).toUTCString())).toBe(1_800_000_000);
    for (const bad of [
      "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
      "Sun Nov  6 08:49:37 1994", // asctime
      "Mon, 06 Nov 1994 08:49:37 GMT", // wrong weekday
      "Sun, 31 Feb 1994 08:49:37 GMT",
      "Sun, 06 Nov 1994 24:00:00 GMT",
      "Sun, 06 Nov 1994 08:49:60 GMT",
      "Sun, 06 Nov 1994 08:49:37 UTC",
      "1994-11-06T08:49:37Z",
      "",
    ]) {
      expect(parseImfFixdate(bad)).toBeUndefined();
    }
  });

  it("skips a cached response (Age) and one without a usable Date", () => {
    const date = "Sun, 06 Nov 1994 08:49:37 GMT";
    expect(sampleFromResponse(new Headers({ date }), 1, 2)).toEqual({ tSend: 1, tRecv: 2, date: 784111777 });
    expect(sampleFromResponse(new Headers({ date, age: "3" }), 1, 2)).toBeUndefined();
    expect(sampleFromResponse(new Headers({ date: "yesterday" }), 1, 2)).toBeUndefined();
    expect(sampleFromResponse(new Headers(), 1, 2)).toBeUndefined();
  });
});

describe("which answers teach the clock (docs/clock.md: the venue's own answers below 500, JSON or plain text)", () => {
  const answer = (status: number, type: string | null = "application/json") =>
    new Response(null, { status, headers: type === null ? {} : { "content-type": type } });
  it("each side of the 3xx and 5xx bounds", () => {
    const taught = [200, 299, 400, 401, 499].map((status) => [status, fromVenueApi(answer(status))]);
    expect(taught).toEqual([200, 299, 400, 401, 499].map((status) => [status, true]));
    const ignored = [300, 301, 399, 500, 502, 599].map((status) => [status, fromVenueApi(answer(status))]);
    expect(ignored).toEqual([300, 301, 399, 500, 502, 599].map((status) => [status, false]));
  });
  it("JSON, plain text or no type is the venue's; an HTML page is not", () => {
    expect(fromVenueApi(answer(401, "text/plain; charset=utf-8"))).toBe(true);
    expect(fromVenueApi(answer(401, null))).toBe(true);
    expect(fromVenueApi(answer(401, "application/problem+json"))).toBe(true);
    expect(fromVenueApi(answer(401, "text/html"))).toBe(false);
  });
});
