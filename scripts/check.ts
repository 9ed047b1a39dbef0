// `npm run check`: the generated types, both type-checks and Biome, side by side (they read the same files and write
// nothing, so running them one after the other only cost time). `npm test` passes its test command as arguments,
// which then runs alongside the checks with its own output shown as it comes. A check prints nothing unless it
// fails; the exit code is the first failure's. The type-checks are incremental: their state is kept in
// node_modules/.cache/tsc, so a re-run checks only what changed (a clean clone checks everything).
import { spawn } from "node:child_process";

interface Step {
  name: string;
  argv: string[];
}

const tscCache = "node_modules/.cache/tsc";
const typeCheck = (config: string): Step => ({
  name: `tsc -p ${config}`,
  argv: ["tsc", "--noEmit", "--incremental", "--tsBuildInfoFile", `${tscCache}/${config}.tsbuildinfo`, "-p", config],
});

const checks: Step[] = [
  {
    name: "wrangler types --check",
    argv: ["wrangler", "types", "--check", "--strict-vars=false", "--env-file", ".dev.vars.example"],
  },
  typeCheck("tsconfig.json"),
  typeCheck("tsconfig.node.json"),
  { name: "biome check", argv: ["biome", "check", "."] },
];

/** Runs one step; its output is kept for the report unless `live`, when it goes straight to the terminal. */
function run(step: Step, live: boolean): Promise<{ step: Step; code: number; output: string }> {
  const [command = "", ...args] = step.argv;
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false" };
  const child = spawn(command, args, { env, stdio: live ? "inherit" : ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((done) => {
    child.on("error", (error) => done({ step, code: 1, output: `${output}${error.message}\n` }));
    child.on("close", (code) => done({ step, code: code ?? 1, output }));
  });
}

const tests = process.argv.slice(2);
const runs = checks.map((step) => run(step, false));
if (tests.length > 0) runs.push(run({ name: tests.join(" "), argv: tests }, true));

let exitCode = 0;
for (const { step, code, output } of await Promise.all(runs)) {
  if (code === 0) continue;
  if (output !== "") process.stderr.write(`\n${step.name} failed:\n${output}`);
  else process.stderr.write(`\n${step.name} failed (exit code ${code})\n`);
  if (exitCode === 0) exitCode = code;
}
process.exit(exitCode);
