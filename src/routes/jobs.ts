/**
 * `GET /jobs` and `GET /jobs/<name>/runs`: the configured jobs and their recorded runs, for token holders allowed
 * to read them. The runs themselves are made by the cron handler (adapters/jobs.ts), and read from
 * adapters/job-store.ts.
 */
import { lastRun, listRuns } from "../adapters/job-store.ts";
import { config } from "../runtime.ts";
import { authenticate } from "./auth.ts";
import { HttpError } from "./http.ts";

/**
 * `GET /jobs`: every job, its schedule, and how its last run went; plus the configuration problems. The bodies
 * stay with `/jobs/<name>/runs`, which a token may be allowed for one job only.
 */
export async function jobs(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/jobs");
  const { jobs, problems } = config(env).jobs;
  const out = await Promise.all(
    jobs.map(async (job) => {
      const { name, cron, venue, method, path, query } = job;
      const last = await lastRun(env.DB, name);
      const last_run = last && { ...last, body: undefined, body_truncated: undefined };
      return { name, cron, venue, method, path, query: query ?? null, forward: job.forward !== undefined, last_run };
    }),
  );
  return Response.json({ jobs: out, problems });
}

/** `GET /jobs/<name>/runs?limit=&before=`: newest first; `before` is the exclusive `scheduled_at` cursor. */
export async function runs(name: string, request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", `/jobs/${name}/runs`);
  if (!config(env).jobs.jobs.some((job) => job.name === name)) throw new HttpError(404, "not_found", "no such job");
  const params = new URL(request.url).searchParams;
  const limitText = params.get("limit") ?? "50";
  const beforeText = params.get("before");
  if (!/^\d{1,3}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > 500) {
    throw new HttpError(400, "bad_query", "limit must be a whole number from 1 to 500");
  }
  const before = beforeText === null ? Number.MAX_SAFE_INTEGER : Date.parse(beforeText);
  if (beforeText !== null && (!/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(beforeText) || Number.isNaN(before))) {
    throw new HttpError(400, "bad_query", "before must be an ISO 8601 UTC time, as next_before gives it");
  }
  const page = await listRuns(env.DB, name, Number(limitText), before);
  return Response.json({ runs: page.runs, next_before: page.nextBefore });
}
