/**
 * The simulated INTX venue (`/api/v1/...`): reference data (assets, instruments, quotes) shared by everyone, and
 * per account (per API key) one portfolio with its balances, positions and fills, and orders that keep their state
 * across calls. An account sees its own portfolio and orders only. Every request that reaches an order route
 * (create, modify) is logged for its account first, before any check (shared.ts, `recordOrder`). Response shapes
 * are the ones INTX documents, as ccxt's `coinbaseinternational` client reads them. docs/simulator.md lists every
 * route and the order-state rule that `execute` implements.
 */
import {
  dec,
  effects,
  effectsOf,
  isObject,
  iso,
  javalin,
  jsonBody,
  notFound,
  recordOrder,
  tradingLocked,
  type VenueRequest,
} from "./shared.ts";

// ---------------------------------------------------------------------------------------------------------------
// Reference data: fixed for the simulator's lifetime.

const USDC = { id: "1", uuid: "2b92315d-eab7-5bef-84fa-089a131333f5" };

const ASSETS = [
  ["USDC", USDC.id, USDC.uuid, 1],
  ["BTC", "118059611751202816", "5b71fc48-3dd3-540c-809b-f8c94d0e68b5", 0.9],
  ["ETH", "118059611793145856", "d85dce9b-5b73-5c3c-8978-522ce1d1c1b4", 0.9],
  ["SOL", "118059611835088896", "4f8c2b3a-5d8e-4b61-9c2e-7a1d3e5f6a70", 0.8],
].map(([asset_name, asset_id, asset_uuid, collateral_weight]) => ({
  asset_id: asset_id as string,
  asset_uuid: asset_uuid as string,
  asset_name: asset_name as string,
  status: "ACTIVE",
  collateral_weight: collateral_weight as number,
  supported_networks_enabled: true,
}));

/** The top of the book, which never moves: market orders fill at its touch. */
interface QuoteLevels {
  best_bid_price: string;
  best_bid_size: string;
  best_ask_price: string;
  best_ask_size: string;
  trade_price: string;
  trade_qty: string;
  index_price: string;
  mark_price: string;
  settlement_price: string;
  limit_up: string;
  limit_down: string;
  predicted_funding: string;
}

interface Perp {
  instrument_id: string;
  instrument_uuid: string;
  symbol: string;
  base: string;
  base_increment: string;
  quote_increment: string;
  base_imf: string;
  position_limit_qty: string;
  /** 24-hour and daily statistics, in INTX's field names. */
  stats: Record<string, string>;
  quote: QuoteLevels;
}

const PERPS: Perp[] = [
  {
    instrument_id: "114jqr89-0-0",
    instrument_uuid: "b3469e0b-222c-4f8a-9f68-1f9e44d7e5e0",
    symbol: "BTC-PERP",
    base: "BTC",
    base_increment: "0.0001",
    quote_increment: "0.1",
    base_imf: "0.1",
    position_limit_qty: "800",
    stats: {
      qty_24hr: "5120.4",
      notional_24hr: "327705600",
      avg_daily_qty: "6100.2",
      avg_daily_notional: "390412800",
      previous_day_qty: "5874.1",
      open_interest: "2150.7",
    },
    quote: {
      best_bid_price: "64000",
      best_bid_size: "1.25",
      best_ask_price: "64000.1",
      best_ask_size: "0.8",
      trade_price: "64000.1",
      trade_qty: "0.01",
      index_price: "63998.5",
      mark_price: "64000",
      settlement_price: "63990",
      limit_up: "67200",
      limit_down: "60800",
      predicted_funding: "0.000012",
    },
  },
  {
    instrument_id: "149264164756389888",
    instrument_uuid: "e9360798-6a10-45d6-af05-67c30eb91e2d",
    symbol: "ETH-PERP",
    base: "ETH",
    base_increment: "0.0001",
    quote_increment: "0.01",
    base_imf: "0.1",
    position_limit_qty: "1831.9527",
    stats: {
      qty_24hr: "44434.8131",
      notional_24hr: "110943454.279785",
      avg_daily_qty: "1099171.6025",
      avg_daily_notional: "2637240145.456987",
      previous_day_qty: "78909.3939",
      open_interest: "1270.749",
    },
    quote: {
      best_bid_price: "2490.8",
      best_bid_size: "9.0515",
      best_ask_price: "2490.81",
      best_ask_size: "4.8486",
      trade_price: "2490.39",
      trade_qty: "0.9508",
      index_price: "2490.5",
      mark_price: "2490.8",
      settlement_price: "2490.81",
      limit_up: "2615.42",
      limit_down: "2366.34",
      predicted_funding: "0.000009",
    },
  },
  {
    instrument_id: "149264167780483072",
    instrument_uuid: "7d4a8c2e-3f5b-4a61-8e9d-0b1c2d3e4f50",
    symbol: "SOL-PERP",
    base: "SOL",
    base_increment: "0.01",
    quote_increment: "0.001",
    base_imf: "0.2",
    position_limit_qty: "95000",
    stats: {
      qty_24hr: "812044.5",
      notional_24hr: "115716341.25",
      avg_daily_qty: "903311.2",
      avg_daily_notional: "128721846",
      previous_day_qty: "877120.9",
      open_interest: "61234.8",
    },
    quote: {
      best_bid_price: "142.5",
      best_bid_size: "310.2",
      best_ask_price: "142.51",
      best_ask_size: "125.7",
      trade_price: "142.51",
      trade_qty: "3.2",
      index_price: "142.49",
      mark_price: "142.5",
      settlement_price: "142.4",
      limit_up: "149.63",
      limit_down: "135.38",
      predicted_funding: "0.000015",
    },
  },
];

