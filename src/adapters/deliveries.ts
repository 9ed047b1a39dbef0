/**
 * Durable delivery for webhook routes with `delivery = "queue"`: the webhook is recorded in D1 and enqueued, and
 * the queue consumer signs at send time (never at enqueue time) and retries with backoff. Every accepted webhook
 * ends `delivered`, or in `dead_letters` with the reason; none is dropped silently. This file orchestrates: the
 * rules are in core/deliveries.ts, D1 in delivery-store.ts.
 */

import { events } from "../core/alerts.ts";
import {
  type DeliveryMessage,
  giveUp,
  isResend,
  lookupPresence,
  MAX_STORED_RESPONSE,
  needsLookup,
  type Outcome,
  oneShotRefusal,
  outcomeOf,
  type Presence,
  presenceOutcome,
  type RedriveRefusal,
  redriveMessage,
  retryDelaySeconds,
  retrySafe,
  STUCK_REDRIVE_MS,
  type Standing,
  staleReason,
  stuckBefore,
  stuckReason,
  superseded,
  supersededWhileSending,
  type VenueResult,
} from "../core/deliveries.ts";
import type { HookRoute, MappedRequest } from "../core/hooks.ts";
import { config } from "../runtime.ts";
import { raise } from "./alerts.ts";
import {
  claimRedrive,
  deleteQueued,
  deliveryExists,
  endStuckRedrive,
  failRedrive,
  findStuckRedrives,
  insertQueued,
  markSending,
  readDeadLetter,
  readStanding,
  recordOutcome,
  recordSuperseded,
} from "./delivery-store.ts";
import { errorName, log } from "./log.ts";
import { failureReason } from "./venue-errors.ts";
import { sendJson, type VenueOutcome } from "./venue-outcome.ts";

/** Open orders or fills filtered by one client_order_id: a page of a few results at most. */
const MAX_LOOKUP_BYTES = 65_536;

/** The queue refused the message; nothing was recorded or sent. */
export class DeliveryQueueError extends Error {
  override readonly name = "DeliveryQueueError";
  constructor() {
    super("the delivery queue refused the webhook; nothing was sent, retry it");
  }
}

/** Records the delivery and enqueues it. Throws DeliveryQueueError (nothing sent) if D1 or the queue refuses. */
export async function enqueueDelivery(
  env: Env,
  route: HookRoute,
  mapped: MappedRequest,
  id: string,
  now: number,
): Promise<void> {
  const message: DeliveryMessage = {
    id,
    route: route.name,
    venue: mapped.venue,
    account: mapped.account,
    method: mapped.method,
    path: mapped.path,
    body: mapped.body,
    receivedAt: now,
    maxAgeSeconds: route.maxAgeSeconds,
    retrySafe: retrySafe(route.profile, mapped),
  };
  try {
    await insertQueued(env, route, mapped, id, now);
  } catch (err) {
    log("error", { event: "enqueue_failed", route: route.name, delivery_id: id, error: errorName(err) });
    throw new DeliveryQueueError();
  }
  try {
    await env.DELIVERIES.send(message, { contentType: "json" });
  } catch (err) {
    await deleteQueued(env, id);
    log("error", { event: "enqueue_failed", route: route.name, delivery_id: id, error: errorName(err) });
    throw new DeliveryQueueError();
  }
}

/** A venue call as the delivery rules read it; an unreachable venue's reason carries no detail. */
function venueResult(outcome: VenueOutcome): VenueResult {
  switch (outcome.kind) {
    case "answered":
    case "rate_limited":
    case "not_configured":
      return outcome;
    case "refused":
      return { kind: "refused", rule: outcome.error.rule, message: outcome.error.message };
    case "unreachable":
      return { kind: "failed", failure: outcome.kind, reason: failureReason(outcome.kind) };
    default:
      return { kind: "failed", failure: outcome.kind, reason: failureReason(outcome.kind, outcome.detail) };
  }
}

/** Asks the venue whether it already has the order an earlier attempt may have sent (core/deliveries.ts `Presence`). */
async function findAtVenue(env: Env, ctx: ExecutionContext, message: DeliveryMessage): Promise<Presence> {
  const { venue, method, path, body, account } = message;
  const profile = config(env).profiles.get(venue);
  if (!profile) return { kind: "unknown", reason: `${venue} is not a venue this Worker serves` };
  if (!needsLookup(profile, message)) return { kind: "absent" };
  const lookup = profile.orderLookup?.(method, path, body);
  if (!lookup) return { kind: "unknown", reason: `${venue} cannot look up an order by its client_order_id` };
  for (const read of lookup.reads) {
    const request = { method: "GET", ...read, account, priority: "write" as const, by: `hook:${message.route}` };
    const outcome = await sendJson(env, ctx, venue, request, MAX_LOOKUP_BYTES);
    const truncated = outcome.kind === "answered" && outcome.truncated;
    const presence = lookupPresence(lookup, { ...venueResult(outcome), truncated });
    if (presence.kind !== "absent") return presence;
  }
  return { kind: "absent" };
}

