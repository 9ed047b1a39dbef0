/**
 * Relay overhead without the dev server, and the rate limit as the venue sees it. skewguard, the exchange simulator
 * and a bare forwarding Worker (bench/worker/forward.ts, the floor) run in one workerd process started in this one
 * through Miniflare (test/node/local-worker.ts), each Worker on its own loopback socket, so Node calls each directly:
 *  - the live clock check: the error of skewguard's `/clock` estimate after 1, 10 and 100 relayed calls at a
 *    +37.25 s skew with jittered round trips, and the simulator's count of timestamp rejections (cold clock first);
 *  - latency of `GET /intx/api/v1/portfolios` through skewguard, through the forwarder, and signed in Node straight
 *    to the simulator (`GET /api/v1/portfolios`), at concurrency 1 and 16, interleaved round by round, with
 *    skewguard's pacing and clock probes off and the simulator's own 40/s limit off, so neither pacing nor 429s
 *    dominate;
 *  - CPU time of that workerd process (utime + stime, /proc/<pid>/stat) per request for the same three paths: the
 *    relayed paths include the simulator's share, which the direct path is alone;
 *  - CPU per order, the same way: `POST /intx/<account>/api/v1/orders` to account alpha, which has order guards
 *    (`GUARDS`: each order is parsed, checked, re-serialised and counted in its RateGate), and to account beta,
 *    which has none, and the same order signed in Node straight to the simulator;
 *  - the limit at the venue: a fresh skewguard (CLOCK_SYNC=cold, INTX paced at its default 40/s) gets 300 concurrent
 *    relayed INTX requests, and the simulator's record of when each reached it gives the busiest 1 s window;
 *  - the same cold burst under CPU contention: a fresh skewguard gets the 300 requests while a second Node process
 *    (bench/busy.ts) spins every core; the clock probes and timestamp refusals the simulator saw;
 *  - Durable Object calls per order, guarded and unguarded, in skewguard wrapped to count them (bench/do-calls.ts).
 * The relayed paths run without skewguard's inbound limiter (600 requests a minute per caller), except the last two.
 */
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DEV_VARS, type LocalWorker, startLocal } from "../test/node/local-worker.ts";
import { busyCores } from "./busy.ts";
import { alphaBetaVars, clientOrderId, countDoCalls, type DoCallsResult, orderBody } from "./do-calls.ts";
import { load, nowMs, quantile } from "./harness.ts";

export const TOKEN = "bench-token-0123456789abcdef";
export const AUTH = { authorization: `Bearer ${TOKEN}` };
export const SKEW_MS = 37_250;
const INTX_PATH = "/api/v1/portfolios";
export const BUILD_DIR = resolve(import.meta.dirname, "../.wrangler/bench-build");
export const ORDER_PATH = "/api/v1/orders";
/** The order guards of account alpha (docs/accounts.md "Order guards and halt"): every bench order passes them. */
export const GUARDS = {
  instruments: ["BTC-PERP"],
  max_size: { "*": "1" },
  max_notional: { "*": "100000" },
  types: ["LIMIT"],
  tif: ["GTC"],
  max_orders_per_minute: 100_000,
};
/** The simulator's INTX accounts alpha (guarded) and beta (not), as skewguard's ACCOUNTS. */
export const ACCOUNTS = JSON.stringify([
  { name: "alpha", venue: "intx", guards: GUARDS },
  { name: "beta", venue: "intx" },
]);
export const ORDER_ROUTES = ["POST /intx/alpha/api/v1/orders", "POST /intx/beta/api/v1/orders"];

export interface LiveClockResult {
  calls: number;
  errorMs: number;
  uncertaintyMs: number;
  rejections: number;
}

export type Path = "direct" | "forwarder" | "skewguard";
const PATHS: readonly Path[] = ["direct", "forwarder", "skewguard"];

