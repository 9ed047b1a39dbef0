// The console's routes in workerd: the login exchange and its cookie, sessions that end, CSRF and origin checks on
// every state change, the allow-lists behind each button, the security headers, and escaping of every value that
// comes from configuration, D1 or a venue.

import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { loggedOut } from "../../src/adapters/console-sessions.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import worker from "../../src/index.ts";
import { withBrokenD1 } from "../support/env.ts";
import { DEV_ALPHA, simEnv } from "../support/sim.ts";

const OPS = "console-ops-token-0123456789";
const VIEWER = "console-viewer-token-012345";
const BOT = "console-bot-token-0123456789";
const e = simEnv("console.sim.test", {
  ...DEV_ALPHA,
  ACCOUNTS: JSON.stringify([{ name: "alpha", venue: "intx", guards: { max_size: { "*": "1" } } }]),
  CONSOLE_SESSION_SECRET: "console-test-session-secret-0123456789abcdef",
  RELAY_TOKENS: JSON.stringify([
    {
      name: "ops",
      token: OPS,
      allow: [
        "GET /console",
        "GET /accounts",
        "GET /jobs",
        "GET /deliveries",
        "GET /alerts",
        "* /accounts/*/halt",
        "* /halt",
        "POST /deliveries/*/retry",
        "* /intx/*",
        "GET /orders",
        "POST /alerts/test",
      ],
    },
    { name: "viewer", token: VIEWER, allow: ["GET /console", "GET /accounts"] },
    { name: "bot", token: BOT, allow: ["* /intx/*"] },
  ]),
  JOBS: JSON.stringify([{ name: "positions", cron: "* * * * *", venue: "intx", path: "/api/v1/portfolios" }]),
});

async function call(path: string, init: RequestInit = {}, environment: Env = e) {
  const ctx = createExecutionContext();
  const r = await worker.fetch(
    new Request(`https://relay.test${path}`, { redirect: "manual", ...init }),
    environment,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return r;
}

const formPost = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://relay.test", ...headers },
  body: new URLSearchParams(fields).toString(),
});

/** Logs in and returns the cookie header to send back, and the raw Set-Cookie. */
async function login(token = OPS) {
  const r = await call("/console/login", formPost({ token }));
  expect(r.status).toBe(303);
  const setCookie = r.headers.get("set-cookie") ?? "";
  return { cookie: setCookie.split(";")[0] as string, setCookie };
}

async function consolePage(cookie: string, query = "") {
  const r = await call(`/console${query}`, { headers: { cookie } });
  return { r, text: await r.text() };
}

/** Whether account intx/alpha is halted, as GET /accounts says. */
async function accountHalted(): Promise<boolean | undefined> {
  const r = await call("/accounts", { headers: { authorization: `Bearer ${OPS}` } });
  const { accounts } = (await r.json()) as { accounts: { venue: string; name: string; halted: boolean }[] };
  return accounts.find((a) => a.venue === "intx" && a.name === "alpha")?.halted;
}

/** `text` with its last character changed, whatever it was. */
const changedLast = (text: string) => `${text.slice(0, -1)}${text.endsWith("A") ? "B" : "A"}`;

const csrfOf = (page: string) => /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";

