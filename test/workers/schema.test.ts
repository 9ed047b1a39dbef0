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
