// The venue probe as a process, against the simulator on a loopback port in each of its refusal modes (the body of
// a timestamp refusal, its status, plain text when Accept does not ask for JSON, a front's page), against an echo
// server that repeats the credentials it is sent, and with bad arguments. Every run is also checked for leaks: no
// key, passphrase, secret or CB-ACCESS-SIGN (raw, JSON-escaped or percent-encoded) in stdout or stderr.
import { execFile } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Report } from "../../cli/probe-venue.ts";
import { redactor } from "../../cli/probe-venue.ts";
import { DEV_VARS, type LocalSim, startSim } from "./local-worker.ts";

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
const CLI = resolve("cli/probe-venue.ts");

/** The dev credentials, without the base URLs (each test says where to probe). */
const CREDS = Object.fromEntries(Object.entries(DEV_VARS).filter(([name]) => !name.endsWith("_BASE_URL")));

const READ = { intx: "/api/v1/portfolios", cde: "/rest/v2/positions" } as const;
const ROOT = { intx: "/api/v1/", cde: "/rest/" } as const;
type Venue = keyof typeof READ;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function probe(args: string[], env: Record<string, string> = CREDS, cwd = scratch("sg-")) {
  let out: Run;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, ...env },
      cwd,
    });
    out = { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    out = { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
  expectNoCredential(out, env);
  return out;
}

/** Every form a credential could leak in: raw, JSON-escaped and percent-encoded. */
function forms(value: string): string[] {
  return [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)];
}

/**
 * No credential of `env` appears in the output, nor any signature of a GET of the API root or the read made with
 * any of those secrets at any 10-digit timestamp the output names (the probe's two timestamps), nor one second off.
 */
function expectNoCredential(out: Run, env: Record<string, string>): void {
  const printed = out.stdout + out.stderr;
  const secrets = Object.entries(env).filter(([name]) => /_API_(KEY|SECRET|PASSPHRASE)$/.test(name));
  const leaks: string[] = secrets.map(([, value]) => value);
  const stamps = new Set<number>();
  for (const m of printed.matchAll(/\b\d{10}\b/g)) for (const d of [-1, 0, 1]) stamps.add(Number(m[0]) + d);
  for (const [name, secret] of secrets) {
    if (!name.endsWith("_SECRET")) continue;
    for (const t of stamps) {
      for (const path of [...Object.values(READ), ...Object.values(ROOT)]) {
        leaks.push(createHmac("sha256", Buffer.from(secret, "base64")).update(`${t}GET${path}`).digest("base64"));
      }
    }
  }
  for (const leak of leaks) for (const form of forms(leak)) expect(printed).not.toContain(form);
}

const report = (out: Run) => JSON.parse(out.stdout) as Report;
const answer = (r: Report, id: string) => r.answers.find((a) => a.id === id);
const failed = (r: Report) => r.checks.filter((c) => c.ok === false).map((c) => c.id);
const check = (r: Report, id: string) => r.checks.find((c) => c.id === id);

const GENERIC = {
  intx: '{"title":"io.javalin.http.UnauthorizedResponse: Unauthorized","status":401}',
  cde: '{"message":"Unauthorized"}',
};
const EXPIRED = '{"message":"request timestamp expired"}';
const V2 = '{"errors":[{"id":"authentication_error","message":"request timestamp expired"}]}';

/**
 * What the strict simulator answers each of the five requests: the root unsigned (a generic 401, plain text when
 * Accept is not JSON), the read 200, the stale read `status` with `body` (its words as plain text without JSON).
 */
