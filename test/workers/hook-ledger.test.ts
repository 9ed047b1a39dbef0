// The webhook ledger's window, through the Durable Object itself: a key is deduplicated for exactly ttlMs from its
// claim, and a claim at the window's end is a new delivery of the next generation.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

const ledger = (name: string) => env.HOOK_LEDGER.get(env.HOOK_LEDGER.idFromName(name));

describe("HookLedger: the dedupe window", () => {
  it("pending until the last millisecond of the window; at claim + ttlMs the key is new again", async () => {
    const l = ledger(`window-${crypto.randomUUID()}`);
    const t0 = 1_900_000_000_000;
    expect(await l.claim("k", 1_000, t0)).toEqual({ state: "new", generation: 0 });
    expect(await l.claim("k", 1_000, t0 + 999)).toEqual({ state: "pending" });
    expect(await l.claim("k", 1_000, t0 + 1_000)).toEqual({ state: "new", generation: 1 });
  });

  it("a completed key answers its result inside the window, and is a new generation after it", async () => {
    const l = ledger(`done-${crypto.randomUUID()}`);
    const t0 = 1_900_000_000_000;
    const result = { status: 200, body: '{"order_id":"o-1"}' };
    expect(await l.claim("k", 60_000, t0)).toEqual({ state: "new", generation: 0 });
    await l.complete("k", result);
    expect(await l.claim("k", 60_000, t0 + 59_999)).toEqual({ state: "done", result });
    expect(await l.claim("k", 60_000, t0 + 60_000)).toEqual({ state: "new", generation: 1 });
  });

  it("a key given up (nothing sent) takes the same generation again: a retry is the same delivery", async () => {
    const l = ledger(`release-${crypto.randomUUID()}`);
    const t0 = 1_900_000_000_000;
    expect(await l.claim("k", 1_000, t0)).toEqual({ state: "new", generation: 0 });
    await l.release("k");
    expect(await l.claim("k", 1_000, t0 + 1)).toEqual({ state: "new", generation: 0 });
    expect(await l.claim("k", 1_000, t0 + 1_001)).toEqual({ state: "new", generation: 1 });
    await l.release("k");
    expect(await l.claim("k", 1_000, t0 + 1_002)).toEqual({ state: "new", generation: 1 });
  });

  it("the tombstone keeps the generation for keepMs after the window; the alarm sweeps it after that", async () => {
    const l = ledger(`tombstone-${crypto.randomUUID()}`);
    // Claimed long ago by the real clock the alarm reads: "old" kept 1 s past its window (long gone by now), "kept"
    // for a year past it.
    const long = 1_000_000_000_000;
    const year = 365 * 86_400_000;
    expect(await l.claim("old", 1_000, long, 1_000)).toEqual({ state: "new", generation: 0 });
    expect(await l.claim("kept", 1_000, long, year * 100)).toEqual({ state: "new", generation: 0 });
    await runInDurableObject(l, (ledgerObject) => ledgerObject.alarm());
    expect(await l.claim("old", 1_000, long + 10_000)).toEqual({ state: "new", generation: 0 });
    expect(await l.claim("kept", 1_000, long + 10_000)).toEqual({ state: "new", generation: 1 });
  });
});
