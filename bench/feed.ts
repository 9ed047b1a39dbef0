/**
 * The market-data feed relay (docs/websocket.md), from `npm run bench`: messages per second relayed to 1, 10 and 100
 * bots on one upstream, and the latency each message adds (p50, p99) against a bot connected straight to the
 * simulator, in the same run. skewguard and the simulator run in one workerd process (test/node/local-worker.ts),
 * each on its own socket; the bots are Node's own WebSocket clients, through skewguard with the token as the
 * `bearer.<token>` subprotocol, or straight to the simulator with a SUBSCRIBE signed here.
 *
 * Latency: every MATCH frame carries the simulator's (skewed) clock when it was sent; a frame's latency is its
 * arrival in Node minus that time less the skew (one machine, one clock). The simulator streams every
 * `INTERVAL_MS` per connection, so relayed messages per second = bots × 1000 / INTERVAL_MS at most. Both clocks
 * read whole milliseconds, so a figure is ±1 ms. No budget: reported only.
 */
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { type LocalWorker, startLocal } from "../test/node/local-worker.ts";
import { simVars } from "./do-calls.ts";
import { quantile } from "./harness.ts";
import { BUILD_DIR, origin, SKEW_MS, TOKEN, tokens } from "./local.ts";

const INTERVAL_MS = 20;
const MEASURE_MS = 3_000;
export const FEED_BOTS = [1, 10, 100] as const;

export interface FeedRow {
  bots: number;
  /** Frames all bots through skewguard received per second, and what the simulator offered (bots × its rate). */
  relayedPerSecond: number;
  offeredPerSecond: number;
  p50: { direct: number; skewguard: number };
  p99: { direct: number; skewguard: number };
  /** Bots skewguard cut as too slow during the run (0 expected). */
  cut: number;
}

interface Collector {
  socket: WebSocket;
  latencies: number[];
}

function collect(socket: WebSocket): Collector {
  const c: Collector = { socket, latencies: [] };
  socket.addEventListener("message", (event) => {
    const frame = JSON.parse(String(event.data)) as { channel?: string; type?: string; time?: string };
    if (frame.channel !== "MATCH" || frame.type !== "UPDATE" || frame.time === undefined) return;
    c.latencies.push(Date.now() - (Date.parse(frame.time) - SKEW_MS));
  });
  return c;
}

function opened(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.addEventListener("open", () => resolve());
    socket.addEventListener("error", () => reject(new Error("the bench WebSocket failed")));
  });
}

const SUBSCRIBE = { type: "SUBSCRIBE", channels: ["MATCH"], product_ids: ["BTC-PERP"] };

/** A SUBSCRIBE signed with the simulator's dev INTX account and its clock, for the bot connected straight to it. */
function signedSubscribe(): string {
  const sim = simVars();
  const [key, secret, passphrase] = ["INTX_API_KEY", "INTX_API_SECRET", "INTX_API_PASSPHRASE"].map((n) => sim[n] ?? "");
  const time = String(Math.floor((Date.now() + SKEW_MS) / 1000));
  const signature = createHmac("sha256", Buffer.from(secret ?? "", "base64"))
    .update(`${time}${key}CBINTLMD${passphrase}`)
    .digest("base64");
  return JSON.stringify({ ...SUBSCRIBE, key, passphrase, time, signature });
}

async function round(local: LocalWorker, bots: number): Promise<FeedRow> {
  const relay = origin(local, "skewguard").replace(/^http/, "ws");
  const direct = new WebSocket(`${origin(local, "sim").replace(/^http/, "ws")}/ws-md`);
  const relayed = Array.from(
    { length: bots },
    () => new WebSocket(`${relay}/intx/ws`, ["skewguard", `bearer.${TOKEN}`]),
  );
  await Promise.all([direct, ...relayed].map(opened));
  const straight = collect(direct);
  const through = relayed.map(collect);
  direct.send(signedSubscribe());
  for (const socket of relayed) socket.send(JSON.stringify(SUBSCRIBE));
  await new Promise((r) => setTimeout(r, 500)); // snapshots and the upstream's start
  for (const c of [straight, ...through]) c.latencies.length = 0;
  await new Promise((r) => setTimeout(r, MEASURE_MS));
  const all = through.flatMap((c) => c.latencies);
  const health = await fetch(`${origin(local, "skewguard")}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const feeds = ((await health.json()) as { venues?: { intx?: { feeds?: { default?: { bots_cut?: number } } } } })
    .venues?.intx?.feeds?.default;
  for (const socket of [direct, ...relayed]) socket.close();
  await new Promise((r) => setTimeout(r, 300));
  return {
    bots,
    relayedPerSecond: (all.length * 1000) / MEASURE_MS,
    offeredPerSecond: (bots * 1000) / INTERVAL_MS,
    p50: { direct: quantile(straight.latencies, 0.5), skewguard: quantile(all, 0.5) },
    p99: { direct: quantile(straight.latencies, 0.99), skewguard: quantile(all, 0.99) },
    cut: feeds?.bots_cut ?? 0,
  };
}

export async function benchFeed(): Promise<FeedRow[]> {
  const local = await startLocal(
    {
      INTX_WS_URL: "wss://feed.sim.local/ws-md",
      INTX_WS_MAX_BOTS: "200",
      RELAY_TOKENS: tokens(["GET /intx/ws", "GET /health"]),
    },
    { directSockets: true, inboundLimiter: false, buildDir: BUILD_DIR },
  );
  try {
    await local.simControl({ reset: true, skew_ms: SKEW_MS, ws_interval_ms: INTERVAL_MS });
    const rows: FeedRow[] = [];
    for (const bots of FEED_BOTS) rows.push(await round(local, bots));
    return rows;
  } finally {
    await local.stop();
  }
}
