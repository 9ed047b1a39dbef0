// Order guards: each rule holds exactly at its limit and refuses one tick over; instruments compare by name, case
// aside; a modify is held to the tightest limits; and what kind of request a venue call is decides what a halt lets
// through. Expected values come from the rules, not from the code's output.
import { describe, expect, it } from "vitest";
import { checkOrder, type Guards, parseGuards, passesHalt } from "../../src/core/guards.ts";
import { cde } from "../../src/venues/cde.ts";
import { intx } from "../../src/venues/intx.ts";
import { classify, type RequestKind } from "../../src/venues/profile.ts";

const LABEL = "intx/alpha";

function create(guards: Guards, order: unknown) {
  return checkOrder(guards, "order_create", order, LABEL);
}

function modify(guards: Guards, order: unknown) {
  return checkOrder(guards, "order_modify", order, LABEL);
}

/** A LIMIT GTC order on BTC-PERP, with `fields` on top. */
function limitOrder(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { instrument: "BTC-PERP", side: "BUY", size: "0.1", type: "LIMIT", tif: "GTC", price: "100", ...fields };
}

describe("checkOrder: max_size", () => {
  const guards = parseGuards({ max_size: { "BTC-PERP": "0.5" } });

  it("passes exactly at the limit, however written, and refuses one tick over", () => {
    expect(create(guards, limitOrder({ size: "0.5" }))).toBeUndefined();
    expect(create(guards, limitOrder({ size: "0.50000" }))).toBeUndefined();
    expect(create(guards, limitOrder({ size: "0.4" }))).toBeUndefined();
    expect(create(guards, limitOrder({ size: "0.50000001" }))?.rule).toBe("max_size");
    // As a float this is 0.5; as written it is over.
    expect(create(guards, limitOrder({ size: "0.50000000000000001" }))?.rule).toBe("max_size");
  });

  it("says which limit, instrument and account in the issue's example", () => {
    const refusal = create(guards, { instrument: "BTC-PERP", size: "2", type: "LIMIT", tif: "GTC", price: "1" });
    expect(refusal).toEqual({
      rule: "max_size",
      message: "size 2 is over max_size 0.5 for BTC-PERP (account intx/alpha)",
    });
  });

  it('falls back to "*", and a per-instrument limit wins over "*" either way', () => {
    const star = parseGuards({ max_size: { "*": "1" } });
    expect(create(star, limitOrder({ instrument: "ETH-PERP", size: "1" }))).toBeUndefined();
    expect(create(star, limitOrder({ instrument: "ETH-PERP", size: "1.00000001" }))?.rule).toBe("max_size");

    const tighter = parseGuards({ max_size: { "*": "10", "BTC-PERP": "0.5" } });
    expect(create(tighter, limitOrder({ size: "1" }))?.rule).toBe("max_size");
    expect(create(tighter, limitOrder({ instrument: "ETH-PERP", size: "1" }))).toBeUndefined();

    const looser = parseGuards({ max_size: { "*": "0.5", "BTC-PERP": "10" } });
    expect(create(looser, limitOrder({ size: "1" }))).toBeUndefined();
    expect(create(looser, limitOrder({ instrument: "ETH-PERP", size: "1" }))?.rule).toBe("max_size");
  });

  it("compares instrument names case-insensitively", () => {
    expect(create(guards, limitOrder({ instrument: "btc-perp", size: "1" }))?.rule).toBe("max_size");
    expect(create(guards, limitOrder({ instrument: "Btc-Perp", size: "0.6" }))?.rule).toBe("max_size");
    expect(create(guards, limitOrder({ instrument: "btc-perp", size: "0.5" }))).toBeUndefined();
    const lowerKey = parseGuards({ max_size: { "btc-perp": "0.5" } });
    expect(create(lowerKey, limitOrder({ size: "1" }))?.rule).toBe("max_size");
  });
});

