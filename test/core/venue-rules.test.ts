// What each venue requires of what skewguard sends, from the venues' own documents (issue 23): INTX's four
// client_order_id forms, CDE's kill-switch and unlock bodies (both checked when HOOKS is parsed), the reads that find
// an order of unknown outcome, and INTX's 200 answer that rejects an order.
import { describe, expect, it } from "vitest";
import { checkField, clientOrderId, mapRequest, parseHooks as parseHooksOf } from "../../src/core/hooks.ts";
import { cde } from "../../src/venues/cde.ts";
import { DEFAULT_VENUES } from "../../src/venues/index.ts";
import { intx, isIntxClientOrderId } from "../../src/venues/intx.ts";
import { orderRejection } from "../../src/venues/profile.ts";

const parseHooks = (value: unknown) => parseHooksOf(value, DEFAULT_VENUES);

describe("INTX client_order_id forms", () => {
  it("takes exactly the four documented forms", () => {
    expect(isIntxClientOrderId("abcdefghij!#$%&*+0")).toBe(true); // 18 printable ASCII
    expect(isIntxClientOrderId("ABCDEFGHIJ-123456789")).toBe(true); // 20 alphanumeric or dash
    expect(isIntxClientOrderId("1234567890abcdef1234567890abcde")).toBe(true); // 31 lowercase hex, no leading 0
    expect(isIntxClientOrderId("0b0f7c3e-9d1a-4c2b-8e3f-5a6b7c8d9e0f")).toBe(true); // lowercase UUID
  });
  it("refuses everything else, including skewguard's old sg- ids and ccxt's 17-character ones", () => {
    expect(isIntxClientOrderId(`sg-${"a".repeat(29)}`)).toBe(false); // 32 characters
    expect(isIntxClientOrderId("a".repeat(17))).toBe(false);
    expect(isIntxClientOrderId("abcdefghij abcdefg")).toBe(false); // 18 with a space
    expect(isIntxClientOrderId("ABCDEFGHIJ_123456789")).toBe(false); // 20 with an underscore
    expect(isIntxClientOrderId("0234567890abcdef1234567890abcde")).toBe(false); // 31 hex, leading 0
    expect(isIntxClientOrderId("1234567890ABCDEF1234567890ABCDE")).toBe(false); // 31 hex, upper case
    expect(isIntxClientOrderId("0B0F7C3E-9D1A-4C2B-8E3F-5A6B7C8D9E0F")).toBe(false); // upper-case UUID
    expect(isIntxClientOrderId("0b0f7c3e9d1a4c2b8e3f5a6b7c8d9e0f")).toBe(false); // UUID without hyphens
    expect(isIntxClientOrderId("")).toBe(false);
  });
  it("skewguard's derived id is a lowercase version-8 UUID, the same for the same route and key", async () => {
    const id = await clientOrderId("tv-btc", "id:alert-1");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(isIntxClientOrderId(id)).toBe(true);
    expect(await clientOrderId("tv-btc", "id:alert-1")).toBe(id);
    expect(await clientOrderId("tv-btc", "id:alert-2")).not.toBe(id);
    expect(await clientOrderId("tv-eth", "id:alert-1")).not.toBe(id);
  });
});

const orderRoute = (body: unknown, fields: Record<string, string> = { side: "side" }) => ({
  name: "r",
  verify: "bearer",
  secret_binding: "HOOK_R",
  fields,
  request: { venue: "intx", method: "POST", path: "/api/v1/orders", body },
});
const problemsOf = (route: unknown) => parseHooks(JSON.stringify([route])).problems.map((p) => p.message);

