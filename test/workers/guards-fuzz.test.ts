// Order guards, fuzzed end to end: random and hostile order bodies go through the Worker to the simulator, which
// enforces no guard and records every create that reaches it, fields as sent. The oracle below is written from the
// "Order guards and halt" section of docs/accounts.md (big.js for the decimals, a plain regex for "plain decimal"), never from
// src/, and the property is: nothing reaches the venue unless the oracle says it satisfies every rule, every request
// the oracle refuses is a 422 order_refused, and everything the oracle lets through reaches the venue exactly once
// (and is placed, 200, when the simulator itself takes such an order; it answers 400 to, say, "btc-perp").
// Sequential, about 230 requests in all; a failure names the exact body, shrunk by fast-check.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import Big from "big.js";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import worker from "../../src/index.ts";
import { DEV_ALPHA, type SimOrderRecord, simControl, simEnv } from "../support/sim.ts";

// ---------------------------------------------------------------------------------------------------------------
// The account's guards, and the oracle: the rules of docs/accounts.md, restated independently of src/.

const MAX_SIZE = new Map([
  ["BTC-PERP", "0.5"],
  ["*", "3"],
]);
const MAX_NOTIONAL = new Map([
  ["BTC-PERP", "30000"],
  ["ETH-PERP", "5000"],
]);
const TYPES = ["LIMIT", "MARKET"];
const TIFS = ["GTC", "IOC"];
const GUARDS = {
  instruments: ["BTC-PERP", "ETH-*"],
  max_size: Object.fromEntries(MAX_SIZE),
  max_notional: Object.fromEntries(MAX_NOTIONAL),
  types: TYPES,
  tif: TIFS,
  close_only: false,
};

/**
 * The docs leave a few edges open (it gives no length limits, and "significant digits" can be read two ways),
 * where src/ may refuse, which is safe. So the oracle reads it two ways, and either answer is right, for:
 *  - a decimal longer than 64 characters ("0000…0.5": one significant digit, and plain);
 *  - a symbol with a part longer than 20 characters ("ETH-PERPPERPPERPPERPPERPPERP");
 *  - an integer part whose trailing zeros take it past 18 digits ("30000000000000000000000": 1 significant digit).
 * `strict` refuses those. An order must reach the venue when it passes strictly, must not when it fails leniently,
 * and every order the venue receives must pass leniently.
 */
interface Reading {
  strict: boolean;
}

/** docs/accounts.md: digits with at most one point inside, at most 18 significant digits. */
const PLAIN = /^\d+(\.\d+)?$/;
function plainDecimal(value: unknown, { strict }: Reading): Big | undefined {
  if (typeof value !== "string" || !PLAIN.test(value) || (strict && value.length > 64)) return undefined;
  const big = new Big(value);
  // Big keeps the significant digits in `c` (no leading or trailing zeros) and the exponent in `e`. Whether an
  // integer's own trailing zeros are significant (3 followed by 22 zeros: 1 digit, or 23) is the strict reading's.
  const digits = strict ? Math.max(big.c.length, big.e + 1) : big.c.length;
  return digits <= 18 ? big : undefined;
}

/**
 * docs/accounts.md: an order names its instrument by symbol, `BASE-QUOTE` (asset codes: letters and digits, at least one
 * letter), never by ID or UUID; it must match one of the names or `*` globs of `instruments`, case-insensitively.
 */
