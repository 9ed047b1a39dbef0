// The order ledger and GET /orders: a row written through recordOrder reads back exactly; every filter; the cursor
// walks a result set once, with no gaps or repeats, ties on `at` included; limit default, maximum and bad values;
// the NDJSON export of the whole match across its internal pages; scoping by the token's allow-list; a refused D1
// write goes to the log line and raises audit.write_failed (held back like any alert); retention; the last minute's
// count per account.
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AlertMessage } from "../../src/adapters/alerts.ts";
import { pruneHistory } from "../../src/adapters/history.ts";
import { countRecentOrders, EXPORT_PAGE, recordOrder } from "../../src/adapters/ledger.ts";
import type { LedgerRow } from "../../src/core/ledger.ts";
import { recordingQueue, withBrokenD1 } from "../support/env.ts";
import { scanConsole } from "../support/leaks.ts";
import { DEV_ALPHA, DEV_BETA, simEnv } from "../support/sim.ts";
import { fetchWorker } from "../support/worker.ts";

const OPS = "orders-ops-token-0123456789";
const ALPHA = "orders-alpha-token-01234567";
const INTX = "orders-intx-token-012345678";
const BLIND = "orders-blind-token-01234567";
const alertQueue = recordingQueue<AlertMessage>();
const e = simEnv("orders.sim.test", {
  ...DEV_ALPHA,
  ...DEV_BETA,
  ALERTS_QUEUE: alertQueue.queue,
  ALERTS: JSON.stringify([{ name: "chat", url: "https://sink.sim.test/_sim/alerts/orders/chat", format: "slack" }]),
  ACCOUNTS: JSON.stringify([
    { name: "alpha", venue: "intx" },
    { name: "beta", venue: "intx" },
    { name: "alpha", venue: "cde" },
  ]),
  RELAY_TOKENS: JSON.stringify([
    { name: "ops", token: OPS, allow: ["GET /orders", "* /intx/*", "* /cde/*"] },
    { name: "alpha-bot", token: ALPHA, allow: ["GET /orders", "* /intx/alpha/*"] },
    { name: "intx-bot", token: INTX, allow: ["GET /orders", "* /intx/*"] },
    { name: "blind", token: BLIND, allow: ["* /intx/*", "* /cde/*"] },
  ]),
});

