/**
 * `POST /hooks/<name>`: a verified webhook becomes exactly one venue request. Order of checks: the route exists,
 * the sender is who it claims (signature, passphrase or token; source IP for TradingView), the payload passes its
 * declared types, the delivery id was not seen before; only then is anything signed and sent (or queued).
 */
import { UpstreamError, venueClient } from "../adapters/client.ts";
import { DeliveryQueueError, enqueueDelivery } from "../adapters/deliveries.ts";
import type { Claim, HookResult } from "../adapters/hook-ledger.ts";
import { log } from "../adapters/log.ts";
import {
  checkPayload,
  clientOrderId,
  type HookProblem,
  type HookRoute,
  type MappedRequest,
  mapRequest,
  parseHooks,
} from "../core/hooks.ts";
import { venueMessage } from "../core/rejection.ts";
import { verifyWebhook, webhookKey } from "../core/standard-webhooks.ts";
import { digestsEqual } from "../core/tokens.ts";
import { HttpError } from "./errors.ts";
import { readBody } from "./proxy.ts";

/** Alerts and kill-switch signals are small; anything bigger is not a webhook we serve. */
const MAX_HOOK_BYTES = 16 * 1024;
/** How much of the venue's answer is echoed back to the webhook sender. */
const MAX_ECHO_BYTES = 16 * 1024;

const parsed = new WeakMap<object, ReturnType<typeof parseHooks>>();

/** The `HOOKS` routes for this env, parsed once per isolate. Problems are logged once and shown by /health. */
export function hookRoutes(env: object): { routes: Map<string, HookRoute>; problems: HookProblem[] } {
  let hooks = parsed.get(env);
  if (!hooks) {
    hooks = parseHooks((env as Record<string, unknown>).HOOKS);
    for (const problem of hooks.problems) log("error", { event: "config", binding: "HOOKS", ...problem });
    parsed.set(env, hooks);
  }
  return hooks;
}

const encoder = new TextEncoder();

/** Imported Standard Webhooks keys, per env object and binding: one importKey per isolate, not per request. */
const webhookKeys = new WeakMap<object, Map<string, Promise<CryptoKey>>>();

function cachedWebhookKey(env: object, binding: string, secret: string): Promise<CryptoKey> {
  let keys = webhookKeys.get(env);
  if (!keys) {
    keys = new Map();
    webhookKeys.set(env, keys);
  }
  let key = keys.get(binding);
  if (!key) {
    key = webhookKey(secret, binding);
    const forget = keys;
    key.catch(() => forget.delete(binding));
    keys.set(binding, key);
  }
  return key;
}

async function sha256(data: string | Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", typeof data === "string" ? encoder.encode(data) : data));
}

/** Constant-time equality of two secrets of any length (compared as digests). */
async function secretsEqual(given: string, expected: string): Promise<boolean> {
  return digestsEqual(await sha256(given), await sha256(expected));
}

function unauthorized(message: string): HttpError {
  return new HttpError(401, "unauthenticated", message);
}

/** Verifies the sender; returns the payload and the sender-chosen idempotency key, if any. */
async function verify(
  route: HookRoute,
  request: Request,
  body: Uint8Array<ArrayBuffer>,
  secret: string,
  now: number,
  env: object,
): Promise<{ payload: unknown; key: string | undefined }> {
  const text = new TextDecoder().decode(body);
  const json = () => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new HttpError(400, "bad_json", "the webhook body is not valid JSON");
    }
  };
  switch (route.verify) {
    case "standard-webhooks": {
      const id = request.headers.get("webhook-id");
      let key: CryptoKey;
      try {
        key = await cachedWebhookKey(env, route.secretBinding, secret);
      } catch {
        throw new HttpError(
          503,
          "hook_not_configured",
          `the secret binding ${route.secretBinding} is not a whsec_ key`,
        );
      }
      const ok = await verifyWebhook(key, request.headers, body, { toleranceSeconds: route.toleranceSeconds, now });
      if (!ok || id === null) throw unauthorized("webhook signature missing, invalid, or outside the time tolerance");
      return { payload: json(), key: id };
    }
    case "tradingview": {
      const ip = request.headers.get("cf-connecting-ip") ?? "";
      if (route.sourceIps !== null && !route.sourceIps.includes(ip)) {
        throw new HttpError(403, "forbidden_source", "this source address may not call this route");
      }
      const payload = json();
      const given = typeof payload === "object" && payload !== null ? Reflect.get(payload, route.passphraseField) : "";
      if (!(await secretsEqual(typeof given === "string" ? given : "", secret))) {
        throw unauthorized(`missing or wrong ${route.passphraseField}`);
      }
      Reflect.deleteProperty(payload as object, route.passphraseField);
      return { payload, key: undefined };
    }
    case "bearer": {
      const header = request.headers.get("authorization") ?? "";
      const token = /^Bearer (\S+)$/.exec(header)?.[1] ?? "";
      if (!(await secretsEqual(token, secret))) throw unauthorized("missing or wrong bearer token");
      return { payload: json(), key: request.headers.get("idempotency-key") ?? undefined };
    }
  }
}

