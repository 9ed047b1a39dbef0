// Clock history: the ClockState Durable Object records at most one D1 row a minute of the estimate it holds, when an
// offer names its venue; `clockHistory` reads the rows back oldest first, and `pruneHistory` drops the old ones.
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { venueClient } from "../../src/adapters/client.ts";
import { clockHistory, MINUTE_MS, minuteOf, recordClockMinute } from "../../src/adapters/clock-history.ts";
import type { ClockState } from "../../src/adapters/clock-store.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import { simControl, simEnv } from "../support/sim.ts";

const DAY_MS = 86_400_000;
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

/** Waits into the next minute when this one ends within 5 s, so a test's offers all fall in one minute. The tests
 * that call it may take 5 s more than their work: the file's tests run with a 15 s timeout. */
async function clearOfMinuteEnd(): Promise<void> {
  const left = MINUTE_MS - (Date.now() % MINUTE_MS);
  if (left < 5_000) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

beforeEach(async () => {
  await env.DB.prepare("DELETE FROM clock_history").run();
});

describe("clock history", { timeout: 15_000 }, () => {
  it("an offer naming its venue writes the held estimate once for the minute; a second offer writes no row", async () => {
    await clearOfMinuteEnd();
    const store = stub();
    const now = Date.now();
    const tight = { offsetMs: 1000, lowMs: 990, highMs: 1010, samples: 5, updatedAt: now - 2_000 };
    const tighter = { offsetMs: 1002, lowMs: 998, highMs: 1006, samples: 6, updatedAt: now - 1_000 };
    expect(await store.offer(tight, 100, "intx")).toBe(true);
    const held = await store.read();
    const written = await rows("intx");
    expect(written).toHaveLength(1);
    expect(written[0]).toEqual({
      venue: "intx",
      minute: minuteOf(now),
      offset_ms: held?.offsetMs,
      low_ms: held?.lowMs,
      high_ms: held?.highMs,
      samples: held?.samples,
    });

    // Accepted or not, later offers in the same minute leave the minute's row as it was.
    expect(await store.offer(tighter, 100, "intx")).toBe(true);
    expect(await store.offer({ ...tight, lowMs: 500, highMs: 1500 }, 100, "intx")).toBe(false);
    expect(await rows("intx")).toEqual(written);
    expect((await store.read())?.lowMs).toBe(998);
  });

  it("a refused offer records the estimate the object already holds", async () => {
    await clearOfMinuteEnd();
    const store = stub();
    const now = Date.now();
    const tight = { offsetMs: 1000, lowMs: 990, highMs: 1010, samples: 5, updatedAt: now - 2_000 };
    expect(await store.offer(tight, 100)).toBe(true); // no venue: nothing recorded
    expect(await rows("intx")).toEqual([]);
    expect(await store.offer({ ...tight, lowMs: 500, highMs: 1500, updatedAt: now }, 100, "intx")).toBe(false);
    expect(await rows("intx")).toMatchObject([{ minute: minuteOf(now), low_ms: 990, high_ms: 1010, samples: 5 }]);
  });

  it("a failing D1 write neither fails the offer nor stops a later offer in the minute from writing", async () => {
    await clearOfMinuteEnd();
    const store = stub();
    const now = Date.now();
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
        expect(await instance.offer(estimate, 100, "intx")).toBe(true);
      } finally {
        object.env = real;
      }
      expect(await instance.read()).toEqual(estimate);
    });
    expect(await rows("intx")).toEqual([]);
    expect(await store.offer(estimate, 100, "intx")).toBe(false);
    expect(await rows("intx")).toMatchObject([{ minute: minuteOf(now), offset_ms: 40 }]);
  });

  it("clockHistory returns one venue's rows from `since` on, oldest first", async () => {
    const base = minuteOf(Date.now()) - 10 * MINUTE_MS;
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
    const now = Date.now();
    const estimate = { offsetMs: 1, lowMs: 0, highMs: 2, samples: 1, updatedAt: 0 };
    const old = minuteOf(now - 31 * DAY_MS);
    const kept = minuteOf(now - 29 * DAY_MS);
    const recent = minuteOf(now);
    for (const minute of [old, kept, recent]) await recordClockMinute(env.DB, "intx", minute, estimate);
    await pruneHistory(env.DB, now, 30);
    expect((await clockHistory(env.DB, "intx", 0)).map((p) => p.minute)).toEqual([kept, recent]);
  });

  it("a signed request through venueClient ends with the shared estimate recorded for its venue", async () => {
    await clearOfMinuteEnd();
    await simControl({ reset: true, skew_ms: 12_000, up_ms: [1, 3], down_ms: [1, 3] });
    const host = `history-${Date.now()}.sim.test`;
    const ctx = createExecutionContext();
    const client = venueClient(simEnv(host), "intx", ctx);
    const result = await client?.send({ method: "GET", path: "/api/v1/portfolios" });
    expect(result?.response.status).toBe(200);
    await result?.response.body?.cancel();
    await waitOnExecutionContext(ctx);

    const shared = await env.CLOCK_STATE.get(env.CLOCK_STATE.idFromName(`intx https://${host}`)).read();
    expect(shared).not.toBeNull();
    const history = await clockHistory(env.DB, "intx", 0);
    expect(history).toEqual([
      { minute: minuteOf(Date.now()), offsetMs: shared?.offsetMs, lowMs: shared?.lowMs, highMs: shared?.highMs },
    ]);
    expect(history[0]?.lowMs).toBeLessThanOrEqual(12_000);
    expect(history[0]?.highMs).toBeGreaterThanOrEqual(12_000);
  });
});
