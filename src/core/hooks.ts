/**
 * Webhook routes (`HOOKS`): how an inbound call is verified, and the declarative template that turns its payload
 * into exactly one venue request. Pure: no I/O. A template is data, never code: `{{field}}` placeholders are
 * filled with payload values only after each one passed its declared type.
 */

import type { Venues } from "../venues/index.ts";
import { checkVenuePath, type VenueProfile } from "../venues/profile.ts";
import { ACCOUNT_NAME } from "./accounts.ts";
import { hex, sha256 } from "./digest.ts";
import { BINDING, isRecord, parseNamedList, positiveInteger } from "./parse.ts";
import { parseSender, SENDERS, type Sender, senderDedupeProblem } from "./senders.ts";

export type Delivery = "direct" | "queue";

/** The value types a payload field can be declared with; a `?` suffix makes the field optional. */
const FIELD_TYPES = ["side", "decimal", "instrument", "uuid", "id", "boolean", "text"] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export interface FieldSpec {
  type: FieldType;
  optional: boolean;
}

/** The one venue request a route's template describes. */
export interface Template {
  venue: string;
  /** The venue's profile: its path rule, for the filled path. */
  profile: VenueProfile;
  /** The account that signs it (`request.account`, default `default`). */
  account: string;
  method: string;
  /** Wire path template, under the venue's API prefix. */
  path: string;
  /** JSON body template, or undefined for no body. */
  body: unknown;
}

export interface HookRoute extends Template {
  name: string;
  /** Who may call it, and how that is proved (core/senders.ts). */
  sender: Sender;
  /** The binding holding the route's secret: a `whsec_` key, a passphrase, or a bearer token. */
  secretBinding: string;
  /** A payload field whose value identifies the alert, for dedupe (tradingview, bearer). */
  idField: string | undefined;
  fields: Readonly<Record<string, FieldSpec>>;
  delivery: Delivery;
  /** queue: a signal older than this is dead-lettered instead of sent. */
  maxAgeSeconds: number;
  /** How long a delivery id is remembered, so a replay gets the first answer. */
  dedupeSeconds: number;
  /** direct: per-attempt timeout (TradingView gives up after 3 s). */
  timeoutMs: number;
}

export interface HookProblem {
  route: string;
  message: string;
}

/** Placeholders every template may use besides its declared fields. */
const BUILTINS = new Set(["client_order_id", "delivery_id"]);
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/** Every placeholder name used in a template value (strings, nested objects and arrays). */
function placeholders(template: unknown, into: Set<string> = new Set()): Set<string> {
  if (typeof template === "string") for (const m of template.matchAll(PLACEHOLDER)) into.add(m[1] as string);
  else if (Array.isArray(template)) for (const v of template) placeholders(v, into);
  else if (isRecord(template)) for (const v of Object.values(template)) placeholders(v, into);
  return into;
}

function parseFields(value: unknown, problem: (message: string) => void): Record<string, FieldSpec> {
  const fields: Record<string, FieldSpec> = {};
  if (value === undefined) return fields;
  if (!isRecord(value)) {
    problem("fields must be an object of field name to type");
    return fields;
  }
  for (const [name, declared] of Object.entries(value)) {
    const text = typeof declared === "string" ? declared : "";
    const optional = text.endsWith("?");
    const type = FIELD_TYPES.find((t) => t === (optional ? text.slice(0, -1) : text));
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) problem(`field name ${JSON.stringify(name)} is not an identifier`);
    else if (type === undefined) problem(`field ${name}: type must be one of ${FIELD_TYPES.join(", ")}`);
    else if (BUILTINS.has(name)) problem(`field ${name}: that name is reserved`);
    else fields[name] = { type, optional };
  }
  return fields;
}

/**
 * `request` and `fields`: the venue request a route's template describes, and the payload fields it may use.
 * Every problem is reported; the template is undefined when there was one.
 */
