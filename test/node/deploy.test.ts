// `npm run deploy` (scripts/deploy.ts) against a stand-in `wrangler` first on PATH: a small Node script that records
// each call's argv and answers from a state file (queues, databases, secrets, the deployed Worker), as the real one
// would, or fails the call the test names. Each test asserts the exact sequence of calls. Plus the pure rules of
// which secrets a configuration needs (scripts/deploy-plan.ts).
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { type DeployConfig, queuesInTable, requiredSecrets } from "../../scripts/deploy-plan.ts";

const run = promisify(execFile);
const SCRIPT = resolve("scripts/deploy.ts");

interface State {
  queues: string[];
  databases: string[];
  secrets: string[];
  deployed: boolean;
  /** The call (its argv joined by spaces, a prefix) that fails. */
  fail?: string;
}

const STANDIN = `
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
const dir = process.env.STANDIN_DIR;
const args = process.argv.slice(2);
const call = args.join(" ");
appendFileSync(dir + "/calls", call + "\\n");
const state = JSON.parse(readFileSync(dir + "/state.json", "utf8"));
const save = () => writeFileSync(dir + "/state.json", JSON.stringify(state));
const line = (cells) => "│ " + cells.join(" │ ") + " │";
if (state.fail && call.startsWith(state.fail)) {
  console.error("✘ [ERROR] A request to the Cloudflare API failed (canned).");
  process.exit(1);
} else if (call.startsWith("queues list")) {
  const rows = call.endsWith("--page 1") ? state.queues : [];
  console.log([line(["id", "name", "created_on"]), ...rows.map((q) => line(["0123abcd", q, "2026-12-06"]))].join("\\n"));
} else if (call.startsWith("queues create ")) {
  state.queues.push(args[2]);
  save();
} else if (call === "d1 list --json") {
  console.log(JSON.stringify(state.databases.map((name) => ({ uuid: "uuid-" + name, name }))));
} else if (call.startsWith("d1 create ")) {
  state.databases.push(args[2]);
  save();
} else if (call.startsWith("secret list")) {
  if (!state.deployed && state.secrets.length === 0) {
    console.error('✘ [ERROR] Worker "skewguard-intx" (env: intx) not found.');
    process.exit(1);
  }
  console.log(JSON.stringify(state.secrets.map((name) => ({ name, type: "secret_text" }))));
} else if (call.startsWith("deploy")) {
  state.deployed = true;
  save();
}
`;

/** A fresh folder with the stand-in `wrangler` and its state; `deploy` runs the script against it. */
function standIn(state: State) {
  const dir = mkdtempSync(join(tmpdir(), "sg-deploy-"));
  writeFileSync(join(dir, "standin.mjs"), STANDIN);
  writeFileSync(join(dir, "wrangler"), `#!/bin/sh\nexec "${process.execPath}" "${dir}/standin.mjs" "$@"\n`);
  chmodSync(join(dir, "wrangler"), 0o755);
  writeFileSync(join(dir, "calls"), "");
  const setState = (next: State) => writeFileSync(join(dir, "state.json"), JSON.stringify(next));
  setState(state);
  return {
    setState,
    state: (): State => JSON.parse(readFileSync(join(dir, "state.json"), "utf8")),
    async deploy(args: string[]) {
      writeFileSync(join(dir, "calls"), "");
      const env = { PATH: `${dir}:${process.env.PATH}`, STANDIN_DIR: dir };
      let result: { code: number; stdout: string; stderr: string };
      try {
        result = { code: 0, ...(await run(process.execPath, [SCRIPT, ...args], { env })) };
      } catch (err) {
        result = err as { code: number; stdout: string; stderr: string };
      }
      return { ...result, calls: readFileSync(join(dir, "calls"), "utf8").split("\n").filter(Boolean) };
    },
  };
}

