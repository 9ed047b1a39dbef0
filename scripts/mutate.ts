/**
 * `npm run mutate`: a small mutation run over src/lib, src/core and the signed-call pipeline (src/adapters/client.ts
 * and the venue-*.ts steps it composes).
 * Not part of `npm test`. StrykerJS is not used: its vitest runner does not support the @cloudflare/vitest-plugin pool.
 *
 * Each mutant is a one-line change made by one operator (below). Mutants are run in scratch copies of the checkout
 * (tracked and untracked files copied, node_modules hard-linked), never in the working tree, one copy per job. For
 * each mutant the script runs the test files that cover its module: those importing it directly, those named after
 * it (core/hooks.ts → hooks.test.ts), the library tests for src/lib (through dist/lib, updated for the mutant), and
 * the core tests (test/core, in the node project). A mutant is killed when a test fails, timed out when it runs
 * past `--timeout` seconds (default 240), and survives otherwise. `--baseline` first runs each module's tests unmutated
 * (they must pass; a module whose tests fail is skipped) and times out each mutant at 3 × that run, at least 60 s.
 * Sources are read once at the start: editing the working tree during a run changes nothing in it.
 *
 *   npm run mutate -- [--sample N] [--seed S] [--files <glob>[,<glob>…]] [--jobs J] [--timeout s] [--baseline] [--list]
 *
 * Prints a summary line and every survivor (file:line, the change); writes bench/results/mutate.json (git-ignored).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  globSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { stripTypeScriptTypes } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { prng } from "../bench/prng.ts";

const ROOT = resolve(import.meta.dirname, "..");
/** The Worker's steps of the signed-call loop: their tests are the signed client's (they reach them through it). */
const PIPELINE = [
  "venue-answer",
  "venue-audit",
  "venue-call",
  "venue-errors",
  "venue-gate",
  "venue-outcome",
  "venue-retry",
];
/** Tests that reach a module only through the Worker, named by hand: the ledger's end-to-end test reads its rows. */
const EXTRA_TESTS: Record<string, string[]> = {
  "adapters/venue-audit.ts": ["test/workers/ledger-sources.test.ts"],
  "venues/intx.ts": ["test/workers/ledger-sources.test.ts"],
  "core/ledger.ts": ["test/workers/ledger-sources.test.ts", "test/workers/orders.test.ts"],
};
const DEFAULT_FILES = `src/lib/*.ts,src/core/*.ts,src/venues/*.ts,src/adapters/client.ts,${PIPELINE.map((name) => `src/adapters/${name}.ts`).join(",")}`;

