// The console's data shaping (src/console/data.ts), value by value: the notice an action leaves, the account rows
// and what a token may do to them, the clock view, and deliveries' safety. test/workers/console.test.ts drives the
// whole page through the Worker.
import { describe, expect, it } from "vitest";
import {
  accountRow,
  clockView,
  deliveryRows,
  notice,
  oneList,
  runRow,
  unavailableRow,
} from "../../src/console/data.ts";
import type { DeliveryRow } from "../../src/console/page.ts";
import type { AllowRule } from "../../src/core/tokens.ts";

const at = (query: string) => new URL(`https://relay.test/console?${query}`);
const rule = (method: string, path: RegExp): AllowRule => ({ method, path, source: `${method} ${path.source}` });

describe("the notice an action leaves", () => {
  it("names an account or a delivery id, and nothing else a link could carry", () => {
    expect(notice(at("done=halted&subject=intx/desk-1"))).toBe("Halted: intx/desk-1");
    expect(notice(at("done=halted&subject=intx/Desk"))).toBe("Halted");
    expect(notice(at("done=halted&subject=%3Cb%3E"))).toBe("Halted");
    expect(notice(at("done=forbidden"))).toBe("Not allowed for this token");
    expect(notice(at("done=nothing&subject=intx/desk-1"))).toBeUndefined();
    expect(notice(at(""))).toBeUndefined();
  });
  it("names each sink a test alert went to, and how it went; a subject of any other shape is left out", () => {
    expect(notice(at("done=alert_sent&subject=chat:sent,ops-pager:sent"))).toBe(
      "Test alert sent: chat sent, ops-pager sent",
    );
    expect(notice(at("done=alert_failed&subject=chat:sent,pager:failed"))).toBe(
      "Test alert: not every sink took it (POST /alerts/test answers with each sink's status and error): chat sent, pager failed",
    );
    expect(notice(at("done=alert_sent&subject=chat:maybe"))).toBe("Test alert sent");
    expect(notice(at("done=alert_sent&subject=Chat:sent"))).toBe("Test alert sent");
    expect(notice(at("done=no_sinks"))).toBe("No alert sink is configured (ALERTS)");
  });
});

describe("account rows", () => {
  const account = {
    profile: { name: "intx" },
    account: "desk-1",
    rules: { readOnly: true, guards: "max_order_size is not a decimal", configured: { max_order_size: "x" } },
  };
  const gate = { halt: null, haltAll: null, ordersLastMinute: 3, error: undefined };

  it("shows the rules, the gate's state, and whether this token may halt and resume it", () => {
    const allow = [rule("PUT", /^\/accounts\/intx\/desk-1\/halt$/)];
    expect(accountRow(account, gate, allow)).toEqual({
      venue: "intx",
      name: "desk-1",
      available: true,
      readOnly: true,
      guards: { max_order_size: "x" },
      guardsProblem: "max_order_size is not a decimal",
      halt: null,
      haltAll: null,
      ordersLastMinute: 3,
      canHalt: true,
      canResume: false,
    });
  });

  it("a gate that did not answer says so; parsed guards leave no problem", () => {
    const rules = { readOnly: false, guards: undefined, configured: undefined };
    const row = accountRow({ ...account, rules }, { ...gate, ordersLastMinute: null, error: "no answer" }, []);
    expect([row.gateError, "guardsProblem" in row, row.canHalt, row.canResume]).toEqual([
      "no answer",
      false,
      false,
      false,
    ]);
  });

  it("an account that cannot be used shows the binding at fault and no buttons", () => {
    const problem = { venue: "cde", account: "ops", binding: "CDE_OPS_API_SECRET", message: "not base64" } as const;
    expect(unavailableRow(problem)).toEqual({
      venue: "cde",
      name: "ops",
      available: false,
      problem: { binding: "CDE_OPS_API_SECRET", message: "not base64" },
      canHalt: false,
      canResume: false,
    });
  });
});

describe("clocks and deliveries", () => {
  it("the offset in whole milliseconds, the uncertainty rounded up; none without an estimate", () => {
    const estimate = { offsetMs: -12.5, lowMs: -40, highMs: 14.6, samples: 3, updatedAt: 0 };
    expect(clockView(estimate, "shared")).toEqual({ offsetMs: -12, uncertaintyMs: 28, source: "shared" });
    expect(clockView(undefined, "shared")).toBeNull();
    expect(clockView(estimate, undefined)).toBeNull();
  });

  it("a delivery is safe to send again, not, or not known", () => {
    const rows = deliveryRows([{ retry_safe: true }, { retry_safe: false }, { retry_safe: null }]);
    expect(rows.map((r) => r.retrySafe)).toEqual([true, false, undefined]);
  });
});

describe("deliveries in one list", () => {
  const row = (id: string, state: string): DeliveryRow => ({
    id,
    route: "r",
    venue: "intx",
    account: "default",
    method: "POST",
    path: "/api/v1/orders",
    state,
    updated_at: "2026-12-06T21:41:17.000Z",
    attempts: 1,
    status: null,
    reason: null,
  });
  it("lists the dead first, then the others, each once", () => {
    const list = oneList([row("a", "dead")], [row("b", "delivered"), row("a", "dead"), row("c", "queued")]);
    expect(list.map((d) => d.id)).toEqual(["a", "b", "c"]);
  });
});

describe("a job's run", () => {
  it("says how long it took and the size of the answer it kept, in UTF-8 bytes", () => {
    const run = {
      job: "j",
      account: "default",
      scheduled_at: "2026-12-06T21:41:00.000Z",
      started_at: "2026-12-06T21:41:00.100Z",
      ended_at: "2026-12-06T21:41:00.512Z",
      status: 200,
      attempts: 1,
      offset_ms: 3,
      uncertainty_ms: 1,
      body: '{"a":"é"}',
      body_truncated: false,
      error: null,
      forward: null,
    };
    expect(runRow(run)).toMatchObject({ durationMs: 412, bytes: 10, truncated: false, status: 200 });
    expect(runRow({ ...run, ended_at: null, body: null })).toMatchObject({ durationMs: null, bytes: null });
    // A JSON answer is kept as its value: its size is its JSON text's, "é" two bytes in UTF-8.
    expect(runRow({ ...run, body: { name: "é" } })).toMatchObject({ bytes: 13 });
  });
});