describe("checkOrder: max_notional", () => {
  const guards = parseGuards({ max_notional: { "BTC-PERP": "1000" } });

  it("passes when size × price is exactly the limit and refuses one tick over", () => {
    expect(create(guards, limitOrder({ size: "0.5", price: "2000" }))).toBeUndefined();
    expect(create(guards, limitOrder({ size: "0.50", price: "2000.000" }))).toBeUndefined();
    expect(create(guards, limitOrder({ size: "0.5", price: "2000.00000002" }))?.rule).toBe("max_notional");
    expect(create(guards, limitOrder({ size: "0.50000001", price: "2000" }))?.rule).toBe("max_notional");
  });

  it("multiplies exactly (0.1 × 3 is 0.3, not 0.30000000000000004)", () => {
    const small = parseGuards({ max_notional: { "*": "0.3" } });
    expect(create(small, limitOrder({ size: "0.1", price: "3" }))).toBeUndefined();
    expect(create(small, limitOrder({ size: "3", price: "0.1" }))).toBeUndefined();
    expect(create(small, limitOrder({ size: "0.1", price: "3.00000001" }))?.rule).toBe("max_notional");
  });

  it("holds only a BUY's limit price to size × price: a SELL, or a MARKET order's ignored price, needs max_size", () => {
    // A SELL LIMIT at 0.01 fills at the market, far above it; a MARKET order's price is ignored by the venue.
    expect(create(guards, limitOrder({ side: "SELL", size: "100", price: "0.01" }))?.rule).toBe("max_notional");
    expect(create(guards, limitOrder({ type: "MARKET", size: "100", price: "0.01" }))?.rule).toBe("max_notional");
    expect(create(guards, limitOrder({ type: "STOP", size: "100", price: "0.01" }))?.rule).toBe("max_notional");
    expect(create(guards, limitOrder({ side: "buy", size: "0.1", price: "1" }))?.rule).toBe("max_notional");
    expect(create(guards, limitOrder({ type: "STOP_LIMIT", size: "0.5", price: "2000" }))).toBeUndefined();
    const withSize = parseGuards({ max_notional: { "BTC-PERP": "1000" }, max_size: { "BTC-PERP": "1" } });
    expect(create(withSize, limitOrder({ side: "SELL", size: "1", price: "0.01" }))).toBeUndefined();
    expect(create(withSize, limitOrder({ side: "SELL", size: "1.1", price: "0.01" }))?.rule).toBe("max_size");
    // A SELL is still held to size × price as written, on top of max_size.
    expect(create(withSize, limitOrder({ side: "SELL", size: "1", price: "1000.1" }))?.rule).toBe("max_notional");
  });

  it("refuses an order without a price (MARKET) when there is no max_size to hold it", () => {
    const market = { instrument: "BTC-PERP", size: "0.1", type: "MARKET", tif: "IOC" };
    expect(create(guards, market)?.rule).toBe("max_notional");

    const withSize = parseGuards({ max_notional: { "BTC-PERP": "1000" }, max_size: { "BTC-PERP": "0.5" } });
    expect(create(withSize, market)).toBeUndefined();
    expect(create(withSize, { ...market, size: "0.5" })).toBeUndefined();
    expect(create(withSize, { ...market, size: "0.6" })?.rule).toBe("max_size");
  });
});

describe("checkOrder: instruments", () => {
  it('matches names and "*" globs, case aside, anchored at both ends', () => {
    const guards = parseGuards({ instruments: ["BTC-PERP", "ETH-*"] });
    expect(create(guards, limitOrder())).toBeUndefined();
    expect(create(guards, limitOrder({ instrument: "ETH-PERP" }))).toBeUndefined();
    expect(create(guards, limitOrder({ instrument: "eth-usdc" }))).toBeUndefined();
    expect(create(guards, limitOrder({ instrument: "SOL-PERP" }))?.rule).toBe("instruments");
    expect(create(guards, limitOrder({ instrument: "XETH-PERP" }))?.rule).toBe("instruments");
    // Not BASE-QUOTE symbols at all: refused before the list is read.
    expect(create(guards, limitOrder({ instrument: "ETHPERP" }))?.rule).toBe("instrument");
    expect(create(guards, limitOrder({ instrument: "BTC-PERP-2" }))?.rule).toBe("instrument");
  });

  it("refuses an instrument that is not a BASE-QUOTE symbol, whatever the lists allow", () => {
    const guards = parseGuards({ instruments: ["*"] });
    // The simulator's instrument ids look like 114jqr89-0-0; the venue takes an id where a symbol goes.
    for (const id of ["BTC.X", "114jqr89-0-0", "BTC_PERP", "-PERP", "BTC-", "123-456"]) {
      expect(create(guards, limitOrder({ instrument: id }))?.rule, id).toBe("instrument");
    }
    expect(create(guards, limitOrder({ instrument: "1INCH-PERP" }))).toBeUndefined();
  });

  it("refuses an instrument given as a numeric ID or a UUID", () => {
    const guards = parseGuards({ max_size: { "*": "1" } });
    for (const id of [
      "149264167780483072",
      "1",
      "b5d8c7a2-3f4e-4a1b-9c2d-0e1f2a3b4c5d",
      "B5D8C7A2-3F4E-4A1B-9C2D-0E1F2A3B4C5D",
    ]) {
      expect(create(guards, limitOrder({ instrument: id }))?.rule, id).toBe("instrument");
    }
    const listed = parseGuards({ instruments: ["*"] });
    expect(create(listed, limitOrder({ instrument: "149264167780483072" }))?.rule).toBe("instrument");
  });

  it("refuses a missing instrument", () => {
    const guards = parseGuards({ max_size: { "*": "1" } });
    expect(create(guards, limitOrder({ instrument: undefined }))?.rule).toBe("instrument");
    expect(create(guards, limitOrder({ instrument: "" }))?.rule).toBe("instrument");
  });
});