const T0 = Date.UTC(2026, 11, 6, 14, 0, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();

/** A row with the required fields; `over` sets the rest. */
function row(id: string, atMs: number, over: Partial<LedgerRow> = {}): LedgerRow {
  return {
    id,
    at: iso(atMs),
    source: "relay",
    actor: "bot-3",
    venue: "intx",
    account: "alpha",
    method: "POST",
    path: "/api/v1/orders",
    kind: "create",
    outcome: "sent",
    ...over,
  };
}

/** Records `rows` through recordOrder, waiting for their waitUntil as the runtime would. */
async function record(target: Env, ...rows: LedgerRow[]) {
  const ctx = createExecutionContext();
  for (const r of rows) recordOrder(target, ctx, r);
  await waitOnExecutionContext(ctx);
}

/** Inserts `count` rows straight into D1 (volume), ids `<prefix>-0000`…, `at` from `start` with `step` ms apart. */
async function seed(prefix: string, count: number, start: number, step: number, over: Record<string, string> = {}) {
  const { venue = "intx", account = "alpha", source = "relay" } = over;
  const statements = Array.from({ length: count }, (_, i) =>
    env.DB.prepare(
      `INSERT INTO orders (id, at, source, actor, venue, account, method, path, kind, outcome)
       VALUES (?1, ?2, ?3, 'seed', ?4, ?5, 'POST', '/api/v1/orders', 'create', 'sent')`,
    ).bind(`${prefix}-${String(i).padStart(4, "0")}`, start + Math.floor(i / step) * 1, source, venue, account),
  );
  for (let i = 0; i < statements.length; i += 500) await env.DB.batch(statements.slice(i, i + 500));
}

async function get(query: string, token = OPS, headers: Record<string, string> = {}) {
  return fetchWorker(e, `/orders${query}`, { headers }, token);
}
async function ids(query: string, token = OPS): Promise<string[]> {
  const r = await get(query, token);
  expect(r.status).toBe(200);
  const body = (await r.json()) as { orders: LedgerRow[] };
  return body.orders.map((o) => o.id);
}

/** The export's text (read as bytes: workerd warns when .text() meets a type it does not know as text). */
async function ndjson(r: Response): Promise<string> {
  return new TextDecoder().decode(await r.arrayBuffer());
}

beforeEach(async () => {
  alertQueue.sent.length = 0;
  await env.DB.batch(["orders", "alerts", "alert_quiet"].map((t) => env.DB.prepare(`DELETE FROM ${t}`)));
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe("recordOrder and GET /orders", () => {
  it("reads back a recorded row exactly: at in ISO 8601 UTC with ms, absent fields left out", async () => {
    const full = row("r-1", T0 + 123, {
      source: "delivery",
      actor: "tv-alerts",
      client_order_id: "c-1",
      instrument: "BTC-PERP",
      side: "BUY",
      size: "0.10",
      price: 65000.5,
      type: "LIMIT",
      tif: "GTC",
      status: 200,
      venue_order_id: "1234",
      attempts: 2,
      latency_ms: 87,
      delivery: "d-1",
    });
    const refused = row("r-2", T0 + 124, { kind: "cancel_all", method: "DELETE", outcome: "refused", status: 423 });
    await record(e, full, { ...refused, refusal: "halt: maintenance" });
    const r = await get("");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/json");
    expect(await r.json()).toEqual({
      orders: [{ ...refused, at: "2026-12-06T14:00:00.124Z", refusal: "halt: maintenance" }, full],
      next_cursor: null,
    });
  });

  it("filters by account, venue, actor, source, outcome and client_order_id", async () => {
    await record(
      e,
      row("a", T0),
      row("b", T0 + 1, { account: "beta", actor: "bot-4" }),
      row("c", T0 + 2, { venue: "cde", path: "/rest/orders", source: "hook", actor: "tv" }),
      row("d", T0 + 3, { account: "default", outcome: "refused", client_order_id: "c-9" }),
      row("e", T0 + 4, { source: "job", actor: "nightly", outcome: "failed", client_order_id: "c-10" }),
    );
    expect(await ids("")).toEqual(["e", "d", "c", "b", "a"]);
    expect(await ids("?account=alpha")).toEqual(["e", "c", "a"]);
    expect(await ids("?venue=cde")).toEqual(["c"]);
    expect(await ids("?venue=intx&account=alpha")).toEqual(["e", "a"]);
    expect(await ids("?actor=bot-4")).toEqual(["b"]);
    expect(await ids("?source=hook")).toEqual(["c"]);
    expect(await ids("?source=relay")).toEqual(["d", "b", "a"]);
    expect(await ids("?outcome=refused")).toEqual(["d"]);
    expect(await ids("?outcome=failed")).toEqual(["e"]);
    expect(await ids("?client_order_id=c-9")).toEqual(["d"]);
    expect(await ids("?client_order_id=c-1")).toEqual([]);
  });

  it("since is inclusive and until exclusive, to the millisecond", async () => {
    await record(e, row("t0", T0), row("t1", T0 + 1), row("t2", T0 + 2), row("t3", T0 + 3));
    expect(await ids(`?since=${iso(T0 + 1)}`)).toEqual(["t3", "t2", "t1"]);
    expect(await ids(`?until=${iso(T0 + 2)}`)).toEqual(["t1", "t0"]);
    expect(await ids(`?since=${iso(T0 + 1)}&until=${iso(T0 + 3)}`)).toEqual(["t2", "t1"]);
    expect(await ids("?since=2026-12-06T16:00:00.001%2B02:00")).toEqual(["t3", "t2", "t1"]);
  });

  it("the cursor walks the whole set once, newest first, rows sharing a millisecond included", async () => {
    await seed("w", 23, T0, 3); // three rows per millisecond
    const walked: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const r = await get(`?limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      const body = (await r.json()) as { orders: LedgerRow[]; next_cursor: string | null };
      walked.push(...body.orders.map((o) => o.id));
      sizes.push(body.orders.length);
      cursor = body.next_cursor;
    }
    expect(sizes).toEqual([5, 5, 5, 5, 3]);
    const expected = Array.from({ length: 23 }, (_, i) => `w-${String(22 - i).padStart(4, "0")}`);
    expect(walked).toEqual(expected);
  });

  it("a cursor keeps the filters it is given, and a set of exactly `limit` rows has no next page", async () => {
    await seed("f", 6, T0, 1);
    await seed("g", 4, T0, 1, { account: "beta" });
    const first = (await (await get("?account=beta&limit=2")).json()) as { next_cursor: string };
    expect(await ids(`?account=beta&limit=2&cursor=${first.next_cursor}`)).toEqual(["g-0001", "g-0000"]);
    const exact = (await (await get("?account=beta&limit=4")).json()) as { next_cursor: string | null };
    expect(exact.next_cursor).toBeNull();
  });

  it("limit defaults to 100 and goes up to 1000", async () => {
    await seed("v", 1001, T0, 1);
    const plain = (await (await get("")).json()) as { orders: LedgerRow[]; next_cursor: string | null };
    expect(plain.orders).toHaveLength(100);
    expect(plain.orders[0]?.id).toBe("v-1000");
    expect(plain.next_cursor).not.toBeNull();
    const most = (await (await get("?limit=1000")).json()) as { orders: LedgerRow[]; next_cursor: string };
    expect(most.orders).toHaveLength(1000);
    expect(await ids(`?limit=1000&cursor=${most.next_cursor}`)).toEqual(["v-0000"]);
  });

  it("a bad parameter is a 400 that names it", async () => {
    for (const [query, parameter] of [
      ["?limit=1001", "limit"],
      ["?limit=0", "limit"],
      ["?since=yesterday", "since"],
      ["?cursor=not-a-cursor", "cursor"],
      ["?venue=nyse", "venue"],
      ["?source=api", "source"],
      ["?acount=alpha", "acount"],
    ] as const) {
      const r = await get(query);
      expect(r.status).toBe(400);
      const body = (await r.json()) as { error: { code: string; message: string; details: unknown } };
      expect(body.error.code).toBe("bad_parameter");
      expect(body.error.details).toEqual({ parameter });
      expect(body.error.message.startsWith(`${parameter}: `)).toBe(true);
    }
  });

  it("only GET: another method is a 405", async () => {
    const r = await fetchWorker(e, "/orders", { method: "POST" }, OPS);
    expect(r.status).toBe(405);
  });
});

describe("the NDJSON export", () => {
  it("streams every matching row, one JSON object per line, across its internal pages", async () => {
    const count = EXPORT_PAGE * 2 + 7;
    await seed("x", count, T0, 2);
    await seed("y", 3, T0, 1, { account: "beta" });
    const r = await get("?account=alpha&limit=5", OPS, { accept: "application/x-ndjson" });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    const text = await ndjson(r);
    expect(text.endsWith("\n")).toBe(true);
    const lines = text.trimEnd().split("\n");
    const rows = lines.map((line) => JSON.parse(line) as LedgerRow);
    expect(rows.map((o) => o.id)).toEqual(
      Array.from({ length: count }, (_, i) => `x-${String(count - 1 - i).padStart(4, "0")}`),
    );
    expect(rows[0]).toEqual({
      id: `x-${String(count - 1).padStart(4, "0")}`,
      at: iso(T0 + Math.floor((count - 1) / 2)),
      source: "relay",
      actor: "seed",
      venue: "intx",
      account: "alpha",
      method: "POST",
      path: "/api/v1/orders",
      kind: "create",
      outcome: "sent",
    });
  });

  it("an export with nothing to show is empty, and scoped like a page", async () => {
    await seed("z", 3, T0, 1, { venue: "cde" });
    const r = await get("", ALPHA, { accept: "application/x-ndjson, application/json" });
    expect(r.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    expect(await ndjson(r)).toBe("");
    // JSON first in Accept: a page, not the export.
    const page = await get("", ALPHA, { accept: "application/json, application/x-ndjson" });
    expect(await page.json()).toEqual({ orders: [], next_cursor: null });
  });
});

describe("scoping", () => {
  beforeEach(async () => {
    await record(
      e,
      row("intx-default", T0, { account: "default" }),
      row("intx-alpha", T0 + 1),
      row("intx-beta", T0 + 2, { account: "beta" }),
      row("cde-alpha", T0 + 3, { venue: "cde", path: "/rest/orders" }),
      row("cde-default", T0 + 4, { venue: "cde", account: "default", path: "/rest/orders" }),
    );
  });

  it("a token allowed * /intx/alpha/* sees only intx/alpha's rows", async () => {
    expect(await ids("", ALPHA)).toEqual(["intx-alpha"]);
    expect(await ids("?account=beta", ALPHA)).toEqual([]);
  });

  it("a token allowed * /intx/* sees every INTX account, and no CDE one", async () => {
    expect(await ids("", INTX)).toEqual(["intx-beta", "intx-alpha", "intx-default"]);
    expect(await ids("?venue=cde", INTX)).toEqual([]);
  });

  it("a token allowed both venues sees every account", async () => {
    expect(await ids("", OPS)).toEqual(["cde-default", "cde-alpha", "intx-beta", "intx-alpha", "intx-default"]);
  });

  it("a token without GET /orders is refused with 403, and no token with 401", async () => {
    const r = await get("", BLIND);
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe("forbidden");
    expect((await fetchWorker(e, "/orders")).status).toBe(401);
  });
});

describe("a refused write is never lost silently", () => {
  /** `e` with a D1 that refuses only the ledger's writes (alerts still record). */
  function ledgerRefused(): Env {
    const DB = new Proxy(e.DB, {
      get: (target, key) =>
        key === "prepare"
          ? (sql: string) => {
              if (sql.startsWith("INSERT INTO orders")) throw new Error("D1 is down");
              return target.prepare(sql);
            }
          : Reflect.get(target, key),
    });
    return { ...e, DB };
  }

  function captureErrors(): string[] {
    const lines: string[] = [];
    vi.spyOn(console, "error").mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
      scanConsole(args);
    });
    return lines;
  }

  it("logs the row as audit.write_failed and raises the alert once per quiet period", async () => {
    const lines = captureErrors();
    const broken = ledgerRefused();
    const lost = row("lost-1", T0, { client_order_id: "c-1", size: "2", outcome: "refused", refusal: "max_size" });
    await record(broken, lost, row("lost-2", T0 + 1));
    // Both rows in the log, and the alert's own line (a critical one is logged at error); the second alert was held
    // back by the quiet period. The two writes run side by side, so the lines may come in either order.
    const logged = lines.map((l) => JSON.parse(l));
    expect(logged).toHaveLength(3);
    expect(logged).toEqual(
      expect.arrayContaining([
        { level: "error", event: "audit.write_failed", error: "Error", row: lost },
        { level: "error", event: "audit.write_failed", error: "Error", row: row("lost-2", T0 + 1) },
        { level: "error", event: "alert", id: expect.any(String), type: "audit.write_failed", subject: "intx/alpha" },
      ]),
    );
    const { results } = await env.DB.prepare("SELECT type, severity, subject, ids FROM alerts").all();
    expect(results).toEqual([
      { type: "audit.write_failed", severity: "critical", subject: "intx/alpha", ids: '{"ledger_id":"lost-1"}' },
    ]);
    expect(alertQueue.sent.map((m) => [m.sink, m.alert.type, m.alert.ids])).toEqual([
      ["chat", "audit.write_failed", { ledger_id: "lost-1" }],
    ]);
    expect(await ids("")).toEqual([]);
  });

  it("with all of D1 down, the row is still in the log, and so is the alert that could not be recorded", async () => {
    const lines = captureErrors();
    const lost = row("lost-3", T0, { kind: "state", method: "POST", path: "/rest/kill-switch", venue: "cde" });
    await record(withBrokenD1(e), lost);
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { level: "error", event: "audit.write_failed", error: "Error", row: lost },
      { level: "error", event: "alert_failed", type: "audit.write_failed", subject: "cde/alpha", error: "Error" },
    ]);
  });
});

describe("retention and the last minute's count", () => {
  it("pruneHistory deletes rows older than the retention, and keeps the rest", async () => {
    const now = T0 + 10 * 86_400_000;
    await record(e, row("old", now - 7 * 86_400_000 - 1), row("kept", now - 7 * 86_400_000));
    await pruneHistory(env.DB, now, 7);
    expect(await ids("")).toEqual(["kept"]);
  });

  it("countRecentOrders counts creates and modifies not refused, per account, in the last 60 s", async () => {
    const now = T0 + 60_000;
    await record(
      e,
      row("out", T0),
      row("in-1", T0 + 1),
      row("in-2", now, { kind: "modify", outcome: "failed" }),
      row("refused", now, { outcome: "refused" }),
      row("cancel", now, { kind: "cancel" }),
      row("future", now + 1),
      row("cde", now, { venue: "cde" }),
    );
    expect(Object.fromEntries(await countRecentOrders(e, now))).toEqual({ "intx/alpha": 2, "cde/alpha": 1 });
  });
});
