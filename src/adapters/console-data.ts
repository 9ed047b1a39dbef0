/**
 * Everything the console shows, read from the adapters. Each panel needs the read the API would need for the same
 * data (`GET /accounts`, `/jobs`, `/deliveries`, `/alerts`), and each fails on its own: a D1 that does not answer
 * leaves the halt buttons, which need only the accounts' gates, on the page. The shaping is console/data.ts.
 */
import { type Config, healthProblems, namedAccounts } from "../config.ts";
import {
  accountRow,
  clockView,
  deliveryRows,
  jobRow,
  notice,
  oneList,
  runRow,
  unavailableRow,
} from "../console/data.ts";
import type { AccountRow, ConsoleData, FeedView, VenueRow } from "../console/page.ts";
import { ledgerFields } from "../core/ledger.ts";
import { type AllowRule, allows, reachableAccounts } from "../core/tokens.ts";
import type { VenueConfig } from "../core/venue-config.ts";
import { config } from "../runtime.ts";
import { recentAlerts } from "./alerts.ts";
import { preparedClock } from "./client.ts";
import { clockHistory } from "./clock-history.ts";
import { listDeliveries, readDeadLetter, readDelivery } from "./delivery-store.ts";
import { accountState } from "./halts.ts";
import { lastRun, listRuns } from "./job-store.ts";
import { listOrders } from "./ledger.ts";
import { errorName, log } from "./log.ts";
import { feedObject } from "./market-feed.ts";
import { STEP_ALERT_MS } from "./venue-clock.ts";

const DAY_MS = 86_400_000;

/** Who is looking: the session's token, what it is allowed, and its CSRF token for the page's forms. */
export interface Viewer {
  token: string;
  allow: readonly AllowRule[];
  csrf: string;
}

/** The panels' reads: each one shown only to a token allowed its API route, and each failing on its own. */
class Panels {
  readonly notes: string[] = [];
  readonly viewer: Viewer;

  constructor(viewer: Viewer) {
    this.viewer = viewer;
  }

  readable(path: string): boolean {
    const ok = allows(this.viewer.allow, "GET", path);
    if (!ok) this.notes.push(`Not shown: token ${this.viewer.token} is not allowed GET ${path}.`);
    return ok;
  }

  async safe<T>(what: string, fallback: T, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      log("error", { event: "console_panel_failed", panel: what, error: errorName(err) });
      this.notes.push(`${what} could not be read just now; reload to try again.`);
      return fallback;
    }
  }
}

async function venueRows(env: Env, setup: Config, panels: Panels, now: number): Promise<VenueRow[]> {
  return Promise.all(
    setup.profiles.names.map(async (name) => {
      const venue = setup.venues[name];
      const clock = venue ? await preparedClock(env, name) : undefined;
      return {
        name,
        configured: venue !== undefined,
        windowSeconds: venue?.windowSeconds ?? null,
        clock: clockView(clock?.estimator.estimate(now), clock?.source),
        history: venue
          ? await panels.safe(`The ${name} clock history`, [], () => clockHistory(env.DB, name, now - DAY_MS))
          : [],
        stepAlertMs: STEP_ALERT_MS,
      };
    }),
  );
}

async function accountRows(env: Env, setup: Config, allow: readonly AllowRule[]): Promise<AccountRow[]> {
  const rows = await Promise.all(
    [...setup.accounts.values()].map(async (a) => {
      const [state, feed] = await Promise.all([accountState(env, a), feedView(env, a)]);
      return { ...accountRow(a, state, allow), ...(feed === undefined ? {} : { feed }) };
    }),
  );
  return [...rows, ...setup.venueProblems.map(unavailableRow)];
}

