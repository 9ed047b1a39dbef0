/**
 * The simulated CDE venue (`/rest/...`). CDE's REST gateway is for risk and administration; orders go over FIX/SBE
 * (docs/protocol.md, "CDE"). So this is funding rates, positions, instrument details and the kill-switch lock.
 * Errors use CDE's `{"message"}` shape. docs/simulator.md lists every route.
 */
import {
  effects,
  effectsOf,
  isObject,
  iso,
  jsonBody,
  message,
  notFound,
  tradingLocked,
  type VenueRequest,
} from "./shared.ts";

/** The one firm the simulated keys belong to. */
const FIRM_UUID = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
/** The firm's clearing FCM, and its one trading user that the kill switch knows by uuid. */
const FCM_UUID = "8d0e4f6a-1b2c-4d3e-9f5a-6b7c8d9e0f02";
const TRADING_USER_UUID = "c4a1e7b9-5d2f-4e6a-8b3c-9d0e1f2a3b03";

/**
 * What `POST /rest/kill-switch` and `POST /rest/unlock-trading` know, per uuid field: the known uuid, what an
 * unknown one is called in the 404, and how many users a call for it affects (the firm and its FCM: both
 * simulated CDE accounts; the trading user: itself).
 */
const SCOPES = {
  fcm_uuid: { uuid: FCM_UUID, name: "FCM", users: 2 },
  firm_uuid: { uuid: FIRM_UUID, name: "Firm", users: 2 },
  trading_user_uuid: { uuid: TRADING_USER_UUID, name: "Trading user", users: 1 },
} as const;
type ScopeField = keyof typeof SCOPES;

/** How many orders a kill switch reports cancelled: CDE's orders live on FIX, which the simulator has none of. */
const ORDERS_CANCELED = 0;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const SYMBOLS = ["BIPZ30", "ETPZ30", "BIT-28NOV25-CDE"];

const POSITIONS = [{ symbol: "BIPZ30", firm_uuid: FIRM_UUID, long_qty: 3, short_qty: 0 }];

/** A subset of CDE's instrument details. docs/protocol.md gives no shape; the names follow the funding-rate style. */
const INSTRUMENTS = [
  ["BIPZ30", "BIP", 409, "Bitcoin", 0.01, 5, "2030-12-20"],
  ["ETPZ30", "ETP", 411, "Ether", 0.1, 0.5, "2030-12-20"],
  ["BIT-28NOV25-CDE", "BIT", 413, "Bitcoin", 0.01, 5, "2025-11-28"],
].map(([symbol, product_code, product_id, contract_unit, contract_size, tick_size, last_trading_date]) => ({
  product_id: product_id as number,
  instrument_id: (product_id as number) + 1,
  contract_type: "OUTRIGHT",
  product_group: "CRYPTO",
  symbol: symbol as string,
  product_code: product_code as string,
  trading_state: "OPEN",
  contract_unit: contract_unit as string,
  contract_size: contract_size as number,
  tick_size: tick_size as number,
  expiration_time: `${last_trading_date}T16:00`,
  last_trading_date: last_trading_date as string,
}));

/** `GET /rest/funding-rate?symbol=`: the current hour's rate for a known symbol. */
function fundingRate(req: VenueRequest): Response {
  const symbol = req.url.searchParams.get("symbol") ?? "";
  if (!SYMBOLS.includes(symbol)) return message(400, "Invalid symbol");
  const event_time = iso(Math.floor(req.nowMs / 3_600_000) * 3_600_000);
  return Response.json([
    {
      symbol,
      funding_rate: "0.000125",
      future_mark_price: "64012.5",
      spot_mark_price: "64000.0",
      fair_value_price: "64005.0",
      event_time,
    },
  ]);
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === "string");

/**
 * `POST /rest/instruments`: every instrument, or those matching the optional filter body. Each given list narrows
 * the result: `product_codes`, `symbols` (a trailing `*` matches a prefix), `instrument_ids`, `trading_states`.
 * Other keys are ignored.
 */