describe("HOOKS: an INTX order route's client_order_id is checked when the configuration is read", () => {
  const order = { side: "{{side}}", size: "1", type: "MARKET", tif: "IOC", instrument: "BTC-PERP" };
  it("{{client_order_id}}, a required uuid field, or a literal in one of the forms is fine", () => {
    expect(problemsOf(orderRoute({ ...order, client_order_id: "{{client_order_id}}" }))).toEqual([]);
    expect(problemsOf(orderRoute({ ...order, client_order_id: "{{ delivery_id }}" }))).toEqual([]);
    expect(problemsOf(orderRoute({ ...order, client_order_id: "{{cid}}" }, { side: "side", cid: "uuid" }))).toEqual([]);
    expect(problemsOf(orderRoute({ ...order, client_order_id: "ABCDEFGHIJ-123456789" }))).toEqual([]);
  });
  it("a literal in no form, a mixed template, an id or optional field, or none at all is a problem", () => {
    const bad = [
      orderRoute({ ...order, client_order_id: "my-order-1" }),
      orderRoute({ ...order, client_order_id: "tv-{{client_order_id}}" }),
      orderRoute({ ...order, client_order_id: "{{cid}}" }, { side: "side", cid: "id" }),
      orderRoute({ ...order, client_order_id: "{{cid}}" }, { side: "side", cid: "uuid?" }),
      orderRoute({ ...order, client_order_id: 12 }),
      orderRoute(order),
    ];
    for (const route of bad) {
      const problems = problemsOf(route);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/client_order_id/);
      expect(problems[0]).toMatch(/INTX takes \{\{client_order_id\}\}/);
    }
  });
  it("a modify without client_order_id is fine; with one, it must be in a form", () => {
    const modify = (body: unknown) => ({
      ...orderRoute(body),
      fields: { id: "id" },
      request: { venue: "intx", method: "PUT", path: "/api/v1/orders/{{id}}", body },
    });
    expect(problemsOf(modify({ portfolio: "p", size: "2" }))).toEqual([]);
    expect(problemsOf(modify({ portfolio: "p", client_order_id: "x" }))).toHaveLength(1);
  });
});

describe("HOOKS: a CDE kill-switch or unlock route names exactly one uuid", () => {
  const FIRM = "3b2ad5a2-7a2a-4a42-9d4d-6a2a4d4f0a01";
  const route = (path: string, body: unknown, fields: Record<string, string> = {}) => ({
    name: "k",
    verify: "standard-webhooks",
    secret_binding: "HOOK_K",
    fields,
    request: { venue: "cde", method: "POST", path, body },
  });
  it("a kill-switch with the flag and one uuid (literal or required field) is fine", () => {
    expect(problemsOf(route("/rest/kill-switch", { only_cancel_no_trading_lock: false, firm_uuid: FIRM }))).toEqual([]);
    const fromFields = route(
      "/rest/kill-switch",
      { only_cancel_no_trading_lock: "{{soft}}", trading_user_uuid: "{{user}}" },
      { soft: "boolean", user: "uuid" },
    );
    expect(problemsOf(fromFields)).toEqual([]);
    expect(problemsOf(route("/rest/unlock-trading", { fcm_uuid: FIRM }))).toEqual([]);
  });
  it("no uuid, two uuids, a bad uuid, no flag or no body are problems, each named", () => {
    expect(problemsOf(route("/rest/kill-switch", { only_cancel_no_trading_lock: false }))).toEqual([
      "request.body must name exactly one of fcm_uuid, firm_uuid, trading_user_uuid for a CDE kill-switch (it names 0)",
    ]);
    expect(
      problemsOf(route("/rest/kill-switch", { only_cancel_no_trading_lock: true, firm_uuid: FIRM, fcm_uuid: FIRM })),
    ).toEqual([
      "request.body must name exactly one of fcm_uuid, firm_uuid, trading_user_uuid for a CDE kill-switch (it names 2)",
    ]);
    expect(problemsOf(route("/rest/kill-switch", { only_cancel_no_trading_lock: true, firm_uuid: "firm-1" }))).toEqual([
      "request.body.firm_uuid must be a lowercase UUID, or a required uuid field",
    ]);
    expect(problemsOf(route("/rest/kill-switch", { firm_uuid: FIRM }))).toEqual([
      "request.body.only_cancel_no_trading_lock is required by a CDE kill-switch: true or false, or a required boolean field",
    ]);
    expect(problemsOf(route("/rest/kill-switch", undefined))).toHaveLength(1);
    expect(problemsOf(route("/rest/unlock-trading", {}))).toHaveLength(1);
  });
});

