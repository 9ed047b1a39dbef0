/**
 * Raising alerts and sending them. `raise` records the event in D1 and enqueues one message per sink that wants it,
 * unless the quiet period for its (type, subject) holds it back (then it is counted, and the next one sent says how
 * many were held; `flushHeldAlerts`, on each cron trigger, sends the last one held when the period ends). The queue
 * consumer posts each to its sink, retrying with backoff; one that still fails is kept in D1 as failed, and logged.
 * Nothing here ever throws into, or waits inside, the request that raised the event: the callers hand `raise` to
 * `waitUntil` (`raiseLater`).
 */
import { binding } from "../config.ts";
import {
  type AlertEvent,
  type AlertSink,
  alertBody,
  events,
  type RaisedAlert,
  UNQUIETED,
  wants,
} from "../core/alerts.ts";
import { retryDelaySeconds } from "../core/deliveries.ts";
import { signWebhook, webhookKey } from "../core/standard-webhooks.ts";
import { config, runtime } from "../runtime.ts";
import { errorName, log } from "./log.ts";

/** What travels through the queue for one alert and one sink. */
export interface AlertMessage {
  kind: "alert";
  sink: string;
  alert: RaisedAlert;
}

export function isAlertMessage(body: unknown): body is AlertMessage {
  return typeof body === "object" && body !== null && Reflect.get(body, "kind") === "alert";
}

/** Attempts per sink before an alert is kept as failed. */
export const MAX_ALERT_ATTEMPTS = 5;

/**
 * Records `event` and enqueues it to every sink that wants it, unless its quiet period holds it back. Resolves to
 * the alert as raised, or undefined when it was held back; never rejects (a failure is logged).
 */
export async function raise(env: Env, event: AlertEvent, now: number = Date.now()): Promise<RaisedAlert | undefined> {
  try {
    const { quietSeconds } = config(env).alerts;
    const id = crypto.randomUUID();
    const at = new Date(now).toISOString();
    // One statement decides, across isolates: within the quiet period the event is only counted, and kept as the
    // last one held (`held`, which flushHeldAlerts sends when the period ends); after it, the event takes the row
    // with its own id and goes out carrying the count held back. SQLite evaluates every SET expression on the old
    // row. Changes of state (UNQUIETED) always go out.
    const quiet = UNQUIETED.has(event.type)
      ? { sent_id: id, carried: 0 }
      : await env.DB.prepare(
          `INSERT INTO alert_quiet (type, subject, sent_at, suppressed, carried, sent_id) VALUES (?1, ?2, ?3, 0, 0, ?5)
       ON CONFLICT (type, subject) DO UPDATE SET
         suppressed = CASE WHEN sent_at > ?3 - ?4 THEN suppressed + 1 ELSE 0 END,
         carried = CASE WHEN sent_at > ?3 - ?4 THEN carried ELSE suppressed END,
         sent_id = CASE WHEN sent_at > ?3 - ?4 THEN sent_id ELSE ?5 END,
         held = CASE WHEN sent_at > ?3 - ?4 THEN ?6 ELSE NULL END,
         sent_at = CASE WHEN sent_at > ?3 - ?4 THEN sent_at ELSE ?3 END
       RETURNING sent_id, carried`,
        )
          .bind(event.type, event.subject, now, quietSeconds * 1000, id, JSON.stringify({ ...event, at }))
          .first<{ sent_id: string; carried: number }>();
    if (!quiet || quiet.sent_id !== id) return undefined;
    return await send(env, { id, at, suppressed: quiet.carried, ...event }, now);
  } catch (err) {
    log("error", { event: "alert_failed", type: event.type, subject: event.subject, error: errorName(err) });
    return undefined;
  }
}

/**
 * Sends what the quiet periods still hold: for each (type, subject) whose period has ended with events held back,
 * the last one held goes out, its `suppressed` counting the others held before it, and a new period starts. Run by
 * every cron trigger, so a burst's count arrives within a minute of its period's end even if nothing like it follows.
 * Resolves to the alerts sent; never rejects (a failure is logged).
 */
