/**
 * The accounts: `GET /accounts` lists every account per venue (available or which binding is wrong), its rate limit,
 * `read_only`, guards, and halt; `PUT|DELETE /accounts/<venue>/<account>/halt` halts or resumes one account, and
 * `PUT|DELETE /halt` every configured account. Token-protected like every route: the allow-lists decide who may
 * halt. The halt lives in each account's gate (adapters/rate-gate.ts), so it is durable and every isolate sees it on
 * its next order.
 */
import { accountState, applyHalt } from "../adapters/halts.ts";
import type { Halt, HaltScope } from "../adapters/rate-gate.ts";
import { parseHaltReason } from "../core/guards.ts";
import { accountKey, type VenueConfig } from "../core/venue-config.ts";
import { config } from "../runtime.ts";
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

/** The account's halts and orders counted in the last minute, from its gate. */
async function gateState(env: Env, account: VenueConfig) {
  const { halt, haltAll, ordersLastMinute, error } = await accountState(env, account);
  if (error) return { halted: null, halt: null, halt_all: null, halt_error: error };
  return { halted: halt !== null || haltAll !== null, halt, halt_all: haltAll, orders_last_minute: ordersLastMinute };
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
  const parsed = parseHaltReason(reason);
  if (!parsed.ok) throw new HttpError(400, "bad_reason", parsed.problem);
  return parsed.value;
}

/** Answers a halt call: each account's halt after it; 503 if any account's gate did not answer. */
async function halted(
  env: Env,
  ctx: ExecutionContext,
  targets: VenueConfig[],
  halt: Halt | null,
  scope: HaltScope,
  token: string,
): Promise<Response> {
  const results = await applyHalt(env, ctx, targets, halt, scope, `token:${token}`);
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
  const account = config(env).accounts.get(accountKey(venue, name));
  if (!account) throw new HttpError(404, "no_such_account", `no available account ${venue}/${name}; see GET /accounts`);
  const halt = method === "PUT" ? { reason: await haltReason(request), by: token, at: new Date().toISOString() } : null;
  return halted(env, ctx, [account], halt, "account", token);
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
  return halted(env, ctx, [...config(env).accounts.values()], halt, "all", token);
}
