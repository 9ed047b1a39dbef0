import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations("./migrations");

// The exchange simulator runs as an auxiliary Worker. Miniflare takes JavaScript, so it is bundled first, the way
// `wrangler deploy` would bundle it, and given the [vars] of its own wrangler.toml.
// scripts/mutate.ts bundles it once per scratch copy and sets SKEWGUARD_SIM_PREBUILT=1 for every run after that.
const simBuild = resolve("sim/.wrangler/build");
if (process.env.SKEWGUARD_SIM_PREBUILT !== "1")
  execFileSync("wrangler", ["deploy", "--dry-run", "--outdir", simBuild, "-c", "sim/wrangler.toml"], {
    stdio: "ignore",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
const simVars = Object.fromEntries(
  [...readFileSync("sim/wrangler.toml", "utf8").matchAll(/^([A-Z][A-Z0-9_]*) = "([^"]*)"$/gm)].map((m) => [m[1], m[2]]),
);

// Tests must see the same env on every machine: wrangler would add a developer's .dev.vars (written by `npm start`)
// to the bindings, so every variable it may hold is bound empty here, which skewguard reads as unset.
const devVars = Object.fromEntries(
  [...readFileSync(".dev.vars.example", "utf8").matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => [m[1], ""]),
);

export default defineConfig({
  test: {
    // A passing run prints the summary only; a failing test shows its own console lines and the failure.
    silent: "passed-only",
    reporters: ["dot"],
    // One test file per core at a time (vitest's default is one fewer than the cores: a single lane on 2 cores). A
    // lane spends much of its time waiting, on a workerd start-up, the simulator or a test's timers, not computing.
    maxWorkers: availableParallelism(),
    projects: [
      {
        // Inside workerd, with the Worker's own wrangler.toml and bindings. Outbound fetches that a test does not
        // intercept go to the simulator, whatever their host.
        // Vite's own warnings are about dependencies (standardwebhooks' source map names files it does not ship), not
        // the tests: a passing run prints only its summary.
        logLevel: "error",
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              // CLOCK_SYNC=never: most tests count the exact requests a venue sees; test/workers/clock-sync.test.ts
              // covers the probing modes (the production default is cold).
              bindings: { ...devVars, TEST_MIGRATIONS: migrations, CLOCK_SYNC: "never" },
              outboundService: "sim",
              workers: [
                {
                  name: "sim",
                  modules: true,
                  scriptPath: `${simBuild}/index.js`,
                  compatibilityDate: "2026-10-30",
                  compatibilityFlags: ["nodejs_compat"],
                  bindings: simVars,
                },
              ],
            },
          }),
        ],
        // "skewguard" is the built library entry (npm run build), imported as a user would.
        resolve: { alias: { skewguard: resolve("dist/lib/index.js") } },
        test: {
          name: "workers",
          // A fresh workerd per file, as the tests assume: with isolate: false (tried) the files share the inbound rate
          // limiter, Durable Objects, D1 and module state, and later files fail (429s, a clock already taught).
          isolate: true,
          // test/core runs here through test/workers/core.test.ts: one workerd start-up for all of its files.
          include: ["test/workers/**/*.test.ts"],
          setupFiles: ["test/workers/setup-d1.ts", "test/workers/setup-leaks.ts"],
          // Two files run at once on a 2-core machine: a test that takes 0.6 s idle (fuzz.test.ts) was seen to pass
          // vitest's default 5 s under heavy load. A hung test still fails, 15 s later.
          testTimeout: 15_000,
        },
      },
      {
        // Plain Node: the CLI as a process, and the portable core against node:crypto.
        test: {
          name: "node",
          environment: "node",
          isolate: true,
          include: ["test/node/**/*.test.ts", "test/core/**/*.test.ts"],
        },
      },
    ],
  },
});
