/**
 * Scheduled jobs (`JOBS`): what to fetch, on which cron, and where to forward the result. Pure: parsing and
 * validation only. A job whose cron is not a configured trigger, or whose venue is not configured, is reported by
 * name instead of being silently skipped.
 */
import { LOOPBACK, PROFILES, VENUES, type VenueName } from "./venue.ts";

/** The `[triggers] crons` of wrangler.toml; a test keeps the two in step. */
export const TRIGGERS: readonly string[] = ["*/5 * * * *", "* * * * *"];

export interface Job {
  name: string;
  cron: string;
  venue: VenueName;
  method: string;
  /** Wire path under the venue's API prefix. */
  path: string;
  /** Raw query string without `?`. */
  query: string | undefined;
  body: string | undefined;
  forward: { url: string; secretBinding: string } | undefined;
}

export interface JobProblem {
  job: string;
  message: string;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseJob(raw: unknown, index: number, configured: ReadonlySet<VenueName>, problems: JobProblem[]) {
  const label = isRecord(raw) && typeof raw.name === "string" ? raw.name : `#${index + 1}`;
  const before = problems.length;
  const problem = (message: string) => problems.push({ job: label, message });
  if (!isRecord(raw)) {
    problem("a job must be an object");
    return undefined;
  }
  const { name, cron, venue, path, query, body, forward } = raw;
  if (typeof name !== "string" || !NAME.test(name)) problem("name must be lower-case letters, digits and dashes");
  if (typeof cron !== "string" || !TRIGGERS.includes(cron)) {
    problem(`cron ${JSON.stringify(cron)} is not in wrangler.toml [triggers] crons (${TRIGGERS.join(", ")})`);
  }
  if (!VENUES.includes(venue as VenueName)) problem(`venue must be one of ${VENUES.join(", ")}`);
  else if (!configured.has(venue as VenueName)) problem(`venue ${venue} is not configured (see /health)`);
  const method = typeof raw.method === "string" ? raw.method.toUpperCase() : "GET";
  if (!["GET", "POST"].includes(method)) problem("method must be GET or POST");
  const prefix = VENUES.includes(venue as VenueName) ? PROFILES[venue as VenueName].apiPrefix : "/";
  if (typeof path !== "string" || !path.startsWith(prefix) || /[?#\s]|\/\.\.?(\/|$)/.test(path)) {
    problem(`path must be under ${prefix}, with no query (use "query") and no dot segments`);
  }
  if (query !== undefined && (typeof query !== "string" || /[#\s]/.test(query) || query.startsWith("?"))) {
    problem('query must be a raw query string without "?"');
  }
  let text: string | undefined;
  if (body !== undefined) text = typeof body === "string" ? body : JSON.stringify(body);
  let forwardTo: Job["forward"];
  if (forward !== undefined) {
    const url =
      isRecord(forward) && typeof forward.url === "string" && URL.canParse(forward.url) ? new URL(forward.url) : null;
    const secretBinding = isRecord(forward) ? forward.secret_binding : undefined;
    if (!url || !(url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname)))) {
      problem("forward.url must be an https:// URL (http:// only on a loopback host)");
    }
    if (typeof secretBinding !== "string" || !/^[A-Z][A-Z0-9_]{0,62}$/.test(secretBinding)) {
      problem("forward.secret_binding must name the secret holding the whsec_ key");
    }
    if (url && typeof secretBinding === "string") forwardTo = { url: url.href, secretBinding };
  }
  if (problems.length > before) return undefined;
  return {
    name: name as string,
    cron: cron as string,
    venue: venue as VenueName,
    method,
    path: path as string,
    query: query as string | undefined,
    body: text,
    forward: forwardTo,
  } satisfies Job;
}

/** Parses `JOBS` (JSON text, or an array set directly in wrangler.toml); bad jobs are reported, not run. */
export function parseJobs(value: unknown, configured: ReadonlySet<VenueName>): { jobs: Job[]; problems: JobProblem[] } {
  if (value === undefined || value === null || value === "") return { jobs: [], problems: [] };
  let list = value;
  if (typeof value === "string") {
    try {
      list = JSON.parse(value);
    } catch {
      return { jobs: [], problems: [{ job: "JOBS", message: "JOBS is not valid JSON" }] };
    }
  }
  if (!Array.isArray(list)) return { jobs: [], problems: [{ job: "JOBS", message: "JOBS must be a JSON array" }] };
  const problems: JobProblem[] = [];
  const jobs: Job[] = [];
  list.forEach((raw, i) => {
    const job = parseJob(raw, i, configured, problems);
    if (!job) return;
    if (jobs.some((j) => j.name === job.name)) problems.push({ job: job.name, message: "the name is used twice" });
    else jobs.push(job);
  });
  return { jobs, problems };
}