const INTX_SECRETS = [
  "CONSOLE_SESSION_SECRET",
  "INTX_API_KEY",
  "INTX_API_PASSPHRASE",
  "INTX_API_SECRET",
  "RELAY_TOKENS",
];
const INTX_QUEUES = ["skewguard-intx-deliveries", "skewguard-intx-alerts"];
const READY: State = { queues: INTX_QUEUES, databases: ["skewguard-intx"], secrets: INTX_SECRETS, deployed: true };
const MIGRATE = "d1 migrations apply DB --remote --env intx";
const STEADY = ["queues list --page 1", "d1 list --json", MIGRATE, "secret list --env intx", "deploy --env intx"];

// Each test spawns Node processes one after another (the script loads wrangler's config reader): allow for load.
describe("npm run deploy", { timeout: 60_000 }, () => {
  it("on a fresh account: creates the queues and the database, migrates, then names every secret to set", async () => {
    const w = standIn({ queues: [], databases: [], secrets: [], deployed: false });
    const first = await w.deploy(["--env", "intx"]);
    expect(first.calls).toEqual([
      "queues list --page 1",
      "queues create skewguard-intx-deliveries",
      "queues create skewguard-intx-alerts",
      "d1 list --json",
      "d1 create skewguard-intx",
      MIGRATE,
      "secret list --env intx",
    ]);
    expect(first.code).toBe(1);
    const puts = first.stderr.split("\n").filter((l) => l.includes("wrangler secret put"));
    expect(puts).toEqual(INTX_SECRETS.map((name) => `  npx wrangler secret put ${name} --env intx`));

    w.setState({ ...w.state(), secrets: INTX_SECRETS });
    const second = await w.deploy(["--env", "intx"]);
    expect(second.code).toBe(0);
    expect(second.calls).toEqual(STEADY);
    expect(second.stdout).toContain("deployed skewguard-intx --env intx");
  });

  it("a second run creates nothing and deploys again", async () => {
    const w = standIn(READY);
    for (let i = 0; i < 2; i++) {
      const again = await w.deploy(["--env", "intx"]);
      expect(again.code).toBe(0);
      expect(again.calls).toEqual(STEADY);
    }
    expect(w.state()).toMatchObject({ queues: INTX_QUEUES, databases: ["skewguard-intx"] });
  });

  it("a missing secret stops before deploying, with the line that sets it", async () => {
    const w = standIn({ ...READY, secrets: INTX_SECRETS.filter((s) => s !== "CONSOLE_SESSION_SECRET") });
    const out = await w.deploy(["--env", "intx"]);
    expect(out.code).toBe(1);
    expect(out.calls).toEqual(STEADY.slice(0, -1));
    expect(out.stderr).toContain("1 secret(s) the configuration needs are not set");
    expect(out.stderr).toContain("\n  npx wrangler secret put CONSOLE_SESSION_SECRET --env intx\n");
    expect(out.stderr).not.toContain("secret put INTX_API_KEY");
  });

  it("without --env: the top-level Worker, its own queues and database, and every venue's keys", async () => {
    const queues = ["skewguard-deliveries", "skewguard-alerts"];
    const w = standIn({ queues, databases: ["skewguard"], secrets: ["RELAY_TOKENS"], deployed: true });
    const out = await w.deploy([]);
    expect(out.calls).toEqual([
      "queues list --page 1",
      "d1 list --json",
      "d1 migrations apply DB --remote",
      "secret list",
    ]);
    const puts = out.stderr.split("\n").filter((l) => l.includes("wrangler secret put"));
    const missing = ["CDE_API_KEY", "CDE_API_PASSPHRASE", "CDE_API_SECRET", "CONSOLE_SESSION_SECRET"];
    const intx = ["INTX_API_KEY", "INTX_API_PASSPHRASE", "INTX_API_SECRET"];
    expect(puts).toEqual([...missing, ...intx].map((n) => `  npx wrangler secret put ${n}`));
  });

  it("stops at the first failing step, says what to do, and runs nothing after it", async () => {
    const w = standIn({ ...READY, fail: "d1 migrations apply" });
    const out = await w.deploy(["--env", "intx"]);
    expect(out.code).toBe(1);
    expect(out.calls).toEqual(["queues list --page 1", "d1 list --json", MIGRATE]);
    expect(out.stderr).toContain(`deploy stopped: \`wrangler ${MIGRATE}\` failed. Fix the migration`);
    expect(out.stderr).toContain("nothing was deployed");

    w.setState({ ...READY, queues: [], fail: "queues create" });
    const create = await w.deploy(["--env", "intx"]);
    expect(create.calls).toEqual(["queues list --page 1", "queues create skewguard-intx-deliveries"]);
    expect(create.stderr).toContain("A request to the Cloudflare API failed (canned).");
    expect(create.stderr).toContain("npx wrangler login");

    w.setState({ ...READY, fail: "deploy" });
    const deploy = await w.deploy(["--env", "intx"]);
    expect(deploy.code).toBe(1);
    expect(deploy.calls).toEqual(STEADY);
    expect(deploy.stdout).not.toContain("deployed skewguard-intx");
  });

  it("an environment wrangler.toml lacks, or an unknown argument, stops before any call", async () => {
    const w = standIn(READY);
    const out = await w.deploy(["--env", "nope"]);
    expect(out.code).toBe(1);
    expect(out.calls).toEqual([]);
    expect(out.stderr).toContain('No environment found in configuration with name "nope"');
    const usage = await w.deploy(["--envv", "intx"]);
    expect(usage.code).toBe(2);
    expect(usage.calls).toEqual([]);
    expect(usage.stderr).toContain("usage: npm run deploy [-- --env <name>]");
  });
});

