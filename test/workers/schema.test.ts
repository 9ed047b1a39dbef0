// The D1 schema after every migration: the forward-retry query is served by its partial index, and a delivery
// state that nothing writes is refused by the table itself.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";

describe("D1 schema", () => {
  it("the forward retry query uses the partial index on failed and pending forwards", async () => {
    const plan = await env.DB.prepare(
      `EXPLAIN QUERY PLAN SELECT job, scheduled_at FROM job_runs
       WHERE forward_state IN ('failed', 'pending') AND scheduled_at < ?1 LIMIT 20`,
    )
      .bind(Date.now())
      .all<{ detail: string }>();
    expect(plan.results.map((row) => row.detail).join("\n")).toContain("job_runs_forward_retry");
  });

  it("deliveries accept queued, delivered and dead, and refuse failed", async () => {
    const insert = (id: string, state: string) =>
      env.DB.prepare(
        `INSERT INTO deliveries (id, route, venue, method, path, state, received_at, updated_at)
         VALUES (?1, 'r', 'cde', 'POST', '/rest/kill-switch', ?2, 0, 0)`,
      )
        .bind(id, state)
        .run();
    for (const state of ["queued", "delivered", "dead"]) await insert(`ok-${state}`, state);
    await expect(insert("bad", "failed")).rejects.toThrow(/CHECK constraint failed/);
  });
});

describe("the order ledger's table", () => {
  const plan = async (where: string) => {
    const { results } = await env.DB.prepare(
      `EXPLAIN QUERY PLAN SELECT * FROM orders
       WHERE (venue || '/' || account) IN (SELECT value FROM json_each(?1)) ${where}
       ORDER BY at DESC, id DESC LIMIT 100`,
    )
      .bind('["intx/alpha"]')
      .all<{ detail: string }>();
    return results.map((row) => row.detail).join("\n");
  };

  it("GET /orders reads newest first from an index, without sorting, filtered or not", async () => {
    expect(await plan("")).toContain("orders_by_time");
    expect(await plan("AND account = 'alpha'")).toContain("orders_by_account");
    expect(await plan("AND actor = 'bot-3'")).toContain("orders_by_actor");
    expect(await plan("AND client_order_id = 'c-1'")).toContain("orders_by_client_order_id");
    for (const where of ["", "AND account = 'alpha'", "AND actor = 'bot-3'"]) {
      expect(await plan(where)).not.toContain("TEMP B-TREE");
    }
  });

  it("refuses a source, kind or outcome outside the issue's value sets", async () => {
    const insert = (source: string, kind: string, outcome: string) =>
      env.DB.prepare(
        `INSERT INTO orders (id, at, source, actor, venue, account, method, path, kind, outcome)
         VALUES (?1, 0, ?2, 'a', 'intx', 'alpha', 'POST', '/api/v1/orders', ?3, ?4)`,
      )
        .bind(`${source}-${kind}-${outcome}`, source, kind, outcome)
        .run();
    await insert("redrive", "cancel_all", "failed");
    await expect(insert("cron", "create", "sent")).rejects.toThrow(/CHECK constraint failed/);
    await expect(insert("job", "read", "sent")).rejects.toThrow(/CHECK constraint failed/);
    await expect(insert("job", "create", "ok")).rejects.toThrow(/CHECK constraint failed/);
  });

  it("keeps an order field as the body had it: a string stays a string, a number a number", async () => {
    await env.DB.prepare(
      `INSERT INTO orders (id, at, source, actor, venue, account, method, path, kind, outcome, size, price)
       VALUES ('typed', 0, 'relay', 'a', 'intx', 'alpha', 'POST', '/api/v1/orders', 'create', 'sent', ?1, ?2)`,
    )
      .bind("0.10", 65000.5)
      .run();
    const row = await env.DB.prepare("SELECT size, price FROM orders WHERE id = 'typed'").first();
    expect(row).toEqual({ size: "0.10", price: 65000.5 });
  });
});
