/**
 * Durable delivery for webhook routes with `delivery = "queue"`: the webhook is recorded in D1 and enqueued, and
 * the queue consumer signs at send time (never at enqueue time) and retries with backoff. Every accepted webhook
 * ends `delivered`, or in `dead_letters` with the reason; none is dropped silently.
 */

import { events } from "../core/alerts.ts";
import type { HookRoute, MappedRequest } from "../core/hooks.ts";
import { isDuplicateOrder, venueMessage } from "../lib/rejection.ts";
import { config } from "../runtime.ts";
import { orderRejection, safeToRepeat, type VenueProfile } from "../venues/profile.ts";
import { type AlertMessage, deliverAlert, isAlertMessage, raise } from "./alerts.ts";
import { errorName, log } from "./log.ts";
import { failureReason } from "./venue-errors.ts";
import { sendJson, type VenueOutcome } from "./venue-outcome.ts";

/** What travels through the queue: the mapped request, unsigned. */
export interface DeliveryMessage {
  id: string;
  route: string;
  venue: string;
  /** The account that signs it; absent in messages queued before accounts existed, meaning `default`. */
  account?: string;
  method: string;
  path: string;
  body: string | undefined;
  receivedAt: number;
  maxAgeSeconds: number;
  /** Whether re-sending after an unknown outcome is safe (see `retrySafe`). */
  retrySafe: boolean;
  /** Set when re-driven: its max age then counts from this time, not from when the webhook arrived. */
  redrivenAt?: number;
}

/** Attempts before a delivery is dead-lettered; kept below the consumer's `max_retries` so we always decide. */
export const MAX_DELIVERY_ATTEMPTS = 8;
const MAX_STORED_RESPONSE = 4_096;
/** Open orders or fills filtered by one client_order_id: a page of a few results at most. */
const MAX_LOOKUP_BYTES = 65_536;

/** The body's `client_order_id`, read from the JSON itself (never from its text), or undefined. */
function bodyClientOrderId(body: string | undefined): string | undefined {
  if (body === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(body);
    const id = typeof value === "object" && value !== null ? Reflect.get(value, "client_order_id") : undefined;
    return typeof id === "string" && id !== "" ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Re-sending after a timeout or a 5xx is safe only when the venue would absorb a second copy (`safeToRepeat`), or
 * when the venue can be asked first whether it has the order: a body carrying a `client_order_id`, looked up before
 * any re-send (`findAtVenue`).
 */
export function retrySafe(profile: VenueProfile, mapped: MappedRequest): boolean {
  return safeToRepeat(profile, mapped.method, mapped.path) || bodyClientOrderId(mapped.body) !== undefined;
}

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
    await env.DB.prepare(
      `INSERT INTO deliveries (id, route, venue, account, method, path, client_order_id, state, received_at,
         updated_at) VALUES (?1, ?2, ?3, ?8, ?4, ?5, ?6, 'queued', ?7, ?7) ON CONFLICT (id) DO NOTHING`,
    )
      .bind(id, route.name, mapped.venue, mapped.method, mapped.path, id, now, mapped.account)
      .run();
  } catch (err) {
    log("error", { event: "enqueue_failed", route: route.name, delivery_id: id, error: errorName(err) });
    throw new DeliveryQueueError();
  }
  try {
    await env.DELIVERIES.send(message, { contentType: "json" });
  } catch (err) {
    await env.DB.prepare("DELETE FROM deliveries WHERE id = ?1 AND state = 'queued'").bind(id).run();
    log("error", { event: "enqueue_failed", route: route.name, delivery_id: id, error: errorName(err) });
    throw new DeliveryQueueError();
  }
}

/** Backoff before the next attempt: doubling from 2 s, capped at 60 s, with full jitter above 1 s. */
export function retryDelaySeconds(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(60, 2 ** attempt);
  return Math.max(1, Math.ceil(random() * ceiling));
}

type Outcome =
  | { kind: "delivered"; status: number; response: string }
  | { kind: "retry"; reason: string; status?: number; delaySeconds?: number }
  | { kind: "dead"; reason: string; status?: number; response?: string };

/**
 * Whether the venue already has the order an earlier attempt may have sent (docs/webhooks.md, "Exactly once"):
 * `absent` (send it), `found` (it reached the venue: delivered), `unknown` (the venue cannot tell: never re-sent, so
 * dead-lettered), or `decided` (skewguard's own gate or rules refused the read, so the outcome is theirs: a retry
 * later for its rate limit, dead for a halt).
 */