/** An account's feed state for its row: undefined without a feed, null when its object did not answer. */
async function feedView(env: Env, a: VenueConfig): Promise<FeedView | null | undefined> {
  if (!a.feed) return undefined;
  try {
    const s = await feedObject(env, a.profile.name, a.account).status();
    return {
      upstream: s.upstream,
      bots: s.bots,
      subscriptions: s.subscriptions,
      lastMessageAgeMs: s.last_message_age_ms,
    };
  } catch (err) {
    log("warn", { event: "console_panel_failed", panel: "feed", error: errorName(err) });
    return null;
  }
}

/** The console's ledger panel: the latest 20 rows the viewer may see. */
const LATEST_ORDERS = { limit: 20 } as const;

/** Everything the console page shows, for `viewer`, at `url` (its `?done=` notice and `?job=` selection). */
export async function consoleData(env: Env, url: URL, viewer: Viewer): Promise<ConsoleData> {
  const setup = config(env);
  const now = Date.now();
  const panels = new Panels(viewer);
  const venues = await venueRows(env, setup, panels, now);
  const accounts = panels.readable("/accounts") ? await accountRows(env, setup, viewer.allow) : [];
  const jobsShown = panels.readable("/jobs");
  const jobs = jobsShown
    ? await panels.safe("The jobs", [], () =>
        Promise.all(setup.jobs.jobs.map(async (job) => jobRow(job, await lastRun(env.DB, job.name)))),
      )
    : [];
  const selected = jobsShown ? setup.jobs.jobs.find((job) => job.name === url.searchParams.get("job")) : undefined;
  const deliveriesShown = panels.readable("/deliveries");
  const [deliveries, dead, alerts] = await Promise.all([
    deliveriesShown
      ? panels.safe("The deliveries", [], () => listDeliveries(env, undefined, 20).then(deliveryRows))
      : [],
    deliveriesShown
      ? panels.safe("The dead letters", [], () => listDeliveries(env, "dead", 20).then(deliveryRows))
      : [],
    panels.readable("/alerts") ? panels.safe("The alerts", [], () => recentAlerts(env.DB, 20)) : [],
  ]);
  const orders = panels.readable("/orders")
    ? await panels.safe("The latest orders", [], async () => {
        const scope = reachableAccounts(viewer.allow, namedAccounts(setup));
        return (await listOrders(env, { ...LATEST_ORDERS }, scope)).orders;
      })
    : undefined;
  const runs = selected
    ? await panels.safe("The job's runs", [], async () =>
        (await listRuns(env.DB, selected.name, 20, Number.MAX_SAFE_INTEGER)).runs.map(runRow),
      )
    : [];
  return {
    token: viewer.token,
    csrf: viewer.csrf,
    now,
    notice: notice(url),
    notes: panels.notes,
    problems: healthProblems(setup),
    venues,
    accounts,
    jobs,
    selectedJob: selected ? { name: selected.name, method: selected.method, path: selected.path, runs } : undefined,
    deliveries: oneList(dead, deliveries),
    canRedrive: (id) => allows(viewer.allow, "POST", `/deliveries/${id}/retry`),
    canTestAlert: allows(viewer.allow, "POST", "/alerts/test"),
    canHaltAll: allows(viewer.allow, "PUT", "/halt"),
    canResumeAll: allows(viewer.allow, "DELETE", "/halt"),
    alerts,
    orders,
  };
}

/** What a re-drive of `id` would send, for its confirmation; or why it cannot be re-driven. */
export async function redrivePreview(
  env: Env,
  id: string,
): Promise<{ method: string; target: string; path: string; order: [string, string][] } | "not_found" | "not_dead"> {
  const [delivery, message] = await Promise.all([readDelivery(env, id), readDeadLetter(env, id)]);
  if (!delivery) return "not_found";
  if (delivery.state !== "dead" || !message) return "not_dead";
  const order = Object.entries(ledgerFields(message.body)).map(([k, v]): [string, string] => [k, String(v)]);
  return {
    method: message.method,
    target: `${message.venue}/${message.account ?? "default"}`,
    path: message.path,
    order,
  };
}