const config = (vars: Record<string, unknown>): DeployConfig => ({ vars, queues: {}, d1_databases: [] });
const none = () => false;

describe("the secrets a configuration needs", () => {
  it("each route's, forward's and sink's secret, each account's keys, and the default keys they sign with", () => {
    const vars = {
      ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "cde" }]),
      HOOKS: JSON.stringify([
        {
          name: "tv",
          verify: "tradingview",
          secret_binding: "HOOK_TV",
          request: { venue: "intx", method: "GET", path: "/api/v1/portfolios" },
        },
      ]),
      JOBS: [
        {
          name: "funding",
          cron: "* * * * *",
          venue: "cde",
          account: "alpha",
          method: "GET",
          path: "/rest/funding-rate",
          forward: { url: "https://receiver.example/x", secret_binding: "FORWARD_SECRET" },
        },
      ],
      ALERTS: JSON.stringify([
        { name: "ops", url: "https://ops.example/a", format: "standard-webhooks", secret_binding: "ALERTS_KEY" },
      ]),
    };
    expect(requiredSecrets(config(vars), undefined, none)).toEqual([
      "ALERTS_KEY",
      "CDE_ALPHA_API_KEY",
      "CDE_ALPHA_API_PASSPHRASE",
      "CDE_ALPHA_API_SECRET",
      "CONSOLE_SESSION_SECRET",
      "FORWARD_SECRET",
      "HOOK_TV",
      "INTX_API_KEY",
      "INTX_API_PASSPHRASE",
      "INTX_API_SECRET",
      "RELAY_TOKENS",
    ]);
  });

  it("a venue's keys when the environment is named after it, or one of them is set; else every venue's", () => {
    const base = ["CONSOLE_SESSION_SECRET", "RELAY_TOKENS"];
    const keys = (p: string) => [`${p}API_KEY`, `${p}API_PASSPHRASE`, `${p}API_SECRET`];
    expect(requiredSecrets(config({}), "cde", none)).toEqual([...keys("CDE_"), ...base].sort());
    const intx = requiredSecrets(config({}), undefined, (n) => n === "INTX_API_KEY");
    expect(intx).toEqual([...base, ...keys("INTX_")].sort());
    expect(requiredSecrets(config({}), undefined, none)).toEqual([...keys("CDE_"), ...base, ...keys("INTX_")].sort());
  });

  it("reads the name column of wrangler's queue table", () => {
    const table = ["┌────┬──────┐", "│ id │ name │", "├────┼──────┤", "│ 1a │ q-deliveries │", "└────┴──────┘"];
    expect(queuesInTable(table.join("\n"))).toEqual(["q-deliveries"]);
    expect(queuesInTable("")).toEqual([]);
  });
});
