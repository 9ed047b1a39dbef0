/**
 * `POST /hooks/<name>`: a verified webhook becomes exactly one venue request. Order of checks: the route exists,
 * the sender is who it claims (signature, passphrase or token; source IP for TradingView), the payload passes its
 * declared types, the delivery id was not seen before; only then is anything signed and sent (or queued).
 */
import { raiseLater } from "../adapters/alerts.ts";
import { DeliveryQueueError, enqueueDelivery } from "../adapters/deliveries.ts";
import type { Claim, HookResult } from "../adapters/hook-ledger.ts";
import { recordOrder } from "../adapters/ledger.ts";
import { errorName, log } from "../adapters/log.ts";
import { sendJson } from "../adapters/venue-outcome.ts";
import { binding } from "../config.ts";
import { events } from "../core/alerts.ts";
import { hex, sha256 } from "../core/digest.ts";
import { screen } from "../core/guards.ts";
import { checkPayload, clientOrderId, type HookRoute, type MappedRequest, mapRequest } from "../core/hooks.ts";
import { ledgerKind, ledgerRow } from "../core/ledger.ts";
import { SENDERS, verifySender } from "../core/senders.ts";
import { webhookKey as importWebhookKey } from "../core/standard-webhooks.ts";
import { accountKey } from "../core/venue-config.ts";
import { venueMessage } from "../lib/rejection.ts";
import { config, runtime } from "../runtime.ts";
import { classify, orderRejection, safeToRepeat } from "../venues/profile.ts";
import { HttpError, readBody, venueFailure } from "./http.ts";

/** Alerts and kill-switch signals are small; anything bigger is not a webhook we serve. */
const MAX_HOOK_BYTES = 16 * 1024;
/** How much of the venue's answer is echoed back to the webhook sender. */
const MAX_ECHO_BYTES = 16 * 1024;

/** The key that makes a redelivery recognisable: the sender's id, a declared alert id, or the payload's hash. */
async function idempotencyKey(route: HookRoute, key: string | undefined, payload: unknown): Promise<string> {
  if (key !== undefined && key !== "") return key;
  if (route.idField !== undefined) {
    const value = typeof payload === "object" && payload !== null ? Reflect.get(payload, route.idField) : undefined;
    if ((typeof value !== "string" && typeof value !== "number") || String(value) === "") {
      throw new HttpError(422, "invalid_payload", `the alert has no ${route.idField}`, undefined, [
        { field: route.idField, message: "is required (it identifies the alert)" },
      ]);
    }
    return `id:${value}`;
  }
  // The parsed payload, not the raw body: a TradingView body carries the passphrase, which must not feed an id that
  // anyone reading orders sees (its verify step already removed it).
  return `sha256:${hex(await sha256(JSON.stringify(payload)))}`;
}

function describe(request: MappedRequest, clientOrderIdValue: string) {
  return { venue: request.venue, method: request.method, path: request.path, client_order_id: clientOrderIdValue };
}

/**
 * What a webhook came to, and whether anything may have reached the venue. Only an answer from the venue, or a
 * request that may have reached it, is kept for replay; a refusal that sent nothing releases the id, so the
 * sender's retry is judged afresh (docs/webhooks.md, "Idempotency").
 */
interface Handled {
  result: HookResult;
  mayHaveSent: boolean;
}

const sentNothing = (result: HookResult): Handled => ({ result, mayHaveSent: false });
const mayHaveSent = (result: HookResult): Handled => ({ result, mayHaveSent: true });

