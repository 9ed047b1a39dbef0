/**
 * The alert receiver, `/_sim/alerts` and `/_sim/alerts/<anything>`: a stand-in for the webhook endpoints skewguard's
 * alert sinks deliver to, in demos and tests. It records each POST (with the Standard Webhooks headers and the raw
 * body) and answers `200 {"ok": true}`, or plays a sink that is down (`503`) or slow (`200` after 5 s) while
 * `alerts_fault` is set. Not a venue: it ignores the skew, the latencies and the venue faults, and counts in no
 * `effects`. docs/simulator.md, "The alert receiver".
 */

/** What `alerts_fault` can be set to: `down` answers 503, `slow` answers 200 after `ALERTS_SLOW_MS`. */
export type AlertsFault = "down" | "slow";
export const ALERTS_FAULTS: readonly AlertsFault[] = ["down", "slow"];

/** The Standard Webhooks headers an entry copies, each only when the request had it. */
const WEBHOOK_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;
type WebhookHeader = (typeof WEBHOOK_HEADERS)[number];

/** One POST that reached the receiver, whatever it was answered. */
export interface AlertRecord {
  /** When it arrived, ISO 8601 with ms, UTC, by the real clock (the receiver is not the venue: no skew). */
  at: string;
  /** The request path with its query string, e.g. `/_sim/alerts/x`. */
  path: string;
  /** The Content-Type header as sent, or `null` without one. */
  content_type: string | null;
  /** `webhook-id`, `webhook-timestamp`, `webhook-signature`: each present only if the request had that header. */
  headers: Partial<Record<WebhookHeader, string>>;
  /** The body as text (UTF-8), cut to its first `ALERT_BODY_MAX` bytes (never inside a character). */
  body: string;
  /** The whole body's size in bytes: more than `ALERT_BODY_MAX` means `body` was cut. */
  body_bytes: number;
  /** The status the receiver answers it with: 200, or 503 while `alerts_fault` is `down`. */
  answered: number;
}

export const ALERTS_KEPT = 100;
export const ALERT_BODY_MAX = 16 * 1024;
export const ALERTS_SLOW_MS = 5_000;
export const ALERTS_PREFIX = "/_sim/alerts";

/** The receiver's log, oldest first, at most `ALERTS_KEPT`. */
export const alerts: AlertRecord[] = [];
let fault: AlertsFault | null = null;

export const alertsFault = (): AlertsFault | null => fault;

export function setAlertsFault(value: AlertsFault | null): void {
  fault = value;
}

/** `reset`: empties the log and clears the fault. */
export function resetAlerts(): void {
  alerts.length = 0;
  fault = null;
}

/** `/_sim/alerts` itself or anything under `/_sim/alerts/`, on any host. */
export const isAlertsPath = (pathname: string) =>
  pathname === ALERTS_PREFIX || pathname.startsWith(`${ALERTS_PREFIX}/`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Handles a request to an alerts path: a POST is recorded and answered per the fault; any other method is 405. */
export async function receiveAlert(request: Request, url: URL): Promise<Response> {
  if (request.method.toUpperCase() !== "POST") {
    return Response.json(
      { error: { code: "method_not_allowed", message: "the alert receiver takes POST only" } },
      { status: 405, headers: { allow: "POST" } },
    );
  }
  const bytes = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array(0);
  const headers: Partial<Record<WebhookHeader, string>> = {};
  for (const name of WEBHOOK_HEADERS) {
    const value = request.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  const current = fault;
  const answered = current === "down" ? 503 : 200;
  alerts.push({
    at: new Date().toISOString(),
    path: url.pathname + url.search,
    content_type: request.headers.get("content-type"),
    headers,
    // `stream: true` holds back a character cut in half at the limit instead of decoding it as U+FFFD.
    body: new TextDecoder().decode(bytes.subarray(0, ALERT_BODY_MAX), { stream: bytes.byteLength > ALERT_BODY_MAX }),
    body_bytes: bytes.byteLength,
    answered,
  });
  if (alerts.length > ALERTS_KEPT) alerts.splice(0, alerts.length - ALERTS_KEPT);
  if (current === "down") {
    return Response.json({ ok: false, message: "Service Unavailable (simulated: alerts_fault down)" }, { status: 503 });
  }
  if (current === "slow") await sleep(ALERTS_SLOW_MS);
  return Response.json({ ok: true });
}
