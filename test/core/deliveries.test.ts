// The pure rules of durable delivery (src/core/deliveries.ts), value by value: what a venue's answer means for a
// delivery, order lookups, staleness, superseded copies, the one-shot guard, re-drives and stuck re-drives. The
// Worker tests (deliveries, no-loss, redrive) drive the same rules through the queue consumer, D1 and the simulator.
import { describe, expect, it } from "vitest";
import {
  bodyClientOrderId,
  type DeliveryMessage,
  giveUp,
  isResend,
  lookupPresence,
  MAX_DELIVERY_ATTEMPTS,
  needsLookup,
  oneShotRefusal,
  outcomeOf,
  presenceOutcome,
  redriveMessage,
  STUCK_REDRIVE_MS,
  type Standing,
  sendingReason,
  staleReason,
  stateAfter,
  stuckBefore,
  stuckReason,
  superseded,
} from "../../src/core/deliveries.ts";
import { cde } from "../../src/venues/cde.ts";
import { intx } from "../../src/venues/intx.ts";
import type { OrderLookup } from "../../src/venues/profile.ts";

const ORDER = '{"client_order_id":"c-1","side":"BUY"}';

/** An INTX order with a client_order_id, safe to retry: override what a test is about. */
function message(over: Partial<DeliveryMessage> = {}): DeliveryMessage {
  return {
    id: "d-1",
    route: "tv",
    venue: "intx",
    method: "POST",
    path: "/api/v1/orders",
    body: ORDER,
    receivedAt: 1_000_000,
    maxAgeSeconds: 60,
    retrySafe: true,
    ...over,
  };
}

const oneShot = message({ body: '{"side":"BUY"}', retrySafe: false });
const row = (over: Partial<Standing> = {}): Standing => ({ state: "queued", reason: null, redrivenAt: null, ...over });

describe("what a venue's answer means for a delivery", () => {
  const answered = (status: number, text = "", m = message()) => outcomeOf(m, { kind: "answered", status, text }, intx);

  it("a 2xx is delivered, at both ends of the range; 199 and 300 are not", () => {
    expect(answered(200, "{}")).toEqual({ kind: "delivered", status: 200, response: "{}" });
    expect(answered(299, "ok")).toEqual({ kind: "delivered", status: 299, response: "ok" });
    expect(answered(199, "x").kind).toBe("dead");
    expect(answered(300, "x")).toEqual({ kind: "dead", reason: "venue refused: 300 x", status: 300, response: "x" });
  });

  it("an order answered 2xx and REJECTED is dead with the venue's reason", () => {
    const text = '{"event_type":"REJECTED","reject_reason":"POST_ONLY_WOULD_CROSS"}';
    expect(answered(200, text)).toEqual({
      kind: "dead",
      reason: "venue rejected the order: POST_ONLY_WOULD_CROSS",
      status: 200,
      response: text,
    });
  });

  it("a duplicate client_order_id (4xx) means an earlier attempt placed it: delivered", () => {
    const text = '{"message":"DUPLICATE_CLIENT_ORDER_ID"}';
    expect(answered(400, text)).toEqual({ kind: "delivered", status: 400, response: text });
  });

  it("429 is retried; a 5xx is retried only when a second copy is safe", () => {
    expect(answered(429)).toEqual({ kind: "retry", reason: "venue rate limit (429)", status: 429 });
    expect(answered(500)).toEqual({ kind: "retry", reason: "venue error 500", status: 500 });
    expect(answered(503, "", oneShot)).toEqual({
      kind: "dead",
      reason: "venue error 503; the venue may have processed it, so it is not re-sent",
      status: 503,
    });
  });

  it("any other status is dead, with the venue's message when it has one", () => {
    expect(answered(400, '{"message":"bad size"}')).toEqual({
      kind: "dead",
      reason: "venue refused: 400 bad size",
      status: 400,
      response: '{"message":"bad size"}',
    });
    expect(answered(404, "{}")).toEqual({ kind: "dead", reason: "venue refused: 404", status: 404, response: "{}" });
    expect(answered(499, "{}").kind).toBe("dead");
  });

  it("what skewguard itself decided: not configured, its rate gate, its rules", () => {
    expect(outcomeOf(message(), { kind: "not_configured" })).toEqual({
      kind: "dead",
      reason: "intx is not configured",
    });
    expect(outcomeOf(message(), { kind: "rate_limited", retryAfterSeconds: 7 })).toEqual({
      kind: "retry",
      reason: "outbound rate limit",
      delaySeconds: 7,
    });
    expect(outcomeOf(message(), { kind: "refused", rule: "halt", message: "halted by ops" })).toEqual({
      kind: "dead",
      reason: "refused (halt): halted by ops",
    });
  });

  it("a redirect is dead; any other failure is retried only when a second copy is safe", () => {
    const failed = (failure: string, m = message()) => outcomeOf(m, { kind: "failed", failure, reason: "why" });
    expect(failed("redirect")).toEqual({ kind: "dead", reason: "why" });
    expect(failed("timeout")).toEqual({ kind: "retry", reason: "why" });
    expect(failed("internal", oneShot)).toEqual({
      kind: "dead",
      reason: "why; the venue may have processed it, so it is not re-sent",
    });
  });

  it("a retry stays queued; delivered and dead are states of their own", () => {
    expect(stateAfter({ kind: "retry", reason: "x" })).toBe("queued");
    expect(stateAfter({ kind: "dead", reason: "x" })).toBe("dead");
    expect(stateAfter({ kind: "delivered", status: 200, response: "" })).toBe("delivered");
  });
});