export interface LatencyResult {
  concurrency: number;
  requests: number;
  /** p50 and p99 in ms, per path. */
  p50: Record<Path, number>;
  p99: Record<Path, number>;
  /** skewguard − direct and forwarder − direct, ms. */
  skewguardAddedP50: number;
  skewguardAddedP99: number;
  forwarderAddedP50: number;
  forwarderAddedP99: number;
  /** skewguard's added p50 over the forwarder's. */
  addedRatioP50: number;
  /** Requests per second through skewguard. */
  skewguardRps: number;
}

export interface CpuResult {
  requests: number;
  concurrency: number;
  /** workerd CPU ms per request, per path. */
  perRequestMs: Record<Path, number>;
  /** CPU above the direct path, ms per request. */
  skewguardAboveDirectMs: number;
  forwarderAboveDirectMs: number;
  /** skewguard's CPU above direct over the forwarder's. */
  ratio: number;
  /** The same ratio in each round, in order. */
  roundRatios: number[];
  budgetRatio: number;
}

export type OrderPath = "direct" | "unguarded" | "guarded";
const ORDER_PATHS = ["direct", "unguarded", "guarded"] as const;

export interface OrderCpuResult {
  /** Orders per path. */
  requests: number;
  concurrency: number;
  /** workerd CPU ms per order, per path: direct (signed in Node), beta through skewguard, alpha through it. */
  perOrderMs: Record<OrderPath, number>;
  unguardedAboveDirectMs: number;
  guardedAboveDirectMs: number;
  /** guarded ÷ unguarded, workerd CPU per order as measured (the simulator's share included in both). */
  ratio: number;
  /** guarded ÷ unguarded, CPU above direct (skewguard's own share, and its RateGate's). */
  ratioAboveDirect: number;
  /** `ratioAboveDirect` in each round, in order. */
  roundRatiosAboveDirect: number[];
  /** workerd CPU ms per path in each round (`requests / rounds` orders each). */
  byRound: Record<OrderPath, number>[];
}

export interface VenueLimitResult {
  fired: number;
  gets: number;
  posts: number;
  /** Requests answered by the venue (any status), of them POSTs. */
  sent: number;
  sentPosts: number;
  /** Refused with 429 `rate_limited` by skewguard's pacing: nothing was sent. */
  refused: number;
  /** Anything but a 2xx from the venue or skewguard's pacing refusal, by method, status and skewguard's code. */
  other: Record<string, number>;
  /** Signed requests of the key that reached the simulator. */
  arrivals: number;
  /** The most arrivals of the key in any 1.0 s window, when that window starts (ms after the first arrival). */
  peak1s: number;
  peakAtMs: number;
  /** First to last arrival, ms. */
  spanMs: number;
  /** Unsigned clock probes the simulator saw. */
  probes: number;
  /** The simulator's refusals, by reason (timestamp_window, rate_limit...). */
  venueRejected: Record<string, number>;
  /** From firing to the last answer, ms. */
  wallMs: number;
  budgetPeak: number;
  budgetProbes: number;
}

/** The cold burst while a second process keeps every core busy. */
export interface ContentionResult extends VenueLimitResult {
  /** Spinning threads in the busy process. */
  busyThreads: number;
  /** The simulator's timestamp refusals (`timestamp_window`). */
  timestampRefusals: number;
  budgetRefusals: number;
}

export interface LocalBenchResult {
  live: LiveClockResult[];
  latency: LatencyResult[];
  cpu: CpuResult;
  venue: VenueLimitResult;
  contention: ContentionResult;
  orders: OrderCpuResult;
  doCalls: DoCallsResult;
  /** How the CPU was measured, for the report. */
  cpuSource: string;
}

