// The pure rules of job runs (src/core/job-runs.ts), value by value: what a venue call makes of a run, failure
// streaks, forward states, the run view and its paging. test/workers/jobs.test.ts runs them through the cron handler.
import { describe, expect, it } from "vitest";
import {
  bodyValue,
  forwardState,
  MAX_FORWARD_ATTEMPTS,
  type RunResult,
  type RunRow,
  runRecord,
  runsPage,
  runView,
  streakAlert,
} from "../../src/core/job-runs.ts";

const answered = (status: number, text: string) =>
  runRecord("intx", { kind: "answered", status, text, truncated: false, attempts: 2, offsetMs: 5, uncertaintyMs: 40 });

describe("what a venue call makes of a run", () => {
  it("a 2xx keeps the answer with no error; 199 and 300 are errors", () => {
    expect(answered(200, "[]")).toEqual({
      status: 200,
      attempts: 2,
      offsetMs: 5,
      uncertaintyMs: 40,
      body: "[]",
      truncated: false,
      error: null,
    });
    expect(answered(299, "").error).toBeNull();
    expect(answered(199, "").error).toBe("venue answered 199: no message");
    expect(answered(300, '{"message":"moved"}').error).toBe("venue answered 300: moved");
  });

  it("an error keeps at most 500 characters of the venue's message", () => {
    expect(answered(400, "x".repeat(600)).error).toBe("venue answered 400: no message");
    const long = answered(400, JSON.stringify({ message: "y".repeat(600) })).error;
    expect(long).toBe(`venue answered 400: ${"y".repeat(480)}`);
  });

  it("a call not sent, or failed, keeps only its reason (and a failure's attempts)", () => {
    const empty = { status: null, attempts: 0, offsetMs: null, uncertaintyMs: null, body: null, truncated: false };
    expect(runRecord("cde", { kind: "not_configured" })).toEqual({ ...empty, error: "cde is not configured" });
    expect(runRecord("cde", { kind: "rate_limited" })).toEqual({ ...empty, error: "outbound rate limit reached" });
    expect(runRecord("cde", { kind: "refused", rule: "halt", message: "halted" })).toEqual({
      ...empty,
      error: "refused (halt): halted",
    });
    expect(runRecord("cde", { kind: "failed", attempts: 3, reason: "venue timeout" })).toEqual({
      ...empty,
      attempts: 3,
      error: "venue timeout",
    });
  });
});

describe("failure streaks", () => {
  const F: RunResult = { ok: false, status: 500 };
  const S: RunResult = { ok: true, status: 200 };

  it("failing when the newest run makes exactly alert_after failures in a row, once per streak", () => {
    expect(streakAlert([F, F, F], 3, "venue timeout")).toEqual({ kind: "failing", last: "venue timeout" });
    expect(streakAlert([F, F, F, S], 3, null)).toEqual({ kind: "failing", last: "status 500" });
    expect(streakAlert([F, F, F, F], 3, "x")).toBeUndefined();
    expect(streakAlert([F, F], 3, "x")).toBeUndefined();
    expect(streakAlert([F, F, S, F], 3, "x")).toBeUndefined();
    expect(streakAlert([F], 1, "x")).toEqual({ kind: "failing", last: "x" });
    expect(streakAlert([F, S], 1, "x")).toEqual({ kind: "failing", last: "x" });
    expect(streakAlert([F, F], 1, "x")).toBeUndefined();
  });

  it("recovered when a success ends a streak of at least alert_after failures", () => {
    expect(streakAlert([S, F, F, F], 3, null)).toEqual({ kind: "recovered" });
    expect(streakAlert([S, F, F], 3, null)).toBeUndefined();
    expect(streakAlert([S, F, S, F], 3, null)).toBeUndefined();
    expect(streakAlert([S, S, S, S], 3, null)).toBeUndefined();
    expect(streakAlert([], 3, null)).toBeUndefined();
  });
});

describe("forwards", () => {
  it(`delivered without an error; failed, then abandoned at attempt ${MAX_FORWARD_ATTEMPTS}`, () => {
    expect(forwardState(null, MAX_FORWARD_ATTEMPTS)).toBe("delivered");
    expect(forwardState("receiver answered 500", MAX_FORWARD_ATTEMPTS - 1)).toBe("failed");
    expect(forwardState("receiver answered 500", MAX_FORWARD_ATTEMPTS)).toBe("abandoned");
  });
});

describe("the run view", () => {
  const row = (scheduled: number, over: Partial<RunRow> = {}): RunRow => ({
    job: "balances",
    account: "default",
    scheduled_at: scheduled,
    started_at: scheduled + 10,
    ended_at: null,
    status: null,
    attempts: 0,
    offset_ms: null,
    uncertainty_ms: null,
    body: null,
    body_truncated: 0,
    error: null,
    forward_state: null,
    forward_attempts: 0,
    forward_error: null,
    ...over,
  });

  it("times in ISO 8601, the truncation as a boolean, the forward only when there is one", () => {
    expect(runView(row(0))).toEqual({
      job: "balances",
      account: "default",
      scheduled_at: "1970-01-01T00:00:00.000Z",
      started_at: "1970-01-01T00:00:00.010Z",
      ended_at: null,
      status: null,
      attempts: 0,
      offset_ms: null,
      uncertainty_ms: null,
      body: null,
      body_truncated: false,
      error: null,
      forward: null,
    });
    const ended = runView(row(0, { ended_at: 2_000, body_truncated: 1, forward_state: "failed", forward_attempts: 2 }));
    expect([ended.ended_at, ended.body_truncated]).toEqual(["1970-01-01T00:00:02.000Z", true]);
    expect(ended.forward).toEqual({ state: "failed", attempts: 2, error: null });
  });

  it("a JSON body is shown as JSON; text, an empty body and a cut body stay text", () => {
    const json = '{"results":[{"symbol":"BIPZ30","rate":"0.0001"}],"n":1,"ok":true}';
    expect(runView(row(0, { body: json })).body).toEqual({
      results: [{ symbol: "BIPZ30", rate: "0.0001" }],
      n: 1,
      ok: true,
    });
    expect(runView(row(0, { body: "[]" })).body).toEqual([]);
    expect(runView(row(0, { body: "Invalid symbol" })).body).toBe("Invalid symbol");
    expect(runView(row(0, { body: "" })).body).toBe("");
    expect(runView(row(0, { body: '{"results":[', body_truncated: 1 })).body).toBe('{"results":[');
    expect(runView(row(0, { body: "[1]", body_truncated: 1 })).body).toBe("[1]");
    expect(bodyValue(null, false)).toBeNull();
  });

  it("a page of limit rows, and the next cursor only when a row beyond it was read", () => {
    const rows = [row(3_000), row(2_000), row(1_000)];
    const page = runsPage(rows, 2);
    expect(page.runs.map((r) => r.scheduled_at)).toEqual(["1970-01-01T00:00:03.000Z", "1970-01-01T00:00:02.000Z"]);
    expect(page.nextBefore).toBe("1970-01-01T00:00:02.000Z");
    expect(runsPage(rows, 3).nextBefore).toBeNull();
    expect(runsPage([], 3)).toEqual({ runs: [], nextBefore: null });
  });
});
