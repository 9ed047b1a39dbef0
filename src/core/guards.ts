/**
 * Order guards: per-account limits checked before anything is signed, the last line of defence when an alert's
 * passphrase leaks or a strategy runs away. Also what `read_only` and a halt let through, by the kind of request
 * (its venue's profile classifies it: src/venues/profile.ts). Pure; the per-minute order count and the halt live in
 * the account's gate (adapters/rate-gate.ts).
 */

import type { RequestKind } from "../venues/profile.ts";
import { compareDecimal, type Decimal, multiplyDecimal, parseDecimal, formatDecimal as show } from "./decimal.ts";
import { isRecord } from "./parse.ts";

/** True when a halted account still lets this kind through: reads, and whatever flattens (cancels, kill-switch). */
export function passesHalt(kind: RequestKind): boolean {
  return kind === "read" || kind === "cancel" || kind === "cancel_all" || kind === "kill_switch";
}

export function isOrder(kind: RequestKind): boolean {
  return kind === "order_create" || kind === "order_modify";
}

/** One account's parsed guards. Instrument names compare in upper case, as the venue lists them. */
export interface Guards {
  instruments: readonly RegExp[] | undefined;
  maxSize: ReadonlyMap<string, Decimal>;
  maxNotional: ReadonlyMap<string, Decimal>;
  types: ReadonlySet<string> | undefined;
  tif: ReadonlySet<string> | undefined;
  maxOrdersPerMinute: number | undefined;
  closeOnly: boolean;
}

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

const KEYS = new Set([
  "instruments",
  "max_size",
  "max_notional",
  "types",
  "tif",
  "max_orders_per_minute",
  "close_only",
]);
const INSTRUMENT = /^[A-Za-z0-9*][A-Za-z0-9_.*-]{0,63}$/;
const WORD = /^[A-Za-z_]{1,32}$/;

function glob(pattern: string): RegExp {
  const parts = pattern.toUpperCase().split("*");
  return new RegExp(`^${parts.map((part) => part.replace(/[.]/g, "\\.")).join(".*")}$`);
}

function words(value: unknown, key: string): ReadonlySet<string> {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === "string" && WORD.test(v))) {
    throw new Error(`${key} must be a non-empty list of names, e.g. ["LIMIT"]`);
  }
  return new Set(value as string[]);
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

