/**
 * Alerts: the events skewguard tells people about, their text, and the sinks (`ALERTS`) that receive them. Pure:
 * the events are built here and sent by adapters/alerts.ts, through their queue, at most one per (type, subject) per
 * quiet period (but see UNQUIETED).
 */
import { BINDING, NAME, parseNamedList } from "./parse.ts";
import { LOOPBACK } from "./venue-config.ts";

export type Severity = "info" | "warning" | "critical";
const RANK: Record<Severity, number> = { info: 0, warning: 1, critical: 2 };

/** Every event type, with its severity. The names are stable: sinks and tools filter on them. */
export const EVENT_SEVERITY = {
  "delivery.dead_lettered": "critical",
  "delivery.superseded": "critical",
  "job.failing": "warning",
  "job.recovered": "info",
  "forward.abandoned": "warning",
  "venue.auth_failed": "critical",
  "clock.stepped": "warning",
  "clock.rejected_twice": "critical",
  "order.refused": "warning",
  "account.halted": "warning",
  "account.resumed": "info",
  "config.problem": "warning",
  "audit.write_failed": "critical",
} as const satisfies Record<string, Severity>;
export type EventType = keyof typeof EVENT_SEVERITY;

/**
 * Changes of state go out every time, never held back by the quiet period: a sink must not be left believing
 * "resumed" while the account is halted again, or "recovered" while the job fails again. Each fires once per change.
 * A dead letter too: its subject is the one delivery, which dies again only after a re-drive (a late copy records
 * nothing), and whoever re-drove it must hear at once that it failed again.
 */
export const UNQUIETED: ReadonlySet<EventType> = new Set([
  "delivery.dead_lettered",
  "delivery.superseded",
  "account.halted",
  "account.resumed",
  "job.failing",
  "job.recovered",
]);
export const EVENT_TYPES = Object.keys(EVENT_SEVERITY) as EventType[];

/** One thing that happened. `subject` is what the quiet period counts by (a route, a job, an account, a venue). */
export interface AlertEvent {
  type: EventType;
  severity: Severity;
  subject: string;
  venue?: string;
  account?: string;
  /** One sentence for a human, safe to show: never a secret, a signature or a prehash. */
  text: string;
  /** The ids needed to act (route and delivery id, job, scheduled time...). */
  ids: Record<string, string>;
}

function event(type: EventType, subject: string, text: string, ids: Record<string, string>, where: Where = {}) {
  return { type, severity: EVENT_SEVERITY[type], subject, ...where, text: text.slice(0, 1000), ids } as AlertEvent;
}
type Where = { venue?: string; account?: string };

