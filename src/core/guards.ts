/**
 * Order guards: per-account limits checked before anything is signed, the last line of defence when an alert's
 * passphrase leaks or a strategy runs away. Also what `read_only` and a halt let through, by the kind of request
 * (its venue's profile classifies it: src/venues/profile.ts). Pure; the per-minute order count and the halt live in
 * the account's gate (adapters/rate-gate.ts).
 */

import type { RequestKind } from "../venues/profile.ts";
import { compareDecimal, type Decimal, multiplyDecimal, parseDecimal, formatDecimal as show } from "./decimal.ts";
import { isRecord, keysOf, type Parsed } from "./parse.ts";

/** True when a halted account still lets this kind through: reads, and whatever flattens (cancels, kill-switch). */
export function passesHalt(kind: RequestKind): boolean {
  return kind === "read" || kind === "cancel" || kind === "cancel_all" || kind === "kill_switch";
}

export function isOrder(kind: RequestKind): boolean {
  return kind === "order_create" || kind === "order_modify";
}

/** Each guard's value, parsed: one account's `guards` config key by key. */
interface GuardValues {
  instruments: readonly RegExp[];
  types: ReadonlySet<string>;
  tif: ReadonlySet<string>;
  close_only: boolean;
  max_size: ReadonlyMap<string, Decimal>;
  max_notional: ReadonlyMap<string, Decimal>;
  /** Counted by the account's gate, not here. */
  max_orders_per_minute: number;
}
type GuardKey = keyof GuardValues;

/** One account's parsed guards, by config key. Instrument names compare in upper case, as the venue lists them. */
export type Guards = { readonly [K in GuardKey]?: GuardValues[K] };

/** What an account lets through, beyond its allow-lists: `ACCOUNTS` `read_only` and `guards`. */
export interface AccountRules {
  /** Only reads pass (GET, HEAD, and the POST queries a venue's profile names). */
  readOnly: boolean;
  /** The parsed guards; a string when they could not be parsed, and then every order is refused (fail closed). */
  guards: Guards | string | undefined;
  /** The guards exactly as configured, for `GET /accounts`. */
  configured: unknown;
}

export const NO_RULES: AccountRules = { readOnly: false, guards: undefined, configured: undefined };

/** Why an order is refused: the rule's configuration key (or the field at fault) and a sentence for the caller. */
export interface Refusal {
  rule: string;
  message: string;
}

const INSTRUMENT = /^[A-Za-z0-9*][A-Za-z0-9_.*-]{0,63}$/;
const WORD = /^[A-Za-z_]{1,32}$/;

function glob(pattern: string): RegExp {
  const parts = pattern.toUpperCase().split("*");
  return new RegExp(`^${parts.map((part) => part.replace(/[.]/g, "\\.")).join(".*")}$`);
}

/** The strings of a non-empty list whose every item passes `test`, else undefined. */
function listOf(value: unknown, test: RegExp): string[] | undefined {
  const items: unknown[] = Array.isArray(value) ? value : [];
  const strings = items.flatMap((v) => (typeof v === "string" && test.test(v) ? [v] : []));
  return strings.length > 0 && strings.length === items.length ? strings : undefined;
}

function instruments(value: unknown): readonly RegExp[] {
  const names = listOf(value, INSTRUMENT);
  if (!names) throw new Error('instruments must be a non-empty list of names or * globs, e.g. ["BTC-PERP", "ETH-*"]');
  return names.map(glob);
}

function words(value: unknown, key: string): ReadonlySet<string> {
  const names = listOf(value, WORD);
  if (!names) throw new Error(`${key} must be a non-empty list of names, e.g. ["LIMIT"]`);
  return new Set(names);
}

function limits(value: unknown, key: string): ReadonlyMap<string, Decimal> {
  if (!isRecord(value) || Object.keys(value).length === 0) {
    throw new Error(`${key} must map instruments (or "*") to decimal strings, e.g. {"BTC-PERP": "0.5"}`);
  }
  const out = new Map<string, Decimal>();
  for (const [instrument, limit] of Object.entries(value)) {
    if (instrument !== "*" && (!INSTRUMENT.test(instrument) || instrument.includes("*"))) {
      throw new Error(`${key}: ${JSON.stringify(instrument.slice(0, 40))} is not an instrument name or "*"`);
    }
    const parsed = typeof limit === "string" ? parseDecimal(limit) : undefined;
    if (!parsed) {
      throw new Error(`${key} ${instrument}: ${JSON.stringify(limit)} is not a plain decimal string such as "0.5"`);
    }
    if (out.has(instrument.toUpperCase())) throw new Error(`${key} names ${instrument} twice (names ignore case)`);
    out.set(instrument.toUpperCase(), parsed);
  }
  return out;
}

