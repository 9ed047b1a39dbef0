// The Worker's failure-retry decision (src/adapters/venue-retry.ts), the policy its signed calls give the library's
// loop: which failures are sent again, after how long, and how the timestamp re-sign leaves the attempt count alone.
import { describe, expect, it } from "vitest";
import { UpstreamError } from "../../src/adapters/venue-errors.ts";
import { failureWait, type RetryLimits, untilNextVenueSecond } from "../../src/adapters/venue-retry.ts";
import type { ClockEstimate } from "../../src/lib/estimator.ts";
import type { Attempt } from "../../src/lib/signed-call.ts";

const limits: RetryLimits = { maxAttempts: 3, random: () => 0.5, estimator: { estimate: () => undefined } };

function attempt(number: number, resigned = false): Attempt<unknown> {
  return { number, timestamp: 1_800_000_000, estimate: undefined, resigned, signed: undefined };
}

function answered(status: number, headers: Record<string, string> = {}) {
  return { response: new Response(null, { status, headers }), tRecv: 1_800_000_000_000 };
}

describe("failureWait", () => {
  it("retries an unreachable venue after the full-jitter backoff, never a timeout", () => {
    expect(failureWait({ error: new UpstreamError("unreachable", 1) }, attempt(1), limits)).toBe(50);
    expect(failureWait({ error: new UpstreamError("unreachable", 2) }, attempt(2), limits)).toBe(100);
    expect(failureWait({ error: new UpstreamError("timeout", 1) }, attempt(1), limits)).toBeUndefined();
    expect(failureWait({ error: new Error("other") }, attempt(1), limits)).toBeUndefined();
  });

  it("retries a 5xx after the backoff or its Retry-After, whichever is longer, and no other answer", () => {
    expect(failureWait(answered(503), attempt(2), limits)).toBe(100);
    expect(failureWait(answered(500, { "retry-after": "1" }), attempt(1), limits)).toBe(1_000);
    expect(failureWait(answered(400), attempt(1), limits)).toBeUndefined();
    expect(failureWait(answered(200), attempt(1), limits)).toBeUndefined();
  });

  it("waits after a 429 without Retry-After for the venue's next second (a full one without an estimate)", () => {
    expect(failureWait(answered(429), attempt(1), limits)).toBe(1_000);
    // Venue now = local + 250 ± 10 ms: at a whole local second the venue's next one begins 740 to 760 ms later,
    // so the wait is the later, 760 ms.
    const estimate: ClockEstimate = { offsetMs: 250, lowMs: 240, highMs: 260, samples: 3, updatedAt: 0 };
    const near = { ...limits, estimator: { estimate: () => estimate } };
    expect(failureWait(answered(429), attempt(1), near)).toBe(760);
    expect(untilNextVenueSecond(1_800_000_000_000, estimate)).toBe(760);
  });

  it("stops at maxAttempts sends, the timestamp re-sign not counted", () => {
    expect(failureWait(answered(503), attempt(3), limits)).toBeUndefined();
    expect(failureWait(answered(503), attempt(3, true), limits)).toBe(200);
    expect(failureWait(answered(503), attempt(4, true), limits)).toBeUndefined();
  });
});