/** INTX accepts an instrument by symbol, instrument_id or instrument_uuid. */
function findPerp(ref: string): Perp | undefined {
  return PERPS.find((p) => p.symbol === ref || p.instrument_id === ref || p.instrument_uuid === ref);
}

/** ccxt's unified symbol for a perp, `BTC/USDC:USDC`: its fetchOpenOrders sends that instead of the market id. */
const ccxtSymbol = (p: Perp) => `${p.base}/USDC:USDC`;

function instrumentView(p: Perp, nowMs: number) {
  return {
    instrument_id: p.instrument_id,
    instrument_uuid: p.instrument_uuid,
    symbol: p.symbol,
    type: "PERP",
    base_asset_id: ASSETS.find((a) => a.asset_name === p.base)?.asset_id,
    base_asset_uuid: ASSETS.find((a) => a.asset_name === p.base)?.asset_uuid,
    base_asset_name: p.base,
    quote_asset_id: USDC.id,
    quote_asset_uuid: USDC.uuid,
    quote_asset_name: "USDC",
    base_increment: p.base_increment,
    quote_increment: p.quote_increment,
    price_band_percent: "0.02",
    market_order_percent: "0.0075",
    ...p.stats,
    position_limit_qty: p.position_limit_qty,
    position_limit_adq_pct: "0.05",
    replacement_cost: "0.23",
    base_imf: p.base_imf,
    min_notional_value: "10",
    funding_interval: "3600000000000",
    trading_state: "TRADING",
    quote: quoteView(p, nowMs),
  };
}

const quoteView = (p: Perp, nowMs: number) => ({ ...p.quote, timestamp: iso(nowMs) });

// ---------------------------------------------------------------------------------------------------------------
// Accounts: each API key the gateway knows (index.ts) is an account with one portfolio of its own.

interface Holding {
  net: number;
  entry: number;
}

type Portfolio = ReturnType<typeof portfolio>;

/** What an account starts with; `resetIntx` restores it. */
interface Profile {
  portfolio: Portfolio;
  /** The `client_id` INTX writes on fills: the user's trading client. */
  clientId: string;
  /** USDC: quantity, hold, and so max_withdraw_amount = quantity - hold. Orders and fills do not change it. */
  usdc: { quantity: number; hold: number };
  positions: [symbol: string, Holding][];
}

function portfolio(portfolio_id: string, portfolio_uuid: string, name: string, user_uuid: string) {
  return {
    portfolio_id,
    portfolio_uuid,
    name,
    user_uuid,
    maker_fee_rate: "0.0002",
    taker_fee_rate: "0.0004",
    trading_lock: false,
    borrow_disabled: false,
    is_lsp: false,
    // Each key sees one portfolio, its default, which ccxt looks for.
    is_default: true,
    cross_collateral_enabled: false,
  };
}

/** The configured accounts' portfolios. `default` (the unprefixed dev key) starts 0.5 BTC-PERP long, +120.5 USDC. */
const PROFILES: Record<string, Profile> = {
  default: {
    portfolio: portfolio(
      "1ai4ubgb-1-0",
      "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01",
      "dev",
      "5c1f7a0e-2d5b-4c4e-9a51-1c0ffee0d001",
    ),
    clientId: "1ai4ubgb-1-1",
    usdc: { quantity: 100000, hold: 2500 },
    positions: [["BTC-PERP", { net: 0.5, entry: 63759 }]],
  },
  alpha: {
    portfolio: portfolio(
      "2alp7hq3-1-0",
      "7c4e2a91-3b5d-4f6e-8a1c-2d9e0f1a0a02",
      "alpha",
      "5c1f7a0e-2d5b-4c4e-9a51-1c0ffee0d002",
    ),
    clientId: "2alp7hq3-1-1",
    usdc: { quantity: 25000, hold: 500 },
    positions: [["ETH-PERP", { net: -2, entry: 2510.4 }]],
  },
  beta: {
    portfolio: portfolio(
      "3bet9kx5-1-0",
      "9e1b4c7d-2a6f-4e3b-b5d8-6f0a1c2e0a03",
      "beta",
      "5c1f7a0e-2d5b-4c4e-9a51-1c0ffee0d003",
    ),
    clientId: "3bet9kx5-1-1",
    usdc: { quantity: 5000, hold: 0 },
    positions: [],
  },
};

