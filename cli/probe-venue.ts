/**
 * `npm run --silent probe-venue -- --venue intx|cde [--account NAME] [--base-url URL] [--json]`: settles, in a few
 * requests, what a venue actually answers where skewguard depends on undocumented behaviour (docs/protocol.md,
 * "Error shapes"), with the user's own real or sandbox key: the API root's answer and its `Date`, a signed read, and
 * the same read signed 60 s stale (the one refused request it sends; nothing else it sends changes anything). It
 * prints what came back and whether skewguard's own rules (src/lib/rejection.ts, src/lib/date.ts) read each answer
 * as they must. Credentials as cli/sign.ts reads them; no credential or signature is ever printed, not even where
 * a venue echoes one in a body or header.
 * Exit codes: 0 every expectation holds; 1 one does not (the report says which); 2 bad arguments or credentials.
 */
import { parseArgs } from "node:util";
import { parseBaseUrl } from "../src/core/venue-config.ts";
import { parseImfFixdate, venueSample } from "../src/lib/date.ts";
import { type ClockSample, halfWidthMs, OffsetEstimator, timestampFor } from "../src/lib/estimator.ts";
import {
  isAuthRefusal,
  isTimestampPhrase,
  isTimestampRejection,
  venueMessage,
  windowVerdict,
} from "../src/lib/rejection.ts";
import { signHeaders } from "../src/lib/sign.ts";
import { DEFAULT_VENUES } from "../src/venues/index.ts";
import { accountConfig, readVars, reportFailure, signingIdentity, UsageError } from "./sign.ts";

const USAGE = `usage: npm run --silent probe-venue -- --venue intx|cde [--account NAME] [--base-url URL] [--json]

Sends the venue five GETs: its API root unsigned (Accept: application/json, then */*), a signed read (INTX
/api/v1/portfolios, CDE /rest/v2/positions) with a timestamp from the venue's own Date, and the same read signed
60 s stale (Accept: application/json, then */*). Prints what came back and whether skewguard reads each answer as it
must. Credentials as npm run sign reads them (environment, else ./.dev.vars); the base URL is --base-url, else
INTX_BASE_URL / CDE_BASE_URL, else the venue's production URL. Exit 0 all expectations hold, 1 one does not, 2 bad
arguments or credentials.`;

/** The signed read: cheap, read-only, and refused before anything else when its timestamp is stale. */
const STALE_SECONDS = 60;
const BODY_CHARS = 300;
const TIMEOUT_MS = 10_000;
const JSON_TYPE = "application/json";
/** What fetch sends when a caller sets no Accept: said explicitly, so every runtime sends the same. */
const ANY_TYPE = "*/*";
const RATE_HEADER = /rate|limit|retry/i;

/** One request the probe sent and what came back. Only the fields below are printed, each redacted. */
export interface Answer {
  /** `1a`, `1b` (the root), `2` (the good read), `3a`, `3b` (the stale read). */
  id: string;
  method: "GET";
  path: string;
  accept: string;
  /** The `CB-ACCESS-TIMESTAMP` it was signed with; absent when unsigned. */
  timestamp?: number;
  status?: number;
  contentType?: string | null;
  /** The first 300 characters (after redaction); not shown for a signed read answered 2xx (account data). */
  body?: string;
  bodyChars?: number;
  date?: string | null;
  /** Whether `Date` is an IMF-fixdate, the only form skewguard reads (whole seconds by definition). */
  imfFixdate?: boolean;
  age?: string | null;
  /** Whether skewguard learns the venue's clock from this answer (`venueSample` is not undefined). */
  teachesClock?: boolean;
  location?: string | null;
  /** Every response header whose name matches /rate|limit|retry/i. */
  rateHeaders?: Record<string, string>;
  /** Why no answer came (network, timeout). */
  error?: string;
}

interface Exchange {
  answer: Answer;
  /** The whole body as received (not printed): what skewguard's rules read. */
  text: string;
  sample: ClockSample | undefined;
}