const PART = "[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*";
const SYMBOL = new RegExp(`^${PART}-${PART}$`);
function isSymbol(instrument: string, { strict }: Reading): boolean {
  return SYMBOL.test(instrument) && !(strict && instrument.split("-").some((part) => part.length > 20));
}
function listedInstrument(upper: string): boolean {
  return upper === "BTC-PERP" || upper.startsWith("ETH-");
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The rule a create breaks under `reading`, or undefined when it satisfies every rule. `order` is as JSON.parse reads it. */
function brokenRule(order: unknown, reading: Reading): string | undefined {
  if (!isObject(order)) return "body";
  const size = plainDecimal(order.size, reading);
  if (order.size !== undefined && !size) return "size";
  const price = plainDecimal(order.price, reading);
  if (order.price !== undefined && !price) return "price";
  const instrument = order.instrument;
  if (typeof instrument !== "string" || !isSymbol(instrument, reading)) return "instrument";
  const upper = instrument.toUpperCase();
  if (!listedInstrument(upper)) return "instruments";
  if (typeof order.type !== "string" || !TYPES.includes(order.type)) return "types";
  if (typeof order.tif !== "string" || !TIFS.includes(order.tif)) return "tif";
  if (!size) return "size";
  const maxSize = MAX_SIZE.get(upper) ?? MAX_SIZE.get("*");
  if (maxSize !== undefined && size.gt(maxSize)) return "max_size";
  const maxNotional = MAX_NOTIONAL.get(upper) ?? MAX_NOTIONAL.get("*");
  if (maxNotional !== undefined) {
    // size × price for a LIMIT or STOP_LIMIT order (MARKET and STOP ignore price); only a BUY's limit bounds what it
    // costs, so anything else needs a max_size as well.
    const limitPrice = order.type === "LIMIT" || order.type === "STOP_LIMIT" ? price : undefined;
    if (limitPrice && size.times(limitPrice).gt(maxNotional)) return "max_notional";
    if (!(limitPrice && order.side === "BUY") && maxSize === undefined) return "max_notional";
  }
  return undefined;
}
const STRICT: Reading = { strict: true };
const LENIENT: Reading = { strict: false };

/**
 * Whether the simulator places an order the guards let through (sim/src/intx.ts createOrder): it knows instruments by
 * their exact symbol only, wants a positive size, a positive price when one is given and on a LIMIT, and IOC on a
 * MARKET. Those it does not take it answers 400, after recording them as received. A `close_only` order it takes
 * only when it reduces the position, which earlier fills in the run decide: for one, undefined (200 or 400).
 */
function simTakes(order: Record<string, unknown>): boolean | undefined {
  const size = plainDecimal(order.size, LENIENT);
  const price = order.price === undefined ? undefined : plainDecimal(order.price, LENIENT);
  const valid =
    (order.side === "BUY" || order.side === "SELL") &&
    typeof order.client_order_id === "string" &&
    ["BTC-PERP", "ETH-PERP", "SOL-PERP"].includes(order.instrument as string) &&
    size?.gt(0) === true &&
    (order.price === undefined || price?.gt(0) === true) &&
    (order.type !== "LIMIT" || order.price !== undefined) &&
    (order.type !== "MARKET" || order.tif === "IOC");
  return valid && order.close_only === true ? undefined : valid;
}

// ---------------------------------------------------------------------------------------------------------------
// Generators. `undefined` means the field is left out (JSON.stringify drops it).

const oddInstrument = fc.constantFrom<unknown>(
  "btc-perp",
  "eth-perp",
  "Btc-Perp",
  "SOL-PERP",
  "sol-perp",
  "DOGE-PERP",
  "BTC-USDC",
  "149264164756389888", // ETH-PERP's numeric id at the simulator
  "149264167780483072",
  "e9360798-6a10-45d6-af05-67c30eb91e2d", // ETH-PERP's UUID
  "114jqr89-0-0", // BTC-PERP's (non-numeric) instrument_id at the simulator
  "",
  "ETH-",
  "ETH-FOO",
  "BTC-PERP ",
  " BTC-PERP",
  "BTC-PERPX",
  "ETH-PERPPERPPERPPERPPERPPERP", // a 24-character quote
  "ETH-2024", // a quote without a letter
  "ETH-PERP\n",
  "ETH-\u2028",
  "eth-perp\r",
  "BTC_PERP",
  "\u017Fol-perp", // ſ, which upper-cases to S
  "BTC",
  "\u0415TH-PERP", // Cyrillic Е
  "*",
  "ETH-*",
  12,
  null,
  ["BTC-PERP"],
  undefined,
);
const instrument = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<unknown>("BTC-PERP", "ETH-PERP") },
  { weight: 5, arbitrary: oddInstrument },
);

