/**
 * The order ledger's figures (issue 26, "Measured"; npm run bench, after bench/local.ts):
 *  - CPU and p50 latency of a relayed order with the ledger on, against the same order with it off, in one run: two
 *    skewguard Workers in one workerd process (test/node/local-worker.ts `twins`), the same script and bindings but
 *    `ORDER_LEDGER=off` on the second, sharing one D1 database (migrated). The same resting BTC-PERP order goes to the
 *    simulator's account beta through each, and signed in Node straight to the simulator (direct), in interleaved
 *    rounds; CPU is workerd's utime + stime by pid (bench/local.ts `cpuRounds`), each share read 50 ms after its last
 *    answer so the ledger's write (`ctx.waitUntil`) counts for the ledger's path. Locally D1 is SQLite in a Durable
 *    Object of that same workerd process (its storage on tmpfs where there is one), so the `on` figures include the
 *    database's own work, which on Cloudflare runs in D1, not in the Worker: an upper bound;
 *  - `GET /orders` over 100,000 seeded rows: the first page, a page deep through the cursor, a filtered page, each
 *    p50/p99 over 20 requests one at a time, and the NDJSON export of one account's rows (rows/s).
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { encodeCursor } from "../src/core/ledger.ts";
import type { LocalD1, LocalWorker } from "../test/node/local-worker.ts";
import { startLocal } from "../test/node/local-worker.ts";
import { alphaBetaVars, clientOrderId, orderBody } from "./do-calls.ts";
import { load, nowMs, quantile } from "./harness.ts";
import {
  ACCOUNTS,
  AUTH,
  BUILD_DIR,
  cpuRounds,
  everyOrder,
  expectOk,
  ORDER_PATH,
  ORDER_ROUTES,
  onlyWorkerd,
  origin,
  SKEW_MS,
  signedOrderHeaders,
  tokens,
} from "./local.ts";

export type LedgerPath = "direct" | "off" | "on";
export const LEDGER_PATHS = ["direct", "off", "on"] as const;
const OFF_WORKER = "skewguard-off";

export interface LedgerOverheadResult {
  /** Orders per path, for the CPU figure; at `concurrency`. */
  requests: number;
  concurrency: number;
  /** workerd CPU ms per order, per path. */
  perOrderMs: Record<LedgerPath, number>;
  /** on ÷ off, workerd CPU per order as measured (the simulator's share in both). */
  cpuRatio: number;
  /** on ÷ off, CPU above direct (skewguard's own share). */
  cpuRatioAboveDirect: number;
  /** `cpuRatioAboveDirect` in each round. */
  roundCpuRatios: number[];
  /** Orders per path for the latency figure, one at a time. */
  latencyRequests: number;
  p50: Record<LedgerPath, number>;
  p99: Record<LedgerPath, number>;
  /** on ÷ off p50, overall and in each round. */
  p50Ratio: number;
  roundP50Ratios: number[];
  /** Ledger rows of the bench's orders: written by the `on` Worker, and by the `off` one (must be 0). */
  rowsOn: number;
  rowsOff: number;
  ordersOn: number;
  ordersOff: number;
  budgetCpuRatio: number;
}

export interface TimedQuery {
  what: string;
  query: string;
  requests: number;
  rows: number;
  p50: number;
  p99: number;
}

export interface LedgerReadResult {
  seeded: number;
  seedMs: number;
  /** Rows in the table when read (the seeded and the order figure's own). */
  total: number;
  queries: TimedQuery[];
  exportAccount: string;
  exportRows: number;
  exportMs: number;
  exportRowsPerSecond: number;
}

export interface LedgerBenchResult {
  overhead: LedgerOverheadResult;
  read: LedgerReadResult;
  /** Where the Workers' storage (D1 included) was: tmpfs, or Miniflare's default on disk. */
  storage: string;
}