type Presence =
  | { kind: "absent" }
  | { kind: "found"; response: string }
  | { kind: "unknown"; reason: string }
  | { kind: "decided"; outcome: Outcome };

async function findAtVenue(env: Env, ctx: ExecutionContext, message: DeliveryMessage): Promise<Presence> {
  const { venue, method, path, body, account } = message;
  const profile = config(env).profiles.get(venue);
  if (!profile) return { kind: "unknown", reason: `${venue} is not a venue this Worker serves` };
  if (safeToRepeat(profile, method, path) || bodyClientOrderId(body) === undefined) return { kind: "absent" };
  const lookup = profile.orderLookup?.(method, path, body);
  if (!lookup) return { kind: "unknown", reason: `${venue} cannot look up an order by its client_order_id` };
  for (const read of lookup.reads) {
    const request = { method: "GET", ...read, account, priority: "write" as const, by: `hook:${message.route}` };
    const outcome = await sendJson(env, ctx, venue, request, MAX_LOOKUP_BYTES);
    if (outcome.kind === "rate_limited") {
      return { kind: "decided", outcome: { kind: "retry", reason: "outbound rate limit", delaySeconds: 1 } };
    }
    if (outcome.kind === "refused") {
      return { kind: "decided", outcome: { kind: "dead", reason: refusedReason(outcome.error) } };
    }
    if (outcome.kind !== "answered" || outcome.status < 200 || outcome.status > 299 || outcome.truncated) {
      const what =
        outcome.kind === "answered"
          ? `answered ${outcome.status}`
          : outcome.kind === "not_configured"
            ? "not configured"
            : failureReason(outcome.kind);
      return { kind: "unknown", reason: `looking up client_order_id ${lookup.clientOrderId}: ${what}` };
    }
    if (lookup.found(outcome.text)) return { kind: "found", response: outcome.text.slice(0, MAX_STORED_RESPONSE) };
  }
  return { kind: "absent" };
}

const refusedReason = (error: { rule: string; message: string }) => `refused (${error.rule}): ${error.message}`;

/** The reason a delivery's row holds while an attempt that cannot be repeated is on its way to the venue. */
const SENDING = "sending: attempt ";

/** What D1 says of a delivery before an attempt: its state and reason, and when it was last re-driven. */
interface Standing {
  state: DeliveryView["state"];
  reason: string | null;
  redrivenAt: number | null;
}

async function standing(env: Env, id: string): Promise<Standing | null> {
  return env.DB.prepare(
    `SELECT state, reason, (SELECT MAX(at) FROM delivery_history h WHERE h.delivery_id = d.id AND h.event = 'redriven')
       AS redrivenAt FROM deliveries d WHERE id = ?1`,
  )
    .bind(id)
    .first<Standing>();
}

/**
 * Why this copy of a message must not be sent, or undefined: the delivery already ended, or was re-driven since
 * this copy was queued (the queue delivers at least once, and a re-drive queues a new copy).
 */