describe("finding an order of unknown outcome", () => {
  const lookup = intx.orderLookup;
  it("INTX asks open orders and fills by client_order_id, scoped to the order's portfolio", () => {
    const found = lookup?.("POST", "/api/v1/orders", '{"client_order_id":"c-1","portfolio":"pf 1","size":"1"}');
    expect(found?.clientOrderId).toBe("c-1");
    expect(found?.reads).toEqual([
      { path: "/api/v1/orders", query: "client_order_id=c-1&portfolio=pf+1" },
      { path: "/api/v1/portfolios/fills", query: "client_order_id=c-1&portfolios=pf+1" },
    ]);
    expect(found?.found('{"pagination":{},"results":[{"order_id":"1"}]}')).toBe(true);
    expect(found?.found('{"pagination":{},"results":[]}')).toBe(false);
    expect(found?.found("not json")).toBe(false);
  });
  it("only for an order create that carries a client_order_id (read from the JSON, not its text)", () => {
    expect(lookup?.("POST", "/api/v1/orders", '{"size":"1","note":"\\"client_order_id\\":\\"x\\""}')).toBeUndefined();
    expect(lookup?.("PUT", "/api/v1/orders/1", '{"client_order_id":"c-1"}')).toBeUndefined();
    expect(lookup?.("POST", "/api/v1/orders", "{broken")).toBeUndefined();
    expect(cde.orderLookup).toBeUndefined();
  });
});

describe("an order answered 200 but rejected", () => {
  const rejected = (method: string, path: string, status: number, text: string) =>
    orderRejection(intx, method, path, status, text);
  it("INTX: event_type REJECTED is a refusal, with the venue's reason", () => {
    const answer = '{"order_id":"1","event_type":"REJECTED","order_status":"REJECTED","reject_reason":"POST_ONLY"}';
    expect(rejected("POST", "/api/v1/orders", 200, answer)).toBe("POST_ONLY");
    expect(rejected("POST", "/api/v1/orders", 200, '{"event_type":"REJECTED"}')).toBe("REJECTED");
    // Any 2xx: the edges of the range too.
    expect(rejected("POST", "/api/v1/orders", 299, '{"event_type":"REJECTED"}')).toBe("REJECTED");
    expect(rejected("PUT", "/api/v1/orders/1", 201, '{"order_status":"REJECTED"}')).toBe("REJECTED");
    expect(rejected("POST", "/api/v1/orders", 300, '{"event_type":"REJECTED"}')).toBeUndefined();
    expect(rejected("POST", "/api/v1/orders", 199, '{"event_type":"REJECTED"}')).toBeUndefined();
  });
  it("a NEW or FILLED order, a read, or a 4xx is not", () => {
    expect(rejected("POST", "/api/v1/orders", 200, '{"event_type":"NEW","order_status":"WORKING"}')).toBeUndefined();
    expect(rejected("GET", "/api/v1/orders/1", 200, '{"event_type":"REJECTED"}')).toBeUndefined();
    expect(rejected("POST", "/api/v1/orders", 400, '{"event_type":"REJECTED"}')).toBeUndefined();
    expect(orderRejection(cde, "POST", "/rest/kill-switch", 200, '{"event_type":"REJECTED"}')).toBeUndefined();
  });
});

// A Standard Webhooks message stamped tolerance_seconds ahead is accepted from t to t + 2 × tolerance: its dedupe
// record must outlive that (issue 24, item 3: with dedupe = tolerance, one message was accepted at t and t + 67 s).
describe("HOOKS: a Standard Webhooks route remembers an id for at least twice its tolerance", () => {
  const sw = (tolerance: number, dedupe: number) => ({
    name: "sw",
    verify: "standard-webhooks",
    secret_binding: "HOOK_SW",
    tolerance_seconds: tolerance,
    dedupe_seconds: dedupe,
    request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
  });
  it("dedupe_seconds of 2 × tolerance_seconds or more is fine; less is a problem naming the least", () => {
    expect(problemsOf(sw(300, 600))).toEqual([]);
    expect(problemsOf(sw(60, 86_400))).toEqual([]);
    expect(problemsOf(sw(300, 599))).toEqual([
      "dedupe_seconds must be at least 2 × tolerance_seconds (600): a message stamped up to tolerance_seconds ahead " +
        "is accepted for 2 × tolerance_seconds, and a replay after its record expired would act again",
    ]);
    expect(problemsOf(sw(55, 55))).toHaveLength(1);
  });
});

