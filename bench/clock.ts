/**
 * `npm run bench:clock`: clock-offset accuracy of five estimators on the same simulated venues (skew up to ±1 h,
 * asymmetric jittered round trips, server processing time, random second phase). Prints p50/p95/max absolute
 * error (ms) after 1, 2, 5, 10 and 50 requests, and the share of signed timestamps that would fall outside ±5 s.
 *
 * Rows:
 *  - skewguard (passive): our estimator fed by ordinary requests at random times;
 *  - skewguard + probes: the same estimator, requests timed by our htpdate-style planner (CLOCK_SYNC=always);
 *  - ccxt: one receive-time sample (date − t_recv), never refreshed;
 *  - AWS SDK v3: the midpoint of the latest response (date − (t_send + t_recv)/2);
 *  - htpdate: timed bisection probes, the midpoint of the plain intersection of their brackets.
 */

import { nextProbeAt } from "../src/core/probe.ts";
import { type ClockEstimate, type ClockSample, OffsetEstimator, timestampFor } from "../src/lib/estimator.ts";
import { prng } from "./prng.ts";

export const COUNTS = [1, 2, 5, 10, 50] as const;

interface Venue {
  skewMs: number;
  /** One request sent at local time `t`: the sample it yields. */
  exchange(t: number): ClockSample;
}

function venue(random: () => number, rttMin: number, rttMax: number): Venue {
  const skewMs = (random() * 2 - 1) * 3_600_000;
  const base = rttMin + random() * (rttMax - rttMin);
  const asymmetry = 0.2 + random() * 0.6; // share of the round trip before the server stamps
  return {
    skewMs,
    exchange(t) {
      const jitter = () => -Math.log(1 - random()) * base * 0.15; // exponential tail
      const up = base * asymmetry + jitter();
      const processing = random() * 10;
      const down = base * (1 - asymmetry) + jitter();
      const stamp = t + up + random() * processing;
      return { tSend: t, tRecv: t + up + processing + down, date: Math.floor((stamp + skewMs) / 1000) };
    },
  };
}

type Estimator = (v: Venue, start: number, random: () => number) => (ClockEstimate | undefined)[];

function point(offsetMs: number, at: number): ClockEstimate {
  return { offsetMs, lowMs: offsetMs, highMs: offsetMs, samples: 1, updatedAt: at };
}

const N = COUNTS[COUNTS.length - 1] as number;

/** Ordinary traffic: requests at random gaps, each response fed to `feed`; returns the estimate after each. */
function passive(feed: (s: ClockSample) => ClockEstimate | undefined): Estimator {
  return (v, start, random) => {
    const out = [];
    let t = start;
    for (let i = 0; i < N; i++) {
      const s = v.exchange(t);
      out.push(feed(s));
      t = s.tRecv + 200 + random() * 2_800;
    }
    return out;
  };
}

const ESTIMATORS: Record<string, Estimator> = {
  "skewguard (passive)": (v, start, random) => {
    const est = new OffsetEstimator();
    return passive((s) => {
      est.add(s);
      return est.estimate(s.tRecv);
    })(v, start, random);
  },
  "skewguard + probes": (v, start) => {
    const est = new OffsetEstimator();
    const out = [];
    let t = start;
    let rtt = 50;
    for (let i = 0; i < N; i++) {
      const e = est.estimate(t);
      if (e) t = nextProbeAt(t, e, rtt);
      const s = v.exchange(t);
      est.add(s);
      rtt = s.tRecv - s.tSend;
      out.push(est.estimate(s.tRecv));
      t = s.tRecv + 1;
    }
    return out;
  },
  ccxt: (v, start, random) => {
    let first: ClockEstimate | undefined;
    return passive((s) => {
      first ??= point(s.date * 1000 - s.tRecv, s.tRecv);
      return first;
    })(v, start, random);
  },
  "AWS SDK v3": (v, start, random) =>
    passive((s) => point(s.date * 1000 - (s.tSend + s.tRecv) / 2, s.tRecv))(v, start, random),
  htpdate: (v, start) => {
    let low = Number.NEGATIVE_INFINITY;
    let high = Number.POSITIVE_INFINITY;
    const out = [];
    let t = start;
    let rtt = 50;
    for (let i = 0; i < N; i++) {
      if (Number.isFinite(low)) t = nextProbeAt(t, point((low + high) / 2, t), rtt);
      const s = v.exchange(t);
      const l = s.date * 1000 - s.tRecv;
      const h = s.date * 1000 + 1000 - s.tSend;
      // htpdate has no outlier vote: a disjoint bracket restarts it.
      if (l > high || h < low) [low, high] = [l, h];
      else [low, high] = [Math.max(low, l), Math.min(high, h)];
      rtt = s.tRecv - s.tSend;
      out.push(point((low + high) / 2, s.tRecv));
      t = s.tRecv + 1;
    }
    return out;
  },
};

