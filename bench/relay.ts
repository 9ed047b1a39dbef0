/**
 * Relay overhead and the live clock check, against the simulator under `wrangler dev`, in one run:
 *  - the same signed GET sent straight to the simulator and through skewguard, at concurrency 1 and 16;
 *  - the error of skewguard's `/clock` estimate after 1, 10 and 100 relayed calls at a +37.25 s skew with
 *    jittered round trips, and the simulator's count of timestamp rejections.
 */
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load, quantile, startWrangler } from "./harness.ts";

const TOKEN = "bench-token-0123456789abcdef";
const CDE = {
  key: "dev-cde-key",
  secret: "c2tld2d1YXJkLWNkZS1kZXYtc2VjcmV0LWZvci10aGUtc2ltdWxhdG9y",
  passphrase: "dev-cde-passphrase",
};
const SKEW_MS = 37_250;

export interface RelayResult {
  concurrency: number;
  directP50: number;
  directP99: number;
  relayP50: number;
  relayP99: number;
  overheadP50: number;
  ratioP50: number;
  /** `GET /health` through skewguard: the wrangler dev hop (its proxy and workerd) with almost no work in it. */
  hopP50: number;
  /** relay − direct − hop: what signing, auth, the clock and forwarding cost, without the dev server's hop. */
  netOverheadP50: number;
  relayRps: number;
}

export interface LiveClockResult {
  calls: number;
  errorMs: number;
  uncertaintyMs: number;
  rejections: number;
}

/** A request signed in Node (node:crypto), for the "straight to the simulator" baseline. */
function signedDirect(simUrl: string, path: string, skewMs: number): Request {
  const ts = String(Math.round((Date.now() + skewMs) / 1000));
  const sign = createHmac("sha256", Buffer.from(CDE.secret, "base64")).update(`${ts}GET${path}`).digest("base64");
  return new Request(`${simUrl}${path}`, {
    headers: {
      "cb-access-key": CDE.key,
      "cb-access-passphrase": CDE.passphrase,
      "cb-access-timestamp": ts,
      "cb-access-sign": sign,
    },
  });
}

async function control(simUrl: string, change?: object): Promise<Record<string, unknown>> {
  const r = await fetch(`${simUrl}/_sim/control`, change ? { method: "POST", body: JSON.stringify(change) } : {});
  return (await r.json()) as Record<string, unknown>;
}

export async function benchRelay(): Promise<{ overhead: RelayResult[]; live: LiveClockResult[] }> {
  const sim = await startWrangler(["-c", "sim/wrangler.toml", "--inspector-port", "9331"], 8798, "/_sim/control");
  // skewguard with its own vars file: the simulator's dev credentials and a bench token (no .dev.vars needed).
  const dir = mkdtempSync(join(tmpdir(), "skewguard-bench-"));
  const vars = join(dir, "bench.vars");
  writeFileSync(
    vars,
    [
      `CDE_BASE_URL=${sim.url}`,
      `CDE_API_KEY=${CDE.key}`,
      `CDE_API_SECRET=${CDE.secret}`,
      `CDE_API_PASSPHRASE=${CDE.passphrase}`,
      "CLOCK_SYNC=never",
      `RELAY_TOKENS='[{"name":"bench","token":"${TOKEN}","allow":["GET /cde/*"]}]'`,
    ].join("\n"),
  );
  // The inbound limiter (600 requests a minute per IP and token) would stop a load test: the bench runs a copy of
  // wrangler.toml without it. Everything else is the real configuration.
  const root = new URL("..", import.meta.url).pathname;
  const config = join(dir, "wrangler.toml");
  writeFileSync(
    config,
    readFileSync(join(root, "wrangler.toml"), "utf8")
      .replace(/^\[\[ratelimits\]\]\n(?:[^\n[]+\n)+/m, "")
      .replace('main = "src/index.ts"', `main = "${join(root, "src/index.ts")}"`)
      .replaceAll('migrations_dir = "migrations"', `migrations_dir = "${join(root, "migrations")}"`),
  );
  const relay = await startWrangler(
    ["-c", config, "--env-file", vars, "--persist-to", join(dir, "state"), "--inspector-port", "9332"],
    8797,
    "/health",
  );
  try {
    const path = "/rest/v2/positions";
    const viaRelay = async () => {
      const r = await fetch(`${relay.url}/cde${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`relay: HTTP ${r.status}`);
    };

    // Live clock check first, while skewguard's clock is cold.
    await control(sim.url, { reset: true, skew_ms: SKEW_MS, up_ms: [2, 25], down_ms: [2, 15] });
    const live: LiveClockResult[] = [];
    for (let calls = 1; calls <= 100; calls++) {
      await viaRelay();
      if (calls === 1 || calls === 10 || calls === 100) {
        const clock = (await (await fetch(`${relay.url}/clock`)).json()) as {
          cde: { offset_ms: number; uncertainty_ms: number };
        };
        const effects = ((await control(sim.url)).effects ?? {}) as { rejected: Record<string, number> };
        live.push({
          calls,
          errorMs: Math.abs(clock.cde.offset_ms - SKEW_MS),
          uncertaintyMs: clock.cde.uncertainty_ms,
          rejections: effects.rejected.timestamp_window ?? 0,
        });
      }
    }

    // Overhead: no simulated latency, so what remains is the network stack, wrangler dev and skewguard itself.
    await control(sim.url, { reset: true, skew_ms: SKEW_MS, up_ms: [0, 0], down_ms: [0, 0] });
    const direct = async () => {
      const r = await fetch(signedDirect(sim.url, path, SKEW_MS));
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`direct: HTTP ${r.status}`);
    };
    const health = async () => {
      const r = await fetch(`${relay.url}/health`);
      await r.arrayBuffer();
    };
    const overhead: RelayResult[] = [];
    for (const concurrency of [1, 16]) {
      const count = concurrency === 1 ? 300 : 800;
      await load(50, concurrency, direct);
      await load(50, concurrency, viaRelay);
      // Interleave the two so machine noise lands on both alike.
      const d: number[] = [];
      const r: number[] = [];
      const h: number[] = [];
      let relayMs = 0;
      for (let round = 0; round < 4; round++) {
        d.push(...(await load(count / 4, concurrency, direct)).latencies);
        h.push(...(await load(count / 4, concurrency, health)).latencies);
        const via = await load(count / 4, concurrency, viaRelay);
        r.push(...via.latencies);
        relayMs += via.totalMs;
      }
      const directP50 = quantile(d, 0.5);
      const relayP50 = quantile(r, 0.5);
      overhead.push({
        concurrency,
        directP50,
        directP99: quantile(d, 0.99),
        relayP50,
        relayP99: quantile(r, 0.99),
        overheadP50: relayP50 - directP50,
        ratioP50: relayP50 / directP50,
        hopP50: quantile(h, 0.5),
        netOverheadP50: relayP50 - directP50 - quantile(h, 0.5),
        relayRps: (r.length / relayMs) * 1000,
      });
    }
    return { overhead, live };
  } finally {
    await relay.stop();
    await sim.stop();
  }
}