describe("HOOKS: a route's defaults (docs/webhooks.md)", () => {
  const route = (extra: Record<string, unknown>) => {
    const { routes, problems } = parseHooks(
      JSON.stringify([
        {
          name: "r",
          secret_binding: "HOOK_R",
          request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
          ...extra,
        },
      ]),
    );
    expect(problems).toEqual([]);
    return routes.get("r");
  };
  it("a tradingview route takes TradingView's four published addresses, or any address with source_ips: any", () => {
    const published = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"];
    const sender = (sourceIps: unknown) => ({ verify: "tradingview", passphraseField: "passphrase", sourceIps });
    expect(route({ verify: "tradingview" })?.sender).toEqual(sender(published));
    expect(route({ verify: "tradingview", source_ips: "any" })?.sender).toEqual(sender(null));
    expect(route({ verify: "tradingview", source_ips: ["203.0.113.9"] })?.sender).toEqual(sender(["203.0.113.9"]));
    expect(route({ verify: "bearer" })?.sender).toEqual({ verify: "bearer" }); // no address list at all
  });
  it("timeout_ms defaults to 2.5 s for tradingview (it gives up after 3 s) and 10 s otherwise", () => {
    expect(route({ verify: "tradingview" })?.timeoutMs).toBe(2_500);
    expect(route({ verify: "bearer" })?.timeoutMs).toBe(10_000);
    expect(route({ verify: "tradingview", timeout_ms: 1_200 })?.timeoutMs).toBe(1_200);
  });
});

// Survivors of `npm run mutate` (docs/performance.md, "Mutation score") in the HOOKS rules above and the payload
// checks they rely on.
describe("HOOKS and payloads: the edges the mutation run found untested", () => {
  it("only an INTX order create or modify needs a client_order_id: a GET of orders or another POST does not", () => {
    const get = { ...orderRoute(undefined), request: { venue: "intx", method: "GET", path: "/api/v1/orders" } };
    expect(problemsOf(get)).toEqual([]);
    const other = {
      ...orderRoute({ amount: "1" }),
      request: { venue: "intx", method: "POST", path: "/api/v1/transfers/withdraw", body: { amount: "1" } },
    };
    expect(problemsOf(other)).toEqual([]);
    const put = {
      ...orderRoute({ size: "1", portfolio: "p" }),
      fields: { id: "id" },
      request: { venue: "intx", method: "PUT", path: "/api/v1/portfolios/{{id}}", body: { client_order_id: "bad" } },
    };
    expect(problemsOf(put)).toEqual([]);
  });

  it("a path outside the venue's prefix is a problem, whatever else the route says", () => {
    const route = { ...orderRoute(undefined), request: { venue: "intx", method: "GET", path: "/etc/passwd" } };
    expect(problemsOf(route)).toEqual(["request.path must be a path under /api/v1/, with no query or dot segments"]);
  });

  it("a boolean field takes only true or false", () => {
    expect(checkField("boolean", true)).toEqual({ value: "true" });
    expect(checkField("boolean", false)).toEqual({ value: "false" });
    for (const value of ["yes", "true", 1, 0, null])
      expect(checkField("boolean", value)).toEqual({ error: "must be true or false" });
  });

  it("a payload value of dots cannot be a path segment: the field is named", () => {
    const route = parseHooks(
      JSON.stringify([
        {
          name: "cancel",
          verify: "bearer",
          secret_binding: "HOOK_C",
          fields: { id: "id" },
          request: { venue: "intx", method: "DELETE", path: "/api/v1/orders/{{id}}" },
        },
      ]),
    ).routes.get("cancel");
    if (!route) throw new Error("the route did not parse");
    expect(mapRequest(route, new Map([["id", ".."]]))).toEqual({ field: "id", message: "cannot be used in a path" });
    expect(mapRequest(route, new Map([["id", "o-1"]]))).toMatchObject({ path: "/api/v1/orders/o-1" });
  });
});
