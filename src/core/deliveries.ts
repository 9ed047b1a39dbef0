/**
 * The rules of durable delivery (docs/webhooks.md, "Exactly once"), pure: what a queued message carries, whether it
 * may be sent twice, what a venue's answer means for it (delivered, retry later, or dead with a reason), when a copy
 * is superseded, when a re-drive is refused, and when a re-drive is stuck. No I/O; time is passed in. D1 is in
 * adapters/delivery-store.ts, and the consumer, enqueue, re-drive and sweep in adapters/deliveries.ts.
 */
import { isDuplicateOrder, venueMessage } from "../lib/rejection.ts";
import { type OrderLookup, orderRejection, safeToRepeat, type VenueProfile } from "../venues/profile.ts";
import type { MappedRequest } from "./hooks.ts";

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

export type DeliveryState = "queued" | "delivered" | "dead";

/** Attempts before a delivery is dead-lettered; kept below the consumer's `max_retries` so we always decide. */
export const MAX_DELIVERY_ATTEMPTS = 8;
/** How much of the venue's answer a delivery keeps. */
export const MAX_STORED_RESPONSE = 4_096;

/** The body's `client_order_id`, read from the JSON itself (never from its text), or undefined. */
export function bodyClientOrderId(body: string | undefined): string | undefined {
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
 * any re-send (`findAtVenue` in adapters/deliveries.ts).
 */
export function retrySafe(profile: VenueProfile, mapped: MappedRequest): boolean {
  return safeToRepeat(profile, mapped.method, mapped.path) || bodyClientOrderId(mapped.body) !== undefined;
}

/** Whether an attempt must first ask the venue for the order: a re-send of one that carries a `client_order_id`. */
export function needsLookup(profile: VenueProfile, message: DeliveryMessage): boolean {
  return !safeToRepeat(profile, message.method, message.path) && bodyClientOrderId(message.body) !== undefined;
}

/** Backoff before the next attempt: doubling from 2 s, capped at 60 s, with full jitter above 1 s. */
export function retryDelaySeconds(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(60, 2 ** attempt);
  return Math.max(1, Math.ceil(random() * ceiling));
}

/** What one attempt came to for the delivery. */
export type Outcome =
  | { kind: "delivered"; status: number; response: string }
  | { kind: "retry"; reason: string; status?: number; delaySeconds?: number }
  | { kind: "dead"; reason: string; status?: number; response?: string };

/**
 * A venue call as the delivery rules read it: answered (any status), not sent by skewguard's own rate gate or
 * rules, not configured, or failed with no usable answer. `failure` names the failure (adapters/client.ts
 * `UpstreamFailure`, or `internal` for an error of skewguard's own); `reason` says it for records.
 */
export type VenueResult =
  | { kind: "answered"; status: number; text: string }
  | { kind: "rate_limited"; retryAfterSeconds: number }
  | { kind: "refused"; rule: string; message: string }
  | { kind: "not_configured" }
  | { kind: "failed"; failure: string; reason: string };

/** The reason kept when skewguard's own rules refused a call (read_only, a guard, a halt). */
export const refusedReason = (error: { rule: string; message: string }) => `refused (${error.rule}): ${error.message}`;

/** The state a delivery's row takes after an attempt's outcome: a retry stays `queued`. */
export function stateAfter(outcome: Outcome): DeliveryState {
  return outcome.kind === "retry" ? "queued" : outcome.kind;
}

/** After an outcome the venue may have acted on: retried where a second copy is safe, dead otherwise. */
export function unknownOutcome(message: DeliveryMessage, what: string): Outcome {
  return message.retrySafe
    ? { kind: "retry", reason: what }
    : { kind: "dead", reason: `${what}; the venue may have processed it, so it is not re-sent` };
}

/** What the venue's answer to a sent delivery means for it (`profile`: its venue's, when this Worker serves it). */
export function outcomeOf(message: DeliveryMessage, result: VenueResult, profile?: VenueProfile): Outcome {
  switch (result.kind) {
    case "not_configured":
      return { kind: "dead", reason: `${message.venue} is not configured` };
    case "rate_limited":
      return { kind: "retry", reason: "outbound rate limit", delaySeconds: result.retryAfterSeconds };
    case "refused":
      // A guard, read_only or a halt: final. Sent later it would be a stale order, placed after someone said stop.
      return { kind: "dead", reason: refusedReason(result) };
    case "failed":
      // A redirect answered instead of the venue; any other failure may have come after the request left.
      return result.failure === "redirect"
        ? { kind: "dead", reason: result.reason }
        : unknownOutcome(message, result.reason);
    case "answered":
      return answeredOutcome(message, result.status, result.text, profile);
  }
}

function answeredOutcome(
  message: DeliveryMessage,
  status: number,
  text: string,
  profile: VenueProfile | undefined,
): Outcome {
  const rejected = profile && orderRejection(profile, message.method, message.path, status, text);
  if (rejected !== undefined) {
    return { kind: "dead", reason: `venue rejected the order: ${rejected}`, status, response: text };
  }
  if (status >= 200 && status < 300) return { kind: "delivered", status, response: text };
  if (isDuplicateOrder(status, text)) return { kind: "delivered", status, response: text };
  if (status === 429) return { kind: "retry", reason: "venue rate limit (429)", status };
  if (status >= 500) return { ...unknownOutcome(message, `venue error ${status}`), status };
  return {
    kind: "dead",
    reason: `venue refused: ${status} ${venueMessage(text) ?? ""}`.trim(),
    status,
    response: text,
  };
}

/**
 * Whether the venue already has the order an earlier attempt may have sent: `absent` (send it), `found` (it reached
 * the venue: delivered), `unknown` (the venue cannot tell: never re-sent, so dead-lettered), or `decided`
 * (skewguard's own gate or rules refused the read, so the outcome is theirs: a retry later for its rate limit, dead
 * for a halt).
 */
export type Presence =
  | { kind: "absent" }
  | { kind: "found"; response: string }
  | { kind: "unknown"; reason: string }
  | { kind: "decided"; outcome: Outcome };

/**
 * What one read of an order lookup says: `found`, `absent` from this read (ask the next read, if any), or an answer
 * that settles it without the venue (`decided`) or cannot (`unknown`).
 */
export function lookupPresence(lookup: OrderLookup, result: VenueResult & { truncated?: boolean }): Presence {
  if (result.kind === "rate_limited") {
    return { kind: "decided", outcome: { kind: "retry", reason: "outbound rate limit", delaySeconds: 1 } };
  }
  if (result.kind === "refused") return { kind: "decided", outcome: { kind: "dead", reason: refusedReason(result) } };
  if (result.kind !== "answered" || result.status < 200 || result.status > 299 || result.truncated === true) {
    const what =
      result.kind === "answered"
        ? `answered ${result.status}`
        : result.kind === "not_configured"
          ? "not configured"
          : result.reason;
    return { kind: "unknown", reason: `looking up client_order_id ${lookup.clientOrderId}: ${what}` };
  }
  if (lookup.found(result.text)) return { kind: "found", response: result.text.slice(0, MAX_STORED_RESPONSE) };
  return { kind: "absent" };
}

/** What a lookup's presence means before a re-send: an outcome, or undefined to send. */
export function presenceOutcome(presence: Presence): Outcome | undefined {
  if (presence.kind === "found") return { kind: "delivered", status: 200, response: presence.response };
  if (presence.kind === "decided") return presence.outcome;
  if (presence.kind === "unknown") {
    return { kind: "dead", reason: `outcome unknown: ${presence.reason}; not re-sent, so it cannot act twice` };
  }
  return undefined;
}

/** Why a delivery is too old to send at `now` (its max age counts from its re-drive, if any), or undefined. */
export function staleReason(message: DeliveryMessage, now: number): string | undefined {
  const age = now - (message.redrivenAt ?? message.receivedAt);
  if (age <= message.maxAgeSeconds * 1000) return undefined;
  return `stale: ${Math.round(age / 1000)} s old, over max_age_seconds ${message.maxAgeSeconds}`;
}

/** Whether an earlier attempt may have reached the venue: after the first attempt, or when re-driven. */
export const isResend = (message: DeliveryMessage, attempts: number) =>
  attempts > 1 || message.redrivenAt !== undefined;

/** A retry past MAX_DELIVERY_ATTEMPTS is dead: the consumer always decides before the queue gives up. */
export function giveUp(outcome: Outcome, attempts: number): Outcome {
  if (outcome.kind !== "retry" || attempts < MAX_DELIVERY_ATTEMPTS) return outcome;
  return { ...outcome, kind: "dead", reason: `gave up after ${attempts} attempts: ${outcome.reason}` };
}

/** What D1 says of a delivery before an attempt: its state and reason, and when it was last re-driven. */
export interface Standing {
  state: DeliveryState;
  reason: string | null;
  redrivenAt: number | null;
}

/**
 * Why this copy of a message must not be sent, or undefined: the delivery already ended, or was re-driven since
 * this copy was queued (the queue delivers at least once, and a re-drive queues a new copy).
 */
export function superseded(message: DeliveryMessage, row: Standing | null): string | undefined {
  if (row === null) return undefined; // queued before D1 recorded it (or pruned): nothing says otherwise
  if (row.redrivenAt !== null && (message.redrivenAt ?? -1) < row.redrivenAt) return "re-driven since";
  if (row.state !== "queued") return `already ${row.state}`;
  return undefined;
}

/** The reason a copy superseded while it was being sent records: it may have acted too. */
export function supersededWhileSending(outcome: Outcome): string {
  const what = outcome.kind === "delivered" ? "" : ` (${outcome.reason})`;
  return `superseded while being sent; this copy's outcome: ${outcome.kind}${what}`;
}

/** The reason a delivery's row holds while an attempt that cannot be repeated is on its way to the venue. */
const SENDING = "sending: attempt ";

export const sendingReason = (attempts: number) => `${SENDING}${attempts}`;

/**
 * A request that must not be sent twice (`retrySafe` false) is dead, not sent, when its row still says an earlier
 * attempt was on its way (`sendingReason`): that attempt may have reached the venue with its outcome never recorded.
 */
export function oneShotRefusal(message: DeliveryMessage, row: Standing | null): Outcome | undefined {
  if (message.retrySafe || !row?.reason?.startsWith(SENDING)) return undefined;
  const earlier = row.reason.slice("sending: ".length);
  const reason = `outcome unknown: ${earlier} was sent and its outcome never recorded; not re-sent, so it cannot act twice`;
  return { kind: "dead", reason };
}

/** Why a re-drive was refused: no such delivery, not dead, or dead after an unknown outcome (`force` needed). */
export type RedriveRefusal = "not_found" | "not_dead" | "unsafe";

/**
 * What a re-drive sends: the dead letter's message with a fresh max age (counted from `now`), or why it is refused.
 * With no dead letter the delivery is unknown or not dead; a dead one that is not safe to send twice needs `force`.
 */
export function redriveMessage(
  dead: DeliveryMessage | null,
  exists: boolean,
  force: boolean,
  now: number,
): DeliveryMessage | RedriveRefusal {
  if (dead === null) return exists ? "not_dead" : "not_found";
  if (!dead.retrySafe && !force) return "unsafe";
  return { ...dead, redrivenAt: now };
}

/**
 * A re-driven delivery still `queued` this long after its re-drive, with no attempt since, was never sent: at least
 * 15 minutes, and always past its max age, so that a first copy that was only late would now be refused as stale.
 */
export const STUCK_REDRIVE_MS = 15 * 60_000;

/** A re-drive last made before this time, with no attempt since, is stuck: it may be re-driven again. */
export function stuckBefore(now: number, maxAgeSeconds: number): number {
  return now - Math.max(STUCK_REDRIVE_MS, maxAgeSeconds * 1000 + 60_000);
}

/** The reason a stuck re-drive dies with, `since` being when it was re-driven. */
export function stuckReason(now: number, since: number): { minutes: number; reason: string } {
  const minutes = Math.floor((now - since) / 60_000);
  return { minutes, reason: `re-drive did not reach the queue: no attempt recorded in ${minutes} min` };
}