/** INTX headers signed in Node (node:crypto), for the direct and forwarder paths; one HMAC per distinct message. */
let lastSigned: { message: string; headers: Record<string, string> } | undefined;
function signedHeaders(method: string, path: string): Record<string, string> {
  const ts = String(Math.floor((Date.now() + SKEW_MS) / 1000));
  const message = `${ts}${method}${path}`;
  if (lastSigned?.message !== message) {
    const sign = createHmac("sha256", Buffer.from(DEV_VARS.INTX_API_SECRET as string, "base64"))
      .update(message)
      .digest("base64");
    lastSigned = {
      message,
      headers: {
        "cb-access-key": DEV_VARS.INTX_API_KEY as string,
        "cb-access-passphrase": DEV_VARS.INTX_API_PASSPHRASE as string,
        "cb-access-timestamp": ts,
        "cb-access-sign": sign,
      },
    };
  }
  return lastSigned.headers;
}

/** An order's INTX headers signed in Node with the simulator's account `default`, body included (one HMAC each). */
export function signedOrderHeaders(body: string): Record<string, string> {
  const ts = String(Math.floor((Date.now() + SKEW_MS) / 1000));
  const sign = createHmac("sha256", Buffer.from(DEV_VARS.INTX_API_SECRET as string, "base64"))
    .update(`${ts}POST${ORDER_PATH}${body}`)
    .digest("base64");
  return {
    "content-type": "application/json",
    "cb-access-key": DEV_VARS.INTX_API_KEY as string,
    "cb-access-passphrase": DEV_VARS.INTX_API_PASSPHRASE as string,
    "cb-access-timestamp": ts,
    "cb-access-sign": sign,
  };
}

/** Process ids of the workerd processes this Node process started. */
export function workerdChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === process.pid && name.startsWith("workerd")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** utime + stime of `pid` (all its threads), in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after "(comm) ": state is index 0, so utime (field 14) and stime (field 15) are at 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
}