const validSize = fc.oneof(
  fc.constantFrom(
    "0.5",
    "0.50000000",
    "0.50000001",
    "0.49999999",
    "0.500000000000000000", // 1 significant digit, 20 characters
    "0.500000000000000001", // 18 significant digits, just over
    "0.1",
    "0.0001",
    "0000.5",
    "1",
    "2",
    "3",
    "3.0",
    "3.00000001",
    "2.99999999",
    "0",
    "0.000000000000000001",
    `${"0".repeat(61)}.5`, // 63 characters
    `${"0".repeat(63)}.5`, // 65 characters, 1 significant digit
    `0.1${"0".repeat(62)}`, // 65 characters, 1 significant digit
  ),
  fc
    .tuple(fc.integer({ min: 0, max: 4 }), fc.option(fc.stringMatching(/^\d{1,9}$/), { nil: undefined }))
    .map(([whole, fraction]) => (fraction === undefined ? `${whole}` : `${whole}.${fraction}`)),
);

const hostileDecimal = fc.constantFrom<unknown>(
  "1e3",
  "1E-1",
  "0x10",
  "-1",
  "-0.1",
  "+1",
  "NaN",
  "Infinity",
  " 1",
  "1 ",
  "0.1\n",
  "1.0.0",
  "",
  ".5",
  "5.",
  "1,5",
  "\uff10.\uff15", // full-width 0.5
  "1234567890123456789", // 19 digits
  "1000000000000000000", // 19 digits, 1 significant
  "0.1000000000000000001", // 19 significant digits
  "0.0000000000000000000000000000000000000000000000000000000000000001", // 66 characters, 1 significant digit
  12,
  0.1,
  1e21,
  null,
  true,
  ["0.1"],
  { value: "0.1" },
);

const size = fc.oneof(
  { weight: 7, arbitrary: validSize },
  { weight: 3, arbitrary: hostileDecimal },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

/** A price the order builder derives from the size and the instrument's max_notional: just under, at or just over. */
interface Boundary {
  boundary: -1 | 0 | 1;
}
const price = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.constantFrom<unknown>(
      "60000",
      "60000.0",
      "60000.00000001",
      "59999.99999999",
      "2500",
      "2500.00000001",
      "1666.66666667",
      "1666.66666666",
      "10000",
      "100",
      "0.1",
      "0",
    ),
  },
  { weight: 4, arbitrary: fc.constantFrom<-1 | 0 | 1>(-1, 0, 1).map((boundary): Boundary => ({ boundary })) },
  { weight: 2, arbitrary: hostileDecimal },
  { weight: 2, arbitrary: fc.constant(undefined) },
);

const badType = fc.constantFrom<unknown>("STOP", "STOP_LIMIT", "limit", "Market", "LIMIT ", "", 1, null, undefined);
const badTif = fc.constantFrom<unknown>("FOK", "GTT", "gtc", "IOC ", "", 0, null, undefined);
const typeAndTif: fc.Arbitrary<readonly unknown[]> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(["LIMIT", "GTC"], ["LIMIT", "IOC"], ["MARKET", "IOC"]) },
  { weight: 1, arbitrary: fc.constant(["MARKET", "GTC"]) },
  {
    weight: 3,
    arbitrary: fc.tuple(
      fc.oneof(fc.constantFrom("LIMIT", "MARKET"), badType),
      fc.oneof(fc.constantFrom("GTC", "IOC"), badTif),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown[]>([undefined, "GTC"], ["LIMIT", undefined], [undefined, undefined]),
  },
);

function resolvePrice(p: unknown, sizeValue: unknown, instrumentValue: unknown): unknown {
  if (!(typeof p === "object" && p !== null && "boundary" in p)) return p;
  const limit = typeof instrumentValue === "string" ? MAX_NOTIONAL.get(instrumentValue.toUpperCase()) : undefined;
  const s = plainDecimal(sizeValue, LENIENT);
  if (!limit || !s || s.eq(0)) return "50000";
  const at = new Big(limit).div(s).round(8, Big.roundDown);
  const moved = at.plus(new Big((p as Boundary).boundary).times("0.00000001"));
  return (moved.gt(0) ? moved : at).toFixed(8);
}