/** Sends the mapped request now; the caller gets what the venue answered (never the signature). */
async function deliverNow(
  env: Env,
  ctx: ExecutionContext,
  route: HookRoute,
  mapped: MappedRequest,
  id: string,
  receivedAt: number,
): Promise<Handled> {
  const { venue, account, method, path, body } = mapped;
  // A webhook is a signal someone acts on (an order, a kill-switch): it goes ahead of reads at the rate gate.
  const by = `hook:${route.name}`;
  const audit = { source: "hook" as const, actor: route.name, receivedAt };
  const request = { method, path, body, account, timeoutMs: route.timeoutMs, priority: "write" as const, by, audit };
  const outcome = await sendJson(env, ctx, venue, request, MAX_ECHO_BYTES);
  const sent = describe(mapped, id);
  switch (outcome.kind) {
    case "not_configured":
      throw new HttpError(503, "venue_not_configured", `${venue} is not configured`);
    case "rate_limited":
      throw new HttpError(
        429,
        "rate_limited",
        `${venue}: the API key's request rate limit is reached; retry after ${outcome.retryAfterSeconds} s`,
        { "retry-after": String(outcome.retryAfterSeconds) },
      );
    case "refused":
      return sentNothing(refusedResult(route, mapped, id, outcome.error));
    case "answered":
      break;
    default: {
      // No usable answer: the sender gets why. A redirect came from a front that did not pass the request on; a
      // connection that failed may have failed after the request left, so only a request safe to repeat is freed.
      const { status, code, message } = venueFailure(venue, outcome.kind, outcome.detail);
      const body = JSON.stringify({ error: { code, message }, route: route.name, delivery_id: id, sent });
      const freed =
        outcome.kind === "redirect" ||
        (outcome.kind === "unreachable" && safeToRepeat(route.profile, mapped.method, mapped.path));
      return freed ? sentNothing({ status, body }) : mayHaveSent({ status, body });
    }
  }
  const { status, text, truncated } = outcome;
  let answer: unknown = truncated ? `${text}…` : text;
  try {
    answer = JSON.parse(text);
  } catch {
    // keep the (capped) text
  }
  // A 2xx can still reject the order (INTX: `event_type: "REJECTED"`): the sender hears a refusal, and so do alerts.
  const rejected = orderRejection(route.profile, method, path, status, text);
  if (rejected !== undefined) raiseLater(env, ctx, events.orderRefused(venue, account, "venue", by, rejected));
  const ok = status >= 200 && status < 300 && rejected === undefined;
  const error = {
    code: "venue_rejected",
    message: (rejected === undefined
      ? `${venue} answered ${status}: ${venueMessage(text) ?? "no message"}`
      : `${venue} rejected the order: ${rejected}`
    ).slice(0, 500),
  };
  return mayHaveSent({
    status: ok ? 200 : 502,
    body: JSON.stringify({
      ...(ok ? {} : { error }),
      route: route.name,
      delivery_id: id,
      sent,
      venue_response: { status, body: answer },
      attempts: outcome.attempts,
    }),
  });
}

/**
 * The account's rules refused the order (read_only, a guard, a halt): the sender gets the refusal, and so does a
 * redelivery (the ledger keeps it), so a retried alert cannot slip through later, after someone said stop.
 */
function refusedResult(
  route: HookRoute,
  mapped: MappedRequest,
  id: string,
  refusal: { status: number; code: string; message: string },
): HookResult {
  const error = { code: refusal.code, message: refusal.message };
  return {
    status: refusal.status,
    body: JSON.stringify({ error, route: route.name, delivery_id: id, sent: describe(mapped, id) }),
  };
}

/**
 * A queued route's order is checked against the account's rules when the webhook arrives, so the sender hears of a
 * refusal now; the consumer checks again at send time, with the halt and the per-minute count.
 */
function screenQueued(
  env: Env,
  ctx: ExecutionContext,
  route: HookRoute,
  mapped: MappedRequest,
  id: string,
  receivedAt: number,
): HookResult | undefined {
  const { venue, account, method, path, body } = mapped;
  const target = config(env).accounts.get(accountKey(venue, account));
  if (!target) return undefined; // the consumer records "not configured"
  const kind = classify(route.profile, method, path);
  const screened = screen(target.rules, kind, body, `${venue}/${account}`);
  if (!("refused" in screened)) return undefined;
  const { status, rule, message } = screened.refused;
  const by = `hook:${route.name}`;
  log("warn", { event: "refused", venue, account, by, rule, status });
  const ledger = ledgerKind(kind);
  if (ledger) {
    const audit = { source: "hook" as const, actor: route.name, receivedAt, delivery: id };
    const call = { venue, account, method, path, kind: ledger, body };
    const end = { outcome: "refused" as const, status, refusal: `${rule}: ${message}` };
    recordOrder(env, ctx, ledgerRow(audit, call, end, Date.now(), crypto.randomUUID()));
  }
  if (screened.refused.code === "order_refused")
    raiseLater(env, ctx, events.orderRefused(venue, account, rule, by, message));
  return refusedResult(route, mapped, id, screened.refused);
}

/** Errors raised before anything was sent to the venue or the queue. */
function nothingSent(err: unknown): boolean {
  if (err instanceof DeliveryQueueError) return true;
  return err instanceof HttpError && (err.code === "venue_not_configured" || err.code === "rate_limited");
}

/** The answer when an unexpected error leaves it unknown whether the venue acted. */
function outcomeUnknown(route: HookRoute, mapped: MappedRequest, id: string): HookResult {
  const error = {
    code: "venue_outcome_unknown",
    message: `${mapped.venue} may have processed this request; it is not sent again (check client_order_id ${id})`,
  };
  return {
    status: 502,
    body: JSON.stringify({ error, route: route.name, delivery_id: id, sent: describe(mapped, id) }),
  };
}

/** The 202 a queued delivery answers: where to read its outcome. */
function queuedResult(route: HookRoute, mapped: MappedRequest, id: string): HookResult {
  const body = { route: route.name, delivery_id: id, state: "queued", status_url: `/deliveries/${id}` };
  return { status: 202, body: JSON.stringify({ ...body, sent: describe(mapped, id) }) };
}

function hookResponse(result: HookResult, replayed: boolean): Response {
  return new Response(result.body, {
    status: result.status,
    headers: { "content-type": "application/json", "x-skewguard-replayed": String(replayed) },
  });
}

