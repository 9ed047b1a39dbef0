/**
 * D1 for durable delivery: a delivery's row (`deliveries`), its dead letter (`dead_letters`, with the message to
 * re-drive) and its history (`delivery_history`); the views `GET /deliveries` and the console show. Storage only:
 * the rules are in core/deliveries.ts, and what happens when in adapters/deliveries.ts.
 */
import {
  type DeliveryMessage,
  type DeliveryState,
  type Outcome,
  type Standing,
  sendingReason,
  stateAfter,
} from "../core/deliveries.ts";
import type { HookRoute, MappedRequest } from "../core/hooks.ts";

/** Records a webhook as `queued` (once: a second insert of the same id does nothing). */
export async function insertQueued(env: Env, route: HookRoute, mapped: MappedRequest, id: string, now: number) {
  await env.DB.prepare(
    `INSERT INTO deliveries (id, route, venue, account, method, path, client_order_id, state, received_at,
       updated_at) VALUES (?1, ?2, ?3, ?8, ?4, ?5, ?6, 'queued', ?7, ?7) ON CONFLICT (id) DO NOTHING`,
  )
    .bind(id, route.name, mapped.venue, mapped.method, mapped.path, id, now, mapped.account)
    .run();
}

/** Removes a delivery the queue refused, while nothing has happened to it yet. */
export async function deleteQueued(env: Env, id: string): Promise<void> {
  await env.DB.prepare("DELETE FROM deliveries WHERE id = ?1 AND state = 'queued'").bind(id).run();
}

/** What D1 says of a delivery before an attempt (core/deliveries.ts `Standing`), or null if it has no row. */
export async function readStanding(env: Env, id: string): Promise<Standing | null> {
  return env.DB.prepare(
    `SELECT state, reason, (SELECT MAX(at) FROM delivery_history h WHERE h.delivery_id = d.id AND h.event = 'redriven')
       AS redrivenAt FROM deliveries d WHERE id = ?1`,
  )
    .bind(id)
    .first<Standing>();
}

/** Writes, before a one-shot attempt leaves, that it is on its way (`sendingReason`); the outcome overwrites it. */
export async function markSending(env: Env, id: string, attempts: number, now: number): Promise<void> {
  await env.DB.prepare("UPDATE deliveries SET reason = ?2, attempts = ?3, updated_at = ?4 WHERE id = ?1")
    .bind(id, sendingReason(attempts), attempts, now)
    .run();
}

/**
 * Records one attempt's outcome (and, if dead, the dead letter and the history entry). Resolves to false when this
 * copy is no longer the delivery's current one, and then nothing is written.
 */
