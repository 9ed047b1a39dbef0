/**
 * Coinbase International Exchange (docs/protocol.md, "INTX"): REST under `/api/v1/`, a 5 s timestamp window, 40
 * requests per second per key, orders by REST with a `client_order_id` in one of four forms, and a market-data
 * WebSocket feed whose subscriptions are signed.
 */
import {
  isObject,
  jsonObject,
  type OrderLookup,
  type RequestKind,
  type TemplateField,
  templateValue,
  type VenueProfile,
} from "./profile.ts";

/**
 * INTX's four forms of `client_order_id` (its order create and modify spec): 18 printable ASCII characters; 20
 * letters, digits or dashes; 31 lowercase hex digits without a leading 0; a lowercase, hyphenated UUID.
 */
const CLIENT_ORDER_ID = [
  /^[\x21-\x7e]{18}$/,
  /^[A-Za-z0-9-]{20}$/,
  /^[1-9a-f][0-9a-f]{30}$/,
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
];

/** Whether `id` has one of INTX's four `client_order_id` forms. */
export function isIntxClientOrderId(id: string): boolean {
  return CLIENT_ORDER_ID.some((form) => form.test(id));
}

const ORDERS = "/api/v1/orders";

/** An order create or modify carries a `client_order_id` that is sure to have one of the four forms. */
function templateProblems(method: string, path: string, body: unknown, field: TemplateField): string[] {
  const create = method === "POST" && path === ORDERS;
  const modify = method === "PUT" && /^\/api\/v1\/orders\/[^/]+$/.test(path);
  if (!create && !modify) return [];
  const forms =
    "INTX takes {{client_order_id}} (skewguard's own id, a UUID), a declared uuid field, or a literal of 18 ASCII " +
    "characters, 20 letters, digits or dashes, 31 lowercase hex digits, or a lowercase UUID";
  if (!isObject(body) || !("client_order_id" in body)) {
    return create ? [`request.body.client_order_id is required by INTX orders; ${forms}`] : [];
  }
  const value = templateValue(body.client_order_id, field);
  if ("literal" in value) {
    return typeof value.literal === "string" && isIntxClientOrderId(value.literal)
      ? []
      : [`request.body.client_order_id ${JSON.stringify(value.literal)} is not in one of INTX's forms; ${forms}`];
  }
  if ("placeholder" in value) {
    if (value.placeholder === "client_order_id" || value.placeholder === "delivery_id") return [];
    if (value.spec?.type === "uuid" && !value.spec.optional) return [];
  }
  return [`request.body.client_order_id may not meet INTX's forms; ${forms}`];
}

/** Open orders and fills, both filtered by `client_order_id` (and the order's portfolio, when it names one). */
function orderLookup(method: string, path: string, body: string | undefined): OrderLookup | undefined {
  if (method !== "POST" || path !== ORDERS) return undefined;
  const order = jsonObject(body);
  const id = order?.client_order_id;
  if (typeof id !== "string" || id === "") return undefined;
  const portfolio = typeof order?.portfolio === "string" ? order.portfolio : undefined;
  const query = (scope: string) =>
    new URLSearchParams({ client_order_id: id, ...(portfolio ? { [scope]: portfolio } : {}) }).toString();
  return {
    clientOrderId: id,
    reads: [
      { path: ORDERS, query: query("portfolio") },
      { path: "/api/v1/portfolios/fills", query: query("portfolios") },
    ],
    found: (text) => {
      const results = jsonObject(text)?.results;
      return Array.isArray(results) && results.length > 0;
    },
  };
}

const ORDER_KINDS: ReadonlySet<RequestKind> = new Set(["order_create", "order_modify", "cancel", "cancel_all"]);

/** An order answered 200 whose `event_type` is `REJECTED` was not placed; its `reject_reason` says why. */
function rejectedOrder(kind: RequestKind, status: number, text: string): string | undefined {
  if (status < 200 || status > 299 || !ORDER_KINDS.has(kind)) return undefined;
  const answer = jsonObject(text);
  if (answer?.event_type !== "REJECTED" && answer?.order_status !== "REJECTED") return undefined;
  const reason = answer.reject_reason ?? answer.reject_message ?? answer.text;
  return typeof reason === "string" && reason !== "" ? reason.slice(0, 200) : "REJECTED";
}

/** An order answer's `order_id`: INTX's id of the order created, modified or cancelled. */
function orderId(text: string): string | undefined {
  const id = jsonObject(text)?.order_id;
  return typeof id === "string" && id !== "" ? id.slice(0, 100) : undefined;
}

export const intx: VenueProfile = {
  name: "intx",
  title: "INTX",
  defaultBaseUrl: "https://api.international.coinbase.com",
  apiPrefix: "/api/v1/",
  envPrefix: "INTX_",
  windowSeconds: 5,
  defaultRatePerSecond: 40,
  probeRead: "/api/v1/portfolios",
  paths: [
    // Any write under the orders path, in any spelling: a POST creates, DELETE of the collection cancels every open
    // order, DELETE of one order cancels it, any other write modifies.
    { method: "POST", path: ORDERS, kind: "order_create" },
    { method: "DELETE", path: ORDERS, kind: "cancel_all" },
    { method: "DELETE", prefix: ORDERS, kind: "cancel" },
    { method: "*", prefix: ORDERS, kind: "order_modify" },
    // Every other INTX write (transfers, portfolio settings) is not an order.
    { method: "*", prefix: "/api/v1", kind: "write" },
  ],
  templateProblems,
  orderLookup,
  rejectedOrder,
  orderId,
  marketData: { defaultUrl: "wss://ws-md.international.coinbase.com", signingWord: "CBINTLMD" },
};
