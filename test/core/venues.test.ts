// The venue profiles' shared rules: a write no profile line names is an order (fail closed), what may be sent twice,
// the account names a venue reserves, and the venue and account a relay path names (for the log line).
import { describe, expect, it } from "vitest";
import { cde } from "../../src/venues/cde.ts";
import { DEFAULT_VENUES, Venues } from "../../src/venues/index.ts";
import { intx } from "../../src/venues/intx.ts";
import { checkVenuePath, classify, safeToRepeat } from "../../src/venues/profile.ts";
import { TEST_VENUE } from "../support/test-venue.ts";

describe("classify: fail closed", () => {
  it("a write the profile does not name is an order create; a read is a read whatever its path", () => {
    expect(classify(TEST_VENUE, "POST", "/v2/order")).toBe("order_create");
    expect(classify(TEST_VENUE, "DELETE", "/v2/order/7")).toBe("cancel");
    expect(classify(TEST_VENUE, "POST", "/v2/panic")).toBe("kill_switch");
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      expect(classify(TEST_VENUE, method, "/v2/transfer"), method).toBe("order_create");
    }
    expect(classify(TEST_VENUE, "get", "/v2/transfer")).toBe("read");
    expect(classify(TEST_VENUE, "HEAD", "/v2/order")).toBe("read");
  });
  it("a method outside a line's method does not match it", () => {
    // DELETE /v2/panic: only POST is the kill-switch, so it falls through to the unclassified rule.
    expect(classify(TEST_VENUE, "DELETE", "/v2/panic")).toBe("order_create");
  });
});

describe("safeToRepeat", () => {
  it("a POST that creates is not; a state, a read, a PUT or a DELETE is", () => {
    expect(safeToRepeat(intx, "POST", "/api/v1/orders")).toBe(false);
    expect(safeToRepeat(intx, "POST", "/api/v1/transfers/withdraw")).toBe(false);
    expect(safeToRepeat(intx, "DELETE", "/api/v1/orders")).toBe(true);
    expect(safeToRepeat(intx, "PUT", "/api/v1/orders/1")).toBe(true);
    expect(safeToRepeat(cde, "POST", "/rest/kill-switch")).toBe(true);
    expect(safeToRepeat(cde, "POST", "/rest/unlock-trading")).toBe(true);
    expect(safeToRepeat(cde, "POST", "/rest/other")).toBe(false);
    expect(safeToRepeat(TEST_VENUE, "POST", "/v2/transfer")).toBe(false);
  });
});

describe("Venues", () => {
  it("reserves the first segment of every API prefix as an account name", () => {
    expect([...DEFAULT_VENUES.reserved]).toEqual(["api", "rest"]);
    expect([...new Venues([intx, cde, TEST_VENUE]).reserved]).toEqual(["api", "rest", "v2"]);
  });
  it("names the venue and account of a relay path, and nothing for another path", () => {
    const venues = new Venues([intx, cde, TEST_VENUE]);
    expect(venues.of("/intx/api/v1/orders")).toEqual({ venue: "intx", account: "default" });
    expect(venues.of("/intx/alpha/api/v1/orders")).toEqual({ venue: "intx", account: "alpha" });
    expect(venues.of("/tvx/v2/order")).toEqual({ venue: "tvx", account: "default" });
    expect(venues.of("/tvx/beta/v2/order")).toEqual({ venue: "tvx", account: "beta" });
    expect(venues.of("/cde/rest")).toEqual({});
    expect(venues.of("/nope/alpha/x")).toEqual({});
    expect(venues.of("/intx/ALPHA/api/v1/orders")).toEqual({});
    expect(DEFAULT_VENUES.of("/tvx/v2/order")).toEqual({});
  });
  it("refuses two profiles with one name", () => {
    expect(() => new Venues([intx, { ...cde, name: "intx" }])).toThrow("two venue profiles share a name");
  });
});

describe("checkVenuePath", () => {
  it("refuses anything a server could read as another path, each with its reason", () => {
    const reason = (path: string) => checkVenuePath(intx, path)?.reason;
    expect(checkVenuePath(intx, "/api/v1/orders")).toBeUndefined();
    expect(reason("/api/v1/a\\b")).toBe("backslash, space or control character");
    expect(reason("/api/v1/a b")).toBe("backslash, space or control character");
    expect(reason("/api/v1/a\x01")).toBe("backslash, space or control character");
    expect(reason("/api/v1/a\x7f")).toBe("backslash, space or control character");
    expect(reason("api/v1/orders")).toBe("dot segment");
    expect(reason("/api/v1/../v2")).toBe("dot segment");
    expect(reason("/api/v1//orders")).toBe("empty segment");
    expect(checkVenuePath(intx, "/rest/positions")).toEqual({ status: 404, reason: "not under /api/v1/" });
  });
});
