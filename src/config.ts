/**
 * Every setting skewguard reads, parsed once per isolate from the Worker's bindings (by src/runtime.ts): venues,
 * relay tokens, webhook routes, jobs, clock sync and retention. Everything else reads `config(env)`; nothing parses a
 * binding again. Each problem names its binding (never a value), is logged once when the isolate first parses the
 * bindings, and is listed by `GET /health`.
 */
import { log } from "./adapters/log.ts";
import { parseAccounts } from "./core/accounts.ts";
import { type AlertSink, parseAlerts, sinkSecretBinding } from "./core/alerts.ts";
import { type HookProblem, type HookRoute, parseHooks } from "./core/hooks.ts";
import { type Job, type JobProblem, parseJobs } from "./core/jobs.ts";
import { SENDERS } from "./core/senders.ts";
import { parseTokens, type RelayAccount, TokenTable } from "./core/tokens.ts";
import { accountKey, parseVenues, type VenueConfig, type VenueProblem } from "./core/venue-config.ts";
import { ConfigError } from "./lib/errors.ts";
import type { Venues } from "./venues/index.ts";

/** Active clock probes: `never`; `cold` (default) = one probe when nothing is known; `always` = also narrow. */
export type SyncMode = "never" | "cold" | "always";

/** One thing wrong with one binding; `subject` names the venue, route or job it concerns, if any. */
export interface Problem {
  binding: string;
  subject?: string;
  message: string;
  /**
   * The documented binding that names `binding`, when `binding` is the operator's own name or spells an account
   * name (a route's secret: `HOOKS`; an account's keys: `ACCOUNTS`): what unauthenticated `GET /health` shows.
   */
  via?: string;
}

export interface Config {
  /** The venues this Worker serves (src/venues/): what routes, accounts, guards and logs derive from. */
  profiles: Venues;
  /** Per venue, an account whose host settings (base URL, window) stand for the venue. */
  venues: Readonly<Record<string, VenueConfig>>;
  /** Every available account, by `accountKey(venue, name)`. */
  accounts: ReadonlyMap<string, VenueConfig>;
  /** Accounts named in the configuration that cannot sign (their entry or bindings are wrong), by `accountKey`. */
  broken: ReadonlySet<string>;
  venueProblems: VenueProblem[];
  /** The relay tokens, or undefined when `RELAY_TOKENS` is unusable (every authenticated route then answers 503). */
  tokens: TokenTable | undefined;
  /**
   * Webhook routes: those in use; the names of those whose account cannot sign (not configured, or its bindings are
   * wrong), which answer 503 at once and queue nothing; and every problem (which says why).
   */
  hooks: { routes: ReadonlyMap<string, HookRoute>; unsignable: ReadonlySet<string>; problems: HookProblem[] };
  jobs: { jobs: readonly Job[]; problems: JobProblem[] };
  /** Alert sinks (`ALERTS`), and the quiet period per (event type, subject) (`ALERTS_QUIET_SECONDS`). */
  alerts: { sinks: readonly AlertSink[]; quietSeconds: number };
  clockSync: SyncMode;
  /** Job runs, deliveries and dead letters older than this are pruned. */
  retentionDays: number;
  /** The console's session secret (`CONSOLE_SESSION_SECRET`), or undefined: the console is off. */
  consoleSecret: string | undefined;
  /** Whether order-affecting calls are recorded in the order ledger (`ORDER_LEDGER`, default on). */
  ledger: boolean;
  /** Options for every Durable Object on the request path: where to create it (`DO_LOCATION_HINT`). */
  durableObjects: DurableObjectNamespaceGetDurableObjectOptions | undefined;
  /** Every problem above, by binding. */
  problems: Problem[];
}

const DEFAULT_RETENTION_DAYS = 30;
const DEFAULT_QUIET_SECONDS = 300;

/** The value of a binding by name (secrets named in HOOKS or JOBS are not known to the type), if it is text. */
export function binding(env: object, name: string): string | undefined {
  const value: unknown = Reflect.get(env, name);
  return typeof value === "string" && value !== "" ? value : undefined;
}

function parseSyncMode(value: string | undefined, problems: Problem[]): SyncMode {
  if (value === undefined || value === "never" || value === "cold" || value === "always") return value ?? "cold";
  problems.push({ binding: "CLOCK_SYNC", message: "must be never, cold or always; using cold" });
  return "cold";
}