/** Parses an account's `guards`; throws an Error whose message names the key at fault. */
export function parseGuards(value: unknown): Guards {
  if (!isRecord(value)) throw new Error("guards must be an object");
  for (const key of Object.keys(value)) {
    if (!KEYS.has(key)) throw new Error(`guards has an unknown key ${JSON.stringify(key.slice(0, 40))}`);
  }
  const { instruments, max_size, max_notional, types, tif, max_orders_per_minute, close_only } = value;
  if (
    instruments !== undefined &&
    (!Array.isArray(instruments) ||
      instruments.length === 0 ||
      !instruments.every((v) => typeof v === "string" && INSTRUMENT.test(v)))
  ) {
    throw new Error('instruments must be a non-empty list of names or * globs, e.g. ["BTC-PERP", "ETH-*"]');
  }
  if (
    max_orders_per_minute !== undefined &&
    !(Number.isInteger(max_orders_per_minute) && (max_orders_per_minute as number) >= 1)
  ) {
    throw new Error("max_orders_per_minute must be a whole number, at least 1");
  }
  if (close_only !== undefined && typeof close_only !== "boolean") throw new Error("close_only must be true or false");
  return {
    instruments: instruments === undefined ? undefined : (instruments as string[]).map(glob),
    maxSize: max_size === undefined ? new Map() : limits(max_size, "max_size"),
    maxNotional: max_notional === undefined ? new Map() : limits(max_notional, "max_notional"),
    types: types === undefined ? undefined : words(types, "types"),
    tif: tif === undefined ? undefined : words(tif, "tif"),
    maxOrdersPerMinute: max_orders_per_minute as number | undefined,
    closeOnly: close_only === true,
  };
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
function tightest(limits: ReadonlyMap<string, Decimal>): Decimal | undefined {
  let least: Decimal | undefined;
  for (const limit of limits.values()) if (!least || compareDecimal(limit, least) < 0) least = limit;
  return least;
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
  const refuse = (rule: string, message: string): Refusal => ({ rule, message: `${message} (account ${label})` });
  if (!isRecord(order)) return refuse("body", "the body is not a JSON order object");
  const size = decimalField(order, "size");
  if (isRefusal(size)) return refuse(size.rule, size.message);
  const price = decimalField(order, "price");
  if (isRefusal(price)) return refuse(price.rule, price.message);
  const text = (field: string) => shown(order[field]);

  if (kind === "order_modify") {
    // A modify names no instrument, and cannot change type, tif or close_only: size and price are held to the
    // tightest limits configured.
    const maxSize = tightest(guards.maxSize);
    if (size && maxSize && compareDecimal(size, maxSize) > 0) {
      return refuse("max_size", `size ${text("size")} is over the tightest max_size ${show(maxSize)} for a modify`);
    }
    const maxNotional = tightest(guards.maxNotional);
    if (maxNotional && (size || price)) {
      if (!size || !price) {
        return refuse("max_notional", "a modify under max_notional must carry both size and price to be checked");
      }
      if (compareDecimal(multiplyDecimal(size, price), maxNotional) > 0) {
        return refuse(
          "max_notional",
          `notional ${show(multiplyDecimal(size, price))} is over the tightest max_notional ${show(maxNotional)} for a modify`,
        );
      }
      // The order's side and type are not in a modify: its price may not bound what it costs (see below).
      if (!maxSize) return refuse("max_notional", "a modify under max_notional needs a max_size to be checked");
    }
    return undefined;
  }

  const instrument = order.instrument;
  if (typeof instrument !== "string" || instrument === "") return refuse("instrument", "instrument is missing");
  if (!SYMBOL.test(instrument)) {
    return refuse(
      "instrument",
      `instrument ${shown(instrument)} is not a symbol such as BTC-PERP: guards match symbols`,
    );
  }
  const name = instrument.toUpperCase();
  if (guards.instruments && !guards.instruments.some((pattern) => pattern.test(name))) {
    return refuse("instruments", `instrument ${shown(instrument)} is not in instruments`);
  }
  if (guards.types && !(typeof order.type === "string" && guards.types.has(order.type))) {
    return refuse("types", `type ${text("type")} is not in types`);
  }
  if (guards.tif && !(typeof order.tif === "string" && guards.tif.has(order.tif))) {
    return refuse("tif", `tif ${text("tif")} is not in tif`);
  }
  if (guards.closeOnly && order.close_only !== true) {
    return refuse("close_only", 'the account is close_only: the order must carry "close_only": true');
  }
  if (!size) return refuse("size", "size is missing");
  const maxSize = guards.maxSize.get(name) ?? guards.maxSize.get("*");
  if (maxSize && compareDecimal(size, maxSize) > 0) {
    return refuse("max_size", `size ${text("size")} is over max_size ${show(maxSize)} for ${shown(instrument)}`);
  }
  const maxNotional = guards.maxNotional.get(name) ?? guards.maxNotional.get("*");
  if (maxNotional) {
    // `price` is the limit of a LIMIT or STOP_LIMIT order; a MARKET or STOP order ignores it.
    const priced = price !== undefined && (order.type === "LIMIT" || order.type === "STOP_LIMIT");
    const notional = priced ? multiplyDecimal(size, price) : undefined;
    if (notional && compareDecimal(notional, maxNotional) > 0) {
      return refuse(
        "max_notional",
        `notional ${show(notional)} (size × price) is over max_notional ${show(maxNotional)} for ${shown(instrument)}`,
      );
    }
    // Only a BUY's limit bounds what it costs (it fills at that price or lower). A SELL fills at its price or higher,
    // an unpriced order at any price: those are bounded by max_size, or not at all.
    if (!(priced && order.side === "BUY") && !maxSize) {
      return refuse(
        "max_notional",
        `a ${text("side")} ${text("type")} order cannot be held to max_notional ${show(maxNotional)} for ${shown(instrument)} by its price (set max_size too)`,
      );
    }
  }
  return undefined;
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
  const refusal = checkOrder(rules.guards, kind as "order_create" | "order_modify", order, label);
  if (refusal) return refused(422, refusal.rule, refusal.message);
  return { body: JSON.stringify(order), ordersPerMinute: rules.guards.maxOrdersPerMinute };
}

/** Why a halt's reason is not acceptable (it is shown and logged): 1-200 characters, no control characters. */
export function haltReasonProblem(reason: unknown): string | undefined {
  if (typeof reason === "string" && /^[^\p{Cc}]{1,200}$/u.test(reason) && reason.trim() !== "") return undefined;
  return 'say why: {"reason": "…"}, 1-200 characters, no control characters';
}