function perMinute(value: unknown): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 1) return value;
  throw new Error("max_orders_per_minute must be a whole number, at least 1");
}

function flag(value: unknown, key: string): boolean {
  if (typeof value === "boolean") return value;
  throw new Error(`${key} must be true or false`);
}

/**
 * An instrument's symbol, `BASE-QUOTE` (BTC-PERP, ETH-USDC): the venue also takes an instrument's ID or UUID, which
 * no guard would match, so those are refused.
 */
const SYMBOL = /^(?=[A-Z0-9]*[A-Z])[A-Z0-9]{1,20}-(?=[A-Z0-9]*[A-Z])[A-Z0-9]{1,20}$/i;

/** A field as the caller wrote it, short and quoted where it is not a plain string, for a message. */
function shown(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/** The smallest of the limits: a modify names no instrument, so it is held to the tightest one configured. */
function tightest(limits: ReadonlyMap<string, Decimal> | undefined): Decimal | undefined {
  let least: Decimal | undefined;
  for (const limit of limits?.values() ?? []) if (!least || compareDecimal(limit, least) < 0) least = limit;
  return least;
}

/** An instrument's own limit, else the `*` one. */
function limitFor(limits: ReadonlyMap<string, Decimal> | undefined, name: string): Decimal | undefined {
  return limits?.get(name) ?? limits?.get("*");
}

/** An order as the guards see it: its fields, and its `size` and `price` already read as decimals. */
interface OrderView {
  fields: Record<string, unknown>;
  size: Decimal | undefined;
  price: Decimal | undefined;
}
/** A create: it names its instrument by symbol (`name`: in upper case, as limits are keyed). */
interface NewOrder extends OrderView {
  name: string;
}
/** A create whose size is there. */
interface SizedOrder extends NewOrder {
  size: Decimal;
}

/**
 * When a guard is checked: `create`, what a create is (its instrument, type, tif); `sized`, how big a create is,
 * once its size is known to be there; `modify`, a modify, which names no instrument and changes size and price only.
 */
interface StageOrder {
  create: NewOrder;
  sized: SizedOrder;
  modify: OrderView;
}
type Stage = keyof StageOrder;
/** A guard's check at one stage: why the order breaks it, or undefined. */
type Check<T, S extends Stage> = (limit: T, order: StageOrder[S], guards: Guards) => string | undefined;

/** One guard: its config value's parser (it throws an Error naming the key) and its checks. */
type GuardRule<T> = { parse: (value: unknown, key: string) => T } & Checks<T>;
type Checks<T> = { [S in Stage]?: Check<T, S> };

/** Every guard, by config key: adding one is one entry (and its value's type in `GuardValues`). In check order. */
const GUARDS: { [K in GuardKey]: GuardRule<GuardValues[K]> } = {
  instruments: {
    parse: instruments,
    create: (patterns, { fields, name }) =>
      patterns.some((pattern) => pattern.test(name))
        ? undefined
        : `instrument ${shown(fields.instrument)} is not in instruments`,
  },
  types: {
    parse: words,
    create: (types, { fields }) =>
      typeof fields.type === "string" && types.has(fields.type)
        ? undefined
        : `type ${shown(fields.type)} is not in types`,
  },
  tif: {
    parse: words,
    create: (tifs, { fields }) =>
      typeof fields.tif === "string" && tifs.has(fields.tif) ? undefined : `tif ${shown(fields.tif)} is not in tif`,
  },
  close_only: {
    parse: flag,
    create: (closeOnly, { fields }) =>
      !closeOnly || fields.close_only === true
        ? undefined
        : 'the account is close_only: the order must carry "close_only": true',
  },
  max_size: {
    parse: limits,
    sized: (limits, { fields, name, size }) => {
      const max = limitFor(limits, name);
      if (!max || compareDecimal(size, max) <= 0) return undefined;
      return `size ${shown(fields.size)} is over max_size ${show(max)} for ${shown(fields.instrument)}`;
    },
    modify: (limits, { fields, size }) => {
      const max = tightest(limits);
      if (!size || !max || compareDecimal(size, max) <= 0) return undefined;
      return `size ${shown(fields.size)} is over the tightest max_size ${show(max)} for a modify`;
    },
  },
  max_notional: { parse: limits, sized: notionalOfCreate, modify: notionalOfModify },
  max_orders_per_minute: { parse: perMinute },
};
const GUARD_KEYS = keysOf(GUARDS);

/** max_notional on a create: what its price bounds, and a max_size where its price bounds nothing. */
function notionalOfCreate(limits: ReadonlyMap<string, Decimal>, order: SizedOrder, guards: Guards) {
  const { fields, name, size, price } = order;
  const max = limitFor(limits, name);
  if (!max) return undefined;
  // `price` is the limit of a LIMIT or STOP_LIMIT order; a MARKET or STOP order ignores it.
  const limit = fields.type === "LIMIT" || fields.type === "STOP_LIMIT" ? price : undefined;
  const notional = limit && multiplyDecimal(size, limit);
  if (notional && compareDecimal(notional, max) > 0) {
    return `notional ${show(notional)} (size × price) is over max_notional ${show(max)} for ${shown(fields.instrument)}`;
  }
  // Only a BUY's limit bounds what it costs (it fills at that price or lower). A SELL fills at its price or higher,
  // an unpriced order at any price: those are bounded by max_size, or not at all.
  if (!(limit && fields.side === "BUY") && !limitFor(guards.max_size, name)) {
    return `a ${shown(fields.side)} ${shown(fields.type)} order cannot be held to max_notional ${show(max)} for ${shown(fields.instrument)} by its price (set max_size too)`;
  }
  return undefined;
}

/** max_notional on a modify: held to the tightest limit, and only with both size and price, and a max_size. */
function notionalOfModify(limits: ReadonlyMap<string, Decimal>, { size, price }: OrderView, guards: Guards) {
  const max = tightest(limits);
  if (!max || !(size || price)) return undefined;
  if (!size || !price) return "a modify under max_notional must carry both size and price to be checked";
  if (compareDecimal(multiplyDecimal(size, price), max) > 0) {
    return `notional ${show(multiplyDecimal(size, price))} is over the tightest max_notional ${show(max)} for a modify`;
  }
  // The order's side and type are not in a modify: its price may not bound what it costs (see notionalOfCreate).
  return tightest(guards.max_size) ? undefined : "a modify under max_notional needs a max_size to be checked";
}

/** Parses an account's `guards`; throws an Error whose message names the key at fault. */
export function parseGuards(value: unknown): Guards {
  if (!isRecord(value)) throw new Error("guards must be an object");
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(GUARDS, key)) throw new Error(`guards has an unknown key ${JSON.stringify(key.slice(0, 40))}`);
  }
  const guards: { -readonly [K in GuardKey]?: GuardValues[K] } = {};
  for (const key of GUARD_KEYS) parseOne(key, value[key], guards);
  return guards;
}