export interface Check {
  id: string;
  /** `true` holds, `false` does not (exit 1), `null` information only. */
  ok: boolean | null;
  text: string;
}

const HTML_ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The ways a value may be escaped when a venue echoes it: in JSON (with or without `\/`), a URL, a form, HTML. */
const ENCODINGS: readonly ((value: string) => string)[] = [
  (v) => JSON.stringify(v).slice(1, -1),
  (v) => JSON.stringify(v).slice(1, -1).replaceAll("/", "\\/"),
  encodeURIComponent,
  encodeURI,
  (v) => new URLSearchParams({ v }).toString().slice(2),
  (v) => v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`),
  (v) => v.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c] ?? c),
];

/**
 * Replaces every occurrence of the given values, raw or escaped once or twice over (JSON-escaped, percent-encoded,
 * form-encoded, HTML-escaped: a JSON string inside a JSON body, say), with `[redacted]`. Case-insensitive:
 * redacting a case variant too costs nothing.
 */
export function redactor(values: readonly string[]): (text: string) => string {
  const forms = new Set<string>();
  for (const value of values) {
    if (value === "") continue;
    forms.add(value);
    for (const once of ENCODINGS.map((encode) => encode(value))) {
      forms.add(once);
      for (const encode of ENCODINGS) forms.add(encode(once));
    }
  }
  if (forms.size === 0) return (text) => text;
  // Longest first, so a value that contains another is replaced whole.
  const alternatives = [...forms]
    .sort((a, b) => b.length - a.length)
    .map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(alternatives.join("|"), "gi");
  return (text) => text.replace(pattern, "[redacted]");
}

interface Options {
  venue: string;
  account: string | undefined;
  baseUrl: string | undefined;
  json: boolean;
}

function parse(argv: string[]): Options | "help" {
  let values: {
    venue?: string | undefined;
    account?: string | undefined;
    "base-url"?: string | undefined;
    json?: boolean | undefined;
    help?: boolean | undefined;
  };
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        venue: { type: "string" },
        account: { type: "string" },
        "base-url": { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : "bad arguments");
  }
  if (values.help) return "help";
  const { venue } = values;
  const profile = DEFAULT_VENUES.get(venue);
  if (!profile) throw new UsageError(`--venue must be ${DEFAULT_VENUES.names.join(" or ")}`);
  return { venue: profile.name, account: values.account, baseUrl: values["base-url"], json: values.json === true };
}

/** What the probe found, as `--json` prints it. */
export interface Report {
  venue: string;
  account: string;
  baseUrl: string;
  windowSeconds: number;
  clock: {
    /** venue − local, ms, from step 1's `Date` (OffsetEstimator); null when no answer taught the clock. */
    offsetMs: number | null;
    halfWidthMs: number | null;
    goodTimestamp: number;
    staleTimestamp: number;
  };
  answers: Answer[];
  /** Every rate-limit header seen, `"<answer id> <name>": value`. */
  rateLimitHeaders: Record<string, string>;
  checks: Check[];
  ok: boolean;
}

async function probe(options: Options): Promise<Report> {
  const config = accountConfig(options.venue, options.account, readVars());
  const baseUrl =
    options.baseUrl === undefined ? config.baseUrl : parseBaseUrl(options.baseUrl, "--base-url").replace(/\/$/, "");
  const identity = await signingIdentity(config);
  const { credentials, windowSeconds } = config;
  const secrets = [credentials.apiKey, credentials.passphrase, credentials.secret];
  let redact = redactor(secrets);

  async function send(id: string, path: string, accept: string, timestamp?: number): Promise<Exchange> {
    const url = `${baseUrl}${path}`;
    const headers: Record<string, string> = { accept };
    if (timestamp !== undefined) {
      const signed = await signHeaders(identity, { method: "GET", url }, timestamp);
      secrets.push(signed["CB-ACCESS-SIGN"]);
      redact = redactor(secrets);
      Object.assign(headers, signed);
    }
    const answer: Answer = { id, method: "GET", path, accept, ...(timestamp !== undefined ? { timestamp } : {}) };
    const tSend = Date.now();
    let response: Response;
    let text: string;
    try {
      // manual: a redirect is reported, never followed (it would carry the signed headers to another origin).
      response = await fetch(url, { headers, redirect: "manual", signal: AbortSignal.timeout(TIMEOUT_MS) });
      text = await response.text();
    } catch (err) {
      const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : "";
      answer.error = redact(`${err instanceof Error ? err.message : String(err)}${cause}`);
      return { answer, text: "", sample: undefined };
    }
    const tRecv = Date.now();
    const sample = venueSample(response, tSend, tRecv);
    const h = response.headers;
    const date = h.get("date");
    const rateHeaders: Record<string, string> = {};
    // Everything the venue said is redacted as it is read (the probe's own words hold no credential).
    const header = (name: string) => {
      const value = h.get(name);
      return value === null ? null : redact(value);
    };
    h.forEach((value, name) => {
      if (RATE_HEADER.test(name)) rateHeaders[redact(name)] = redact(value);
    });
    Object.assign(answer, {
      status: response.status,
      contentType: header("content-type"),
      // Redacted whole before it is cut, so no credential can straddle the cut.
      ...(timestamp !== undefined && response.ok ? {} : { body: redact(text).slice(0, BODY_CHARS) }),
      bodyChars: text.length,
      date: header("date"),
      imfFixdate: date !== null && parseImfFixdate(date) !== undefined,
      age: header("age"),
      teachesClock: sample !== undefined,
      ...(h.has("location") ? { location: header("location") } : {}),
      rateHeaders,
    });
    return { answer, text, sample };
  }

  // 1. The API root, unsigned: what skewguard's clock probe sends, and the same without asking for JSON.
  const root = config.profile.apiPrefix;
  const rootJson = await send("1a", root, JSON_TYPE);
  const rootAny = await send("1b", root, ANY_TYPE);

  // 2. A signed read, its timestamp from the venue's clock as step 1's Date taught it.
  const estimator = new OffsetEstimator();
  for (const sample of [rootJson.sample, rootAny.sample]) if (sample) estimator.add(sample);
  const estimate = estimator.estimate(Date.now());
  const goodTimestamp = timestampFor(Date.now(), estimate);
  const read = config.profile.probeRead;
  const good = await send("2", read, JSON_TYPE, goodTimestamp);

  // 3. The same read signed 60 s stale, which the venue must refuse: with and without asking for JSON.
  const staleTimestamp = timestampFor(Date.now(), estimate) - STALE_SECONDS;
  const staleJson = await send("3a", read, JSON_TYPE, staleTimestamp);
  const staleAny = await send("3b", read, ANY_TYPE, staleTimestamp);

  const exchanges = [rootJson, rootAny, good, staleJson, staleAny];
  const rateLimitHeaders: Record<string, string> = {};
  for (const { answer } of exchanges) {
    for (const [name, value] of Object.entries(answer.rateHeaders ?? {}))
      rateLimitHeaders[`${answer.id} ${name}`] = value;
  }
  const checks = [
    ...rootChecks(rootJson),
    goodCheck(good),
    ...staleChecks(staleJson, windowSeconds, redact),
    ...staleChecks(staleAny, windowSeconds, redact),
  ];
  const report: Report = {
    venue: options.venue,
    account: config.account,
    baseUrl,
    windowSeconds,
    clock: {
      offsetMs: estimate ? Math.round(estimate.offsetMs) : null,
      halfWidthMs: estimate ? Math.round(halfWidthMs(estimate)) : null,
      goodTimestamp,
      staleTimestamp,
    },
    answers: exchanges.map((e) => e.answer),
    rateLimitHeaders,
    checks,
    ok: checks.every((c) => c.ok !== false),
  };
  return report;
}

/** A body on one line: control characters (newlines included) shown as escapes. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: showing control characters is the point
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

const answered = (e: Exchange) => (e.answer.error ? `no answer (${e.answer.error})` : `${e.answer.status}`);

/** The root's Date must teach the clock: skewguard's cold clock probe is this very request. */
function rootChecks(root: Exchange): Check[] {
  return [
    {
      id: "root_teaches_clock",
      ok: root.sample !== undefined,
      text:
        root.sample !== undefined
          ? `1a: the API root's Date teaches the clock (skewguard's clock probe)`
          : `1a: the API root's answer (${answered(root)}) does not teach the clock: ${whyNoSample(root.answer)}`,
    },
  ];
}