const side = fc.constantFrom("BUY", "SELL");
const closeOnly = fc.constantFrom<unknown>(undefined, undefined, false, true, "true");

interface Fields {
  instrument: unknown;
  size: unknown;
  price: unknown;
  type: unknown;
  tif: unknown;
  side: string;
  close_only: unknown;
}
const splitTypeAndTif = ({
  typeAndTif: [type, tif],
  ...f
}: Omit<Fields, "type" | "tif"> & { typeAndTif: readonly unknown[] }): Fields => ({ ...f, type, tif });

/** Anything goes in every field: most of these break some rule. */
const wildFields: fc.Arbitrary<Fields> = fc
  .record({ instrument, size, price, typeAndTif, side, close_only: closeOnly })
  .map(splitTypeAndTif);

/** Orders near the limits (see `nearValid`). */
const tameFields: fc.Arbitrary<Fields> = fc
  .record({
    instrument: fc.constantFrom<unknown>("BTC-PERP", "ETH-PERP", "BTC-PERP", "ETH-PERP", "btc-perp", "eth-perp"),
    size: fc.oneof(
      validSize,
      fc.constantFrom("0.1", "0.25", "0.5", "0.49999999", "1", "2.5", "3"),
    ) as fc.Arbitrary<unknown>,
    price: fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom<-1 | 0 | 1>(-1, 0, 0, 1).map((boundary): Boundary => ({ boundary })) },
      { weight: 2, arbitrary: fc.constantFrom<unknown>("60000", "59999.99999999", "2500", "1666.66666666", "100") },
      { weight: 1, arbitrary: fc.constant(undefined) },
    ),
    typeAndTif: fc.constantFrom<unknown[]>(["LIMIT", "GTC"], ["LIMIT", "IOC"], ["MARKET", "IOC"]),
    side,
    close_only: closeOnly,
  })
  .map(splitTypeAndTif);
/** A tame order, or (half the time) one with a single field made odd: each rule is met on its own. */
const nearValid = fc
  .tuple(
    tameFields,
    fc.option(
      fc.oneof(
        fc.record({
          field: fc.constant("instrument"),
          value: fc.oneof(oddInstrument, fc.constantFrom("SOL-PERP", "DOGE-PERP", "BTC-USDC", "XRP-PERP")),
        }),
        fc.record({ field: fc.constantFrom("size", "price"), value: hostileDecimal }),
        fc.record({ field: fc.constant("type"), value: badType }),
        fc.record({ field: fc.constant("tif"), value: badTif }),
      ),
      { freq: 2 },
    ),
  )
  .map(([tame, bad]): Fields => (bad === null ? tame : { ...tame, [bad.field]: bad.value }));

const toOrder = (f: Fields) => ({
  side: f.side,
  instrument: f.instrument,
  type: f.type,
  tif: f.tif,
  size: f.size,
  price: resolvePrice(f.price, f.size, f.instrument),
  close_only: f.close_only,
});

/** An order's fields, without client_order_id (added when sent, unique). */
const orderFields = fc.oneof({ weight: 1, arbitrary: wildFields }, { weight: 3, arbitrary: nearValid }).map(toOrder);

/** A raw body with `%ID%` where the client_order_id goes, and what trick it plays. */
interface Raw {
  trick: string;
  text: string;
}
const ID = "%ID%";
const q = (v: unknown) => JSON.stringify(v);
const escapeAll = (s: string) =>
  `"${[...s].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"`;

const TRICKS = [
  "dup-size",
  "dup-size",
  "dup-size-escaped-first",
  "dup-size-escaped-last",
  "escaped-size-key",
  "escaped-size-value",
  "dup-price",
  "dup-instrument",
  "escaped-instrument-key",
  "escaped-instrument-value",
  "proto",
  "pretty",
  "not-json",
  "not-object",
  "empty-object",
] as const;

