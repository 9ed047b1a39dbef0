/**
 * D1 for scheduled jobs (`job_runs`): claiming a run, recording it and its forward, the streak of recent outcomes,
 * and the typed queries `GET /jobs`, `GET /jobs/<name>/runs` and the console read. Storage only: the rules are in
 * core/job-runs.ts, the cron run and the forwards in adapters/jobs.ts.
 */
import { type RunRecord, type RunResult, type RunRow, type RunView, runsPage, runView } from "../core/job-runs.ts";

const RUN_COLUMNS = `job, account, scheduled_at, started_at, ended_at, status, attempts, offset_ms, uncertainty_ms, body,
  body_truncated, error, forward_state, forward_attempts, forward_error`;

/** Claims (job, scheduled time) before sending; resolves to false when a row exists (a re-delivered trigger). */
export async function claimRun(db: D1Database, job: string, scheduledAt: number, started: number, account: string) {
  const claim = await db
    .prepare(
      "INSERT INTO job_runs (job, scheduled_at, started_at, account) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )
    .bind(job, scheduledAt, started, account)
    .run();
  return claim.meta.changes !== 0;
}

/** Records a claimed run's venue call; its forward, if it has one, is `pending`. */
export async function recordRun(
  db: D1Database,
  job: string,
  scheduledAt: number,
  ended: number,
  run: RunRecord,
  forwards: boolean,
): Promise<void> {
  await db
    .prepare(
      `UPDATE job_runs SET ended_at = ?3, status = ?4, attempts = ?5, offset_ms = ?6, uncertainty_ms = ?7, body = ?8,
       body_truncated = ?9, error = ?10, forward_state = ?11 WHERE job = ?1 AND scheduled_at = ?2`,
    )
    .bind(
      job,
      scheduledAt,
      ended,
      run.status,
      run.attempts,
      run.offsetMs,
      run.uncertaintyMs,
      run.body,
      run.truncated ? 1 : 0,
      run.error,
      forwards ? "pending" : null,
    )
    .run();
}

/** The latest `count` ended runs of `job`, newest first, as the streak rule reads them. */
export async function recentResults(db: D1Database, job: string, count: number): Promise<RunResult[]> {
  const { results } = await db
    .prepare(
      `SELECT (error IS NULL AND status BETWEEN 200 AND 299) AS ok, status FROM job_runs
       WHERE job = ?1 AND ended_at IS NOT NULL ORDER BY scheduled_at DESC LIMIT ?2`,
    )
    .bind(job, count)
    .all<{ ok: number | null; status: number | null }>();
  return results.map((r) => ({ ok: r.ok === 1, status: r.status }));
}

/** One recorded run, with its forward's attempts so far, or null. */
export async function readRun(db: D1Database, job: string, scheduledAt: number) {
  return db
    .prepare(`SELECT ${RUN_COLUMNS} FROM job_runs WHERE job = ?1 AND scheduled_at = ?2`)
    .bind(job, scheduledAt)
    .first<RunRow>();
}

export async function recordForward(
  db: D1Database,
  job: string,
  scheduledAt: number,
  forward: { state: string; attempts: number; error: string | null },
): Promise<void> {
  await db
    .prepare(
      "UPDATE job_runs SET forward_state = ?3, forward_attempts = ?4, forward_error = ?5 WHERE job = ?1 AND scheduled_at = ?2",
    )
    .bind(job, scheduledAt, forward.state, forward.attempts, forward.error)
    .run();
}

/** Marks a run's forward abandoned, with the reason, without counting an attempt. */
export async function abandonForward(db: D1Database, job: string, scheduledAt: number, error: string): Promise<void> {
  await db
    .prepare("UPDATE job_runs SET forward_state = 'abandoned', forward_error = ?3 WHERE job = ?1 AND scheduled_at = ?2")
    .bind(job, scheduledAt, error)
    .run();
}

/** Forwards still owed (failed, or pending from a run that ended before `before`), 20 at most. */
export async function owedForwards(db: D1Database, before: number) {
  const { results } = await db
    .prepare(
      "SELECT job, scheduled_at FROM job_runs WHERE forward_state IN ('failed', 'pending') AND scheduled_at < ?1 LIMIT 20",
    )
    .bind(before)
    .all<{ job: string; scheduled_at: number }>();
  return results;
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
  return runsPage(rows.results, limit);
}
