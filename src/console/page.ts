/**
 * The console's pages, rendered on the server from plain data: the login form, the console itself, and the
 * confirmation an action asks for. Every action is a form POST carrying the session's CSRF token; the only script is
 * the console's refresh (`REFRESH`). Every value goes through `html`, which escapes it; no secret is ever passed in.
 * The Content-Security-Policy allows only the one inline style and the one inline script, by nonce.
 */
import type { LedgerRow } from "../core/ledger.ts";
import { type ClockPoint, clockChart } from "./chart.ts";
import { bytes, guardsSummary, millis, sendsText, when } from "./format.ts";
import { Html, html } from "./html.ts";

interface Halt {
  reason: string;
  by: string;
  at: string;
}

export interface AccountRow {
  venue: string;
  name: string;
  available: boolean;
  /** Why it is unavailable: the binding at fault and what is wrong. */
  problem?: { binding: string; message: string };
  readOnly?: boolean;
  /** The guards as configured (a summary, and the JSON on demand), and why they do not parse, if they do not. */
  guards?: unknown;
  guardsProblem?: string;
  halt?: Halt | null;
  haltAll?: Halt | null;
  ordersLastMinute?: number | null;
  gateError?: string;
  /** Its market-data feed (docs/websocket.md), when its venue has one; `null` when the feed did not answer. */
  feed?: FeedView | null;
  /** Whether this session's token may halt it, and resume it. */
  canHalt: boolean;
  canResume: boolean;
}

/** An account's market-data feed as the page shows it. */
export interface FeedView {
  upstream: string;
  bots: number;
  subscriptions: number;
  lastMessageAgeMs: number | null;
}

function feedCell(feed: FeedView | null | undefined): Html | string {
  if (feed === undefined) return "";
  if (feed === null) return html`<span class="warn">no answer</span>`;
  const age = feed.lastMessageAgeMs === null ? "" : html`, last message ${feed.lastMessageAgeMs} ms ago`;
  const state =
    feed.upstream === "open" ? html`<span class="ok">open</span>` : html`<span class="muted">${feed.upstream}</span>`;
  return html`${state}: ${feed.bots} bots, ${feed.subscriptions} subscriptions${age}`;
}

export interface VenueRow {
  name: string;
  configured: boolean;
  windowSeconds: number | null;
  clock: { offsetMs: number; uncertaintyMs: number; source: string } | null;
  history: ClockPoint[];
  /** A move of the offset larger than this is a step, marked on the chart. */
  stepAlertMs: number;
}

export interface JobRow {
  name: string;
  cron: string;
  venue: string;
  account: string;
  /** What it fetches. */
  method: string;
  path: string;
  last: { scheduled_at: string; status: number | null; error: string | null } | null;
}

export interface RunRow {
  scheduled_at: string;
  status: number | null;
  attempts: number;
  offset_ms: number | null;
  error: string | null;
  /** From its start to its end; null while it runs. */
  durationMs: number | null;
  /** The size of the venue's answer as kept (UTF-8 bytes), and whether it was cut to that size. */
  bytes: number | null;
  truncated: boolean;
}

export interface DeliveryRow {
  id: string;
  route: string;
  venue: string;
  account: string;
  method: string;
  path: string;
  state: string;
  updated_at: string;
  attempts: number;
  status: number | null;
  reason: string | null;
  /** False when sending it again could act twice (see core/deliveries.ts `retrySafe`). */
  retrySafe?: boolean;
}

export interface AlertRow {
  type: string;
  severity: string;
  text: string;
  suppressed: unknown;
  raised_at: string;
  sends: unknown[];
}

