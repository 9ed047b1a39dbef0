/**
 * The accounts: `GET /accounts` lists every account per venue (available or which binding is wrong), its rate limit,
 * `read_only`, guards, and halt; `PUT|DELETE /accounts/<venue>/<account>/halt` halts or resumes one account, and
 * `PUT|DELETE /halt` every configured account. Token-protected like every route: the allow-lists decide who may
 * halt. The halt lives in each account's gate (adapters/rate-gate.ts), so it is durable and every isolate sees it on
 * its next order.
 */
import { raiseLater } from "../adapters/alerts.ts";
import { accountGate } from "../adapters/client.ts";
import { errorName, log } from "../adapters/log.ts";
import type { Halt, HaltScope } from "../adapters/rate-gate.ts";
import { config } from "../config.ts";
import { events } from "../core/alerts.ts";
import { accountKey, VENUES, type VenueConfig } from "../core/venue.ts";
import { authenticate } from "./auth.ts";
import { HttpError, readBody } from "./http.ts";

export async function accounts(request: Request, env: Env): Promise<Response> {
  await authenticate(request, env, "GET", "/accounts");
  const setup = config(env);
  const available = await Promise.all(
    [...setup.accounts.values()].map(async (a) => {
      const { guards, readOnly, configured } = a.rules;
      return {
        venue: a.profile.name,
        name: a.account,
        available: true,
        rate_limit_per_second: a.pacing?.limit ?? null,
        burst: a.pacing?.burst ?? null,
        read_only: readOnly,
        guards: configured ?? null,
        ...(typeof guards === "string" ? { guards_problem: guards } : {}),
        ...(await gateState(env, a)),
      };
    }),
  );
  const unavailable = setup.venueProblems.map((p) => ({
    venue: p.venue,
    name: p.account,
    available: false,
    problem: { binding: p.binding, message: p.message },
  }));
  // An account whose gate did not answer may be halted: the answer says so, and is not a 200.
  const status = available.some((a) => "halt_error" in a) ? 503 : 200;
  return Response.json({ accounts: [...available, ...unavailable] }, { status });
}

/** The account's halt and orders counted in the last minute, from its gate. */
async function gateState(env: Env, account: VenueConfig) {
  try {
    const { halt, haltAll, ordersLastMinute } = await accountGate(env, account.profile.name, account.account).state();
    return { halted: halt !== null || haltAll !== null, halt, halt_all: haltAll, orders_last_minute: ordersLastMinute };
  } catch (err) {
    log("error", {
      event: "gate_unavailable",
      venue: account.profile.name,
      account: account.account,
      error: errorName(err),
    });
    return { halted: null, halt: null, halt_all: null, halt_error: "the account's gate did not answer; try again" };
  }
}

/** The halt's reason: a JSON body `{"reason": "…"}` of 1-200 printable characters. */
async function haltReason(request: Request): Promise<string> {
  const body = await readBody(request, 4096);
  let reason: unknown;
  try {
    reason = body ? Reflect.get(Object(JSON.parse(new TextDecoder().decode(body))), "reason") : undefined;
  } catch {
    throw new HttpError(400, "bad_json", 'the body must be JSON: {"reason": "why"}');
  }
  if (typeof reason !== "string" || !/^[^\p{Cc}]{1,200}$/u.test(reason) || reason.trim() === "") {
    throw new HttpError(400, "bad_reason", 'say why: {"reason": "…"}, 1-200 characters, no control characters');
  }
  return reason;
}

/**
 * Sets or lifts the halt on `targets`; answers each account's halt after the change. An account whose gate does not
 * answer is reported as such and the answer is 503, so a halt that did not take is never mistaken for one that did.
 */
async function applyHalt(
  env: Env,
  ctx: ExecutionContext,
  targets: VenueConfig[],
  halt: Halt | null,
  scope: HaltScope,
  token: string,
): Promise<Response> {
  const results = await Promise.all(
    targets.map(async (a) => {
      const venue = a.profile.name;
      let before: Halt | null;
      try {
        before = await accountGate(env, venue, a.account).setHalt(halt, scope);
      } catch (err) {
        log("error", { event: "gate_unavailable", venue, account: a.account, error: errorName(err) });
        return { venue, name: a.account, error: "the account's gate did not answer; nothing changed, try again" };
      }
      log("warn", {
        event: halt ? "halt" : "resume",
        venue,
        account: a.account,
        by: `token:${token}`,
        reason: halt?.reason,
        was_halted: before !== null,
      });
      const by = `token:${token}`;
      raiseLater(
        env,
        ctx,
        halt ? events.halted(venue, a.account, by, halt.reason) : events.resumed(venue, a.account, by),
      );
      return { venue, name: a.account, scope, halt, was: before };
    }),
  );
  return Response.json({ accounts: results }, { status: results.some((r) => "error" in r) ? 503 : 200 });
}

/** `PUT|DELETE /accounts/<venue>/<account>/halt`. */
export async function haltAccount(
  venue: string,
  name: string,
  request: Request,
  env: Env,
  ctx: ExecutionContext,
): Promise<Response> {
  const method = request.method.toUpperCase();
  if (method !== "PUT" && method !== "DELETE") {
    throw new HttpError(405, "method_not_allowed", "PUT halts the account, DELETE resumes it");
  }
  const token = await authenticate(request, env, method, `/accounts/${venue}/${name}/halt`);
  const known = VENUES.find((v) => v === venue);
  const account = known && config(env).accounts.get(accountKey(known, name));
  if (!account) throw new HttpError(404, "no_such_account", `no available account ${venue}/${name}; see GET /accounts`);
  const halt = method === "PUT" ? { reason: await haltReason(request), by: token, at: new Date().toISOString() } : null;
  return applyHalt(env, ctx, [account], halt, "account", token);
}

/**
 * `PUT|DELETE /halt`: every account configured now (one added later starts unhalted). This halt is apart from each
 * account's own: lifting it leaves an account halted on its own still halted, and setting it overwrites none.
 */
export async function haltAll(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const method = request.method.toUpperCase();
  if (method !== "PUT" && method !== "DELETE") {
    throw new HttpError(405, "method_not_allowed", "PUT halts every account, DELETE resumes every account");
  }
  const token = await authenticate(request, env, method, "/halt");
  const halt = method === "PUT" ? { reason: await haltReason(request), by: token, at: new Date().toISOString() } : null;
  return applyHalt(env, ctx, [...config(env).accounts.values()], halt, "all", token);
}
