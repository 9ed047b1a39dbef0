/**
 * The rules of a job's runs, pure: what a venue call makes of a run, when a failure streak raises `job.failing` or
 * `job.recovered`, what a forward's attempt leaves, and how a recorded run is shown. No I/O. D1 is in
 * adapters/job-store.ts; the cron run and the forwards in adapters/jobs.ts.
 */
import { venueMessage } from "../lib/rejection.ts";

/** Response bodies kept per run. */
export const MAX_RUN_BODY = 64 * 1024;
/** A forward is retried on this many later runs, then recorded as abandoned. */
export const MAX_FORWARD_ATTEMPTS = 5;

/** One job run as the API shows it; times are ISO 8601. */
export interface RunView {
  job: string;
  account: string;
  scheduled_at: string;
  started_at: string;
  ended_at: string | null;
  status: number | null;
  attempts: number;
  offset_ms: number | null;
  uncertainty_ms: number | null;
  /** The venue's answer: its JSON value when the whole body is JSON, else the text as kept (see `bodyValue`). */
  body: unknown;
  body_truncated: boolean;
  error: string | null;
  forward: { state: string; attempts: number; error: string | null } | null;
}

/** A `job_runs` row as D1 returns it. */
export interface RunRow {
  job: string;
  account: string;
  scheduled_at: number;
  started_at: number;
  ended_at: number | null;
  status: number | null;
  attempts: number;
  offset_ms: number | null;
  uncertainty_ms: number | null;
  body: string | null;
  body_truncated: number;
  error: string | null;
  forward_state: string | null;
  forward_attempts: number;
  forward_error: string | null;
}

export const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A run's body as the API shows it: the parsed value when the whole body is JSON, so a client reads the venue's
 * answer without parsing a string; otherwise the text as kept. A cut body (over `MAX_RUN_BODY`) stays text.
 */
export function bodyValue(body: string | null, truncated: boolean): unknown {
  if (body === null || truncated) return body;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

export function runView(row: RunRow): RunView {
  return {
    job: row.job,
    account: row.account,
    scheduled_at: iso(row.scheduled_at),
    started_at: iso(row.started_at),
    ended_at: row.ended_at === null ? null : iso(row.ended_at),
    status: row.status,
    attempts: row.attempts,
    offset_ms: row.offset_ms,
    uncertainty_ms: row.uncertainty_ms,
    body: bodyValue(row.body, row.body_truncated === 1),
    body_truncated: row.body_truncated === 1,
    error: row.error,
    forward:
      row.forward_state === null
        ? null
        : { state: row.forward_state, attempts: row.forward_attempts, error: row.forward_error },
  };
}

/** What a run records of its venue call. */
export interface RunRecord {
  status: number | null;
  attempts: number;
  offsetMs: number | null;
  uncertaintyMs: number | null;
  body: string | null;
  truncated: boolean;
  error: string | null;
}

/**
 * A job's venue call as the run rules read it: answered (any status), not sent by skewguard's own rate gate or
 * rules, not configured, or failed with no usable answer (`reason` says why, `attempts` how many were made).
 */
export type JobCall =
  | {
      kind: "answered";
      status: number;
      text: string;
      truncated: boolean;
      attempts: number;
      offsetMs: number;
      uncertaintyMs: number | null;
    }
  | { kind: "rate_limited" }
  | { kind: "refused"; rule: string; message: string }
  | { kind: "not_configured" }
  | { kind: "failed"; attempts: number; reason: string };

/** What a run records of its call to `venue`: the answer, and an error unless it was a 2xx. */
export function runRecord(venue: string, call: JobCall): RunRecord {
  const empty = { status: null, attempts: 0, offsetMs: null, uncertaintyMs: null, body: null, truncated: false };
  switch (call.kind) {
    case "not_configured":
      return { ...empty, error: `${venue} is not configured` };
    case "rate_limited":
      return { ...empty, error: "outbound rate limit reached" };
    case "refused":
      return { ...empty, error: `refused (${call.rule}): ${call.message}` };
    case "failed":
      return { ...empty, attempts: call.attempts, error: call.reason };
  }
  const { status, text } = call;
  const ok = status >= 200 && status < 300;
  return {
    status,
    attempts: call.attempts,
    offsetMs: call.offsetMs,
    uncertaintyMs: call.uncertaintyMs,
    body: text,
    truncated: call.truncated,
    error: ok ? null : `venue answered ${status}: ${venueMessage(text) ?? "no message"}`.slice(0, 500),
  };
}

/** One ended run, as the streak rule reads it: whether it succeeded (no error and a 2xx), and its status. */
export interface RunResult {
  ok: boolean;
  status: number | null;
}

/**
 * The alert a job's newest run calls for, given its latest `alertAfter + 1` ended runs, newest first: `failing` when
 * this run makes exactly `alertAfter` failures in a row (once per streak; `last` is the run's error, or its status),
 * `recovered` when a success ends a streak that long, or undefined.
 */
export function streakAlert(
  recent: readonly RunResult[],
  alertAfter: number,
  error: string | null,
): { kind: "failing"; last: string } | { kind: "recovered" } | undefined {
  const [latest, ...before] = recent;
  if (!latest) return undefined;
  const streak = (runs: readonly RunResult[]) =>
    runs.length >= alertAfter && runs.slice(0, alertAfter).every((r) => !r.ok);
  if (!latest.ok && streak(recent) && (recent.length <= alertAfter || recent[alertAfter]?.ok)) {
    return { kind: "failing", last: error ?? `status ${latest.status}` };
  }
  return latest.ok && streak(before) ? { kind: "recovered" } : undefined;
}

/** What a forward's attempt leaves: delivered, failed (tried again later), or abandoned after the last attempt. */
export function forwardState(error: string | null, attempts: number): "delivered" | "failed" | "abandoned" {
  if (error === null) return "delivered";
  return attempts >= MAX_FORWARD_ATTEMPTS ? "abandoned" : "failed";
}

/** One page of runs from `limit + 1` rows read: the page, and the cursor for the next one (null on the last). */
export function runsPage(rows: readonly RunRow[], limit: number): { runs: RunView[]; nextBefore: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { runs: page.map(runView), nextBefore: rows.length > limit && last ? iso(last.scheduled_at) : null };
}