/**
 * Storage on tmpfs where there is one: Miniflare's default temporary storage is on disk, and the local D1 (SQLite in a
 * Durable Object of the same workerd process) would time the disk's syncs too, which Cloudflare's D1 does elsewhere.
 */
function scratchDir(): string | undefined {
  return existsSync("/dev/shm") ? mkdtempSync("/dev/shm/skewguard-lbench-") : undefined;
}

/** skewguard with the ledger on and its twin with it off, the simulator, one workerd; D1 migrated. */
function startTwins(persistDir: string | undefined): Promise<LocalWorker> {
  return startLocal(
    {
      RELAY_TOKENS: tokens([...ORDER_ROUTES, "GET /intx/api/v1/*", "GET /cde/*", "GET /orders"]),
      INTX_RATE_LIMIT_PER_SECOND: "off",
      CLOCK_SYNC: "never",
      ACCOUNTS,
      ...alphaBetaVars(),
    },
    {
      twins: [{ name: OFF_WORKER, vars: { ORDER_LEDGER: "off" } }],
      directSockets: true,
      inboundLimiter: false,
      migrateD1: true,
      persistDir,
      buildDir: BUILD_DIR,
    },
  );
}

export async function benchLedger(): Promise<LedgerBenchResult> {
  const dir = scratchDir();
  try {
    const local = await startTwins(dir);
    try {
      const storage = dir ? "tmpfs, /dev/shm" : "Miniflare's default, on disk";
      return { overhead: await ledgerOverhead(local), read: await ledgerRead(local), storage };
    } finally {
      await local.stop();
    }
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The order to beta through `worker`, a fresh client_order_id each (`tag` tells the paths' rows apart). */
function relayedOrder(local: LocalWorker, worker: string, tag: string, run: string): () => Promise<void> {
  const url = `${origin(local, worker)}/intx/beta${ORDER_PATH}`;
  let n = 0;
  return async () => {
    const body = orderBody(clientOrderId(tag, run, n++));
    const init = { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body };
    await expectOk(await fetch(url, init), `order through ${worker}`);
  };
}

function orderRuns(local: LocalWorker, run: string): Record<LedgerPath, () => Promise<void>> {
  const sim = origin(local, "sim");
  let n = 0;
  return {
    direct: async () => {
      const body = orderBody(clientOrderId("ldd", run, n++));
      const init = { method: "POST", headers: signedOrderHeaders(body), body };
      await expectOk(await fetch(`${sim}${ORDER_PATH}`, init), "direct order");
    },
    off: relayedOrder(local, OFF_WORKER, "ldf", run),
    on: relayedOrder(local, "skewguard", "ldn", run),
  };
}

const perPath = (f: (p: LedgerPath) => number) =>
  Object.fromEntries(LEDGER_PATHS.map((p) => [p, f(p)])) as Record<LedgerPath, number>;

/**
 * How far apart the latency figure's orders are sent: an order's own latency, not a queue behind the previous one's
 * background work. The ledger's write runs after the answer (`waitUntil`); locally the D1 it writes to is SQLite in
 * this same workerd thread, so back to back the next order would wait for it there, as it never does for D1 proper.
 */
export const LATENCY_SPACING_MS = 20;

/** `n` runs one at a time, `spacingMs` apart: each run's latency, ms. */
async function spaced(n: number, run: () => Promise<void>, spacingMs: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let i = 0; i < n; i++) {
    const started = performance.now();
    await run();
    latencies.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, spacingMs));
  }
  return latencies;
}

/** p50 latency per path, one order at a time (`LATENCY_SPACING_MS` apart), interleaved rounds in every order. */
async function orderLatency(runs: Record<LedgerPath, () => Promise<void>>, rounds: number, perRound: number) {
  const samples: Record<LedgerPath, number[]> = { direct: [], off: [], on: [] };
  const roundP50Ratios: number[] = [];
  const order = everyOrder(LEDGER_PATHS);
  for (let round = 0; round < rounds; round++) {
    const p50: Partial<Record<LedgerPath, number>> = {};
    for (const path of order(round)) {
      const latencies = await spaced(perRound, runs[path], LATENCY_SPACING_MS);
      samples[path].push(...latencies);
      p50[path] = quantile(latencies, 0.5);
    }
    roundP50Ratios.push((p50.on ?? Number.NaN) / (p50.off ?? Number.NaN));
  }
  return { samples, roundP50Ratios };
}

