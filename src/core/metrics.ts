/**
 * `GET /metrics` (docs/metrics.md): this isolate's counters (`IsolateMetrics`, kept by the runtime), the route
 * template a request is counted under, and the Prometheus text exposition format (version 0.0.4) they are shown in.
 * Pure: no I/O, no clock.
 */

/** One sample: its label values by label name, and its value. */
export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** One metric family, as the exposition format shows it. */
export interface Family {
  readonly name: string;
  readonly type: "counter" | "gauge";
  readonly help: string;
  readonly samples: readonly Sample[];
}

const SEP = "\u0000";

/** A counter with up to three labels. An increment builds one short key string, nothing else. */
export class Counter {
  readonly #values = new Map<string, number>();
  readonly name: string;
  readonly help: string;
  readonly labels: readonly string[];

  constructor(name: string, help: string, labels: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labels = labels;
  }

  inc(a: string, b = "", c = "", by = 1): void {
    const key = `${a}${SEP}${b}${SEP}${c}`;
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  family(): Family {
    const samples = [...this.#values].map(([key, value]) => {
      const values = key.split(SEP);
      return { labels: Object.fromEntries(this.labels.map((label, i) => [label, values[i] ?? ""])), value };
    });
    return { name: this.name, type: "counter", help: this.help, samples };
  }
}

/** The counters one isolate keeps from its start (src/runtime.ts); a scraper sums them over isolates knowingly. */
export class IsolateMetrics {
  readonly requests = new Counter(
    "skewguard_requests_total",
    "HTTP requests this isolate answered, by route template and status.",
    ["route", "status"],
  );
  readonly venueAnswers = new Counter(
    "skewguard_venue_answers_total",
    "Venue answers this isolate received, by venue and HTTP status (timeout or unreachable when none came).",
    ["venue", "status"],
  );
  readonly retries = new Counter(
    "skewguard_venue_retries_total",
    "Failure retries of idempotent venue calls this isolate made.",
    ["venue"],
  );
  readonly refusals = new Counter(
    "skewguard_refusals_total",
    "Requests skewguard's own rules refused before sending, by venue, account and rule.",
    ["venue", "account", "reason"],
  );
  readonly gateWaits = new Counter(
    "skewguard_gate_waits_total",
    "Send slots granted with a wait by an account's rate gate.",
    ["venue", "account"],
  );
  readonly gateWaitSeconds = new Counter(
    "skewguard_gate_wait_seconds_total",
    "Seconds waited for send slots granted by an account's rate gate.",
    ["venue", "account"],
  );
  readonly gateRateLimited = new Counter(
    "skewguard_gate_rate_limited_total",
    "Calls answered 429 because no send slot came in time (busy: past the wait cap; stale: grants missed).",
    ["venue", "reason"],
  );

  families(): Family[] {
    const all = [this.requests, this.venueAnswers, this.retries, this.refusals];
    return [...all, this.gateWaits, this.gateWaitSeconds, this.gateRateLimited].map((c) => c.family());
  }
}

/** What a route template is taken from: the relay's venue names, and those with a market-data feed. */
export interface RouteNames {
  readonly venues: ReadonlySet<string>;
  readonly feeds: ReadonlySet<string>;
}

/** The routes counted under their own path. */
const EXACT: ReadonlySet<string> = new Set([
  "/health",
  "/clock",
  "/accounts",
  "/halt",
  "/jobs",
  "/console",
  "/console/login",
  "/alerts",
  "/alerts/test",
  "/deliveries",
  "/orders",
  "/metrics",
]);
const TEMPLATES: readonly [RegExp, string][] = [
  [/^\/hooks\/[^/]+$/, "/hooks/:name"],
  [/^\/accounts\/[^/]+\/[^/]+\/halt$/, "/accounts/:venue/:account/halt"],
  [/^\/jobs\/[^/]+\/runs$/, "/jobs/:name/runs"],
  [/^\/console\/[^/]+$/, "/console/:action"],
  [/^\/deliveries\/[^/]+$/, "/deliveries/:id"],
  [/^\/deliveries\/[^/]+\/retry$/, "/deliveries/:id/retry"],
];

/** The route `path` is counted under: its template, never an id, a name or a venue path; `other` for no route. */
export function routeTemplate(path: string, names: RouteNames): string {
  if (EXACT.has(path)) return path;
  const first = path.split("/", 2)[1] ?? "";
  if (names.venues.has(first)) {
    if (names.feeds.has(first) && path === `/${first}/ws`) return path;
    if (names.feeds.has(first) && /^\/[^/]+\/[^/]+\/ws$/.test(path)) return `/${first}/:account/ws`;
    return `/${first}/*`;
  }
  for (const [pattern, template] of TEMPLATES) if (pattern.test(path)) return template;
  return "other";
}

/** The exposition format's content type. */
export const EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeLabel = (text: string) => text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "+Inf";
  if (value === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(value);
}

function sampleLine(name: string, { labels, value }: Sample): string {
  const pairs = Object.entries(labels).map(([label, v]) => `${label}="${escapeLabel(v)}"`);
  return `${name}${pairs.length > 0 ? `{${pairs.join(",")}}` : ""} ${formatValue(value)}`;
}

/** `families` in the text exposition format: HELP and TYPE, then each sample, one per line. */
export function exposition(families: readonly Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) lines.push(sampleLine(family.name, sample));
  }
  return `${lines.join("\n")}\n`;
}