function goodCheck(good: Exchange): Check {
  const status = good.answer.status;
  const ok = status !== undefined && status >= 200 && status <= 299;
  return {
    id: "read_2xx",
    ok,
    text: ok
      ? `2: the signed read with a good timestamp answered ${status}`
      : `2: the signed read with a good timestamp answered ${answered(good)}, not 2xx: the key, its permissions or ` +
        `the signing is wrong (see its body)`,
  };
}

function whyNoSample(answer: Answer): string {
  if (answer.error) return "no answer";
  if (answer.date === null) return "it has no Date";
  if (!answer.imfFixdate) return "its Date is not an IMF-fixdate";
  if (answer.age !== null) return "it carries Age (a cached answer)";
  return `skewguard does not take a ${answer.status} ${answer.contentType ?? "(no content-type)"} answer as the venue API's`;
}

/** A stale refusal must read as a timestamp refusal, not an auth refusal, and its Date must teach the clock. */
function staleChecks(stale: Exchange, windowSeconds: number, redact: (text: string) => string): Check[] {
  const { answer, text, sample } = stale;
  const id = answer.id;
  const variant = answer.accept === JSON_TYPE ? "json" : "any";
  const timestamp = answer.timestamp as number;
  if (answer.error) {
    const why = `${id}: the stale read got no answer (${answer.error})`;
    return [
      { id: `stale_${variant}_timestamp_rejection`, ok: false, text: why },
      { id: `stale_${variant}_not_auth_refusal`, ok: false, text: why },
      { id: `stale_${variant}_teaches_clock`, ok: false, text: why },
    ];
  }
  const status = answer.status as number;
  const evidence = { timestamp, windowSeconds, date: sample?.date };
  const rejection = isTimestampRejection(status, text, evidence);
  const auth = isAuthRefusal(status, text, evidence);
  const verdict = sample ? windowVerdict(timestamp, windowSeconds, sample.date) : undefined;
  const dateSays =
    sample === undefined
      ? "no usable Date, so only its words could tell"
      : `its Date is ${sample.date - timestamp} s after the signed timestamp: ${verdict} the ${windowSeconds} s window`;
  const words = isTimestampPhrase(venueMessage(text));
  const said = venueMessage(text);
  const message = said === undefined ? undefined : redact(said);
  return [
    {
      id: `stale_${variant}_timestamp_rejection`,
      ok: rejection,
      text: rejection
        ? `${id}: the stale read's ${status} is a timestamp refusal (${dateSays})`
        : `${id}: the stale read's ${status} is NOT read as a timestamp refusal (${dateSays}); skewguard would not ` +
          `re-sign it`,
    },
    {
      id: `stale_${variant}_not_auth_refusal`,
      ok: !auth,
      text: auth
        ? `${id}: the stale read's ${status} is read as an auth refusal: skewguard would raise venue.auth_failed`
        : `${id}: the stale read's ${status} is not an auth refusal`,
    },
    {
      id: `stale_${variant}_teaches_clock`,
      ok: sample !== undefined,
      text:
        sample !== undefined
          ? `${id}: the stale refusal's Date teaches the clock`
          : `${id}: the stale refusal does not teach the clock: ${whyNoSample(answer)}`,
    },
    {
      id: `stale_${variant}_words`,
      ok: null,
      text: words
        ? `${id}: its words alone say "timestamp" (${JSON.stringify(message)})`
        : `${id}: its words alone would not have told (${message === undefined ? "no message" : JSON.stringify(message)}); the Date does`,
    },
  ];
}