const rawBody = fc
  .record({
    fields: nearValid.map(toOrder),
    trick: fc.constantFrom(...TRICKS),
    a: size,
    b: size,
    ia: instrument,
    ib: instrument,
    junk: fc.nat(9),
  })
  .map(({ fields, trick, a, b, ia, ib, junk }): Raw => {
    const entries = new Map<string, [string, string]>();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) entries.set(k, [q(k), q(v)]);
    const first: [string, string][] = [[q("client_order_id"), q(ID)]];
    const last: [string, string][] = [];
    const sa = q(a ?? "9");
    const sb = q(b ?? "0.1");
    switch (trick) {
      case "dup-size":
        entries.delete("size");
        first.push([q("size"), sa]);
        last.push([q("size"), sb]);
        break;
      case "dup-size-escaped-first":
        entries.delete("size");
        first.push(['"\\u0073ize"', sa]);
        last.push([q("size"), sb]);
        break;
      case "dup-size-escaped-last":
        entries.delete("size");
        first.push([q("size"), sa]);
        last.push(['"\\u0073ize"', sb]);
        break;
      case "escaped-size-key":
        entries.delete("size");
        last.push(['"\\u0073ize"', sa]);
        break;
      case "escaped-size-value":
        entries.delete("size");
        last.push([q("size"), typeof a === "string" ? escapeAll(a) : sa]);
        break;
      case "dup-price":
        entries.delete("price");
        first.push([q("price"), q("100000")]);
        last.push([q("price"), q(fields.price ?? "1")]);
        break;
      case "dup-instrument":
        entries.delete("instrument");
        first.push([q("instrument"), q(ia ?? "SOL-PERP")]);
        last.push([q("instrument"), q(ib ?? "BTC-PERP")]);
        break;
      case "escaped-instrument-key":
        entries.delete("instrument");
        last.push(['"\\u0069nstrument"', q(ia ?? "BTC-PERP")]);
        break;
      case "escaped-instrument-value":
        entries.delete("instrument");
        last.push([q("instrument"), typeof ia === "string" ? escapeAll(ia) : q(ia ?? null)]);
        break;
      case "proto":
        first.push([q("__proto__"), q({ size: "9", price: "100000", instrument: "SOL-PERP" })]);
        break;
    }
    const all = [...first, ...entries.values(), ...last];
    const object = `{${all.map(([k, v]) => `${k}:${v}`).join(",")}}`;
    switch (trick) {
      case "pretty":
        return { trick, text: `\n{\n\t${all.map(([k, v]) => `${k} : ${v}`).join(",\n\t")}\n}\n` };
      case "not-json":
        return {
          trick,
          text: [
            `${object.slice(0, -1)},}`, // trailing comma
            object.replaceAll('"', "'"),
            `size=0.1&instrument=BTC-PERP&client_order_id=${ID}`,
            object.slice(0, -1), // truncated
            `{"client_order_id":"${ID}","size":NaN,"instrument":"BTC-PERP"}`,
            `{"client_order_id":"${ID}",/* c */"size":"0.1"}`,
            "   ",
            "\u0000",
            `${object}x`,
            `${object}${object}`,
          ][junk] as string,
        };
      case "not-object":
        return { trick, text: [`[${object}]`, "null", '"0.1"', "42", "true"][junk % 5] as string };
      case "empty-object":
        return { trick, text: "{}" };
      default:
        return { trick, text: object };
    }
  });

// ---------------------------------------------------------------------------------------------------------------
// Driving the Worker.

const PATH = "/intx/alpha/api/v1/orders";
let seq = 0;

function bindings(tag: string) {
  const stamp = `${tag}-${Date.now()}-${seq++}`;
  const token = `gfuzz-token-${stamp}-0123456789`;
  const env = simEnv(`gfuzz-${stamp}.sim.test`, {
    ...DEV_ALPHA,
    ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx", guards: GUARDS }]),
    // A token of its own, so the inbound limiter (per token) counts this test's requests only.
    RELAY_TOKENS: JSON.stringify([{ name: `gfuzz-${stamp}`, token, allow: [`POST ${PATH}`] }]),
  });
  // And an address of its own: the limiter counts per client address too, before the token is known.
  const ip = `10.77.${Math.floor(Math.random() * 250)}.${seq % 250}`;
  return { env, token, ip, stamp };
}