export async function expectOk(response: Response, what: string): Promise<void> {
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status}`);
}

/** The origin of `name`'s own loopback socket. */
export function origin(local: LocalWorker, name: string): string {
  const url = local.direct[name];
  if (!url) throw new Error(`no direct socket for ${name}`);
  return url;
}

export function tokens(allow: string[]): string {
  return JSON.stringify([{ name: "bench", token: TOKEN, allow }]);
}

/** The live clock check, while skewguard's CDE clock is cold (CLOCK_SYNC=never: it learns from answers only). */
async function liveClock(local: LocalWorker, relay: string): Promise<LiveClockResult[]> {
  await local.simControl({ reset: true, skew_ms: SKEW_MS, up_ms: [2, 25], down_ms: [2, 15] });
  const live: LiveClockResult[] = [];
  for (let calls = 1; calls <= 100; calls++) {
    await expectOk(await fetch(`${relay}/cde/rest/v2/positions`, { headers: AUTH }), "relay");
    if (calls === 1 || calls === 10 || calls === 100) {
      const clock = (await (await fetch(`${relay}/clock`)).json()) as {
        cde: { offset_ms: number; uncertainty_ms: number };
      };
      const effects = (await local.simControl()).effects as { rejected: Record<string, number> };
      live.push({
        calls,
        errorMs: Math.abs(clock.cde.offset_ms - SKEW_MS),
        uncertaintyMs: clock.cde.uncertainty_ms,
        rejections: effects.rejected.timestamp_window ?? 0,
      });
    }
  }
  return live;
}

/**
 * The CPU method of this bench: `rounds` rounds of `perRound` requests per path at `concurrency`, the paths in a
 * rotated order each round so machine noise lands on all alike; workerd's utime + stime before and after each
 * path's share. Returns each round's CPU ms per path. `order` gives a round's order of the paths instead of the
 * rotation; `settleMs` waits that long after each share before reading the CPU, so work a Worker does after its
 * answers (`ctx.waitUntil`) counts for its own path.
 */
export async function cpuRounds<P extends string>(
  pid: number,
  paths: readonly P[],
  run: Record<P, () => Promise<void>>,
  rounds: number,
  perRound: number,
  concurrency: number,
  order: (round: number) => readonly P[] = (round) => paths.map((_, k) => paths[(round + k) % paths.length] as P),
  settleMs = 0,
): Promise<Record<P, number>[]> {
  const byRound: Record<P, number>[] = [];
  for (let round = 0; round < rounds; round++) {
    const thisRound = {} as Record<P, number>;
    for (const path of order(round)) {
      const before = cpuMs(pid);
      await load(perRound, concurrency, run[path]);
      if (settleMs > 0) await sleep(settleMs);
      thisRound[path] = cpuMs(pid) - before;
    }
    byRound.push(thisRound);
  }
  return byRound;
}

/**
 * A round's order of three paths for `cpuRounds`: each of the 6 permutations in turn, not the rotation. A rotation
 * puts each path after the same other path every round, and what one path leaves behind (garbage, deferred work)
 * lands on the next.
 */
export function everyOrder<P extends string>(paths: readonly [P, P, P]): (round: number) => readonly P[] {
  const [a, b, c] = paths;
  const permutations: P[][] = [
    [a, b, c],
    [b, c, a],
    [c, a, b],
    [a, c, b],
    [c, b, a],
    [b, a, c],
  ];
  return (round) => permutations[round % permutations.length] as P[];
}

/** The one workerd child of this process (the CPU figures need it alone). */
export function onlyWorkerd(): number {
  const [pid, ...more] = workerdChildren();
  if (pid === undefined || more.length > 0)
    throw new Error(`expected one workerd child, found ${pid === undefined ? 0 : more.length + 1}`);
  return pid;
}

async function overhead(local: LocalWorker): Promise<{ latency: LatencyResult[]; cpu: CpuResult; source: string }> {
  const pid = onlyWorkerd();
  // No simulated latency and no venue rate limit: what remains is the network stack, workerd and the Workers.
  await local.simControl({ reset: true, skew_ms: SKEW_MS, up_ms: [0, 0], down_ms: [0, 0], intx_rate_limit: null });
  const [sim, forward, skewguard] = ["sim", "forward", "skewguard"].map((name) => origin(local, name));
  const run: Record<Path, () => Promise<void>> = {
    direct: async () =>
      expectOk(await fetch(`${sim}${INTX_PATH}`, { headers: signedHeaders("GET", INTX_PATH) }), "direct"),
    forwarder: async () =>
      expectOk(await fetch(`${forward}/intx${INTX_PATH}`, { headers: signedHeaders("GET", INTX_PATH) }), "forwarder"),
    skewguard: async () => expectOk(await fetch(`${skewguard}/intx${INTX_PATH}`, { headers: AUTH }), "skewguard"),
  };

  const latency: LatencyResult[] = [];
  for (const [concurrency, count] of [
    [1, 400],
    [16, 1600],
  ] as const) {
    for (const path of PATHS) await load(100, concurrency, run[path]);
    const samples: Record<Path, number[]> = { direct: [], forwarder: [], skewguard: [] };
    let skewguardMs = 0;
    // Interleaved in 4 rounds, each in a rotated order, so machine noise lands on all three alike.
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < PATHS.length; k++) {
        const path = PATHS[(round + k) % PATHS.length] as Path;
        const { latencies, totalMs } = await load(count / 4, concurrency, run[path]);
        samples[path].push(...latencies);
        if (path === "skewguard") skewguardMs += totalMs;
      }
    }
    const p50 = Object.fromEntries(PATHS.map((p) => [p, quantile(samples[p], 0.5)])) as Record<Path, number>;
    const p99 = Object.fromEntries(PATHS.map((p) => [p, quantile(samples[p], 0.99)])) as Record<Path, number>;
    latency.push({
      concurrency,
      requests: count,
      p50,
      p99,
      skewguardAddedP50: p50.skewguard - p50.direct,
      skewguardAddedP99: p99.skewguard - p99.direct,
      forwarderAddedP50: p50.forwarder - p50.direct,
      forwarderAddedP99: p99.forwarder - p99.direct,
      addedRatioP50: (p50.skewguard - p50.direct) / (p50.forwarder - p50.direct),
      skewguardRps: (count / skewguardMs) * 1000,
    });
  }

  // CPU: the same three paths at concurrency 16, 5 interleaved rounds of 1000 requests each. Each round's ratio is
  // kept too: the spread says how far to trust the total on a shared machine.
  const rounds = 5;
  const perRound = 1000;
  const concurrency = 16;
  const byRound = await cpuRounds(pid, PATHS, run, rounds, perRound, concurrency);
  const roundRatios = byRound.map((r) => (r.skewguard - r.direct) / (r.forwarder - r.direct));
  const requests = rounds * perRound;
  const perRequestMs = Object.fromEntries(
    PATHS.map((p) => [p, byRound.reduce((sum, r) => sum + r[p], 0) / requests]),
  ) as Record<Path, number>;
  const skewguardAboveDirectMs = perRequestMs.skewguard - perRequestMs.direct;
  const forwarderAboveDirectMs = perRequestMs.forwarder - perRequestMs.direct;
  return {
    latency,
    cpu: {
      requests,
      concurrency,
      perRequestMs,
      skewguardAboveDirectMs,
      forwarderAboveDirectMs,
      ratio: skewguardAboveDirectMs / forwarderAboveDirectMs,
      roundRatios,
      budgetRatio: 2,
    },
    source: `workerd pid ${pid} (one process: skewguard, simulator, forwarder), /proc stat at ${CLOCK_TICKS} ticks/s`,
  };
}

/**
 * CPU per order, guarded and not, by the method above: the same resting BTC-PERP order (a fresh client_order_id
 * each) relayed to beta (no guards), relayed to alpha (`GUARDS`), and signed in Node straight to the simulator as
 * its account `default` (a third book, so that alpha's and beta's grow alike). Pacing, clock probes and the venue's
 * 40/s are off, as for the GETs; the RateGate is asked for every order either way (for the halt), and for alpha's it
 * also counts the order. Read the ratio with its per-round spread: on a shared machine it swings by tens of percent
 * from run to run (an A/A run, alpha unguarded too, is as far from 1.00×), far more than the guard work itself
 * (parse, check, re-serialise: about 10 µs an order in Node).
 */
async function orderCpu(local: LocalWorker): Promise<OrderCpuResult> {
  const pid = onlyWorkerd();
  await local.simControl({ reset: true, skew_ms: SKEW_MS, up_ms: [0, 0], down_ms: [0, 0], intx_rate_limit: null });
  const [sim, skewguard] = ["sim", "skewguard"].map((name) => origin(local, name));
  const run = Date.now().toString(36);
  let n = 0;
  const relayed = async (account: string, size?: string) => {
    const response = await fetch(`${skewguard}/intx/${account}${ORDER_PATH}`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body: orderBody(clientOrderId("cpu", run, n++), size),
    });
    await response.arrayBuffer();
    return response.status;
  };
  // The two accounts differ in their guards only: an order over max_size is refused on alpha, placed on beta.
  const refused = [await relayed("alpha", "2"), await relayed("beta", "2")];
  if (refused[0] !== 422 || refused[1] !== 200)
    throw new Error(`guard check: alpha answered ${refused[0]} (want 422), beta ${refused[1]} (want 200)`);
  const runs: Record<OrderPath, () => Promise<void>> = {
    direct: async () => {
      const body = orderBody(clientOrderId("cpu", run, n++));
      const headers = signedOrderHeaders(body);
      await expectOk(await fetch(`${sim}${ORDER_PATH}`, { method: "POST", headers, body }), "direct order");
    },
    unguarded: async () => {
      const status = await relayed("beta");
      if (status !== 200) throw new Error(`unguarded order: HTTP ${status}`);
    },
    guarded: async () => {
      const status = await relayed("alpha");
      if (status !== 200) throw new Error(`guarded order: HTTP ${status}`);
    },
  };
  const concurrency = 16;
  const rounds = 12;
  const perRound = 100;
  for (const path of ORDER_PATHS) await load(50, concurrency, runs[path]);
  const byRound = await cpuRounds(pid, ORDER_PATHS, runs, rounds, perRound, concurrency, everyOrder(ORDER_PATHS));
  const requests = rounds * perRound;
  const perOrderMs = Object.fromEntries(
    ORDER_PATHS.map((p) => [p, byRound.reduce((sum, r) => sum + r[p], 0) / requests]),
  ) as Record<OrderPath, number>;
  const unguardedAboveDirectMs = perOrderMs.unguarded - perOrderMs.direct;
  const guardedAboveDirectMs = perOrderMs.guarded - perOrderMs.direct;
  return {
    requests,
    concurrency,
    perOrderMs,
    unguardedAboveDirectMs,
    guardedAboveDirectMs,
    ratio: perOrderMs.guarded / perOrderMs.unguarded,
    ratioAboveDirect: guardedAboveDirectMs / unguardedAboveDirectMs,
    roundRatiosAboveDirect: byRound.map((r) => (r.guarded - r.direct) / (r.unguarded - r.direct)),
    byRound,
  };
}

/** The busiest `windowMs` of sorted times: its count and start. */
function busiestWindow(times: number[], windowMs: number): { count: number; start: number } {
  let best = { count: 0, start: times[0] ?? 0 };
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    while (end < times.length && (times[end] as number) < (times[start] as number) + windowMs) end++;
    if (end - start > best.count) best = { count: end - start, start: times[start] as number };
  }
  return best;
}

/** 300 concurrent relayed INTX requests at a fresh, paced skewguard with a cold clock. */
async function venueLimit(local: LocalWorker, { reset = true } = {}): Promise<VenueLimitResult> {
  if (reset) await local.simControl({ reset: true });
  const relay = origin(local, "skewguard");
  const fired = 300;
  const run = Date.now().toString(36);
  const t0 = nowMs();
  const outcomes = await Promise.all(
    Array.from({ length: fired }, async (_, i) => {
      const post = i % 6 === 5;
      const response = await fetch(`${relay}/intx/api/v1/${post ? "orders" : "portfolios"}`, {
        method: post ? "POST" : "GET",
        headers: post ? { ...AUTH, "content-type": "application/json" } : AUTH,
        body: post
          ? JSON.stringify({
              client_order_id: clientOrderId("burst", run, i),
              side: "BUY",
              size: "0.001",
              type: "LIMIT",
              tif: "GTC",
              price: "50000",
              instrument: "BTC-PERP",
            })
          : undefined,
      });
      // skewguard's own answers are {"error": {"code", ...}}; anything else came from the venue.
      const code = /^\{"error":\{"code":"([a-z_]+)"/.exec(await response.text())?.[1];
      return { post, status: response.status, code };
    }),
  );
  const wallMs = nowMs() - t0;
  const state = await local.simControl();
  const effects = state.effects as {
    probes: number;
    rejected: Record<string, number>;
    arrivals: Record<string, number[]>;
  };
  const times = [...(effects.arrivals[DEV_VARS.INTX_API_KEY as string] ?? [])].sort((a, b) => a - b);
  const peak = busiestWindow(times, 1000);
  const refused = (o: (typeof outcomes)[number]) => o.status === 429 && o.code === "rate_limited";
  const other: Record<string, number> = {};
  for (const o of outcomes) {
    if (refused(o) || (o.code === undefined && o.status >= 200 && o.status < 300)) continue;
    const key = `${o.post ? "POST" : "GET"} ${o.status}${o.code ? ` ${o.code}` : " from the venue"}`;
    other[key] = (other[key] ?? 0) + 1;
  }
  return {
    fired,
    gets: outcomes.filter((o) => !o.post).length,
    posts: outcomes.filter((o) => o.post).length,
    sent: outcomes.filter((o) => o.code === undefined).length,
    sentPosts: outcomes.filter((o) => o.code === undefined && o.post).length,
    refused: outcomes.filter(refused).length,
    other,
    arrivals: times.length,
    peak1s: peak.count,
    peakAtMs: peak.start - (times[0] ?? 0),
    spanMs: (times.at(-1) ?? 0) - (times[0] ?? 0),
    probes: effects.probes,
    venueRejected: effects.rejected,
    wallMs,
    budgetPeak: 40,
    budgetProbes: 1,
  };
}

/** Production defaults (INTX paced at 40/s, CLOCK_SYNC=cold, the inbound limiter on), fresh: a cold clock. */
function startPaced(): Promise<LocalWorker> {
  return startLocal(
    { RELAY_TOKENS: tokens(["* /intx/api/v1/*"]), CLOCK_SYNC: "cold" },
    { directSockets: true, buildDir: BUILD_DIR, migrateD1: true },
  );
}

/**
 * The cold burst of `venueLimit` at a fresh skewguard while a second Node process spins every core for the whole
 * burst. The busy process is killed at the end, whatever happens.
 */
export async function benchContention(): Promise<ContentionResult> {
  const local = await startPaced();
  try {
    await local.simControl({ reset: true });
    const busy = await busyCores();
    let burst: VenueLimitResult;
    try {
      burst = await venueLimit(local, { reset: false });
    } finally {
      await busy.stop();
    }
    return {
      ...burst,
      busyThreads: busy.threads,
      timestampRefusals: burst.venueRejected.timestamp_window ?? 0,
      budgetRefusals: 0,
    };
  } finally {
    await local.stop();
  }
}

export async function benchLocal(): Promise<LocalBenchResult> {
  if (workerdChildren().length > 0) throw new Error("a workerd child is already running; the CPU figure needs one");
  // One workerd process: skewguard (no pacing, no clock probes, no inbound limiter), the simulator, the forwarder.
  // Accounts alpha (guarded) and beta (not) are there for the order figures; the GETs go to the default account.
  const accounts = { ACCOUNTS, ...alphaBetaVars() };
  const quiet = await startLocal(
    {
      RELAY_TOKENS: tokens(["GET /intx/api/v1/*", "GET /cde/*", ...ORDER_ROUTES]),
      INTX_RATE_LIMIT_PER_SECOND: "off",
      CLOCK_SYNC: "never",
      ...accounts,
    },
    {
      workers: [{ name: "forward", config: "bench/worker/forward.wrangler.toml" }],
      directSockets: true,
      inboundLimiter: false,
      buildDir: BUILD_DIR,
      // The schema, so that each order's ledger row is written as in production (an empty D1 fails every write).
      migrateD1: true,
    },
  );
  let live: LiveClockResult[];
  let measured: Awaited<ReturnType<typeof overhead>>;
  let orders: OrderCpuResult;
  try {
    live = await liveClock(quiet, origin(quiet, "skewguard"));
    measured = await overhead(quiet);
    orders = await orderCpu(quiet);
  } finally {
    await quiet.stop();
  }
  // A fresh start with the production defaults: INTX paced at 40/s, CLOCK_SYNC=cold, the inbound limiter on.
  const paced = await startPaced();
  let venue: VenueLimitResult;
  try {
    venue = await venueLimit(paced);
  } finally {
    await paced.stop();
  }
  // The same, on another fresh skewguard, while a second process keeps both cores busy.
  const contention = await benchContention();
  // Production defaults again, in skewguard wrapped to count its Durable Object calls (a workerd of its own).
  const doCalls = await countDoCalls(BUILD_DIR, { RELAY_TOKENS: tokens(ORDER_ROUTES), ...accounts }, TOKEN);
  return {
    live,
    latency: measured.latency,
    cpu: measured.cpu,
    venue,
    contention,
    orders,
    doCalls,
    cpuSource: measured.source,
  };
}
