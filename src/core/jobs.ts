/**
 * Scheduled jobs (`JOBS`): what to fetch, on which cron, and where to forward the result. Pure: parsing and
 * validation only. A job whose cron is not a configured trigger, or whose account is not configured, is reported by
 * name instead of being silently skipped.
 */

import type { Venues } from "../venues/index.ts";
import { checkVenuePath } from "../venues/profile.ts";
import { ACCOUNT_NAME } from "./accounts.ts";
import { BINDING, isRecord, parseNamedList, positiveInteger } from "./parse.ts";
import { accountKey, LOOPBACK } from "./venue-config.ts";

/** The `[triggers] crons` of wrangler.toml; a test keeps the two in step. */
export const TRIGGERS: readonly string[] = ["*/5 * * * *", "* * * * *"];

export interface Job {
  name: string;
  cron: string;
  venue: string;
  /** The account that signs it (`default`: the venue's `*_API_*` bindings). */
  account: string;
  method: string;
  /** Wire path under the venue's API prefix. */
  path: string;
  /** Raw query string without `?`. */
  query: string | undefined;
  body: string | undefined;
  forward: { url: string; secretBinding: string } | undefined;
  /** Failed runs in a row that raise `job.failing` (`alert_after_failures`, default 3). */
  alertAfter: number;
}

export interface JobProblem {
  job: string;
  message: string;
}

/** Where a job's result goes; undefined, with the problem reported, when `forward` is wrong. */
function parseForward(forward: unknown, problem: (message: string) => void): Job["forward"] {
  const url =
    isRecord(forward) && typeof forward.url === "string" && URL.canParse(forward.url) ? new URL(forward.url) : null;
  const secretBinding = isRecord(forward) ? forward.secret_binding : undefined;
  if (!url || !(url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname)))) {
    problem("forward.url must be an https:// URL (http:// only on a loopback host)");
  }
  if (typeof secretBinding !== "string" || !BINDING.test(secretBinding)) {
    problem("forward.secret_binding must name the secret holding the whsec_ key");
  }
  return url && typeof secretBinding === "string" ? { url: url.href, secretBinding } : undefined;
}

function parseJob(
  raw: Record<string, unknown>,
  problem: (message: string) => void,
  configured: ReadonlySet<string>,
  venues: Venues,
): Job | undefined {
  const { name, cron, path, query, body } = raw;
  const account = raw.account ?? "default";
  if (typeof cron !== "string" || !TRIGGERS.includes(cron)) {
    problem(`cron ${JSON.stringify(cron)} is not in wrangler.toml [triggers] crons (${TRIGGERS.join(", ")})`);
  }
  const venue = venues.get(raw.venue);
  if (venue === undefined) problem(`venue must be one of ${venues.names.join(", ")}`);
  else if (typeof account !== "string" || !ACCOUNT_NAME.test(account)) problem("account must be an account name");
  else if (!configured.has(accountKey(venue.name, account))) {
    problem(
      account === "default"
        ? `venue ${venue.name} is not configured (see /health)`
        : `account ${account} on ${venue.name} is not configured (see /health)`,
    );
  }
  const method = typeof raw.method === "string" ? raw.method.toUpperCase() : "GET";
  if (!["GET", "POST"].includes(method)) problem("method must be GET or POST");
  if (typeof path !== "string" || (venue && checkVenuePath(venue, path))) {
    problem(`path must be under ${venue ? venue.apiPrefix : "/"}, with no query (use "query") and no dot segments`);
  }
  if (query !== undefined && (typeof query !== "string" || /[#\s]/.test(query) || query.startsWith("?"))) {
    problem('query must be a raw query string without "?"');
  }
  if (method === "GET" && body !== undefined) problem("body is not allowed with GET");
  const forward = raw.forward === undefined ? undefined : parseForward(raw.forward, problem);
  const alertAfter = positiveInteger(raw.alert_after_failures, 3, "alert_after_failures", problem);
  if (typeof name !== "string" || typeof cron !== "string" || !venue || typeof account !== "string") return undefined;
  if (typeof path !== "string" || (query !== undefined && typeof query !== "string")) return undefined;
  const text = body === undefined || typeof body === "string" ? body : JSON.stringify(body);
  return { name, cron, venue: venue.name, account, method, path, query, body: text, forward, alertAfter };
}

/** Parses `JOBS` (JSON text, or an array set directly in wrangler.toml); bad jobs are reported, not run. */
export function parseJobs(
  value: unknown,
  configured: ReadonlySet<string>,
  venues: Venues,
): { jobs: Job[]; problems: JobProblem[] } {
  const { items, problems } = parseNamedList(value, "JOBS", "job", (raw, problem) =>
    parseJob(raw, problem, configured, venues),
  );
  return { jobs: items, problems: problems.map(({ name, message }) => ({ job: name, message })) };
}