/** The events, by what causes them. */
export const events = {
  deadLettered: (route: string, deliveryId: string, reason: string, where: Where) =>
    event(
      "delivery.dead_lettered",
      // Per delivery: each dead letter is a message someone must act on, never folded into another's alert.
      `delivery:${deliveryId}`,
      `Delivery ${deliveryId} on route ${route} (${where.venue}/${where.account}) was dead-lettered: ${reason}. Re-drive it with POST /deliveries/${deliveryId}/retry.`,
      { route, delivery_id: deliveryId },
      where,
    ),
  superseded: (route: string, deliveryId: string, reason: string, where: Where) =>
    event(
      "delivery.superseded",
      `delivery:${deliveryId}`,
      `A copy of delivery ${deliveryId} on route ${route} (${where.venue}/${where.account}) was sent while another copy or a re-drive ended it: ${reason}. Check the venue for a second effect.`,
      { route, delivery_id: deliveryId },
      where,
    ),
  jobFailing: (job: string, failures: number, error: string, where: Where) =>
    event(
      "job.failing",
      `job:${job}`,
      `Job ${job} has failed ${failures} runs in a row; the last: ${error}.`,
      { job },
      where,
    ),
  jobRecovered: (job: string, where: Where) =>
    event("job.recovered", `job:${job}`, `Job ${job} succeeded again after failing.`, { job }, where),
  forwardAbandoned: (job: string, scheduledAt: string, error: string, where: Where) =>
    event(
      "forward.abandoned",
      `job:${job}`,
      `Job ${job}: the forward of the run scheduled at ${scheduledAt} was abandoned: ${error}.`,
      { job, scheduled_at: scheduledAt },
      where,
    ),
  authFailed: (venue: string, account: string, status: number, message: string | undefined) =>
    event(
      "venue.auth_failed",
      `${venue}/${account}`,
      `${venue} refused account ${account}'s credentials (${status}${message ? `: ${message.slice(0, 200)}` : ""}). Check its API key, secret and passphrase: the key may be revoked.`,
      {},
      { venue, account },
    ),
  clockStepped: (venue: string, stepMs: number) =>
    event(
      "clock.stepped",
      venue,
      `${venue}'s clock moved by ${stepMs > 0 ? "+" : ""}${Math.round(stepMs)} ms against skewguard's estimate.`,
      {},
      { venue },
    ),
  rejectedTwice: (venue: string, account: string, offsetMs: number, uncertaintyMs: number | null) =>
    event(
      "clock.rejected_twice",
      `${venue}/${account}`,
      `${venue} refused account ${account}'s timestamp again after the re-signed retry (offset ${offsetMs} ms, uncertainty ${uncertaintyMs ?? "unknown"} ms). Check the venue's window (${venue.toUpperCase()}_WINDOW_SECONDS) and GET /clock.`,
      {},
      { venue, account },
    ),
  orderRefused: (venue: string, account: string, rule: string, by: string | undefined, message: string) =>
    event(
      "order.refused",
      `${venue}/${account}`,
      `An order from ${by ?? "an unnamed caller"} was refused by ${rule}: ${message}`,
      { rule, ...(by ? { by } : {}) },
      { venue, account },
    ),
  halted: (venue: string, account: string, by: string, reason: string) =>
    event(
      "account.halted",
      `${venue}/${account}`,
      `${venue}/${account} was halted by ${by}: ${reason}`,
      { by },
      {
        venue,
        account,
      },
    ),
  resumed: (venue: string, account: string, by: string) =>
    event(
      "account.resumed",
      `${venue}/${account}`,
      `${venue}/${account} was resumed by ${by}.`,
      { by },
      {
        venue,
        account,
      },
    ),
  auditWriteFailed: (venue: string, account: string, id: string, kind: string, source: string) =>
    event(
      "audit.write_failed",
      `${venue}/${account}`,
      `The order ledger could not record a ${kind} (${source}) on ${venue}/${account}: the row is in the Worker's log (event audit.write_failed, id ${id}). Check D1.`,
      { ledger_id: id },
      { venue, account },
    ),
  configProblem: (binding: string, subject: string | undefined, message: string) =>
    event(
      "config.problem",
      `${binding}:${subject ?? ""}`,
      `Configuration problem in ${binding}${subject ? ` (${subject})` : ""}: ${message}`,
      { binding, ...(subject ? { subject } : {}) },
    ),
};

export type SinkFormat = "slack" | "discord" | "standard-webhooks";

/** One `ALERTS` entry: where to send which events. */
export interface AlertSink {
  name: string;
  url: string;
  format: SinkFormat;
  /** For `standard-webhooks`: the binding holding the `whsec_` secret. */
  secretBinding: string | undefined;
  /** The event types it wants; undefined = all. */
  events: ReadonlySet<EventType> | undefined;
  minSeverity: Severity;
}

const FORMATS: readonly SinkFormat[] = ["slack", "discord", "standard-webhooks"];

/** Parses `ALERTS`; a sink with a problem is left out and reported by name. */
export function parseAlerts(value: unknown) {
  return parseNamedList<AlertSink>(value, "ALERTS", "sink", (raw, problem) => {
    const { name, url, format, secret_binding, events: wanted, min_severity } = raw;
    const parsed = typeof url === "string" && URL.canParse(url) ? new URL(url) : null;
    if (!parsed || !(parsed.protocol === "https:" || (parsed.protocol === "http:" && LOOPBACK.has(parsed.hostname)))) {
      problem("url must be an https:// URL (http:// only on a loopback host)");
    }
    if (parsed && (parsed.username || parsed.password)) problem("url must not contain credentials");
    if (!FORMATS.includes(format as SinkFormat)) problem(`format must be one of ${FORMATS.join(", ")}`);
    if (format === "standard-webhooks" && (typeof secret_binding !== "string" || !BINDING.test(secret_binding))) {
      problem("secret_binding must name the secret holding the whsec_ key");
    }
    if (
      wanted !== undefined &&
      (!Array.isArray(wanted) || !wanted.every((e) => e === "*" || EVENT_TYPES.includes(e as EventType)))
    ) {
      problem(`events must be a list of event types (${EVENT_TYPES.join(", ")}) or ["*"]`);
    }
    if (min_severity !== undefined && !(typeof min_severity === "string" && min_severity in RANK)) {
      problem("min_severity must be info, warning or critical");
    }
    if (!parsed || typeof name !== "string" || !NAME.test(name)) return undefined;
    const list = Array.isArray(wanted) ? (wanted as string[]) : ["*"];
    return {
      name,
      url: parsed.href,
      format: format as SinkFormat,
      secretBinding: typeof secret_binding === "string" ? secret_binding : undefined,
      events: list.includes("*") ? undefined : new Set(list as EventType[]),
      minSeverity: (min_severity as Severity | undefined) ?? "info",
    };
  });
}

