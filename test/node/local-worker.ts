// skewguard and the exchange simulator in workerd, in this process, through Miniflare: no `wrangler dev` proxy in
// between, so Node clients (ccxt) and benchmarks talk to the Worker as it runs. Both Workers are bundled the way
// `wrangler deploy` bundles them; skewguard gets the bindings its wrangler.toml declares, and every outbound fetch
// it makes goes to the simulator, whatever the venue base URL says. A benchmark may add Workers to the same workerd
// process (they get the same outbound rule), run a second skewguard with other settings beside the first (`twins`),
// and give each Worker its own loopback socket (`LocalOptions`).
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import { convertV4MiniflareOptions, type Json, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const ROOT = resolve(import.meta.dirname, "../..");
const BIN = resolve(ROOT, "node_modules/.bin");

/** The simulator's dev credentials (sim/wrangler.toml), which skewguard signs with here. */
export const DEV_VARS: Record<string, string> = {
  INTX_API_KEY: "dev-intx-key",
  INTX_API_SECRET: "c2tld2d1YXJkLWRldi1zZWNyZXQtbm90LWZvci1wcm9kdWN0aW9uLXVzZSE=",
  INTX_API_PASSPHRASE: "dev-intx-passphrase",
  CDE_API_KEY: "dev-cde-key",
  CDE_API_SECRET: "c2tld2d1YXJkLWNkZS1kZXYtc2VjcmV0LWZvci10aGUtc2ltdWxhdG9y",
  CDE_API_PASSPHRASE: "dev-cde-passphrase",
  INTX_BASE_URL: "https://intx.sim.local",
  CDE_BASE_URL: "https://cde.sim.local",
};

const bundled = new Map<string, string>();

/**
 * Bundles the Worker of wrangler config `config` into `outdir`, once per process (a benchmark starts several
 * instances); returns the path of its entry module.
 */
function bundle(config: string, outdir: string): string {
  const done = bundled.get(`${config} ${outdir}`);
  if (done) return done;
  execFileSync(resolve(BIN, "wrangler"), ["deploy", "--dry-run", "--outdir", outdir, "-c", config], {
    cwd: ROOT,
    stdio: "ignore",
    // node_modules/.bin first, so wrangler runs on the pinned Node 24 whatever the caller's PATH says.
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false" },
  });
  const main = tomlValue(resolve(ROOT, config), "main") ?? "index.ts";
  const entry = resolve(outdir, `${basename(main, extname(main))}.js`);
  bundled.set(`${config} ${outdir}`, entry);
  return entry;
}

/** `KEY = "value"` lines of a wrangler.toml's [vars]. */
function tomlVars(path: string): Record<string, string> {
  const text = readFileSync(path, "utf8");
  return Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*) = "([^"]*)"$/gm)].map((m) => [m[1], m[2]]));
}

/** One top-level `key = "value"` of a wrangler.toml. */
function tomlValue(path: string, key: string): string | undefined {
  return new RegExp(`^${key} = "([^"]*)"$`, "m").exec(readFileSync(path, "utf8"))?.[1];
}

export interface LocalOptions {
  /** More Workers for the same workerd process, each bundled from its wrangler config (a path from the repo root).
   * Like skewguard, every outbound fetch they make goes to the simulator. */
  workers?: { name: string; config: string }[];
  /** Give every Worker its own loopback socket (Miniflare's `unsafeDirectSockets`), listed in `direct`: requests
   * to it reach that Worker with no entry Worker in between. */
  directSockets?: boolean;
  /** `false` leaves out skewguard's inbound limiter (600 requests a minute per caller), which would stop a load
   * test. Default: kept, as wrangler.toml declares it. */
  inboundLimiter?: boolean;
  /** Where to bundle, a directory inside the repo (Miniflare names modules from the repo root); default the repo's
   * `.wrangler` build directories. A benchmark bundles elsewhere, so that it does not race a test run. */
  buildDir?: string;
  /** A directory to keep the Workers' storage in (Durable Objects, KV, D1...: Miniflare's
   * `resourcePersistencePath`), so that a new instance on the same directory finds it. Default: none, each instance
   * starts empty and its storage goes with it. */
  persistDir?: string;
  /** More skewguard Workers in the same workerd process, each on its own socket: the same script and bindings plus
   * `vars`. They share skewguard's D1 database, have Durable Objects of their own and consume no queue (Miniflare
   * allows one consumer per queue; skewguard keeps them). */
  twins?: { name: string; vars: Record<string, string> }[];
  /** Apply migrations/*.sql to the D1 database before returning (an instance otherwise starts with no tables, and
   * every D1 write fails). Default: not applied. */
  migrateD1?: boolean;
}

