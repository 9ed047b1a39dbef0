// `npm start`: skewguard on http://127.0.0.1:8787 and the exchange simulator on http://127.0.0.1:8788, together,
// offline. Creates .dev.vars from .dev.vars.example on first run and applies the local D1 migrations. It prints what
// matters (scripts/start-output.ts): the Worker's own lines, requests, errors, and one "ready" line with both URLs.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { migrationSummary, outputFilter, readyLine, readyUrl } from "./start-output.ts";

const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (dev credentials shared with the simulator)");
}

const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], { encoding: "utf8", env });
if (migrate.status !== 0) {
  process.stdout.write(migrate.stdout ?? "");
  process.stderr.write(migrate.stderr ?? "");
  process.exit(migrate.status ?? 1);
}
console.log(migrationSummary(migrate.stdout));

const ready = new Map<string, string>();

/** Shows a child's lines that matter, `prefix`ed; the ready line once both Workers have said where they listen. */
function relay(child: ChildProcess, name: string, prefix: string): void {
  for (const [stream, out] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ] as const) {
    if (!stream) continue;
    const shown = outputFilter();
    createInterface({ input: stream }).on("line", (line) => {
      const url = readyUrl(line);
      if (url !== undefined) ready.set(name, url);
      if (url !== undefined && ready.size === 2)
        console.log(readyLine(ready.get("skewguard") ?? "", ready.get("sim") ?? ""));
      if (shown(line)) out.write(`${prefix}${line}\n`);
    });
  }
}

// stdin is not passed on: two wranglers cannot share the terminal's keys; Ctrl-C reaches both as a signal.
const stdio = ["ignore", "pipe", "pipe"] as const;
const sim = spawn(
  "wrangler",
  ["dev", "-c", "sim/wrangler.toml", "--port", "8788", "--ip", "127.0.0.1", "--inspector-port", "9230"],
  { stdio: [...stdio], env },
);
const worker = spawn(
  "wrangler",
  ["dev", "--port", "8787", "--ip", "127.0.0.1", "--test-scheduled", "--inspector-port", "9229"],
  { stdio: [...stdio], env },
);
relay(sim, "sim", "[sim] ");
relay(worker, "skewguard", "");
const children = [sim, worker];

let stopping = false;
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill("SIGINT");
  setTimeout(() => process.exit(code), 2_000).unref();
}
for (const child of children) child.on("exit", (code) => stop(code ?? 0));
process.on("SIGINT", () => stop(0));
process.on("SIGTERM", () => stop(0));
