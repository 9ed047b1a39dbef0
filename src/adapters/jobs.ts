/**
 * Scheduled jobs: the `scheduled` handler runs every job due for the trigger's cron through the signed client,
 * records each run in D1 (idempotent on job + scheduled time), forwards results signed as Standard Webhooks, retries
 * failed forwards on later runs, and prunes old history. `GET /jobs` and `GET /jobs/<name>/runs` read it back.
 */
import { RateLimitedError, UpstreamError, venueClient } from "../adapters/client.ts";
import { log } from "../adapters/log.ts";
import { venueSetup } from "../adapters/setup.ts";
import { parseSyncMode } from "../core/clock/probe.ts";
import { type Job, type JobProblem, parseJobs } from "../core/jobs.ts";
import { venueMessage } from "../core/rejection.ts";
import { signWebhook } from "../core/standard-webhooks.ts";
import type { VenueName } from "../core/venue.ts";
import { authenticate } from "./auth.ts";
import { HttpError } from "./errors.ts";

/** Response bodies kept per run. */
export const MAX_RUN_BODY = 64 * 1024;
/** Jobs run at most this many at once, so one trigger cannot flood a venue or the isolate. */
const PARALLEL = 4;
/** A forward is retried on this many later runs, then recorded as abandoned. */
export const MAX_FORWARD_ATTEMPTS = 5;
const DAY_MS = 86_400_000;

const parsed = new WeakMap<object, { jobs: Job[]; problems: JobProblem[] }>();

/** The `JOBS` for this env, parsed once per isolate; problems are logged once and shown by /health and /jobs. */
export function jobSetup(env: Env): { jobs: Job[]; problems: JobProblem[] } {
  let setup = parsed.get(env);
  if (!setup) {
    const configured = new Set(Object.keys(venueSetup(env).venues) as VenueName[]);
    setup = parseJobs((env as unknown as Record<string, unknown>).JOBS, configured);
    for (const problem of setup.problems) log("error", { event: "config", binding: "JOBS", ...problem });
    parsed.set(env, setup);
  }
  return setup;
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
  const client = venueClient(env, job.venue, ctx);
  const empty = { status: null, attempts: 0, offsetMs: null, uncertaintyMs: null, body: null, truncated: false };
  if (!client) return { ...empty, error: `${job.venue} is not configured` };
  try {
    const result = await client.send({
      method: job.method,
      path: job.path,
      query: job.query,
      body: job.body,
      headers: job.body === undefined ? {} : { "content-type": "application/json" },
    });
    const text = await result.response.text();
    const status = result.response.status;
    const ok = status >= 200 && status < 300;
    return {
      status,
      attempts: result.attempts,
      offsetMs: result.offsetMs,
      uncertaintyMs: result.uncertaintyMs,
      body: text.slice(0, MAX_RUN_BODY),
      truncated: text.length > MAX_RUN_BODY,
      error: ok ? null : `venue answered ${status}: ${venueMessage(text) ?? "no message"}`.slice(0, 500),
    };
  } catch (err) {
    if (err instanceof UpstreamError) {
      return {
        ...empty,
        attempts: err.attempts,
        error: err.kind === "timeout" ? "venue timeout" : "venue unreachable",
      };
    }
    if (err instanceof RateLimitedError) return { ...empty, error: "outbound rate limit reached" };
    return { ...empty, error: `internal error (${err instanceof Error ? err.name : typeof err})` };
  }
}