/** The `/hooks/<name>` handler. */
export async function hook(name: string, request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const { routes, unsignable } = config(env).hooks;
  const route = routes.get(name);
  if (!route) {
    // A route whose account cannot sign is refused before anything is read or queued, so a sender retries it.
    // Unauthenticated, so it says no more than that (the account and why are in GET /health, behind a token).
    if (unsignable.has(name)) {
      throw new HttpError(503, "hook_not_configured", "this route's account cannot sign now; nothing was queued");
    }
    throw new HttpError(404, "not_found", "no such webhook route");
  }
  if (request.method !== "POST") throw new HttpError(405, "method_not_allowed", "webhooks are POST only");
  const secret = binding(env, route.secretBinding);
  if (secret === undefined) {
    throw new HttpError(503, "hook_not_configured", `the secret binding ${route.secretBinding} is not set`);
  }
  const type = request.headers.get("content-type") ?? "";
  if (!SENDERS[route.sender.verify].mediaTypes.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "webhook bodies must be JSON");
  }
  const body = (await readBody(request, MAX_HOOK_BYTES)) ?? new Uint8Array(0);
  const now = Date.now();
  // The route's Standard Webhooks key is imported once per route and isolate (the runtime keeps it).
  const webhookKey = async () =>
    runtime(env).key(`hook ${route.name}`, () => importWebhookKey(secret, route.secretBinding));
  const inbound = { headers: request.headers, body, secret, secretBinding: route.secretBinding, webhookKey, now };
  const verified = await verifySender(route.sender, inbound);
  if (!verified.ok) throw new HttpError(verified.status, verified.code, verified.message);
  const { payload, key } = verified;

  const checked = checkPayload(route, payload);
  if ("errors" in checked) {
    throw new HttpError(
      422,
      "invalid_payload",
      "the payload does not match the route's fields",
      undefined,
      checked.errors,
    );
  }
  const idempotency = await idempotencyKey(route, key, payload);
  const mapWith = (id: string): MappedRequest => {
    checked.values.set("client_order_id", id);
    checked.values.set("delivery_id", id);
    const mapped = mapRequest(route, checked.values);
    if (!("field" in mapped)) return mapped;
    throw new HttpError(422, "invalid_payload", "the payload does not match the route's fields", undefined, [mapped]);
  };
  // Mapped with the first generation's id before anything is claimed: a payload that cannot map claims nothing.
  const first = await clientOrderId(route.name, idempotency);
  let mapped = mapWith(first);

  const { durableObjects, retentionDays } = config(env);
  const ledger = env.HOOK_LEDGER.get(env.HOOK_LEDGER.idFromName(route.name), durableObjects);
  // Kept past the dedupe window as long as D1 keeps deliveries, so a later generation never reuses a recorded id.
  const keepMs = (retentionDays + 1) * 86_400_000;
  const claim: Claim = await ledger.claim(first, route.dedupeSeconds * 1000, now, keepMs);
  if (claim.state === "done") return hookResponse(claim.result, true);
  if (claim.state === "pending") {
    throw new HttpError(409, "in_progress", "this webhook is being delivered; its first delivery's answer will follow");
  }
  // After its dedupe window the same key is a new delivery, with its own delivery id and client_order_id.
  let id = first;
  if (claim.generation > 0) {
    id = await clientOrderId(route.name, `${idempotency}\n#${claim.generation}`);
    mapped = mapWith(id);
  }
  let handled: Handled;
  try {
    if (route.delivery === "queue") {
      const refused = screenQueued(env, ctx, route, mapped, id, now);
      if (!refused) await enqueueDelivery(env, route, mapped, id, now);
      handled = refused ? sentNothing(refused) : mayHaveSent(queuedResult(route, mapped, id));
    } else handled = await deliverNow(env, ctx, route, mapped, id, now);
  } catch (err) {
    if (nothingSent(err)) {
      // Not configured, rate limited before sending, or the queue refused: let the sender try again.
      await ledger.release(first);
      if (err instanceof DeliveryQueueError) throw new HttpError(503, "queue_unavailable", err.message);
      throw err;
    }
    // Anything else may have happened after the venue acted: keep the id, so a redelivery cannot act twice.
    log("error", { event: "hook_outcome_unknown", route: route.name, delivery_id: id, error: errorName(err) });
    handled = mayHaveSent(outcomeUnknown(route, mapped, id));
  }
  const { result } = handled;
  // Stored before answering, so a replay right after this response gets this answer, not a 409; a refusal that
  // sent nothing is not stored, so the sender's retry is judged again (by the guards and halt then in force).
  if (handled.mayHaveSent) await ledger.complete(first, result);
  else await ledger.release(first);
  log("info", { event: "hook", route: route.name, delivery_id: id, status: result.status, delivery: route.delivery });
  return hookResponse(result, false);
}
