// The webhook ledger's window, through the Durable Object itself: a key is deduplicated for exactly ttlMs from its
// claim, and a claim at the window's end is a new delivery of the next generation.
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
});