function parseTemplate(
  raw: Record<string, unknown>,
  problem: (message: string) => void,
  venues: Venues,
): { template: Template | undefined; fields: Record<string, FieldSpec> } {
  const request = isRecord(raw.request) ? raw.request : {};
  if (!isRecord(raw.request)) problem("request must be an object with venue, method, path and an optional body");
  const venue = venues.get(request.venue);
  if (venue === undefined) problem(`request.venue must be one of ${venues.names.join(", ")}`);
  const account = request.account ?? "default";
  if (typeof account !== "string" || !ACCOUNT_NAME.test(account)) problem("request.account must be an account name");
  const method = typeof request.method === "string" ? request.method.toUpperCase() : "";
  if (!["GET", "POST", "PUT", "DELETE"].includes(method)) problem("request.method must be GET, POST, PUT or DELETE");
  const { path, body } = request;
  // The template is checked with every placeholder filled by a plain segment; filled values are checked again.
  if (typeof path !== "string" || (venue && checkVenuePath(venue, path.replace(PLACEHOLDER, "x")))) {
    const prefix = venue ? venue.apiPrefix : "the venue's API prefix";
    problem(`request.path must be a path under ${prefix}, with no query or dot segments`);
  }
  if (method === "GET" && body !== undefined) problem("request.body is not allowed with GET");
  const fields = parseFields(raw.fields, problem);
  if (venue && typeof path === "string") {
    for (const message of venue.templateProblems?.(method, path, body, (name) => fields[name]) ?? []) problem(message);
  }
  for (const used of placeholders([path, body])) {
    if (!BUILTINS.has(used) && !(used in fields))
      problem(`the template uses {{${used}}}, which is not a declared field`);
  }
  const ok = venue && typeof account === "string" && typeof path === "string";
  return { template: ok ? { venue: venue.name, profile: venue, account, method, path, body } : undefined, fields };
}

function parseRoute(
  raw: Record<string, unknown>,
  problem: (message: string) => void,
  venues: Venues,
): HookRoute | undefined {
  const sender = parseSender(raw, problem);
  const secretBinding = typeof raw.secret_binding === "string" ? raw.secret_binding : "";
  if (!BINDING.test(secretBinding)) problem("secret_binding must name a secret binding, e.g. HOOK_TV_PASSPHRASE");
  const { template, fields } = parseTemplate(raw, problem, venues);
  const delivery = raw.delivery ?? "direct";
  if (delivery !== "direct" && delivery !== "queue") problem('delivery must be "direct" or "queue"');
  const idField = raw.id_field;
  if (idField !== undefined && (typeof idField !== "string" || idField === ""))
    problem("id_field must be a field name");
  const maxAgeSeconds = positiveInteger(raw.max_age_seconds, 300, "max_age_seconds", problem);
  const dedupeSeconds = positiveInteger(raw.dedupe_seconds, 86_400, "dedupe_seconds", problem);
  const defaultTimeoutMs = sender ? SENDERS[sender.verify].timeoutMs : 10_000;
  const timeoutMs = positiveInteger(raw.timeout_ms, defaultTimeoutMs, "timeout_ms", problem);
  const dedupeProblem = sender && senderDedupeProblem(sender, dedupeSeconds);
  if (dedupeProblem) problem(dedupeProblem);
  if (!sender || !template || (delivery !== "direct" && delivery !== "queue")) return undefined;
  if (typeof raw.name !== "string" || (idField !== undefined && typeof idField !== "string")) return undefined;
  return {
    name: raw.name,
    sender,
    secretBinding,
    idField,
    fields,
    ...template,
    delivery,
    maxAgeSeconds,
    dedupeSeconds,
    timeoutMs,
  };
}

/** Parses `HOOKS` (a JSON string, or an array set directly in wrangler.toml). Bad routes are reported, not used. */
export function parseHooks(
  value: unknown,
  venues: Venues,
): { routes: Map<string, HookRoute>; problems: HookProblem[] } {
  const { items, problems } = parseNamedList(value, "HOOKS", "route", (raw, problem) =>
    parseRoute(raw, problem, venues),
  );
  return {
    routes: new Map(items.map((route) => [route.name, route])),
    problems: problems.map(({ name, message }) => ({ route: name, message })),
  };
}

/** What was wrong with one payload field; collected so a 422 can list them all. */
export interface FieldError {
  field: string;
  message: string;
}

const DECIMAL = /^(?:0|[1-9]\d{0,19})(?:\.\d{1,18})?$/;
const INSTRUMENT = /^[A-Z0-9]{1,20}(?:-[A-Z0-9]{1,20}){0,3}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const TEXT = /^[\x20-\x7e]{0,128}$/;

