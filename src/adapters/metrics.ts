/**
 * What `GET /metrics` shows beyond this isolate's counters (docs/metrics.md): counts from D1 (the order ledger,
 * deliveries, dead letters, alerts), which every isolate sees alike; each venue's clock as this isolate signs with
 * it; and each account's market-data feed from its Durable Object. Each source fails on its own: a failed one is
 * left out and counted in `skewguard_metrics_source_up`.
 */
import type { Family, Sample } from "../core/metrics.ts";
import { halfWidthMs } from "../lib/estimator.ts";
import { config, runtime } from "../runtime.ts";
import { preparedClock } from "./client.ts";
import { errorName, log } from "./log.ts";
import { feedObject, type UpstreamState } from "./market-feed.ts";

type Row = Record<string, string | number | null>;

const gauge = (name: string, help: string, samples: Sample[]): Family => ({ name, type: "gauge", help, samples });

/** A row's columns as labels (`labels`) and its `n` as the value. */
const samplesOf = (rows: Row[], labels: readonly string[]): Sample[] =>
  rows.map((row) => ({
    labels: Object.fromEntries(labels.map((label) => [label, String(row[label] ?? "")])),
    value: Number(row.n),
  }));

const STORED = [
  {
    sql: "SELECT venue, account, kind, outcome, COUNT(*) AS n FROM orders GROUP BY venue, account, kind, outcome",
    name: "skewguard_orders",
    help: "Rows in the order ledger (D1, within the retention), by venue, account, request kind and outcome.",
    labels: ["venue", "account", "kind", "outcome"],
  },
  {
    sql: "SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state",
    name: "skewguard_deliveries",
    help: "Durable deliveries (D1, within the retention) by state.",
    labels: ["state"],
  },
  {
    sql: `SELECT l.route AS route, COUNT(*) AS n FROM deliveries d JOIN dead_letters l ON l.delivery_id = d.id
          WHERE d.state = 'dead' GROUP BY l.route`,
    name: "skewguard_dead_letters",
    help: "Dead letters waiting for a re-drive (D1), by webhook route.",
    labels: ["route"],
  },
  {
    sql: "SELECT type, COUNT(*) AS n FROM alerts GROUP BY type",
    name: "skewguard_alerts",
    help: "Alerts recorded (D1, within the retention; those a quiet period held back are not rows), by type.",
    labels: ["type"],
  },
] as const;

/** The D1 counts, in one batch. */
async function stored(env: Env): Promise<Family[]> {
  const results = await env.DB.batch<Row>(STORED.map((s) => env.DB.prepare(s.sql)));
  return STORED.map((s, i) => gauge(s.name, s.help, samplesOf(results[i]?.results ?? [], s.labels)));
}

/** Each configured venue's clock offset and uncertainty, in seconds, as this isolate would sign now. */
async function clocks(env: Env): Promise<Family[]> {
  const offsets: Sample[] = [];
  const widths: Sample[] = [];
  for (const venue of Object.keys(config(env).venues)) {
    const estimate = (await preparedClock(env, venue))?.estimator.estimate(Date.now());
    if (!estimate) continue;
    offsets.push({ labels: { venue }, value: estimate.offsetMs / 1000 });
    widths.push({ labels: { venue }, value: halfWidthMs(estimate) / 1000 });
  }
  return [
    gauge("skewguard_clock_offset_seconds", "Venue clock minus local clock, as this isolate estimates it.", offsets),
    gauge("skewguard_clock_uncertainty_seconds", "Half-width of that estimate (the worst error).", widths),
  ];
}

const UPSTREAM_STATES: readonly UpstreamState[] = ["idle", "connecting", "open", "backoff"];

/** Each feed account's bots and upstream state (1 for the state it is in, 0 for the others). */
async function feeds(env: Env): Promise<Family[]> {
  const bots: Sample[] = [];
  const upstream: Sample[] = [];
  const withFeed = [...config(env).accounts.values()].filter((a) => a.feed);
  const statuses = await Promise.all(withFeed.map((a) => feedObject(env, a.profile.name, a.account).status()));
  withFeed.forEach((a, i) => {
    const status = statuses[i];
    const labels = { venue: a.profile.name, account: a.account };
    if (!status) return;
    bots.push({ labels, value: status.bots });
    for (const state of UPSTREAM_STATES)
      upstream.push({ labels: { ...labels, state }, value: +(status.upstream === state) });
  });
  return [
    gauge("skewguard_feed_bots", "Bots connected to an account's market-data feed (its Durable Object).", bots),
    gauge("skewguard_feed_upstream", "The feed's upstream WebSocket state: 1 for the state it is in.", upstream),
  ];
}

/** Every family: this isolate's counters, then each source's, a failed source left out and marked down. */
export async function collectMetrics(env: Env): Promise<Family[]> {
  const sources = { d1: stored, clock: clocks, feed: feeds };
  const up: Sample[] = [];
  const families = runtime(env).metrics.families();
  for (const [source, read] of Object.entries(sources)) {
    try {
      families.push(...(await read(env)));
      up.push({ labels: { source }, value: 1 });
    } catch (err) {
      log("error", { event: "metrics_source_failed", source, error: errorName(err) });
      up.push({ labels: { source }, value: 0 });
    }
  }
  const help = "1 when the source's metrics are shown, 0 when reading it failed (logged as metrics_source_failed).";
  return [...families, gauge("skewguard_metrics_source_up", help, up)];
}