interface Sent {
  id: string;
  body: string | undefined;
  status: number;
  code: string | undefined;
  /** JSON.parse of the body; `undefined` with `json: false` when it is not JSON. */
  parsed: unknown;
  json: boolean;
  /** The rule it breaks under each reading of the docs ("not-json" when it is not JSON). */
  strict: string | undefined;
  lenient: string | undefined;
}

const log = async (): Promise<SimOrderRecord[]> => (await simControl()).accounts["intx:alpha"]?.orders ?? [];

async function send(
  { env, token, ip }: { env: Env; token: string; ip: string },
  id: string,
  body: string | undefined,
  type: string,
): Promise<Sent> {
  let parsed: unknown;
  let json = false;
  if (body !== undefined) {
    try {
      parsed = JSON.parse(body);
      json = true;
    } catch {
      json = false;
    }
  }
  const headers = new Headers({ authorization: `Bearer ${token}`, "cf-connecting-ip": ip });
  if (body !== undefined) headers.set("content-type", type);
  const ctx = createExecutionContext();
  const r = await worker.fetch(new Request(`https://relay.test${PATH}`, { method: "POST", headers, body }), env, ctx);
  await waitOnExecutionContext(ctx);
  const text = await r.text();
  let code: string | undefined;
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown } }).error;
    code = typeof error?.code === "string" ? error.code : undefined;
  } catch {
    code = undefined;
  }
  const strict = json ? brokenRule(parsed, STRICT) : "not-json";
  const lenient = json ? brokenRule(parsed, LENIENT) : "not-json";
  return { id, body, status: r.status, code, parsed, json, strict, lenient };
}

/**
 * Everything that must hold for one request, given the venue records that appeared while it ran. Returns the
 * problems found, each naming the request, so a failure shows the exact input.
 */
function problemsWith(s: Sent, arrived: SimOrderRecord[]): string[] {
  const problems: string[] = [];
  const say = (what: string) => problems.push(`${what}: body ${JSON.stringify(s.body)} → ${s.status} ${s.code}`);
  for (const record of arrived) {
    const { action, at: _at, ...fields } = record;
    if (action !== "create") say(`the venue recorded a ${action}`);
    const rule = brokenRule(fields, LENIENT);
    if (rule !== undefined) say(`the venue received an order breaking ${rule}: ${JSON.stringify(fields)}`);
    if (record.client_order_id !== s.id) say(`the venue received another client_order_id ${record.client_order_id}`);
  }
  if (!s.json) {
    if (arrived.length > 0) say("a body that is not JSON reached the venue");
    // No body at all meets the guards as "not a JSON order object" (422); any other non-JSON body is the relay's 400.
    const expected = s.body === undefined || s.body === "" ? [400, 422] : [400];
    if (!expected.includes(s.status)) say(`a body that is not JSON was answered ${s.status}`);
    return problems;
  }
  if (s.lenient !== undefined) {
    if (arrived.length > 0) say(`an order breaking ${s.lenient} reached the venue`);
    if (s.status !== 422 || s.code !== "order_refused") say(`an order breaking ${s.lenient} was not refused with 422`);
    return problems;
  }
  if (s.strict !== undefined) {
    // Breaks a rule on the strict reading only: refused, or sent like any order that passes.
    if (s.status === 422) {
      if (s.code !== "order_refused") say("a refusal without order_refused");
      if (arrived.length > 0) say("a refused order reached the venue");
      return problems;
    }
    if (arrived.length !== 1) say(`an order that was not refused reached the venue ${arrived.length} times`);
    return problems;
  }
  // The oracle lets it through: it must reach the venue exactly once, and be placed if the simulator takes it.
  if (arrived.length !== 1) say(`an order satisfying every rule reached the venue ${arrived.length} times`);
  if (s.status === 422 || s.status === 423) say("an order satisfying every rule was refused");
  const takes = simTakes(s.parsed as Record<string, unknown>);
  if (takes === true && s.status !== 200)
    say("an order satisfying every rule, that the simulator takes, was not placed");
  if (takes === false && s.status !== 400) say("an order the simulator does not take was not answered its 400");
  if (takes === undefined && s.status !== 200 && s.status !== 400) say("a close_only order was answered neither way");
  return problems;
}

