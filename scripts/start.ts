// `npm start`: skewguard on http://127.0.0.1:8787 and the exchange simulator on http://127.0.0.1:8788, together,
// offline. Creates .dev.vars from .dev.vars.example on first run and applies the local D1 migrations.
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";

const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (dev credentials shared with the simulator)");
}

const migrate = spawnSync("wrangler", ["d1", "migrations", "apply", "DB", "--local"], { stdio: "inherit", env });
if (migrate.status !== 0) process.exit(migrate.status ?? 1);

const children = [
  spawn(
    "wrangler",
    ["dev", "-c", "sim/wrangler.toml", "--port", "8788", "--ip", "127.0.0.1", "--inspector-port", "9230"],
    {
      stdio: "inherit",
      env,
    },
  ),
  spawn("wrangler", ["dev", "--port", "8787", "--ip", "127.0.0.1", "--test-scheduled", "--inspector-port", "9229"], {
    stdio: "inherit",
    env,
  }),
];

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