function parseOne<K extends GuardKey>(key: K, value: unknown, into: { -readonly [P in GuardKey]?: GuardValues[P] }) {
  if (value !== undefined) into[key] = GUARDS[key].parse(value, key);
}

/** The first guard `order` breaks at `stage`, in table order. */
function broken<S extends Stage>(guards: Guards, stage: S, order: StageOrder[S]): Refusal | undefined {
  for (const key of GUARD_KEYS) {
    const message = checkOne(key, guards, stage, order);
    if (message !== undefined) return { rule: key, message };
  }
  return undefined;
}

function checkOne<K extends GuardKey, S extends Stage>(key: K, guards: Guards, stage: S, order: StageOrder[S]) {
  const checks: Checks<GuardValues[K]> = GUARDS[key];
  const check: Check<GuardValues[K], S> | undefined = checks[stage];
  const limit: GuardValues[K] | undefined = guards[key];
  return limit === undefined || check === undefined ? undefined : check(limit, order, guards);
}

/** The decimal in `order[field]`, undefined when absent; a Refusal when present but not a plain decimal string. */
function decimalField(order: Record<string, unknown>, field: string): Decimal | undefined | Refusal {
  const value = order[field];
  if (value === undefined) return undefined;
  const parsed = typeof value === "string" ? parseDecimal(value) : undefined;
  return parsed ?? { rule: field, message: `${field} ${shown(value)} is not a plain decimal string such as "0.5"` };
}