/** Another account (an `INTX_<NAME>_API_KEY` with no profile above): ids derived from its name, 10000 USDC, flat. */
function derivedProfile(name: string): Profile {
  let hash = 0x811c9dc5;
  for (const c of name) hash = Math.imul(hash ^ (c.codePointAt(0) ?? 0), 0x01000193) >>> 0;
  const hex = hash.toString(16).padStart(8, "0");
  return {
    portfolio: portfolio(`${hex}-1-0`, `${hex}-0000-4000-8000-${hex}0000`, name, `${hex}-0000-4000-8000-0000${hex}`),
    clientId: `${hex}-1-1`,
    usdc: { quantity: 10000, hold: 0 },
    positions: [],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Venue state, per account: orders, fills and positions. `resetIntx` restores the start.

interface Order {
  order_id: string;
  client_order_id: string;
  side: "BUY" | "SELL";
  instrument_id: string;
  instrument_uuid: string;
  symbol: string;
  portfolio_id: string;
  portfolio_uuid: string;
  type: "MARKET" | "LIMIT" | "STOP" | "STOP_LIMIT";
  price?: string;
  stop_price?: string;
  size: string;
  tif: "GTC" | "IOC" | "GTT" | "FOK";
  expire_time?: string;
  stp_mode: "BOTH";
  post_only: boolean;
  /**
   * NEW, then TRADE (filled), REPLACED (modified) or CANCELED (cancelled, or an IOC/FOK that did not fill);
   * REJECTED for a post_only LIMIT that would have crossed the book, which never rests.
   */
  event_type: "NEW" | "TRADE" | "REPLACED" | "CANCELED" | "REJECTED";
  event_time: string;
  submit_time: string;
  /** WORKING while it rests on the book; DONE once filled or cancelled. */
  order_status: "WORKING" | "DONE";
  leaves_qty: string;
  exec_qty: string;
  avg_price: string;
  fee: string;
}

type Fill = Record<string, string>;

/** One account's state. Nothing in it is visible to another account. */
interface Book {
  account: string;
  profile: Profile;
  orders: Map<string, Order>;
  /**
   * Every client_order_id ever used, including those an order had before a modify (not a rejected post_only
   * order's): what `duplicate_scope: "ever"` refuses.
   */
  clientOrderIds: Set<string>;
  fills: Fill[];
  positions: Map<string, Holding>;
}

/** By account name, created at its profile's start on the account's first private request. */
const books = new Map<string, Book>();
let sequence = 0;

export function resetIntx(): void {
  books.clear();
}

/** The book of the account that signed the request. */
function bookOf(req: VenueRequest): Book {
  const account = req.account ?? "default";
  let book = books.get(account);
  if (!book) {
    const profile = PROFILES[account] ?? derivedProfile(account);
    book = {
      account,
      profile,
      orders: new Map(),
      clientOrderIds: new Set(),
      fills: [],
      positions: new Map(profile.positions.map(([symbol, h]) => [symbol, { ...h }])),
    };
    books.set(account, book);
  }
  return book;
}

/** INTX-style ids (`1x96skvg-1-0`): eight random hex characters and a suffix. */
const newId = (suffix: string) => `${crypto.randomUUID().replace(/-/g, "").slice(0, 8)}-${suffix}`;

const openOrders = (book: Book) => [...book.orders.values()].filter((o) => o.order_status === "WORKING");

/**
 * INTX's client_order_id forms: 18 printable ASCII characters; 20 of letters, digits and `-`; 31 lowercase hex
 * digits without a leading 0; or a lowercase hyphenated UUID.
 */
const CLIENT_ORDER_ID_FORMS = [
  /^[\x21-\x7e]{18}$/,
  /^[A-Za-z0-9-]{20}$/,
  /^[1-9a-f][0-9a-f]{30}$/,
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
];
const validClientOrderId = (id: string) => CLIENT_ORDER_ID_FORMS.some((form) => form.test(id));

/**
 * Whether `id` is taken for a new order (or as a modify's new id; `except` is the order being modified): under
 * `duplicate_scope: "open"` while a WORKING order has it, under `"ever"` once any order has had it.
 */
function clientOrderIdTaken(book: Book, req: VenueRequest, id: string, except?: Order): boolean {
  if (req.duplicateScope === "ever") return book.clientOrderIds.has(id);
  return openOrders(book).some((o) => o !== except && o.client_order_id === id);
}

/** The order-state rule's test: a LIMIT at or through the touch (a BUY at or above the best ask...). */
function crossesBook(order: Pick<Order, "type" | "side" | "price">, perp: Perp): boolean {
  const touch = Number(order.side === "BUY" ? perp.quote.best_ask_price : perp.quote.best_bid_price);
  const limit = Number(order.price);
  return order.type === "LIMIT" && (order.side === "BUY" ? limit >= touch : limit <= touch);
}

/** One of the account's orders, by order_id or, as INTX also allows, by its current client_order_id. */
const findOrder = (book: Book, id: string) =>
  book.orders.get(id) ?? [...book.orders.values()].find((o) => o.client_order_id === id);

/** The account's own portfolio, by id or uuid; another account's is as unknown as a made-up one. */
function findPortfolio(book: Book, ref: string): Portfolio | undefined {
  const p = book.profile.portfolio;
  return ref === p.portfolio_id || ref === p.portfolio_uuid ? p : undefined;
}

const portfolioView = (book: Book) => ({ ...book.profile.portfolio, trading_lock: tradingLocked.intx });

function balancesView(book: Book) {
  const { quantity, hold } = book.profile.usdc;
  return [
    {
      asset_id: USDC.id,
      asset_name: "USDC",
      asset_uuid: USDC.uuid,
      quantity: dec(quantity),
      hold: dec(hold),
      hold_available_for_collateral: "0",
      transfer_hold: "0",
      collateral_value: dec(quantity),
      max_withdraw_amount: dec(quantity - hold),
      loan: "0",
      loan_collateral_requirement: "0",
    },
  ];
}

/**
 * The order-state rule, run when an order is placed and again when it is modified. Nothing rests on the other side
 * of the book, so an order fills at once or never:
 * - a MARKET order, and a LIMIT order that is not post_only and crosses the quote (a BUY at or above the best ask,
 *   a SELL at or below the best bid), fill at once and in full at the touch, as one fill;
 * - any other IOC or FOK order is done at once, unfilled (event_type CANCELED);
 * - any other order (a resting GTC/GTT LIMIT, a post_only LIMIT, every STOP and STOP_LIMIT) stays WORKING until
 *   it is modified or cancelled: the quote never moves, so it never fills, triggers or expires later.
 */
function execute(book: Book, order: Order, perp: Perp, nowMs: number): void {
  const touch = Number(order.side === "BUY" ? perp.quote.best_ask_price : perp.quote.best_bid_price);
  if (order.type === "MARKET" || (!order.post_only && crossesBook(order, perp))) {
    fillInFull(book, order, perp, touch, nowMs);
  } else if (order.tif === "IOC" || order.tif === "FOK") {
    Object.assign(order, { order_status: "DONE", event_type: "CANCELED", event_time: iso(nowMs) });
  }
}

function fillInFull(book: Book, order: Order, perp: Perp, price: number, nowMs: number): void {
  const { portfolio, clientId } = book.profile;
  const qty = Number(order.leaves_qty);
  const fee = dec(price * qty * Number(portfolio.taker_fee_rate));
  Object.assign(order, {
    order_status: "DONE",
    event_type: "TRADE",
    event_time: iso(nowMs),
    leaves_qty: "0",
    exec_qty: order.size,
    avg_price: dec(price),
    fee,
  });
  sequence++;
  book.fills.push({
    portfolio_id: order.portfolio_id,
    portfolio_uuid: order.portfolio_uuid,
    portfolio_name: portfolio.name,
    fill_id: newId(`1-${sequence}`),
    exec_id: String(nowMs * 1000 + sequence),
    order_id: order.order_id,
    instrument_id: order.instrument_id,
    instrument_uuid: order.instrument_uuid,
    symbol: order.symbol,
    match_id: String(nowMs * 1000 + sequence + 500),
    fill_price: dec(price),
    fill_qty: dec(qty),
    client_id: clientId,
    client_order_id: order.client_order_id,
    order_qty: order.size,
    limit_price: order.price ?? "",
    total_filled: order.size,
    filled_vwap: dec(price),
    expire_time: order.expire_time ?? "",
    stop_price: order.stop_price ?? "",
    side: order.side,
    tif: order.tif,
    stp_mode: order.stp_mode,
    flags: "",
    fee,
    fee_asset: "USDC",
    order_status: "DONE",
    event_time: iso(nowMs),
  });
  move(book, perp.symbol, order.side === "BUY" ? qty : -qty, price);
}

/** Average-cost position keeping: adding moves the entry price, reducing keeps it, flipping restarts it. */
function move(book: Book, symbol: string, delta: number, price: number): void {
  const was = book.positions.get(symbol) ?? { net: 0, entry: 0 };
  const net = Number((was.net + delta).toFixed(10));
  let entry = was.entry;
  if (net === 0) entry = 0;
  else if (was.net === 0 || Math.sign(was.net) === Math.sign(delta)) {
    entry = (Math.abs(was.net) * was.entry + Math.abs(delta) * price) / (Math.abs(was.net) + Math.abs(delta));
  } else if (Math.sign(net) !== Math.sign(was.net)) entry = price;
  book.positions.set(symbol, { net, entry });
}

function positionView(book: Book, p: Perp) {
  const { net, entry } = book.positions.get(p.symbol) ?? { net: 0, entry: 0 };
  const mark = Number(p.quote.mark_price);
  const resting = (side: string) =>
    dec(
      openOrders(book)
        .filter((o) => o.symbol === p.symbol && o.side === side)
        .reduce((total, o) => total + Number(o.leaves_qty), 0),
    );
  return {
    symbol: p.symbol,
    instrument_id: p.instrument_id,
    instrument_uuid: p.instrument_uuid,
    vwap: dec(entry),
    net_size: dec(net),
    buy_order_size: resting("BUY"),
    sell_order_size: resting("SELL"),
    im_contribution: dec(Math.abs(net) * mark * Number(p.base_imf)),
    unrealized_pnl: dec(net * (mark - entry)),
    mark_price: p.quote.mark_price,
    entry_vwap: dec(entry),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Request helpers.

const badRequest = (text: string) => javalin(400, "BadRequestResponse", text);
const portfolioNotFound = () => javalin(404, "NotFoundResponse", "Portfolio not found");
const orderNotFound = () => javalin(404, "NotFoundResponse", "Order not found");
const portfolioRequired = () => badRequest("portfolio is a required field");

const DECIMAL = /^\d+(\.\d+)?$/;

/**
 * A positive decimal sent as a string or as a JSON number (ccxt sends `price` and `stop_price` as numbers), as a
 * decimal string. `undefined` when absent, `null` when malformed.
 */
function positiveDecimal(value: unknown): string | undefined | null {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? dec(value) : null;
  if (typeof value === "string" && DECIMAL.test(value) && Number(value) > 0) return value;
  return null;
}

/** `result_limit` (1–100, default 25) and `result_offset` (default 0), or INTX's refusal. */
function paging(url: URL): { limit: number; offset: number } | Response {
  const limit = url.searchParams.get("result_limit") ?? "25";
  const offset = url.searchParams.get("result_offset") ?? "0";
  if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 100) {
    return badRequest("invalid result_limit");
  }
  if (!/^\d{1,9}$/.test(offset)) return badRequest("invalid result_offset");
  return { limit: Number(limit), offset: Number(offset) };
}

function page<T>(items: T[], url: URL): Response {
  const p = paging(url);
  if (p instanceof Response) return p;
  return Response.json({
    pagination: { result_limit: p.limit, result_offset: p.offset },
    results: items.slice(p.offset, p.offset + p.limit),
  });
}

/**
 * A DELETE's parameters: the query string, over the JSON body. ccxt sends the query both ways, the body without a
 * content-type. A body that is not a JSON object is ignored.
 */
function deleteParams(req: VenueRequest): Record<string, string> {
  let body: unknown;
  try {
    body = jsonBody(req.body);
  } catch {
    body = undefined;
  }
  const params: Record<string, string> = {};
  if (isObject(body)) for (const [k, v] of Object.entries(body)) if (typeof v === "string") params[k] = v;
  for (const [k, v] of req.url.searchParams) params[k] = v;
  return params;
}

/** A time filter (`time_from`, `ref_datetime`) in ms, undefined when absent, or INTX's refusal. */
function timeParam(url: URL, name: string): number | undefined | Response {
  const text = url.searchParams.get(name);
  if (text === null) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? badRequest(`invalid ${name}`) : ms;
}

// ---------------------------------------------------------------------------------------------------------------
// Public routes: reference data, answered without looking at any CB-ACCESS header.

function getAsset(_req: VenueRequest, [ref]: string[]): Response {
  const asset = ASSETS.find((a) => a.asset_name === ref || a.asset_id === ref || a.asset_uuid === ref);
  return asset ? Response.json(asset) : javalin(404, "NotFoundResponse", "Asset not found");
}

function getInstrument(req: VenueRequest, [ref]: string[], part?: "quote"): Response {
  const perp = findPerp(ref as string);
  if (!perp) return javalin(404, "NotFoundResponse", "Instrument not found");
  return Response.json(part === "quote" ? quoteView(perp, req.nowMs) : instrumentView(perp, req.nowMs));
}

/** How many hourly funding entries an instrument has: the last week's. */
const FUNDING_HOURS = 168;

/**
 * `GET /api/v1/instruments/{instrument}/funding`: `{pagination, results}`, one entry per hour, newest first, the
 * last `FUNDING_HOURS` whole hours of the simulator's clock; every rate is the perp's `predicted_funding`.
 */
function getFunding(req: VenueRequest, [ref]: string[]): Response {
  const perp = findPerp(ref as string);
  if (!perp) return javalin(404, "NotFoundResponse", "Instrument not found");
  const hour = Math.floor(req.nowMs / 3_600_000) * 3_600_000;
  const entries = Array.from({ length: FUNDING_HOURS }, (_, i) => ({
    instrument_id: perp.instrument_id,
    funding_rate: perp.quote.predicted_funding,
    mark_price: perp.quote.mark_price,
    event_time: iso(hour - i * 3_600_000),
  }));
  return page(entries, req.url);
}

// ---------------------------------------------------------------------------------------------------------------
// Portfolios: the portfolio itself, balances, positions, fills.

/** A `/portfolios/{portfolio}/…` route: the caller's own portfolio, or 404. */
function withPortfolio(handler: (book: Book, req: VenueRequest, params: string[]) => Response) {
  return (req: VenueRequest, [ref, ...rest]: string[]) => {
    const book = bookOf(req);
    return findPortfolio(book, ref as string) ? handler(book, req, rest) : portfolioNotFound();
  };
}

function listPositions(book: Book): Response {
  const held = PERPS.filter(
    (p) => (book.positions.get(p.symbol)?.net ?? 0) !== 0 || openOrders(book).some((o) => o.symbol === p.symbol),
  );
  return Response.json(held.map((p) => positionView(book, p)));
}

function getPosition(book: Book, _req: VenueRequest, [ref]: string[]): Response {
  const perp = findPerp(ref as string);
  return perp ? Response.json(positionView(book, perp)) : javalin(404, "NotFoundResponse", "Instrument not found");
}

/** Fills, newest first, filtered by `order_id`, `client_order_id`, `time_from` and `ref_datetime` (inclusive). */
function listFills(book: Book, req: VenueRequest, portfolioIds: string[]): Response {
  const q = req.url.searchParams;
  const from = timeParam(req.url, "time_from");
  if (from instanceof Response) return from;
  const until = timeParam(req.url, "ref_datetime");
  if (until instanceof Response) return until;
  const results = [...book.fills].reverse().filter((f) => {
    const at = Date.parse(f.event_time as string);
    return (
      portfolioIds.includes(f.portfolio_id as string) &&
      (q.get("order_id") ?? f.order_id) === f.order_id &&
      (q.get("client_order_id") ?? f.client_order_id) === f.client_order_id &&
      (from === undefined || at >= from) &&
      (until === undefined || at <= until)
    );
  });
  return page(results, req.url);
}

/**
 * `GET /api/v1/portfolios/fills`: every portfolio of the caller (its one), or those named in `portfolios` (repeated
 * or comma-separated), each of which must be the caller's.
 */
function listAllFills(req: VenueRequest): Response {
  const book = bookOf(req);
  const refs = req.url.searchParams
    .getAll("portfolios")
    .flatMap((v) => v.split(","))
    .filter((v) => v !== "");
  const ids: string[] = [];
  for (const ref of refs) {
    const portfolio = findPortfolio(book, ref);
    if (!portfolio) return portfolioNotFound();
    ids.push(portfolio.portfolio_id);
  }
  return listFills(book, req, refs.length === 0 ? [book.profile.portfolio.portfolio_id] : ids);
}

// ---------------------------------------------------------------------------------------------------------------
// Orders.

function createOrder(req: VenueRequest): Response {
  const book = bookOf(req);
  recordOrder(book.account, "create", req.body, req.nowMs);
  let order: unknown;
  try {
    order = jsonBody(req.body);
  } catch {
    return badRequest("Invalid JSON body");
  }
  if (!isObject(order)) return badRequest("Invalid JSON body");
  for (const field of ["client_order_id", "side", "size", "tif", "type", "instrument"]) {
    const value = order[field];
    const missing = field === "size" ? value === undefined || value === null : typeof value !== "string";
    if (missing || value === "") return badRequest(`Order rejected (MISSING_FIELD ${field})`);
  }
  const { client_order_id, side, tif, type, instrument } = order as Record<string, string>;
  if (!validClientOrderId(client_order_id as string)) return badRequest("Invalid client_order_id");
  if (side !== "BUY" && side !== "SELL") return badRequest("Order rejected (INVALID_SIDE)");
  const size = positiveDecimal(order.size);
  if (!size) return badRequest("Order rejected (INVALID_SIZE)");
  if (type !== "MARKET" && type !== "LIMIT" && type !== "STOP" && type !== "STOP_LIMIT") {
    return badRequest("Order rejected (INVALID_ORDER_TYPE)");
  }
  if (tif !== "GTC" && tif !== "IOC" && tif !== "GTT" && tif !== "FOK") {
    return badRequest("Order rejected (INVALID_TIF)");
  }
  if (type === "MARKET" && tif !== "IOC") return badRequest("Order rejected (market orders must be IoC)");
  const price = positiveDecimal(order.price);
  if (price === null || (!price && (type === "LIMIT" || type === "STOP_LIMIT"))) {
    return badRequest("Order rejected (INVALID_PRICE)");
  }
  const stopPrice = positiveDecimal(order.stop_price);
  if (stopPrice === null || (!stopPrice && (type === "STOP" || type === "STOP_LIMIT"))) {
    return badRequest("Order rejected (INVALID_STOP_PRICE)");
  }
  const expireTime = order.expire_time;
  if (tif === "GTT" && (typeof expireTime !== "string" || Number.isNaN(Date.parse(expireTime)))) {
    return badRequest("Order rejected (INVALID_EXPIRE_TIME)");
  }
  const perp = findPerp(instrument as string);
  if (!perp) return badRequest("Instrument not found");
  const portfolio =
    order.portfolio === undefined ? book.profile.portfolio : findPortfolio(book, String(order.portfolio));
  if (!portfolio) return portfolioNotFound();
  if (clientOrderIdTaken(book, req, client_order_id as string)) {
    return badRequest(`Order rejected (DUPLICATE_CLIENT_ORDER_ID ${client_order_id})`);
  }
  if (order.close_only === true) {
    const net = book.positions.get(perp.symbol)?.net ?? 0;
    const reducible = side === "BUY" ? -net : net;
    if (!(reducible > 0 && Number(size) <= reducible)) {
      return badRequest("Order rejected (CLOSE_ONLY order would not reduce the position)");
    }
  }
  if (tradingLocked.intx) return javalin(403, "ForbiddenResponse", "Trading is locked");

  const placed: Order = {
    order_id: newId("1-0"),
    client_order_id: client_order_id as string,
    side,
    instrument_id: perp.instrument_id,
    instrument_uuid: perp.instrument_uuid,
    symbol: perp.symbol,
    portfolio_id: portfolio.portfolio_id,
    portfolio_uuid: portfolio.portfolio_uuid,
    type,
    ...(price && type !== "MARKET" && type !== "STOP" ? { price } : {}),
    ...(stopPrice && (type === "STOP" || type === "STOP_LIMIT") ? { stop_price: stopPrice } : {}),
    size,
    tif,
    ...(tif === "GTT" ? { expire_time: expireTime as string } : {}),
    stp_mode: "BOTH",
    post_only: order.post_only === true,
    event_type: "NEW",
    event_time: iso(req.nowMs),
    submit_time: iso(req.nowMs),
    order_status: "WORKING",
    leaves_qty: size,
    exec_qty: "0",
    avg_price: "0",
    fee: "0",
  };
  book.orders.set(placed.order_id, placed);
  // A post_only LIMIT that would take liquidity is rejected whole: answered, fetchable, never resting, not
  // counted as placed, and its client_order_id stays free.
  if (placed.post_only && crossesBook(placed, perp)) {
    Object.assign(placed, { order_status: "DONE", event_type: "REJECTED" });
    return Response.json(placed);
  }
  book.clientOrderIds.add(client_order_id as string);
  effects.orders_placed++;
  effectsOf("intx", book.account).orders_placed++;
  execute(book, placed, perp, req.nowMs);
  return Response.json(placed);
}

/** `GET /api/v1/orders`: the caller's WORKING orders, newest first. */
function listOpenOrders(req: VenueRequest): Response {
  const book = bookOf(req);
  const q = req.url.searchParams;
  let results = openOrders(book).reverse();
  const portfolioRef = q.get("portfolio");
  if (portfolioRef !== null) {
    const portfolio = findPortfolio(book, portfolioRef);
    if (!portfolio) return portfolioNotFound();
    results = results.filter((o) => o.portfolio_id === portfolio.portfolio_id);
  }
  const instrument = q.get("instrument");
  if (instrument !== null) {
    const perp = findPerp(instrument) ?? PERPS.find((p) => ccxtSymbol(p) === instrument);
    if (!perp) return badRequest("Instrument not found");
    results = results.filter((o) => o.symbol === perp.symbol);
  }
  for (const field of ["side", "client_order_id", "event_type"] as const) {
    const wanted = q.get(field);
    if (wanted !== null) results = results.filter((o) => o[field] === wanted);
  }
  return page(results, req.url);
}

/** `GET /api/v1/orders/{order_id}?portfolio=`: any of the caller's orders, in whatever state, by its order_id only. */
function getOrder(req: VenueRequest, [id]: string[]): Response {
  const book = bookOf(req);
  const portfolioRef = req.url.searchParams.get("portfolio");
  if (portfolioRef === null) return portfolioRequired();
  const portfolio = findPortfolio(book, portfolioRef);
  if (!portfolio) return portfolioNotFound();
  const order = book.orders.get(id as string);
  if (!order || order.portfolio_id !== portfolio.portfolio_id) return orderNotFound();
  return Response.json(order);
}

/**
 * `PUT /api/v1/orders/{id}`: a new `client_order_id` (required; the current one may be repeated) and any of
 * `price`, `size`, `stop_price`. Only a WORKING order can be modified; the order-state rule then runs again.
 */
function modifyOrder(req: VenueRequest, [id]: string[]): Response {
  const book = bookOf(req);
  recordOrder(book.account, "modify", req.body, req.nowMs, id as string);
  const order = findOrder(book, id as string);
  if (!order) return orderNotFound();
  const refuse = (why: string) => badRequest(`Invalid replace order request (${why})`);
  if (order.order_status !== "WORKING") return refuse("ORDER_DONE");
  let change: unknown;
  try {
    change = jsonBody(req.body);
  } catch {
    return badRequest("Invalid JSON body");
  }
  if (!isObject(change)) return badRequest("Invalid JSON body");
  const clientOrderId = change.client_order_id;
  if (typeof clientOrderId !== "string" || clientOrderId === "") return refuse("MISSING_FIELD client_order_id");
  if (!validClientOrderId(clientOrderId)) return badRequest("Invalid client_order_id");
  if (change.portfolio === undefined || change.portfolio === null) return portfolioRequired();
  const portfolio = findPortfolio(book, String(change.portfolio));
  if (!portfolio) return portfolioNotFound();
  if (portfolio.portfolio_id !== order.portfolio_id) return orderNotFound();
  if (clientOrderId !== order.client_order_id && clientOrderIdTaken(book, req, clientOrderId, order)) {
    return refuse(`DUPLICATE_CLIENT_ORDER_ID ${clientOrderId}`);
  }
  const price = positiveDecimal(change.price);
  const size = positiveDecimal(change.size);
  const stopPrice = positiveDecimal(change.stop_price);
  if (price === null || (price && order.type !== "LIMIT" && order.type !== "STOP_LIMIT")) {
    return refuse("INVALID_PRICE");
  }
  if (size === null) return refuse("INVALID_SIZE");
  if (stopPrice === null || (stopPrice && order.type !== "STOP" && order.type !== "STOP_LIMIT")) {
    return refuse("INVALID_STOP_PRICE");
  }
  if (!price && !size && !stopPrice) return refuse("NOTHING_TO_MODIFY");
  const perp = findPerp(order.symbol) as Perp;
  if (order.post_only && crossesBook({ ...order, price: price ?? order.price }, perp)) {
    return refuse("POST_ONLY_WOULD_CROSS");
  }
  if (tradingLocked.intx) return javalin(403, "ForbiddenResponse", "Trading is locked");

  book.clientOrderIds.add(clientOrderId);
  Object.assign(order, {
    client_order_id: clientOrderId,
    ...(price ? { price } : {}),
    ...(stopPrice ? { stop_price: stopPrice } : {}),
    ...(size ? { size, leaves_qty: size } : {}),
    event_type: "REPLACED",
    event_time: iso(req.nowMs),
  });
  effects.orders_modified++;
  effectsOf("intx", book.account).orders_modified++;
  execute(book, order, perp, req.nowMs);
  return Response.json(order);
}

function cancel(order: Order, nowMs: number): Order {
  Object.assign(order, { order_status: "DONE", event_type: "CANCELED", event_time: iso(nowMs) });
  effects.orders_cancelled++;
  return order;
}

/**
 * `DELETE /api/v1/orders/{id}?portfolio=`: cancels a WORKING order; an unknown one is 404, a DONE one 400. `portfolio`
 * must be in the query.
 */
function cancelOrder(req: VenueRequest, [id]: string[]): Response {
  const book = bookOf(req);
  const portfolioRef = req.url.searchParams.get("portfolio");
  if (portfolioRef === null) return portfolioRequired();
  const portfolio = findPortfolio(book, portfolioRef);
  if (!portfolio) return portfolioNotFound();
  const order = findOrder(book, id as string);
  if (!order || order.portfolio_id !== portfolio.portfolio_id) return orderNotFound();
  if (order.order_status !== "WORKING") return badRequest("Order already done");
  return Response.json(cancel(order, req.nowMs));
}

/**
 * `DELETE /api/v1/orders?portfolio=[&instrument=][&side=]`: cancels every matching WORKING order, listing them.
 * `portfolio` must be in the query; `instrument` and `side` may also come in the body.
 */
function cancelAllOrders(req: VenueRequest): Response {
  const book = bookOf(req);
  const params = deleteParams(req);
  const portfolioRef = req.url.searchParams.get("portfolio");
  if (portfolioRef === null) return portfolioRequired();
  const portfolio = findPortfolio(book, portfolioRef);
  if (!portfolio) return portfolioNotFound();
  const perp = params.instrument === undefined ? undefined : findPerp(params.instrument);
  if (params.instrument !== undefined && !perp) return badRequest("Instrument not found");
  const doomed = openOrders(book).filter(
    (o) =>
      o.portfolio_id === portfolio.portfolio_id &&
      (!perp || o.symbol === perp.symbol) &&
      (params.side === undefined || o.side === params.side),
  );
  return Response.json(doomed.map((o) => cancel(o, req.nowMs)));
}

// ---------------------------------------------------------------------------------------------------------------
// Routing.

type Handler = (req: VenueRequest, params: string[]) => Response;
type Route = [method: string, pattern: RegExp, handler: Handler];

const PUBLIC_ROUTES: Route[] = [
  ["GET", /^\/api\/v1\/assets$/, () => Response.json(ASSETS)],
  ["GET", /^\/api\/v1\/assets\/([^/]+)$/, getAsset],
  ["GET", /^\/api\/v1\/instruments$/, (req) => Response.json(PERPS.map((p) => instrumentView(p, req.nowMs)))],
  ["GET", /^\/api\/v1\/instruments\/([^/]+)$/, (req, params) => getInstrument(req, params)],
  ["GET", /^\/api\/v1\/instruments\/([^/]+)\/quote$/, (req, params) => getInstrument(req, params, "quote")],
  ["GET", /^\/api\/v1\/instruments\/([^/]+)\/funding$/, getFunding],
];

/** First match wins: `/portfolios/fills` comes before `/portfolios/{portfolio}`. */
const PRIVATE_ROUTES: Route[] = [
  ["GET", /^\/api\/v1\/portfolios$/, (req) => Response.json([portfolioView(bookOf(req))])],
  ["GET", /^\/api\/v1\/portfolios\/fills$/, listAllFills],
  ["GET", /^\/api\/v1\/portfolios\/([^/]+)$/, withPortfolio((book) => Response.json(portfolioView(book)))],
  ["GET", /^\/api\/v1\/portfolios\/([^/]+)\/balances$/, withPortfolio((book) => Response.json(balancesView(book)))],
  ["GET", /^\/api\/v1\/portfolios\/([^/]+)\/positions$/, withPortfolio(listPositions)],
  ["GET", /^\/api\/v1\/portfolios\/([^/]+)\/positions\/([^/]+)$/, withPortfolio(getPosition)],
  [
    "GET",
    /^\/api\/v1\/portfolios\/([^/]+)\/fills$/,
    withPortfolio((book, req) => listFills(book, req, [book.profile.portfolio.portfolio_id])),
  ],
  ["GET", /^\/api\/v1\/orders$/, listOpenOrders],
  ["POST", /^\/api\/v1\/orders$/, createOrder],
  ["DELETE", /^\/api\/v1\/orders$/, cancelAllOrders],
  ["GET", /^\/api\/v1\/orders\/([^/]+)$/, getOrder],
  ["PUT", /^\/api\/v1\/orders\/([^/]+)$/, modifyOrder],
  ["DELETE", /^\/api\/v1\/orders\/([^/]+)$/, cancelOrder],
];

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function match(routes: Route[], method: string, path: string): [Handler, string[]] | undefined {
  for (const [m, pattern, handler] of routes) {
    const found = m === method ? pattern.exec(path) : null;
    if (found) return [handler, found.slice(1).map(decode)];
  }
  return undefined;
}

/** A public route answers without authentication: the gateway skips every CB-ACCESS check for it. */
export const isIntxPublic = (method: string, path: string) => match(PUBLIC_ROUTES, method, path) !== undefined;

/** The INTX venue's business logic, after authentication (or none, for a public route). */
export function handleIntx(req: VenueRequest): Response {
  const path = req.url.pathname;
  const found = match(PUBLIC_ROUTES, req.method, path) ?? match(PRIVATE_ROUTES, req.method, path);
  return found ? found[0](req, found[1]) : notFound();
}