function parseRetention(value: string | undefined, problems: Problem[]): number {
  if (value === undefined) return DEFAULT_RETENTION_DAYS;
  if (/^\d{1,5}$/.test(value) && Number(value) > 0) return Number(value);
  problems.push({
    binding: "RUNS_RETENTION_DAYS",
    message: `must be a whole number of days; using ${DEFAULT_RETENTION_DAYS}`,
  });
  return DEFAULT_RETENTION_DAYS;
}

const LOCATION_HINTS: readonly DurableObjectLocationHint[] = [
  "wnam",
  "enam",
  "sam",
  "weur",
  "eeur",
  "apac",
  "apac-ne",
  "apac-se",
  "oc",
  "afr",
  "me",
];

function parseLocationHint(value: string | undefined, problems: Problem[]) {
  if (value === undefined) return undefined;
  const hint = LOCATION_HINTS.find((h) => h === value);
  if (hint) return { locationHint: hint };
  problems.push({ binding: "DO_LOCATION_HINT", message: `must be one of ${LOCATION_HINTS.join(", ")}; none is used` });
  return undefined;
}

function parse(env: object, profiles: Venues): Config {
  const problems: Problem[] = [];
  const listed = parseAccounts(Reflect.get(env, "ACCOUNTS"), profiles);
  for (const { account, message } of listed.problems) problems.push({ binding: "ACCOUNTS", subject: account, message });
  const { venues, accounts, problems: venueProblems } = parseVenues(env, profiles, listed.specs);
  const broken = new Set<string>();
  for (const { venue, account, binding: name, message } of venueProblems) {
    const subject = account === "default" ? venue : `${venue}:${account}`;
    problems.push({ binding: name, subject, message, ...(account === "default" ? {} : { via: "ACCOUNTS" }) });
    broken.add(accountKey(venue, account));
  }
  // An ACCOUNTS entry with a problem names an account on some venue: it is broken on every venue it could mean.
  for (const { account } of listed.problems) {
    for (const profile of profiles.list) broken.add(accountKey(profile.name, account));
  }

  let tokens: TokenTable | undefined;
  try {
    tokens = new TokenTable(parseTokens(binding(env, "RELAY_TOKENS")));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push({ binding: err.binding, message: err.message });
  }

  const parsedHooks = parseHooks(Reflect.get(env, "HOOKS"), profiles);
  const hooks = { ...parsedHooks, unsignable: new Set<string>() };
  // Routes whose account cannot sign go first, so they cannot knock out a good route in the shared-secret check.
  for (const route of [...hooks.routes.values()]) {
    if (accounts.has(accountKey(route.venue, route.account))) continue;
    hooks.routes.delete(route.name);
    const broken = venueProblems.some((p) => p.venue === route.venue && p.account === route.account);
    const message = `account ${route.account} on ${route.venue} ${broken ? "cannot sign: its bindings are wrong" : "is not configured"} (see /health); the route answers 503`;
    hooks.unsignable.add(route.name);
    hooks.problems.push({ route: route.name, message });
  }
  checkHookSecrets(env, hooks);
  for (const { route, message } of hooks.problems) problems.push({ binding: "HOOKS", subject: route, message });
  for (const route of hooks.routes.values()) {
    if (binding(env, route.secretBinding) === undefined) {
      problems.push({
        binding: route.secretBinding,
        subject: route.name,
        message: "is not set; the route answers 503",
        via: "HOOKS",
      });
    }
  }
  const jobs = parseJobs(Reflect.get(env, "JOBS"), new Set(accounts.keys()), profiles);
  for (const { job, message } of jobs.problems) problems.push({ binding: "JOBS", subject: job, message });
  for (const job of jobs.jobs) {
    if (job.forward && binding(env, job.forward.secretBinding) === undefined) {
      const message = "is not set; each run's forward is recorded as failed";
      problems.push({ binding: job.forward.secretBinding, subject: job.name, message, via: "JOBS" });
    }
  }

  const parsedAlerts = parseAlerts(Reflect.get(env, "ALERTS"));
  for (const { name, message } of parsedAlerts.problems) problems.push({ binding: "ALERTS", subject: name, message });
  const sinks = parsedAlerts.items.filter((sink) => {
    const secretBinding = sinkSecretBinding(sink);
    if (secretBinding === undefined || binding(env, secretBinding) !== undefined) return true;
    const message = "is not set; the sink is left out";
    problems.push({ binding: secretBinding, subject: sink.name, message, via: "ALERTS" });
    return false;
  });
  const quietValue = binding(env, "ALERTS_QUIET_SECONDS");
  let quietSeconds = DEFAULT_QUIET_SECONDS;
  if (quietValue !== undefined && /^\d{1,6}$/.test(quietValue)) quietSeconds = Number(quietValue);
  else if (quietValue !== undefined) {
    problems.push({
      binding: "ALERTS_QUIET_SECONDS",
      message: `must be a whole number of seconds; using ${DEFAULT_QUIET_SECONDS}`,
    });
  }

  let consoleSecret = binding(env, "CONSOLE_SESSION_SECRET");
  if (consoleSecret !== undefined && consoleSecret.length < 32) {
    problems.push({ binding: "CONSOLE_SESSION_SECRET", message: "must be at least 32 characters; the console is off" });
    consoleSecret = undefined;
  }
  const ledgerValue = binding(env, "ORDER_LEDGER");
  if (ledgerValue !== undefined && ledgerValue !== "on" && ledgerValue !== "off") {
    problems.push({ binding: "ORDER_LEDGER", message: 'must be "on" or "off"; the ledger stays on' });
  }
  const clockSync = parseSyncMode(binding(env, "CLOCK_SYNC"), problems);
  const retentionDays = parseRetention(binding(env, "RUNS_RETENTION_DAYS"), problems);
  const durableObjects = parseLocationHint(binding(env, "DO_LOCATION_HINT"), problems);
  for (const problem of problems) log("error", { event: "config", ...problem });
  return {
    profiles,
    venues,
    accounts,
    broken,
    venueProblems,
    tokens,
    hooks,
    jobs,
    alerts: { sinks, quietSeconds },
    consoleSecret,
    ledger: ledgerValue !== "off",
    clockSync,
    retentionDays,
    durableObjects,
    problems,
  };
}

