/**
 * `GET /orders`: the order ledger (docs/orders.md), newest first, filtered, a page at a time with a cursor, or the
 * whole match as NDJSON (`Accept: application/x-ndjson`). Allowed by the token allow-list (`GET /orders`) and scoped:
 * a token sees only the rows of the accounts its allow-list can reach through the relay.
 */

import { exportOrders, listOrders } from "../adapters/ledger.ts";
import type { Config } from "../config.ts";
import { isQueryProblem, parseLedgerQuery } from "../core/ledger.ts";
import { type RelayAccount, reachableAccounts } from "../core/tokens.ts";
import { config } from "../runtime.ts";
import { authenticateEntry } from "./auth.ts";
import { HttpError } from "./http.ts";

const NDJSON = "application/x-ndjson";

export async function orders(request: Request, env: Env): Promise<Response> {
  const token = await authenticateEntry(request, env, "GET", "/orders");
  const setup = config(env);
  const query = parseLedgerQuery(new URL(request.url).searchParams, setup.profiles.names);
  if (isQueryProblem(query)) {
    throw new HttpError(400, "bad_parameter", `${query.parameter}: ${query.message}`, undefined, {
      parameter: query.parameter,
    });
  }
  const scope = reachableAccounts(token.allow, knownAccounts(setup));
  if (wantsNdjson(request)) {
    return new Response(exportOrders(env, query, scope), { headers: { "content-type": `${NDJSON}; charset=utf-8` } });
  }
  return Response.json(await listOrders(env, query, scope));
}

/** Every account the configuration names: each venue's default, the available ones and the broken ones. */
function knownAccounts(setup: Config): RelayAccount[] {
  const keys = new Set([
    ...setup.profiles.list.map((p) => `${p.name}/default`),
    ...setup.accounts.keys(),
    ...setup.broken,
  ]);
  return [...keys].flatMap((key) => {
    const [venue = "", account = ""] = key.split("/");
    const profile = setup.profiles.get(venue);
    return profile ? [{ venue, account, apiPrefix: profile.apiPrefix }] : [];
  });
}

/** The export when `Accept` names NDJSON first; a page of JSON otherwise. */
function wantsNdjson(request: Request): boolean {
  const first = (request.headers.get("accept") ?? "").split(",")[0] ?? "";
  return first.split(";")[0]?.trim().toLowerCase() === NDJSON;
}