/**
 * Before sending a request that must not be sent twice (a POST with no client_order_id that sets no state), its
 * row says so; the attempt's outcome overwrites it. A later attempt that finds it still there knows an earlier one
 * may have reached the venue with its outcome never recorded (D1 failed after the send), and does not send.
 * Resolves to an outcome instead of sending, or undefined to go ahead.
 */
async function guardOneShot(
  env: Env,
  message: DeliveryMessage,
  row: Standing | null,
  attempts: number,
  now: number,
): Promise<Outcome | undefined> {
  if (message.retrySafe) return undefined;
  const refusal = oneShotRefusal(message, row);
  if (refusal) return refusal;
  try {
    await markSending(env, message.id, attempts, now);
  } catch (err) {
    const reason = `D1 could not record the attempt before sending (${errorName(err)}); nothing was sent`;
    return { kind: "retry", reason };
  }
  return undefined;
}

/**
 * Sends one delivery, signed now, and classifies the outcome. After the first attempt, or when re-driven, an
 * earlier attempt may have reached the venue: an order is looked up before it is sent again, and a request that
 * cannot be repeated is not sent again unless its last attempt is known to have sent nothing.
 */
async function attempt(
  env: Env,
  ctx: ExecutionContext,
  message: DeliveryMessage,
  now: number,
  attempts: number,
  row: Standing | null,
): Promise<Outcome> {
  const stale = staleReason(message, now);
  if (stale !== undefined) return { kind: "dead", reason: stale };
  if (isResend(message, attempts)) {
    const found = presenceOutcome(await findAtVenue(env, ctx, message));
    if (found) return found;
  }
  const oneShot = await guardOneShot(env, message, row, attempts, now);
  if (oneShot) return oneShot;
  let outcome: VenueOutcome;
  try {
    const { method, path, body, account } = message;
    const source = message.redrivenAt === undefined ? ("delivery" as const) : ("redrive" as const);
    const audit = { source, actor: message.route, receivedAt: now, delivery: message.id };
    const request = { method, path, body, account, priority: "write" as const, by: `hook:${message.route}`, audit };
    outcome = await sendJson(env, ctx, message.venue, request, MAX_STORED_RESPONSE);
  } catch (err) {
    // It may have failed after the request left: repeated only where that is safe.
    return outcomeOf(message, { kind: "failed", failure: "internal", reason: `internal error (${errorName(err)})` });
  }
  return outcomeOf(message, venueResult(outcome), config(env).profiles.get(message.venue));
}

/**
 * The queue consumer for the deliveries queues: one attempt per message per batch; the decision is recorded before
 * the message is acked. index.ts routes each batch here by its queue's name.
 */
export async function consumeDeliveries(
  messages: readonly Message<DeliveryMessage>[],
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  await Promise.all(messages.map((msg) => consumeDelivery(msg, env, ctx)));
}

async function consumeDelivery(msg: Message<DeliveryMessage>, env: Env, ctx: ExecutionContext): Promise<void> {
  const message = msg.body;
  const now = Date.now();
  let row: Standing | null;
  try {
    row = await readStanding(env, message.id);
  } catch (err) {
    // D1 cannot say whether this copy is current: nothing is sent, and the queue brings it back.
    log("error", { event: "delivery_read_failed", delivery_id: message.id, error: errorName(err) });
    msg.retry({ delaySeconds: 5 });
    return;
  }
  const late = superseded(message, row);
  if (late !== undefined) {
    // Not sent: the delivery has an outcome of its own, or a newer copy. This copy's fate is written down.
    await recordSuperseded(env, message, msg.attempts, late, now).catch((err: unknown) =>
      log("error", { event: "delivery_record_failed", delivery_id: message.id, error: errorName(err) }),
    );
    log("warn", { event: "delivery_superseded", delivery_id: message.id, route: message.route, reason: late });
    msg.ack();
    return;
  }
  const outcome = giveUp(await attempt(env, ctx, message, now, msg.attempts, row), msg.attempts);
  let current: boolean;
  try {
    current = await recordOutcome(env, message, msg.attempts, outcome, now);
  } catch (err) {
    // Not recorded: let the queue redeliver rather than ack a message whose fate nobody can read.
    log("error", { event: "delivery_record_failed", delivery_id: message.id, error: errorName(err) });
    msg.retry({ delaySeconds: 5 });
    return;
  }
  if (current) settle(msg, env, ctx, outcome);
  else await supersededWhileSent(msg, env, ctx, outcome, now);
}

