// `npm run deploy [-- --env intx|cde]`: puts skewguard on Cloudflare in one command, idempotently (docs/deploying.md):
// creates the queues wrangler.toml names, creates the D1 database by its name if the account lacks it (wrangler
// links the binding to it on deploy), applies the migrations, checks that every secret the configuration needs is
// set, then deploys. Each step runs `wrangler` from PATH (npm puts node_modules/.bin first) and the first failure
// stops the run with what to do. It names secrets, never prints a value.
import { spawnSync } from "node:child_process";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { type DeployConfig, namesInJson, queueNames, queuesInTable, requiredSecrets } from "./deploy-plan.ts";

const LOGIN = "Not logged in? Run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID).";
const MAX_QUEUE_PAGES = 50;

/** Stops the run: `message` says what failed and what to do. */
class Stop extends Error {}

/** The `--env` argument; anything else is a usage error. */
function envOption(): string | undefined {
  try {
    return parseArgs({ options: { env: { type: "string" } } }).values.env;
  } catch (err) {
    console.error(`usage: npm run deploy [-- --env <name>]: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}

const env = envOption();
const envArgs = env === undefined ? [] : ["--env", env];
const where = env === undefined ? "" : ` --env ${env}`;

/** Runs `wrangler args`, shown as it runs; its output is captured (without colours) when `capture`, else shown. */
function spawnWrangler(args: string[], capture: boolean) {
  console.log(`> wrangler ${args.join(" ")}`);
  const childEnv = {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    ...(capture ? { NO_COLOR: "1", FORCE_COLOR: "0" } : {}),
  };
  const result = spawnSync("wrangler", args, { encoding: "utf8", env: childEnv, stdio: capture ? "pipe" : "inherit" });
  if (result.error)
    throw new Stop(`cannot run wrangler (${result.error.message}): run this through \`npm run deploy\`.`);
  return { status: result.status, stdout: result.stdout ?? "", output: `${result.stdout ?? ""}${result.stderr ?? ""}` };
}

/** Runs `wrangler args` and returns its output (when `capture`); a failure stops the run, saying `todo`. */
function wrangler(args: string[], todo: string, capture = true): string {
  const result = spawnWrangler(args, capture);
  if (result.status === 0) return result.stdout;
  process.stderr.write(result.output);
  throw new Stop(`\`wrangler ${args.join(" ")}\` failed. ${todo} ${LOGIN}`);
}

function readConfig(): DeployConfig & { name?: string } {
  try {
    return unstable_readConfig({ config: "wrangler.toml", env });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Stop(`wrangler.toml cannot be read${env === undefined ? "" : ` for --env ${env}`}: ${why}`);
  }
}

/** (a) Creates each queue the account lacks; `wrangler queues list` is paged, so it reads until all are found. */
function ensureQueues(names: string[]): void {
  const found = new Set<string>();
  for (let page = 1; page <= MAX_QUEUE_PAGES && names.some((n) => !found.has(n)); page++) {
    const listed = queuesInTable(wrangler(["queues", "list", "--page", String(page)], "Check the account's Queues."));
    for (const name of listed) found.add(name);
    if (listed.length === 0) break;
  }
  for (const name of names.filter((n) => !found.has(n))) {
    wrangler(["queues", "create", name], `Create it by hand (\`npx wrangler queues create ${name}\`), then re-run.`);
  }
}

/** (b) Creates each D1 database the account lacks, by its `database_name`; deploying links the binding to it. */
function ensureDatabases(databases: DeployConfig["d1_databases"]): void {
  if (databases.length === 0) return;
  const listing = wrangler(["d1", "list", "--json"], "Check the account's D1 databases.");
  let existing: string[];
  try {
    existing = namesInJson(listing);
  } catch {
    throw new Stop("`wrangler d1 list --json` did not answer a list of databases; check the wrangler version.");
  }
  for (const db of databases) {
    const name = db.database_name;
    if (name === undefined) throw new Stop(`wrangler.toml's D1 binding ${db.binding}${where} needs a database_name.`);
    if (existing.includes(name)) continue;
    wrangler(["d1", "create", name], `Create it by hand (\`npx wrangler d1 create ${name}\`), then re-run.`);
  }
}

/** (c) Applies each database's new migrations, before the code that needs them is deployed. */
function applyMigrations(databases: DeployConfig["d1_databases"]): void {
  for (const db of databases) {
    const args = ["d1", "migrations", "apply", db.binding, "--remote", ...envArgs];
    wrangler(args, "Fix the migration, or the database it names, then re-run; nothing was deployed.", false);
  }
}

/** (d) The secret names already set; none when the Worker does not exist yet (`secret put` creates it). */
function setSecrets(workerName: string | undefined): Set<string> {
  const result = spawnWrangler(["secret", "list", ...envArgs], true);
  const absent = result.output.includes(`Worker "${workerName}"`) && result.output.includes("not found");
  if (result.status !== 0 && absent) return new Set();
  if (result.status !== 0) {
    process.stderr.write(result.output);
    throw new Stop(`\`wrangler secret list${where}\` failed. ${LOGIN}`);
  }
  try {
    return new Set(namesInJson(result.stdout));
  } catch {
    throw new Stop(`\`wrangler secret list${where}\` did not answer a list of secrets; check the wrangler version.`);
  }
}

/** (d) Stops, naming each missing secret with the line that sets it, unless every secret needed is set. */
function checkSecrets(config: DeployConfig & { name?: string }): void {
  const set = setSecrets(config.name);
  const missing = requiredSecrets(config, env, (name) => set.has(name)).filter((name) => !set.has(name));
  if (missing.length === 0) return;
  const lines = missing.map((name) => `  npx wrangler secret put ${name}${where}`);
  throw new Stop(
    `${missing.length} secret(s) the configuration needs are not set. Set each, then re-run:\n${lines.join("\n")}`,
  );
}

function main(): void {
  const config = readConfig();
  ensureQueues(queueNames(config));
  ensureDatabases(config.d1_databases);
  applyMigrations(config.d1_databases);
  checkSecrets(config);
  wrangler(["deploy", ...envArgs], "Read wrangler's message above, fix it, then re-run.", false);
  console.log(`deployed ${config.name ?? "skewguard"}${where}`);
}

try {
  main();
} catch (err) {
  if (!(err instanceof Stop)) throw err;
  console.error(`deploy stopped: ${err.message}`);
  process.exitCode = 1;
}
