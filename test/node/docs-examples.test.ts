// Every code example in docs/*.md runs, as written (issue 28), against skewguard and the simulator in one local
// workerd (test/node/local-worker.ts) configured like `npm start`, from .dev.vars.example. The only change made to a
// block is its address: 127.0.0.1:8787 (or localhost:8787) becomes this skewguard's port, 127.0.0.1:8788 the
// simulator's. JSON blocks must parse; js blocks run under node (with .dev.vars.example's values in the
// environment, as `node --env-file=.dev.vars` gives them), sh blocks under bash -e -o pipefail, both in a scratch
// folder that links the repository's files (so `npm run sign`, `examples/order.json` and `import "skewguard"`
// resolve). A block passes when it exits 0 and prints no JSON error answer it does not show itself; one that
// streams until stopped passes if it printed and wrote nothing to stderr before the time limit.
// A block that cannot run here is marked in the doc by `<!-- not run: <why> -->` on the line before its fence;
// `<!-- file: <name> -->` saves a block under the name a later block runs it by. Any other block must run.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalWorker, startLocal } from "./local-worker.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const DOCS = resolve(ROOT, "docs");
const RUNS = new Set(["json", "ndjson", "js", "sh"]);
/** Docs this branch may not edit (another branch rewrites them), with why their blocks do not run: mark them there. */
const NOT_RUN_DOCS: Record<string, string> = {};
const LIMIT_MS = 10_000;

interface Block {
  doc: string;
  line: number;
  lang: string;
  code: string;
  notRun?: string;
  file?: string;
}

/** The fenced blocks of one doc, each with the mark on the line before it (blank lines skipped). */
function blocks(doc: string, text: string): Block[] {
  const lines = text.split("\n");
  const found: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i] ?? "");
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    let before = i - 1;
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--;
    const mark = lines[before] ?? "";
    found.push({
      doc,
      line: i + 1,
      lang: open[1] ?? "",
      code: lines.slice(i + 1, end).join("\n"),
      notRun: /^<!-- not run: (.+) -->$/.exec(mark)?.[1] ?? NOT_RUN_DOCS[doc],
      file: /^<!-- file: (\S+) -->$/.exec(mark)?.[1],
    });
    i = end;
  }
  return found;
}

const docs = readdirSync(DOCS)
  .filter((f) => f.endsWith(".md"))
  .sort();
const all = docs.flatMap((doc) => blocks(doc, readFileSync(join(DOCS, doc), "utf8")));

/** `KEY=value` (or `KEY='value'`) lines of a .dev.vars file. */
function devVars(text: string): Record<string, string> {
  const pairs = [...text.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)];
  return Object.fromEntries(pairs.map(([, key, value = ""]) => [key, value.replace(/^'(.*)'$/, "$1")]));
}

let local: LocalWorker;
let scratch: string;
let address: (code: string) => string;
let env: Record<string, string>;

beforeAll(async () => {
  const vars = devVars(readFileSync(join(ROOT, ".dev.vars.example"), "utf8"));
  local = await startLocal(vars, { directSockets: true, migrateD1: true });
  const worker = new URL(local.url).host;
  const sim = new URL(local.direct.sim ?? "").host;
  address = (code) => code.replace(/(127\.0\.0\.1|localhost):8787/g, worker).replace(/127\.0\.0\.1:8788/g, sim);
  scratch = mkdtempSync(join(tmpdir(), "skewguard-docs-"));
  for (const entry of readdirSync(ROOT)) {
    if (entry !== ".wrangler" && entry !== ".dev.vars") symlinkSync(join(ROOT, entry), join(scratch, entry));
  }
  const bin = join(ROOT, "node_modules", ".bin");
  const values = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, address(v)]));
  env = { ...(process.env as Record<string, string>), ...values, PATH: `${bin}:${process.env.PATH ?? ""}` };
  for (const block of all) if (block.file) writeFileSync(join(scratch, block.file), address(block.code));
}, 120_000);

afterAll(async () => {
  await local?.stop();
});

/** Runs a command in the scratch folder; resolves with its exit code (null when stopped at the limit) and output. */
function run(argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [command = "", ...args] = argv;
  const child = spawn(command, args, { cwd: scratch, env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), LIMIT_MS);
  return new Promise((done) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    }),
  );
}

async function runBlock(block: Block, index: number): Promise<void> {
  const code = address(block.code);
  if (block.lang === "json" || block.lang === "ndjson") {
    const values = block.lang === "json" ? [code] : code.split("\n");
    for (const value of values) expect(() => JSON.parse(value), value).not.toThrow();
    return;
  }
  const name = block.file ?? `example-${index}.${block.lang === "js" ? "mjs" : "sh"}`;
  writeFileSync(join(scratch, name), code);
  const result = await run(block.lang === "js" ? [process.execPath, name] : ["bash", "-e", "-o", "pipefail", name]);
  const streamed = result.code === null && result.stdout !== "" && result.stderr === "";
  expect(result.code === 0 || streamed, `exit ${result.code}\n${result.stdout}\n${result.stderr}`).toBe(true);
  // An error answer (skewguard's or the simulator's JSON error) is a failure unless the block shows that very error.
  const errors = [...result.stdout.matchAll(/\{"error":\{"code":"(\w+)"/g)].map((m) => m[1] ?? "");
  expect(errors.filter((error) => !block.code.includes(`"code":"${error}"`))).toEqual([]);
}

describe("the docs' code examples", () => {
  it("each runs here, or says why not", () => {
    const unrunnable = all.filter((b) => !RUNS.has(b.lang) && b.notRun === undefined);
    expect(unrunnable.map((b) => `${b.doc}:${b.line} (${b.lang || "no language"})`)).toEqual([]);
    expect(all.filter((b) => b.notRun === undefined).length).toBeGreaterThan(30);
  });

  for (const doc of docs.filter((d) => all.some((b) => b.doc === d && b.notRun === undefined))) {
    describe(doc, () => {
      beforeAll(async () => {
        await local.simControl({ reset: true }); // each doc starts from the simulator's defaults
      });
      for (const [index, block] of all.entries()) {
        if (block.doc !== doc || block.notRun !== undefined) continue;
        it(`${block.doc}:${block.line} (${block.lang})`, () => runBlock(block, index), LIMIT_MS + 10_000);
      }
    });
  }
});
