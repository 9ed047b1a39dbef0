// `npm run test:browser`: the operator console (GET /console) in a real headless Chromium, against the real local
// stack that `npm start` runs (skewguard on :8787, the simulator on :8788, offline).
//
// The stack runs in a temporary copy of this checkout (node_modules linked, not copied), with `.dev.vars` made from
// `.dev.vars.example` by `npm start` itself and fresh local D1 and Durable Object state. So the run is the same
// whatever the developer's own `.dev.vars` or `.wrangler/state` hold, and neither is touched.
//
// The browser is Chromium from the system (CHROMIUM_PATH, default /usr/bin/chromium): playwright-core never
// downloads one. Quiet on success: the time taken, then a closing "browser: N passed, 0 failed"; on failure also
// what failed and the stack's output.
//
// It screenshots the console, full page at 1280 px wide, to a temporary file; with `--screenshot`
// (`npm run test:browser -- --screenshot`) to docs/console.png instead, to refresh the picture in the docs.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Browser, chromium } from "playwright-core";
import { Webhook } from "standardwebhooks";

const ROOT = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const BIN = join(ROOT, "node_modules/.bin");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const RELAY = "http://127.0.0.1:8787";
const SIM = "http://127.0.0.1:8788";
const TOKEN = "dev-token-change-me"; // .dev.vars.example's dev token
const KILL_SECRET = "whsec_ZGV2LWtpbGwtc3dpdGNoLXNlY3JldC0zMi1ieXRlcyE="; // .dev.vars.example's HOOK_KILL_SECRET
const COOKIE = "__Host-skewguard-console";
const SCREENSHOT = process.argv.includes("--screenshot")
  ? join(ROOT, "docs/console.png")
  : join(tmpdir(), "skewguard-console.png");
const STARTED = Date.now();

let passed = 0;
function check(ok: unknown, what: string): void {
  if (!ok) throw new Error(`check failed: ${what}`);
  passed++;
}

/** Polls `probe` until it returns something other than undefined; throws with `what` after `ms`. */
async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}`);
}

const api = (path: string, init: RequestInit = {}) =>
  fetch(RELAY + path, {
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.body ? { "content-type": "application/json" } : {}) },
    signal: AbortSignal.timeout(15_000),
  });

async function json(path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await api(path, init);
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: { text } };
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

// ---- the stack -------------------------------------------------------------------------------------------------

interface Stack {
  output: () => string;
  ready: () => Promise<unknown>;
  stop: () => Promise<void>;
}

/** A copy of the checkout in a temporary folder, as a fresh clone would be, minus anything local. */
function checkoutCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "skewguard-browser-"));
  const skip = new Set(["node_modules", ".git", ".wrangler", "dist", "docs", "bench", "test"]);
  cpSync(ROOT, dir, {
    recursive: true,
    filter: (source) => {
      const rel = source.slice(ROOT.length + 1);
      const top = rel.split("/")[0] ?? "";
      if (rel === "") return true;
      if (skip.has(top)) return false;
      return !(top.startsWith(".dev.vars") && top !== ".dev.vars.example"); // the developer's own secrets stay put
    },
  });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

async function portsFree(): Promise<void> {
  for (const url of [RELAY, SIM]) {
    if (await answers(url)) throw new Error(`something already answers on ${url}: stop \`npm start\` first`);
  }
}

