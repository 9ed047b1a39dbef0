/**
 * `npm run --silent sign -- --venue cde|intx --method GET --url https://… [--timestamp N] [--body '…' | --body-file F]
 * [--curl]`: signs one request with skewguard's own signing core and prints the prehash and the four headers (or a
 * curl command), for whoever is debugging a 401 with their own keys. Printing the prehash and signature is this
 * tool's purpose; the Worker never does. Credentials come from the Worker's variable names, else from `.dev.vars`.
 * Exit codes: 0 signed; 2 bad arguments or missing credentials (usage on stderr).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ACCOUNT_NAME } from "../src/core/accounts.ts";
import { defaultAccount, parseVenue, type VenueConfig } from "../src/core/venue-config.ts";
import { ConfigError, SigningInputError } from "../src/lib/errors.ts";
import { importHmacKey, secretBytes } from "../src/lib/key.ts";
import { prehash, requestPath, signingMethod } from "../src/lib/prehash.ts";
import { checkTimestamp, type SigningIdentity, signHeaders } from "../src/lib/sign.ts";
import { DEFAULT_VENUES } from "../src/venues/index.ts";

const USAGE = `usage: npm run --silent sign -- --venue cde|intx [--account NAME] --method METHOD --url URL
         [--timestamp SECONDS] [--body TEXT | --body-file FILE] [--curl]

Reads INTX_API_KEY/SECRET/PASSPHRASE or CDE_API_KEY/SECRET/PASSPHRASE (and *_SECRET_ENCODING) from the
environment, else from ./.dev.vars; with --account alpha, INTX_ALPHA_API_KEY/SECRET/PASSPHRASE and so on.
Prints {"timestamp","prehash","headers"} as JSON, or a curl command.`;

/** A bad argument or a missing credential: exit 2 with the usage. */
export class UsageError extends Error {}

/** KEY=VALUE lines, with optional single or double quotes and # comments, as wrangler reads `.dev.vars`. */
export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith("#")) continue;
    let value = m[2] as string;
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    vars[m[1] as string] = value;
  }
  return vars;
}

/** The process environment over `./.dev.vars` (the environment wins). */
export function readVars(): Record<string, string | undefined> {
  let file: Record<string, string> = {};
  try {
    file = parseDevVars(readFileSync(".dev.vars", "utf8"));
  } catch {
    // no .dev.vars: the environment alone
  }
  return { ...file, ...process.env };
}

/** POSIX single-quoting: safe for any bytes a shell would otherwise interpret. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * One account's configuration, read by the Worker's own parser from `vars`: the same bindings, defaults and
 * refusals (a bad secret throws a ConfigError naming it, never its value). With no account, the venue's default.
 */
export function accountConfig(venue: string, account = "default", vars: object = readVars()): VenueConfig {
  const profile = DEFAULT_VENUES.get(venue);
  if (!profile) throw new UsageError(`--venue must be ${DEFAULT_VENUES.names.join(" or ")}`);
  if (!ACCOUNT_NAME.test(account)) throw new UsageError("--account must be an account name (a-z, 0-9, -)");
  // The Worker's prefix rule: account alpha on INTX reads INTX_ALPHA_API_KEY, …; default reads INTX_API_KEY, ….
  const spec =
    account === "default"
      ? defaultAccount(profile)
      : {
          name: account,
          venue: profile.name,
          secrets: `${profile.envPrefix}${account.toUpperCase().replaceAll("-", "_")}_`,
        };
  const config = parseVenue(vars, profile, spec);
  if (!config) throw new UsageError(`${spec.secrets}API_KEY is not set (environment or ./.dev.vars)`);
  return config;
}

/** What signs for an account: its key and passphrase, and its secret as an HMAC key. */
export async function signingIdentity(config: VenueConfig): Promise<SigningIdentity> {
  const { credentials, secretEncoding, profile } = config;
  const key = await importHmacKey(secretBytes(credentials.secret, secretEncoding, `${profile.envPrefix}API_SECRET`));
  return { apiKey: credentials.apiKey, passphrase: credentials.passphrase, key };
}

/** A CLI's failure on stderr, with its exit code: 2 (and the usage) for bad arguments or configuration, else 1. */
export function reportFailure(tool: string, usage: string, err: unknown): void {
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof SigningInputError) {
    console.error(`${tool}: ${err.message}\n\n${usage}`);
    process.exitCode = 2;
  } else {
    console.error(`${tool}: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}

async function main(argv: string[]): Promise<string> {
  let values: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        venue: { type: "string" },
        account: { type: "string" },
        method: { type: "string" },
        url: { type: "string" },
        timestamp: { type: "string" },
        body: { type: "string" },
        "body-file": { type: "string" },
        curl: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
      },
    }).values;
  }
  try {
    values = parse();
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : "bad arguments");
  }
  if (values.help) return USAGE;
  const { venue, method, url } = values;
  if (typeof venue !== "string" || !DEFAULT_VENUES.get(venue)) {
    throw new UsageError(`--venue must be ${DEFAULT_VENUES.names.join(" or ")}`);
  }
  if (!method || !/^[A-Za-z]+$/.test(method)) throw new UsageError("--method is required, e.g. GET or POST");
  if (!url || !URL.canParse(url)) throw new UsageError("--url must be an absolute URL");
  if (values.body !== undefined && values["body-file"] !== undefined) {
    throw new UsageError("give --body or --body-file, not both");
  }
  let body = values.body ?? "";
  if (values["body-file"] !== undefined) {
    try {
      body = readFileSync(values["body-file"], "utf8");
    } catch {
      throw new UsageError(`cannot read --body-file ${values["body-file"]}`);
    }
  }
  let timestamp = Math.round(Date.now() / 1000);
  if (values.timestamp !== undefined) {
    if (!/^\d+$/.test(values.timestamp)) throw new UsageError("--timestamp must be whole seconds since the epoch");
    timestamp = Number(values.timestamp);
  }
  try {
    checkTimestamp(timestamp);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }

  const identity = await signingIdentity(accountConfig(venue, values.account, readVars()));
  const headers = await signHeaders(identity, { method, url, body }, timestamp);
  if (!values.curl) {
    const text = prehash(timestamp, signingMethod(method), requestPath(url), body);
    return JSON.stringify({ timestamp, prehash: text, headers }, null, 2);
  }
  const parts = ["curl", "-sS", "-X", signingMethod(method), shellQuote(url)];
  for (const [header, value] of Object.entries(headers)) parts.push("-H", shellQuote(`${header}: ${value}`));
  if (body) parts.push("-H", shellQuote("content-type: application/json"), "--data-binary", shellQuote(body));
  return parts.join(" ");
}

// Run as a command, not when another CLI imports these helpers.
if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (out) => console.log(out),
    (err: unknown) => reportFailure("sign", USAGE, err),
  );
}