describe("console: login and session", () => {
  it("shows the login form with strict security headers, and no script at all", async () => {
    const r = await call("/console");
    expect(r.status).toBe(200);
    const csp = r.headers.get("content-security-policy") ?? "";
    const nonce = /style-src 'nonce-([0-9a-f]{32})'/.exec(csp)?.[1];
    expect(csp).toBe(
      `default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    expect(r.headers.get("x-frame-options")).toBe("DENY");
    expect(r.headers.get("x-content-type-options")).toBe("nosniff");
    expect(r.headers.get("cache-control")).toBe("no-store");
    // Not no-referrer: under it a browser sends `Origin: null` with the page's own forms (found by the browser test).
    expect(r.headers.get("referrer-policy")).toBe("same-origin");
    const text = await r.text();
    expect(text).toContain(`<style nonce="${nonce}">`);
    expect(text).toContain('<form id="login" method="post" action="/console/login">');
    expect(text).not.toMatch(/<script|\son\w+=|javascript:/i);
    // A new nonce each time.
    expect((await call("/console")).headers.get("content-security-policy")).not.toBe(csp);
  });

  it("a token allowed GET /console gets a __Host- cookie: HttpOnly, Secure, SameSite=Strict, 30 minutes", async () => {
    const { setCookie, cookie } = await login();
    expect(setCookie).toMatch(
      /^__Host-skewguard-console=v2\.ops\.\d+\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}; Path=\/; Max-Age=1800; HttpOnly; Secure; SameSite=Strict$/,
    );
    expect(setCookie).not.toContain(OPS);
    const { r, text } = await consolePage(cookie);
    expect(r.status).toBe(200);
    expect(text).toContain('as <strong id="who">ops</strong>');
    // Its one script, the refresh, carries the answer's nonce; no inline handler, no script from elsewhere.
    const nonce = /script-src 'nonce-([0-9a-f]{32})'/.exec(r.headers.get("content-security-policy") ?? "")?.[1];
    expect(text.match(/<script/g)?.length).toBe(1);
    expect(text).toContain(`<script nonce="${nonce}">setInterval(`);
    expect(text).not.toMatch(/\son\w+=|javascript:|<script[^>]*\ssrc=/i);
    for (const id of ["problems", "venue-intx", "venue-cde", "jobs", "deliveries", "alerts"]) {
      expect(text).toContain(`id="${id}"`);
    }
    // Each INTX account's market-data feed (docs/websocket.md): no bot has connected, so it is idle.
    expect(text).toContain("<th>Feed</th>");
    expect(text).toContain("idle</span>: 0 bots, 0 subscriptions");
  });

  it("refuses unknown tokens, tokens not allowed GET /console, and logins posted from elsewhere", async () => {
    expect((await call("/console/login", formPost({ token: "not-a-token-0123456789" }))).status).toBe(401);
    const bot = await call("/console/login", formPost({ token: BOT }));
    expect(bot.status).toBe(403);
    expect(bot.headers.get("set-cookie")).toBeNull();
    expect(await bot.text()).toContain("Token &quot;bot&quot; is not allowed GET /console.");
    const cross = await call("/console/login", formPost({ token: OPS }, { origin: "https://evil.example" }));
    expect([cross.status, cross.headers.get("set-cookie")]).toEqual([403, null]);
    const json = await call("/console/login", { ...formPost({}), headers: { "content-type": "application/json" } });
    expect(json.status).toBe(415);
  });

  it("a tampered, foreign or expired session is a login page, never the console", async () => {
    const { cookie } = await login();
    const [name, value] = cookie.split("=") as [string, string];
    const [v, who, expiry, id, sig] = value.split(".") as [string, string, string, string, string];
    const variants = [
      `${name}=${v}.viewer.${expiry}.${id}.${sig}`, // another token's name under this signature
      `${name}=${v}.${who}.${Number(expiry) + 3600}.${id}.${sig}`, // a later expiry
      `${name}=${v}.${who}.${expiry}.${changedLast(id)}.${sig}`, // another session id
      `${name}=${v}.${who}.${expiry}.${id}.${changedLast(sig)}`, // another signature
      `${name}=v1.${who}.${expiry}.${sig}`, // the old format
      `${name}=garbage`,
    ];
    for (const bad of variants) {
      const { text } = await consolePage(bad);
      expect(text, bad).toContain('id="login"');
      expect(text).toContain("The session has ended; log in again.");
    }
    // Under other RELAY_TOKENS, or another CONSOLE_SESSION_SECRET, the key is another: the session is not valid there.
    const other = {
      ...e,
      RELAY_TOKENS: JSON.stringify([{ name: "ops", token: `${OPS}-x`, allow: ["GET /console"] }]),
    } as Env;
    expect(await (await call("/console", { headers: { cookie } }, other)).text()).toContain('id="login"');
    const rekeyed = { ...e, CONSOLE_SESSION_SECRET: "another-console-session-secret-0123456789" } as Env;
    expect(await (await call("/console", { headers: { cookie } }, rekeyed)).text()).toContain('id="login"');
  });

  it("is off, with a 503 that says why, without a CONSOLE_SESSION_SECRET of 32 characters or more", async () => {
    for (const secret of ["", "too-short"]) {
      const off = { ...e, CONSOLE_SESSION_SECRET: secret } as Env;
      const r = await call("/console", {}, off);
      expect(r.status).toBe(503);
      expect(await r.text()).toContain("The console is off: set CONSOLE_SESSION_SECRET");
      expect((await call("/console/login", formPost({ token: OPS }), off)).status).toBe(503);
    }
  });

  it("logout clears the cookie, and a copy of the cookie is refused from then on", async () => {
    const { cookie } = await login();
    const other = await login(); // the same token's other session (a second tab), which the logout leaves alone
    expect(other.cookie).not.toBe(cookie); // each session is its own, even within one second
    const { text } = await consolePage(cookie);
    const csrf = csrfOf(text);
    const r = await call("/console/logout", { ...formPost({ csrf }), headers: { ...formPost({}).headers, cookie } });
    expect(r.status).toBe(303);
    expect(r.headers.get("set-cookie")).toBe(
      "__Host-skewguard-console=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
    );
    const copied = await consolePage(cookie);
    expect(copied.text).toContain('id="login"');
    expect(copied.text).toContain("The session has ended; log in again.");
    const halt = await call("/console/halt", {
      ...formPost({ venue: "intx", account: "alpha", reason: "x", csrf }),
      headers: { ...formPost({}).headers, cookie },
    });
    expect([halt.status, halt.headers.get("location")]).toEqual([303, "/console"]); // back to the login, not done
    expect(await accountHalted()).toBe(false);
    expect((await consolePage(other.cookie)).text).toContain('as <strong id="who">ops</strong>');
    // Only a digest of the session is kept, never the cookie's value; the row goes once the session has expired.
    const rows = await env.DB.prepare("SELECT session, expires_at FROM console_logouts").all<{
      session: string;
      expires_at: number;
    }>();
    const value = cookie.split("=")[1] ?? "";
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value)));
    const digest = btoa(String.fromCharCode(...hash));
    expect(rows.results).toEqual([{ session: digest, expires_at: Number(value.split(".")[2]) * 1000 }]);
    await pruneHistory(env.DB, Number(value.split(".")[2]) * 1000 - 1, 30);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM console_logouts").first())?.n).toBe(1);
    await pruneHistory(env.DB, Number(value.split(".")[2]) * 1000 + 1, 30);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM console_logouts").first())?.n).toBe(0);
  });
});

describe("console: actions", () => {
  const act = (path: string, cookie: string, fields: Record<string, string>, origin = "https://relay.test") =>
    call(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin, cookie },
      body: new URLSearchParams(fields).toString(),
    });
  const orderStatus = async () =>
    (
      await call("/intx/alpha/api/v1/orders", {
        method: "POST",
        headers: { authorization: `Bearer ${OPS}`, "content-type": "application/json" },
        body: JSON.stringify({
          client_order_id: crypto.randomUUID(),
          side: "BUY",
          size: "0.1",
          type: "LIMIT",
          tif: "GTC",
          price: "10",
          instrument: "BTC-PERP",
        }),
      })
    ).status;

  it("halt and resume need the session's CSRF token and this origin, and do what the API would", async () => {
    const { cookie } = await login();
    const csrf = csrfOf((await consolePage(cookie)).text);
    const target = { venue: "intx", account: "alpha", reason: "console drill" };
    expect((await act("/console/halt", cookie, target)).status).toBe(403); // no csrf
    expect((await act("/console/halt", cookie, { ...target, csrf: changedLast(csrf) })).status).toBe(403);
    expect((await act("/console/halt", cookie, { ...target, csrf }, "https://evil.example")).status).toBe(403);
    expect(await orderStatus()).toBe(200);

    const halted = await act("/console/halt", cookie, { ...target, csrf });
    expect([halted.status, halted.headers.get("location")]).toEqual([303, "/console?done=halted&subject=intx%2Falpha"]);
    expect(await orderStatus()).toBe(423);
    const { text } = await consolePage(cookie, "?done=halted&subject=intx%2Falpha");
    expect(text).toContain('<div class="notice" id="notice">Halted: intx/alpha</div>');
    expect(text).toContain("console drill");
    expect(text).toContain('<form class="inline resume"');

    const resumed = await act("/console/resume", cookie, { venue: "intx", account: "alpha", csrf });
    expect(resumed.headers.get("location")).toBe("/console?done=resumed&subject=intx%2Falpha");
    expect(await orderStatus()).toBe(200);
  });

  it("a token allowed to look but not to halt sees no button, and its forged form does nothing", async () => {
    const { cookie } = await login(VIEWER);
    const { text } = await consolePage(cookie);
    expect(text).toContain('data-account="intx/alpha"');
    expect(text).not.toContain('<form class="inline halt"');
    // Each panel needs the read the API would: the viewer may read accounts, not jobs or deliveries.
    expect(text).toContain("Not shown: token viewer is not allowed GET /jobs.");
    expect(text).toContain("Not shown: token viewer is not allowed GET /deliveries.");
    expect(text).toContain("Not shown: token viewer is not allowed GET /alerts.");
    expect(text).toContain("Not shown: token viewer is not allowed GET /orders.");
    expect(text).not.toContain('id="orders"');
    const r = await act("/console/halt", cookie, { venue: "intx", account: "alpha", reason: "x", csrf: csrfOf(text) });
    expect(r.headers.get("location")).toBe("/console?done=forbidden&subject=intx%2Falpha");
    expect(await orderStatus()).toBe(200);
  });

  it("without a session an action goes back to the login; a CSRF token of one session fails in another", async () => {
    const r = await act("/console/halt", "", { venue: "intx", account: "alpha", reason: "x", csrf: "x" });
    expect([r.status, r.headers.get("location")]).toEqual([303, "/console"]);
    const first = await login();
    const csrf = csrfOf((await consolePage(first.cookie)).text);
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // a later expiry: another session value
    const second = await login();
    expect(second.cookie).not.toBe(first.cookie);
    expect(
      (await act("/console/halt", second.cookie, { venue: "intx", account: "alpha", reason: "x", csrf })).status,
    ).toBe(403);
  });
});

describe("console: the halt of every account, and re-drives, each confirmed first", () => {
  const act = (path: string, cookie: string, fields: Record<string, string>) =>
    call(path, { ...formPost(fields), headers: { ...formPost({}).headers, cookie } });
  const hiddenOf = (page: string) =>
    Object.fromEntries(
      [...page.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]),
    );
  const allHalted = async () => {
    const r = await call("/accounts", { headers: { authorization: `Bearer ${OPS}` } });
    const { accounts } = (await r.json()) as { accounts: { name: string; halt_all?: unknown }[] };
    return accounts.find((a) => a.name === "alpha");
  };

  it("Halt everything needs a reason and a confirmation naming the accounts; Resume everything likewise", async () => {
    const { cookie } = await login();
    const page = (await consolePage(cookie)).text;
    expect(page).toContain('<form class="inline halt-all" method="post" action="/console/halt-all">');
    const csrf = csrfOf(page);
    const noReason = await act("/console/halt-all", cookie, { csrf, reason: "" });
    expect(noReason.headers.get("location")).toBe("/console?done=bad_reason&subject=");
    const asked = await act("/console/halt-all", cookie, { csrf, reason: "all stop" });
    expect(asked.status).toBe(200);
    const confirmation = await asked.text();
    expect(confirmation).toContain("<h1>Halt every account?</h1>");
    expect(confirmation).toContain("<dt>request</dt><dd><code>PUT /halt</code></dd>");
    expect(confirmation).toContain("intx/alpha");
    expect(confirmation).toContain("<dt>reason</dt><dd><code>all stop</code></dd>");
    expect(hiddenOf(confirmation)).toMatchObject({ reason: "all stop", confirm: "yes", csrf });
    expect(JSON.stringify(await allHalted())).not.toContain("all stop"); // nothing done yet

    const done = await act("/console/halt-all", cookie, hiddenOf(confirmation));
    expect(done.headers.get("location")).toBe("/console?done=halted_all&subject=");
    expect(JSON.stringify(await allHalted())).toContain("all stop");
    const halted = (await consolePage(cookie, "?done=halted_all&subject=")).text;
    expect(halted).toContain('<div class="notice" id="notice">Halted every account</div>');
    expect(halted).toContain('<span class="bad">Every account is halted</span>: all stop');

    const resume = await (await act("/console/resume-all", cookie, { csrf: csrfOf(halted) })).text();
    expect(resume).toContain("<dt>request</dt><dd><code>DELETE /halt</code></dd>");
    const resumed = await act("/console/resume-all", cookie, hiddenOf(resume));
    expect(resumed.headers.get("location")).toBe("/console?done=resumed_all&subject=");
    expect(JSON.stringify(await allHalted())).not.toContain("all stop");
  });

  it("a token not allowed PUT /halt sees no Halt everything, and its forged form does nothing", async () => {
    const { cookie } = await login(VIEWER);
    const { text } = await consolePage(cookie);
    expect(text).not.toContain("halt-all");
    const r = await act("/console/halt-all", cookie, { csrf: csrfOf(text), reason: "x", confirm: "yes" });
    expect(r.headers.get("location")).toBe("/console?done=forbidden&subject=");
  });

  it("a token allowed /halt but not GET /accounts keeps both buttons, since the page cannot tell the state", async () => {
    const tokens = JSON.parse(e.RELAY_TOKENS ?? "[]") as { name: string; token: string; allow: string[] }[];
    const halter = { name: "halter", token: "console-halter-token-0123456", allow: ["GET /console", "* /halt"] };
    const only = { ...e, RELAY_TOKENS: JSON.stringify([...tokens, halter]) } as Env;
    const r = await call("/console/login", formPost({ token: halter.token }), only);
    const cookie = (r.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const text = await (await call("/console", { headers: { cookie } }, only)).text();
    expect(text).toContain("Whether every account is halted is not shown here.");
    expect(text).toContain('<form class="inline halt-all"');
    expect(text).toContain('<form class="inline resume-all"');
  });

  it("lists deliveries once, the dead marked with a Re-drive that first names what it will send", async () => {
    const now = Date.now();
    const dead = `sg-${"d".repeat(29)}`;
    const delivered = `sg-${"f".repeat(29)}`;
    const body = JSON.stringify({
      client_order_id: "c-1",
      side: "SELL",
      size: "0.2",
      instrument: "BTC-PERP",
      note: "x",
    });
    const message = {
      id: dead,
      route: "kill",
      venue: "intx",
      account: "alpha",
      method: "POST",
      path: "/api/v1/orders",
      body,
      receivedAt: now,
      maxAgeSeconds: 600,
      retrySafe: true,
    };
    await env.DB.batch([
      env.DB.prepare(
        `INSERT INTO deliveries (id, route, venue, account, method, path, state, received_at, updated_at, reason)
         VALUES (?1, 'kill', 'intx', 'alpha', 'POST', '/api/v1/orders', 'dead', ?2, ?2, 'venue refused: 400')`,
      ).bind(dead, now),
      env.DB.prepare(
        "INSERT INTO dead_letters (delivery_id, route, received_at, dead_at, attempts, reason, payload) VALUES (?1, 'kill', ?2, ?2, 3, 'venue refused: 400', ?3)",
      ).bind(dead, now, JSON.stringify(message)),
      env.DB.prepare(
        `INSERT INTO deliveries (id, route, venue, method, path, state, received_at, updated_at, status)
         VALUES (?1, 'kill', 'intx', 'POST', '/api/v1/orders', 'delivered', ?2, ?2, 200)`,
      ).bind(delivered, now + 1),
    ]);
    const { cookie } = await login();
    const page = (await consolePage(cookie)).text;
    expect(page).toContain("<h2>Deliveries</h2>");
    expect(page).not.toContain("Dead letters");
    expect(page.split(`data-delivery="${dead}"`).length).toBe(2); // listed once
    const deadRow = new RegExp(`<tr data-delivery="${dead}" class="dead">[\\s\\S]*?</tr>`).exec(page)?.[0] ?? "";
    expect(deadRow).toContain('<form class="inline redrive"');
    const deliveredRow =
      new RegExp(`<tr data-delivery="${delivered}" class="delivered">[\\s\\S]*?</tr>`).exec(page)?.[0] ?? "";
    expect(deliveredRow).toContain('<span class="ok">delivered</span> 200');
    expect(deliveredRow).not.toContain("redrive");

    const asked = await act("/console/redrive", cookie, { csrf: csrfOf(page), id: dead });
    expect(asked.status).toBe(200);
    const confirmation = await asked.text();
    expect(confirmation).toContain("<dt>request</dt><dd><code>POST intx/alpha /api/v1/orders</code></dd>");
    for (const [k, v] of [
      ["client_order_id", "c-1"],
      ["instrument", "BTC-PERP"],
      ["side", "SELL"],
      ["size", "0.2"],
    ]) {
      expect(confirmation).toContain(`<dt>${k}</dt><dd><code>${v}</code></dd>`);
    }
    expect(confirmation).not.toContain("note");
    const state = () =>
      env.DB.prepare("SELECT state FROM deliveries WHERE id = ?1").bind(dead).first<{ state: string }>();
    expect((await state())?.state).toBe("dead"); // not sent yet
    const sent = await act("/console/redrive", cookie, hiddenOf(confirmation));
    expect(sent.headers.get("location")).toBe(`/console?done=redriven&subject=${dead}`);
    expect((await state())?.state).not.toBe("dead");
    const again = await act("/console/redrive", cookie, { csrf: csrfOf(page), id: dead });
    expect(again.headers.get("location")).toBe(`/console?done=not_dead&subject=${dead}`);
  });
});

describe("console: words and units", () => {
  it("shows guards as one line with the JSON on demand, sink results as words, times in UTC with their age, and a job's runs with units", async () => {
    const now = Date.now();
    const alert = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO job_runs (job, scheduled_at, started_at, ended_at, status, body) VALUES ('positions', ?1, ?1, ?2, 200, ?3)",
      ).bind(now - 180_000, now - 180_000 + 412, "x".repeat(37_240)),
      env.DB.prepare(
        "INSERT INTO alerts (id, type, severity, subject, text, ids, raised_at) VALUES (?1, 'halt.set', 'critical', 'intx/alpha', 'Halted', '{}', ?2)",
      ).bind(alert, now),
      env.DB.prepare(
        "INSERT INTO alert_sends (alert_id, sink, state, attempts, updated_at, error) VALUES (?1, 'slack', 'failed', 5, ?2, 'answered 500')",
      ).bind(alert, now),
      env.DB.prepare(
        "INSERT INTO alert_sends (alert_id, sink, state, attempts, updated_at) VALUES (?1, 'local', 'sent', 1, ?2)",
      ).bind(alert, now),
    ]);
    const { cookie } = await login();
    const { text } = await consolePage(cookie, "?job=positions");
    expect(text).toContain('<details class="guards"><summary>max size *: 1</summary><pre>');
    expect(text).toContain('<div class="send">slack: failed after 5 attempts: answered 500</div>');
    expect(text).toContain('<div class="send">local: sent</div>');
    const time = new Date(now - 180_000).toISOString().slice(0, 19).replace("T", " ");
    expect(text).toContain(`<span class="when">${time} UTC · 3 min ago</span>`);
    const runs = /<table id="runs">[\s\S]*?<\/table>/.exec(text)?.[0] ?? "";
    expect(runs).toContain("<th>Fetched</th><th>Result</th><th>Size</th><th>Took</th>");
    expect(runs).toContain("<code>GET /api/v1/portfolios</code>");
    expect(runs).toContain("<td>37,240 B</td>");
    expect(runs).toContain("412 ms");
  });
});

describe("console: escaping", () => {
  it("every value from D1, a venue or the configuration is text, never markup", async () => {
    const hostile = `<script>alert(1)</script><img src=x onerror=alert(2)>"'`;
    const now = Date.now();
    await env.DB.batch([
      env.DB.prepare(
        "INSERT INTO job_runs (job, scheduled_at, started_at, ended_at, status, error) VALUES ('positions', ?1, ?1, ?1, 404, ?2)",
      ).bind(now, `venue answered 404: ${hostile}`),
      env.DB.prepare(
        `INSERT INTO deliveries (id, route, venue, method, path, state, received_at, updated_at, reason)
         VALUES (?1, ?2, 'intx', 'POST', '/api/v1/orders', 'dead', ?3, ?3, ?4)`,
      ).bind(`sg-${"e".repeat(29)}`, `route${hostile}`, now, `venue refused: 400 ${hostile}`),
      env.DB.prepare(
        `INSERT INTO alerts (id, type, severity, subject, text, ids, raised_at)
         VALUES (?1, 'order.refused', 'warning', 'intx/alpha', ?2, '{}', ?3)`,
      ).bind(crypto.randomUUID(), `An order was refused: ${hostile}`, now),
    ]);
    const bad = {
      ...e,
      ACCOUNTS: JSON.stringify([
        { name: "alpha", venue: "intx", guards: { max_size: { "*": hostile } } },
        { name: hostile, venue: "intx" },
      ]),
    } as Env;
    const r = await call("/console/login", formPost({ token: OPS }), bad);
    const cookie = (r.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const text = await (await call("/console?job=positions", { headers: { cookie } }, bad)).text();
    // The page's own refresh script aside, nothing is markup.
    expect(text.replace(/<script nonce="[0-9a-f]{32}">setInterval\([\s\S]*?<\/script>/, "")).not.toMatch(
      /<script|<img/i,
    );
    // " onerror=" survives only as text, inside the escaped tag.
    expect(text.split("onerror=").length).toBe(text.split("&lt;img src=x onerror=").length);
    expect(text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&quot;&#39;");
    // Each source made it onto the page: the job run, the dead letter, the alert, the guards, the bad account.
    expect(text.match(/&lt;script&gt;alert\(1\)/g)?.length).toBeGreaterThanOrEqual(5);
  });
});

describe("console: resilience", () => {
  it("with D1 down, a session D1 cannot vouch for may see the page and halt, not resume; a logout says it was not recorded", async () => {
    const { cookie } = await login();
    const csrf = csrfOf((await consolePage(cookie)).text);
    const broken = withBrokenD1(e);
    const post = (path: string, fields: Record<string, string>) =>
      call(path, { ...formPost({ ...fields, csrf }), headers: { ...formPost({}).headers, cookie } }, broken);
    expect((await call("/console", { headers: { cookie } }, broken)).status).toBe(200);
    const halted = await post("/console/halt", { venue: "intx", account: "alpha", reason: "d1 down" });
    expect(halted.headers.get("location")).toBe("/console?done=halted&subject=intx%2Falpha");
    const resume = await post("/console/resume", { venue: "intx", account: "alpha" });
    expect(resume.headers.get("location")).toBe("/console"); // refused: back to the login
    expect(await accountHalted()).toBe(true);
    const out = await post("/console/logout", {});
    expect([out.status, out.headers.get("location")]).toEqual([303, "/console?done=logout_unrecorded"]);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    const text = await (await call("/console?done=logout_unrecorded")).text();
    expect(text).toContain("the logout could not be recorded: a copy of the cookie stays valid until it expires");
    // With D1 back, the session resumes the account (it was never logged out).
    const resumed = await call("/console/resume", {
      ...formPost({ venue: "intx", account: "alpha", csrf }),
      headers: { ...formPost({}).headers, cookie },
    });
    expect(resumed.headers.get("location")).toBe("/console?done=resumed&subject=intx%2Falpha");
    expect(await accountHalted()).toBe(false);
  });

  it("a logout check that D1 does not answer within a second takes the caller's default", async () => {
    const hanging = { prepare: () => ({ bind: () => ({ first: () => new Promise(() => {}) }) }) };
    const db = hanging as unknown as D1Database;
    // A fake clock: the second is counted exactly, whatever the machine's load, and nothing really waits.
    vi.useFakeTimers();
    try {
      for (const ifUnknown of [false, true]) {
        let answer: boolean | undefined;
        void loggedOut(db, "v2.x", ifUnknown).then((a) => {
          answer = a;
        });
        await vi.advanceTimersByTimeAsync(999);
        expect(answer).toBeUndefined(); // still waiting on D1 at 999 ms
        await vi.advanceTimersByTimeAsync(1);
        expect(answer).toBe(ifUnknown); // the caller's default, at 1 000 ms
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it("with D1 down, the page still renders, says what is missing, and keeps the halt buttons", async () => {
    const broken = withBrokenD1(e);
    const r = await call("/console/login", formPost({ token: OPS }), broken);
    const cookie = (r.headers.get("set-cookie") ?? "").split(";")[0] as string;
    const page = await call("/console", { headers: { cookie } }, broken);
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain("The jobs could not be read just now; reload to try again.");
    expect(text).toContain('<form class="inline halt"');
  });
});

describe("console: the clock chart", () => {
  it("draws offset ± uncertainty over the history there is, with labelled axes and a legend, as inline SVG", async () => {
    const { clockChart } = await import("../../src/console/chart.ts");
    const now = Date.UTC(2026, 10, 26, 12, 0, 0);
    expect(clockChart("intx", [], now, 1000).text).toBe(
      '<p class="muted">No clock history for intx in the last 24 h yet.</p>',
    );
    const points = [
      { minute: now - 86_400_000 - 60_000, offsetMs: 999, lowMs: 0, highMs: 2000 }, // older than 24 h: left out
      { minute: now - 43_200_000, offsetMs: 100, lowMs: 50, highMs: 150 },
      { minute: now, offsetMs: 200, lowMs: 100, highMs: 300 },
    ];
    const svg = clockChart("intx", points, now, 1000).text;
    // x: 84 px at the first point (12 h ago) to 708 px at the last; y = 26 + (300 − ms) / 250 · 136: 26 px at the
    // highest high (300), 162 px at the lowest low (50), so 150 → 107.6, 100 → 134.8, 200 → 80.4.
    expect(svg).toContain('<polygon class="band" points="84.0,107.6 708.0,26.0 708.0,134.8 84.0,162.0"/>');
    expect(svg).toContain('<polyline class="offset" points="84.0,134.8 708.0,80.4"/>');
    expect(svg).toContain('<circle class="now" cx="708.0" cy="80.4" r="3"/>');
    expect(svg).toContain("<title>intx clock offset over the last 24 h: last recorded +200 ms ± 100 ms</title>");
    expect(svg).toContain(">+300 ms</text>");
    expect(svg).toContain(">+50 ms</text>");
    expect(svg).not.toContain("999");
    // The axes: the time of the first and last point (UTC), and each axis' title; the legend.
    expect(svg).toContain(">00:00</text>");
    expect(svg).toContain(">12:00</text>");
    expect(svg).toContain(">time (UTC)</text>");
    expect(svg).toContain(">offset (ms)</text>");
    expect(svg).toContain(">± uncertainty</text>");
    expect(svg).toContain(">step (moved more than 1,000 ms)</text>");
    expect(svg).not.toContain('<line class="step" x1="84');
  });

  it("spans at least a minute, and marks a step (a move bigger than the threshold) where it happened", async () => {
    const { clockChart } = await import("../../src/console/chart.ts");
    const now = Date.UTC(2026, 10, 26, 12, 0, 0);
    const one = clockChart("cde", [{ minute: now, offsetMs: 5, lowMs: 0, highMs: 10 }], now, 1000).text;
    expect(one).toContain('<circle class="now" cx="84.0"'); // alone, at the start of its minute
    const points = [
      { minute: now - 120_000, offsetMs: 0, lowMs: -10, highMs: 10 },
      { minute: now - 60_000, offsetMs: -61_000, lowMs: -61_010, highMs: -60_990 }, // the −61 s step
      { minute: now, offsetMs: -61_000, lowMs: -61_010, highMs: -60_990 },
    ];
    const svg = clockChart("cde", points, now, 1000).text;
    // x of the middle point: 84 + 624 / 2 = 396.
    expect(svg).toMatch(
      /<line class="step" x1="396\.0" y1="26" x2="396\.0" y2="162"><title>step at 11:59 UTC to -61000 ms<\/title>/,
    );
    expect(svg.match(/<line class="step"[^>]*><title>/g)?.length).toBe(1);
    expect(svg).toContain("; 1 step</title>");
  });
});

describe("console: the latest orders", () => {
  it("lists the ledger's latest orders of the viewer's accounts, newest first, a refusal marked with its reason", async () => {
    const order = (size: string) => ({
      client_order_id: crypto.randomUUID(),
      side: "BUY",
      size,
      price: "50000",
      type: "LIMIT",
      tif: "GTC",
      instrument: "BTC-PERP",
      portfolio: "2alp7hq3-1-0",
    });
    const relay = (size: string) =>
      call("/intx/alpha/api/v1/orders", {
        method: "POST",
        body: JSON.stringify(order(size)),
        headers: { authorization: `Bearer ${OPS}`, "content-type": "application/json" },
      });
    expect((await relay("0.5")).status).toBe(200);
    expect((await relay("7")).status).toBe(422);
    const { cookie } = await login();
    const { text } = await consolePage(cookie);
    const section = /<section id="orders">[\s\S]*?<\/section>/.exec(text)?.[0] ?? "";
    const rows = [...section.matchAll(/<tr class="(sent|refused|failed)">[\s\S]*?<\/tr>/g)].map((m) => m[0]);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const [refused, sent] = rows;
    expect(refused).toContain('<tr class="refused">');
    expect(refused).toContain("intx/alpha");
    expect(refused).toContain("BUY 7 BTC-PERP LIMIT @ 50000");
    expect(refused).toContain('<span class="bad">refused 422</span> max_size: size 7 is over max_size 1 for BTC-PERP');
    expect(sent).toContain('<tr class="sent">');
    expect(sent).toContain("BUY 0.5 BTC-PERP LIMIT @ 50000");
    expect(sent).toContain('<span class="ok">sent</span> 200');
    expect(sent).toContain('ops <span class="muted">(relay)</span>');
  });
});

describe("console: the test alert", () => {
  const post = (path: string, cookie: string, fields: Record<string, string>) =>
    call(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://relay.test", cookie },
      body: new URLSearchParams(fields).toString(),
    });

  it("a token allowed POST /alerts/test has the button; with no sink configured, the console says so", async () => {
    const { cookie } = await login();
    const { text } = await consolePage(cookie);
    expect(text).toContain('<form class="inline" id="alert-test" method="post" action="/console/alert-test">');
    const r = await post("/console/alert-test", cookie, { csrf: csrfOf(text) });
    expect(r.headers.get("location")).toBe("/console?done=no_sinks&subject=");
  });

  it("a token without the route has no button, and its forged form does nothing", async () => {
    const { cookie } = await login(VIEWER);
    const { text } = await consolePage(cookie);
    expect(text).not.toContain('id="alert-test"');
    const r = await post("/console/alert-test", cookie, { csrf: csrfOf(text) });
    expect(r.headers.get("location")).toBe("/console?done=forbidden&subject=");
  });
});