export interface ConsoleData {
  token: string;
  csrf: string;
  now: number;
  notice: string | undefined;
  /** Panels left out or unreadable, and why. */
  notes: string[];
  problems: { binding: string; subject?: string; message: string }[];
  venues: VenueRow[];
  accounts: AccountRow[];
  jobs: JobRow[];
  selectedJob: { name: string; method: string; path: string; runs: RunRow[] } | undefined;
  /** The dead deliveries first, then the latest others. */
  deliveries: DeliveryRow[];
  canRedrive: (id: string) => boolean;
  /** Whether the token may send a test alert (`POST /alerts/test`). */
  canTestAlert: boolean;
  /** Whether this session's token may halt every account (`PUT /halt`), and resume them (`DELETE /halt`). */
  canHaltAll: boolean;
  canResumeAll: boolean;
  alerts: AlertRow[];
  /** The latest ledger rows of the accounts the viewer may use, newest first; undefined when not shown. */
  orders: LedgerRow[] | undefined;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{display:flex;justify-content:space-between;align-items:center;padding:10px 20px;background:#1b1f24;color:#fff}
header form{margin:0}
main{padding:12px 20px;max-width:1200px}
section{background:#fff;border:1px solid #d8dde3;border-radius:6px;padding:10px 14px;margin:0 0 14px}
h1{font-size:17px;margin:0}h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff2;vertical-align:top}
th{font-weight:600;color:#57606a}
.ok{color:#1a7f37}.bad{color:#cf222e;font-weight:600}.warn{color:#9a6700}.muted{color:#6e7781}
code,pre{font:12px ui-monospace,monospace}pre{margin:0;white-space:pre-wrap}
.notice{background:#ddf4ff;border:1px solid #54aeff;padding:6px 10px;border-radius:6px;margin-bottom:12px}
form.inline{display:inline}input[type=text],input[type=password]{padding:4px;min-width:220px}
button{padding:3px 10px;cursor:pointer}
.chart .band{fill:#b6d4fe;stroke:none}.chart .offset{fill:none;stroke:#0550ae;stroke-width:1.5}
.chart .axis{stroke:#8c959f}.chart .now{fill:#0550ae}.chart .bar{stroke:#6ea8fe;stroke-width:3}.chart text{font-size:11px;fill:#57606a}
.chart .step{stroke:#cf222e;stroke-width:2;stroke-dasharray:4 3}.chart .axis-title{font-weight:600}
.when,.send{white-space:nowrap}details summary{cursor:pointer}tr.dead td{background:#fff5f5}
.confirm dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px}.confirm dt{font-weight:600;color:#57606a}
.login{max-width:420px;margin:80px auto}
`;

/** Seconds between the console's refreshes. */
export const REFRESH_SECONDS = 30;

/**
 * The console's one script: it reloads the page (without the last action's notice) every `REFRESH_SECONDS`, unless
 * a field has the focus or holds something typed, or a `<details>` is open, so a half-typed reason is never lost.
 */
const REFRESH = `setInterval(function () {
  var fields = document.querySelectorAll("input:not([type=hidden]), textarea, select");
  for (var i = 0; i < fields.length; i++) {
    var f = fields[i];
    if (f === document.activeElement || (f.type === "checkbox" ? f.checked : f.value !== "")) return;
  }
  if (document.querySelector("details[open]")) return;
  var url = new URL(location.href);
  url.searchParams.delete("done");
  url.searchParams.delete("subject");
  location.replace(url.href);
}, ${REFRESH_SECONDS * 1000});`;

function layout(title: string, nonce: string, body: Html, refresh = false): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="referrer" content="same-origin"><title>${title}</title><style nonce="${nonce}">${STYLE}</style></head>
<body>${body}${refresh ? html`<script nonce="${nonce}">${new Html(REFRESH)}</script>` : ""}</body></html>`.text;
}

/** The login form; `message` says why the last attempt or the session failed. */
export function loginPage(nonce: string, message: string | undefined): string {
  return layout(
    "skewguard console: log in",
    nonce,
    html`<main class="login"><section>
<h1>skewguard console</h1>
<p>Log in with a relay token allowed <code>GET /console</code>. The token is exchanged for a session cookie of 30
minutes; it is not stored in the browser.</p>
${message ? html`<p class="bad" id="login-error">${message}</p>` : ""}
<form id="login" method="post" action="/console/login">
<p><label>Token <input type="password" name="token" autocomplete="off" required autofocus></label></p>
<p><button type="submit">Log in</button></p>
</form></section></main>`,
  );
}

const csrfField = (csrf: string) => html`<input type="hidden" name="csrf" value="${csrf}">`;

function haltCell(a: AccountRow, csrf: string, now: number): Html {
  const own = a.halt
    ? html`<span class="bad">halted</span>: ${a.halt.reason} <span class="muted">(by ${a.halt.by}, <span class="when">${when(a.halt.at, now)}</span>)</span>`
    : "";
  const all = a.haltAll
    ? html`<div><span class="bad">halted with every account</span>: ${a.haltAll.reason} <span class="muted">(by ${a.haltAll.by}, <span class="when">${when(a.haltAll.at, now)}</span>)</span></div>`
    : "";
  const state = a.gateError
    ? html`<span class="warn">${a.gateError}</span>`
    : a.halt || a.haltAll
      ? html`${own}${all}`
      : html`<span class="ok">trading</span>`;
  if (!a.available || !(a.halt ? a.canResume : a.canHalt)) return state;
  const target = html`<input type="hidden" name="venue" value="${a.venue}"><input type="hidden" name="account" value="${a.name}">`;
  const action = a.halt
    ? html`<form class="inline resume" method="post" action="/console/resume">${target}${csrfField(csrf)}<button type="submit">Resume</button></form>`
    : html`<form class="inline halt" method="post" action="/console/halt">${target}${csrfField(csrf)}<input type="text" name="reason" placeholder="reason" required maxlength="200"> <button type="submit">Halt</button></form>`;
  return html`${state}<div>${action}</div>`;
}

/** The guards as one line, with the JSON as configured on demand. */
function guardsCell(a: AccountRow): Html {
  const problem = a.guardsProblem
    ? html`<span class="bad">unusable, every order refused</span>: ${a.guardsProblem}`
    : "";
  if (a.guards === undefined || a.guards === null) return html`${problem}<span class="muted">none</span>`;
  return html`${problem}<details class="guards"><summary>${guardsSummary(a.guards)}</summary><pre>${JSON.stringify(a.guards, null, 1)}</pre></details>`;
}

function accountsTable(accounts: AccountRow[], csrf: string, now: number): Html {
  if (accounts.length === 0) return html`<p class="muted">No accounts.</p>`;
  return html`<table><tr><th>Account</th><th>Status</th><th>Guards</th><th>Orders (60 s)</th><th>Feed</th><th>Halt</th></tr>
${accounts.map(
  (a) => html`<tr data-account="${a.venue}/${a.name}"><td><code>${a.venue}/${a.name}</code></td>
<td>${
    a.available
      ? html`<span class="ok">available</span>${a.readOnly ? html` <span class="warn">read-only</span>` : ""}`
      : html`<span class="bad">unavailable</span>: <code>${a.problem?.binding}</code> ${a.problem?.message}`
  }</td>
<td>${guardsCell(a)}</td>
<td>${a.ordersLastMinute ?? ""}</td><td>${feedCell(a.feed)}</td><td>${haltCell(a, csrf, now)}</td></tr>`,
)}</table>`;
}

function venueBlock(v: VenueRow, accounts: AccountRow[], csrf: string, now: number): Html {
  const clock = v.clock
    ? html`offset <strong>${v.clock.offsetMs > 0 ? "+" : ""}${v.clock.offsetMs} ms</strong> ± ${v.clock.uncertaintyMs} ms <span class="muted">(${v.clock.source})</span>`
    : html`<span class="muted">no estimate yet</span>`;
  return html`<section id="venue-${v.name}" data-venue="${v.name}"><h2>${v.name.toUpperCase()} ${
    v.configured ? html`<span class="ok">configured</span>` : html`<span class="bad">not configured</span>`
  }</h2>
${v.configured ? html`<p>Clock: ${clock}; window ${v.windowSeconds} s.</p>${clockChart(v.name, v.history, now, v.stepAlertMs)}` : ""}
${accountsTable(
  accounts.filter((a) => a.venue === v.name),
  csrf,
  now,
)}</section>`;
}

const status = (s: number | null, error: string | null) =>
  error
    ? html`<span class="bad">failed</span>: ${error}`
    : s !== null && s >= 200 && s < 300
      ? html`<span class="ok">${s}</span>`
      : html`<span class="bad">${s ?? "no answer"}</span>`;

const at = (time: string, now: number) => html`<span class="when">${when(time, now)}</span>`;

/** A run's row: when, what it fetched and what came back (status, size), how long it took. */
function runRow(r: RunRow, fetched: Html, now: number): Html {
  const size =
    r.bytes === null ? "" : r.truncated ? `more than ${bytes(r.bytes)} (kept ${bytes(r.bytes)})` : bytes(r.bytes);
  return html`<tr><td>${at(r.scheduled_at, now)}</td><td>${fetched}</td><td>${status(r.status, r.error)}</td><td>${size}</td>
<td>${r.durationMs === null ? "" : millis(r.durationMs)}</td><td>${r.attempts}</td><td>${r.offset_ms === null ? "" : millis(r.offset_ms)}</td></tr>`;
}

function runsBlock(job: NonNullable<ConsoleData["selectedJob"]>, now: number): Html {
  const fetched = html`<code>${job.method} ${job.path}</code>`;
  return html`<h2>Last runs of ${job.name}</h2>${
    job.runs.length === 0
      ? html`<p class="muted">No runs yet.</p>`
      : html`<table id="runs"><tr><th>Scheduled</th><th>Fetched</th><th>Result</th><th>Size</th><th>Took</th><th>Attempts</th><th>Clock offset</th></tr>${job.runs.map(
          (r) => runRow(r, fetched, now),
        )}</table>`
  }`;
}

function jobsBlock(data: ConsoleData): Html {
  const rows = data.jobs.map(
    (
      j,
    ) => html`<tr data-job="${j.name}"><td><a href="/console?job=${encodeURIComponent(j.name)}#jobs">${j.name}</a></td><td><code>${j.cron}</code></td><td>${j.venue}/${j.account}</td>
<td><code>${j.method} ${j.path}</code></td><td>${j.last ? html`${at(j.last.scheduled_at, data.now)} ${status(j.last.status, j.last.error)}` : html`<span class="muted">not run yet</span>`}</td></tr>`,
  );
  return html`<section id="jobs"><h2>Jobs</h2>${
    data.jobs.length === 0
      ? html`<p class="muted">No jobs configured.</p>`
      : html`<table><tr><th>Job</th><th>Cron</th><th>Account</th><th>Fetches</th><th>Last run</th></tr>${rows}</table>`
  }${data.selectedJob ? runsBlock(data.selectedJob, data.now) : ""}</section>`;
}

function deliveryState(d: DeliveryRow): Html {
  if (d.state === "dead") return html`<span class="bad">dead</span>: ${d.reason}`;
  if (d.state === "delivered") return html`<span class="ok">delivered</span> ${d.status}`;
  return html`<span class="warn">${d.state}</span> ${d.reason}`;
}

/** The Re-drive button of a dead delivery; it leads to a confirmation of what will be sent. */
function redriveForm(d: DeliveryRow, csrf: string): Html {
  const force =
    d.retrySafe === false
      ? html`<label title="it may have reached the venue and has no client_order_id"><input type="checkbox" name="force" value="true"> send again anyway</label> `
      : "";
  return html`<form class="inline redrive" method="post" action="/console/redrive"><input type="hidden" name="id" value="${d.id}">${csrfField(csrf)}${force}<button type="submit">Re-drive…</button></form>`;
}

/** Every delivery in one list: the dead ones first, marked, each with its Re-drive button when the token may. */
function deliveriesBlock(data: ConsoleData): Html {
  const rows = data.deliveries;
  return html`<section id="deliveries"><h2>Deliveries</h2>${
    rows.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table id="deliveries-list"><tr><th>Delivery</th><th>Route</th><th>Request</th><th>State</th><th>Updated</th><th></th></tr>${rows.map(
          (
            d,
          ) => html`<tr data-delivery="${d.id}" class="${d.state}"><td><code>${d.id}</code></td><td>${d.route}</td><td><code>${d.method} ${d.venue}/${d.account} ${d.path}</code></td>
<td>${deliveryState(d)}</td><td>${at(d.updated_at, data.now)} <span class="muted">(${d.attempts} ${d.attempts === 1 ? "attempt" : "attempts"})</span></td>
<td>${d.state === "dead" && data.canRedrive(d.id) ? redriveForm(d, data.csrf) : ""}</td></tr>`,
        )}</table>`
  }</section>`;
}

/** The latest orders (the ledger, docs/orders.md), refusals marked with their reason. */
function ordersBlock(orders: LedgerRow[] | undefined, now: number): Html {
  if (orders === undefined) return html``;
  const order = (o: LedgerRow) =>
    [o.side, o.size, o.instrument, o.type, o.price === undefined ? undefined : `@ ${o.price}`]
      .filter((part) => part !== undefined)
      .join(" ");
  return html`<section id="orders"><h2>Latest orders</h2>${
    orders.length === 0
      ? html`<p class="muted">None recorded.</p>`
      : html`<table><tr><th>When</th><th>Account</th><th>By</th><th>Kind</th><th>Order</th><th>Outcome</th></tr>${orders.map(
          (o) => html`<tr class="${o.outcome}"><td>${at(o.at, now)}</td><td>${o.venue}/${o.account}</td>
<td>${o.actor} <span class="muted">(${o.source})</span></td><td>${o.kind}</td><td>${order(o)}</td><td>${
            o.outcome === "refused"
              ? html`<span class="bad">refused ${String(o.status ?? "")}</span> ${o.refusal ?? ""}`
              : o.outcome === "failed"
                ? html`<span class="warn">failed</span>`
                : html`<span class="ok">sent</span> ${String(o.status ?? "")}`
          }</td></tr>`,
        )}</table>`
  }</section>`;
}

function alertsBlock(alerts: AlertRow[], data: ConsoleData): Html {
  const now = data.now;
  const test = data.canTestAlert
    ? html`<form class="inline" id="alert-test" method="post" action="/console/alert-test">${csrfField(data.csrf)}<button type="submit">Send a test alert</button></form>`
    : "";
  return html`<section id="alerts"><h2>Recent alerts</h2>${test}${
    alerts.length === 0
      ? html`<p class="muted">None.</p>`
      : html`<table><tr><th>When</th><th>Event</th><th>What</th><th>Sent</th></tr>${alerts.map(
          (
            a,
          ) => html`<tr><td>${at(a.raised_at, now)}</td><td><span class="${a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "muted"}">${a.severity}</span> <code>${a.type}</code></td>
<td>${a.text}${Number(a.suppressed) > 0 ? html` <span class="muted">(+${String(a.suppressed)} held back)</span>` : ""}</td><td>${sendsText(a.sends).map((s) => html`<div class="send">${s}</div>`)}</td></tr>`,
        )}</table>`
  }</section>`;
}

/** "Halt everything" (`PUT /halt`) and "Resume everything" (`DELETE /halt`), each leading to a confirmation. */
function everythingBlock(data: ConsoleData): Html {
  const halt = data.accounts.find((a) => a.haltAll)?.haltAll;
  // Without the accounts (not allowed GET /accounts, or none), whether every account is halted is not known here.
  const known = data.accounts.some((a) => a.available);
  const state = halt
    ? html`<span class="bad">Every account is halted</span>: ${halt.reason} <span class="muted">(by ${halt.by}, ${at(halt.at, data.now)})</span>`
    : known
      ? html`<span class="ok">No halt of every account.</span>`
      : html`<span class="muted">Whether every account is halted is not shown here.</span>`;
  const haltForm = data.canHaltAll
    ? html`<form class="inline halt-all" method="post" action="/console/halt-all">${csrfField(data.csrf)}<input type="text" name="reason" placeholder="reason (required)" required maxlength="200"> <button type="submit">Halt everything…</button></form>`
    : "";
  const resumeForm =
    (halt || !known) && data.canResumeAll
      ? html` <form class="inline resume-all" method="post" action="/console/resume-all">${csrfField(data.csrf)}<button type="submit">Resume everything…</button></form>`
      : "";
  return html`<section id="everything"><h2>Every account</h2><p>${state}</p><div>${haltForm}${resumeForm}</div></section>`;
}

/** What a confirmation names: a label and its value, each shown as text. */
export type ConfirmLine = readonly [string, string];

/** The confirmation an action asks for: what it will do, and a form that does it (with `confirm=yes`). */
export interface Confirmation {
  title: string;
  lines: readonly ConfirmLine[];
  action: string;
  fields: Record<string, string>;
  button: string;
  csrf: string;
}

/** The confirmation page: what will happen, a button that does it, and a way back that does nothing. */
export function confirmPage(nonce: string, c: Confirmation): string {
  const hidden = Object.entries({ ...c.fields, confirm: "yes" }).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`,
  );
  return layout(
    `skewguard console: ${c.title}`,
    nonce,
    html`<main class="confirm"><section id="confirm"><h1>${c.title}</h1>
<dl>${c.lines.map(([label, value]) => html`<dt>${label}</dt><dd><code>${value}</code></dd>`)}</dl>
<form id="confirm-form" method="post" action="${c.action}">${hidden}${csrfField(c.csrf)}<button type="submit">${c.button}</button>
<a href="/console">Cancel</a></form></section></main>`,
  );
}

/** The console. */
export function consolePage(nonce: string, data: ConsoleData): string {
  const problems = html`<section id="problems"><h2>Configuration problems</h2>${
    data.problems.length === 0
      ? html`<p class="ok">None: GET /health is ok.</p>`
      : html`<ul>${data.problems.map(
          (p) => html`<li><code>${p.binding}</code>${p.subject ? html` (${p.subject})` : ""}: ${p.message}</li>`,
        )}</ul>`
  }</section>`;
  return layout(
    "skewguard console",
    nonce,
    html`<header><h1>skewguard console</h1><span>as <strong id="who">${data.token}</strong>
<form class="inline" id="logout" method="post" action="/console/logout">${csrfField(data.csrf)}<button type="submit">Log out</button></form></span></header>
<main>${data.notice ? html`<div class="notice" id="notice">${data.notice}</div>` : ""}
${data.notes.length > 0 ? html`<div class="notice" id="notes">${data.notes.map((n) => html`<div>${n}</div>`)}</div>` : ""}
${problems}
${data.canHaltAll || data.canResumeAll ? everythingBlock(data) : ""}
${data.venues.map((v) => venueBlock(v, data.accounts, data.csrf, data.now))}
${jobsBlock(data)}
${deliveriesBlock(data)}
${ordersBlock(data.orders, data.now)}
${alertsBlock(data.alerts, data)}
</main>`,
    true,
  );
}