/** Fixed seeds: the coverage checks after each run (every rule reached, enough orders placed) would fail about one
 * run in 200 with a random seed. Another seed explores other bodies; the checks say whether it still covers enough. */
const SEED = { json: 20261126, raw: 20261127 } as const;

/** One fuzz test: fresh host and token, simulator reset, `numRuns` requests, each checked, then the whole log. */
async function fuzz<T extends { body: string | undefined; type: string }>(
  tag: keyof typeof SEED,
  bodies: fc.Arbitrary<T>,
  numRuns: number,
) {
  const caller = bindings(tag);
  await simControl({ reset: true });
  const sent: Sent[] = [];
  await fc.assert(
    fc.asyncProperty(bodies, async ({ body, type }) => {
      const id = crypto.randomUUID();
      const before = (await log()).length;
      const s = await send(caller, id, body?.replaceAll(ID, id), type);
      const after = await log();
      // Sequential, so this request's records are the ones appended while it ran (the log keeps the last 200).
      const arrived = before < 200 ? after.slice(before) : after.filter((o) => o.client_order_id === id);
      sent.push(s);
      expect(problemsWith(s, arrived)).toEqual([]);
    }),
    { numRuns, seed: SEED[tag] },
  );
  // The whole log: exactly the creates that were not refused, each once, and no other.
  const records = await log();
  expect(records.length).toBeLessThan(200); // not truncated
  const reached = sent.filter((s) => s.json && s.lenient === undefined && s.status !== 422);
  expect(records.map((r) => r.client_order_id).sort()).toEqual(reached.map((s) => s.id).sort());
  expect(records.filter((r) => brokenRule(r, LENIENT) !== undefined)).toEqual([]);
  const ok = sent.filter((s) => s.status === 200).length;
  // Every order the venue received was placed (200), or refused by the simulator itself (its 400).
  expect(records.length).toBe(ok + reached.filter((s) => s.status === 400).length);
  expect(sent.filter((s) => s.status === 200).every((s) => reached.includes(s))).toBe(true);
  for (const s of sent.filter((s) => s.status === 422)) expect(s.code).toBe("order_refused");
  return { sent, records, ok };
}

const contentType = fc.constantFrom("application/json", "application/json", "text/plain;charset=UTF-8");

describe("fuzz: order guards", () => {
  it("JSON order bodies: nothing reaches the venue unless it satisfies every rule, and everything that does is sent", async () => {
    const bodies = fc
      .tuple(
        fc.oneof({ weight: 30, arbitrary: orderFields.map((f) => ({ client_order_id: ID, ...f })) }, fc.constant(null)),
        contentType,
      )
      .map(([order, type]) => ({ body: order === null ? undefined : JSON.stringify(order), type }));
    const { sent, ok } = await fuzz("json", bodies, 160);
    // The generators reach every rule, and both sides of it.
    const rules = new Set(sent.map((s) => s.strict));
    for (const rule of ["instrument", "instruments", "types", "tif", "size", "price", "max_size", "max_notional"]) {
      expect([rule, rules.has(rule)]).toEqual([rule, true]);
    }
    expect(ok).toBeGreaterThanOrEqual(8);
    expect(sent.filter((s) => s.lenient !== undefined && s.json).length).toBeGreaterThanOrEqual(60);
  }, 60_000);

  it("raw bodies: duplicate and escaped keys, __proto__, non-objects and non-JSON cannot carry another order", async () => {
    const bodies = fc.tuple(rawBody, contentType).map(([raw, type]) => ({ trick: raw.trick, body: raw.text, type }));
    const { sent, ok } = await fuzz("raw", bodies, 70);
    expect(ok).toBeGreaterThanOrEqual(2);
    expect(sent.some((s) => s.status === 400)).toBe(true);
    expect(sent.some((s) => s.status === 422)).toBe(true);
  }, 60_000);
});