describe("checkOrder: types, tif, close_only", () => {
  it("types", () => {
    const guards = parseGuards({ types: ["LIMIT"] });
    expect(create(guards, limitOrder())).toBeUndefined();
    expect(create(guards, limitOrder({ type: "MARKET" }))?.rule).toBe("types");
    expect(create(guards, limitOrder({ type: ["LIMIT"] }))?.rule).toBe("types");
  });

  it("types: an order without a type is refused", () => {
    const guards = parseGuards({ types: ["LIMIT"] });
    expect(create(guards, limitOrder({ type: undefined }))?.rule).toBe("types");
  });

  it("tif", () => {
    const guards = parseGuards({ tif: ["GTC", "GTT"] });
    expect(create(guards, limitOrder())).toBeUndefined();
    expect(create(guards, limitOrder({ tif: "GTT" }))).toBeUndefined();
    expect(create(guards, limitOrder({ tif: "IOC" }))?.rule).toBe("tif");
  });

  it("tif: an order without a tif is refused", () => {
    const guards = parseGuards({ tif: ["GTC", "GTT"] });
    expect(create(guards, limitOrder({ tif: undefined }))?.rule).toBe("tif");
  });

  it("close_only must be exactly true", () => {
    const guards = parseGuards({ close_only: true });
    expect(create(guards, limitOrder({ close_only: true }))).toBeUndefined();
    for (const value of ["true", false, 1, undefined, null]) {
      expect(create(guards, limitOrder({ close_only: value }))?.rule, String(value)).toBe("close_only");
    }
    const open = parseGuards({ close_only: false });
    expect(create(open, limitOrder())).toBeUndefined();
  });
});

describe("checkOrder: the body", () => {
  const guards = parseGuards({ max_size: { "*": "1" }, max_notional: { "*": "1000" } });

  it("refuses size or price that is not a decimal string", () => {
    expect(create(guards, limitOrder({ size: 0.5 }))?.rule).toBe("size");
    expect(create(guards, limitOrder({ price: 100 }))?.rule).toBe("price");
    for (const size of ["1e-3", "-1", " 0.5", "0x1", "NaN", "", ".5"]) {
      expect(create(guards, limitOrder({ size }))?.rule, JSON.stringify(size)).toBe("size");
    }
    expect(modify(guards, { size: 0.5 })?.rule).toBe("size");
    expect(modify(guards, { size: "0.5", price: 100 })?.rule).toBe("price");
  });

  it("refuses a create without a size", () => {
    expect(create(guards, limitOrder({ size: undefined }))?.rule).toBe("size");
  });

  it("refuses a body that is not an object", () => {
    for (const body of [[limitOrder()], "BTC-PERP", null, 1]) {
      expect(create(guards, body)?.rule, JSON.stringify(body)).toBe("body");
      expect(modify(guards, body)?.rule, JSON.stringify(body)).toBe("body");
    }
  });
});

describe("checkOrder: modify", () => {
  const guards = parseGuards({
    max_size: { "*": "10", "BTC-PERP": "2", "ETH-PERP": "0.5" },
    max_notional: { "BTC-PERP": "5000", "ETH-PERP": "1000" },
  });

  it("holds size to the tightest max_size", () => {
    expect(modify(guards, { size: "0.5", price: "100" })).toBeUndefined();
    expect(modify(guards, { size: "0.50000001", price: "100" })?.rule).toBe("max_size");
    expect(modify(guards, { size: "1", price: "100" })?.rule).toBe("max_size");
  });

  it("holds size × price to the tightest max_notional", () => {
    expect(modify(guards, { size: "0.5", price: "2000" })).toBeUndefined();
    expect(modify(guards, { size: "0.5", price: "2000.00000002" })?.rule).toBe("max_notional");
    expect(modify(guards, { size: "0.25", price: "4000.00000004" })?.rule).toBe("max_notional");
  });

  it("refuses a price without a size under max_notional", () => {
    expect(modify(guards, { price: "100" })?.rule).toBe("max_notional");
    expect(modify(guards, { price: "0.00000001" })?.rule).toBe("max_notional");
  });

  it("under max_notional, a modify needs both size and price, and a max_size (its side and type are unknown)", () => {
    expect(modify(guards, { size: "0.5" })?.rule).toBe("max_notional");
    const notionalOnly = parseGuards({ max_notional: { "*": "1000" } });
    expect(modify(notionalOnly, { size: "0.5" })?.rule).toBe("max_notional");
    expect(modify(notionalOnly, { size: "0.5", price: "2000" })?.rule).toBe("max_notional");
    expect(modify(notionalOnly, { size: "0.5", price: "2000.00000002" })?.rule).toBe("max_notional");
    const sizeOnly = parseGuards({ max_size: { "*": "1" } });
    expect(modify(sizeOnly, { size: "1" })).toBeUndefined();
    expect(modify(sizeOnly, { price: "99999999" })).toBeUndefined(); // bounded by the size it already has
  });
});

