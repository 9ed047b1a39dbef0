// Clock history: the ClockState Durable Object records at most one D1 row a minute of the estimate it holds, when an
// offer names its venue; `clockHistory` reads the rows back oldest first, and `pruneHistory` drops the old ones.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { venueClient } from "../../src/adapters/client.ts";
import { clockHistory, recordClockMinute } from "../../src/adapters/clock-history.ts";
import type { ClockState } from "../../src/adapters/clock-store.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import { simControl, simEnv } from "../support/sim.ts";

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
/** The offers' local clock, passed to `offer`: 12:34:56.789 UTC on 2027-01-15, in the minute that starts at 12:34. */
const NOW = Date.UTC(2027, 0, 15, 12, 34, 56, 789);
const NOW_MINUTE = Date.UTC(2027, 0, 15, 12, 34);
let n = 0;
const stub = () => env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName(`history-test-${n++}-${Date.now()}`));

interface Row {
  venue: string;
  minute: number;
  offset_ms: number;
  low_ms: number;
  high_ms: number;
  samples: number;
}

async function rows(venue: string): Promise<Row[]> {
  const { results } = await env.DB.prepare("SELECT * FROM clock_history WHERE venue = ?1 ORDER BY minute")
    .bind(venue)
    .all<Row>();
  return results;
}

beforeEach(async () => {
  await env.DB.prepare("DELETE FROM clock_history").run();
});

