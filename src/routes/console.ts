/**
 * `/console`: the operator's page. `GET /console` shows the login form, or the console for a valid session;
 * `POST /console/login` exchanges a relay token (allowed `GET /console`) for a session cookie; `POST /console/logout`
 * ends it; `POST /console/halt|resume|redrive` act, each allowed only if the session's token is allowed the same
 * API route (`PUT|DELETE /accounts/<venue>/<account>/halt`, `POST /deliveries/<id>/retry`). Every POST must carry
 * the session's CSRF token and, when the browser sends one, this origin. Every answer carries a strict CSP.
 */

import { recentAlerts } from "../adapters/alerts.ts";
import { preparedClock } from "../adapters/client.ts";
import { clockHistory } from "../adapters/clock-history.ts";
import { listDeliveries, redrive } from "../adapters/deliveries.ts";
import { accountState, applyHalt } from "../adapters/halts.ts";
import { lastRun, listRuns } from "../adapters/jobs.ts";
import { config, healthProblems } from "../config.ts";
import { type AccountRow, type ConsoleData, consolePage, loginPage } from "../console/page.ts";
import {
  csrfMatches,
  csrfToken,
  issueSession,
  readSession,
  sessionCookie,
  sessionFrom,
  sessionKey,
} from "../console/session.ts";
import { haltReasonProblem } from "../core/guards.ts";
import { type AllowRule, allows } from "../core/tokens.ts";
import { accountKey, VENUES } from "../core/venue.ts";
import { halfWidthMs } from "../lib/index.ts";
import { limitInbound } from "./auth.ts";
import { HttpError, readBody } from "./http.ts";

const DAY_MS = 86_400_000;

/** The security headers of every console answer: nothing but the page's own style, no framing, no caching. */
function headers(nonce: string, extra: Record<string, string> = {}): Headers {
  return new Headers({
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": `default-src 'none'; style-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    ...extra,
  });
}

function page(status: number, render: (nonce: string) => string, extra?: Record<string, string>): Response {
  const nonce = crypto.randomUUID().replaceAll("-", "");
  return new Response(render(nonce), { status, headers: headers(nonce, extra) });
}

function seeOther(location: string, extra: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { location, "cache-control": "no-store", ...extra } });
}

interface Session {
  name: string;
  allow: readonly AllowRule[];
  value: string;
  key: CryptoKey;
}

/** The request's session, if it has a valid one for a token that still exists and is still allowed `GET /console`. */
async function session(request: Request, env: Env): Promise<Session | undefined> {
  const { tokens } = config(env);
  const value = sessionFrom(request);
  if (!tokens || !value) return undefined;
  const key = await sessionKey(tokens);
  const name = await readSession(key, value, Date.now());
  const entry = name === undefined ? undefined : tokens.entries.find((e) => e.name === name);
  if (!entry || !allows(entry.allow, "GET", "/console")) return undefined;
  return { name: entry.name, allow: entry.allow, value, key };
}

/** A form body (application/x-www-form-urlencoded, at most 4 KiB). */
async function form(request: Request): Promise<URLSearchParams> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(request.headers.get("content-type") ?? "")) {
    throw new HttpError(415, "unsupported_media_type", "console forms are application/x-www-form-urlencoded");
  }
  const body = await readBody(request, 4096);
  return new URLSearchParams(body ? new TextDecoder().decode(body) : "");
}

/** A cross-site POST is refused, whatever it carries: the browser names its origin, and it must be this one. */
function sameOrigin(request: Request): boolean {
  const origin = request.headers.get("origin");
  const site = request.headers.get("sec-fetch-site");
  return (origin === null || origin === new URL(request.url).origin) && (site === null || site === "same-origin");
}

/** `GET /console`. */
export async function consoleGet(request: Request, env: Env): Promise<Response> {
  if (!config(env).tokens) {
    return page(503, (nonce) => loginPage(nonce, "RELAY_TOKENS is not usable; see GET /health."));
  }
  const s = await session(request, env);
  if (!s)
    return page(200, (nonce) =>
      loginPage(nonce, sessionFrom(request) ? "The session has ended; log in again." : undefined),
    );
  const data = await consoleData(request, env, s);
  return page(200, (nonce) => consolePage(nonce, data));
}

/** `POST /console/login`: a token allowed `GET /console` becomes a session cookie. */
export async function consoleLogin(request: Request, env: Env): Promise<Response> {
  const { tokens } = config(env);
  if (!tokens) return page(503, (nonce) => loginPage(nonce, "RELAY_TOKENS is not usable; see GET /health."));
  if (!sameOrigin(request)) return page(403, (nonce) => loginPage(nonce, "Log in from this page."));
  const token = (await form(request)).get("token") ?? "";
  const entry = token.length > 0 && token.length <= 512 ? await tokens.match(token) : undefined;
  if (!entry) return page(401, (nonce) => loginPage(nonce, "Unknown token."));
  await limitInbound(env, `token:${entry.name}`);
  if (!allows(entry.allow, "GET", "/console")) {
    return page(403, (nonce) => loginPage(nonce, `Token "${entry.name}" is not allowed GET /console.`));
  }
  const value = await issueSession(await sessionKey(tokens), entry.name, Date.now());
  return seeOther("/console", { "set-cookie": sessionCookie(value) });
}