export async function recordOutcome(
  env: Env,
  message: DeliveryMessage,
  attempts: number,
  outcome: Outcome,
  now: number,
): Promise<boolean> {
  const state = stateAfter(outcome);
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
export async function recordSuperseded(
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

/** One delivery as `GET /deliveries/<id>` shows it; times are ISO 8601. */
export interface DeliveryView {
  id: string;
  route: string;
  venue: string;
  account: string;
  method: string;
  path: string;
  client_order_id: string | null;
  state: DeliveryState;
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

/**
 * Re-drives that never reached the queue: still `queued`, with no attempt since the re-drive, re-driven more than
 * `stuckMs` ago and more than their max age plus a minute ago (core/deliveries.ts `stuckBefore`, in SQL); oldest
 * first, 50 at most.
 */
export async function findStuckRedrives(
  env: Env,
  now: number,
  stuckMs: number,
): Promise<{ id: string; updated_at: number; payload: string }[]> {
  const { results } = await env.DB.prepare(
    `SELECT d.id, d.updated_at, l.payload FROM deliveries d JOIN dead_letters l ON l.delivery_id = d.id
     WHERE d.state = 'queued' AND d.updated_at < ?1
       AND d.updated_at < ?2 - coalesce(json_extract(l.payload, '$.maxAgeSeconds'), 0) * 1000 - 60000
       AND EXISTS (SELECT 1 FROM delivery_history h
         WHERE h.delivery_id = d.id AND h.event = 'redriven' AND h.at = d.updated_at)
     ORDER BY d.updated_at LIMIT 50`,
  )
    .bind(now - stuckMs, now)
    .all<{ id: string; updated_at: number; payload: string }>();
  return results;
}

/**
 * Ends a stuck re-drive as dead (state, dead letter and history), only if nothing moved it since it was read at
 * `updatedAt` (an attempt, or a re-drive taking it over). Resolves to whether it did.
 */
export async function endStuckRedrive(
  env: Env,
  id: string,
  reason: string,
  now: number,
  updatedAt: number,
): Promise<boolean> {
  const [claim] = await env.DB.batch([
    env.DB.prepare(
      `UPDATE deliveries SET state = 'dead', reason = ?2, updated_at = ?3
       WHERE id = ?1 AND state = 'queued' AND updated_at = ?4`,
    ).bind(id, reason, now, updatedAt),
    env.DB.prepare("UPDATE dead_letters SET dead_at = ?2, reason = ?3 WHERE delivery_id = ?1 AND changes() = 1").bind(
      id,
      now,
      reason,
    ),
    env.DB.prepare(
      `INSERT INTO delivery_history (delivery_id, at, event, reason) SELECT ?1, ?2, 'dead', ?3
       WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = ?1 AND state = 'dead' AND updated_at = ?2)`,
    ).bind(id, now, reason),
  ]);
  return claim?.meta.changes === 1;
}

/** The message a dead delivery's dead letter keeps, or null. */
export async function readDeadLetter(env: Env, id: string): Promise<DeliveryMessage | null> {
  const dead = await env.DB.prepare("SELECT payload FROM dead_letters WHERE delivery_id = ?1")
    .bind(id)
    .first<{ payload: string }>();
  return dead ? (JSON.parse(dead.payload) as DeliveryMessage) : null;
}

export async function deliveryExists(env: Env, id: string): Promise<boolean> {
  return (await env.DB.prepare("SELECT 1 FROM deliveries WHERE id = ?1").bind(id).first()) !== null;
}

/**
 * Claims a delivery for a re-drive: `dead`, or `queued` by a re-drive made before `stuckBefore` with no attempt
 * since, moves to `queued` in one statement, and its `redriven` history row goes in the same transaction (it is how
 * a stuck re-drive is recognised later). Of two concurrent claims only one wins: resolves to whether this one did.
 */
export async function claimRedrive(env: Env, id: string, by: string, now: number, stuckBefore: number) {
  const [claim] = await env.DB.batch<{ id: string }>([
    env.DB.prepare(
      `UPDATE deliveries SET state = 'queued', updated_at = ?2, reason = NULL
       WHERE id = ?1 AND (state = 'dead' OR (state = 'queued' AND updated_at < ?3 AND EXISTS
         (SELECT 1 FROM delivery_history h WHERE h.delivery_id = ?1 AND h.event = 'redriven' AND h.at = updated_at)))
       RETURNING id`,
    ).bind(id, now, stuckBefore),
    env.DB.prepare(
      `INSERT INTO delivery_history (delivery_id, at, event, by)
       SELECT ?1, ?2, 'redriven', ?3 WHERE changes() = 1`, // only if the claim above changed the row
    ).bind(id, now, by),
  ]);
  return (claim?.results.length ?? 0) > 0;
}

/** A claimed re-drive the queue refused is dead again, with that reason in its state and history. */
export async function failRedrive(env: Env, id: string, reason: string, at: number): Promise<void> {
  await env.DB.batch([
    env.DB.prepare("UPDATE deliveries SET state = 'dead', reason = ?2 WHERE id = ?1").bind(id, reason),
    env.DB.prepare("INSERT INTO delivery_history (delivery_id, at, event, reason) VALUES (?1, ?2, 'dead', ?3)").bind(
      id,
      at,
      reason,
    ),
  ]);
}