export async function flushHeldAlerts(env: Env, now: number = Date.now()): Promise<RaisedAlert[]> {
  const sent: RaisedAlert[] = [];
  try {
    const quietMs = config(env).alerts.quietSeconds * 1000;
    const { results } = await env.DB.prepare(
      `SELECT type, subject, sent_id, held FROM alert_quiet
       WHERE suppressed > 0 AND sent_at <= ?1 - ?2 AND held IS NOT NULL`,
    )
      .bind(now, quietMs)
      .all<{ type: string; subject: string; sent_id: string; held: string }>();
    for (const row of results) {
      const id = crypto.randomUUID();
      try {
        const { at, ...event } = JSON.parse(row.held) as AlertEvent & { at: string };
        // Claimed like a raise: an event raised since (its period is over, so it takes the row), a late raise held
        // just before the end (it changes `held`), or another trigger's flush (it changes `sent_id`) each make this
        // claim nothing, and what it read is then not sent; the next trigger looks again.
        const claimed = await env.DB.prepare(
          `UPDATE alert_quiet SET sent_at = ?4, carried = suppressed - 1, suppressed = 0, sent_id = ?5, held = NULL
           WHERE type = ?1 AND subject = ?2 AND sent_id = ?3 AND held = ?6 AND suppressed > 0
           RETURNING carried`,
        )
          .bind(row.type, row.subject, row.sent_id, now, id, row.held)
          .first<{ carried: number }>();
        if (!claimed) continue;
        try {
          sent.push(await send(env, { ...event, id, at, suppressed: claimed.carried }, now));
        } catch (err) {
          // Not recorded, so not sent: the row gets the event and its count back (record gave the period back), and
          // the next trigger or raise sends them.
          await env.DB.prepare(
            `UPDATE alert_quiet SET suppressed = suppressed + ?4, held = COALESCE(held, ?5)
             WHERE type = ?1 AND subject = ?2 AND sent_id = ?3`,
          )
            .bind(row.type, row.subject, id, claimed.carried + 1, row.held)
            .run()
            .catch(() => undefined);
          throw err;
        }
      } catch (err) {
        log("error", { event: "alert_failed", type: row.type, subject: row.subject, error: errorName(err) });
      }
    }
  } catch (err) {
    log("error", { event: "alert_flush_failed", error: errorName(err) });
  }
  return sent;
}

/** Records `alert`, logs it, and enqueues it to every sink that wants it. Throws when it cannot be recorded. */
async function send(env: Env, alert: RaisedAlert, now: number): Promise<RaisedAlert> {
  const targets = config(env).alerts.sinks.filter((sink) => wants(sink, alert));
  await record(env, alert, targets, now);
  log(alert.severity === "critical" ? "error" : "warn", {
    event: "alert",
    type: alert.type,
    subject: alert.subject,
    id: alert.id,
  });
  if (targets.length > 0) {
    try {
      await env.ALERTS_QUEUE.sendBatch(
        targets.map((sink) => ({
          body: { kind: "alert", sink: sink.name, alert } satisfies AlertMessage,
          contentType: "json" as const,
        })),
      );
    } catch (err) {
      log("error", { event: "alert_enqueue_failed", id: alert.id, error: errorName(err) });
      // Recorded already: a failure here must not throw (a flush would give the event back and send it twice).
      await env.DB.prepare("UPDATE alert_sends SET state = 'failed', error = ?2 WHERE alert_id = ?1")
        .bind(alert.id, "the queue refused it")
        .run()
        .catch((e: unknown) => log("error", { event: "alert_record_failed", id: alert.id, error: errorName(e) }));
    }
  }
  return alert;
}

/**
 * Records a raised alert (raised at `alert.at`) and its sends. If that fails, the quiet period it claimed is given
 * back, so the next event of its kind is not held back for an alert nobody got; the caller logs the failure.
 */