/** The key that makes a redelivery recognisable: the sender's id, a declared alert id, or the body's hash. */
async function idempotencyKey(
  route: HookRoute,
  key: string | undefined,
  payload: unknown,
  body: Uint8Array<ArrayBuffer>,
): Promise<string> {
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
  const digest = await sha256(body);
  return `sha256:${Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function describe(request: MappedRequest, clientOrderIdValue: string) {
  return { venue: request.venue, method: request.method, path: request.path, client_order_id: clientOrderIdValue };
}

/** Sends the mapped request now; the caller gets what the venue answered (never the signature). */
async function deliverNow(
  env: Env,
  ctx: ExecutionContext,
  route: HookRoute,
  mapped: MappedRequest,
  id: string,
): Promise<HookResult> {
  const client = venueClient(env, mapped.venue, ctx);
  if (!client) throw new HttpError(503, "venue_not_configured", `${mapped.venue} is not configured`);
  const sent = describe(mapped, id);
  try {
    const result = await client.send({
      method: mapped.method,
      path: mapped.path,
      body: mapped.body,
      headers: mapped.body === undefined ? {} : { "content-type": "application/json" },
      timeoutMs: route.timeoutMs,
    });
    const status = result.response.status;
    const text = await result.response.text();
    let answer: unknown = text.length > MAX_ECHO_BYTES ? `${text.slice(0, MAX_ECHO_BYTES)}…` : text;
    try {
      answer = JSON.parse(text);
    } catch {
      // keep the (capped) text
    }
    const ok = status >= 200 && status < 300;
    const body = {
      ...(ok
        ? {}
        : {
            error: {
              code: "venue_rejected",
              message: `${mapped.venue} answered ${status}: ${venueMessage(text) ?? "no message"}`.slice(0, 500),
            },
          }),
      route: route.name,
      delivery_id: id,
      sent,
      venue_response: { status, body: answer },
      attempts: result.attempts,
    };
    return { status: ok ? 200 : 502, body: JSON.stringify(body) };
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    const status = err.kind === "timeout" ? 504 : 502;
    const message =
      err.kind === "timeout"
        ? `${mapped.venue} did not answer in time; it may have processed the request (same client_order_id on retry)`
        : `${mapped.venue} could not be reached`;
    const code = err.kind === "timeout" ? "venue_timeout" : "venue_unreachable";
    return { status, body: JSON.stringify({ error: { code, message }, route: route.name, delivery_id: id, sent }) };
  }
}

function hookResponse(result: HookResult, replayed: boolean): Response {
  return new Response(result.body, {
    status: result.status,
    headers: { "content-type": "application/json", "x-skewguard-replayed": String(replayed) },
  });
}

/** The `/hooks/<name>` handler. */
export async function hook(name: string, request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const route = hookRoutes(env).routes.get(name);
  if (!route) throw new HttpError(404, "not_found", "no such webhook route");
  if (request.method !== "POST") throw new HttpError(405, "method_not_allowed", "webhooks are POST only");
  const secret = (env as unknown as Record<string, unknown>)[route.secretBinding];
  if (typeof secret !== "string" || secret === "") {
    throw new HttpError(503, "hook_not_configured", `the secret binding ${route.secretBinding} is not set`);
  }
  const type = request.headers.get("content-type") ?? "";
  // TradingView labels a JSON alert text/plain when it is not valid JSON; it must parse as JSON all the same.
  const types =
    route.verify === "tradingview" ? /^(application\/json|text\/plain)(\s*;|$)/i : /^application\/json(\s*;|$)/i;
  if (!types.test(type)) throw new HttpError(415, "unsupported_media_type", "webhook bodies must be JSON");
  const body = ((await readBody(request, MAX_HOOK_BYTES)) ?? new Uint8Array(0)) as Uint8Array<ArrayBuffer>;
  const now = Date.now();
  const { payload, key } = await verify(route, request, body, secret, now, env);

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
  const id = await clientOrderId(route.name, await idempotencyKey(route, key, payload, body));
  checked.values.set("client_order_id", id);
  checked.values.set("delivery_id", id);
  const mapped = mapRequest(route, checked.values);
  if ("field" in mapped) {
    throw new HttpError(422, "invalid_payload", "the payload does not match the route's fields", undefined, [mapped]);
  }

  const ledger = env.HOOK_LEDGER.get(env.HOOK_LEDGER.idFromName(route.name));
  const claim: Claim = await ledger.claim(id, route.dedupeSeconds * 1000, now);
  if (claim.state === "done") return hookResponse(claim.result, true);
  if (claim.state === "pending") {
    throw new HttpError(409, "in_progress", "this webhook is being delivered; its first delivery's answer will follow");
  }
  let result: HookResult;
  try {
    result =
      route.delivery === "queue"
        ? await enqueueDelivery(env, route, mapped, id, now)
        : await deliverNow(env, ctx, route, mapped, id);
  } catch (err) {
    // Nothing reached the venue (not configured, rate limited, queue refused): let the sender try again.
    await ledger.release(id);
    if (err instanceof DeliveryQueueError) throw new HttpError(503, "queue_unavailable", err.message);
    throw err;
  }
  // Stored before answering, so a replay right after this response gets this answer, not a 409.
  await ledger.complete(id, result);
  log("info", { event: "hook", route: route.name, delivery_id: id, status: result.status, delivery: route.delivery });
  return hookResponse(result, false);
}