function superseded(message: DeliveryMessage, row: Standing | null): string | undefined {
  if (row === null) return undefined; // queued before D1 recorded it (or pruned): nothing says otherwise
  if (row.redrivenAt !== null && (message.redrivenAt ?? -1) < row.redrivenAt) return "re-driven since";
  if (row.state !== "queued") return `already ${row.state}`;
  return undefined;
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
  if (row?.reason?.startsWith(SENDING)) {
    const earlier = row.reason.slice("sending: ".length);
    const reason = `outcome unknown: ${earlier} was sent and its outcome never recorded; not re-sent, so it cannot act twice`;
    return { kind: "dead", reason };
  }
  try {
    await env.DB.prepare("UPDATE deliveries SET reason = ?2, attempts = ?3, updated_at = ?4 WHERE id = ?1")
      .bind(message.id, `${SENDING}${attempts}`, attempts, now)
      .run();
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
  const resend = attempts > 1 || message.redrivenAt !== undefined;
  const age = now - (message.redrivenAt ?? message.receivedAt);
  if (age > message.maxAgeSeconds * 1000) {
    return {
      kind: "dead",
      reason: `stale: ${Math.round(age / 1000)} s old, over max_age_seconds ${message.maxAgeSeconds}`,
    };
  }
  if (resend) {
    const presence = await findAtVenue(env, ctx, message);
    if (presence.kind === "found") return { kind: "delivered", status: 200, response: presence.response };
    if (presence.kind === "decided") return presence.outcome;
    if (presence.kind === "unknown") {
      return { kind: "dead", reason: `outcome unknown: ${presence.reason}; not re-sent, so it cannot act twice` };
    }
  }
  const oneShot = await guardOneShot(env, message, row, attempts, now);
  if (oneShot) return oneShot;
  const unknownOutcome = (what: string): Outcome =>
    message.retrySafe
      ? { kind: "retry", reason: what }
      : { kind: "dead", reason: `${what}; the venue may have processed it, so it is not re-sent` };
  let outcome: VenueOutcome;
  try {
    const { method, path, body, account } = message;
    const request = { method, path, body, account, priority: "write" as const, by: `hook:${message.route}` };
    outcome = await sendJson(env, ctx, message.venue, request, MAX_STORED_RESPONSE);
  } catch (err) {
    // It may have failed after the request left: repeated only where that is safe.
    return unknownOutcome(`internal error (${errorName(err)})`);
  }
  switch (outcome.kind) {
    case "not_configured":
      return { kind: "dead", reason: `${message.venue} is not configured` };
    case "rate_limited":
      return { kind: "retry", reason: "outbound rate limit", delaySeconds: outcome.retryAfterSeconds };
    case "refused":
      // A guard, read_only or a halt: final. Sent later it would be a stale order, placed after someone said stop.
      return { kind: "dead", reason: refusedReason(outcome.error) };
    case "unreachable":
      // A connection that failed may have failed after the request left: not repeated unless that is safe.
      return unknownOutcome(failureReason(outcome.kind));
    case "redirect":
      return { kind: "dead", reason: failureReason(outcome.kind, outcome.detail) };
    case "timeout":
    case "broken":
    case "withheld":
    case "undecodable":
    case "too_large":
      return unknownOutcome(failureReason(outcome.kind, outcome.detail));
  }
  const { status, text } = outcome;
  const profile = config(env).profiles.get(message.venue);
  const rejected = profile && orderRejection(profile, message.method, message.path, status, text);
  if (rejected !== undefined) {
    return { kind: "dead", reason: `venue rejected the order: ${rejected}`, status, response: text };
  }
  if (status >= 200 && status < 300) return { kind: "delivered", status, response: text };
  if (isDuplicateOrder(status, text)) return { kind: "delivered", status, response: text };
  if (status === 429) return { kind: "retry", reason: "venue rate limit (429)", status };
  if (status >= 500) return { ...unknownOutcome(`venue error ${status}`), status };
  return {
    kind: "dead",
    reason: `venue refused: ${status} ${venueMessage(text) ?? ""}`.trim(),
    status,
    response: text,
  };
}

/**
 * Records one attempt's outcome (and, if dead, the dead letter and the history entry). Resolves to false when this
 * copy is no longer the delivery's current one, and then nothing is written.
 */
async function record(
  env: Env,
  message: DeliveryMessage,
  attempts: number,
  outcome: Outcome,
  now: number,
): Promise<boolean> {
  const state = outcome.kind === "delivered" ? "delivered" : outcome.kind === "dead" ? "dead" : "queued";
  const response = outcome.kind === "retry" ? null : (outcome.response ?? null);
  const reason = outcome.kind === "delivered" ? null : outcome.reason;
  const statements = [
    // A copy written over by a later re-drive (or ended by the sweep) records nothing: not over the newer copy's
    // state, and not as a second death. Only a delivery still queued takes an outcome, or a late `delivered`.
    env.DB.prepare(
      `INSERT INTO deliveries (id, route, venue, method, path, client_order_id, state, received_at, updated_at,
         attempts, status, response, reason, account)
       VALUES (?1, ?2, ?3, ?4, ?5, ?1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
       ON CONFLICT (id) DO UPDATE SET state = ?6, updated_at = ?8, attempts = ?9, status = ?10, response = ?11,
         reason = ?12
       WHERE (deliveries.state = 'queued' OR ?6 = 'delivered') AND NOT EXISTS (SELECT 1 FROM delivery_history h
         WHERE h.delivery_id = ?1 AND h.event = 'redriven' AND h.at > ?14)`,
    ).bind(
      message.id,
      message.route,
      message.venue,
      message.method,
      message.path,
      state,
      message.receivedAt,
      now,
      attempts,
      outcome.status ?? null,
      response,
      reason,
      message.account ?? "default",
      message.redrivenAt ?? -1,
    ),
  ];
  if (outcome.kind === "dead") {
    statements.push(
      env.DB.prepare(
        `INSERT INTO dead_letters (delivery_id, route, received_at, dead_at, attempts, reason, payload)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE changes() = 1
         ON CONFLICT (delivery_id) DO UPDATE SET dead_at = ?4, attempts = ?5, reason = ?6, payload = ?7`,
      ).bind(message.id, message.route, message.receivedAt, now, attempts, outcome.reason, JSON.stringify(message)),
    );
  }
  if (outcome.kind !== "retry") {
    statements.push(
      env.DB.prepare(
        `INSERT INTO delivery_history (delivery_id, at, event, attempts, reason) SELECT ?1, ?2, ?3, ?4, ?5
         WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1 AND updated_at = ?2 AND state = ?3)`,
      ).bind(message.id, now, outcome.kind, attempts, outcome.kind === "dead" ? outcome.reason : null),
    );
  }
  const [written] = await env.DB.batch(statements);
  return written?.meta.changes === 1;
}

/** Writes a copy that was not (or no longer) the delivery's current one into its history, as `superseded`. */
async function recordSuperseded(
  env: Env,
  message: DeliveryMessage,
  attempts: number,
  reason: string,
  now: number,
): Promise<void> {
  await env.DB.prepare(
    "INSERT INTO delivery_history (delivery_id, at, event, attempts, reason) VALUES (?1, ?2, 'superseded', ?3, ?4)",
  )
    .bind(message.id, now, attempts, reason)
    .run();
}

/**
 * The queue consumer: one attempt per message per batch; the decision is recorded before the message is acked.
 * The queue carries alerts too (adapters/alerts.ts).
 */
export async function consumeDeliveries(
  batch: MessageBatch<DeliveryMessage | AlertMessage>,
  env: Env,
  ctx: ExecutionContext,
): Promise<void> {
  await Promise.all(
    batch.messages.map(async (msg) => {
      if (isAlertMessage(msg.body)) return deliverAlert(env, msg as Message<AlertMessage>, retryDelaySeconds);
      const message = msg.body;
      const now = Date.now();
      let row: Standing | null;
      try {
        row = await standing(env, message.id);
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
      let outcome = await attempt(env, ctx, message, now, msg.attempts, row);
      if (outcome.kind === "retry" && msg.attempts >= MAX_DELIVERY_ATTEMPTS) {
        outcome = { ...outcome, kind: "dead", reason: `gave up after ${msg.attempts} attempts: ${outcome.reason}` };
      }
      let current: boolean;
      try {
        current = await record(env, message, msg.attempts, outcome, now);
      } catch (err) {
        // Not recorded: let the queue redeliver rather than ack a message whose fate nobody can read.
        log("error", { event: "delivery_record_failed", delivery_id: message.id, error: errorName(err) });
        msg.retry({ delaySeconds: 5 });
        return;
      }
      if (!current) {
        // Superseded while it was being sent (a re-drive or another copy ended it meanwhile): written down, and
        // told, since this copy may have acted too.
        const reason = `superseded while being sent; this copy's outcome: ${outcome.kind}${outcome.kind === "delivered" ? "" : ` (${outcome.reason})`}`;
        await recordSuperseded(env, message, msg.attempts, reason, now).catch(() => undefined);
        log("error", { event: "delivery_superseded", delivery_id: message.id, route: message.route, reason });
        const where = { venue: message.venue, account: message.account ?? "default" };
        ctx.waitUntil(raise(env, events.superseded(message.route, message.id, reason, where)));
        msg.ack();
        return;
      }
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
    }),
  );
}

/** One delivery as `GET /deliveries/<id>` shows it; times are ISO 8601. */
export interface DeliveryView {
  id: string;
  route: string;
  venue: string;
  account: string;
  method: string;
  path: string;
  client_order_id: string | null;
  state: "queued" | "delivered" | "dead";
  received_at: string;
  updated_at: string;
  attempts: number;
  status: number | null;
  response: string | null;
  reason: string | null;
  dead_at: string | null;
}

type DeliveryRow = Omit<DeliveryView, "received_at" | "updated_at" | "dead_at"> & {
  received_at: number;
  updated_at: number;
  dead_at: number | null;
};

/** One entry of a delivery's history: it died (and why), was re-driven (by whom), or was delivered. */
export interface HistoryEntry {
  at: string;
  event: "dead" | "redriven" | "delivered" | "superseded";
  attempts: number | null;
  reason: string | null;
  by: string | null;
}

/** One delivery's state for `GET /deliveries/<id>`, with its history, or null. */
export async function readDelivery(env: Env, id: string): Promise<(DeliveryView & { history: HistoryEntry[] }) | null> {
  const row = await env.DB.prepare(
    `SELECT d.id, d.route, d.venue, d.account, d.method, d.path, d.client_order_id, d.state, d.received_at, d.updated_at,
       d.attempts, d.status, d.response, coalesce(d.reason, l.reason) AS reason, l.dead_at
     FROM deliveries d LEFT JOIN dead_letters l ON l.delivery_id = d.id AND d.state = 'dead' WHERE d.id = ?1`,
  )
    .bind(id)
    .first<DeliveryRow>();
  if (!row) return null;
  const { results } = await env.DB.prepare(
    "SELECT at, event, attempts, reason, by FROM delivery_history WHERE delivery_id = ?1 ORDER BY at, rowid",
  )
    .bind(id)
    .all<Omit<HistoryEntry, "at"> & { at: number }>();
  return { ...view(row), history: results.map((h) => ({ ...h, at: iso(h.at) })) };
}

const iso = (ms: number) => new Date(ms).toISOString();

function view(row: DeliveryRow): DeliveryView {
  return {
    ...row,
    received_at: iso(row.received_at),
    updated_at: iso(row.updated_at),
    dead_at: row.dead_at === null ? null : iso(row.dead_at),
  };
}

/**
 * Recent deliveries, newest first, optionally in one state; without the venue's recorded answers. A dead one says
 * whether it is safe to send twice (`retry_safe`; false: a re-drive needs `force`).
 */
export async function listDeliveries(
  env: Env,
  state: DeliveryView["state"] | undefined,
  limit: number,
): Promise<(Omit<DeliveryView, "response"> & { retry_safe: boolean | null })[]> {
  const { results } = await env.DB.prepare(
    `SELECT d.id, d.route, d.venue, d.account, d.method, d.path, d.client_order_id, d.state, d.received_at,
       d.updated_at, d.attempts, d.status, NULL AS response, coalesce(d.reason, l.reason) AS reason, l.dead_at,
       json_extract(l.payload, '$.retrySafe') AS retry_safe
     FROM deliveries d LEFT JOIN dead_letters l ON l.delivery_id = d.id AND d.state = 'dead'
     ${state === undefined ? "" : "WHERE d.state = ?1"} ORDER BY d.updated_at DESC LIMIT ?2`,
  )
    .bind(state ?? null, limit)
    .all<DeliveryRow & { retry_safe: number | null }>();
  return results.map(({ retry_safe, ...row }) => {
    const { response: _, ...rest } = view(row);
    return { ...rest, retry_safe: retry_safe === null ? null : retry_safe === 1 };
  });
}

/** Why a re-drive was refused: no such delivery, not dead, or dead after an unknown outcome (`force` needed). */
export type RedriveRefusal = "not_found" | "not_dead" | "unsafe";

/**
 * A re-driven delivery still `queued` this long after its re-drive, with no attempt since, was never sent: at least
 * 15 minutes, and always past its max age, so that a first copy that was only late would now be refused as stale.
 */
export const STUCK_REDRIVE_MS = 15 * 60_000;

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
    const { results } = await env.DB.prepare(
      `SELECT d.id, d.updated_at, l.payload FROM deliveries d JOIN dead_letters l ON l.delivery_id = d.id
       WHERE d.state = 'queued' AND d.updated_at < ?1
         AND d.updated_at < ?2 - coalesce(json_extract(l.payload, '$.maxAgeSeconds'), 0) * 1000 - 60000
         AND EXISTS (SELECT 1 FROM delivery_history h
           WHERE h.delivery_id = d.id AND h.event = 'redriven' AND h.at = d.updated_at)
       ORDER BY d.updated_at LIMIT 50`,
    )
      .bind(now - STUCK_REDRIVE_MS, now)
      .all<{ id: string; updated_at: number; payload: string }>();
    for (const row of results) {
      const message = JSON.parse(row.payload) as DeliveryMessage;
      const minutes = Math.floor((now - row.updated_at) / 60_000);
      const reason = `re-drive did not reach the queue: no attempt recorded in ${minutes} min`;
      // Only if nothing moved it since it was read (an attempt, or a re-drive taking it over).
      const [claim] = await env.DB.batch([
        env.DB.prepare(
          `UPDATE deliveries SET state = 'dead', reason = ?2, updated_at = ?3
           WHERE id = ?1 AND state = 'queued' AND updated_at = ?4`,
        ).bind(row.id, reason, now, row.updated_at),
        env.DB.prepare(
          "UPDATE dead_letters SET dead_at = ?2, reason = ?3 WHERE delivery_id = ?1 AND changes() = 1",
        ).bind(row.id, now, reason),
        env.DB.prepare(
          `INSERT INTO delivery_history (delivery_id, at, event, reason) SELECT ?1, ?2, 'dead', ?3
           WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1 AND state = 'dead' AND updated_at = ?2)`,
        ).bind(row.id, now, reason),
      ]);
      if (claim?.meta.changes !== 1) continue;
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
 * and a state-setting POST stays safe), with a fresh max age. Only one of two concurrent re-drives wins: the state
 * moves from `dead` to `queued` in one statement. The dead letter stays until the delivery dies again (which
 * replaces it) or the retention prunes it, so the message is never lost: a re-drive whose send never happened (the
 * request died between the claim and the queue) can be re-driven again after STUCK_REDRIVE_MS. A message that is not
 * safe to send twice (`retrySafe` false: a POST with no client_order_id that may have reached the venue) needs
 * `force`.
 */
export async function redrive(
  env: Env,
  id: string,
  by: string,
  now: number,
  force = false,
): Promise<DeliveryMessage | RedriveRefusal> {
  const dead = await env.DB.prepare("SELECT payload FROM dead_letters WHERE delivery_id = ?1")
    .bind(id)
    .first<{ payload: string }>();
  if (!dead) {
    const exists = await env.DB.prepare("SELECT 1 FROM deliveries WHERE id = ?1").bind(id).first();
    return exists ? "not_dead" : "not_found";
  }
  const message: DeliveryMessage = { ...(JSON.parse(dead.payload) as DeliveryMessage), redrivenAt: now };
  if (!message.retrySafe && !force) return "unsafe";
  // The claim and its history row go in one transaction: the row is how a stuck re-drive is recognised later.
  const [claim] = await env.DB.batch<{ id: string }>([
    env.DB.prepare(
      `UPDATE deliveries SET state = 'queued', updated_at = ?2, reason = NULL
       WHERE id = ?1 AND (state = 'dead' OR (state = 'queued' AND updated_at < ?3 AND EXISTS
         (SELECT 1 FROM delivery_history h WHERE h.delivery_id = ?1 AND h.event = 'redriven' AND h.at = updated_at)))
       RETURNING id`,
    ).bind(id, now, now - Math.max(STUCK_REDRIVE_MS, message.maxAgeSeconds * 1000 + 60_000)),
    env.DB.prepare(
      `INSERT INTO delivery_history (delivery_id, at, event, by)
       SELECT ?1, ?2, 'redriven', ?3 WHERE changes() = 1`, // only if the claim above changed the row
    ).bind(id, now, by),
  ]);
  if (!claim?.results.length) return "not_dead";
  try {
    await env.DELIVERIES.send(message, { contentType: "json" });
  } catch (err) {
    log("error", { event: "redrive_failed", delivery_id: id, error: errorName(err) });
    const reason = "re-drive failed: the queue refused it";
    await env.DB.batch([
      env.DB.prepare("UPDATE deliveries SET state = 'dead', reason = ?2 WHERE id = ?1").bind(id, reason),
      env.DB.prepare("INSERT INTO delivery_history (delivery_id, at, event, reason) VALUES (?1, ?2, 'dead', ?3)").bind(
        id,
        Date.now(),
        reason,
      ),
    ]);
    throw new DeliveryQueueError();
  }
  log("warn", { event: "redrive", delivery_id: id, route: message.route, by });
  return message;
}
