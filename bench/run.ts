/**
 * `npm run bench`: every figure from one run, as ratios against baselines measured in that same run (the machine
 * is shared and noisy). Prints one report and writes the same figures to bench/results/latest.json.
 * Budgets (signing ≥ 2× noble and ≥ 1.5× import-per-call, relay p50 overhead ≤ 1 ms, relay CPU above direct ≤ 2×
 * a bare forwarder's, bundle ≤ 40 KB, 0 rejections after the first call, ≤ 40 INTX requests in any 1 s at the venue,
 * 1 cold clock probe, and under CPU contention ≤ 1 probe and 0 timestamp refusals, Durable Object calls per order not growing with order guards) are reported as PASS/MISS lines; a
 * miss fails nothing but this report. CPU per guarded order over an unguarded one is reported, with no budget. The
 * order ledger (bench/ledger.ts): ≤ 10% more CPU per order with it on than off, and nothing measurable added to p50;
 * `GET /orders` over 100,000 rows is reported, with no budget. The market-data feed relay (bench/feed.ts): frames per
 * second to 1, 10 and 100 bots on one upstream and the latency added against a bot straight on the simulator, with
 * no budget.
 *
 * The relay figures come from workerd run in-process through Miniflare (bench/local.ts), each Worker on its own
 * socket. The former `wrangler dev` relay measurement is gone: what it added over this one was the dev server's
 * proxy hop (~9 ms at c=1, ~70 ms at c=16), which only `npm start` users pay, never a deployed Worker.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { benchBundle } from "./bundle.ts";
import { clockBench, clockTable } from "./clock.ts";
import { benchFeed } from "./feed.ts";
import { quantile, table } from "./harness.ts";
import { benchLedger, LATENCY_SPACING_MS, LEDGER_PATHS, type LedgerBenchResult } from "./ledger.ts";
import { benchLibrarySize } from "./library.ts";
import { benchLocal, GUARDS, type OrderPath, type Path } from "./local.ts";
import { benchSign } from "./sign.ts";

const started = Date.now();
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");
const budgets: string[] = [];

const sign = await benchSign();
const rate = (engine: string) => sign.find((s) => s.engine === engine)?.signsPerSecond ?? 0;
const ours = rate("skewguard");
console.log(
  table(
    "Signing throughput inside workerd (signs/s, best of 5 interleaved rounds)",
    ["engine", "signs/s", "skewguard ×"],
    sign.map((s) => [s.engine, s.signsPerSecond, (ours / s.signsPerSecond).toFixed(2)]),
  ),
);
const library = rate("library");
const floorShare = library / rate("webcrypto-floor");
budgets.push(
  `${verdict(floorShare >= 0.7)} library signer ≥ 70% of WebCrypto alone on a pre-built message: ${(100 * floorShare).toFixed(0)}%`,
);
budgets.push(`${verdict(ours >= 2 * rate("noble"))} signing ≥ 2× @noble/hashes: ${(ours / rate("noble")).toFixed(2)}×`);
budgets.push(
  `${verdict(ours >= 1.5 * rate("import-per-call"))} signing ≥ 1.5× import-per-call: ${(ours / rate("import-per-call")).toFixed(2)}×`,
);

const { live, latency, cpu, venue, contention, orders, doCalls, cpuSource } = await benchLocal();
const ms = (v: number) => v.toFixed(2);
const PATHS: Path[] = ["direct", "forwarder", "skewguard"];
console.log(
  table(
    "Relay latency in workerd, no dev server: GET /intx/api/v1/portfolios straight to the simulator, through a bare forwarding Worker, through skewguard (ms; pacing, clock probes and the venue's 40/s off)",
    ["concurrency", "requests", "path", "p50", "p99", "p50 − direct", "p99 − direct", "added p50 ÷ forwarder's"],
    latency.flatMap((l) =>
      PATHS.map((path) => [
        l.concurrency,
        l.requests,
        path,
        ms(l.p50[path]),
        ms(l.p99[path]),
        path === "direct" ? "" : ms(l.p50[path] - l.p50.direct),
        path === "direct" ? "" : ms(l.p99[path] - l.p99.direct),
        path === "skewguard" ? `${l.addedRatioP50.toFixed(2)}×` : "",
      ]),
    ),
  ),
);
const c1 = latency.find((l) => l.concurrency === 1);
budgets.push(
  `${verdict((c1?.skewguardAddedP50 ?? 99) <= 1)} relay p50 overhead ≤ 1 ms (c=1, skewguard − direct): ${c1 ? ms(c1.skewguardAddedP50) : "?"} ms (a bare forwarder adds ${c1 ? ms(c1.forwarderAddedP50) : "?"} ms)`,
);
console.log(
  table(
    `CPU of the workerd process per request (ms; ${cpu.requests} requests per path at concurrency ${cpu.concurrency}; ${cpuSource})`,
    ["path", "CPU ms/request", "above direct", "÷ forwarder's above direct"],
    PATHS.map((path) => [
      path,
      cpu.perRequestMs[path].toFixed(3),
      path === "direct" ? "" : (cpu.perRequestMs[path] - cpu.perRequestMs.direct).toFixed(3),
      path === "skewguard" ? `${cpu.ratio.toFixed(2)}×` : path === "forwarder" ? "1.00×" : "",
    ]),
  ),
);
budgets.push(
  `${verdict(cpu.ratio <= cpu.budgetRatio)} relay CPU above direct ≤ ${cpu.budgetRatio}× a bare forwarder's: ${cpu.ratio.toFixed(2)}× (${cpu.skewguardAboveDirectMs.toFixed(3)} vs ${cpu.forwarderAboveDirectMs.toFixed(3)} ms/request; rounds ${Math.min(...cpu.roundRatios).toFixed(2)}–${Math.max(...cpu.roundRatios).toFixed(2)}×)`,
);
const ORDER_PATHS: OrderPath[] = ["direct", "unguarded", "guarded"];
console.log(
  table(
    `CPU of the workerd process per order (ms; POST /intx/<account>/api/v1/orders, ${orders.requests} orders per path at concurrency ${orders.concurrency}, same method; guarded = account alpha with guards ${JSON.stringify(GUARDS)}, unguarded = account beta, direct = the same order signed in Node straight to the simulator as its account default)`,
    ["path", "CPU ms/order", "above direct", "÷ unguarded", "÷ unguarded, above direct"],
    ORDER_PATHS.map((path) => [
      path,
      orders.perOrderMs[path].toFixed(3),
      path === "direct" ? "" : (orders.perOrderMs[path] - orders.perOrderMs.direct).toFixed(3),
      path === "direct" ? "" : `${(orders.perOrderMs[path] / orders.perOrderMs.unguarded).toFixed(2)}×`,
      path === "direct"
        ? ""
        : `${((orders.perOrderMs[path] - orders.perOrderMs.direct) / orders.unguardedAboveDirectMs).toFixed(2)}×`,
    ]),
  ),
);
console.log(
  `guarded ÷ unguarded CPU per order: ${orders.ratio.toFixed(2)}× as measured, ${orders.ratioAboveDirect.toFixed(2)}× above direct (${orders.byRound.length} rounds: median ${quantile(orders.roundRatiosAboveDirect, 0.5).toFixed(2)}×, ${Math.min(...orders.roundRatiosAboveDirect).toFixed(2)}–${Math.max(...orders.roundRatiosAboveDirect).toFixed(2)}×); the guards add ${(orders.guardedAboveDirectMs - orders.unguardedAboveDirectMs).toFixed(3)} ms per order`,
);
const doRow = (what: string) => doCalls.rows.find((r) => r.what.startsWith(what));
const unguardedCalls = doRow("unguarded");
const guardedCalls = doRow("guarded (");
console.log(
  table(
    `Durable Object calls per relayed order, warm isolate, orders sent one at a time, production defaults (INTX paced at 40/s, CLOCK_SYNC=cold); goal: must not grow with guards, guarded = unguarded = 1 RateGate call per order (${doCalls.method}; the ${doCalls.warmUpOrders} warm-up orders before: RATE_GATE ${doCalls.warmUp.RATE_GATE}, CLOCK_STATE ${doCalls.warmUp.CLOCK_STATE}, HOOK_LEDGER ${doCalls.warmUp.HOOK_LEDGER})`,
    ["orders", "orders sent", "RATE_GATE", "CLOCK_STATE", "HOOK_LEDGER", "calls per order"],
    doCalls.rows.map((r) => [
      r.what,
      r.orders,
      r.calls.RATE_GATE,
      r.calls.CLOCK_STATE,
      r.calls.HOOK_LEDGER,
      r.perOrder.toFixed(2),
    ]),
  ),
);
const gatePerOrder = (r: typeof unguardedCalls) => (r ? r.calls.RATE_GATE / r.orders : Number.NaN);
budgets.push(
  `${verdict(
    !!unguardedCalls &&
      !!guardedCalls &&
      guardedCalls.perOrder <= unguardedCalls.perOrder &&
      gatePerOrder(guardedCalls) === 1 &&
      gatePerOrder(unguardedCalls) === 1,
  )} Durable Object calls per order must not grow with guards (1 RateGate call each): guarded ${guardedCalls?.perOrder.toFixed(2)} (RATE_GATE ${gatePerOrder(guardedCalls).toFixed(2)}), unguarded ${unguardedCalls?.perOrder.toFixed(2)} (RATE_GATE ${gatePerOrder(unguardedCalls).toFixed(2)})`,
);
const ledger = await benchLedger();
reportLedger(ledger);
console.log(
  table(
    "Live clock check: simulator at +37.25 s, jittered round trips, through the relay",
    ["relayed calls", "|/clock error| ms", "uncertainty ms", "timestamp rejections so far"],
    live.map((l) => [l.calls, l.errorMs, l.uncertaintyMs, l.rejections]),
  ),
);
const last = live.at(-1);
budgets.push(
  `${verdict((last?.rejections ?? 99) <= 1)} 0 rejections after the first call: ${last?.rejections} in total`,
);
const otherText =
  Object.entries(venue.other)
    .map(([k, n]) => `${k}: ${n}`)
    .join(", ") || "0";
const venueRejected =
  Object.entries(venue.venueRejected)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";
console.log(
  table(
    `Limit at the venue: ${venue.fired} concurrent relayed INTX requests (${venue.gets} GET portfolios, ${venue.posts} POST orders) to a fresh skewguard, INTX paced at 40/s, CLOCK_SYNC=cold`,
    [
      "answered by venue (POST)",
      "429 by skewguard",
      "other",
      "arrivals at venue",
      "busiest 1 s",
      "window starts",
      "first → last",
      "clock probes",
      "venue refusals",
      "wall ms",
    ],
    [
      [
        `${venue.sent} (${venue.sentPosts})`,
        venue.refused,
        otherText,
        venue.arrivals,
        venue.peak1s,
        `+${venue.peakAtMs} ms`,
        `${venue.spanMs} ms`,
        venue.probes,
        venueRejected,
        venue.wallMs.toFixed(0),
      ],
    ],
  ),
);
budgets.push(
  `${verdict(venue.peak1s <= venue.budgetPeak)} ≤ ${venue.budgetPeak} INTX requests of one key in any 1 s at the venue: ${venue.peak1s}`,
);
budgets.push(
  `${verdict(venue.probes <= venue.budgetProbes)} ≤ ${venue.budgetProbes} cold clock probe for ${venue.fired} concurrent requests: ${venue.probes}`,
);
const contentionRejected =
  Object.entries(contention.venueRejected)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ") || "none";
console.log(
  table(
    `Cold start under CPU contention: the same ${contention.fired} concurrent requests to another fresh skewguard while a second Node process spins ${contention.busyThreads} threads (every core) for the whole burst`,
    [
      "answered by venue (POST)",
      "429 by skewguard",
      "other",
      "busiest 1 s",
      "clock probes",
      "timestamp refusals",
      "venue refusals",
      "wall ms",
    ],
    [
      [
        `${contention.sent} (${contention.sentPosts})`,
        contention.refused,
        Object.entries(contention.other)
          .map(([k, n]) => `${k}: ${n}`)
          .join(", ") || "0",
        contention.peak1s,
        contention.probes,
        contention.timestampRefusals,
        contentionRejected,
        contention.wallMs.toFixed(0),
      ],
    ],
  ),
);
budgets.push(
  `${verdict(contention.probes <= contention.budgetProbes)} ≤ ${contention.budgetProbes} cold clock probe under CPU contention (${contention.fired} concurrent requests, ${contention.busyThreads} busy threads): ${contention.probes}`,
);
budgets.push(
  `${verdict(contention.timestampRefusals <= contention.budgetRefusals)} ${contention.budgetRefusals} timestamp refusals under CPU contention: ${contention.timestampRefusals}`,
);

const bundle = benchBundle();
console.log(
  table(
    "Bundle (wrangler deploy --dry-run --minify)",
    ["raw bytes", "gzip bytes", "budget"],
    [[bundle.rawBytes, bundle.gzipBytes, bundle.budgetBytes]],
  ),
);
budgets.push(
  `${verdict(bundle.rawBytes <= bundle.budgetBytes)} bundle ≤ 40 KB raw: ${(bundle.rawBytes / 1024).toFixed(1)} KB`,
);

const sizes = await benchLibrarySize();
console.log(
  table(
    "Library entry, bundled and minified by esbuild (bytes; aws4fetch bundled the same way)",
    ["what", "raw", "gzip"],
    sizes.map((r) => [r.name, r.rawBytes, r.gzipBytes]),
  ),
);
const clientSize = sizes.find((r) => r.name.includes("CoinbaseClient"))?.gzipBytes ?? 0;
const aws = sizes.find((r) => r.name === "aws4fetch")?.gzipBytes ?? 1;
budgets.push(
  `${verdict(clientSize <= 1.25 * aws)} CoinbaseClient ≤ 1.25× aws4fetch gzip: ${clientSize} vs ${aws} B (${(clientSize / aws).toFixed(2)}×)`,
);

const feed = await benchFeed();
console.log(
  table(
    "Market-data feed relay (docs/websocket.md): MATCH frames to N bots on one upstream through skewguard, and one bot straight to the simulator, in the same run (frames/s; latency ms from the simulator's send, ±1 ms)",
    [
      "bots",
      "relayed/s",
      "offered/s",
      "p50 direct",
      "p50 skewguard",
      "p99 direct",
      "p99 skewguard",
      "added p50",
      "cut",
    ],
    feed.map((f) => [
      f.bots,
      f.relayedPerSecond.toFixed(0),
      f.offeredPerSecond.toFixed(0),
      f.p50.direct,
      f.p50.skewguard,
      f.p99.direct,
      f.p99.skewguard,
      f.p50.skewguard - f.p50.direct,
      f.cut,
    ]),
  ),
);

const clock = clockBench();
console.log(`\n## Clock accuracy (npm run bench:clock; 400 simulated venues per row)\n${clockTable(clock)}`);

console.log(`\n## Budgets\n${budgets.join("\n")}`);
const machine = { cores: availableParallelism(), node: process.version, platform: process.platform };
console.log(`\n${new Date().toISOString()} · ${machine.cores} cores · ${((Date.now() - started) / 1000).toFixed(0)} s`);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("./results/latest.json", import.meta.url),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      machine,
      sign,
      latency,
      cpu,
      orders,
      doCalls,
      ledger,
      feed,
      live,
      venue,
      contention,
      bundle,
      sizes,
      clock,
      budgets,
    },
    null,
    2,
  )}\n`,
);

/** The order ledger's tables and budget lines. */
function reportLedger({ overhead: o, read, storage }: LedgerBenchResult): void {
  const range = (values: number[]) => `${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)}×`;
  console.log(
    table(
      `Order ledger on vs off, one workerd process: the same order relayed to account beta through skewguard (ORDER_LEDGER on) and a second skewguard Worker with ORDER_LEDGER=off, sharing one local D1 (storage: ${storage}), and signed in Node straight to the simulator (direct); CPU ${o.requests} orders per path at concurrency ${o.concurrency}, latency ${o.latencyRequests} one at a time, ${LATENCY_SPACING_MS} ms apart, interleaved rounds; the local D1 runs in the same process, so "on" includes the database's own work`,
      ["path", "CPU ms/order", "above direct", "p50 ms", "p99 ms"],
      LEDGER_PATHS.map((path) => [
        path,
        o.perOrderMs[path].toFixed(3),
        path === "direct" ? "" : (o.perOrderMs[path] - o.perOrderMs.direct).toFixed(3),
        o.p50[path].toFixed(2),
        o.p99[path].toFixed(2),
      ]),
    ),
  );
  console.log(
    `ledger rows of these orders: on ${o.rowsOn} of ${o.ordersOn}, off ${o.rowsOff} of ${o.ordersOff}; on ÷ off CPU per order ${o.cpuRatio.toFixed(2)}× as measured`,
  );
  budgets.push(
    `${verdict(o.cpuRatioAboveDirect <= o.budgetCpuRatio)} ledger on ≤ ${o.budgetCpuRatio}× the CPU per order of off (above direct): ${o.cpuRatioAboveDirect.toFixed(2)}× (${(o.perOrderMs.on - o.perOrderMs.off).toFixed(3)} ms more per order; rounds ${range(o.roundCpuRatios)})`,
  );
  const added = o.p50.on - o.p50.off;
  budgets.push(
    `${verdict(Math.min(...o.roundP50Ratios) <= 1 || added <= 0.1)} ledger adds nothing measurable to p50 (c=1; on is not slower in every round, or ≤ 0.1 ms): ${o.p50Ratio.toFixed(2)}× (${added.toFixed(2)} ms; rounds ${range(o.roundP50Ratios)})`,
  );
  console.log(
    table(
      `GET /orders over ${read.total} ledger rows (${read.seeded} seeded in ${(read.seedMs / 1000).toFixed(1)} s over 4 accounts, 5 actors, 80% sent / 10% refused / 10% failed); each query ${read.queries[0]?.requests ?? 0} times one at a time (ms)`,
      ["query", "rows", "p50", "p99"],
      read.queries.map((q) => [
        `${q.what}: ?${q.query.replace(/cursor=[^&]+/, "cursor=…")}`,
        q.rows,
        q.p50.toFixed(2),
        q.p99.toFixed(2),
      ]),
    ),
  );
  console.log(
    `NDJSON export of account ${read.exportAccount}: ${read.exportRows} rows in ${read.exportMs.toFixed(0)} ms, ${read.exportRowsPerSecond.toFixed(0)} rows/s (best of 2)`,
  );
}
