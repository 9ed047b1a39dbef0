// What `npm start` prints (issue 28), on wrangler's output as recorded on a first run (fixtures/start-*.txt:
// the migrations, the simulator's `wrangler dev` and skewguard's, offline, the simulator's dev secrets elided): of
// the ~400 lines, nothing but one summary of the migrations and, from scripts/start.ts, the ready line. A line of
// the Worker's own, a request, or a real error is still shown.
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { migrationSummary, outputFilter, readyLine, readyUrl } from "../../scripts/start-output.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const FIXTURES = resolve(import.meta.dirname, "fixtures");
const fixture = (name: string) => readFileSync(join(FIXTURES, `start-${name}.txt`), "utf8");
const lines = (text: string) => text.split("\n");

describe("npm start's output", () => {
  it("a first run's wrangler output, whole, shows nothing; each Worker's ready URL is read", () => {
    const recorded = ["sim", "skewguard"].map((name) => lines(fixture(name)));
    expect(recorded.flat().length).toBeGreaterThan(100);
    for (const output of recorded) expect(output.filter(outputFilter())).toEqual([]);
    expect(recorded.map((output) => output.map(readyUrl).filter((url) => url !== undefined))).toEqual([
      ["http://127.0.0.1:8788"],
      ["http://127.0.0.1:8787"],
    ]);
  });

  it("the migrations' ~300 lines become one", () => {
    const applied = fixture("migrations");
    expect(lines(applied).length).toBeGreaterThan(250);
    expect(migrationSummary(applied)).toBe("local D1: applied 10 migrations");
    expect(migrationSummary("✅ No migrations to apply!")).toBe("local D1: up to date");
  });

  it("a first run, through scripts/start.ts with a stand-in wrangler replaying them, prints three lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), "skewguard-start-"));
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, ".dev.vars.example"), "X=1\n");
    const standIn = join(dir, "bin", "wrangler");
    writeFileSync(
      standIn,
      `#!/usr/bin/env node
const args = process.argv.slice(2);
const name = args[0] === "d1" ? "migrations" : args.includes("sim/wrangler.toml") ? "sim" : "skewguard";
process.stdout.write(require("node:fs").readFileSync(${JSON.stringify(FIXTURES)} + "/start-" + name + ".txt"));
if (name !== "migrations") setInterval(() => {}, 1000);
process.on("SIGINT", () => process.exit(0));
`,
    );
    chmodSync(standIn, 0o755);
    const path = `${join(dir, "bin")}${delimiter}${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
    const start = spawn(process.execPath, [join(ROOT, "scripts", "start.ts")], {
      cwd: dir,
      env: { ...process.env, PATH: path },
    });
    let output = "";
    start.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    start.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((done) => start.on("exit", done));
    await vi.waitFor(() => expect(output).toContain("ready:"), { timeout: 15_000, interval: 100 });
    await new Promise((done) => setTimeout(done, 300)); // anything printed after the ready line would show here
    start.kill("SIGINT");
    await exited;
    expect(output.trimEnd().split("\n")).toEqual([
      "created .dev.vars from .dev.vars.example (dev credentials shared with the simulator)",
      "local D1: applied 10 migrations",
      readyLine("http://127.0.0.1:8787", "http://127.0.0.1:8788"),
    ]);
    expect(readyLine("http://127.0.0.1:8787", "http://127.0.0.1:8788")).toBe(
      "ready: skewguard on http://127.0.0.1:8787, the exchange simulator on http://127.0.0.1:8788 (Ctrl-C stops both)",
    );
  }, 30_000);

  it("keeps the Worker's lines, requests and real errors, with their stacks; colours do not hide noise", () => {
    const shown = outputFilter();
    const kept = [
      '{"level":"warn","event":"forward_failed","job":"intx-positions"}',
      "[wrangler:info] GET /health 200 OK (4ms)",
      "✘ [ERROR] Address already in use (127.0.0.1:8787). Please check that you are not already running a server.",
      "Error: boom",
      "    at run (src/worker.ts:10:3)",
    ];
    expect(kept.filter(shown)).toEqual(kept);
    const noise = [
      "\u001b[33m[wrangler:warn]\u001b[0m Unable to fetch the `Request.cf` object! Falling back to a default placeholder...",
      "Error: getaddrinfo EAI_AGAIN workers.cloudflare.com",
      "    at GetAddrInfoReqWrap.onlookupall [as oncomplete] (node:dns:123:26)",
    ];
    expect(noise.filter(outputFilter())).toEqual([]);
  });
});