/** One payload value checked against its declared type; returns the normalised string or an error message. */
export function checkField(type: FieldType, value: unknown): { value: string } | { error: string } {
  const text = typeof value === "number" && Number.isFinite(value) ? String(value) : value;
  switch (type) {
    case "side":
      if (typeof text === "string" && /^(buy|sell)$/i.test(text)) return { value: text.toUpperCase() };
      return { error: "must be BUY or SELL" };
    case "decimal":
      if (typeof text === "string" && DECIMAL.test(text) && /[1-9]/.test(text)) return { value: text };
      return { error: "must be a positive decimal number, like 0.25" };
    case "instrument":
      if (typeof text === "string" && INSTRUMENT.test(text.toUpperCase())) return { value: text.toUpperCase() };
      return { error: "must be an instrument name, like BTC-PERP" };
    case "uuid":
      if (typeof text === "string" && UUID.test(text)) return { value: text.toLowerCase() };
      return { error: "must be a UUID" };
    case "id":
      if (typeof text === "string" && ID.test(text)) return { value: text };
      return { error: "must be 1–64 letters, digits, or _ . : -" };
    case "boolean":
      if (value === true || value === false) return { value: String(value) };
      return { error: "must be true or false" };
    case "text":
      if (typeof text === "string" && TEXT.test(text)) return { value: text };
      return { error: "must be printable ASCII, at most 128 characters" };
  }
}

/** Checks every declared field of `payload`; returns the values to fill in, or every problem found. */
export function checkPayload(
  route: HookRoute,
  payload: unknown,
): { values: Map<string, string> } | { errors: FieldError[] } {
  if (!isRecord(payload)) return { errors: [{ field: "(body)", message: "must be a JSON object" }] };
  const values = new Map<string, string>();
  const errors: FieldError[] = [];
  for (const [field, spec] of Object.entries(route.fields)) {
    const raw = Object.hasOwn(payload, field) ? payload[field] : undefined;
    if (raw === undefined || raw === null || raw === "") {
      if (!spec.optional) errors.push({ field, message: "is required" });
      continue;
    }
    const checked = checkField(spec.type, raw);
    if ("error" in checked) errors.push({ field, message: checked.error });
    else values.set(field, checked.value);
  }
  return errors.length > 0 ? { errors } : { values };
}

/** The value a placeholder stands for: a boolean field fills a whole-value slot with a JSON boolean. */
function fill(template: unknown, values: ReadonlyMap<string, string>, booleans: ReadonlySet<string>): unknown {
  if (typeof template === "string") {
    const whole = /^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/.exec(template);
    if (whole) {
      const name = whole[1] as string;
      const value = values.get(name);
      if (value === undefined) return undefined;
      return booleans.has(name) ? value === "true" : value;
    }
    return template.replace(PLACEHOLDER, (_, name: string) => values.get(name) ?? "");
  }
  if (Array.isArray(template)) return template.map((v) => fill(v, values, booleans)).filter((v) => v !== undefined);
  if (isRecord(template)) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(template)) {
      const filled = fill(v, values, booleans);
      if (filled !== undefined) out[key] = filled;
    }
    return out;
  }
  return template;
}

/** The one venue request a checked payload becomes. */
export interface MappedRequest {
  venue: string;
  account: string;
  method: string;
  path: string;
  /** Exact JSON text to send, or undefined for no body. */
  body: string | undefined;
}

/** Path segments filled from a payload may only use unreserved characters, so a value cannot reshape the path. */
const PATH_VALUE = /^[A-Za-z0-9_.~-]+$/;

/** Fills the route's template. Builtins (`client_order_id`, `delivery_id`) must be in `values` already. */
export function mapRequest(route: HookRoute, values: ReadonlyMap<string, string>): MappedRequest | FieldError {
  let bad: FieldError | undefined;
  const path = route.path.replace(PLACEHOLDER, (_, name: string) => {
    const value = values.get(name) ?? "";
    if (!PATH_VALUE.test(value) || /^\.+$/.test(value)) bad ??= { field: name, message: "cannot be used in a path" };
    return value;
  });
  if (bad) return bad;
  if (checkVenuePath(route.profile, path)) return { field: "(path)", message: "the filled path is not a venue path" };
  const booleans = new Set(Object.entries(route.fields).flatMap(([n, s]) => (s.type === "boolean" ? [n] : [])));
  const body = route.body === undefined ? undefined : JSON.stringify(fill(route.body, values, booleans));
  return { venue: route.venue, account: route.account, method: route.method, path, body };
}

/** A delivery id: `clientOrderId`'s UUID, or the `sg-` + 29 hex digits of deliveries recorded before it. */
export const DELIVERY_ID = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|sg-[0-9a-f]{29})$/;

/**
 * The `client_order_id` for a delivery: derived from the route and its idempotency key, so the same webhook
 * delivered twice maps to the same order, which the venue refuses as a duplicate even if our own dedupe missed it.
 */
export async function clientOrderId(route: string, key: string): Promise<string> {
  // A lowercase, hyphenated UUID (version 8, RFC 9562's custom form): one of the forms INTX takes.
  const h = hex(await sha256(`${route}\n${key}`));
  const variant = ((Number.parseInt(h.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
