/**
 * Scheduled jobs: each cron trigger runs the jobs due for its cron through the signed venue call, records each run
 * in D1 (claimed on job + scheduled time first, so a re-delivered trigger sends nothing), forwards results signed as
 * Standard Webhooks, retries failed forwards on later triggers, and prunes old history. The typed queries that
 * `GET /jobs` and `GET /jobs/<name>/runs` read live here too.
 */
import { binding } from "../config.ts";
import { events } from "../core/alerts.ts";
import type { Job } from "../core/jobs.ts";
import { signWebhook, webhookKey } from "../core/standard-webhooks.ts";
import { venueMessage } from "../lib/rejection.ts";
import { config, runtime } from "../runtime.ts";
import { raiseLater } from "./alerts.ts";
import { venueClient } from "./client.ts";
import { pruneHistory } from "./history.ts";
import { errorName, log } from "./log.ts";
import { failureReason } from "./venue-errors.ts";
import { sendJson } from "./venue-outcome.ts";

/** Response bodies kept per run. */
export const MAX_RUN_BODY = 64 * 1024;
/** Jobs run at most this many at once, so one trigger cannot flood a venue or the isolate. */
const PARALLEL = 4;
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
  body: string | null;
  body_truncated: boolean;
  error: string | null;
  forward: { state: string; attempts: number; error: string | null } | null;
}

/** A `job_runs` row as D1 returns it. */
interface RunRow {
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

const RUN_COLUMNS = `job, account, scheduled_at, started_at, ended_at, status, attempts, offset_ms, uncertainty_ms, body,
  body_truncated, error, forward_state, forward_attempts, forward_error`;

const iso = (ms: number) => new Date(ms).toISOString();

function runView(row: RunRow): RunView {
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
    body: row.body,
    body_truncated: row.body_truncated === 1,
    error: row.error,
    forward:
      row.forward_state === null
        ? null
        : { state: row.forward_state, attempts: row.forward_attempts, error: row.forward_error },
  };
}

/** Runs `work` over `items`, at most `limit` at a time. */
async function bounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(lanes);
}

interface RunRecord {
  status: number | null;
  attempts: number;
  offsetMs: number | null;
  uncertaintyMs: number | null;
  body: string | null;
  truncated: boolean;
  error: string | null;
}

async function fetchJob(env: Env, ctx: ExecutionContext, job: Job): Promise<RunRecord> {
  const empty = { status: null, attempts: 0, offsetMs: null, uncertaintyMs: null, body: null, truncated: false };
  try {
    const { method, path, query, body, account } = job;
    const request = { method, path, query, body, account, by: `job:${job.name}` };
    const outcome = await sendJson(env, ctx, job.venue, request, MAX_RUN_BODY);
    switch (outcome.kind) {
      case "not_configured":
        return { ...empty, error: `${job.venue} is not configured` };
      case "rate_limited":
        return { ...empty, error: "outbound rate limit reached" };
      case "refused":
        return { ...empty, error: `refused (${outcome.error.rule}): ${outcome.error.message}` };
      case "answered":
        break;
      default:
        return { ...empty, attempts: outcome.attempts, error: failureReason(outcome.kind, outcome.detail) };
    }
    const { status, text, truncated } = outcome;
    const ok = status >= 200 && status < 300;
    return {
      status,
      attempts: outcome.attempts,
      offsetMs: outcome.offsetMs,
      uncertaintyMs: outcome.uncertaintyMs,
      body: text,
      truncated,
      error: ok ? null : `venue answered ${status}: ${venueMessage(text) ?? "no message"}`.slice(0, 500),
    };
  } catch (err) {
    return { ...empty, error: `internal error (${errorName(err)})` };
  }
}

