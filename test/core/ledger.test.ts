// The order ledger's pure rules: which request kinds are recorded and as what, the order fields taken from a body
// (those seven, exactly as sent, and nothing else ever), GET /orders's query (every bad parameter named), the cursor,
// and which accounts an allow-list reaches (the scope of what a token sees).
import { describe, expect, it } from "vitest";
import {
  decodeCursor,
  encodeCursor,
  type LedgerQuery,
  ledgerFields,
  ledgerKind,
  ledgerRow,
  parseIsoTime,
  parseLedgerQuery,
  type QueryProblem,
} from "../../src/core/ledger.ts";
import { parseRule, reachableAccounts, reachesPrefix } from "../../src/core/tokens.ts";

describe("ledgerKind", () => {
  it("maps the order-affecting kinds and leaves reads and plain writes out", () => {
    expect(ledgerKind("order_create")).toBe("create");
    expect(ledgerKind("order_modify")).toBe("modify");
    expect(ledgerKind("cancel")).toBe("cancel");
    expect(ledgerKind("cancel_all")).toBe("cancel_all");
    expect(ledgerKind("kill_switch")).toBe("state");
    expect(ledgerKind("state")).toBe("state");
    expect(ledgerKind("read")).toBeUndefined();
    expect(ledgerKind("write")).toBeUndefined();
  });
});

describe("ledgerFields", () => {
  it("takes the seven order fields exactly as sent, strings as strings and numbers as numbers", () => {
    const body = JSON.stringify({
      client_order_id: "c-1",
      instrument: "BTC-PERP",
      side: "BUY",
      size: "0.10",
      price: 65000.5,
      type: "LIMIT",
      tif: "GTC",
      portfolio: "1ai4ubgb-1-0",
    });
    expect(ledgerFields(body)).toEqual({
      client_order_id: "c-1",
      instrument: "BTC-PERP",
      side: "BUY",
      size: "0.10",
      price: 65000.5,
      type: "LIMIT",
      tif: "GTC",
    });
  });

  it("never copies anything else of the body, however it is named", () => {
    const body = JSON.stringify({
      size: "1",
      passphrase: "hunter2-passphrase",
      secret: "c2VjcmV0",
      api_key: "key",
      signature: "sig",
      nested: { size: "9" },
    });
    const fields = ledgerFields(body);
    expect(fields).toEqual({ size: "1" });
    expect(JSON.stringify(fields)).not.toMatch(/hunter2|c2VjcmV0|sig|key/);
  });

  it("leaves out a field that is not a string or a finite number", () => {
    const body = '{"size":{"v":"1"},"price":["2"],"side":true,"type":null,"tif":1e999,"instrument":"ETH-PERP"}';
    expect(ledgerFields(body)).toEqual({ instrument: "ETH-PERP" });
  });

  it("gives nothing for a body that is absent, not JSON, or not an object", () => {
    for (const body of [undefined, "", "size=1", '["size","1"]', '"size"', "null", "{"]) {
      expect(ledgerFields(body)).toEqual({});
    }
  });
});

describe("the cursor", () => {
  it("round-trips (at, id) as base64url", () => {
    const text = encodeCursor({ at: 1_765_000_000_123, id: "0b6f+/=é" });
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(text)).toEqual({ at: 1_765_000_000_123, id: "0b6f+/=é" });
  });

  it("refuses anything it did not write", () => {
    const b64 = (text: string) => btoa(text).replaceAll("=", "");
    for (const text of [
      "",
      "!!",
      b64("[1]"),
      b64('[1.5,"a"]'),
      b64('["1","a"]'),
      b64("[1,2]"),
      b64('[1,""]'),
      b64("{"),
    ]) {
      expect(decodeCursor(text)).toBeUndefined();
    }
    expect(decodeCursor(b64('[1,"a"]'))).toEqual({ at: 1, id: "a" });
  });
});