/** The D1 database of a local instance, as Miniflare hands it to Node. */
export type LocalD1 = Awaited<ReturnType<Miniflare["getD1Database"]>>;

export interface LocalWorker {
  /** skewguard's origin, e.g. http://127.0.0.1:51234 */
  url: string;
  /** With `directSockets`: each Worker's own origin, by name (`skewguard`, `sim` and any added Worker). */
  direct: Record<string, string>;
  /** Every log line either Worker wrote, oldest first. */
  logs: string[];
  /** POSTs a change to the simulator's /_sim/control (or GETs it) and returns its state. */
  simControl(change?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** skewguard's D1 database (binding `DB`), shared with its twins. */
  d1(): Promise<LocalD1>;
  stop(): Promise<void>;
}

/** Starts both Workers; `vars` are skewguard's settings on top of the simulator's dev credentials. */
/**
 * skewguard's Miniflare worker options, as wrangler derives them from wrangler.toml, and its bindings: every name a
 * developer's .dev.vars may hold bound empty (so it cannot leak in), then the simulator's dev credentials, then `vars`.
 */
export function skewguardOptions(vars: Record<string, string>) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(resolve(ROOT, "wrangler.toml"));
  const { modulesRules: _, ...options } = workerOptions;
  const devNames = [...readFileSync(resolve(ROOT, ".dev.vars.example"), "utf8").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)];
  const bindings: Record<string, Json> = {
    ...(options.bindings as Record<string, Json> | undefined),
    ...Object.fromEntries(devNames.map((m) => [m[1], ""])),
    ...DEV_VARS,
    ...vars,
  };
  return { options, bindings };
}

export async function startLocal(vars: Record<string, string>, local: LocalOptions = {}): Promise<LocalWorker> {
  const logs: string[] = [];
  const build = (name: string, fallback: string) => (local.buildDir ? resolve(local.buildDir, name) : fallback);
  const skewguard = bundle("wrangler.toml", build("skewguard", resolve(ROOT, ".wrangler/local-build")));
  // Not sim/.wrangler/build, which vitest.config.ts bundles for the workers tests and each of their files loads.
  const sim = bundle("sim/wrangler.toml", build("sim", resolve(ROOT, ".wrangler/local-build-sim")));
  const extra = (local.workers ?? []).map((w) => ({
    name: w.name,
    scriptPath: bundle(w.config, build(w.name, resolve(ROOT, ".wrangler", `local-build-${w.name}`))),
    compatibilityDate: tomlValue(resolve(ROOT, w.config), "compatibility_date") ?? "2026-10-30",
  }));
  const { options, bindings } = skewguardOptions(vars);
  if (local.inboundLimiter === false) delete options.ratelimits;
  const { queueConsumers: _, ...twinOptions } = options;
  const twins = (local.twins ?? []).map((t) => ({ name: t.name, bindings: { ...bindings, ...t.vars } }));
  const sockets = local.directSockets ? { unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }] } : {};
  // The worker options wrangler derives are in Miniflare's v4 shape, which this Miniflare takes through a converter.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      ...(local.persistDir ? { resourcePersistencePath: local.persistDir } : {}),
      // The Workers' own log lines (one JSON line per request) go to `logs`, not to the terminal.
      handleStructuredLogs: ({ message }) => {
        logs.push(message);
      },
      workers: [
        {
          ...options,
          ...sockets,
          name: "skewguard",
          modules: true,
          scriptPath: skewguard,
          bindings,
          outboundService: "sim",
        },
        ...twins.map((t) => ({
          ...twinOptions,
          ...sockets,
          ...t,
          modules: true,
          scriptPath: skewguard,
          outboundService: "sim",
        })),
        { ...simWorkerOptions(sim), ...sockets },
        ...extra.map((w) => ({ ...w, ...sockets, modules: true, outboundService: "sim" })),
      ],
    }),
  );
  const url = await readyOrDisposed(mf);
  const direct: Record<string, string> = {};
  if (local.directSockets) {
    for (const name of ["skewguard", "sim", ...twins.map((t) => t.name), ...extra.map((w) => w.name)]) {
      direct[name] = (await mf.unsafeGetDirectURL(name)).origin;
    }
  }
  const simWorker = (await mf.getWorker("sim")) as unknown as { fetch: typeof fetch };
  if (local.migrateD1) await migrate(await mf.getD1Database("DB"));
  return {
    url,
    direct,
    logs,
    d1: () => mf.getD1Database("DB"),
    async simControl(change) {
      const init = change ? { method: "POST", body: JSON.stringify(change) } : {};
      const response = await simWorker.fetch("https://sim.local/_sim/control", init);
      return (await response.json()) as Record<string, unknown>;
    },
    stop: () => mf.dispose(),
  };
}

