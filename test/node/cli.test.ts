// The signing CLI as a process: its JSON matches the library and an independent node:crypto HMAC for the same
// input, it reads .dev.vars, --curl prints the four headers, and every bad argument exits 2 with the usage.
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { importHmacKey, secretBytes } from "../../src/lib/key.ts";
import { signature } from "../../src/lib/sign.ts";

/** A scratch folder for one run, removed when the file's tests are done. */
const scratches: string[] = [];
function scratch(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratches.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of scratches) rmSync(dir, { recursive: true, force: true });
});

const run = promisify(execFile);
const CLI = resolve("cli/sign.ts");
const SECRET = Buffer.from("cli-test-secret-bytes-0123456789").toString("base64");
const CREDS = { CDE_API_KEY: "cde-key", CDE_API_SECRET: SECRET, CDE_API_PASSPHRASE: "cde-pass" };

async function sign(args: string[], env: Record<string, string> = CREDS, cwd = scratch("sg-")) {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, ...env },
      cwd,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const reference = (secretB64: string, text: string) =>
  createHmac("sha256", Buffer.from(secretB64, "base64")).update(text).digest("base64");

// Each test spawns Node processes one after another: a loaded machine can take seconds.
describe("sign CLI", { timeout: 30_000 }, () => {
  it("prints the prehash and headers; the signature matches node:crypto and the library", async () => {
    const body = '{"only_cancel_no_trading_lock":true,"note":"é"}';
    const out = await sign([
      "--venue",
      "cde",
      "--method",
      "post",
      "--url",
      "https://api.exchange.fairx.net/rest/kill-switch?x=1",
      "--timestamp",
      "1700000000",
      "--body",
      body,
    ]);
    expect(out.code).toBe(0);
    const prehash = `1700000000POST/rest/kill-switch${body}`;
    const key = await importHmacKey(secretBytes(SECRET, "base64", "T"));
    expect(JSON.parse(out.stdout)).toEqual({
      timestamp: 1700000000,
      prehash,
      headers: {
        "CB-ACCESS-KEY": "cde-key",
        "CB-ACCESS-PASSPHRASE": "cde-pass",
        "CB-ACCESS-SIGN": reference(SECRET, prehash),
        "CB-ACCESS-TIMESTAMP": "1700000000",
      },
    });
    expect(reference(SECRET, prehash)).toBe(await signature(key, 1700000000, "POST", "/rest/kill-switch", body));
  });

  it("--account alpha signs with INTX_ALPHA_API_*, by the Worker's prefix rule, not with the default key", async () => {
    const ALPHA = Buffer.from("alpha-secret-for-the-cli-test-32b").toString("base64");
    const env = {
      INTX_API_KEY: "default-key",
      INTX_API_SECRET: SECRET,
      INTX_API_PASSPHRASE: "default-pass",
      INTX_ALPHA_API_KEY: "alpha-key",
      INTX_ALPHA_API_SECRET: ALPHA,
      INTX_ALPHA_API_PASSPHRASE: "alpha-pass",
    };
    const args = [
      "--venue",
      "intx",
      "--method",
      "GET",
      "--url",
      "https://x.test/api/v1/portfolios",
      "--timestamp",
      "1700000000",
    ];
    const out = await sign([...args, "--account", "alpha"], env);
    expect(out.code).toBe(0);
    const headers = (JSON.parse(out.stdout) as { headers: Record<string, string> }).headers;
    expect(headers["CB-ACCESS-KEY"]).toBe("alpha-key");
    expect(headers["CB-ACCESS-PASSPHRASE"]).toBe("alpha-pass");
    expect(headers["CB-ACCESS-SIGN"]).toBe(reference(ALPHA, "1700000000GET/api/v1/portfolios"));
    const missing = await sign([...args, "--account", "beta"], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("INTX_BETA_API_KEY is not set");
    const bad = await sign([...args, "--account", "Alpha"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--account must be an account name");
  });

  it("reads credentials from ./.dev.vars, a body from a file, and prints a curl command with --curl", async () => {
    const cwd = scratch("sg-");
    writeFileSync(
      join(cwd, ".dev.vars"),
      `# dev\nINTX_API_KEY=ik\nINTX_API_SECRET="${SECRET}"\nINTX_API_PASSPHRASE='ip'\n`,
    );
    writeFileSync(join(cwd, "order.json"), '{"side":"BUY"}');
    const out = await sign(
      [
        "--venue",
        "intx",
        "--method",
        "POST",
        "--url",
        "https://x.test/api/v1/orders",
        "--timestamp",
        "1700000001",
        "--body-file",
        "order.json",
        "--curl",
      ],
      {},
      cwd,
    );
    expect(out.code).toBe(0);
    const sig = reference(SECRET, '1700000001POST/api/v1/orders{"side":"BUY"}');
    expect(out.stdout.trim()).toBe(
      `curl -sS -X POST 'https://x.test/api/v1/orders' -H 'CB-ACCESS-KEY: ik' -H 'CB-ACCESS-PASSPHRASE: ip' ` +
        `-H 'CB-ACCESS-SIGN: ${sig}' -H 'CB-ACCESS-TIMESTAMP: 1700000001' -H 'content-type: application/json' ` +
        `--data-binary '{"side":"BUY"}'`,
    );
  });

  it.each([
    ["no arguments", []],
    ["unknown flag", ["--venue", "cde", "--method", "GET", "--url", "https://x.test/rest/a", "--nope"]],
    ["bad venue", ["--venue", "coinbase", "--method", "GET", "--url", "https://x.test/rest/a"]],
    ["missing method", ["--venue", "cde", "--url", "https://x.test/rest/a"]],
    ["relative url", ["--venue", "cde", "--method", "GET", "--url", "/rest/a"]],
    [
      "decimal timestamp",
      ["--venue", "cde", "--method", "GET", "--url", "https://x.test/rest/a", "--timestamp", "1.5"],
    ],
    [
      "millisecond timestamp",
      ["--venue", "cde", "--method", "GET", "--url", "https://x.test/rest/a", "--timestamp", "1700000000000"],
    ],
    [
      "both bodies",
      ["--venue", "cde", "--method", "POST", "--url", "https://x.test/rest/a", "--body", "{}", "--body-file", "f"],
    ],
    [
      "unreadable file",
      ["--venue", "cde", "--method", "POST", "--url", "https://x.test/rest/a", "--body-file", "nope.json"],
    ],
  ])("%s: exit 2 with the usage", async (_what, args) => {
    const out = await sign(args);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe("");
    expect(out.stderr).toContain("usage: npm run --silent sign --");
  });

  it("missing credentials name the variable and exit 2; a bad secret is a configuration error", async () => {
    const missing = await sign(["--venue", "intx", "--method", "GET", "--url", "https://x.test/api/v1/portfolios"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("INTX_API_KEY is not set");
    const bad = await sign(["--venue", "cde", "--method", "GET", "--url", "https://x.test/rest/a"], {
      ...CREDS,
      CDE_API_SECRET: "not base64!",
    });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("CDE_API_SECRET:");
    expect(bad.stderr).not.toContain("not base64!");
  });
});