const STEP_TITLES: Record<string, string> = {
  "1": "1. API root, unsigned",
  "2": "2. Signed read, timestamp from the venue's Date",
  "3": `3. The same read signed ${STALE_SECONDS} s stale`,
};

/** The report as text, one answer per line, then the checks. */
export function render(report: Report): string {
  const lines: string[] = [];
  const { clock } = report;
  lines.push(
    `probe-venue: ${report.venue}, account ${report.account}, ${report.baseUrl} (timestamp window ${report.windowSeconds} s)`,
  );
  let step = "";
  for (const a of report.answers) {
    const s = a.id.slice(0, 1);
    if (s !== step) {
      step = s;
      lines.push("", STEP_TITLES[s] as string);
      if (s === "2") {
        lines.push(
          clock.offsetMs === null
            ? "   no answer taught the clock: signed with the local clock"
            : `   venue clock = local ${clock.offsetMs >= 0 ? "+" : "-"}${(Math.abs(clock.offsetMs) / 1000).toFixed(3)} s ` +
                `(±${(Number(clock.halfWidthMs) / 1000).toFixed(3)} s); timestamp ${clock.goodTimestamp}`,
        );
      }
      if (s === "3") lines.push(`   timestamp ${clock.staleTimestamp}`);
    }
    const head = `   ${a.id.padEnd(3)} GET ${a.path}  Accept: ${a.accept}`;
    if (a.error) {
      lines.push(`${head}  ->  no answer: ${a.error}`);
      continue;
    }
    lines.push(`${head}  ->  ${a.status} ${a.contentType ?? "(no content-type)"}`);
    if (a.location) lines.push(`         location: ${a.location}`);
    if (a.body !== undefined) {
      const more = (a.bodyChars ?? 0) > BODY_CHARS ? ` … (${a.bodyChars} characters)` : "";
      lines.push(`         body: ${a.body === "" ? "(empty)" : oneLine(a.body)}${more}`);
    } else {
      lines.push(`         body: not shown (${a.bodyChars} characters of your account's data)`);
    }
  }
  lines.push("", "4. Rate-limit headers (names matching rate, limit or retry)");
  const rates = Object.entries(report.rateLimitHeaders);
  if (rates.length === 0) lines.push("   none seen");
  for (const [where, value] of rates) lines.push(`   ${where}: ${value}`);

  lines.push("", "5. Date and Age");
  for (const a of report.answers) {
    if (a.error) continue;
    const form = a.date === null ? "no Date" : a.imfFixdate ? "IMF-fixdate, whole seconds" : "NOT an IMF-fixdate";
    const age = a.age === null ? "no Age" : `Age: ${a.age}`;
    const teaches = a.teachesClock ? "teaches the clock" : "does not teach the clock";
    lines.push(`   ${a.id.padEnd(3)} ${a.date === null ? "" : `${a.date}  `}${form}; ${age}; ${teaches}`);
  }

  lines.push("", "6. Expectations");
  for (const c of report.checks) lines.push(`   ${c.ok === null ? "info" : c.ok ? "ok  " : "FAIL"}  ${c.text}`);
  const failed = report.checks.filter((c) => c.ok === false);
  lines.push(
    "",
    failed.length === 0
      ? "Every expectation holds."
      : `${failed.length} expectation${failed.length === 1 ? " does" : "s do"} not hold: ${failed.map((c) => c.id).join(", ")}.`,
  );
  return lines.join("\n");
}

async function main(argv: string[]): Promise<void> {
  const options = parse(argv);
  if (options === "help") {
    console.log(USAGE);
    return;
  }
  const report = await probe(options);
  console.log(options.json ? JSON.stringify(report, null, 2) : render(report));
  if (!report.ok) process.exitCode = 1;
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => reportFailure("probe-venue", USAGE, err));
}
