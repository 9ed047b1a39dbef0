/**
 * skewguard-sim: a local stand-in for the Coinbase INTX (`/api/v1/...`) and CDE (`/rest/...`) REST gateways.
 * Strict where they are strict: it recomputes every CB-ACCESS-SIGN with its own HMAC (node:crypto, never
 * skewguard's code), refuses timestamps outside the window of its own skewed clock, stamps `Date` from that clock,
 * rate-limits INTX keys at 40/s, and keeps orders, positions and kill-switch state. `/_sim/control` changes skew,
 * latency and faults at run time and reports the venue-side effects, for tests and demos only.
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

interface SimEnv {
  SKEW_MS?: string;
  LATENCY_UP_MS?: string;
  LATENCY_DOWN_MS?: string;
  WINDOW_SECONDS?: string;
  INTX_API_KEY?: string;
  INTX_API_SECRET?: string;
  INTX_API_PASSPHRASE?: string;
  CDE_API_KEY?: string;
  CDE_API_SECRET?: string;
  CDE_API_PASSPHRASE?: string;
}

type Venue = "intx" | "cde";
type Range = [number, number];
/** `5xx`: answer 503 without processing. `drop`: fail the connection without processing. The `_after` kinds
 * process the request first (its effect happens) and then fail, like a response lost on the way back. */
type FaultKind = "5xx" | "5xx_after" | "drop" | "drop_after" | "slow";

interface Settings {
  skewMs: number;
  up: Range;
  down: Range;
  windowSeconds: number;
  /** Status and message for a timestamp outside the window (the real ones are undocumented; PROTOCOL.md). */
  timestampStatus: Record<Venue, number>;
  fault: { kind: FaultKind; remaining: number; slowMs: number } | null;
}

interface Order {
  order_id: string;
  client_order_id: string;
  side: string;
  instrument_id: string;
  type: string;
  tif: string;
  size: string;
  price?: string;
  portfolio_id: string;
  order_status: "WORKING" | "CANCELLED";
  created_at: string;
}

/** Counters of what the venue did, so tests can assert "at most one venue-side effect per logical request". */
interface Effects {
  requests: number;
  accepted: number;
  rejected: Record<string, number>;
  orders_placed: number;
  orders_cancelled: number;
  kill_switches: number;
  unlocks: number;
}

const PORTFOLIO = { portfolio_id: "1ai4ubgb-1-0", portfolio_uuid: "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01", name: "dev" };
const INSTRUMENTS = ["BTC-PERP", "ETH-PERP", "SOL-PERP"];
const CDE_SYMBOLS = ["BIPZ30", "ETPZ30", "BIT-28NOV25-CDE"];

let settings: Settings | undefined;
const orders = new Map<string, Order>();
const clientOrderIds = new Set<string>();
const recentByKey = new Map<string, number[]>();
let tradingLocked = false;
let effects = freshEffects();

function freshEffects(): Effects {
  return {
    requests: 0,
    accepted: 0,
    rejected: {},
    orders_placed: 0,
    orders_cancelled: 0,
    kill_switches: 0,
    unlocks: 0,
  };
}

function range(text: string | undefined, fallback: Range): Range {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text ?? "");
  if (!m) return fallback;
  const low = Number(m[1]);
  return [low, Math.max(low, Number(m[2] ?? m[1]))];
}

function defaults(env: SimEnv): Settings {
  return {
    skewMs: Number(env.SKEW_MS ?? 0) || 0,
    up: range(env.LATENCY_UP_MS, [0, 0]),
    down: range(env.LATENCY_DOWN_MS, [0, 0]),
    windowSeconds: Number(env.WINDOW_SECONDS ?? 5) || 5,
    timestampStatus: { intx: 401, cde: 400 },
    fault: null,
  };
}

const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
const pick = ([low, high]: Range) => low + Math.random() * (high - low);