/** What a console action came to, for the notice on the page it returns to. */
const NOTICES: Record<string, string> = {
  halted: "Halted",
  resumed: "Resumed",
  redriven: "Re-driven (queued again)",
  not_dead: "Not re-driven: the delivery is not dead-lettered",
  forbidden: "Not allowed for this token",
  bad_reason: "A halt needs a reason (1-200 characters)",
  failed: "It did not take: the account's gate or the queue did not answer; try again",
  unknown: "No such account or delivery",
};
const SUBJECT = /^([a-z]+\/[a-z0-9-]{1,32}|sg-[0-9a-f]{29})$/;

function notice(url: URL): string | undefined {
  const text = NOTICES[url.searchParams.get("done") ?? ""];
  const subject = url.searchParams.get("subject") ?? "";
  return text && SUBJECT.test(subject) ? `${text}: ${subject}` : text;
}

const back = (done: keyof typeof NOTICES, subject: string) =>
  seeOther(`/console?done=${done}&subject=${encodeURIComponent(subject)}`);

/** `POST /console/logout|halt|resume|redrive`. */
export async function consoleAction(
  action: string,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
): Promise<Response> {
  const s = await session(request, env);
  if (!s) return seeOther("/console");
  const fields = await form(request);
  if (!sameOrigin(request) || !(await csrfMatches(s.key, s.value, fields.get("csrf") ?? ""))) {
    throw new HttpError(403, "csrf", "the form is stale or from elsewhere; reload the console");
  }
  await limitInbound(env, `token:${s.name}`);
  const by = `token:${s.name}`;
  if (action === "logout") return seeOther("/console", { "set-cookie": sessionCookie(null) });
  if (action === "redrive") {
    const id = fields.get("id") ?? "";
    if (!SUBJECT.test(id) || !id.startsWith("sg-")) return back("unknown", "");
    if (!allows(s.allow, "POST", `/deliveries/${id}/retry`)) return back("forbidden", id);
    try {
      const outcome = await redrive(env, id, by, Date.now());
      return back(outcome === "not_found" ? "unknown" : outcome === "not_dead" ? "not_dead" : "redriven", id);
    } catch {
      return back("failed", id);
    }
  }
  if (action !== "halt" && action !== "resume") throw new HttpError(404, "not_found", "no such console action");
  const venue = VENUES.find((v) => v === fields.get("venue"));
  const name = fields.get("account") ?? "";
  const account = venue && config(env).accounts.get(accountKey(venue, name));
  if (!venue || !account) return back("unknown", "");
  const subject = `${venue}/${name}`;
  const method = action === "halt" ? "PUT" : "DELETE";
  if (!allows(s.allow, method, `/accounts/${venue}/${name}/halt`)) return back("forbidden", subject);
  const reason = fields.get("reason") ?? "";
  if (action === "halt" && haltReasonProblem(reason)) return back("bad_reason", subject);
  const halt = action === "halt" ? { reason, by: s.name, at: new Date().toISOString() } : null;
  const [result] = await applyHalt(env, ctx, [account], halt, "account", by);
  return back(result && "error" in result ? "failed" : action === "halt" ? "halted" : "resumed", subject);
}

async function consoleData(request: Request, env: Env, s: Session): Promise<ConsoleData> {
  const setup = config(env);
  const now = Date.now();
  const url = new URL(request.url);
  const venues = await Promise.all(
    VENUES.map(async (name) => {
      const venue = setup.venues[name];
      const clock = venue ? await preparedClock(env, name) : undefined;
      const estimate = clock?.estimator.estimate(now);
      return {
        name,
        configured: venue !== undefined,
        windowSeconds: venue?.windowSeconds ?? null,
        clock:
          estimate && clock
            ? {
                offsetMs: Math.round(estimate.offsetMs),
                uncertaintyMs: Math.ceil(halfWidthMs(estimate)),
                source: clock.source,
              }
            : null,
        history: venue ? await clockHistory(env.DB, name, now - DAY_MS) : [],
      };
    }),
  );
  const available: AccountRow[] = await Promise.all(
    [...setup.accounts.values()].map(async (a) => {
      const state = await accountState(env, a);
      const { guards, readOnly, configured } = a.rules;
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
        canHalt: allows(s.allow, "PUT", `/accounts/${a.profile.name}/${a.account}/halt`),
      };
    }),
  );
  const unavailable: AccountRow[] = setup.venueProblems.map((p) => ({
    venue: p.venue,
    name: p.account,
    available: false,
    problem: { binding: p.binding, message: p.message },
    canHalt: false,
  }));
  const jobs = await Promise.all(
    setup.jobs.jobs.map(async (job) => ({
      name: job.name,
      cron: job.cron,
      venue: job.venue,
      account: job.account,
      last: await lastRun(env.DB, job.name),
    })),
  );
  const selected = setup.jobs.jobs.find((job) => job.name === url.searchParams.get("job"));
  const [deliveries, dead, alerts] = await Promise.all([
    listDeliveries(env, undefined, 20),
    listDeliveries(env, "dead", 20),
    recentAlerts(env.DB, 20),
  ]);
  return {
    token: s.name,
    csrf: await csrfToken(s.key, s.value),
    now,
    notice: notice(url),
    problems: healthProblems(setup),
    venues,
    accounts: [...available, ...unavailable],
    jobs,
    selectedJob: selected
      ? { name: selected.name, runs: (await listRuns(env.DB, selected.name, 20, Number.MAX_SAFE_INTEGER)).runs }
      : undefined,
    deliveries,
    dead,
    canRedrive: (id) => allows(s.allow, "POST", `/deliveries/${id}/retry`),
    alerts,
  };
}
