// The console's words for values (src/console/format.ts): times in UTC with their age, units, guards as one line,
// sink results as sentences.
import { describe, expect, it } from "vitest";
import { age, bytes, guardsSummary, millis, sendsText, when } from "../../src/console/format.ts";

describe("times", () => {
  const now = Date.UTC(2026, 11, 6, 21, 44, 17);
  it("shows a time on one line, in UTC, with its age", () => {
    expect(when("2026-12-06T21:41:17Z", now)).toBe("2026-12-06 21:41:17 UTC · 3 min ago");
    expect(when(now - 5_000, now)).toBe("2026-12-06 21:44:12 UTC · 5 s ago");
    expect(when("not a time", now)).toBe("not a time");
  });
  it("says an age in the largest whole unit", () => {
    expect([age(400), age(59_999), age(60_000), age(7_200_000), age(3 * 86_400_000), age(-90_000)]).toEqual([
      "just now",
      "59 s ago",
      "1 min ago",
      "2 h ago",
      "3 d ago",
      "in 1 min",
    ]);
  });
});

describe("units", () => {
  it("groups thousands and names the unit", () => {
    expect(bytes(37_240)).toBe("37,240 B");
    expect(millis(412.4)).toBe("412 ms");
    expect(millis(1_204)).toBe("1,204 ms");
  });
});

describe("guards as one line", () => {
  it("names each guard shortly, the catch-all limit in brackets", () => {
    const guards = {
      instruments: ["BTC-PERP", "ETH-PERP"],
      max_size: { "BTC-PERP": "0.5", "*": "5" },
      types: ["LIMIT", "MARKET"],
      max_orders_per_minute: 30,
    };
    expect(guardsSummary(guards)).toBe("BTC-PERP, ETH-PERP; max size BTC-PERP 0.5 (*: 5); LIMIT, MARKET; 30/min");
    expect(guardsSummary({ max_notional: { "*": "250000" }, tif: ["GTC"], close_only: true })).toBe(
      "max notional *: 250000; tif GTC; close only",
    );
    expect(guardsSummary({ later_guard: { a: 1 } })).toBe('later_guard: {"a":1}');
  });
});

describe("sink results as words", () => {
  it("says each sink's state, and a failure's attempts and error", () => {
    expect(
      sendsText([
        { sink: "local", state: "sent", attempts: 1, error: null },
        { sink: "slack", state: "failed", attempts: 5, error: "answered 500" },
        { sink: "pager", state: "queued", attempts: 0, error: null },
      ]),
    ).toEqual(["local: sent", "slack: failed after 5 attempts: answered 500", "pager: queued"]);
    expect(sendsText([])).toEqual(["no sink"]);
  });
});
