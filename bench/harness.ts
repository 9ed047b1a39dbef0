/**
 * Shared pieces of the benchmarks: start a `wrangler dev` Worker on a loopback port, time requests, summarise.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";

const BIN = new URL("../node_modules/.bin", import.meta.url).pathname;
const WRANGLER = `${BIN}/wrangler`;

export interface Running {
  url: string;
  stop(): Promise<void>;
}

/** Starts `wrangler dev` with `args` on `port` (loopback only) and waits until it answers `probePath`. */
export async function startWrangler(args: string[], port: number, probePath = "/"): Promise<Running> {
  const child: ChildProcess = spawn(WRANGLER, ["dev", ...args, "--ip", "127.0.0.1", "--port", String(port)], {
    // node_modules/.bin first, so wrangler runs on the pinned Node 24 even when the caller's PATH has Node 20.
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout?.on("data", (d) => {
    output += d;
  });
  child.stderr?.on("data", (d) => {
    output += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.pid) {
      process.kill(-child.pid, "SIGTERM");
      await Promise.race([new Promise((r) => child.once("exit", r)), sleep(5_000)]);
    }
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev ${args.join(" ")} exited:\n${output.slice(-2000)}`);
    try {
      await fetch(url + probePath);
      return { url, stop };
    } catch {
      await sleep(250);
    }
  }
  await stop();
  throw new Error(`wrangler dev ${args.join(" ")} did not start on ${port}:\n${output.slice(-2000)}`);
}

/** The q-quantile (0..1) of `values`, nearest-rank. */
export function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/** Milliseconds, wall clock, high resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Runs `task` `count` times with at most `concurrency` in flight; returns each latency in ms and the total. */
export async function load(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<{ latencies: number[]; totalMs: number }> {
  const latencies: number[] = [];
  let next = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t0 = nowMs();
        await task(i);
        latencies.push(nowMs() - t0);
      }
    }),
  );
  return { latencies, totalMs: nowMs() - started };
}

/** Prints rows as an aligned text table. */
export function table(title: string, header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join("  ");
  return [`\n## ${title}`, line(header), line(widths.map((w) => "-".repeat(w))), ...cells.slice(1).map(line)].join(
    "\n",
  );
}
