/**
 * `npm run bench`: every figure from one run, as ratios against baselines measured in that same run (the machine
 * is shared and noisy). Prints one report and writes the same figures to bench/results/latest.json.
 * Budgets (signing ≥ 2× noble and ≥ 1.5× import-per-call, relay p50 overhead ≤ 1 ms, bundle ≤ 40 KB, 0 rejections
 * after the first call) are reported as PASS/MISS lines; a miss fails nothing but this report.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { benchBundle } from "./bundle.ts";
import { clockBench, clockTable } from "./clock.ts";
import { table } from "./harness.ts";
import { benchRelay } from "./relay.ts";
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
budgets.push(`${verdict(ours >= 2 * rate("noble"))} signing ≥ 2× @noble/hashes: ${(ours / rate("noble")).toFixed(2)}×`);
budgets.push(
  `${verdict(ours >= 1.5 * rate("import-per-call"))} signing ≥ 1.5× import-per-call: ${(ours / rate("import-per-call")).toFixed(2)}×`,
);

const { overhead, live } = await benchRelay();
console.log(
  table(
    "Relay overhead: the same signed GET straight to the simulator vs through skewguard (wrangler dev, ms)",
    [
      "concurrency",
      "direct p50",
      "direct p99",
      "relay p50",
      "relay p99",
      "p50 overhead",
      "p50 ratio",
      "dev hop p50",
      "net p50 overhead",
      "relay req/s",
    ],
    overhead.map((o) => [
      o.concurrency,
      o.directP50.toFixed(2),
      o.directP99.toFixed(2),
      o.relayP50.toFixed(2),
      o.relayP99.toFixed(2),
      o.overheadP50.toFixed(2),
      o.ratioP50.toFixed(2),
      o.hopP50.toFixed(2),
      o.netOverheadP50.toFixed(2),
      o.relayRps.toFixed(0),
    ]),
  ),
);
const c1 = overhead.find((o) => o.concurrency === 1);
budgets.push(
  `${verdict((c1?.overheadP50 ?? 99) <= 1)} relay p50 overhead ≤ 1 ms (c=1): ${c1?.overheadP50.toFixed(2)} ms`,
);
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

const clock = clockBench();
console.log(`\n## Clock accuracy (npm run bench:clock; 400 simulated venues per row)\n${clockTable(clock)}`);

console.log(`\n## Budgets\n${budgets.join("\n")}`);
const machine = { cores: availableParallelism(), node: process.version, platform: process.platform };
console.log(`\n${new Date().toISOString()} · ${machine.cores} cores · ${((Date.now() - started) / 1000).toFixed(0)} s`);
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("./results/latest.json", import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), machine, sign, overhead, live, bundle, clock, budgets }, null, 2)}\n`,
);