function expectAnswers(r: Report, venue: Venue, status: number, body: string, plain: string) {
  const root = ROOT[venue];
  const read = READ[venue];
  const date = { imfFixdate: true, age: null, teachesClock: true };
  expect(answer(r, "1a")).toMatchObject({
    path: root,
    accept: "application/json",
    status: 401,
    contentType: "application/json",
    body: GENERIC[venue],
    ...date,
  });
  expect(answer(r, "1b")).toMatchObject({
    path: root,
    accept: "*/*",
    status: 401,
    contentType: "text/plain",
    body: "Unauthorized",
    ...date,
  });
  expect(answer(r, "2")).toMatchObject({ path: read, status: 200, contentType: "application/json", ...date });
  expect(answer(r, "2")?.body).toBeUndefined();
  expect(answer(r, "3a")).toMatchObject({ path: read, status, contentType: "application/json", body, ...date });
  expect(answer(r, "3b")).toMatchObject({ path: read, status, contentType: "text/plain", body: plain, ...date });
  expect(r.clock.staleTimestamp).toBe(answer(r, "3a")?.timestamp);
  expect(answer(r, "2")?.timestamp).toBe(r.clock.goodTimestamp);
  // 60 s before the venue's now when it is sent, a moment after the good read (which may be a second earlier).
  expect(r.clock.goodTimestamp - r.clock.staleTimestamp).toBeGreaterThanOrEqual(59);
  expect(r.clock.goodTimestamp - r.clock.staleTimestamp).toBeLessThanOrEqual(60);
  expect(r.rateLimitHeaders).toEqual({});
}

/** Every expectation holds; the words alone recognise the stale refusal or not. */
function expectAllHold(out: Run, words: boolean) {
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  const r = report(out);
  expect(r.ok).toBe(true);
  expect(r.checks.map((c) => [c.id, c.ok])).toEqual([
    ["root_teaches_clock", true],
    ["read_2xx", true],
    ["stale_json_timestamp_rejection", true],
    ["stale_json_not_auth_refusal", true],
    ["stale_json_teaches_clock", true],
    ["stale_json_words", null],
    ["stale_any_timestamp_rejection", true],
    ["stale_any_not_auth_refusal", true],
    ["stale_any_teaches_clock", true],
    ["stale_any_words", null],
  ]);
  for (const id of ["stale_json_words", "stale_any_words"]) {
    expect(check(r, id)?.text).toContain(words ? "its words alone say" : "its words alone would not have told");
  }
  return r;
}