function isRefusal(value: unknown): value is Refusal {
  return typeof value === "object" && value !== null && "rule" in value;
}

/** The guards a create breaks: first what it is (its symbol, then each guard), then, with its size, how big. */
function checkCreate(guards: Guards, order: OrderView): Refusal | undefined {
  const instrument = order.fields.instrument;
  if (typeof instrument !== "string" || instrument === "")
    return { rule: "instrument", message: "instrument is missing" };
  if (!SYMBOL.test(instrument)) {
    const message = `instrument ${shown(instrument)} is not a symbol such as BTC-PERP: guards match symbols`;
    return { rule: "instrument", message };
  }
  const named = { ...order, name: instrument.toUpperCase() };
  const what = broken(guards, "create", named);
  if (what) return what;
  const { size } = named;
  if (!size) return { rule: "size", message: "size is missing" };
  return broken(guards, "sized", { ...named, size });
}

/**
 * Checks one order against `guards`. `order` is the parsed body; `label` names the account (`intx/alpha`).
 * Returns the first rule it breaks, or undefined when it may go. The per-minute count is the gate's.
 */
export function checkOrder(
  guards: Guards,
  kind: "order_create" | "order_modify",
  order: unknown,
  label: string,
): Refusal | undefined {
  const refuse = ({ rule, message }: Refusal): Refusal => ({ rule, message: `${message} (account ${label})` });
  if (!isRecord(order)) return refuse({ rule: "body", message: "the body is not a JSON order object" });
  const size = decimalField(order, "size");
  if (isRefusal(size)) return refuse(size);
  const price = decimalField(order, "price");
  if (isRefusal(price)) return refuse(price);
  const view = { fields: order, size, price };
  const refusal = kind === "order_modify" ? broken(guards, "modify", view) : checkCreate(guards, view);
  return refusal && refuse(refusal);
}

/** What may be sent after `screen`: the body to sign, and the order limit the gate must count it against. */
export interface Screened {
  body: string | Uint8Array | undefined;
  ordersPerMinute: number | undefined;
}

/** A refusal under the account's own rules: `read_only` (403) or an order guard (422). */
export interface RuleRefusal {
  refused: { status: 403 | 422; code: "read_only" | "order_refused"; rule: string; message: string };
}

/**
 * The account's rules for one request, before anything is signed: `read_only` lets reads only; an order on an
 * account with guards must be a JSON object that passes them, and is then re-serialised, so the venue reads exactly
 * the order that was checked (a duplicate key or an escape cannot make it read another size). `label` names the
 * account (`intx/alpha`). The halt and the per-minute count are the gate's.
 */
export function screen(
  rules: AccountRules,
  kind: RequestKind,
  body: string | Uint8Array | undefined,
  label: string,
): Screened | RuleRefusal {
  const refused = (status: 403 | 422, rule: string, message: string): RuleRefusal => ({
    refused: { status, code: status === 403 ? "read_only" : "order_refused", rule, message },
  });
  if (kind !== "read" && rules.readOnly) return refused(403, "read_only", `account ${label} is read_only`);
  if (!isOrder(kind) || rules.guards === undefined) return { body, ordersPerMinute: undefined };
  if (typeof rules.guards === "string") {
    return refused(422, "guards", `account ${label} has guards that cannot be parsed, so every order is refused`);
  }
  let order: unknown;
  try {
    const text =
      typeof body === "string" ? body : new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(body);
    order = JSON.parse(text);
  } catch {
    order = undefined;
  }
  const refusal = checkOrder(rules.guards, kind === "order_modify" ? kind : "order_create", order, label);
  if (refusal) return refused(422, refusal.rule, refusal.message);
  return { body: JSON.stringify(order), ordersPerMinute: rules.guards.max_orders_per_minute };
}

/** A halt's reason (it is shown and logged): 1-200 characters, no control characters. */
export function parseHaltReason(reason: unknown): Parsed<string> {
  if (typeof reason === "string" && /^[^\p{Cc}]{1,200}$/u.test(reason) && reason.trim() !== "") {
    return { ok: true, value: reason };
  }
  return { ok: false, problem: 'say why: {"reason": "…"}, 1-200 characters, no control characters' };
}