/**
 * Superseded while it was being sent (a re-drive or another copy ended it meanwhile): written down, and told,
 * since this copy may have acted too.
 */
async function supersededWhileSent(
  msg: Message<DeliveryMessage>,
  env: Env,
  ctx: ExecutionContext,
  outcome: Outcome,
  now: number,
): Promise<void> {
  const message = msg.body;
  const reason = supersededWhileSending(outcome);
  await recordSuperseded(env, message, msg.attempts, reason, now).catch(() => undefined);
  log("error", { event: "delivery_superseded", delivery_id: message.id, route: message.route, reason });
  const where = { venue: message.venue, account: message.account ?? "default" };
  ctx.waitUntil(raise(env, events.superseded(message.route, message.id, reason, where)));
  msg.ack();
}

/** A recorded outcome: logged, alerted if dead, and the message acked or retried with backoff. */
function settle(msg: Message<DeliveryMessage>, env: Env, ctx: ExecutionContext, outcome: Outcome): void {
  const message = msg.body;
  log(outcome.kind === "dead" ? "error" : "info", {
    event: "delivery",
    delivery_id: message.id,
    route: message.route,
    account: message.account ?? "default",
    venue: message.venue,
    outcome: outcome.kind,
    attempts: msg.attempts,
    status: outcome.status,
    reason: outcome.kind === "delivered" ? undefined : outcome.reason,
  });
  if (outcome.kind === "dead") {
    const where = { venue: message.venue, account: message.account ?? "default" };
    ctx.waitUntil(raise(env, events.deadLettered(message.route, message.id, outcome.reason, where)));
  }
  if (outcome.kind === "retry") {
    msg.retry({ delaySeconds: outcome.delaySeconds ?? retryDelaySeconds(msg.attempts) });
  } else msg.ack();
}

/**
 * Re-drives that never reached the queue (the request that claimed one died before it could send it): still
 * `queued`, with no attempt since the re-drive, for STUCK_REDRIVE_MS and past their max age plus a minute, so any
 * copy would now be refused as stale. Each is dead again, with that reason in its state and history and a
 * `delivery.dead_lettered` alert; its dead letter (with the payload) is still there, so it can be re-driven again.
 * Run by each cron trigger; resolves to the ids it ended, and never rejects (a failure is logged).
 */
export async function sweepStuckRedrives(env: Env, ctx: ExecutionContext, now: number = Date.now()): Promise<string[]> {
  const ended: string[] = [];
  try {
    for (const row of await findStuckRedrives(env, now, STUCK_REDRIVE_MS)) {
      const message = JSON.parse(row.payload) as DeliveryMessage;
      const { minutes, reason } = stuckReason(now, row.updated_at);
      if (!(await endStuckRedrive(env, row.id, reason, now, row.updated_at))) continue;
      ended.push(row.id);
      log("error", { event: "redrive_stuck", delivery_id: row.id, route: message.route, minutes });
      const where = { venue: message.venue, account: message.account ?? "default" };
      ctx.waitUntil(raise(env, events.deadLettered(message.route, row.id, reason, where)));
    }
  } catch (err) {
    log("error", { event: "redrive_sweep_failed", error: errorName(err) });
  }
  return ended;
}

/**
 * Sends a dead delivery again: the same message (same `client_order_id`, so the venue refuses a duplicate order,
 * and a state-setting POST stays safe), with a fresh max age. Only one of two concurrent re-drives wins (the claim,
 * delivery-store.ts `claimRedrive`). The dead letter stays until the delivery dies again (which replaces it) or the
 * retention prunes it, so the message is never lost: a re-drive whose send never happened (the request died between
 * the claim and the queue) can be re-driven again after STUCK_REDRIVE_MS. A message that is not safe to send twice
 * (`retrySafe` false: a POST with no client_order_id that may have reached the venue) needs `force`.
 */
export async function redrive(
  env: Env,
  id: string,
  by: string,
  now: number,
  force = false,
): Promise<DeliveryMessage | RedriveRefusal> {
  const dead = await readDeadLetter(env, id);
  const message = redriveMessage(dead, dead !== null || (await deliveryExists(env, id)), force, now);
  if (typeof message === "string") return message;
  if (!(await claimRedrive(env, id, by, now, stuckBefore(now, message.maxAgeSeconds)))) return "not_dead";
  try {
    await env.DELIVERIES.send(message, { contentType: "json" });
  } catch (err) {
    log("error", { event: "redrive_failed", delivery_id: id, error: errorName(err) });
    await failRedrive(env, id, "re-drive failed: the queue refused it", Date.now());
    throw new DeliveryQueueError();
  }
  log("warn", { event: "redrive", delivery_id: id, route: message.route, by });
  return message;
}