describe("attempts, age and re-sends", () => {
  it(`a retry at attempt ${MAX_DELIVERY_ATTEMPTS} is dead; before it, and any other outcome, unchanged`, () => {
    const retry = { kind: "retry", reason: "venue error 500", status: 500 } as const;
    expect(giveUp(retry, MAX_DELIVERY_ATTEMPTS - 1)).toBe(retry);
    expect(giveUp(retry, MAX_DELIVERY_ATTEMPTS)).toEqual({
      kind: "dead",
      reason: "gave up after 8 attempts: venue error 500",
      status: 500,
    });
    const dead = { kind: "dead", reason: "x" } as const;
    expect(giveUp(dead, 20)).toBe(dead);
  });

  it("stale past max_age_seconds, counted from the re-drive when there is one", () => {
    const m = message();
    expect(staleReason(m, m.receivedAt + 60_000)).toBeUndefined();
    expect(staleReason(m, m.receivedAt + 60_001)).toBe("stale: 60 s old, over max_age_seconds 60");
    expect(staleReason(m, m.receivedAt + 90_600)).toBe("stale: 91 s old, over max_age_seconds 60");
    const redriven = message({ redrivenAt: m.receivedAt + 3_600_000 });
    expect(staleReason(redriven, m.receivedAt + 3_630_000)).toBeUndefined();
  });

  it("a re-send is any attempt after the first, or any attempt of a re-driven copy", () => {
    expect(isResend(message(), 1)).toBe(false);
    expect(isResend(message(), 2)).toBe(true);
    expect(isResend(message({ redrivenAt: 5 }), 1)).toBe(true);
  });

  it("only an order with a client_order_id that the venue would not absorb twice is looked up first", () => {
    expect(needsLookup(intx, message())).toBe(true);
    expect(needsLookup(intx, oneShot)).toBe(false);
    const kill = message({ venue: "cde", method: "POST", path: "/rest/kill-switch", body: ORDER });
    expect(needsLookup(cde, kill)).toBe(false);
    expect(bodyClientOrderId('{"client_order_id":"abc"}')).toBe("abc");
    expect(bodyClientOrderId('{"client_order_id":7}')).toBeUndefined();
    expect(bodyClientOrderId(undefined)).toBeUndefined();
  });
});

