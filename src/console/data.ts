/**
 * The console's data shaping, pure: the notice an action leaves, and the rows the page shows (accounts, venues'
 * clocks, jobs, deliveries) from what the adapters read. adapters/console-data.ts does the reading; page.ts renders.
 */
import { DELIVERY_ID } from "../core/hooks.ts";
import type { RunView } from "../core/job-runs.ts";
import type { Job } from "../core/jobs.ts";
import { type AllowRule, allows } from "../core/tokens.ts";
import type { VenueConfig, VenueProblem } from "../core/venue-config.ts";
import { type ClockEstimate, halfWidthMs } from "../lib/estimator.ts";
import type { AccountRow, DeliveryRow, JobRow, RunRow, VenueRow } from "./page.ts";

/** An account's gate as adapters/halts.ts `accountState` reads it; `error` when the gate did not answer. */
export type AccountState = Pick<AccountRow, "halt" | "haltAll" | "ordersLastMinute"> & { error: string | undefined };

/** What a console action came to, for the notice on the page it returns to. */
export const NOTICES: Record<string, string> = {
  halted: "Halted",
  resumed: "Resumed",
  redriven: "Re-driven (queued again)",
  halted_all: "Halted every account",
  resumed_all: "Resumed every account",
  not_dead: "Not re-driven: the delivery is not dead-lettered",
  unsafe:
    'Not re-driven: it may have reached the venue and has no client_order_id; tick "send again anyway" to force it',
  not_found: "No such delivery",
  forbidden: "Not allowed for this token",
  bad_reason: "A halt needs a reason (1-200 characters)",
  failed: "It did not take: the account's gate or the queue did not answer; try again",
  unknown: "No such account or delivery",
  alert_sent: "Test alert sent",
  alert_failed: "Test alert: not every sink took it (POST /alerts/test answers with each sink's status and error)",
  no_sinks: "No alert sink is configured (ALERTS)",
};

const ACCOUNT_SUBJECT = /^[a-z]+\/[a-z0-9-]{1,32}$/;
/** A test alert's outcome per sink, `chat:sent,pager:failed` (sink names are lower-case letters, digits and dashes). */
const SINKS_SUBJECT = /^[a-z0-9-]{1,64}:(?:sent|failed)(?:,[a-z0-9-]{1,64}:(?:sent|failed)){0,31}$/;

/** The notice for `?done=&subject=`: its text, and the subject only when it is an account, a delivery id or sinks. */
export function notice(url: URL): string | undefined {
  const text = NOTICES[url.searchParams.get("done") ?? ""];
  const subject = url.searchParams.get("subject") ?? "";
  if (text && SINKS_SUBJECT.test(subject)) return `${text}: ${subject.replaceAll(":", " ").replaceAll(",", ", ")}`;
  return text && (ACCOUNT_SUBJECT.test(subject) || DELIVERY_ID.test(subject)) ? `${text}: ${subject}` : text;
}

/** One configured account's row: its rules, its gate's state, and what this session's token may do to it. */
export function accountRow(
  a: Pick<VenueConfig, "account" | "rules"> & { profile: { name: string } },
  state: AccountState,
  allow: readonly AllowRule[],
): AccountRow {
  const { guards, readOnly, configured } = a.rules;
  const path = `/accounts/${a.profile.name}/${a.account}/halt`;
  return {
    venue: a.profile.name,
    name: a.account,
    available: true,
    readOnly,
    guards: configured,
    ...(typeof guards === "string" ? { guardsProblem: guards } : {}),
    halt: state.halt,
    haltAll: state.haltAll,
    ordersLastMinute: state.ordersLastMinute,
    ...(state.error ? { gateError: state.error } : {}),
    canHalt: allows(allow, "PUT", path),
    canResume: allows(allow, "DELETE", path),
  };
}

/** An account that is named but cannot be used, with the binding at fault. */
export function unavailableRow(p: VenueProblem): AccountRow {
  const problem = { binding: p.binding, message: p.message };
  return { venue: p.venue, name: p.account, available: false, problem, canHalt: false, canResume: false };
}

/** A venue's clock as the page shows it: whole milliseconds, the uncertainty rounded up. */
export function clockView(estimate: ClockEstimate | undefined, source: string | undefined): VenueRow["clock"] {
  if (!estimate || source === undefined) return null;
  return { offsetMs: Math.round(estimate.offsetMs), uncertaintyMs: Math.ceil(halfWidthMs(estimate)), source };
}

export function jobRow(job: Job, last: JobRow["last"]): JobRow {
  const { name, cron, venue, account, method, path } = job;
  return { name, cron, venue, account, method, path, last };
}

/** A run as the page shows it: how long it took, and the size of the answer it kept. */
export function runRow(run: RunView): RunRow {
  const { scheduled_at, status, attempts, offset_ms, error } = run;
  const durationMs = run.ended_at === null ? null : Date.parse(run.ended_at) - Date.parse(run.started_at);
  // A JSON answer is kept as its value (core/job-runs.ts `bodyValue`): its size is that of its JSON text again.
  const text = run.body === null ? null : typeof run.body === "string" ? run.body : JSON.stringify(run.body);
  const bytes = text === null ? null : new TextEncoder().encode(text).length;
  return { scheduled_at, status, attempts, offset_ms, error, durationMs, bytes, truncated: run.body_truncated };
}

/** Deliveries as the page lists them: whether a dead one is safe to send again, when that is known. */
export function deliveryRows<T extends { retry_safe: boolean | null }>(rows: readonly T[]) {
  return rows.map((d) => ({ ...d, retrySafe: d.retry_safe ?? undefined }));
}

/** One list: the dead deliveries first, then the latest others, each once. */
export function oneList(dead: readonly DeliveryRow[], recent: readonly DeliveryRow[]): DeliveryRow[] {
  const ids = new Set(dead.map((d) => d.id));
  return [...dead, ...recent.filter((d) => d.state !== "dead" && !ids.has(d.id))];
}