export interface ClockRow {
  estimator: string;
  scenario: string;
  requests: number;
  p50: number;
  p95: number;
  max: number;
  outsideWindow: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** Runs every estimator on `trials` venues per scenario; the figures as rows. */
export function clockBench(trials = 400): ClockRow[] {
  const scenarios: [string, number, number][] = [
    ["rtt 10–300 ms", 10, 300],
    ["rtt 10–80 ms", 10, 80],
  ];
  const rows: ClockRow[] = [];
  for (const [scenario, rttMin, rttMax] of scenarios) {
    for (const [name, run] of Object.entries(ESTIMATORS)) {
      const errors: number[][] = COUNTS.map(() => []);
      const outside = COUNTS.map(() => 0);
      const random = prng(7);
      for (let trial = 0; trial < trials; trial++) {
        const v = venue(random, rttMin, rttMax);
        const start = 1_800_000_000_000 + random() * 1000;
        const estimates = run(v, start, prng(trial + 1));
        COUNTS.forEach((n, i) => {
          const e = estimates[n - 1];
          errors[i]?.push(Math.abs((e?.offsetMs ?? 0) - v.skewMs));
          const now = start + n * 1_500 + random() * 1000;
          if (Math.abs(timestampFor(now, e) * 1000 - (now + v.skewMs)) > 5_000) outside[i] = (outside[i] ?? 0) + 1;
        });
      }
      COUNTS.forEach((n, i) => {
        const sorted = (errors[i] as number[]).sort((a, b) => a - b);
        rows.push({
          estimator: name,
          scenario,
          requests: n,
          p50: quantile(sorted, 0.5),
          p95: quantile(sorted, 0.95),
          max: sorted[sorted.length - 1] as number,
          outsideWindow: (outside[i] as number) / trials,
        });
      });
    }
  }
  return rows;
}

/** The table, one line per estimator and scenario, `p50/p95/max` per request count. */
export function clockTable(rows: ClockRow[]): string {
  const lines = [
    `| scenario | estimator | ${COUNTS.map((n) => `${n} req p50/p95/max ms`).join(" | ")} | outside ±5 s |`,
  ];
  lines.push(`|---|---|${COUNTS.map(() => "---").join("|")}|---|`);
  const keys = [...new Set(rows.map((r) => `${r.scenario}\u0000${r.estimator}`))];
  for (const key of keys) {
    const [scenario, estimator] = key.split("\u0000") as [string, string];
    const mine = rows.filter((r) => r.scenario === scenario && r.estimator === estimator);
    const cells = mine.map((r) => `${r.p50.toFixed(0)}/${r.p95.toFixed(0)}/${r.max.toFixed(0)}`);
    const outside = Math.max(...mine.map((r) => r.outsideWindow));
    lines.push(`| ${scenario} | ${estimator} | ${cells.join(" | ")} | ${(outside * 100).toFixed(1)}% |`);
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(clockTable(clockBench()));
}