describe("looking an order up before a re-send", () => {
  const lookup: OrderLookup = {
    clientOrderId: "c-1",
    reads: [],
    found: (text) => text.includes("c-1"),
  };
  const answered = (status: number, text: string, truncated = false) =>
    lookupPresence(lookup, { kind: "answered", status, text, truncated });

  it("found in a 2xx answer, kept to 4,096 characters; absent otherwise", () => {
    expect(answered(200, '{"results":["c-1"]}')).toEqual({ kind: "found", response: '{"results":["c-1"]}' });
    const long = `c-1${"x".repeat(5_000)}`;
    expect(answered(299, long)).toEqual({ kind: "found", response: long.slice(0, 4_096) });
    expect(answered(200, '{"results":[]}')).toEqual({ kind: "absent" });
  });

  it("an answer that cannot say is unknown: not 2xx, cut short, not configured, or failed", () => {
    expect(answered(404, "{}")).toEqual({ kind: "unknown", reason: "looking up client_order_id c-1: answered 404" });
    expect(answered(300, "{}").kind).toBe("unknown");
    expect(answered(199, "c-1").kind).toBe("unknown");
    expect(answered(200, "c-1", true)).toEqual({
      kind: "unknown",
      reason: "looking up client_order_id c-1: answered 200",
    });
    expect(lookupPresence(lookup, { kind: "not_configured" })).toEqual({
      kind: "unknown",
      reason: "looking up client_order_id c-1: not configured",
    });
    expect(lookupPresence(lookup, { kind: "failed", failure: "timeout", reason: "venue timeout" })).toEqual({
      kind: "unknown",
      reason: "looking up client_order_id c-1: venue timeout",
    });
  });

  it("skewguard's own rate gate retries in 1 s; its rules end it", () => {
    expect(lookupPresence(lookup, { kind: "rate_limited", retryAfterSeconds: 30 })).toEqual({
      kind: "decided",
      outcome: { kind: "retry", reason: "outbound rate limit", delaySeconds: 1 },
    });
    expect(lookupPresence(lookup, { kind: "refused", rule: "read_only", message: "no" })).toEqual({
      kind: "decided",
      outcome: { kind: "dead", reason: "refused (read_only): no" },
    });
  });

  it("found is delivered, unknown is dead (never re-sent), absent sends", () => {
    expect(presenceOutcome({ kind: "found", response: "r" })).toEqual({
      kind: "delivered",
      status: 200,
      response: "r",
    });
    expect(presenceOutcome({ kind: "unknown", reason: "why" })).toEqual({
      kind: "dead",
      reason: "outcome unknown: why; not re-sent, so it cannot act twice",
    });
    const outcome = { kind: "retry", reason: "r" } as const;
    expect(presenceOutcome({ kind: "decided", outcome })).toBe(outcome);
    expect(presenceOutcome({ kind: "absent" })).toBeUndefined();
  });
});

describe("copies the queue brings back", () => {
  it("a copy older than the last re-drive, or of a delivery that ended, is superseded", () => {
    expect(superseded(message(), null)).toBeUndefined();
    expect(superseded(message(), row())).toBeUndefined();
    expect(superseded(message(), row({ redrivenAt: 0 }))).toBe("re-driven since");
    expect(superseded(message({ redrivenAt: 10 }), row({ redrivenAt: 11 }))).toBe("re-driven since");
    expect(superseded(message({ redrivenAt: 11 }), row({ redrivenAt: 11 }))).toBeUndefined();
    expect(superseded(message(), row({ state: "delivered" }))).toBe("already delivered");
    expect(superseded(message({ redrivenAt: 11 }), row({ state: "dead", redrivenAt: 11 }))).toBe("already dead");
  });

  it("a one-shot request whose last attempt was on its way is dead, not sent again", () => {
    expect(sendingReason(3)).toBe("sending: attempt 3");
    expect(oneShotRefusal(oneShot, row({ reason: sendingReason(3) }))).toEqual({
      kind: "dead",
      reason: "outcome unknown: attempt 3 was sent and its outcome never recorded; not re-sent, so it cannot act twice",
    });
    expect(oneShotRefusal(message(), row({ reason: sendingReason(3) }))).toBeUndefined();
    expect(oneShotRefusal(oneShot, row({ reason: "venue error 500" }))).toBeUndefined();
    expect(oneShotRefusal(oneShot, null)).toBeUndefined();
  });
});

describe("re-drives", () => {
  it("refused without a dead letter (unknown or not dead), and for a one-shot without force", () => {
    expect(redriveMessage(null, false, true, 5)).toBe("not_found");
    expect(redriveMessage(null, true, true, 5)).toBe("not_dead");
    expect(redriveMessage(oneShot, true, false, 5)).toBe("unsafe");
  });

  it("sends the dead letter's message with its max age counted from now", () => {
    expect(redriveMessage(oneShot, true, true, 5)).toEqual({ ...oneShot, redrivenAt: 5 });
    expect(redriveMessage(message({ redrivenAt: 1 }), true, false, 9)).toEqual(message({ redrivenAt: 9 }));
  });

  it("stuck after 15 minutes, or after its max age plus a minute when that is longer", () => {
    const now = 100_000_000;
    expect(STUCK_REDRIVE_MS).toBe(900_000);
    expect(stuckBefore(now, 60)).toBe(now - 900_000);
    expect(stuckBefore(now, 840)).toBe(now - 900_000);
    expect(stuckBefore(now, 841)).toBe(now - 901_000);
    expect(stuckBefore(now, 3_600)).toBe(now - 3_660_000);
  });

  it("a stuck re-drive says for how many whole minutes nothing happened", () => {
    expect(stuckReason(1_000_000, 1_000_000 - 959_999)).toEqual({
      minutes: 15,
      reason: "re-drive did not reach the queue: no attempt recorded in 15 min",
    });
    expect(stuckReason(1_000_000, 1_000_000 - 960_000).minutes).toBe(16);
  });
});
