// What `npm run deploy` (scripts/deploy.ts) needs to know about one environment, from wrangler's reading of
// wrangler.toml and from wrangler's answers: the queues, the D1 databases and the secret names. Pure: no I/O, and
// it only ever handles secret names, never a value.
import { parseAccounts } from "../src/core/accounts.ts";
import { parseAlerts, sinkSecretBinding } from "../src/core/alerts.ts";
import { parseHooks } from "../src/core/hooks.ts";
import { parseJobs } from "../src/core/jobs.ts";
import { accountKey } from "../src/core/venue-config.ts";
import { VENUE_PROFILES, Venues } from "../src/venues/index.ts";

/** The part of wrangler's resolved configuration (`unstable_readConfig`) that deploying reads. */
export interface DeployConfig {
  vars: Record<string, unknown>;
  queues: { producers?: { queue: string }[]; consumers?: { queue: string }[] };
  d1_databases: { binding: string; database_name?: string }[];
}

/** Every queue the environment produces to or consumes from, once each, in the order wrangler.toml names them. */
export function queueNames(config: DeployConfig): string[] {
  const named = [...(config.queues.producers ?? []), ...(config.queues.consumers ?? [])].map((q) => q.queue);
  return [...new Set(named)];
}

/** The queue names in one page of `wrangler queues list`'s table (its `name` column). */
export function queuesInTable(text: string): string[] {
  const rows = text
    .split("\n")
    .filter((line) => line.startsWith("│"))
    .map((line) => line.split("│").map((cell) => cell.trim()));
  const column = rows[0]?.indexOf("name") ?? -1;
  if (column < 0) return [];
  return rows.slice(1).flatMap((cells) => cells[column] ?? []);
}

/** The `name` of each entry of a JSON list (`wrangler d1 list --json`, `wrangler secret list`); throws otherwise. */
export function namesInJson(text: string): string[] {
  const list: unknown = JSON.parse(text);
  if (!Array.isArray(list)) throw new Error("not a list");
  return list.flatMap((db: unknown) => (typeof db === "object" && db && "name" in db ? String(db.name) : []));
}

const KEY_NAMES = ["API_KEY", "API_SECRET", "API_PASSPHRASE"];

/**
 * The secrets the environment's configuration needs (src/config.ts reads them): `RELAY_TOKENS`,
 * `CONSOLE_SESSION_SECRET`, each `ACCOUNTS` entry's three keys, the secret each `HOOKS` route, `JOBS` forward and
 * `ALERTS` sink names, and the default account's three keys of each venue that is needed: the venue the
 * environment is named after, any a route or job signs with as `default`, any whose keys are partly set; when no
 * venue and no account is needed, every venue's (a deployment must sign for one). `isSet` answers for a name. Configuration kept in a secret (not in `vars`) cannot be read here.
 */
export function requiredSecrets(config: DeployConfig, env: string | undefined, isSet: (name: string) => boolean) {
  const venues = new Venues(VENUE_PROFILES);
  const names = new Set(["RELAY_TOKENS", "CONSOLE_SESSION_SECRET"]);
  const accounts = parseAccounts(config.vars.ACCOUNTS, venues).specs.filter((spec) => spec.name !== "default");
  for (const spec of accounts) for (const key of KEY_NAMES) names.add(`${spec.secrets}${key}`);
  const signers: { venue: string; account: string }[] = [];
  for (const route of parseHooks(config.vars.HOOKS, venues).routes.values()) {
    names.add(route.secretBinding);
    signers.push(route);
  }
  const every = new Set(venues.list.flatMap((v) => [accountKey(v.name, "default"), ...accounts.map(keyOf)]));
  for (const job of parseJobs(config.vars.JOBS, every, venues).jobs) {
    if (job.forward) names.add(job.forward.secretBinding);
    signers.push(job);
  }
  for (const sink of parseAlerts(config.vars.ALERTS).items) {
    const secret = sinkSecretBinding(sink);
    if (secret !== undefined) names.add(secret);
  }
  const needed = venues.list.filter(
    (v) =>
      v.name === env ||
      signers.some((s) => s.venue === v.name && s.account === "default") ||
      KEY_NAMES.some((key) => isSet(`${v.envPrefix}${key}`)),
  );
  for (const venue of needed.length > 0 || accounts.length > 0 ? needed : venues.list) {
    for (const key of KEY_NAMES) names.add(`${venue.envPrefix}${key}`);
  }
  return [...names].sort();
}

function keyOf(spec: { venue: string; name: string }): string {
  return accountKey(spec.venue, spec.name);
}