/** POSTs a run to the job's receiver, signed as a Standard Webhooks sender; returns an error reason or null. */
async function forward(env: Env, job: Job, scheduledAt: number, run: Omit<RunView, "forward">): Promise<string | null> {
  if (!job.forward) return null;
  const secret = binding(env, job.forward.secretBinding);
  if (secret === undefined) return `the secret binding ${job.forward.secretBinding} is not set`;
  const body = JSON.stringify(run);
  try {
    const name = job.forward.secretBinding;
    const key = await runtime(env).key(`whsec ${name}`, () => webhookKey(secret, name));
    const headers = await signWebhook(key, `${job.name}:${scheduledAt}`, Math.floor(Date.now() / 1000), body);
    const response = await fetch(job.forward.url, {
      method: "POST",
      body,
      headers: { ...headers, "content-type": "application/json" },
      redirect: "manual", // a redirect would take the run past the https-only rule for forward.url
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get("location");
      const host =
        location !== null && URL.canParse(location, job.forward.url) ? new URL(location, job.forward.url).host : "?";
      return `receiver answered a redirect to ${host}; not followed`;
    }
    return response.ok ? null : `receiver answered ${response.status}`;
  } catch (err) {
    const name = errorName(err);
    return name === "ConfigError"
      ? `${job.forward.secretBinding} is not a whsec_ secret`
      : `receiver unreachable (${name})`;
  }
}

async function runJob(env: Env, ctx: ExecutionContext, job: Job, scheduledAt: number): Promise<void> {
  const started = Date.now();
  // Claim (job, scheduled time) before sending: a re-delivered trigger finds the row and sends nothing.
  const claim = await env.DB.prepare(
    "INSERT INTO job_runs (job, scheduled_at, started_at, account) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
  )
    .bind(job.name, scheduledAt, started, job.account)
    .run();
  if (claim.meta.changes === 0) {
    log("info", { event: "job_skipped", job: job.name, scheduled_at: scheduledAt, reason: "already ran" });
    return;
  }
  const run = await fetchJob(env, ctx, job);
  const ended = Date.now();
  await env.DB.prepare(
    `UPDATE job_runs SET ended_at = ?3, status = ?4, attempts = ?5, offset_ms = ?6, uncertainty_ms = ?7, body = ?8,
       body_truncated = ?9, error = ?10, forward_state = ?11 WHERE job = ?1 AND scheduled_at = ?2`,
  )
    .bind(
      job.name,
      scheduledAt,
      ended,
      run.status,
      run.attempts,
      run.offsetMs,
      run.uncertaintyMs,
      run.body,
      run.truncated ? 1 : 0,
      run.error,
      job.forward ? "pending" : null,
    )
    .run();
  log(run.error ? "warn" : "info", {
    event: "job_run",
    job: job.name,
    venue: job.venue,
    account: job.account,
    scheduled_at: scheduledAt,
    status: run.status,
    attempts: run.attempts,
    offset_ms: run.offsetMs,
    uncertainty_ms: run.uncertaintyMs,
    error: run.error ?? undefined,
    ms: ended - started,
  });
  // An alert is never why a run's forward, the next job or the pruning is skipped.
  await alertOnStreak(env, ctx, job, run.error).catch((err) =>
    log("error", { event: "job_alert_failed", job: job.name, error: errorName(err) }),
  );
  if (job.forward) await forwardRun(env, ctx, job, scheduledAt);
}

/**
 * `job.failing` when this run makes exactly `alertAfter` failures in a row (once per streak), `job.recovered` when a
 * success ends a streak that long. A run fails when it has an error or a status outside 2xx.
 */
async function alertOnStreak(env: Env, ctx: ExecutionContext, job: Job, error: string | null): Promise<void> {
  const { results } = await env.DB.prepare(
    `SELECT (error IS NULL AND status BETWEEN 200 AND 299) AS ok, error, status FROM job_runs
     WHERE job = ?1 AND ended_at IS NOT NULL ORDER BY scheduled_at DESC LIMIT ?2`,
  )
    .bind(job.name, job.alertAfter + 1)
    .all<{ ok: number; error: string | null; status: number | null }>();
  const [latest, ...before] = results;
  if (!latest) return;
  const where = { venue: job.venue, account: job.account };
  const streak = (runs: typeof results) =>
    runs.length >= job.alertAfter && runs.slice(0, job.alertAfter).every((r) => !r.ok);
  if (!latest.ok && streak(results) && (results.length <= job.alertAfter || results[job.alertAfter]?.ok)) {
    const last = error ?? `status ${latest.status}`;
    raiseLater(env, ctx, events.jobFailing(job.name, job.alertAfter, last, where));
  } else if (latest.ok && streak(before)) raiseLater(env, ctx, events.jobRecovered(job.name, where));
}

/** Forwards one recorded run and records the outcome; after the last attempt it is recorded as abandoned. */
async function forwardRun(env: Env, ctx: ExecutionContext, job: Job, scheduledAt: number): Promise<void> {
  const row = await env.DB.prepare(`SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 AND scheduled_at = ?2`)
    .bind(job.name, scheduledAt)
    .first<RunRow>();
  if (!row) return;
  const { forward: _, ...run } = runView(row);
  const error = await forward(env, job, scheduledAt, run);
  const attempts = row.forward_attempts + 1;
  const state = error === null ? "delivered" : attempts >= MAX_FORWARD_ATTEMPTS ? "abandoned" : "failed";
  await env.DB.prepare(
    "UPDATE job_runs SET forward_state = ?3, forward_attempts = ?4, forward_error = ?5 WHERE job = ?1 AND scheduled_at = ?2",
  )
    .bind(job.name, scheduledAt, state, attempts, error)
    .run();
  if (error) log("warn", { event: "forward_failed", job: job.name, scheduled_at: scheduledAt, attempts, state, error });
  if (state === "abandoned") raiseForwardAbandoned(env, ctx, job.name, scheduledAt, error ?? "", job);
}

function raiseForwardAbandoned(
  env: Env,
  ctx: ExecutionContext,
  job: string,
  scheduledAt: number,
  error: string,
  def: Job | undefined,
): void {
  const where = def ? { venue: def.venue, account: def.account } : {};
  raiseLater(env, ctx, events.forwardAbandoned(job, new Date(scheduledAt).toISOString(), error, where));
}

/** Forwards that failed on earlier runs get another try now (bounded), so none is lost silently. */
async function retryForwards(env: Env, ctx: ExecutionContext, jobs: readonly Job[], before: number): Promise<void> {
  const failed = await env.DB.prepare(
    "SELECT job, scheduled_at FROM job_runs WHERE forward_state IN ('failed', 'pending') AND scheduled_at < ?1 LIMIT 20",
  )
    .bind(before)
    .all<{ job: string; scheduled_at: number }>();
  const byName = new Map(jobs.map((job) => [job.name, job]));
  await bounded(failed.results, PARALLEL, async ({ job, scheduled_at }) => {
    const def = byName.get(job);
    if (def?.forward) await forwardRun(env, ctx, def, scheduled_at);
    else {
      // The job was removed or no longer forwards: say so on the run instead of retrying it forever.
      await env.DB.prepare(
        "UPDATE job_runs SET forward_state = 'abandoned', forward_error = ?3 WHERE job = ?1 AND scheduled_at = ?2",
      )
        .bind(job, scheduled_at, "the job no longer has a forward configured")
        .run();
      raiseForwardAbandoned(env, ctx, job, scheduled_at, "the job no longer has a forward configured", def);
    }
  });
}

/** The `scheduled` handler: due jobs, then earlier failed forwards, then pruning. */
export async function runScheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
  const { venues, clockSync, jobs, retentionDays } = config(env);
  // With CLOCK_SYNC=always, each trigger also keeps every venue's clock narrow, off the request path.
  if (clockSync === "always") {
    for (const [venue, stand] of Object.entries(venues)) {
      const client = venueClient(env, venue, ctx, { account: stand.account });
      if (client) ctx.waitUntil(client.syncNow());
    }
  }
  const due = jobs.jobs.filter((job) => job.cron === controller.cron);
  await bounded(due, PARALLEL, (job) => runJob(env, ctx, job, controller.scheduledTime));
  await retryForwards(env, ctx, jobs.jobs, controller.scheduledTime);
  await pruneHistory(env.DB, controller.scheduledTime, retentionDays);
}

/** The newest run of `job`, or null. */
export async function lastRun(db: D1Database, job: string): Promise<RunView | null> {
  const row = await db
    .prepare(`SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 ORDER BY scheduled_at DESC LIMIT 1`)
    .bind(job)
    .first<RunRow>();
  return row ? runView(row) : null;
}

/** Up to `limit` runs of `job` scheduled before `before` (epoch ms), newest first, and the cursor for the next page. */
export async function listRuns(
  db: D1Database,
  job: string,
  limit: number,
  before: number,
): Promise<{ runs: RunView[]; nextBefore: string | null }> {
  const rows = await db
    .prepare(
      `SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 AND scheduled_at < ?2 ORDER BY scheduled_at DESC LIMIT ?3`,
    )
    .bind(job, before, limit + 1)
    .all<RunRow>();
  const page = rows.results.slice(0, limit);
  const more = rows.results.length > limit;
  const last = page.at(-1);
  return { runs: page.map(runView), nextBefore: more && last ? iso(last.scheduled_at) : null };
}