function reject(key: string, status: number, body: unknown, headers: Record<string, string> = {}): Response {
  effects.rejected[key] = (effects.rejected[key] ?? 0) + 1;
  return Response.json(body, { status, headers });
}

/** INTX's two error shapes (PROTOCOL.md): `{"message"}`, and Javalin's `{"title", "status"}`. */
const title = (status: number, kind: string, text: string) =>
  Response.json({ title: `io.javalin.http.${kind}: ${text}`, status }, { status });

function credentials(env: SimEnv, venue: Venue) {
  return venue === "intx"
    ? { key: env.INTX_API_KEY, secret: env.INTX_API_SECRET, passphrase: env.INTX_API_PASSPHRASE }
    : { key: env.CDE_API_KEY, secret: env.CDE_API_SECRET, passphrase: env.CDE_API_PASSPHRASE };
}

/** Checks the four CB-ACCESS headers against the venue's rules; a Response means refused. */
function authenticate(env: SimEnv, s: Settings, venue: Venue, request: Request, body: Uint8Array, serverMs: number) {
  const h = request.headers;
  const key = h.get("cb-access-key");
  const sign = h.get("cb-access-sign");
  const timestamp = h.get("cb-access-timestamp");
  const passphrase = h.get("cb-access-passphrase");
  if (!key || !sign || !timestamp || !passphrase) {
    return reject("missing_headers", 401, { message: "missing required authentication headers" });
  }
  const creds = credentials(env, venue);
  if (key !== creds.key || !creds.secret) return reject("key", 401, { message: "invalid api key" });
  if (passphrase !== creds.passphrase) return reject("passphrase", 401, { message: "invalid passphrase" });
  if (!/^\d{1,12}$/.test(timestamp)) return reject("timestamp_format", 400, { message: "invalid timestamp" });
  if (Math.abs(Number(timestamp) * 1000 - serverMs) > s.windowSeconds * 1000) {
    const status = s.timestampStatus[venue];
    return reject("timestamp_window", status, { message: "request timestamp expired" });
  }
  const path = new URL(request.url).pathname;
  const expected = createHmac("sha256", Buffer.from(creds.secret, "base64"))
    .update(`${timestamp}${request.method.toUpperCase()}${path}`)
    .update(body)
    .digest("base64");
  if (sign !== expected) return reject("signature", 401, { message: "invalid signature" });
  if (venue === "intx") {
    const recent = (recentByKey.get(key) ?? []).filter((t) => t > serverMs - 1000);
    if (recent.length >= 40)
      return reject("rate_limit", 429, { message: "rate limit exceeded" }, { "retry-after": "1" });
    recent.push(serverMs);
    recentByKey.set(key, recent);
  }
  return undefined;
}

const DECIMAL = /^\d+(\.\d+)?$/;

