// Pacing for one API key: grants sit on an even grid, and any 1 s window at the venue holds at most `limit`
// requests even when each is sent up to `lagMs` after its grant; reads leave every fourth point to writes.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  intervalMs,
  type Pacing,
  type Priority,
  RollingCount,
  SendSchedule,
  WRITE_EVERY,
} from "../../src/core/pacing.ts";
import { peak } from "../support/peak.ts";

describe("SendSchedule", () => {
  it("spaces writes (1000 + lag) / (limit − burst + 1) apart, lets an idle key burst, and refuses past the cap", () => {
    const pacing: Pacing = { limit: 4, burst: 2, lagMs: 200 };
    expect(intervalMs(pacing)).toBe(400); // 1200 ms over 3 points
    const s = new SendSchedule();
    const t0 = 1_000_000; // a grid point (2500 · 400)
    const waits = Array.from({ length: 4 }, () => s.reserve(pacing, "write", 5_000, t0));
    // The point 400 ms back (burst 2) and t0 go at once, then t0 + 400, t0 + 800.
    expect(waits).toEqual([0, 0, 400, 800]);
    expect(s.reserve(pacing, "write", 1_000, t0)).toBeNull(); // t0 + 1200 is over the 1 s cap: nothing taken
    expect(s.reserve(pacing, "write", 1_200, t0)).toBe(1_200);
  });

  it("a read skips the points kept for writes; a write behind a flood of reads waits at most a few points", () => {
    const pacing: Pacing = { limit: 40, burst: 1, lagMs: 200 };
    const interval = intervalMs(pacing); // 30 ms
    const s = new SendSchedule();
    const t0 = 3_000_000; // point 100 000, kept for writes
    const reads: number[] = [];
    for (let i = 0; i < 200; i++) {
      const wait = s.reserve(pacing, "read", 500, t0);
      if (wait !== null) reads.push(wait);
    }
    // Within 500 ms there are 17 points (t0 … t0 + 480); 5 are kept for writes, so 12 reads get one.
    expect(reads).toHaveLength(12);
    expect(reads.every((w) => Math.round(w / interval) % WRITE_EVERY !== 0)).toBe(true);
    const write = s.reserve(pacing, "write", 1_000, t0 + 1);
    expect(write).toBe(interval * WRITE_EVERY - 1); // the next kept point, t0 + 120
  });

  it("property: whatever the demand and the send lag up to lagMs, no 1 s window at the venue holds more than limit", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 60 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 600 }),
        fc.array(
          fc.record({
            gap: fc.integer({ min: 0, max: 80 }),
            lag: fc.double({ min: 0, max: 1, noNaN: true }),
            write: fc.boolean(),
          }),
          { minLength: 1, maxLength: 400 },
        ),
        (limit, burstWanted, lagMs, requests) => {
          const pacing: Pacing = { limit, burst: Math.min(burstWanted, limit), lagMs };
          const s = new SendSchedule();
          let now = 1_700_000_000_123;
          const arrivals: number[] = [];
          for (const r of requests) {
            now += r.gap;
            const priority: Priority = r.write ? "write" : "read";
            const wait = s.reserve(pacing, priority, 1_000, now);
            if (wait === null) continue;
            // Sent between its point and lagMs later; the network adds the same 20 ms to every request.
            arrivals.push(now + wait + r.lag * lagMs + 20);
          }
          expect(peak(arrivals)).toBeLessThanOrEqual(limit);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("RollingCount (max_orders_per_minute)", () => {
  it("counts what falls after now − period, including granted sends still ahead, and says when one more fits", () => {
    const c = new RollingCount(60_000);
    const t0 = 1_700_000_000_000;
    c.add(t0);
    c.add(t0 + 30_000);
    c.add(t0 + 10_000); // granted out of order: kept sorted
    expect(c.count(t0 + 30_000)).toBe(3);
    // With a limit of 3, the next fits once the oldest (t0) is 60 s old: at t0 + 60 s, 30 s from t0 + 30 s.
    expect(c.retryAfterSeconds(3, t0 + 30_000)).toBe(30);
    expect(c.retryAfterSeconds(2, t0 + 30_000)).toBe(40); // the second oldest, t0 + 10 s, must go
    expect(c.count(t0 + 59_999)).toBe(3);
    expect(c.count(t0 + 60_000)).toBe(2); // exactly 60 s old is out of "any rolling 60 s"
    expect(c.count(t0 + 90_000)).toBe(0);
    c.add(t0 + 95_000); // a slot 5 s ahead counts now
    expect(c.count(t0 + 90_000)).toBe(1);
  });

  it("a limit of N never lets N + 1 sends into any 60 s window, whatever the arrival times", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 80 }),
        (limit, gaps) => {
          const c = new RollingCount(60_000);
          let now = 1_700_000_000_000;
          const sent: number[] = [];
          for (const gap of gaps) {
            now += gap;
            if (c.count(now) >= limit) continue;
            c.add(now);
            sent.push(now);
          }
          for (const [i, t] of sent.entries()) {
            expect(sent.filter((u, j) => j >= i && u < t + 60_000).length).toBeLessThanOrEqual(limit);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