async function record(env: Env, alert: RaisedAlert, targets: readonly { name: string }[], now: number) {
  try {
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO alerts (id, type, severity, subject, venue, account, text, ids, suppressed, raised_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)`,
      ).bind(
        alert.id,
        alert.type,
        alert.severity,
        alert.subject,
        alert.venue ?? null,
        alert.account ?? null,
        alert.text,
        JSON.stringify(alert.ids),
        alert.suppressed,
        Date.parse(alert.at),
      ),
      ...targets.map((sink) =>
        env.DB.prepare(
          "INSERT INTO alert_sends (alert_id, sink, state, attempts, updated_at) VALUES (?1, ?2, 'queued', 0, ?3)",
        ).bind(alert.id, sink.name, now),
      ),
    ]);
  } catch (err) {
    await env.DB.prepare("UPDATE alert_quiet SET sent_at = 0 WHERE type = ?1 AND subject = ?2 AND sent_id = ?3")
      .bind(alert.type, alert.subject, alert.id)
      .run()
      .catch(() => undefined);
    throw err;
  }
}

/** Raises `event` after the response: it never delays or fails the request that caused it. */
export function raiseLater(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }, event: AlertEvent): void {
  ctx.waitUntil(raise(env, event));
}

/** Raises `config.problem` for each configuration problem this isolate has not raised yet (once each). */
export function raiseConfigProblems(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }): void {
  const { config: setup, raisedProblems } = runtime(env);
  for (const { binding: name, subject, message } of setup.problems) {
    const key = `${name}\n${subject ?? ""}\n${message}`;
    if (raisedProblems.has(key)) continue;
    raisedProblems.add(key);
    raiseLater(env, ctx, events.configProblem(name, subject, message));
  }
}

/** The outcome of one attempt to post an alert to its sink. */
export type AlertOutcome = { status?: number } & (
  | { kind: "sent" }
  | { kind: "retry"; error: string }
  | { kind: "failed"; error: string }
);

/** The headers a sink's format adds to the post, or why it cannot be posted. */
async function formatHeaders(
  env: Env,
  sink: AlertSink,
  alert: RaisedAlert,
  body: string,
): Promise<{ headers: Record<string, string> } | { error: string }> {
  switch (sink.format) {
    case "slack":
    case "discord":
      return { headers: {} };
    case "standard-webhooks": {
      const secret = binding(env, sink.secretBinding);
      if (secret === undefined) return { error: `${sink.secretBinding} is not set` };
      try {
        const name = sink.secretBinding;
        const key = await runtime(env).key(`whsec ${name}`, () => webhookKey(secret, name));
        return { headers: await signWebhook(key, alert.id, Math.floor(Date.now() / 1000), body) };
      } catch {
        return { error: `${sink.secretBinding} is not a whsec_ secret` };
      }
    }
  }
}

/** Posts one alert to its sink, as the sink's format says. */
async function post(env: Env, message: AlertMessage): Promise<AlertOutcome> {
  const sink = config(env).alerts.sinks.find((s) => s.name === message.sink);
  if (!sink) return { kind: "failed", error: "the sink is no longer configured" };
  const body = alertBody(sink.format, message.alert);
  const formatted = await formatHeaders(env, sink, message.alert, body);
  if ("error" in formatted) return { kind: "failed", error: formatted.error };
  const headers = { "content-type": "application/json", ...formatted.headers };
  try {
    const response = await fetch(sink.url, {
      method: "POST",
      body,
      headers,
      redirect: "manual", // a redirect would take the alert past the https-only rule for the sink's url
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    const { status } = response;
    if (response.ok) return { kind: "sent", status };
    if (status >= 300 && status < 400) return { kind: "failed", status, error: "the sink answered a redirect" };
    return { kind: "retry", status, error: `the sink answered ${status}` };
  } catch (err) {
    return { kind: "retry", error: `the sink is unreachable (${errorName(err)})` };
  }
}

/** The queue consumer's part for alerts: one attempt, recorded; retried with backoff up to MAX_ALERT_ATTEMPTS. */
async function deliverAlert(env: Env, msg: Message<AlertMessage>, retryDelay: (attempt: number) => number) {
  const { alert, sink } = msg.body;
  let outcome = await post(env, msg.body);
  if (outcome.kind === "retry" && msg.attempts >= MAX_ALERT_ATTEMPTS) {
    outcome = { kind: "failed", error: `gave up after ${msg.attempts} attempts: ${outcome.error}` };
  }
  try {
    await env.DB.prepare(
      "UPDATE alert_sends SET state = ?3, attempts = ?4, updated_at = ?5, error = ?6 WHERE alert_id = ?1 AND sink = ?2",
    )
      .bind(
        alert.id,
        sink,
        outcome.kind === "retry" ? "queued" : outcome.kind,
        msg.attempts,
        Date.now(),
        "error" in outcome ? outcome.error : null,
      )
      .run();
  } catch (err) {
    log("error", { event: "alert_record_failed", id: alert.id, error: errorName(err) });
  }
  if (outcome.kind === "failed") {
    log("error", { event: "alert_undelivered", id: alert.id, type: alert.type, sink, error: outcome.error });
  }
  if (outcome.kind === "retry") msg.retry({ delaySeconds: retryDelay(msg.attempts) });
  else msg.ack();
}

/** The queue consumer for the alerts queues: one attempt per message, with the deliveries' backoff. */
export async function consumeAlerts(messages: readonly Message<AlertMessage>[], env: Env): Promise<void> {
  await Promise.all(messages.map((msg) => deliverAlert(env, msg, retryDelaySeconds)));
}

/** Recent alerts, newest first, with each sink's state: for the console. */
export async function recentAlerts(db: D1Database, limit: number) {
  const { results } = await db
    .prepare(
      `SELECT a.id, a.type, a.severity, a.subject, a.venue, a.account, a.text, a.ids, a.suppressed, a.raised_at,
         (SELECT json_group_array(json_object('sink', s.sink, 'state', s.state, 'attempts', s.attempts, 'error', s.error))
          FROM alert_sends s WHERE s.alert_id = a.id) AS sends
       FROM alerts a ORDER BY a.raised_at DESC LIMIT ?1`,
    )
    .bind(limit)
    .all<{
      id: string;
      type: string;
      severity: string;
      subject: string;
      venue: string | null;
      account: string | null;
      text: string;
      ids: string;
      suppressed: number;
      raised_at: number;
      sends: string;
    }>();
  return results.map((row) => ({
    ...row,
    ids: JSON.parse(row.ids) as Record<string, string>,
    sends: JSON.parse(row.sends) as unknown[],
    raised_at: new Date(row.raised_at).toISOString(),
  }));
}

/** What one sink made of the test alert: its HTTP status when it answered, and what went wrong, if anything. */
export interface TestAlertResult {
  sink: string;
  format: string;
  ok: boolean;
  status: number | null;
  error: string | null;
}

/**
 * `POST /alerts/test`: one `alert.test` event posted now to each of `sinks` (once, no retry, no quiet period, not
 * recorded), and each sink's answer. `by` names who asked (`token:<name>`).
 */
export async function sendTestAlert(
  env: Env,
  sinks: readonly AlertSink[],
  by: string,
): Promise<{ id: string; results: TestAlertResult[] }> {
  const alert: RaisedAlert = {
    ...events.test(by),
    id: crypto.randomUUID(),
    at: new Date().toISOString(),
    suppressed: 0,
  };
  const results = await Promise.all(
    sinks.map(async (sink): Promise<TestAlertResult> => {
      const outcome = await post(env, { kind: "alert", sink: sink.name, alert });
      const error = outcome.kind === "sent" ? null : outcome.error;
      return {
        sink: sink.name,
        format: sink.format,
        ok: outcome.kind === "sent",
        status: outcome.status ?? null,
        error,
      };
    }),
  );
  log("info", { event: "alert_test", by, sinks: results.map((r) => `${r.sink}:${r.ok ? "sent" : "failed"}`) });
  return { id: alert.id, results };
}