describe("parseIsoTime", () => {
  it("reads dates and date-times with Z or an offset, to the millisecond", () => {
    expect(parseIsoTime("2026-12-06")).toBe(Date.UTC(2026, 11, 6));
    expect(parseIsoTime("2026-12-06T14:02Z")).toBe(Date.UTC(2026, 11, 6, 14, 2));
    expect(parseIsoTime("2026-12-06T14:02:03.456Z")).toBe(Date.UTC(2026, 11, 6, 14, 2, 3, 456));
    expect(parseIsoTime("2026-12-06T16:02:03+02:00")).toBe(Date.UTC(2026, 11, 6, 14, 2, 3));
    // The last of each field is a time, the next is not (below).
    expect(parseIsoTime("2026-12-06T23:59:59.999Z")).toBe(Date.UTC(2026, 11, 6, 23, 59, 59, 999));
  });

  it("refuses what is not a real ISO 8601 time", () => {
    for (const text of [
      "2026-02-30T00:00:00Z",
      "2026-13-01",
      "2026-12-06T24:00:00Z",
      "2026-12-06T14:60Z",
      "2026-12-06T14:60:00Z",
      "2026-12-06T14:02:60Z",
      "2026-12-06T14:02:03",
      "1765000000000",
      "yesterday",
      "2026-12-06T14:02:03.4567Z",
    ]) {
      expect(parseIsoTime(text)).toBeUndefined();
    }
  });
});

const VENUES = ["intx", "cde"];
const parse = (query: string) => parseLedgerQuery(new URLSearchParams(query), VENUES);
const problem = (query: string) => parse(query) as QueryProblem;

describe("parseLedgerQuery", () => {
  it("defaults to 100 rows and no filter", () => {
    expect(parse("")).toEqual({ limit: 100 });
  });

  it("reads every filter, the limit and the cursor", () => {
    const cursor = encodeCursor({ at: 5, id: "x" });
    const q = parse(
      `account=alpha&venue=cde&actor=bot-3&source=redrive&outcome=refused&client_order_id=c-1&since=2026-12-06T00:00:00Z&until=2026-12-07&limit=1000&cursor=${cursor}`,
    );
    expect(q).toEqual({
      account: "alpha",
      venue: "cde",
      actor: "bot-3",
      source: "redrive",
      outcome: "refused",
      client_order_id: "c-1",
      since: Date.UTC(2026, 11, 6),
      until: Date.UTC(2026, 11, 7),
      limit: 1000,
      cursor: { at: 5, id: "x" },
    } satisfies LedgerQuery);
  });

  it("takes a limit from 1 to 1000 and names it otherwise", () => {
    expect(parse("limit=1")).toEqual({ limit: 1 });
    for (const limit of ["0", "1001", "-1", "1.5", "ten", "", "99999"]) {
      expect(problem(`limit=${limit}`).parameter).toBe("limit");
    }
  });

  it("names each bad parameter", () => {
    expect(problem("account=Alpha")).toEqual({
      parameter: "account",
      message: "account must be an account name (1-32 of a-z, 0-9, -)",
    });
    expect(problem("venue=binance")).toEqual({ parameter: "venue", message: "venue must be one of intx, cde" });
    expect(problem("source=api").parameter).toBe("source");
    expect(problem("outcome=ok").parameter).toBe("outcome");
    expect(problem("actor=").parameter).toBe("actor");
    expect(problem(`client_order_id=${"x".repeat(129)}`).parameter).toBe("client_order_id");
    expect(problem("since=yesterday").parameter).toBe("since");
    expect(problem("until=2026-02-30").parameter).toBe("until");
    expect(problem("cursor=abc").parameter).toBe("cursor");
    expect(problem("acount=alpha")).toMatchObject({ parameter: "acount" });
    expect(problem("venue=intx&venue=cde")).toEqual({ parameter: "venue", message: "venue may be given once" });
  });

  it("refuses an empty time window", () => {
    expect(problem("since=2026-12-07&until=2026-12-07").parameter).toBe("until");
    expect(parse("since=2026-12-07&until=2026-12-07T00:00:00.001Z")).toMatchObject({ limit: 100 });
  });
});