describe("parseGuards", () => {
  it("takes a full configuration", () => {
    const guards = parseGuards({
      instruments: ["BTC-PERP", "ETH-*"],
      max_size: { "BTC-PERP": "0.5", "*": "1" },
      max_notional: { "*": "25000" },
      types: ["LIMIT", "MARKET"],
      tif: ["GTC", "IOC"],
      max_orders_per_minute: 30,
      close_only: false,
    });
    expect(guards.max_orders_per_minute).toBe(30);
    expect(guards.close_only).toBe(false);
    expect(create(guards, limitOrder({ size: "0.5", price: "50000" }))).toBeUndefined();
  });

  it("throws an Error naming the key at fault", () => {
    const cases: [unknown, RegExp][] = [
      [{ max_sizes: { "BTC-PERP": "0.5" } }, /max_sizes/],
      [{ max_size: { "BTC-PERP": "1e3" } }, /max_size/],
      [{ max_size: { "BTC-PERP": 0.5 } }, /max_size/],
      [{ max_notional: { "BTC-PERP": "-1" } }, /max_notional/],
      [{ max_orders_per_minute: 0 }, /max_orders_per_minute/],
      [{ max_orders_per_minute: 1.5 }, /max_orders_per_minute/],
      [{ max_orders_per_minute: "10" }, /max_orders_per_minute/],
      [{ close_only: "yes" }, /close_only/],
      [{ close_only: "true" }, /close_only/],
      [{ instruments: [] }, /instruments/],
      [{ instruments: "BTC-PERP" }, /instruments/],
      [{ types: "LIMIT" }, /types/],
      [{ types: [] }, /types/],
      [{ tif: "GTC" }, /tif/],
    ];
    for (const [value, key] of cases) {
      expect(() => parseGuards(value), JSON.stringify(value)).toThrow(Error);
      expect(() => parseGuards(value), JSON.stringify(value)).toThrow(key);
    }
  });

  it("throws when guards is not an object", () => {
    for (const value of [null, [], "max_size", 1]) expect(() => parseGuards(value)).toThrow(Error);
  });
});

describe("classify (the venue profiles) and passesHalt", () => {
  it("classifies INTX requests", () => {
    expect(classify(intx, "POST", "/api/v1/orders")).toBe("order_create");
    expect(classify(intx, "POST", "/api/v1/orders/")).toBe("order_create");
    expect(classify(intx, "POST", "/api/v1/ORDERS")).toBe("order_create");
    expect(classify(intx, "PUT", "/api/v1/orders/123")).toBe("order_modify");
    expect(classify(intx, "PATCH", "/api/v1/orders/123")).toBe("order_modify");
    // DELETE of the collection cancels every open order (INTX's "cancel orders"), of one order that order.
    expect(classify(intx, "DELETE", "/api/v1/orders")).toBe("cancel_all");
    expect(classify(intx, "DELETE", "/api/v1/Orders/")).toBe("cancel_all");
    expect(classify(intx, "DELETE", "/api/v1/orders/123")).toBe("cancel");
    expect(classify(intx, "POST", "/api/v1/transfers/withdraw")).toBe("write");
    // A path that only starts with the same letters is not an order path.
    expect(classify(intx, "POST", "/api/v1/ordersx")).toBe("write");
    for (const path of ["/api/v1/orders", "/api/v1/portfolios", "/api/v1/transfers/withdraw"]) {
      expect(classify(intx, "GET", path), path).toBe("read");
    }
  });

  it("classifies CDE requests", () => {
    expect(classify(cde, "POST", "/rest/kill-switch")).toBe("kill_switch");
    expect(classify(cde, "POST", "/rest/instruments")).toBe("read");
    // Lifting CDE's trading lock sets a state (safe to send twice) but does not flatten: a halt stops it.
    expect(classify(cde, "POST", "/rest/unlock-trading")).toBe("state");
    expect(classify(cde, "GET", "/rest/accounts")).toBe("read");
    expect(classify(cde, "PUT", "/rest/positions")).toBe("write");
  });

  it("lets only reads, cancels and the kill-switch through a halt", () => {
    const kinds: RequestKind[] = [
      "read",
      "cancel",
      "cancel_all",
      "kill_switch",
      "state",
      "order_create",
      "order_modify",
      "write",
    ];
    const through = kinds.filter(passesHalt);
    expect(through).toEqual(["read", "cancel", "cancel_all", "kill_switch"]);
  });
});
