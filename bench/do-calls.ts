/**
 * Durable Object calls per relayed order, with and without order guards (npm run bench, from bench/local.ts).
 *
 * How they are counted: workerd and Miniflare report no Durable Object invocations, and the simulator never sees
 * them, so skewguard runs here wrapped by bench/worker/count-do.ts: the same src/ code and the same bindings
 * (wrangler.toml's, as test/node/local-worker.ts derives them), but every method call on a stub of RATE_GATE,
 * CLOCK_STATE or HOOK_LEDGER is counted inside the isolate, and `GET /_bench/do-calls` reads the counts. This is a
 * separate workerd process, started after the CPU figures are taken (which need skewguard unwrapped, alone).
 *
 * Settings are the production defaults (INTX paced at 40/s, CLOCK_SYNC=cold, the inbound limiter on), with the two
 * INTX accounts the simulator knows besides `default`: alpha with guards, beta without. Each account first gets
 * a few orders so the isolate is warm (clock seeded from CLOCK_STATE, probed once, keys imported); then the counts
 * are reset and `ORDERS` orders go to each account one after another, and a few orders that break a guard go to
 * alpha (refused before any Durable Object is asked).
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { migrate, skewguardOptions } from "../test/node/local-worker.ts";

const ROOT = resolve(import.meta.dirname, "..");
const ORDERS = 20;
const REFUSED = 5;

export type DoNamespace = "RATE_GATE" | "CLOCK_STATE" | "HOOK_LEDGER";

export interface DoCallsRow {
  /** What was sent: `unguarded (beta)`, `guarded (alpha)`, `guarded, refused by max_size (alpha)`. */
  what: string;
  orders: number;
  /** Calls counted, by namespace, for all `orders` together. */
  calls: Record<DoNamespace, number>;
  /** All namespaces together, per order. */
  perOrder: number;
}

export interface DoCallsResult {
  rows: DoCallsRow[];
  /** Calls counted while warming up (cold isolate, first orders), for comparison. */
  warmUp: Record<DoNamespace, number>;
  warmUpOrders: number;
  method: string;
}

/**
 * Bundles the wrapper with esbuild, in-process: wrangler bundles with esbuild too, but takes seconds more to start,
 * and this bundle is only counted, never timed. Returns its entry.
 */
async function bundleWrapper(buildDir: string): Promise<string> {
  const outfile = resolve(buildDir, "count-do/count-do.js");
  await build({
    entryPoints: [resolve(ROOT, "bench/worker/count-do.ts")],
    outfile,
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*"],
    target: "es2024",
    logLevel: "silent",
  });
  return outfile;
}

/** `KEY = "value"` lines of the simulator's [vars] (its settings and every account's dev credentials). */
export function simVars(): Record<string, string> {
  const text = readFileSync(resolve(ROOT, "sim/wrangler.toml"), "utf8");
  return Object.fromEntries([...text.matchAll(/^([A-Z][A-Z0-9_]*) = "([^"]*)"$/gm)].map((m) => [m[1], m[2]]));
}

/** The simulator's credentials for INTX accounts alpha and beta, under the names skewguard reads. */
export function alphaBetaVars(): Record<string, string> {
  const sim = simVars();
  return Object.fromEntries(Object.entries(sim).filter(([k]) => /^INTX_(ALPHA|BETA)_API_/.test(k)));
}

/**
 * A client_order_id in one of INTX's forms, which the simulator holds to: 20 letters, digits and `-`, unique for each
 * `(tag, run, n)` (the number is padded with `-`, which none of the parts contains).
 */
export function clientOrderId(tag: string, run: string, n: number): string {
  const id = `${tag}-${run}-${n}`;
  if (id.length > 20 || /[^A-Za-z0-9]/.test(tag + run)) throw new Error(`client order id too long: ${id}`);
  return id.padEnd(20, "-");
}

/** An order for the simulator's BTC-PERP that rests (bid below the ask), inside the bench's guards. */
export function orderBody(clientOrderId: string, size = "0.001"): string {
  return JSON.stringify({
    client_order_id: clientOrderId,
    side: "BUY",
    size,
    type: "LIMIT",
    tif: "GTC",
    price: "50000",
    instrument: "BTC-PERP",
  });
}

/**
 * Counts Durable Object calls per order. `buildDir` must hold the simulator's bundle (`sim/index.js`), which
 * startLocal wrote earlier in the same run; `vars` are skewguard's settings (ACCOUNTS, RELAY_TOKENS...).
 */
export async function countDoCalls(
  buildDir: string,
  vars: Record<string, string>,
  token: string,
): Promise<DoCallsResult> {
  const simScript = resolve(buildDir, "sim/index.js");
  if (!existsSync(simScript)) throw new Error(`${simScript} is missing: startLocal bundles it first`);
  const script = await bundleWrapper(buildDir);
  const { options, bindings } = skewguardOptions(vars);
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      handleStructuredLogs: () => {},
      workers: [
        { ...options, name: "skewguard", modules: true, scriptPath: script, bindings, outboundService: "sim" },
        {
          name: "sim",
          modules: true,
          scriptPath: simScript,
          compatibilityDate: "2026-10-30",
          compatibilityFlags: ["nodejs_compat"],
          bindings: simVars(),
        },
      ],
    }),
  );
  try {
    const origin = (await mf.ready).origin;
    // The schema, so that each order's ledger row is written as in production (an empty D1 would fail every write).
    await migrate(await mf.getD1Database("DB"));
    const sim = (await mf.getWorker("sim")) as unknown as { fetch: typeof fetch };
    await sim.fetch("https://sim.local/_sim/control", {
      method: "POST",
      body: JSON.stringify({ reset: true, up_ms: [0, 0], down_ms: [0, 0] }),
    });
    const run = Date.now().toString(36);
    let n = 0;
    const order = async (account: string, size?: string): Promise<number> => {
      const response = await fetch(`${origin}/intx/${account}/api/v1/orders`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: orderBody(clientOrderId("do", run, n++), size),
      });
      await response.arrayBuffer();
      return response.status;
    };
    const counts = async (): Promise<Record<DoNamespace, number>> =>
      (await (await fetch(`${origin}/_bench/do-calls?reset`)).json()) as Record<DoNamespace, number>;
    const expect = (status: number, wanted: number, what: string) => {
      if (status !== wanted) throw new Error(`DO call count: ${what} answered ${status}, expected ${wanted}`);
    };

    const warmUpOrders = 3;
    for (let i = 0; i < warmUpOrders; i++) {
      expect(await order("beta"), 200, "a warm-up order to beta");
      expect(await order("alpha"), 200, "a warm-up order to alpha");
    }
    const warmUp = await counts();
    const rows: DoCallsRow[] = [];
    const measure = async (what: string, account: string, count: number, status: number, size?: string) => {
      for (let i = 0; i < count; i++) expect(await order(account, size), status, what);
      const calls = await counts();
      const total = calls.RATE_GATE + calls.CLOCK_STATE + calls.HOOK_LEDGER;
      rows.push({ what, orders: count, calls, perOrder: total / count });
    };
    await measure("unguarded (beta)", "beta", ORDERS, 200);
    await measure("guarded (alpha)", "alpha", ORDERS, 200);
    await measure("guarded, refused by max_size (alpha)", "alpha", REFUSED, 422, "2");
    return {
      rows,
      warmUp,
      warmUpOrders: 2 * warmUpOrders,
      method:
        "skewguard wrapped by bench/worker/count-do.ts: each method call on a RATE_GATE/CLOCK_STATE/HOOK_LEDGER stub counted in the isolate",
    };
  } finally {
    await mf.dispose();
  }
}