function instruments(req: VenueRequest): Response {
  let filter: unknown;
  try {
    filter = jsonBody(req.body) ?? {};
  } catch {
    return message(400, "Invalid request body");
  }
  if (!isObject(filter)) return message(400, "Invalid request body");
  const { product_codes, symbols, instrument_ids, trading_states } = filter;
  for (const [name, list] of Object.entries({ product_codes, symbols, trading_states })) {
    if (list !== undefined && !isStringList(list)) return message(400, `Invalid ${name}`);
  }
  if (instrument_ids !== undefined && !(Array.isArray(instrument_ids) && instrument_ids.every(Number.isInteger))) {
    return message(400, "Invalid instrument_ids");
  }
  const symbolMatches = (symbol: string) =>
    (symbols as string[]).some((s) => (s.endsWith("*") ? symbol.startsWith(s.slice(0, -1)) : symbol === s));
  const results = INSTRUMENTS.filter(
    (i) =>
      (product_codes === undefined || (product_codes as string[]).includes(i.product_code)) &&
      (symbols === undefined || symbolMatches(i.symbol)) &&
      (instrument_ids === undefined || (instrument_ids as number[]).includes(i.instrument_id)) &&
      (trading_states === undefined || (trading_states as string[]).includes(i.trading_state)),
  );
  return Response.json(results);
}

/**
 * The body of a kill switch or unlock: a JSON object with exactly one of `fcm_uuid`, `firm_uuid`,
 * `trading_user_uuid`, a known uuid; for the kill switch also the boolean `only_cancel_no_trading_lock`. Answers the
 * refusal, or the parsed body and how many users it affects. Other keys are ignored.
 */
function lockBody(req: VenueRequest, killSwitch: boolean): Response | { users: number; onlyCancel: boolean } {
  let body: unknown;
  try {
    body = jsonBody(req.body);
  } catch {
    return message(400, "Invalid request body");
  }
  if (!isObject(body)) return message(400, "Invalid request body");
  const onlyCancel = body.only_cancel_no_trading_lock;
  if (killSwitch && typeof onlyCancel !== "boolean") {
    return message(400, "only_cancel_no_trading_lock is required and must be true or false");
  }
  const given = (Object.keys(SCOPES) as ScopeField[]).filter((field) => body[field] !== undefined);
  if (given.length !== 1) return message(400, "Must only include one uuid");
  const field = given[0] as ScopeField;
  const value = body[field];
  if (typeof value !== "string" || !UUID.test(value)) return message(400, `Invalid ${field}`);
  const scope = SCOPES[field];
  if (value.toLowerCase() !== scope.uuid) return message(404, `${scope.name} not found`);
  return { users: scope.users, onlyCancel: onlyCancel === true };
}

/** The CDE venue's business logic, after authentication. */
export function handleCde(req: VenueRequest): Response {
  const route = `${req.method} ${req.url.pathname}`;
  if (route === "GET /rest/funding-rate") return fundingRate(req);
  if (route === "GET /rest/v2/positions") return Response.json(POSITIONS);
  const firm = /^GET \/rest\/v2\/positions\/([^/]+)$/.exec(route);
  if (firm) return firm[1] === FIRM_UUID ? Response.json(POSITIONS) : message(404, "Firm not found");
  if (route === "POST /rest/instruments") return instruments(req);
  if (route === "POST /rest/kill-switch") {
    const parsed = lockBody(req, true);
    if (parsed instanceof Response) return parsed;
    if (!parsed.onlyCancel) tradingLocked.cde = true;
    effects.kill_switches++;
    if (req.account !== undefined) effectsOf("cde", req.account).kill_switches++;
    return Response.json({ num_users_affected: parsed.users, num_orders_canceled: ORDERS_CANCELED });
  }
  if (route === "POST /rest/unlock-trading") {
    const parsed = lockBody(req, false);
    if (parsed instanceof Response) return parsed;
    tradingLocked.cde = false;
    effects.unlocks++;
    return Response.json({ num_users_affected: parsed.users });
  }
  return notFound();
}