/** Ledger rows whose client_order_id starts with `tag`. */
async function rowsTagged(db: LocalD1, tag: string): Promise<number> {
  const row = await db
    .prepare("SELECT COUNT(*) AS n FROM orders WHERE client_order_id LIKE ?")
    .bind(`${tag}-%`)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

async function ledgerOverhead(local: LocalWorker): Promise<LedgerOverheadResult> {
  const pid = onlyWorkerd();
  await local.simControl({ reset: true, skew_ms: SKEW_MS, up_ms: [0, 0], down_ms: [0, 0], intx_rate_limit: null });
  const runs = orderRuns(local, Date.now().toString(36));
  const concurrency = 16;
  const rounds = 12;
  const perRound = 100;
  for (const path of LEDGER_PATHS) await load(50, concurrency, runs[path]);
  const byRound = await cpuRounds(pid, LEDGER_PATHS, runs, rounds, perRound, concurrency, everyOrder(LEDGER_PATHS), 50);
  const requests = rounds * perRound;
  const perOrderMs = perPath((p) => byRound.reduce((sum, r) => sum + r[p], 0) / requests);
  const latencyRounds = 6;
  const latencyPerRound = 50;
  const { samples, roundP50Ratios } = await orderLatency(runs, latencyRounds, latencyPerRound);
  const p50 = perPath((p) => quantile(samples[p], 0.5));
  const db = await local.d1();
  const ordersPerPath = 50 + requests + latencyRounds * latencyPerRound;
  return {
    requests,
    concurrency,
    perOrderMs,
    cpuRatio: perOrderMs.on / perOrderMs.off,
    cpuRatioAboveDirect: (perOrderMs.on - perOrderMs.direct) / (perOrderMs.off - perOrderMs.direct),
    roundCpuRatios: byRound.map((r) => (r.on - r.direct) / (r.off - r.direct)),
    latencyRequests: latencyRounds * latencyPerRound,
    p50,
    p99: perPath((p) => quantile(samples[p], 0.99)),
    p50Ratio: p50.on / p50.off,
    roundP50Ratios,
    rowsOn: await rowsTagged(db, "ldn"),
    rowsOff: await rowsTagged(db, "ldf"),
    ordersOn: ordersPerPath,
    ordersOff: ordersPerPath,
    budgetCpuRatio: 1.1,
  };
}

const SEEDED = 100_000;
/** One statement: `SEEDED` rows over four accounts (alpha, beta, INTX default, CDE default), five actors and
 * sources, outcomes 80% sent, 10% refused, 10% failed, one every 26 s back from now (about 30 days). */
const SEED = `INSERT INTO orders (id, at, source, actor, venue, account, method, path, kind, client_order_id, instrument,
    side, size, price, type, tif, outcome, status, refusal, venue_order_id, attempts, latency_ms)
  WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?1 - 1),
  r(i, a, s, o) AS (SELECT i, i % 4, (i / 4) % 5, (i / 20) % 10 FROM n)
  SELECT printf('seed-%07d', i), ?2 - i * 26000,
    CASE s WHEN 2 THEN 'hook' WHEN 3 THEN 'delivery' WHEN 4 THEN 'job' ELSE 'relay' END,
    CASE s WHEN 0 THEN 'bench' WHEN 1 THEN 'desk' WHEN 4 THEN 'rebalance' ELSE 'tv-alerts' END,
    CASE a WHEN 3 THEN 'cde' ELSE 'intx' END,
    CASE a WHEN 0 THEN 'alpha' WHEN 1 THEN 'beta' ELSE 'default' END,
    CASE WHEN i % 9 = 0 THEN 'DELETE' ELSE 'POST' END,
    CASE a WHEN 3 THEN '/rest/v2/orders' ELSE '/api/v1/orders' END,
    CASE WHEN i % 9 = 0 THEN 'cancel' ELSE 'create' END,
    printf('seed%016d', i), 'BTC-PERP', CASE i % 2 WHEN 0 THEN 'BUY' ELSE 'SELL' END, '0.001', '50000', 'LIMIT', 'GTC',
    CASE o WHEN 0 THEN 'refused' WHEN 1 THEN 'failed' ELSE 'sent' END,
    CASE o WHEN 0 THEN 422 WHEN 1 THEN 503 ELSE 200 END,
    CASE o WHEN 0 THEN 'max_size: 2 > 1' END,
    CASE WHEN o > 1 THEN printf('v%07d', i) END, 1, 5 + i % 40
  FROM r`;

async function seed(db: LocalD1): Promise<number> {
  const t0 = nowMs();
  await db.prepare(SEED).bind(SEEDED, Date.now()).run();
  return nowMs() - t0;
}

/** A cursor `rows` rows down the newest-first order (what following `next_cursor` that far would give). */
async function deepCursor(db: LocalD1, rows: number): Promise<string> {
  const row = await db
    .prepare("SELECT at, id FROM orders ORDER BY at DESC, id DESC LIMIT 1 OFFSET ?")
    .bind(rows)
    .first<{ at: number; id: string }>();
  if (!row) throw new Error(`no row ${rows} deep`);
  return encodeCursor(row);
}

/** p50/p99 of `requests` one at a time of `GET /orders?query`, after two unmeasured ones. */
async function timeQuery(base: string, what: string, query: string, requests = 20): Promise<TimedQuery> {
  let rows = 0;
  const get = async () => {
    const response = await fetch(`${base}/orders?${query}`, { headers: AUTH });
    if (!response.ok) throw new Error(`GET /orders?${query}: HTTP ${response.status}`);
    rows = ((await response.json()) as { orders: unknown[] }).orders.length;
  };
  await load(2, 1, get);
  const { latencies } = await load(requests, 1, get);
  return { what, query, requests, rows, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

/** The whole NDJSON export of `account`'s rows: lines read and the time from request to the last byte. */
async function timeExport(base: string, account: string): Promise<{ rows: number; ms: number }> {
  const t0 = nowMs();
  const response = await fetch(`${base}/orders?account=${account}`, {
    headers: { ...AUTH, accept: "application/x-ndjson" },
  });
  if (!response.ok) throw new Error(`export: HTTP ${response.status}`);
  const text = await response.text();
  return { rows: text.split("\n").filter((line) => line !== "").length, ms: nowMs() - t0 };
}

async function ledgerRead(local: LocalWorker): Promise<LedgerReadResult> {
  const db = await local.d1();
  const seedMs = await seed(db);
  const total = (await db.prepare("SELECT COUNT(*) AS n FROM orders").first<{ n: number }>())?.n ?? 0;
  const base = origin(local, "skewguard");
  const cursor = await deepCursor(db, 50_000);
  const queries = [
    await timeQuery(base, "first page", "limit=100"),
    await timeQuery(base, "a page 50,000 rows deep (cursor)", `limit=100&cursor=${cursor}`),
    await timeQuery(base, "filtered: one account's refusals", "account=alpha&outcome=refused&limit=100"),
  ];
  const exportAccount = "alpha";
  const exports = [await timeExport(base, exportAccount), await timeExport(base, exportAccount)];
  const best = exports.reduce((a, b) => (b.ms < a.ms ? b : a));
  return {
    seeded: SEEDED,
    seedMs,
    total,
    queries,
    exportAccount,
    exportRows: best.rows,
    exportMs: best.ms,
    exportRowsPerSecond: (best.rows / best.ms) * 1000,
  };
}