/**
 * A signature that does not cover the route (Standard Webhooks: `secretPerRoute` in core/senders.ts) lets two
 * routes with one secret each accept the same signed message once: the later route is left out and reported.
 */
function checkHookSecrets(env: object, hooks: { routes: Map<string, HookRoute>; problems: HookProblem[] }): void {
  const owners = new Map<string, string>();
  for (const route of [...hooks.routes.values()]) {
    if (!SENDERS[route.sender.verify].secretPerRoute) continue;
    const secret = binding(env, route.secretBinding)?.replace(/^whsec_/, "");
    if (secret === undefined) continue;
    const owner = owners.get(secret);
    if (owner === undefined) {
      owners.set(secret, route.name);
      continue;
    }
    hooks.routes.delete(route.name);
    hooks.problems.push({
      route: route.name,
      message: `shares its secret with route ${owner}: a message signed for one would be accepted by both`,
    });
  }
}

/**
 * Every problem `GET /health` reports: the configuration's, and "no venue" when none is configured or even attempted.
 */
export function healthProblems(setup: Config): Problem[] {
  if (Object.keys(setup.venues).length > 0 || setup.venueProblems.length > 0) return setup.problems;
  const none = {
    binding: setup.profiles.list.map((p) => `${p.envPrefix}API_KEY`).join(", "),
    message: "no venue is configured; set one venue's API key, secret and passphrase",
  };
  return [...setup.problems, none];
}

/** Parses every setting of `env` for `profiles`; src/runtime.ts keeps the result for the isolate's life. */
export function parseConfig(env: object, profiles: Venues): Config {
  return parse(env, profiles);
}

/**
 * Every account the configuration names, as the relay reaches it: each venue's default, the available ones and the
 * broken ones (what `GET /orders` and the console scope a token's view of the ledger to).
 */
export function namedAccounts(setup: Config): RelayAccount[] {
  const keys = new Set([
    ...setup.profiles.list.map((p) => `${p.name}/default`),
    ...setup.accounts.keys(),
    ...setup.broken,
  ]);
  return [...keys].flatMap((key) => {
    const [venue = "", account = ""] = key.split("/");
    const profile = setup.profiles.get(venue);
    return profile ? [{ venue, account, apiPrefix: profile.apiPrefix }] : [];
  });
}