const { values: args } = parseArgs({
  options: {
    sample: { type: "string" },
    seed: { type: "string", default: "1" },
    files: { type: "string", default: DEFAULT_FILES },
    jobs: { type: "string", default: "2" },
    list: { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    baseline: { type: "boolean", default: false },
    timeout: { type: "string", default: "240" },
  },
});
const seed = Number(args.seed);
const jobs = Math.max(1, Number(args.jobs));
const sample = args.sample === undefined ? undefined : Number(args.sample);

// ---- Mutants ----

export interface Mutant {
  file: string; // relative to the root
  line: number; // 1-based
  operator: string;
  original: string;
  mutated: string;
}

/** Each operator: a pattern, and what one match becomes. Every match in a line is a separate mutant. */
const OPERATORS: { name: string; pattern: RegExp; replace: (m: RegExpExecArray) => string }[] = [
  { name: "===→!==", pattern: /===/g, replace: () => "!==" },
  { name: "!==→===", pattern: /!==/g, replace: () => "===" },
  { name: "<→<=", pattern: / < /g, replace: () => " <= " },
  { name: "<=→<", pattern: / <= /g, replace: () => " < " },
  { name: ">→>=", pattern: / > /g, replace: () => " >= " },
  { name: ">=→>", pattern: / >= /g, replace: () => " > " },
  { name: "&&→||", pattern: / && /g, replace: () => " || " },
  { name: "||→&&", pattern: / \|\| /g, replace: () => " && " },
  { name: "true→false", pattern: /\btrue\b/g, replace: () => "false" },
  { name: "false→true", pattern: /\bfalse\b/g, replace: () => "true" },
  { name: "+1→-1", pattern: / \+ 1\b/g, replace: () => " - 1" },
  { name: "-1→+1", pattern: / - 1\b/g, replace: () => " + 1" },
  { name: "remove !", pattern: /(?<![\w)\]!])!(?=[\w(.])/g, replace: () => "" },
  { name: "min↔max", pattern: /\bMath\.(min|max)\(/g, replace: (m) => (m[1] === "min" ? "Math.max(" : "Math.min(") },
  {
    name: "empty compared string",
    pattern: /([!=]==\s*)"([^"\\]+)"|"([^"\\]+)"(\s*[!=]==)/g,
    replace: (m) => (m[1] !== undefined ? `${m[1]}""` : `""${m[4]}`),
  },
  {
    name: "negate returned boolean",
    pattern:
      /(?<=^\s*return )(.*(?:[!=]==| [<>]=? |&&|\|\||\.(?:test|includes|has|some|every|startsWith|endsWith)\().*)(?=;\s*$)/g,
    replace: (m) => `!(${m[1]})`,
  },
];

/** Lines that are comments, imports or type declarations carry no behaviour to mutate. */
function skippable(line: string): boolean {
  const t = line.trim();
  return (
    t === "" ||
    t.startsWith("//") ||
    t.startsWith("*") ||
    t.startsWith("/*") ||
    t.startsWith("import ") ||
    t.startsWith("export type ") ||
    t.startsWith("type ") ||
    t.startsWith("export interface ") ||
    t.startsWith("interface ")
  );
}

export function mutantsOf(file: string, text: string): Mutant[] {
  const out: Mutant[] = [];
  const lines = text.split("\n");
  let inInterface = false;
  lines.forEach((line, i) => {
    if (/^\s*(export )?interface\b/.test(line)) inInterface = !line.trimEnd().endsWith("}");
    else if (inInterface && /^}/.test(line)) inInterface = false;
    if (inInterface || skippable(line)) return;
    const code = line.replace(/\s\/\/ .*$/, ""); // a trailing comment
    for (const op of OPERATORS) {
      op.pattern.lastIndex = 0;
      for (let m = op.pattern.exec(code); m !== null; m = op.pattern.exec(code)) {
        const mutated = line.slice(0, m.index) + op.replace(m) + line.slice(m.index + m[0].length);
        if (mutated !== line) out.push({ file, line: i + 1, operator: op.name, original: line, mutated });
        if (m[0] === "") op.pattern.lastIndex++;
      }
    }
  });
  return out;
}

// ---- Which tests cover a module ----

const testFiles = globSync("test/{core,workers,node}/**/*.test.ts", { cwd: ROOT }).sort();
/** Node tests that start workerd, wrangler or a package install: minutes each, not run per mutant. */
const SLOW_NODE = new Set(["ccxt", "halt-restart", "library-client", "package", "triggers", "probe-venue", "cli"]);

export function testsFor(module: string): string[] {
  const rel = module.replace(/^src\//, "");
  const name = basename(module, ".ts");
  const chosen = new Set<string>();
  for (const test of testFiles) {
    const text = readFileSync(join(ROOT, test), "utf8");
    const slow = test.startsWith("test/node/") && SLOW_NODE.has(basename(test, ".test.ts"));
    if (slow) continue;
    if (test.startsWith("test/core/")) chosen.add(test);
    else if (text.includes(`/src/${rel}"`)) chosen.add(test);
    else if (PIPELINE.includes(name) && text.includes('/src/adapters/client.ts"')) chosen.add(test);
    else if (EXTRA_TESTS[rel]?.includes(test)) chosen.add(test);
    else if (basename(test, ".test.ts") === name && !module.startsWith("src/lib/")) chosen.add(test);
    else if (module.startsWith("src/lib/") && test.startsWith("test/workers/") && text.includes('from "skewguard"')) {
      chosen.add(test);
    }
  }
  return [...chosen].sort();
}

// ---- Scratch copies ----

interface Scratch {
  dir: string;
}

function run(cmd: string, argv: string[], cwd: string): void {
  const r = spawnSync(cmd, argv, { cwd, stdio: "pipe", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} failed in ${cwd}:\n${r.stderr}`);
}

/** A copy of the checkout (its tracked and untracked files) with node_modules hard-linked, the library built and
 * the simulator bundled once. Vite's caches are not linked: they are written in place. */
function makeScratch(i: number): Scratch {
  const dir = mkdtempSync(join(tmpdir(), `skewguard-mutate-${i}-`));
  const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: ROOT, encoding: "utf8" })
    .stdout.split("\0")
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    try {
      copyFileSync(join(ROOT, f), join(dir, f));
    } catch {
      // a tracked file deleted in the working tree
    }
  }
  mkdirSync(join(dir, "node_modules"));
  for (const entry of readdirSync(join(ROOT, "node_modules"))) {
    if (entry.startsWith(".vite") || entry === ".cache") continue;
    run("cp", ["-al", join(ROOT, "node_modules", entry), join(dir, "node_modules", entry)], ROOT);
  }
  run("node_modules/.bin/tsc", ["-p", "tsconfig.lib.json"], dir);
  const sim = join(dir, "sim/.wrangler/build");
  run("node_modules/.bin/wrangler", ["deploy", "--dry-run", "--outdir", sim, "-c", "sim/wrangler.toml"], dir);
  return { dir };
}

/** The dist/lib twin of a src/lib module, for the tests that import the library as "skewguard". */
function distFor(module: string): string | undefined {
  return module.startsWith("src/lib/") ? module.replace(/^src\/lib\//, "dist/lib/").replace(/\.ts$/, ".js") : undefined;
}

function toDist(source: string): string {
  process.removeAllListeners("warning"); // stripTypeScriptTypes is experimental in Node 24 and says so each call
  return stripTypeScriptTypes(source, { mode: "strip" }).replace(/(from\s+"\.{1,2}\/[^"]+)\.ts"/g, '$1.js"');
}

type Outcome = "killed" | "survived" | "timeout" | "error";

function vitestOnce(scratch: Scratch, project: string, tests: string[], timeoutMs: number): Promise<Outcome> {
  const argv = ["run", "--bail", "1", "--project", project, ...tests];
  return new Promise((done) => {
    const child: ChildProcess = spawn(join(scratch.dir, "node_modules/.bin/vitest"), argv, {
      cwd: scratch.dir,
      detached: true,
      stdio: "ignore",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", SKEWGUARD_SIM_PREBUILT: "1", CI: "1" },
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done(timedOut ? "timeout" : code === 0 ? "survived" : "killed");
    });
    child.on("error", () => {
      clearTimeout(timer);
      done("error");
    });
  });
}

/** The node project first (test/core and test/node: seconds), then workerd only if the mutant is still alive. */
async function vitest(scratch: Scratch, tests: string[], timeoutMs: number): Promise<{ outcome: Outcome; ms: number }> {
  const started = Date.now();
  const stages: [string, string[]][] = [
    ["node", tests.filter((t) => !t.startsWith("test/workers/"))],
    ["workers", tests.filter((t) => t.startsWith("test/workers/"))],
  ];
  let outcome: Outcome = "survived";
  for (const [project, files] of stages) {
    if (files.length === 0) continue;
    outcome = await vitestOnce(scratch, project, files, timeoutMs - (Date.now() - started));
    if (outcome !== "survived") break;
  }
  return { outcome, ms: Date.now() - started };
}

// ---- The run ----

const patterns = args.files.split(",").map((p) => p.trim());
const modules = [...new Set(patterns.flatMap((p) => globSync(p, { cwd: ROOT })))]
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))
  .sort();
const sources = new Map(modules.map((m) => [m, readFileSync(join(ROOT, m), "utf8")]));
const all = modules.flatMap((m) => mutantsOf(m, sources.get(m) as string));
const next = prng(seed);
const shuffled = all.map((m) => ({ m, k: next() })).sort((a, b) => a.k - b.k);
const chosen = (sample === undefined ? shuffled : shuffled.slice(0, sample))
  .map(({ m }) => m)
  .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.operator.localeCompare(b.operator));

const describe = (m: Mutant) => `${m.file}:${m.line} [${m.operator}] ${m.original.trim()}  →  ${m.mutated.trim()}`;

if (args.list) {
  for (const m of chosen) console.log(describe(m));
  console.log(`${chosen.length} of ${all.length} mutants in ${modules.length} files`);
  process.exit(0);
}

// The commit the scratch copies are made from (plus any uncommitted changes, copied too).
const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim();
const started = Date.now();
console.log(`mutate: ${chosen.length} of ${all.length} mutants in ${modules.length} files, seed ${seed}, ${jobs} jobs`);
const scratches = Array.from({ length: jobs }, (_, i) => makeScratch(i));
console.log(`scratch copies ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);

// An unmutated run per module: its tests must pass, and its time sets the module's timeout.
const baselines = new Map<string, { tests: string[]; ms: number; ok: boolean }>();
const usedModules = [...new Set(chosen.map((m) => m.file))];
const timeoutMs = Number(args.timeout) * 1000;
if (!args.baseline) for (const m of usedModules) baselines.set(m, { tests: testsFor(m), ms: timeoutMs / 3, ok: true });
else {
  let next = 0;
  await Promise.all(
    scratches.map(async (scratch) => {
      while (next < usedModules.length) {
        const module = usedModules[next++] as string;
        const tests = testsFor(module);
        const r = await vitest(scratch, tests, 600_000);
        baselines.set(module, { tests, ms: r.ms, ok: r.outcome === "survived" });
        console.log(
          `baseline ${module}: ${tests.length} test files, ${(r.ms / 1000).toFixed(1)} s, ${r.outcome === "survived" ? "pass" : "FAIL"}`,
        );
      }
    }),
  );
}

interface Result extends Mutant {
  outcome: Outcome | "skipped";
  ms: number;
}
const results: Result[] = [];
{
  let next = 0;
  await Promise.all(
    scratches.map(async (scratch) => {
      while (next < chosen.length) {
        const index = next++;
        const m = chosen[index] as Mutant;
        const base = baselines.get(m.file);
        if (!base?.ok) {
          results.push({ ...m, outcome: "skipped", ms: 0 });
          continue;
        }
        const target = join(scratch.dir, m.file);
        const source = sources.get(m.file) as string;
        const lines = source.split("\n");
        lines[m.line - 1] = m.mutated;
        const mutatedSource = lines.join("\n");
        writeFileSync(target, mutatedSource);
        const dist = distFor(m.file);
        const distOriginal = dist ? readFileSync(join(scratch.dir, dist), "utf8") : undefined;
        let r: { outcome: Outcome; ms: number };
        try {
          if (dist) writeFileSync(join(scratch.dir, dist), toDist(mutatedSource));
          r = await vitest(scratch, base.tests, args.baseline ? Math.max(60_000, 3 * base.ms) : timeoutMs);
        } catch {
          r = { outcome: "error", ms: 0 };
        } finally {
          writeFileSync(target, source);
          if (dist && distOriginal !== undefined) writeFileSync(join(scratch.dir, dist), distOriginal);
        }
        results.push({ ...m, ...r });
        const mark = { killed: ".", survived: "S", timeout: "T", error: "E" }[r.outcome];
        process.stdout.write(`${mark}${results.length % 50 === 0 ? ` ${results.length}\n` : ""}`);
      }
    }),
  );
}
process.stdout.write("\n");

if (!args.keep) for (const s of scratches) rmSync(s.dir, { recursive: true, force: true });

results.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.operator.localeCompare(b.operator));
const count = (o: Result["outcome"]) => results.filter((r) => r.outcome === o).length;
const killed = count("killed");
const survived = count("survived");
const timeout = count("timeout");
const errors = count("error");
const skipped = count("skipped");
const scored = killed + survived + timeout;
const score = scored === 0 ? 0 : (100 * (killed + timeout)) / scored;
const minutes = (Date.now() - started) / 60_000;

const survivors = results.filter((r) => r.outcome === "survived");
if (survivors.length > 0) {
  console.log("\nSurvivors:");
  for (const s of survivors) console.log(`  ${describe(s)}`);
}
const perModule = usedModules.map((module) => {
  const rs = results.filter((r) => r.file === module && r.outcome !== "skipped" && r.outcome !== "error");
  const k = rs.filter((r) => r.outcome !== "survived").length;
  return { module, mutants: rs.length, killed: k, score: rs.length ? Math.round((1000 * k) / rs.length) / 10 : null };
});
console.log(
  `\nmutation score ${score.toFixed(1)}%: ${killed} killed, ${timeout} timed out, ${survived} survived` +
    `${errors ? `, ${errors} errors` : ""}${skipped ? `, ${skipped} skipped (module's tests fail unmutated)` : ""}` +
    ` of ${chosen.length} mutants (sample of ${all.length}, seed ${seed}) in ${minutes.toFixed(1)} min`,
);

mkdirSync(join(ROOT, "bench/results"), { recursive: true });
writeFileSync(
  join(ROOT, "bench/results/mutate.json"),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      commit,
      command: `npm run mutate -- ${process.argv.slice(2).join(" ")}`.trim(),
      files: patterns,
      seed,
      sample: chosen.length,
      population: all.length,
      jobs,
      minutes: Math.round(minutes * 10) / 10,
      score: Math.round(score * 10) / 10,
      killed,
      timeout,
      survived,
      errors,
      skipped,
      baselines: Object.fromEntries([...baselines].map(([k, v]) => [k, { tests: v.tests, ms: v.ms, ok: v.ok }])),
      perModule,
      survivors: survivors.map(({ file, line, operator, original, mutated }) => ({
        file,
        line,
        operator,
        original: original.trim(),
        mutated: mutated.trim(),
      })),
      results: results.map(({ file, line, operator, outcome, ms }) => ({ file, line, operator, outcome, ms })),
    },
    null,
    2,
  )}\n`,
);
console.log("wrote bench/results/mutate.json");