/** Whether `sink` wants `event`. */
export function wants(sink: AlertSink, event: AlertEvent): boolean {
  return (sink.events === undefined || sink.events.has(event.type)) && RANK[event.severity] >= RANK[sink.minSeverity];
}

/** An event as sent: with its id, when it was raised, and how many like it the quiet period held back before it. */
export interface RaisedAlert extends AlertEvent {
  id: string;
  at: string;
  suppressed: number;
}

/**
 * A chat message's title: skewguard's own words only (severity, type, and the venue and account from
 * configuration), never any text a caller or a venue wrote.
 */
export function alertTitle(alert: RaisedAlert): string {
  const where = alert.venue ? ` (${alert.venue}${alert.account ? `/${alert.account}` : ""})` : "";
  return `[${alert.severity}] ${alert.type}${where}`;
}

/**
 * An event's text for Slack mrkdwn. Slack documents `&`, `<` and `>` as the only characters to escape: with them
 * escaped, no `<url|label>` link and no `<!everyone>` can be written. A bare URL would still be auto-linked where
 * Slack pre-processes the text (the top-level `text`, which Mattermost and Discord's `/slack` endpoint also render),
 * so its `://` is written `[:]//`, which no auto-linker takes for a scheme.
 */
export function slackText(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("://", "[:]//");
}

/**
 * An event's text for Discord markdown: every markdown character is backslash-escaped, so no masked link
 * (`[label](url)`), heading, quote or spoiler can be written, and `@` too, so `@everyone` and `<@id>` render as
 * text; the `:` of `://` is escaped as well, so a bare URL is not auto-linked. `allowed_mentions` stops pings besides.
 */
export function discordText(text: string): string {
  return text.replace(/[\\*_~`|>[\]()#@]/g, "\\$&").replaceAll("://", "\\://");
}

/** `text` cut to `max` characters without leaving half an escape: a trailing `&amp` or a lone trailing backslash. */
function cut(text: string, max: number, format: "slack" | "discord"): string {
  if (text.length <= max) return text;
  const head = text.slice(0, max);
  if (format === "slack") return head.replace(/&[a-z]*$/, "");
  const backslashes = /\\*$/.exec(head)?.[0].length ?? 0;
  return backslashes % 2 === 1 ? head.slice(0, -1) : head;
}

/**
 * The body a sink receives. Slack and Discord get a title in skewguard's own words (`alertTitle`) and the event's
 * text, escaped for the sink's markup (`slackText`, `discordText`): nothing a caller wrote (an order's fields, a
 * halt's reason, a venue's message) can make a link, a mention or a heading. Slack gets it as Block Kit, the text
 * in a `mrkdwn` section with `verbatim: true` (Slack then converts no URL, channel or mention by itself), and as the
 * top-level `text` (notifications, and the receivers that take no blocks); Discord is also told to parse no
 * mentions. Standard Webhooks gets the whole event as JSON.
 */
export function alertBody(format: SinkFormat, alert: RaisedAlert): string {
  const held = alert.suppressed > 0 ? ` (${alert.suppressed} more like it held back by the quiet period)` : "";
  const title = alertTitle(alert);
  const line = `${alert.text}${held}`;
  if (format === "slack") {
    const text = slackText(line);
    return JSON.stringify({
      text: cut(`${title}: ${text}`, 3000, "slack"),
      blocks: [
        { type: "header", text: { type: "plain_text", text: title } },
        { type: "section", text: { type: "mrkdwn", text: cut(text, 3000, "slack"), verbatim: true } },
      ],
    });
  }
  if (format === "discord") {
    // The title in bold; escaped too, since its `[`, `]`, `(`, `)` and `_` are markdown to Discord.
    const content = `**${discordText(title)}**\n${discordText(line)}`;
    return JSON.stringify({ content: cut(content, 2000, "discord"), allowed_mentions: { parse: [] } });
  }
  return JSON.stringify(alert);
}