describe("reachableAccounts", () => {
  const accounts = [
    { venue: "intx", account: "default", apiPrefix: "/api/v1/" },
    { venue: "intx", account: "alpha", apiPrefix: "/api/v1/" },
    { venue: "intx", account: "alphabet", apiPrefix: "/api/v1/" },
    { venue: "intx", account: "beta", apiPrefix: "/api/v1/" },
    { venue: "cde", account: "default", apiPrefix: "/rest/" },
    { venue: "cde", account: "alpha", apiPrefix: "/rest/" },
  ];
  const reach = (...rules: string[]) => [...reachableAccounts(rules.map(parseRule), accounts)].sort();

  it("scopes to what the globs can match under each account's relay prefix", () => {
    expect(reach("* /intx/alpha/*")).toEqual(["intx/alpha"]);
    expect(reach("* /intx/*")).toEqual(["intx/alpha", "intx/alphabet", "intx/beta", "intx/default"]);
    expect(reach("* /*")).toHaveLength(6);
    expect(reach("GET /intx/api/v1/portfolios")).toEqual(["intx/default"]);
    expect(reach("GET /intx/default/api/v1/portfolios")).toEqual(["intx/default"]);
    expect(reach("POST /cde/*/rest/orders")).toEqual(["cde/alpha", "cde/default"]);
    expect(reach("* /intx/a*")).toEqual(["intx/alpha", "intx/alphabet", "intx/default"]);
    expect(reach("* /intx/alpha*")).toEqual(["intx/alpha", "intx/alphabet"]);
    expect(reach("GET /orders", "GET /deliveries*", "* /accounts/*/halt")).toEqual([]);
    expect(reach("* /intx/alpha", "* /intx/alpha/api/v1/")).toEqual([]);
    expect(reach("GET /cde/rest/*", "* /intx/beta/api/v1/orders")).toEqual(["cde/default", "intx/beta"]);
  });

  it("reachesPrefix: a rule's head before its first * must agree with the prefix", () => {
    expect(reachesPrefix(parseRule("* /intx/*/api/v1/orders"), "/intx/alpha/api/v1/")).toBe(true);
    expect(reachesPrefix(parseRule("* /cde/*"), "/intx/alpha/api/v1/")).toBe(false);
    expect(reachesPrefix(parseRule("* /intx/alpha/api/v1/o*"), "/intx/alpha/api/v1/")).toBe(true);
    expect(reachesPrefix(parseRule("* /intx/alpha/api/v1/orders"), "/intx/alpha/api/v1/")).toBe(true);
  });
});

describe("ledgerRow", () => {
  const audit = { source: "relay" as const, actor: "bot-3", receivedAt: Date.UTC(2026, 11, 6, 14, 2, 0, 123) };
  const call = {
    venue: "intx",
    account: "alpha",
    method: "POST",
    path: "/api/v1/orders",
    kind: "create" as const,
    body: '{"client_order_id":"c-1","size":"0.10","price":50000,"passphrase":"never"}',
  };
  const base = {
    id: "row-1",
    at: "2026-12-06T14:02:00.123Z",
    source: "relay",
    actor: "bot-3",
    venue: "intx",
    account: "alpha",
    method: "POST",
    path: "/api/v1/orders",
    kind: "create",
    client_order_id: "c-1",
    size: "0.10",
    price: 50000,
  };
  const later = audit.receivedAt + 42;

  it("a sent call: the venue's status, the attempts, the latency from receipt, the venue's order id", () => {
    const end = { outcome: "sent" as const, status: 200, attempts: 2, venueOrderId: "o-9" };
    expect(ledgerRow(audit, call, end, later, "row-1")).toEqual({
      ...base,
      outcome: "sent",
      status: 200,
      attempts: 2,
      latency_ms: 42,
      venue_order_id: "o-9",
    });
  });

  it("a refused call: skewguard's status and the refusal, no attempts, latency or order id", () => {
    const end = { outcome: "refused" as const, status: 423, refusal: "halt: account intx/alpha is halted: drill" };
    expect(ledgerRow(audit, call, end, later, "row-1")).toEqual({
      ...base,
      outcome: "refused",
      status: 423,
      refusal: "halt: account intx/alpha is halted: drill",
    });
  });

  it("a failed call: no status, the attempts when known, the latency; a queued one names its delivery", () => {
    const queued = { ...audit, source: "delivery" as const, delivery: "d-1" };
    expect(ledgerRow(queued, call, { outcome: "failed", attempts: 3 }, later, "row-1")).toEqual({
      ...base,
      source: "delivery",
      delivery: "d-1",
      outcome: "failed",
      attempts: 3,
      latency_ms: 42,
    });
    expect(ledgerRow(audit, call, { outcome: "failed", attempts: undefined }, later, "row-1")).toEqual({
      ...base,
      outcome: "failed",
      latency_ms: 42,
    });
  });
});
