/**
 * Alerts: the events skewguard tells people about, their text, and the sinks (`ALERTS`) that receive them. Pure:
 * the events are built here and sent by adapters/alerts.ts, through their queue, at most one per (type, subject) per
 * quiet period (but see UNQUIETED).
 */
import { BINDING, keysOf, NAME, parseNamedList } from "./parse.ts";
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
  "alert.test": "info",
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
export const EVENT_TYPES: readonly EventType[] = keysOf(EVENT_SEVERITY);

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

function event(
  type: EventType,
  subject: string,
  text: string,
  ids: Record<string, string>,
  where: Where = {},
): AlertEvent {
  return { type, severity: EVENT_SEVERITY[type], subject, ...where, text: text.slice(0, 1000), ids };
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
  test: (by: string) =>
    event(
      "alert.test",
      "test",
      `A test alert, sent by ${by} with POST /alerts/test to check that this sink receives skewguard's alerts. Nothing needs doing.`,
      {},
    ),
  configProblem: (binding: string, subject: string | undefined, message: string) =>
    event(
      "config.problem",
      `${binding}:${subject ?? ""}`,
      `Configuration problem in ${binding}${subject ? ` (${subject})` : ""}: ${message}`,
      { binding, ...(subject ? { subject } : {}) },
    ),
};

/** Each sink format's own settings. */
interface FormatOptions {
  slack: Record<never, never>;
  discord: Record<never, never>;
  "standard-webhooks": {
    /** The binding holding the `whsec_` secret. */
    secretBinding: string;
  };
}
export type SinkFormat = keyof FormatOptions;
/** A sink's format and that format's settings. */
export type SinkTarget<F extends SinkFormat = SinkFormat> = { [P in F]: { format: P } & FormatOptions[P] }[F];

/** One `ALERTS` entry: where to send which events, and in what format. */
export type AlertSink = {
  name: string;
  url: string;
  /** The event types it wants; undefined = all. */
  events: ReadonlySet<EventType> | undefined;
  minSeverity: Severity;
} & SinkTarget;

interface FormatSpec<F extends SinkFormat> {
  /** This format's settings from a sink entry, or undefined with the problem reported. */
  parse(raw: Record<string, unknown>, problem: (message: string) => void): SinkTarget<F> | undefined;
  /** The body the sink receives (see `alertBody`). */
  body(alert: RaisedAlert): string;
  /** The binding that must be set for the sink to be used, if its format needs one. */
  secretBinding(target: SinkTarget<F>): string | undefined;
}

/** Every sink format: the one place that says what each takes and what it is sent. */
const FORMATS: { [F in SinkFormat]: FormatSpec<F> } = {
  slack: { parse: () => ({ format: "slack" }), body: slackBody, secretBinding: () => undefined },
  discord: { parse: () => ({ format: "discord" }), body: discordBody, secretBinding: () => undefined },
  "standard-webhooks": {
    parse: ({ secret_binding }, problem) => {
      if (typeof secret_binding === "string" && BINDING.test(secret_binding)) {
        return { format: "standard-webhooks", secretBinding: secret_binding };
      }
      problem("secret_binding must name the secret holding the whsec_ key");
      return undefined;
    },
    body: (alert) => JSON.stringify(alert),
    secretBinding: (target) => target.secretBinding,
  },
};
const FORMAT_NAMES = keysOf(FORMATS);
const SEVERITIES = keysOf(RANK);

function parseUrl(value: unknown, problem: (message: string) => void): URL | undefined {
  const parsed = typeof value === "string" && URL.canParse(value) ? new URL(value) : undefined;
  if (!parsed || !(parsed.protocol === "https:" || (parsed.protocol === "http:" && LOOPBACK.has(parsed.hostname)))) {
    problem("url must be an https:// URL (http:// only on a loopback host)");
  }
  if (parsed && (parsed.username || parsed.password)) problem("url must not contain credentials");
  return parsed;
}

/** The event types a sink wants: undefined for all (`["*"]`, or unset). */
function parseEvents(wanted: unknown, problem: (message: string) => void): ReadonlySet<EventType> | undefined {
  if (wanted === undefined) return undefined;
  const list: unknown[] = Array.isArray(wanted) ? wanted : [];
  const types = list.flatMap((e) => EVENT_TYPES.filter((type) => type === e));
  const all = list.filter((e) => e === "*").length;
  if (!Array.isArray(wanted) || types.length + all !== list.length) {
    problem(`events must be a list of event types (${EVENT_TYPES.join(", ")}) or ["*"]`);
  }
  return all > 0 ? undefined : new Set(types);
}

function parseSink(raw: Record<string, unknown>, problem: (message: string) => void): AlertSink | undefined {
  const { name, min_severity } = raw;
  const url = parseUrl(raw.url, problem);
  const format = FORMAT_NAMES.find((f) => f === raw.format);
  if (format === undefined) problem(`format must be one of ${FORMAT_NAMES.join(", ")}`);
  const target: SinkTarget | undefined = format && FORMATS[format].parse(raw, problem);
  const events = parseEvents(raw.events, problem);
  const minSeverity = min_severity === undefined ? "info" : SEVERITIES.find((s) => s === min_severity);
  if (minSeverity === undefined) problem("min_severity must be info, warning or critical");
  if (!url || !target || !minSeverity || typeof name !== "string" || !NAME.test(name)) return undefined;
  return { name, url: url.href, events, minSeverity, ...target };
}

/** The binding a sink's format needs set (the `whsec_` secret of `standard-webhooks`), if any. */
export function sinkSecretBinding<F extends SinkFormat>(target: SinkTarget<F>): string | undefined {
  const spec: FormatSpec<F> = FORMATS[target.format];
  return spec.secretBinding(target);
}

/** Parses `ALERTS`; a sink with a problem is left out and reported by name. */
export function parseAlerts(value: unknown) {
  return parseNamedList<AlertSink>(value, "ALERTS", "sink", parseSink);
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
  return FORMATS[format].body(alert);
}

/** An alert's title, and its text with what the quiet period held back. */
function titleAndLine(alert: RaisedAlert): { title: string; line: string } {
  const held = alert.suppressed > 0 ? ` (${alert.suppressed} more like it held back by the quiet period)` : "";
  return { title: alertTitle(alert), line: `${alert.text}${held}` };
}

function slackBody(alert: RaisedAlert): string {
  const { title, line } = titleAndLine(alert);
  const text = slackText(line);
  return JSON.stringify({
    text: cut(`${title}: ${text}`, 3000, "slack"),
    blocks: [
      { type: "header", text: { type: "plain_text", text: title } },
      { type: "section", text: { type: "mrkdwn", text: cut(text, 3000, "slack"), verbatim: true } },
    ],
  });
}

function discordBody(alert: RaisedAlert): string {
  const { title, line } = titleAndLine(alert);
  // The title in bold; escaped too, since its `[`, `]`, `(`, `)` and `_` are markdown to Discord.
  const content = `**${discordText(title)}**\n${discordText(line)}`;
  return JSON.stringify({ content: cut(content, 2000, "discord"), allowed_mentions: { parse: [] } });
}
