/**
 * CPU contention for the benchmarks: a second Node process that keeps every core busy (one spinning worker thread
 * per core, `os.availableParallelism()`), as `npm start` or another job would on a shared machine. `stop()` kills it
 * (SIGKILL, awaited); it is also killed if this process exits first, so it can never outlive the benchmark.
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";

const SPIN = `
const { Worker } = require("node:worker_threads");
const n = Number(process.argv[1]);
let online = 0;
for (let i = 0; i < n; i++) {
  const w = new Worker("for (;;) {}", { eval: true });
  w.on("online", () => { if (++online === n) process.stdout.write("spinning\\n"); });
}
`;

export interface Busy {
  /** Spinning threads. */
  threads: number;
  /** Kills the busy process and waits for it to be gone. Safe to call twice. */
  stop(): Promise<void>;
}

/** Starts the busy process and resolves once all its threads spin. */
export async function busyCores(threads = availableParallelism()): Promise<Busy> {
  const child = spawn(process.execPath, ["-e", SPIN, String(threads)], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", kill);
  const stop = async () => {
    kill();
    await exited;
    process.off("exit", kill);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`busy process exited early (${code ?? signal})`)));
      child.stdout.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("spinning")) resolve();
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { threads, stop };
}