// Each test spawns a Node process that sends five requests: a loaded machine can take seconds.
describe("probe-venue CLI", { timeout: 60_000 }, () => {
  let sim: LocalSim;
  beforeAll(async () => {
    sim = await startSim();
  }, 120_000);
  afterAll(() => sim?.stop());
  // The simulator's clock 37 s ahead (its default): the read lands only if the probe learned it from step 1.
  beforeEach(async () => {
    await sim.simControl({ reset: true, skew_ms: 37_250, up_ms: [0, 5], down_ms: [0, 5] });
  });
  const at = () => ["--base-url", sim.url, "--json"];

  it("INTX, generic refusal (401, Javalin's body): every expectation holds from the Date alone", async () => {
    const out = await probe(["--venue", "intx", ...at()]);
    const r = expectAllHold(out, false);
    expect(r).toMatchObject({ venue: "intx", account: "default", baseUrl: sim.url, windowSeconds: 5 });
    expect(r.clock.offsetMs).toBeGreaterThan(36_000);
    expect(r.clock.offsetMs).toBeLessThan(39_000);
    expectAnswers(r, "intx", 401, GENERIC.intx, "Unauthorized");
    expect(check(r, "stale_json_timestamp_rejection")?.text).toMatch(/outside the 5 s window/);
  });

  it("CDE, generic refusal (400 by default): every expectation holds", async () => {
    const r = expectAllHold(await probe(["--venue", "cde", ...at()]), false);
    expectAnswers(r, "cde", 400, GENERIC.cde, "Unauthorized");
  });

  it('timestamp_body "expired": the legacy words, which alone would also have told', async () => {
    await sim.simControl({ timestamp_body: "expired" });
    const intx = expectAllHold(await probe(["--venue", "intx", ...at()]), true);
    expectAnswers(intx, "intx", 401, EXPIRED, "request timestamp expired");
    const cde = expectAllHold(await probe(["--venue", "cde", ...at()]), true);
    expectAnswers(cde, "cde", 400, EXPIRED, "request timestamp expired");
  });

  it('timestamp_body "v2": Coinbase v2 errors[] shape, recognised by its words too', async () => {
    await sim.simControl({ timestamp_body: "v2" });
    const intx = expectAllHold(await probe(["--venue", "intx", ...at()]), true);
    expectAnswers(intx, "intx", 401, V2, "request timestamp expired");
    const cde = expectAllHold(await probe(["--venue", "cde", ...at()]), true);
    expectAnswers(cde, "cde", 400, V2, "request timestamp expired");
  });

  it("timestamp_status 400 for INTX and 401 for CDE: both still timestamp refusals, neither an auth refusal", async () => {
    await sim.simControl({ timestamp_status: { intx: 400, cde: 401 } });
    const intx = expectAllHold(await probe(["--venue", "intx", ...at()]), false);
    expectAnswers(intx, "intx", 400, GENERIC.intx, "Unauthorized");
    const cde = expectAllHold(await probe(["--venue", "cde", ...at()]), false);
    expectAnswers(cde, "cde", 401, GENERIC.cde, "Unauthorized");
  });

  it("a stale refusal in a status skewguard does not read (403): exit 1, the report names what fails", async () => {
    await sim.simControl({ timestamp_status: { intx: 403 } });
    const out = await probe(["--venue", "intx", ...at()]);
    expect(out.code).toBe(1);
    const r = report(out);
    expect(r.ok).toBe(false);
    expect(failed(r)).toEqual(["stale_json_timestamp_rejection", "stale_any_timestamp_rejection"]);
    expect(answer(r, "3a")?.status).toBe(403);
    const text = await probe(["--venue", "intx", "--base-url", sim.url]);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain("FAIL  3a: the stale read's 403 is NOT read as a timestamp refusal");
    expect(text.stdout).toContain(
      "2 expectations do not hold: stale_json_timestamp_rejection, stale_any_timestamp_rejection.",
    );
  });

  it("INTX_WINDOW_SECONDS=120 makes 60 s stale inside the window: skewguard would call it an auth refusal", async () => {
    const out = await probe(["--venue", "intx", ...at()], { ...CREDS, INTX_WINDOW_SECONDS: "120" });
    expect(out.code).toBe(1);
    const r = report(out);
    expect(r.windowSeconds).toBe(120);
    expect(failed(r)).toEqual([
      "stale_json_timestamp_rejection",
      "stale_json_not_auth_refusal",
      "stale_any_timestamp_rejection",
      "stale_any_not_auth_refusal",
    ]);
    expect(check(r, "stale_json_timestamp_rejection")?.text).toMatch(/inside the 120 s window/);
  });

  it("the human report: each step, the Date lines, the expectations; base URL and keys from ./.dev.vars", async () => {
    await sim.simControl({ skew_ms: -20_000 });
    const cwd = scratch("sg-");
    const vars = Object.entries(CREDS).map(([name, value]) => `${name}="${value}"`);
    writeFileSync(join(cwd, ".dev.vars"), `# dev\n${vars.join("\n")}\nINTX_BASE_URL=${sim.url}\n`);
    const out = await probe(["--venue", "intx"], {}, cwd);
    expectNoCredential(out, CREDS);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    const lines = out.stdout.split("\n");
    expect(lines[0]).toBe(`probe-venue: intx, account default, ${sim.url} (timestamp window 5 s)`);
    expect(out.stdout).toContain(
      `1a  GET /api/v1/  Accept: application/json  ->  401 application/json\n         body: ${GENERIC.intx}`,
    );
    expect(out.stdout).toContain("1b  GET /api/v1/  Accept: */*  ->  401 text/plain\n         body: Unauthorized");
    expect(out.stdout).toMatch(/venue clock = local -(19|20)\.\d{3} s \(±0\.\d{3} s\); timestamp \d{10}\n/);
    expect(out.stdout).toMatch(
      /2 {3}GET \/api\/v1\/portfolios {2}Accept: application\/json {2}-> {2}200 application\/json/,
    );
    expect(out.stdout).toContain("4. Rate-limit headers (names matching rate, limit or retry)\n   none seen");
    expect(out.stdout).toMatch(
      /3b {2}\w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d GMT {2}IMF-fixdate, whole seconds; no Age;/,
    );
    expect(out.stdout).toContain("info  3a: its words alone would not have told");
    expect(out.stdout.trimEnd().endsWith("Every expectation holds.")).toBe(true);
  });

  it("a front's HTML 500 page (the reflect fault) teaches no clock and is no venue answer: exit 1", async () => {
    await sim.simControl({ fault: { kind: "reflect", count: 5 } });
    const out = await probe(["--venue", "intx", ...at()]);
    expect(out.code).toBe(1);
    const r = report(out);
    for (const a of r.answers) expect(a).toMatchObject({ status: 500, teachesClock: false });
    expect(answer(r, "3a")?.contentType).toBe("text/html; charset=utf-8");
    expect(r.clock.offsetMs).toBeNull();
    expect(failed(r)).toEqual([
      "root_teaches_clock",
      "read_2xx",
      "stale_json_timestamp_rejection",
      "stale_json_teaches_clock",
      "stale_any_timestamp_rejection",
      "stale_any_teaches_clock",
    ]);
  });

  it("an unreachable venue: each request says it got no answer, every expectation fails, exit 1", async () => {
    const env = {
      INTX_API_KEY: "unreachable-key",
      INTX_API_SECRET: Buffer.from("unreachable-secret-bytes-0123456").toString("base64"),
      INTX_API_PASSPHRASE: "unreachable-passphrase",
    };
    const out = await probe(["--venue", "intx", "--base-url", "http://127.0.0.1:9", "--json"], env);
    expect(out.code).toBe(1);
    const r = report(out);
    for (const a of r.answers) expect(a.error).toMatch(/^fetch failed/);
    expect(r.checks.filter((c) => c.ok === false)).toHaveLength(8);
    expect(r.clock.offsetMs).toBeNull();
    const text = await probe(["--venue", "intx", "--base-url", "http://127.0.0.1:9"], env);
    expect(text.stdout).toContain("GET /api/v1/portfolios  Accept: application/json  ->  no answer: fetch failed");
    expect(text.stdout).toContain(
      "8 expectations do not hold: root_teaches_clock, read_2xx, stale_json_timestamp_rejection",
    );
  });

  it("--account alpha probes with INTX_ALPHA_API_*", async () => {
    const env = {
      ...CREDS,
      INTX_ALPHA_API_KEY: "dev-intx-alpha-key",
      INTX_ALPHA_API_SECRET: "c2tld2d1YXJkLWRldi1pbnR4LWFscGhhLXNlY3JldCE=",
      INTX_ALPHA_API_PASSPHRASE: "dev-intx-alpha-passphrase",
    };
    const out = await probe(["--venue", "intx", "--account", "alpha", ...at()], env);
    expect(out.code).toBe(0);
    expect(report(out).account).toBe("alpha");
    const state = (await sim.simControl()) as { accounts: Record<string, { requests: number }> };
    expect(state.accounts["intx:alpha"]?.requests).toBe(1);
    expect(state.accounts["intx:default"]?.requests).toBe(0);
  });

  it.each([
    ["no arguments", []],
    ["bad venue", ["--venue", "coinbase"]],
    ["unknown flag", ["--venue", "intx", "--nope"]],
    ["a positional", ["--venue", "intx", "extra"]],
    ["plain http to a remote host", ["--venue", "intx", "--base-url", "http://example.com"]],
    ["a base URL with a path", ["--venue", "intx", "--base-url", "https://example.com/api"]],
    ["a bad account name", ["--venue", "intx", "--account", "Alpha"]],
  ])("%s: exit 2 with the usage, nothing sent", async (_what, args) => {
    const before = (await sim.simControl()) as { effects: { requests: number } };
    const out = await probe(args);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe("");
    expect(out.stderr).toContain("usage: npm run --silent probe-venue --");
    const after = (await sim.simControl()) as { effects: { requests: number } };
    expect(after.effects.requests).toBe(before.effects.requests);
  });

  it("missing or bad credentials exit 2 naming the variable, never its value", async () => {
    const missing = await probe(["--venue", "cde", "--base-url", sim.url], {});
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("CDE_API_KEY is not set");
    const half = await probe(["--venue", "cde", "--base-url", sim.url], { CDE_API_KEY: "cde-half-key" });
    expect(half.code).toBe(2);
    expect(half.stderr).toContain("CDE_API_SECRET, CDE_API_PASSPHRASE");
    const bad = await probe(["--venue", "cde", "--base-url", sim.url], { ...CREDS, CDE_API_SECRET: "not base64!" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("CDE_API_SECRET:");
    expect(bad.stderr).not.toContain("not base64!");
  });
});

/**
 * A venue that repeats every credential it is sent, in every form, in its bodies and in a rate-limit header: the
 * probe must print none of them. It answers 401 to everything, dated now, with two rate-limit headers.
 */
describe("probe-venue redaction", { timeout: 60_000 }, () => {
  let server: Server;
  let url: string;
  const signs = new Set<string>();
  // Characters that JSON, percent-encoding and HTML each escape differently.
  const env = {
    INTX_API_KEY: "echo-key/+=&<1>",
    INTX_API_SECRET: Buffer.from("echo-secret-bytes-0123456789abcdef").toString("base64"),
    INTX_API_PASSPHRASE: 'pa"ss\\wörd é/?',
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      const header = (name: string) => {
        const value = req.headers[name];
        return typeof value === "string" ? value : undefined;
      };
      const sign = header("cb-access-sign");
      if (sign !== undefined) signs.add(sign);
      // 300 characters of body hold about 24 redactions: key and passphrase when asked for JSON, else the rest.
      const values = (
        header("accept") === "application/json"
          ? [header("cb-access-key"), header("cb-access-passphrase")]
          : [sign, env.INTX_API_SECRET]
      ).filter((v) => v !== undefined);
      const echoed = values.flatMap((v) => [
        v,
        JSON.stringify(v).slice(1, -1),
        encodeURIComponent(v),
        encodeURIComponent(v).toLowerCase(),
        new URLSearchParams({ v }).toString().slice(2),
        v.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`),
      ]);
      res.writeHead(401, {
        "content-type": "application/json",
        date: new Date().toUTCString(),
        "x-ratelimit-remaining": "99",
        "retry-after": "1",
        "x-ratelimit-echo": encodeURIComponent(
          [header("cb-access-key"), header("cb-access-passphrase"), sign].filter((v) => v !== undefined).join(" "),
        ),
      });
      // JSON.stringify escapes each echoed form once more: the JSON form arrives escaped twice.
      res.end(JSON.stringify({ message: echoed.join(" | ") }));
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("no credential or signature is printed in any form; rate-limit headers are reported", async () => {
    const out = await probe(["--venue", "intx", "--base-url", url, "--json"], env);
    expect(signs.size).toBeGreaterThanOrEqual(2);
    const printed = out.stdout + out.stderr;
    for (const value of [...Object.values(env), ...signs]) {
      for (const form of [...forms(value), encodeURIComponent(value).toLowerCase()]) {
        expect(printed).not.toContain(form);
      }
    }
    expect(out.code).toBe(1);
    const r = report(out);
    // Every echoed form became one [redacted]: nothing else is left of the message.
    for (const id of ["3a", "3b"]) {
      const body = answer(r, id)?.body ?? "";
      expect(body.startsWith('{"message":"')).toBe(true);
      const parts = body.slice('{"message":"'.length).replace(/"}$/, "").split(" | ");
      expect(parts.length).toBeGreaterThan(10);
      for (const part of parts.slice(0, -1)) expect(part).toBe("[redacted]");
      expect("[redacted]".startsWith(parts.at(-1) as string)).toBe(true);
    }
    expect(r.rateLimitHeaders).toMatchObject({
      "1a x-ratelimit-remaining": "99",
      "1a retry-after": "1",
      "3b x-ratelimit-echo": "[redacted]%20[redacted]%20[redacted]",
    });
    expect(failed(r)).toEqual(["read_2xx"]);
    const text = await probe(["--venue", "intx", "--base-url", url], env);
    for (const value of [...Object.values(env), ...signs]) {
      for (const form of forms(value)) expect(text.stdout + text.stderr).not.toContain(form);
    }
    expect(text.stdout).toContain("1a x-ratelimit-remaining: 99");
  });

  it("redactor: raw, JSON-escaped, percent-encoded, form-encoded and HTML-escaped forms, longest first", () => {
    const redact = redactor(['a"b/c d', "key"]);
    expect(redact('x a"b/c d x a\\"b/c d x a%22b%2Fc%20d x a%22b%2fc+d x a&#34;b/c d x a&quot;b/c d x')).toBe(
      "x [redacted] x [redacted] x [redacted] x [redacted] x [redacted] x [redacted] x",
    );
    expect(redact("monkey KEY")).toBe("mon[redacted] [redacted]");
    expect(redactor([])("text")).toBe("text");
  });
});