async function placeOrder(body: Uint8Array): Promise<Response> {
  let order: Record<string, unknown>;
  try {
    order = JSON.parse(new TextDecoder().decode(body)) as Record<string, unknown>;
  } catch {
    return title(400, "BadRequestResponse", "Invalid JSON body");
  }
  for (const field of ["client_order_id", "side", "size", "tif", "type", "instrument"]) {
    if (typeof order[field] !== "string" || order[field] === "") {
      return title(400, "BadRequestResponse", `Order rejected (MISSING_FIELD ${field})`);
    }
  }
  const { client_order_id, side, size, tif, type, instrument, price } = order as Record<string, string>;
  if (side !== "BUY" && side !== "SELL") return title(400, "BadRequestResponse", "Order rejected (INVALID_SIDE)");
  if (!DECIMAL.test(size as string) || Number(size) <= 0) {
    return title(400, "BadRequestResponse", "Order rejected (INVALID_SIZE)");
  }
  if (!["MARKET", "LIMIT", "STOP", "STOP_LIMIT"].includes(type as string)) {
    return title(400, "BadRequestResponse", "Order rejected (INVALID_ORDER_TYPE)");
  }
  if (!["GTC", "IOC", "GTT", "FOK"].includes(tif as string)) {
    return title(400, "BadRequestResponse", "Order rejected (INVALID_TIF)");
  }
  if (type === "LIMIT" && (typeof price !== "string" || !DECIMAL.test(price))) {
    return title(400, "BadRequestResponse", "Order rejected (INVALID_PRICE)");
  }
  if (!INSTRUMENTS.includes(instrument as string)) return title(400, "BadRequestResponse", "Instrument not found");
  if (clientOrderIds.has(client_order_id as string)) {
    return title(400, "BadRequestResponse", `Order rejected (DUPLICATE_CLIENT_ORDER_ID ${client_order_id})`);
  }
  if (tradingLocked) return title(403, "ForbiddenResponse", "Trading is locked");
  clientOrderIds.add(client_order_id as string);
  const placed: Order = {
    order_id: crypto.randomUUID(),
    client_order_id: client_order_id as string,
    side: side as string,
    instrument_id: instrument as string,
    type: type as string,
    tif: tif as string,
    size: size as string,
    ...(price ? { price } : {}),
    portfolio_id: typeof order.portfolio === "string" ? order.portfolio : PORTFOLIO.portfolio_id,
    order_status: "WORKING",
    created_at: new Date().toISOString(),
  };
  orders.set(placed.order_id, placed);
  effects.orders_placed++;
  return Response.json(placed);
}