/** POSTs a run to the job's receiver, signed as a Standard Webhooks sender; returns an error reason or null. */
async function forward(env: Env, job: Job, scheduledAt: number, run: Record<string, unknown>): Promise<string | null> {
  if (!job.forward) return null;
  const secret = (env as unknown as Record<string, unknown>)[job.forward.secretBinding];
  if (typeof secret !== "string" || secret === "") return `the secret binding ${job.forward.secretBinding} is not set`;
  const body = JSON.stringify(run);
  try {
    const headers = await signWebhook(secret, `${job.name}:${scheduledAt}`, Math.floor(Date.now() / 1000), body);
    const response = await fetch(job.forward.url, {
      method: "POST",
      body,
      headers: { ...headers, "content-type": "application/json" },
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return response.ok ? null : `receiver answered ${response.status}`;
  } catch (err) {
    const name = err instanceof Error ? err.name : typeof err;
    return name === "ConfigError"
      ? `${job.forward.secretBinding} is not a whsec_ secret`
      : `receiver unreachable (${name})`;
  }
}

const RUN_COLUMNS = `job, scheduled_at, started_at, ended_at, status, attempts, offset_ms, uncertainty_ms, body,
  body_truncated, error, forward_state, forward_attempts, forward_error`;

function runJson(row: Record<string, unknown>) {
  return {
    job: row.job,
    scheduled_at: new Date(row.scheduled_at as number).toISOString(),
    started_at: new Date(row.started_at as number).toISOString(),
    ended_at: row.ended_at === null ? null : new Date(row.ended_at as number).toISOString(),
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

async function runJob(env: Env, ctx: ExecutionContext, job: Job, scheduledAt: number): Promise<void> {
  const started = Date.now();
  // Claim (job, scheduled time) before sending: a re-delivered trigger finds the row and sends nothing.
  const claim = await env.DB.prepare(
    "INSERT INTO job_runs (job, scheduled_at, started_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
  )
    .bind(job.name, scheduledAt, started)
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
    scheduled_at: scheduledAt,
    status: run.status,
    attempts: run.attempts,
    offset_ms: run.offsetMs,
    uncertainty_ms: run.uncertaintyMs,
    error: run.error ?? undefined,
    ms: ended - started,
  });
  if (job.forward) await forwardRun(env, job, scheduledAt);
}

/** Forwards one recorded run and records the outcome; after the last attempt it is recorded as abandoned. */
async function forwardRun(env: Env, job: Job, scheduledAt: number): Promise<void> {
  const row = await env.DB.prepare(`SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 AND scheduled_at = ?2`)
    .bind(job.name, scheduledAt)
    .first<Record<string, unknown>>();
  if (!row) return;
  const { forward: _, ...run } = runJson(row);
  const error = await forward(env, job, scheduledAt, run);
  const attempts = (row.forward_attempts as number) + 1;
  const state = error === null ? "delivered" : attempts >= MAX_FORWARD_ATTEMPTS ? "abandoned" : "failed";
  await env.DB.prepare(
    "UPDATE job_runs SET forward_state = ?3, forward_attempts = ?4, forward_error = ?5 WHERE job = ?1 AND scheduled_at = ?2",
  )
    .bind(job.name, scheduledAt, state, attempts, error)
    .run();
  if (error) log("warn", { event: "forward_failed", job: job.name, scheduled_at: scheduledAt, attempts, state, error });
}

/** The `scheduled` handler. */
export async function scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
  // With CLOCK_SYNC=always, each trigger also keeps every venue's clock narrow, off the request path.
  if (parseSyncMode((env as unknown as Record<string, unknown>).CLOCK_SYNC) === "always") {
    for (const venue of Object.keys(venueSetup(env).venues) as VenueName[]) {
      const client = venueClient(env, venue, ctx);
      if (client) ctx.waitUntil(client.syncNow());
    }
  }
  const { jobs } = jobSetup(env);
  const due = jobs.filter((job) => job.cron === controller.cron);
  await bounded(due, PARALLEL, (job) => runJob(env, ctx, job, controller.scheduledTime));

  // Forwards that failed on earlier runs get another try now (bounded), so none is lost silently.
  const failed = await env.DB.prepare(
    "SELECT job, scheduled_at FROM job_runs WHERE forward_state IN ('failed', 'pending') AND scheduled_at < ?1 LIMIT 20",
  )
    .bind(controller.scheduledTime)
    .all<{ job: string; scheduled_at: number }>();
  const byName = new Map(jobs.map((job) => [job.name, job]));
  await bounded(failed.results, PARALLEL, async ({ job, scheduled_at }) => {
    const def = byName.get(job);
    if (def?.forward) await forwardRun(env, def, scheduled_at);
    else {
      // The job was removed or no longer forwards: say so on the run instead of retrying it forever.
      await env.DB.prepare(
        "UPDATE job_runs SET forward_state = 'abandoned', forward_error = ?3 WHERE job = ?1 AND scheduled_at = ?2",
      )
        .bind(job, scheduled_at, "the job no longer has a forward configured")
        .run();
    }
  });

  const days = Number((env as unknown as Record<string, unknown>).RUNS_RETENTION_DAYS ?? 30);
  const cutoff = controller.scheduledTime - (Number.isFinite(days) && days > 0 ? days : 30) * DAY_MS;
  await env.DB.batch([
    env.DB.prepare("DELETE FROM job_runs WHERE scheduled_at < ?1").bind(cutoff),
    env.DB.prepare("DELETE FROM deliveries WHERE received_at < ?1 AND state != 'queued'").bind(cutoff),
    env.DB.prepare("DELETE FROM dead_letters WHERE dead_at < ?1").bind(cutoff),
  ]);
}

/** `GET /jobs`: every job, its schedule, and its last run; plus the configuration problems. */
export async function listJobs(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/jobs");
  const { jobs, problems } = jobSetup(env);
  const out = await Promise.all(
    jobs.map(async (job) => {
      const last = await env.DB.prepare(
        `SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 ORDER BY scheduled_at DESC LIMIT 1`,
      )
        .bind(job.name)
        .first<Record<string, unknown>>();
      const { name, cron, venue, method, path, query } = job;
      return {
        name,
        cron,
        venue,
        method,
        path,
        query: query ?? null,
        forward: job.forward !== undefined,
        last_run: last ? runJson(last) : null,
      };
    }),
  );
  return Response.json({ jobs: out, problems });
}

/** `GET /jobs/<name>/runs?limit=&before=`: newest first; `before` is the exclusive `scheduled_at` cursor (ms). */
export async function listRuns(name: string, request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", `/jobs/${name}/runs`);
  if (!jobSetup(env).jobs.some((job) => job.name === name)) throw new HttpError(404, "not_found", "no such job");
  const params = new URL(request.url).searchParams;
  const limitText = params.get("limit") ?? "50";
  const beforeText = params.get("before");
  if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 500) {
    throw new HttpError(400, "bad_query", "limit must be a whole number from 1 to 500");
  }
  if (beforeText !== null && !/^\d{1,15}$/.test(beforeText)) {
    throw new HttpError(400, "bad_query", "before must be a scheduled_at in epoch milliseconds (from next_before)");
  }
  const limit = Number(limitText);
  const rows = await env.DB.prepare(
    `SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 AND scheduled_at < ?2 ORDER BY scheduled_at DESC LIMIT ?3`,
  )
    .bind(name, beforeText === null ? Number.MAX_SAFE_INTEGER : Number(beforeText), limit + 1)
    .all<Record<string, unknown>>();
  const page = rows.results.slice(0, limit);
  const more = rows.results.length > limit;
  return Response.json({
    runs: page.map(runJson),
    next_before: more ? (page.at(-1)?.scheduled_at as number) : null,
  });
}
