/**
 * The order ledger: one row for every order-affecting request skewguard signs or refuses (docs/orders.md). Pure:
 * the row's type, which request kinds are recorded, the order fields taken from a body, and `GET /orders`'s query
 * and cursor. adapters/ledger.ts writes and reads the rows.
 */
import { decodeBase64, encodeBase64 } from "../lib/base64.ts";
import { jsonObject, type RequestKind } from "../venues/profile.ts";
import { ACCOUNT_NAME } from "./accounts.ts";

export const LEDGER_SOURCES = ["relay", "hook", "delivery", "redrive", "job"] as const;
export const LEDGER_KINDS = ["create", "modify", "cancel", "cancel_all", "state"] as const;
export const LEDGER_OUTCOMES = ["sent", "refused", "failed"] as const;
export type LedgerSource = (typeof LEDGER_SOURCES)[number];
export type LedgerKind = (typeof LEDGER_KINDS)[number];
export type LedgerOutcome = (typeof LEDGER_OUTCOMES)[number];

/** The order's own fields, each exactly as the request's JSON body had it (a string or a number). */
export const ORDER_FIELDS = ["client_order_id", "instrument", "side", "size", "price", "type", "tif"] as const;
export type OrderFields = { [K in (typeof ORDER_FIELDS)[number]]?: string | number };

/**
 * One ledger row, as written and as `GET /orders` shows it. A field that does not apply is left out. It holds no
 * credential, signature or body by construction: the body contributes only `OrderFields`.
 */
export interface LedgerRow extends OrderFields {
  id: string;
  /** ISO 8601 UTC with milliseconds, e.g. `2026-12-06T14:02:00.123Z`. */
  at: string;
  source: LedgerSource;
  /** The token's name, or the webhook route. */
  actor: string;
  venue: string;
  account: string;
  method: string;
  /** The venue path, without the query. */
  path: string;
  kind: LedgerKind;
  outcome: LedgerOutcome;
  /** The venue's HTTP status, or skewguard's own for a refusal. */
  status?: number;
  /** The guard, halt or limit that refused it, with the reason. */
  refusal?: string;
  venue_order_id?: string;
  attempts?: number;
  /** From skewguard receiving the request to the venue's answer. */
  latency_ms?: number;
  /** The delivery id, for a queued one. */
  delivery?: string;
}

const KINDS: Record<RequestKind, LedgerKind | undefined> = {
  order_create: "create",
  order_modify: "modify",
  cancel: "cancel",
  cancel_all: "cancel_all",
  kill_switch: "state",
  state: "state",
  read: undefined,
  write: undefined,
};

/** The ledger's kind for a venue request's kind; undefined for reads and plain writes, which are not recorded. */
export function ledgerKind(kind: RequestKind): LedgerKind | undefined {
  return KINDS[kind];
}

/**
 * The order's fields from a request body: each of `ORDER_FIELDS` that is a string or a finite number, as it is.
 * Nothing else of the body, ever; a body that is not a JSON object gives none.
 */
export function ledgerFields(body: string | undefined): OrderFields {
  const json = jsonObject(body);
  const fields: OrderFields = {};
  if (!json) return fields;
  for (const name of ORDER_FIELDS) {
    const value = json[name];
    if (typeof value === "string" || (typeof value === "number" && Number.isFinite(value))) fields[name] = value;
  }
  return fields;
}

/** Where a page of `GET /orders` ends: the last row's time (epoch ms) and id. */
export interface LedgerCursor {
  at: number;
  id: string;
}

export function encodeCursor(cursor: LedgerCursor): string {
  const base64 = encodeBase64(new TextEncoder().encode(JSON.stringify([cursor.at, cursor.id])));
  return base64.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The cursor `encodeCursor` wrote, or undefined for anything else. */
export function decodeCursor(text: string): LedgerCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(text)) return undefined;
  const base64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const bytes = decodeBase64(base64.padEnd(Math.ceil(base64.length / 4) * 4, "="));
  if (!bytes) return undefined;
  try {
    const value: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [at, id] = value as unknown[];
    if (!Number.isSafeInteger(at) || typeof id !== "string" || id === "") return undefined;
    return { at: at as number, id };
  } catch {
    return undefined;
  }
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

