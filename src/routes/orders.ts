/**
 * `GET /orders`: the order ledger (docs/orders.md), newest first, filtered, a page at a time with a cursor, or the
 * whole match as NDJSON (`Accept: application/x-ndjson`). Allowed by the token allow-list (`GET /orders`) and scoped:
 * a token sees only the rows of the accounts its allow-list can reach through the relay.
 */

import { exportOrders, listOrders } from "../adapters/ledger.ts";
import { namedAccounts } from "../config.ts";
import { isQueryProblem, parseLedgerQuery } from "../core/ledger.ts";
import { reachableAccounts } from "../core/tokens.ts";
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
  const scope = reachableAccounts(token.allow, namedAccounts(setup));
  if (wantsNdjson(request)) {
    return new Response(exportOrders(env, query, scope), { headers: { "content-type": `${NDJSON}; charset=utf-8` } });
  }
  return Response.json(await listOrders(env, query, scope));
}

/** The export when `Accept` names NDJSON first; a page of JSON otherwise. */
function wantsNdjson(request: Request): boolean {
  const first = (request.headers.get("accept") ?? "").split(",")[0] ?? "";
  return first.split(";")[0]?.trim().toLowerCase() === NDJSON;
}