describe("clock history", () => {
  it("an offer naming its venue writes the held estimate once for the minute; a second offer writes no row", async () => {
    const store = stub();
    const now = NOW;
    const tight = { offsetMs: 1000, lowMs: 990, highMs: 1010, samples: 5, updatedAt: now - 2_000 };
    const tighter = { offsetMs: 1002, lowMs: 998, highMs: 1006, samples: 6, updatedAt: now - 1_000 };
    expect(await store.offer(tight, 100, "intx", now)).toBe(true);
    const written = await rows("intx");
    // A fresh object takes the first offer as it is: the row is `tight`, in the minute of `now`.
    expect(written).toEqual([
      { venue: "intx", minute: NOW_MINUTE, offset_ms: 1000, low_ms: 990, high_ms: 1010, samples: 5 },
    ]);

    // Accepted or not, later offers in the same minute (its last millisecond included) leave the row as it was.
    expect(await store.offer(tighter, 100, "intx", NOW_MINUTE + MINUTE_MS - 1)).toBe(true);
    expect(await store.offer({ ...tight, lowMs: 500, highMs: 1500 }, 100, "intx", now)).toBe(false);
    expect(await rows("intx")).toEqual(written);
    expect((await store.read())?.lowMs).toBe(998);
    // The next minute gets its own row, of the estimate then held (`tighter`).
    expect(await store.offer({ ...tight, lowMs: 500, highMs: 1500 }, 100, "intx", NOW_MINUTE + MINUTE_MS)).toBe(false);
    expect((await rows("intx")).map((r) => [r.minute, r.low_ms, r.high_ms, r.samples])).toEqual([
      [NOW_MINUTE, 990, 1010, 5],
      [NOW_MINUTE + MINUTE_MS, 998, 1006, 6],
    ]);
  });

  it("a refused offer records the estimate the object already holds", async () => {
    const store = stub();
    const now = NOW;
    const tight = { offsetMs: 1000, lowMs: 990, highMs: 1010, samples: 5, updatedAt: now - 2_000 };
    expect(await store.offer(tight, 100, undefined, now)).toBe(true); // no venue: nothing recorded
    expect(await rows("intx")).toEqual([]);
    expect(await store.offer({ ...tight, lowMs: 500, highMs: 1500, updatedAt: now }, 100, "intx", now)).toBe(false);
    expect(await rows("intx")).toMatchObject([{ minute: NOW_MINUTE, low_ms: 990, high_ms: 1010, samples: 5 }]);
  });

  it("a failing D1 write neither fails the offer nor stops a later offer in the minute from writing", async () => {
    const store = stub();
    const now = NOW;
    const estimate = { offsetMs: 40, lowMs: 30, highMs: 50, samples: 3, updatedAt: now - 1_000 };
    const broken = {
      prepare() {
        throw new Error("D1 is down");
      },
    };
    await runInDurableObject(store, async (instance: ClockState) => {
      const object = instance as unknown as { env: Env };
      const real = object.env;
      object.env = { ...real, DB: broken as unknown as D1Database };
      try {
        expect(await instance.offer(estimate, 100, "intx", now)).toBe(true);
      } finally {
        object.env = real;
      }
      expect(await instance.read()).toEqual(estimate);
    });
    expect(await rows("intx")).toEqual([]);
    expect(await store.offer(estimate, 100, "intx", now + 1_000)).toBe(false);
    expect(await rows("intx")).toMatchObject([{ minute: NOW_MINUTE, offset_ms: 40 }]);
  });

  it("clockHistory returns one venue's rows from `since` on, oldest first", async () => {
    const base = NOW_MINUTE - 10 * MINUTE_MS;
    const at = (i: number) => ({ offsetMs: 100 + i, lowMs: 90 + i, highMs: 110 + i, samples: i, updatedAt: 0 });
    for (const i of [3, 0, 5, 1, 4, 2]) await recordClockMinute(env.DB, "intx", base + i * MINUTE_MS, at(i));
    await recordClockMinute(env.DB, "cde", base + 2 * MINUTE_MS, at(9));
    // The first write of a minute stands.
    await recordClockMinute(env.DB, "intx", base + 2 * MINUTE_MS, at(7));

    expect(await clockHistory(env.DB, "intx", base + MINUTE_MS)).toEqual(
      [1, 2, 3, 4, 5].map((i) => ({ minute: base + i * MINUTE_MS, offsetMs: 100 + i, lowMs: 90 + i, highMs: 110 + i })),
    );
    expect(await clockHistory(env.DB, "cde", 0)).toEqual([
      { minute: base + 2 * MINUTE_MS, offsetMs: 109, lowMs: 99, highMs: 119 },
    ]);
    expect(await clockHistory(env.DB, "intx", base + 6 * MINUTE_MS)).toEqual([]);
  });

  it("pruneHistory removes rows older than the retention", async () => {
    const estimate = { offsetMs: 1, lowMs: 0, highMs: 2, samples: 1, updatedAt: 0 };
    const old = NOW_MINUTE - 31 * DAY_MS;
    const kept = NOW_MINUTE - 29 * DAY_MS;
    const edge = NOW - 30 * DAY_MS; // exactly 30 days old: kept
    for (const minute of [old, edge - 1, edge, kept, NOW_MINUTE])
      await recordClockMinute(env.DB, "intx", minute, estimate);
    await pruneHistory(env.DB, NOW, 30);
    expect((await clockHistory(env.DB, "intx", 0)).map((p) => p.minute)).toEqual([edge, kept, NOW_MINUTE]);
  });

  it("a signed request through venueClient ends with the shared estimate recorded for its venue", async () => {
    await simControl({ reset: true, skew_ms: 12_000, up_ms: [1, 3], down_ms: [1, 3] });
    const host = `history-${Date.now()}.sim.test`;
    const before = Date.now();
    const ctx = createExecutionContext();
    const client = venueClient(simEnv(host), "intx", ctx);
    const result = await client?.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(result?.response.status).toBe(200);
    await result?.response.body?.cancel();
    await waitOnExecutionContext(ctx);
    const after = Date.now();

    const shared = await env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName(`intx https://${host}`)).read();
    expect(shared).not.toBeNull();
    const history = await clockHistory(env.DB, "intx", 0);
    expect(history).toEqual([
      { minute: expect.any(Number), offsetMs: shared?.offsetMs, lowMs: shared?.lowMs, highMs: shared?.highMs },
    ]);
    // The minute the offer arrived in, whichever side of a minute's end the request fell.
    const starts = new Set([before - (before % MINUTE_MS), after - (after % MINUTE_MS)]);
    expect(starts).toContain(history[0]?.minute);
    expect(history[0]?.lowMs).toBeLessThanOrEqual(12_000);
    expect(history[0]?.highMs).toBeGreaterThanOrEqual(12_000);
  });
});
