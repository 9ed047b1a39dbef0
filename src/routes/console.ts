/**
 * `/console`: the operator's page. `GET /console` shows the login form, or the console for a valid session;
 * `POST /console/login` exchanges a relay token (allowed `GET /console`) for a session cookie; `POST /console/logout`
 * ends it (recorded in D1, so that a copy of the cookie is refused too); `POST /console/halt|resume|redrive|halt-all|
 * resume-all` act, each allowed only if the session's token is allowed the same API route
 * (`PUT|DELETE /accounts/<venue>/<account>/halt`, `POST /deliveries/<id>/retry`, `PUT|DELETE /halt`). A re-drive and
 * the halts of every account first answer with a confirmation page naming what they will do; its form (with
 * `confirm=yes`) does it. Every POST must carry the
 * session's CSRF token and, when the browser sends one, this origin. Every answer carries a strict CSP. HTTP only:
 * the page's data is read by adapters/console-data.ts and shaped by console/data.ts.
 */

import { sendTestAlert } from "../adapters/alerts.ts";
import { consoleData, redrivePreview } from "../adapters/console-data.ts";
import { loggedOut, recordLogout } from "../adapters/console-sessions.ts";
import { redrive } from "../adapters/deliveries.ts";
import { applyHalt } from "../adapters/halts.ts";
import { errorName, log } from "../adapters/log.ts";
import type { NOTICES } from "../console/data.ts";
import { type ConfirmLine, confirmPage, consolePage, loginPage } from "../console/page.ts";
import {
  csrfMatches,
  csrfToken,
  issueSession,
  readSession,
  sessionCookie,
  sessionFrom,
  sessionKey,
} from "../console/session.ts";
import { parseHaltReason } from "../core/guards.ts";
import { DELIVERY_ID } from "../core/hooks.ts";
import { type AllowRule, allows } from "../core/tokens.ts";
import { accountKey } from "../core/venue-config.ts";
import { config, runtime } from "../runtime.ts";
import { limitInbound } from "./auth.ts";
import { HttpError, readBody } from "./http.ts";