/** Epoch ms of an ISO 8601 date (`2026-12-06`, UTC) or date-time with `Z` or an offset; undefined if not one. */
export function parseIsoTime(text: string): number | undefined {
  const m = ISO.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map((part) => Number(part ?? 0));
  const date = new Date(Date.UTC(year ?? 0, (month ?? 0) - 1, day));
  // Date.parse rolls 30 February over into March, and takes 24:00: neither is a time anyone meant.
  if (date.getUTCMonth() !== (month ?? 0) - 1 || date.getUTCDate() !== day) return undefined;
  if ((hour ?? 0) > 23 || (minute ?? 0) > 59 || (second ?? 0) > 59) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** `GET /orders`'s filters, page size and cursor. `since` is inclusive, `until` exclusive (epoch ms). */
export interface LedgerQuery {
  account?: string;
  venue?: string;
  actor?: string;
  source?: LedgerSource;
  outcome?: LedgerOutcome;
  client_order_id?: string;
  since?: number;
  until?: number;
  limit: number;
  cursor?: LedgerCursor;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
const TEXT = /^[!-~]{1,128}$/;
/** The filters that keep the rows with one value of a field. */
export const VALUE_FILTERS = ["account", "venue", "actor", "source", "outcome", "client_order_id"] as const;
const PARAMETERS: ReadonlySet<string> = new Set([...VALUE_FILTERS, "since", "until", "limit", "cursor"]);

/** A parameter `GET /orders` refuses, and why (a 400 that names it). */
export interface QueryProblem {
  parameter: string;
  message: string;
}

const oneOf = <T extends string>(list: readonly T[], value: string): value is T =>
  (list as readonly string[]).includes(value);

/** Sets parameter `name` of `query` from its text; false when the text is not a good value for it. */
function setParameter(query: LedgerQuery, name: string, value: string, venues: readonly string[]): boolean {
  switch (name) {
    case "account":
      query.account = value;
      return ACCOUNT_NAME.test(value);
    case "venue":
      query.venue = value;
      return oneOf(venues, value);
    case "actor":
    case "client_order_id":
      query[name] = value;
      return TEXT.test(value);
    case "source":
      if (oneOf(LEDGER_SOURCES, value)) query.source = value;
      return query.source !== undefined;
    case "outcome":
      if (oneOf(LEDGER_OUTCOMES, value)) query.outcome = value;
      return query.outcome !== undefined;
    case "since":
    case "until":
      query[name] = parseIsoTime(value);
      return query[name] !== undefined;
    case "limit": {
      query.limit = /^\d{1,4}$/.test(value) ? Number(value) : 0;
      return query.limit >= 1 && query.limit <= MAX_LIMIT;
    }
    default:
      query.cursor = decodeCursor(value);
      return query.cursor !== undefined;
  }
}

/** What a good value of parameter `name` is, for its 400. */
function expected(name: string, venues: readonly string[]): string {
  const time = "an ISO 8601 time, e.g. 2026-12-06T14:02:00Z";
  const text = "1-128 printable characters";
  const rules: Record<string, string> = {
    account: "an account name (1-32 of a-z, 0-9, -)",
    venue: `one of ${venues.join(", ")}`,
    actor: text,
    client_order_id: text,
    source: `one of ${LEDGER_SOURCES.join(", ")}`,
    outcome: `one of ${LEDGER_OUTCOMES.join(", ")}`,
    since: time,
    until: time,
    limit: `a whole number from 1 to ${MAX_LIMIT}`,
    cursor: "a next_cursor from an earlier page",
  };
  return `${name} must be ${rules[name]}`;
}

/** Parses `GET /orders`'s query. Every unknown, repeated or bad parameter is a problem naming it. */
export function parseLedgerQuery(params: URLSearchParams, venues: readonly string[]): LedgerQuery | QueryProblem {
  const query: LedgerQuery = { limit: DEFAULT_LIMIT };
  for (const name of new Set(params.keys())) {
    if (!PARAMETERS.has(name)) {
      return { parameter: name, message: `unknown parameter; the parameters are ${[...PARAMETERS].join(", ")}` };
    }
    const values = params.getAll(name);
    if (values.length > 1) return { parameter: name, message: `${name} may be given once` };
    if (!setParameter(query, name, values[0] ?? "", venues))
      return { parameter: name, message: expected(name, venues) };
  }
  const { since, until } = query;
  if (since !== undefined && until !== undefined && since >= until) {
    return { parameter: "until", message: "until must be later than since" };
  }
  return query;
}

export function isQueryProblem(value: LedgerQuery | QueryProblem): value is QueryProblem {
  return "parameter" in value;
}

/** Who asked for a venue call and how, for its ledger row: set on a request, an order-affecting call leaves one. */
export interface Audit {
  source: LedgerSource;
  /** The token's name, or the webhook route, or the job. */
  actor: string;
  /** Local epoch ms when skewguard received the request (the row's `at`, and where `latency_ms` counts from). */
  receivedAt: number;
  /** The delivery id, for a queued one. */
  delivery?: string;
}

/** How a recorded call ended: the venue answered, skewguard refused it, or no usable answer came back. */
export type CallEnd =
  | { outcome: "sent"; status: number; attempts: number; venueOrderId?: string | undefined }
  | { outcome: "refused"; status: number; refusal: string }
  | { outcome: "failed"; attempts?: number | undefined };

/** The call a row is about: where it went and what it carried (the body as sent; only its order fields are kept). */
export interface AuditedCall {
  venue: string;
  account: string;
  method: string;
  path: string;
  kind: LedgerKind;
  body: string | undefined;
}

/** One ledger row for one call; `now` is when it ended, `id` the row's new id. */
export function ledgerRow(audit: Audit, call: AuditedCall, end: CallEnd, now: number, id: string): LedgerRow {
  const { venue, account, method, path, kind } = call;
  const row: LedgerRow = {
    id,
    at: new Date(audit.receivedAt).toISOString(),
    source: audit.source,
    actor: audit.actor,
    venue,
    account,
    method,
    path,
    kind,
    ...ledgerFields(call.body),
    outcome: end.outcome,
  };
  if (end.outcome === "refused") {
    row.status = end.status;
    row.refusal = end.refusal;
  } else {
    if (end.outcome === "sent") row.status = end.status;
    if (end.attempts !== undefined) row.attempts = end.attempts;
    row.latency_ms = Math.max(0, now - audit.receivedAt);
    if (end.outcome === "sent" && end.venueOrderId !== undefined) row.venue_order_id = end.venueOrderId;
  }
  if (audit.delivery !== undefined) row.delivery = audit.delivery;
  return row;
}
