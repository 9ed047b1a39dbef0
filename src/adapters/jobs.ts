/**
 * Scheduled jobs: each cron trigger runs the jobs due for its cron through the signed venue call, records each run
 * in D1 (claimed on job + scheduled time first, so a re-delivered trigger sends nothing), forwards results signed as
 * Standard Webhooks, retries failed forwards on later triggers, and prunes old history. This file orchestrates: the
 * rules are in core/job-runs.ts, D1 (and the typed queries `GET /jobs` reads) in job-store.ts.
 */
import { binding } from "../config.ts";
import { events } from "../core/alerts.ts";
import {
  forwardState,
  type JobCall,
  MAX_RUN_BODY,
  type RunRecord,
  type RunView,
  runRecord,
  runView,
  streakAlert,
} from "../core/job-runs.ts";
import type { Job } from "../core/jobs.ts";
import { signWebhook, webhookKey } from "../core/standard-webhooks.ts";
import { config, runtime } from "../runtime.ts";
import { raiseLater } from "./alerts.ts";
import { venueClient } from "./client.ts";
import { pruneHistory } from "./history.ts";
import {
  abandonForward,
  claimRun,
  owedForwards,
  readRun,
  recentResults,
  recordForward,
  recordRun,
} from "./job-store.ts";
import { errorName, log } from "./log.ts";
import { failureReason } from "./venue-errors.ts";
import { sendJson, type VenueOutcome } from "./venue-outcome.ts";

/** Jobs run at most this many at once, so one trigger cannot flood a venue or the isolate. */
const PARALLEL = 4;

/** Runs `work` over `items`, at most `limit` at a time. */
async function bounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(lanes);
}

/** A job's venue call as the run rules read it (core/job-runs.ts `JobCall`). */
function jobCall(outcome: VenueOutcome): JobCall {
  switch (outcome.kind) {
    case "answered":
    case "rate_limited":
    case "not_configured":
      return outcome;
    case "refused":
      return { kind: "refused", rule: outcome.error.rule, message: outcome.error.message };
    default:
      return { kind: "failed", attempts: outcome.attempts, reason: failureReason(outcome.kind, outcome.detail) };
  }
}

async function fetchJob(env: Env, ctx: ExecutionContext, job: Job): Promise<RunRecord> {
  try {
    const { method, path, query, body, account } = job;
    const audit = { source: "job" as const, actor: job.name, receivedAt: Date.now() };
    const request = { method, path, query, body, account, by: `job:${job.name}`, audit };
    return runRecord(job.venue, jobCall(await sendJson(env, ctx, job.venue, request, MAX_RUN_BODY)));
  } catch (err) {
    const empty = { status: null, attempts: 0, offsetMs: null, uncertaintyMs: null, body: null, truncated: false };
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
  if (!(await claimRun(env.DB, job.name, scheduledAt, started, job.account))) {
    log("info", { event: "job_skipped", job: job.name, scheduled_at: scheduledAt, reason: "already ran" });
    return;
  }
  const run = await fetchJob(env, ctx, job);
  const ended = Date.now();
  await recordRun(env.DB, job.name, scheduledAt, ended, run, job.forward !== undefined);
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

/** Raises what this run's failure streak calls for (core/job-runs.ts `streakAlert`). */
async function alertOnStreak(env: Env, ctx: ExecutionContext, job: Job, error: string | null): Promise<void> {
  const alert = streakAlert(await recentResults(env.DB, job.name, job.alertAfter + 1), job.alertAfter, error);
  const where = { venue: job.venue, account: job.account };
  if (alert?.kind === "failing") raiseLater(env, ctx, events.jobFailing(job.name, job.alertAfter, alert.last, where));
  if (alert?.kind === "recovered") raiseLater(env, ctx, events.jobRecovered(job.name, where));
}

/** Forwards one recorded run and records the outcome; after the last attempt it is recorded as abandoned. */
async function forwardRun(env: Env, ctx: ExecutionContext, job: Job, scheduledAt: number): Promise<void> {
  const row = await readRun(env.DB, job.name, scheduledAt);
  if (!row) return;
  const { forward: _, ...run } = runView(row);
  const error = await forward(env, job, scheduledAt, run);
  const attempts = row.forward_attempts + 1;
  const state = forwardState(error, attempts);
  await recordForward(env.DB, job.name, scheduledAt, { state, attempts, error });
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
  const failed = await owedForwards(env.DB, before);
  const byName = new Map(jobs.map((job) => [job.name, job]));
  await bounded(failed, PARALLEL, async ({ job, scheduled_at }) => {
    const def = byName.get(job);
    if (def?.forward) await forwardRun(env, ctx, def, scheduled_at);
    else {
      // The job was removed or no longer forwards: say so on the run instead of retrying it forever.
      await abandonForward(env.DB, job, scheduled_at, "the job no longer has a forward configured");
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