/** The security headers of every console answer: nothing but the page's own style and script, no framing, no caching. */
function headers(nonce: string, extra: Record<string, string> = {}): Headers {
  return new Headers({
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    // same-origin, not no-referrer: under no-referrer a browser sends `Origin: null` on the console's own forms,
    // which the origin check must refuse. Nothing is ever sent to another origin anyway.
    "referrer-policy": "same-origin",
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
  expiresAt: number;
  allow: readonly AllowRule[];
  value: string;
  key: CryptoKey;
}

/**
 * The request's session, if it has a valid one for a token that still exists, is still allowed `GET /console`, and
 * was not logged out. `failClosed`: whether a session D1 cannot vouch for (down, or slow) is refused. The page and
 * the halt button take it (an operator must be able to halt while D1 is down); resume and re-drive refuse it.
 */
async function session(request: Request, env: Env, failClosed: boolean): Promise<Session | undefined> {
  const { tokens, consoleSecret } = config(env);
  const value = sessionFrom(request);
  if (!tokens || !consoleSecret || !value) return undefined;
  const key = await runtime(env).key("session", () => sessionKey(tokens, consoleSecret));
  const read = await readSession(key, value, Date.now());
  const entry = read === undefined ? undefined : tokens.entries.find((e) => e.name === read.name);
  if (!read || !entry || !allows(entry.allow, "GET", "/console")) return undefined;
  if (await loggedOut(env.DB, value, failClosed)) return undefined;
  return { name: entry.name, expiresAt: read.expiresAt, allow: entry.allow, value, key };
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

/** Why the console cannot be used at all, if it cannot. */
function unusable(env: Env): string | undefined {
  const { tokens, consoleSecret } = config(env);
  if (!tokens) return "RELAY_TOKENS is not usable; see GET /health.";
  if (!consoleSecret) return "The console is off: set CONSOLE_SESSION_SECRET (32 or more random characters).";
  return undefined;
}

/** `GET /console`. */
export async function consoleGet(request: Request, env: Env): Promise<Response> {
  const off = unusable(env);
  if (off) return page(503, (nonce) => loginPage(nonce, off));
  const s = await session(request, env, false);
  if (!s) {
    const unrecorded = new URL(request.url).searchParams.get("done") === "logout_unrecorded";
    const why = unrecorded
      ? "Logged out in this browser, but the logout could not be recorded: a copy of the cookie stays valid until it expires (30 minutes at most)."
      : sessionFrom(request)
        ? "The session has ended; log in again."
        : undefined;
    return page(200, (nonce) => loginPage(nonce, why));
  }
  const viewer = { token: s.name, allow: s.allow, csrf: await csrfToken(s.key, s.value) };
  const data = await consoleData(env, new URL(request.url), viewer);
  return page(200, (nonce) => consolePage(nonce, data));
}

/** `POST /console/login`: a token allowed `GET /console` becomes a session cookie. */
export async function consoleLogin(request: Request, env: Env): Promise<Response> {
  const { tokens, consoleSecret } = config(env);
  const off = unusable(env);
  if (off || !tokens || !consoleSecret) return page(503, (nonce) => loginPage(nonce, off));
  if (!sameOrigin(request)) return page(403, (nonce) => loginPage(nonce, "Log in from this page."));
  const token = (await form(request)).get("token") ?? "";
  const entry = token.length > 0 && token.length <= 512 ? await tokens.match(token) : undefined;
  if (!entry) return page(401, (nonce) => loginPage(nonce, "Unknown token."));
  await limitInbound(env, `token:${entry.name}`);
  if (!allows(entry.allow, "GET", "/console")) {
    return page(403, (nonce) => loginPage(nonce, `Token "${entry.name}" is not allowed GET /console.`));
  }
  const key = await runtime(env).key("session", () => sessionKey(tokens, consoleSecret));
  const value = await issueSession(key, entry.name, Date.now());
  return seeOther("/console", { "set-cookie": sessionCookie(value) });
}

/** Back to the console, with the notice for what the action came to (console/data.ts `NOTICES`). */
const back = (done: keyof typeof NOTICES, subject: string) =>
  seeOther(`/console?done=${done}&subject=${encodeURIComponent(subject)}`);

/** `POST /console/logout|halt|resume|redrive|halt-all|resume-all`. */
export async function consoleAction(
  action: string,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
): Promise<Response> {
  const s = await session(request, env, action === "resume" || action === "redrive" || action === "resume-all");
  if (!s) return seeOther("/console");
  const fields = await form(request);
  if (!sameOrigin(request) || !(await csrfMatches(s.key, s.value, fields.get("csrf") ?? ""))) {
    throw new HttpError(403, "csrf", "the form is stale or from elsewhere; reload the console");
  }
  await limitInbound(env, `token:${s.name}`);
  if (action === "logout") return logout(env, s);
  if (action === "redrive") return redriveAction(env, ctx, s, fields);
  if (action === "halt-all" || action === "resume-all") return everythingAction(action, env, ctx, s, fields);
  if (action === "halt" || action === "resume") return haltAction(action, env, ctx, s, fields);
  if (action === "alert-test") return alertTestAction(env, s);
  throw new HttpError(404, "not_found", "no such console action");
}

/** One `alert.test` to every sink (`POST /alerts/test`), and each sink's outcome in the notice. */
async function alertTestAction(env: Env, s: Session): Promise<Response> {
  if (!allows(s.allow, "POST", "/alerts/test")) return back("forbidden", "");
  const { sinks } = config(env).alerts;
  if (sinks.length === 0) return back("no_sinks", "");
  const { results } = await sendTestAlert(env, sinks, `token:${s.name}`);
  const summary = results.map((r) => `${r.sink}:${r.ok ? "sent" : "failed"}`).join(",");
  return back(results.every((r) => r.ok) ? "alert_sent" : "alert_failed", summary);
}

/** Deletes the cookie, and records the logout so that a copy of the cookie is refused too. */
async function logout(env: Env, s: Session): Promise<Response> {
  const recorded = await recordLogout(env.DB, s.value, s.expiresAt).then(
    () => true,
    (err: unknown) => {
      log("error", { event: "console_logout_unrecorded", token: s.name, error: errorName(err) });
      return false;
    },
  );
  const to = recorded ? "/console" : "/console?done=logout_unrecorded";
  return seeOther(to, { "set-cookie": sessionCookie(null) });
}

/** The confirmation page of an action, with the session's CSRF token in its form. */
async function confirm(s: Session, what: Omit<Parameters<typeof confirmPage>[1], "csrf">): Promise<Response> {
  const csrf = await csrfToken(s.key, s.value);
  return page(200, (nonce) => confirmPage(nonce, { ...what, csrf }));
}

/** The confirmation of a re-drive: the request it will send, and the body's order fields. */
async function redriveConfirmation(env: Env, s: Session, id: string, force: boolean): Promise<Response> {
  const preview = await redrivePreview(env, id);
  if (typeof preview === "string") return back(preview, id);
  const lines: ConfirmLine[] = [
    ["delivery", id],
    ["request", `${preview.method} ${preview.target} ${preview.path}`],
    ...(preview.order.length > 0 ? preview.order : [["order fields", "none"] as const]),
  ];
  if (force) lines.push(["send again anyway", "yes: it may have reached the venue already"]);
  const fields: Record<string, string> = force ? { id, force: "true" } : { id };
  const title = "Re-drive this delivery?";
  return confirm(s, { title, lines, action: "/console/redrive", fields, button: "Send it again" });
}

/** A re-drive: first a confirmation naming what will be sent, then (`confirm=yes`) the re-drive itself. */
async function redriveAction(env: Env, ctx: ExecutionContext, s: Session, fields: URLSearchParams) {
  const id = fields.get("id") ?? "";
  if (!DELIVERY_ID.test(id)) return back("unknown", "");
  if (!allows(s.allow, "POST", `/deliveries/${id}/retry`)) return back("forbidden", id);
  const force = fields.get("force") === "true";
  try {
    if (fields.get("confirm") !== "yes") return await redriveConfirmation(env, s, id, force);
    const work = redrive(env, id, `token:${s.name}`, Date.now(), force);
    ctx.waitUntil(work.catch(() => undefined)); // never stopped halfway by a browser that leaves
    const outcome = await work;
    return back(typeof outcome === "string" ? outcome : "redriven", id);
  } catch {
    return back("failed", id);
  }
}

/** One account's halt or resume (`PUT|DELETE /accounts/<venue>/<account>/halt`). */
async function haltAction(
  action: "halt" | "resume",
  env: Env,
  ctx: ExecutionContext,
  s: Session,
  fields: URLSearchParams,
) {
  const name = fields.get("account") ?? "";
  const account = config(env).accounts.get(accountKey(fields.get("venue") ?? "", name));
  if (!account) return back("unknown", "");
  const venue = account.profile.name;
  const subject = `${venue}/${name}`;
  const method = action === "halt" ? "PUT" : "DELETE";
  if (!allows(s.allow, method, `/accounts/${venue}/${name}/halt`)) return back("forbidden", subject);
  const reason = fields.get("reason") ?? "";
  if (action === "halt" && !parseHaltReason(reason).ok) return back("bad_reason", subject);
  const halt = action === "halt" ? { reason, by: s.name, at: new Date().toISOString() } : null;
  const [result] = await applyHalt(env, ctx, [account], halt, "account", `token:${s.name}`);
  return back(result && "error" in result ? "failed" : action === "halt" ? "halted" : "resumed", subject);
}

/** The halt of every account (`PUT|DELETE /halt`): first a confirmation naming the accounts, then (`confirm=yes`) it. */
async function everythingAction(
  action: "halt-all" | "resume-all",
  env: Env,
  ctx: ExecutionContext,
  s: Session,
  fields: URLSearchParams,
) {
  const halting = action === "halt-all";
  if (!allows(s.allow, halting ? "PUT" : "DELETE", "/halt")) return back("forbidden", "");
  const reason = fields.get("reason") ?? "";
  if (halting && !parseHaltReason(reason).ok) return back("bad_reason", "");
  const accounts = [...config(env).accounts.values()];
  if (fields.get("confirm") !== "yes") {
    const names = accounts.map((a) => `${a.profile.name}/${a.account}`).join(", ") || "none configured";
    const lines: ConfirmLine[] = [
      ["request", `${halting ? "PUT" : "DELETE"} /halt`],
      ["accounts", names],
    ];
    if (halting) lines.push(["reason", reason]);
    const title = halting ? "Halt every account?" : "Resume every account?";
    const button = halting ? "Halt everything" : "Resume everything";
    return confirm(s, { title, lines, action: `/console/${action}`, fields: halting ? { reason } : {}, button });
  }
  const halt = halting ? { reason, by: s.name, at: new Date().toISOString() } : null;
  const results = await applyHalt(env, ctx, accounts, halt, "all", `token:${s.name}`);
  if (results.some((r) => "error" in r)) return back("failed", "");
  return back(halting ? "halted_all" : "resumed_all", "");
}