/** `npm start` in `dir`, in a process group of its own: npm, scripts/start.ts, both `wrangler dev` and workerd. */
function startStack(dir: string): Stack {
  const child: ChildProcess = spawn("npm", ["start"], {
    cwd: dir,
    // node_modules/.bin first, so npm start and wrangler run on the pinned Node 24 even when the caller's is older.
    env: { ...process.env, PATH: `${BIN}:${process.env.PATH}`, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const group = child.pid as number;
  const alive = () => {
    try {
      process.kill(-group, 0);
      return true;
    } catch {
      return false;
    }
  };
  // Ctrl-C, as a user stops `npm start`; whatever is left after 5 s is killed.
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (const [signal, wait] of [
        ["SIGINT", 5_000],
        ["SIGKILL", 2_000],
      ] as const) {
        if (!alive()) return;
        try {
          process.kill(-group, signal);
        } catch {}
        const deadline = Date.now() + wait;
        while (alive() && Date.now() < deadline) await sleep(100);
      }
    })();
    return stopping;
  };
  const ready = () =>
    until("the stack to answer (GET /health on :8787 and the simulator on :8788)", 90_000, async () => {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}`);
      const health = await fetch(`${RELAY}/health`, { signal: AbortSignal.timeout(2_000) });
      const sim = await fetch(`${SIM}/_sim/control`, { signal: AbortSignal.timeout(2_000) });
      return health.status > 0 && sim.ok ? true : undefined;
    });
  return { output: () => out, stop, ready };
}

// ---- seed data, through skewguard ------------------------------------------------------------------------------

async function seed(): Promise<string> {
  // Relayed reads, so each venue's clock has an estimate (and the ClockState a history row).
  for (const path of ["/intx/api/v1/portfolios", "/cde/rest/funding-rate?symbol=BIPZ30"]) {
    for (let i = 0; i < 2; i++) {
      const r = await json(path);
      check(r.status === 200, `GET ${path} through skewguard answers 200 (got ${r.status} ${JSON.stringify(r.body)})`);
    }
  }
  // A scheduled run of the every-minute jobs (intx-positions), through wrangler's --test-scheduled route.
  const cron = await fetch(`${RELAY}/__scheduled?cron=*+*+*+*+*`);
  check(cron.ok, `GET /__scheduled answers 2xx (got ${cron.status})`);
  await until("a recorded run of intx-positions", 15_000, async () => {
    const r = await json("/jobs/intx-positions/runs?limit=1");
    return Array.isArray(r.body.runs) && r.body.runs.length > 0 ? true : undefined;
  });
  // A guard refusal (account alpha: max_size 0.5 for BTC-PERP), which also raises an order.refused alert.
  const refused = await json("/intx/alpha/api/v1/orders", { method: "POST", body: JSON.stringify(order("2")) });
  check(refused.status === 422, `an order over alpha's max_size is refused with 422 (got ${refused.status})`);
  // A dead letter: the simulator redirects the next venue request, so the queued CDE kill-switch dies.
  const fault = await fetch(`${SIM}/_sim/control`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fault: { kind: "redirect", count: 1 } }),
  });
  check(fault.ok, `the simulator takes the redirect fault (got ${fault.status})`);
  const id = await sendKillSwitch();
  await until(`delivery ${id} to be dead-lettered`, 30_000, async () => {
    const r = await json(`/deliveries/${id}`);
    if (r.body.state === "delivered") throw new Error(`delivery ${id} was delivered, not dead-lettered`);
    return r.body.state === "dead" ? true : undefined;
  });
  return id;
}

/** An INTX order for account alpha (portfolio 2alp7hq3-1-0 in the simulator). */
function order(size: string) {
  return {
    client_order_id: randomUUID(),
    side: "BUY",
    size,
    price: "50000",
    type: "LIMIT",
    tif: "GTC",
    instrument: "BTC-PERP",
    portfolio: "2alp7hq3-1-0",
  };
}

/** docs/webhooks.md "Senders": the Standard Webhooks kill-switch to /hooks/cde-kill; returns the delivery id. */
async function sendKillSwitch(): Promise<string> {
  const body = JSON.stringify({ reason: "browser test" });
  const id = `msg_${randomUUID()}`;
  const now = new Date();
  const r = await fetch(`${RELAY}/hooks/cde-kill`, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": new Webhook(KILL_SECRET).sign(id, now, body),
    },
  });
  const answer = (await r.json()) as { delivery_id?: string };
  check(r.status === 202 && answer.delivery_id, `the kill-switch webhook is queued: 202 (got ${r.status})`);
  return answer.delivery_id as string;
}

// ---- the browser -----------------------------------------------------------------------------------------------