/** Applies migrations/*.sql in order, as `wrangler d1 migrations apply` would (they hold no trigger: a statement
 * ends with `;` at the end of a line). */
export async function migrate(db: LocalD1): Promise<void> {
  const dir = resolve(ROOT, "migrations");
  const files = readdirSync(dir).filter((f) => f.endsWith(".sql"));
  for (const file of files.sort()) {
    const sql = readFileSync(resolve(dir, file), "utf8")
      .split("\n")
      .filter((line) => !line.trim().startsWith("--"))
      .join("\n");
    const statements = sql.split(/;\s*$/m).filter((s) => s.trim() !== "");
    await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/** The simulator as a Miniflare worker, from its bundle at `scriptPath`, with its own wrangler.toml [vars]. */
function simWorkerOptions(scriptPath: string) {
  return {
    name: "sim",
    modules: true,
    scriptPath,
    compatibilityDate: "2026-10-30",
    compatibilityFlags: ["nodejs_compat"],
    bindings: tomlVars(resolve(ROOT, "sim/wrangler.toml")),
  };
}

/** The origin once workerd is up; a workerd that failed to start is disposed of, or Miniflare's loopback server
 * would keep the process alive. */
async function readyOrDisposed(mf: Miniflare): Promise<string> {
  try {
    return (await mf.ready).origin;
  } catch (err) {
    await mf.dispose().catch(() => {});
    throw err;
  }
}

export interface LocalSim {
  /** The simulator's origin, e.g. http://127.0.0.1:51234: any client may sign requests to it. */
  url: string;
  /** POSTs a change to the simulator's /_sim/control (or GETs it) and returns its state. */
  simControl(change?: Record<string, unknown>): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Starts the simulator alone on a loopback port, for clients outside workerd (a CLI as a child process). */
export async function startSim(): Promise<LocalSim> {
  const sim = bundle("sim/wrangler.toml", resolve(ROOT, ".wrangler/local-build-sim"));
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      handleStructuredLogs: () => {},
      workers: [simWorkerOptions(sim)],
    }),
  );
  const url = await readyOrDisposed(mf);
  return {
    url,
    async simControl(change) {
      const init = change ? { method: "POST", body: JSON.stringify(change) } : {};
      const response = await fetch(`${url}/_sim/control`, init);
      return (await response.json()) as Record<string, unknown>;
    },
    stop: () => mf.dispose(),
  };
}