/** The venue's business logic, after authentication. */
async function handle(venue: Venue, method: string, url: URL, body: Uint8Array): Promise<Response> {
  const path = url.pathname;
  const route = `${method} ${path}`;
  if (venue === "intx") {
    if (route === "GET /api/v1/portfolios") return Response.json([PORTFOLIO]);
    const portfolio = /^GET \/api\/v1\/portfolios\/([^/]+)\/(positions|balances)$/.exec(route);
    if (portfolio) {
      if (portfolio[1] !== PORTFOLIO.portfolio_id && portfolio[1] !== PORTFOLIO.portfolio_uuid) {
        return title(404, "NotFoundResponse", "Portfolio not found");
      }
      return portfolio[2] === "positions"
        ? Response.json([{ instrument_id: "BTC-PERP", net_size: "0.5", entry_vwap: "64000", unrealized_pnl: "120.5" }])
        : Response.json([{ asset_name: "USDC", quantity: "100000", hold: "2500", collateral_value: "100000" }]);
    }
    if (route === "POST /api/v1/orders") return placeOrder(body);
    if (route === "GET /api/v1/orders") {
      const results = [...orders.values()].filter((o) => o.order_status === "WORKING");
      return Response.json({ pagination: { result_limit: 25, result_offset: 0 }, results });
    }
    const cancel = /^DELETE \/api\/v1\/orders\/([^/]+)$/.exec(route);
    if (cancel) {
      const order = orders.get(cancel[1] as string);
      if (order?.order_status !== "WORKING") return title(404, "NotFoundResponse", "Order not found");
      order.order_status = "CANCELLED";
      effects.orders_cancelled++;
      return Response.json(order);
    }
    if (route === "GET /api/v1/instruments") {
      return Response.json(INSTRUMENTS.map((symbol) => ({ symbol, type: "PERP", trading_state: "TRADING" })));
    }
    return Response.json({ message: "Not Found" }, { status: 404 });
  }
  if (route === "GET /rest/funding-rate") {
    const symbol = url.searchParams.get("symbol") ?? "";
    if (!CDE_SYMBOLS.includes(symbol)) return Response.json({ message: "Invalid symbol" }, { status: 400 });
    const event_time = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
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
  if (route === "GET /rest/v2/positions") {
    return Response.json([{ symbol: "BIPZ30", firm_uuid: PORTFOLIO.portfolio_uuid, long_qty: 3, short_qty: 0 }]);
  }
  if (route === "POST /rest/kill-switch") {
    tradingLocked = true;
    effects.kill_switches++;
    return Response.json({ status: "ok", trading_locked: true });
  }
  if (route === "POST /rest/unlock-trading") {
    tradingLocked = false;
    effects.unlocks++;
    return Response.json({ status: "ok", trading_locked: false });
  }
  return Response.json({ message: "Not Found" }, { status: 404 });
}

/** `/_sim/control`: GET reads settings and effects; POST changes them. For tests and demos only. */
async function control(request: Request, s: Settings, env: SimEnv): Promise<Response> {
  if (request.method === "POST") {
    const change = (await request.json()) as Record<string, unknown>;
    if (change.reset === true) {
      settings = defaults(env);
      orders.clear();
      clientOrderIds.clear();
      recentByKey.clear();
      tradingLocked = false;
      effects = freshEffects();
    }
    const current = settings ?? s;
    if (typeof change.skew_ms === "number") current.skewMs = change.skew_ms;
    if (Array.isArray(change.up_ms)) current.up = change.up_ms as Range;
    if (Array.isArray(change.down_ms)) current.down = change.down_ms as Range;
    if (typeof change.window_seconds === "number") current.windowSeconds = change.window_seconds;
    if (typeof change.timestamp_status === "object" && change.timestamp_status !== null) {
      Object.assign(current.timestampStatus, change.timestamp_status);
    }
    if (change.fault === null) current.fault = null;
    else if (typeof change.fault === "object") {
      const f = change.fault as { kind: FaultKind; count?: number; slow_ms?: number };
      current.fault = { kind: f.kind, remaining: f.count ?? 1, slowMs: f.slow_ms ?? 15_000 };
    }
  }
  const current = settings ?? s;
  return Response.json({
    skew_ms: current.skewMs,
    up_ms: current.up,
    down_ms: current.down,
    window_seconds: current.windowSeconds,
    timestamp_status: current.timestampStatus,
    fault: current.fault,
    trading_locked: tradingLocked,
    effects,
  });
}

async function readBody(request: Request): Promise<Uint8Array> {
  return request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array(0);
}

export default {
  async fetch(request: Request, env: SimEnv): Promise<Response> {
    settings ??= defaults(env);
    const s = settings;
    const url = new URL(request.url);
    if (url.pathname === "/_sim/control") return control(request, s, env);
    const venue: Venue | undefined = url.pathname.startsWith("/api/v1/")
      ? "intx"
      : url.pathname.startsWith("/rest/")
        ? "cde"
        : undefined;
    if (!venue) return Response.json({ message: "Not Found" }, { status: 404 });
    effects.requests++;
    const body = await readBody(request);
    await sleep(pick(s.up));
    const serverMs = Date.now() + s.skewMs;
    const date = new Date(Math.floor(serverMs / 1000) * 1000).toUTCString();

    let response = authenticate(env, s, venue, request, body, serverMs);
    const fault = s.fault;
    if (!response && fault && fault.remaining > 0) {
      fault.remaining--;
      if (fault.remaining === 0) s.fault = null;
      if (fault.kind === "5xx") response = Response.json({ message: "Service Unavailable" }, { status: 503 });
      if (fault.kind === "drop") throw new Error("simulated dropped connection");
      if (fault.kind === "5xx_after" || fault.kind === "drop_after" || fault.kind === "slow") {
        const processed = await handle(venue, request.method.toUpperCase(), url, body);
        effects.accepted++;
        if (fault.kind === "drop_after") throw new Error("simulated dropped connection after processing");
        if (fault.kind === "slow") await sleep(fault.slowMs);
        response =
          fault.kind === "slow" ? processed : Response.json({ message: "Internal Server Error" }, { status: 500 });
      }
    }
    if (!response) {
      response = await handle(venue, request.method.toUpperCase(), url, body);
      effects.accepted++;
    }
    await sleep(pick(s.down));
    const headers = new Headers(response.headers);
    headers.set("date", date);
    return new Response(response.body, { status: response.status, headers });
  },
};