async function console_(browser: Browser, deadId: string): Promise<void> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  // A fake clock for the page's timers, so the 30 s refresh is checked without waiting 30 s.
  await page.clock.install();
  const foreign: string[] = [];
  const cspViolations: string[] = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== RELAY) foreign.push(request.url());
  });
  page.on("console", (message) => {
    if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  const text = async (selector: string) => ((await page.locator(selector).first().textContent()) ?? "").trim();

  /**
   * Clicks a form's button and waits for the page it leads to; checks that page's URL. On a miss, says what the
   * POST answered and the headers the console's origin check reads.
   */
  async function submit(button: string, expected: RegExp, what: string): Promise<void> {
    const [posted] = await Promise.all([
      page.waitForRequest((r) => r.method() === "POST" && r.isNavigationRequest()),
      page.click(button),
    ]);
    await page.waitForLoadState("load");
    if (expected.test(page.url()) && !(await page.locator("#login-error").count())) return void passed++;
    const headers = await posted.allHeaders();
    const answer = await posted.response();
    const body = ((await page.locator("body").textContent()) ?? "").replace(/\s+/g, " ").trim().slice(0, 300);
    throw new Error(
      `${what}: POST ${new URL(posted.url()).pathname} answered ${answer?.status()} and the page is ${page.url()}: ` +
        `"${body}". The browser sent Origin: ${headers.origin ?? "(none)"}, Sec-Fetch-Site: ` +
        `${headers["sec-fetch-site"] ?? "(none)"}, Referer: ${headers.referer ?? "(none)"}.`,
    );
  }

  /** The panels' words and units: guards, times, sink results, the one list of deliveries, a job's runs. */
  async function panels(deadId: string): Promise<void> {
    const guards = 'tr[data-account="intx/alpha"] details.guards';
    const summary = await text(`${guards} summary`);
    check(
      summary === "BTC-PERP, ETH-PERP; max size BTC-PERP 0.5 (*: 5); max notional *: 250000; LIMIT, MARKET; 30/min",
      `alpha's guards are one line (${summary})`,
    );
    check(!(await page.locator(`${guards} pre`).isVisible()), "their JSON is hidden");
    await page.locator(`${guards} summary`).click();
    check(/"max_orders_per_minute": 30/.test(await text(`${guards} pre`)), "and shown on demand");
    await page.locator(`${guards} summary`).click();
    const job = await text('section#jobs tr[data-job="intx-positions"]');
    const time = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · (just now|\d+ (s|min) ago)/;
    check(
      time.test(job) && /GET \/api\/v1\/portfolios\/\S+ /.test(job) && / 200$/.test(job),
      `#jobs' last run (${job})`,
    );
    const heights = await page.locator(".when").evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    check(heights.length > 3 && heights.every((h) => h > 0 && h < 24), `every time is on one line (${heights})`);
    const deadRow = `section#deliveries table#deliveries-list tr.dead[data-delivery="${deadId}"]`;
    check(/dead: venue redirect/.test(await text(deadRow)), `#deliveries lists ${deadId} as dead`);
    check((await page.locator(`section#deliveries tr[data-delivery="${deadId}"]`).count()) === 1, "once");
    const buttons = await page.locator("section#deliveries form.redrive").count();
    const dead = await page.locator("section#deliveries tr.dead").count();
    check(buttons === dead, `a Re-drive button on each dead delivery only (${buttons} buttons, ${dead} dead)`);
    const alerts = await text("section#alerts");
    check(/order\.refused/.test(alerts), "#alerts shows the guard refusal");
    check(/delivery\.dead_lettered/.test(alerts), "#alerts shows the dead letter");
    const sends = await page.locator("section#alerts .send").allTextContents();
    check(
      sends.length > 0 &&
        sends.every((s) => /^(local: (sent|queued|failed( after \d+ attempts?)?.*)|no sink)$/.test(s)),
      `the alerts' Sent column is words (${sends.join(" | ")})`,
    );
    await page.goto(`${RELAY}/console?job=intx-positions`);
    const run = await text("table#runs tr:nth-child(2)");
    check(
      /GET \/api\/v1\/portfolios\/\S+/.test(run) && /\d[\d,]* B/.test(run) && /\d[\d,]* ms/.test(run),
      `a run says what it fetched, its size and how long it took, with units (${run})`,
    );
    await page.goto(`${RELAY}/console`);
  }

  /** Halt everything and resume everything, each with its confirmation; orders are refused in between. */
  async function everything(): Promise<void> {
    await page.fill("form.halt-all input[name=reason]", "browser test: all");
    await submit("form.halt-all button", /\/console\/halt-all$/, "asking to halt everything");
    const asked = await text("section#confirm");
    check(
      /Halt every account\?/.test(asked) && /PUT \/halt/.test(asked) && /intx\/alpha/.test(asked),
      `it asks (${asked})`,
    );
    await submit("form#confirm-form button", /done=halted_all/, "halting everything");
    check((await text("#notice")) === "Halted every account", `the notice says so (${await text("#notice")})`);
    const order_ = await json("/intx/alpha/api/v1/orders", { method: "POST", body: JSON.stringify(order("0.01")) });
    check(order_.status === 423, `with everything halted, an order is refused with 423 (got ${order_.status})`);
    await submit("form.resume-all button", /\/console\/resume-all$/, "asking to resume everything");
    check(/DELETE \/halt/.test(await text("section#confirm")), "resuming everything asks too");
    await submit("form#confirm-form button", /done=resumed_all/, "resuming everything");
    check((await page.locator("form.resume-all").count()) === 0, "and every account trades again");
  }

  /** The page refreshes itself every 30 s, unless something is typed in it. */
  async function refresh(): Promise<void> {
    await page.goto(`${RELAY}/console`);
    await page.evaluate(() => Object.assign(window, { beforeRefresh: true }));
    const reason = 'tr[data-account="intx/alpha"] form.halt input[name=reason]';
    await page.fill(reason, "half-typ");
    await page.locator("h1").click(); // the field loses the focus, and keeps its text
    await page.clock.runFor(65_000);
    const kept = await page.evaluate(() => "beforeRefresh" in window);
    check(kept && (await page.inputValue(reason)) === "half-typ", "a half-typed reason stops the refresh");
    await page.fill(reason, "");
    await page.locator("h1").click();
    await Promise.all([page.waitForEvent("load"), page.clock.runFor(31_000).catch(() => undefined)]);
    check(!(await page.evaluate(() => "beforeRefresh" in window)), "with nothing typed, the page refreshes by itself");
    check(new URL(page.url()).search === "", `without the last action's notice (${page.url()})`);
  }

  // The login form, with the strict CSP.
  const first = await page.goto(`${RELAY}/console`);
  check(first?.status() === 200, `GET /console answers 200 (got ${first?.status()})`);
  const csp = (await first?.allHeaders())?.["content-security-policy"] ?? "";
  check(/default-src 'none'/.test(csp) && /frame-ancestors 'none'/.test(csp), `GET /console has a strict CSP: ${csp}`);
  check(await page.locator("form#login input[name=token]").isVisible(), "the login form is shown");

  // Log in: a __Host- session cookie, HttpOnly, Secure, SameSite=Strict.
  await page.fill("form#login input[name=token]", TOKEN);
  await submit("form#login button[type=submit]", /\/console$/, "logging in with the dev token");
  const cookie = (await context.cookies(RELAY)).find((c) => c.name === COOKIE);
  check(cookie, `the session cookie ${COOKIE} is set`);
  check(
    cookie?.httpOnly && cookie.secure && cookie.sameSite === "Strict" && cookie.path === "/",
    `the session cookie is HttpOnly, Secure, SameSite=Strict, Path=/ (${JSON.stringify(cookie)})`,
  );
  check(!(await page.evaluate(() => document.cookie)).includes(COOKIE), "page scripts cannot read it");
  check((await text("#who")) === "dev", "the console says who is logged in");

  // The panels, with the seeded data.
  check(await page.locator("section#problems").isVisible(), "#problems is shown");
  for (const venue of ["intx", "cde"]) {
    check(
      /Clock: offset [+-]?\d+ ms/.test(await text(`section#venue-${venue}`)),
      `#venue-${venue} shows a clock offset`,
    );
    check(
      await page.locator(`section#venue-${venue} svg.chart`).isVisible(),
      `#venue-${venue} draws its clock history`,
    );
    const chart = await text(`section#venue-${venue} svg.chart`);
    check(
      /time \(UTC\)/.test(chart) && /offset \(ms\)/.test(chart) && /\d\d:\d\d/.test(chart),
      `#venue-${venue}'s chart labels both axes, with times (${chart})`,
    );
    check(
      /± uncertainty/.test(chart) && /step \(moved more than 1,000 ms\)/.test(chart),
      `and has a legend (${chart})`,
    );
  }
  await panels(deadId);

  // Halt account alpha; the API then refuses its orders with 423. Resume.
  const alpha = 'tr[data-account="intx/alpha"]';
  await page.fill(`${alpha} form.halt input[name=reason]`, "browser test");
  await submit(`${alpha} form.halt button`, /done=halted/, "halting intx/alpha");
  check(
    (await text("#notice")) === "Halted: intx/alpha",
    `the notice says Halted: intx/alpha (${await text("#notice")})`,
  );
  check(
    /halted: browser test \(by dev, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC · /.test(await text(alpha)),
    "alpha's row says halted, why and by whom",
  );
  const halted = await json("/intx/alpha/api/v1/orders", { method: "POST", body: JSON.stringify(order("0.01")) });
  check(halted.status === 423, `an order for the halted alpha is refused with 423 (got ${halted.status})`);
  await submit(`${alpha} form.resume button`, /done=resumed/, "resuming intx/alpha");
  check(
    (await text("#notice")) === "Resumed: intx/alpha",
    `the notice says Resumed: intx/alpha (${await text("#notice")})`,
  );
  check(/trading/.test(await text(alpha)) && (await page.locator(`${alpha} form.halt`).count()) === 1, "alpha trades");

  await everything();
  await refresh();

  // Re-drive the dead letter, after a confirmation that names what it sends; it is delivered this time (the fault
  // fired once).
  const deadRow = `section#deliveries table#deliveries-list tr.dead[data-delivery="${deadId}"]`;
  await submit(`${deadRow} form.redrive button`, /\/console\/redrive$/, `asking to re-drive ${deadId}`);
  const confirmation = await text("section#confirm");
  check(
    /Re-drive this delivery\?/.test(confirmation) && /request\s*POST cde\/default \/\S+/.test(confirmation),
    `the re-drive's confirmation names the method, venue/account and path (${confirmation})`,
  );
  check((await json(`/deliveries/${deadId}`)).body.state === "dead", "nothing is sent before the confirmation");
  await submit("form#confirm-form button", /done=redriven/, `re-driving ${deadId}`);
  check((await text("#notice")).startsWith(`Re-driven`), `the notice says Re-driven (${await text("#notice")})`);
  await until(`delivery ${deadId} to be delivered after the re-drive`, 30_000, async () => {
    const r = await json(`/deliveries/${deadId}`);
    return r.body.state === "delivered" ? true : undefined;
  });
  passed++;

  // A test alert: every sink (the dev config's `local`, the simulator's receiver) is posted to, and the notice says so.
  await submit("form#alert-test button", /done=alert_sent/, "sending a test alert");
  check(
    (await text("#notice")) === "Test alert sent: local sent",
    `the notice names each sink and how it went (${await text("#notice")})`,
  );

  // The screenshot for the docs: the console as it is now, every panel filled.
  await page.goto(`${RELAY}/console`);
  const recent = await text(`table#deliveries-list tr[data-delivery="${deadId}"]`);
  check(/delivered/.test(recent), `the console shows the re-driven delivery as delivered (${recent})`);
  check((await page.locator(deadRow).count()) === 0, "and no longer as dead, with no Re-drive button");
  await page.locator('tr[data-account="intx/alpha"] details.guards summary').click(); // the JSON, on demand
  await page.screenshot({ path: SCREENSHOT, fullPage: true });

  // Log out: the login form is back, and the cookie is gone.
  await submit("form#logout button", /\/console$/, "logging out");
  check(await page.locator("form#login").isVisible(), "after logging out, the login form is back");
  check(!(await context.cookies(RELAY)).some((c) => c.name === COOKIE && c.value), "and the session cookie is gone");

  check(foreign.length === 0, `the page asks no other origin (asked: ${foreign.join(", ")})`);
  check(cspViolations.length === 0, `no CSP violation: ${cspViolations.join("; ")}`);
  await context.close();
}

// ---- main ------------------------------------------------------------------------------------------------------

let failed: unknown;
let stack: Stack | undefined;
let browser: Browser | undefined;
const dir = checkoutCopy();
const cleanup = async () => {
  await browser?.close().catch(() => {});
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}
try {
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM} (set CHROMIUM_PATH, or apt-get install chromium)`);
  await portsFree();
  stack = startStack(dir);
  await stack.ready();
  const deadId = await seed();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true });
  await console_(browser, deadId);
} catch (err) {
  failed = err;
} finally {
  await cleanup();
}

const seconds = ((Date.now() - STARTED) / 1000).toFixed(1);
if (failed) {
  const output = stack?.output() ?? "";
  console.error(`--- npm start output (last 4000 characters) ---\n${output.slice(-4000)}\n---`);
  console.error(failed);
  console.log(`the console in Chromium: failed after ${seconds} s`);
  console.log(`browser: ${passed} passed, 1 failed`);
  process.exit(1);
}
console.log(`the console in Chromium: ${seconds} s, screenshot ${SCREENSHOT.replace(`${ROOT}/`, "")}`);
console.log(`browser: ${passed} passed, 0 failed`);
