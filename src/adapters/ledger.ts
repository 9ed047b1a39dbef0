/**
 * The order ledger in D1 (docs/orders.md): `recordOrder` writes a row after the answer is on its way, and never
 * loses one silently (a refused write goes to the log line and raises `audit.write_failed`); `listOrders` and
 * `exportOrders` read them newest first within the caller's accounts; `countRecentOrders` counts the last minute's
 * orders per account. Pruned with the other history (history.ts).
 */
import { events } from "../core/alerts.ts";
import {
  encodeCursor,
  LEDGER_KINDS,
  LEDGER_OUTCOMES,
  LEDGER_SOURCES,
  type LedgerCursor,
  type LedgerQuery,
  type LedgerRow,
  ORDER_FIELDS,
  VALUE_FILTERS,
} from "../core/ledger.ts";
import { accountKey } from "../core/venue-config.ts";
import { config } from "../runtime.ts";
import { raise } from "./alerts.ts";
import { errorName, log } from "./log.ts";

const COLUMNS = [
  "id",
  "at",
  "source",
  "actor",
  "venue",
  "account",
  "method",
  "path",
  "kind",
  ...ORDER_FIELDS,
  "outcome",
  "status",
  "refusal",
  "venue_order_id",
  "attempts",
  "latency_ms",
  "delivery",
] as const;
const INSERT = `INSERT INTO orders (${COLUMNS.join(", ")}) VALUES (${COLUMNS.map((_, i) => `?${i + 1}`).join(", ")})`;

/** Writes `row` off the hot path (`ctx.waitUntil`): the answer does not wait for D1. */
export function recordOrder(env: Env, ctx: { waitUntil(promise: Promise<unknown>): void }, row: LedgerRow): void {
  if (!config(env).ledger) return;
  // In the next task, not this one: the answer is handed back first, then the write begins.
  ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 0)).then(() => writeOrder(env, row)));
}

/**
 * Writes `row`; when D1 refuses, logs the row itself (it holds no credential by construction) and raises
 * `audit.write_failed`. Never rejects.
 */
export async function writeOrder(env: Env, row: LedgerRow): Promise<void> {
  try {
    const values = COLUMNS.map((column) => (column === "at" ? Date.parse(row.at) : (row[column] ?? null)));
    await env.DB.prepare(INSERT)
      .bind(...values)
      .run();
  } catch (err) {
    log("error", { event: "audit.write_failed", error: errorName(err), row });
    await raise(env, events.auditWriteFailed(row.venue, row.account, row.id, row.kind, row.source));
  }
}

type StoredRow = Record<(typeof COLUMNS)[number], string | number | null>;

/** The stored value of a column holding one of `values` (the table's CHECK keeps it so; anything else is a bug). */
function member<T extends string>(values: readonly T[], stored: StoredRow, column: keyof StoredRow): T {
  const found = values.find((value) => value === stored[column]);
  if (found === undefined) throw new Error(`orders.${column} holds a value the ledger does not write`);
  return found;
}

/** A stored row as the API shows it: `at` in ISO 8601 UTC with ms, and absent fields left out. */
function toLedgerRow(stored: StoredRow): LedgerRow {
  const text = (column: keyof StoredRow) => String(stored[column] ?? "");
  const row: LedgerRow = {
    id: text("id"),
    at: new Date(Number(stored.at)).toISOString(),
    source: member(LEDGER_SOURCES, stored, "source"),
    actor: text("actor"),
    venue: text("venue"),
    account: text("account"),
    method: text("method"),
    path: text("path"),
    kind: member(LEDGER_KINDS, stored, "kind"),
    outcome: member(LEDGER_OUTCOMES, stored, "outcome"),
  };
  for (const field of ORDER_FIELDS) {
    const value = stored[field];
    if (value !== null) row[field] = value;
  }
  for (const field of ["refusal", "venue_order_id", "delivery"] as const) {
    const value = stored[field];
    if (value !== null) row[field] = String(value);
  }
  for (const field of ["status", "attempts", "latency_ms"] as const) {
    const value = stored[field];
    if (value !== null) row[field] = Number(value);
  }
  return row;
}

/** One page of the rows `query` matches within `scope` (account keys, `venue/account`), newest first. */
async function page(env: Env, query: LedgerQuery, scope: ReadonlySet<string>, limit: number): Promise<StoredRow[]> {
  const where = ["(venue || '/' || account) IN (SELECT value FROM json_each(?))"];
  const values: unknown[] = [JSON.stringify([...scope])];
  const add = (clause: string, ...bound: unknown[]) => {
    where.push(clause);
    values.push(...bound);
  };
  for (const column of VALUE_FILTERS) {
    const value = query[column];
    if (value !== undefined) add(`${column} = ?`, value);
  }
  if (query.since !== undefined) add("at >= ?", query.since);
  if (query.until !== undefined) add("at < ?", query.until);
  if (query.cursor) add("(at, id) < (?, ?)", query.cursor.at, query.cursor.id);
  const sql = `SELECT * FROM orders WHERE ${where.join(" AND ")} ORDER BY at DESC, id DESC LIMIT ?`;
  values.push(limit);
  const { results } = await env.DB.prepare(sql)
    .bind(...values)
    .all<StoredRow>();
  return results;
}

const cursorOf = (row: StoredRow): LedgerCursor => ({ at: row.at as number, id: row.id as string });

/** Up to `query.limit` rows, newest first, and the cursor of the next page (null on the last). */
export async function listOrders(
  env: Env,
  query: LedgerQuery,
  scope: ReadonlySet<string>,
): Promise<{ orders: LedgerRow[]; next_cursor: string | null }> {
  if (scope.size === 0) return { orders: [], next_cursor: null };
  const rows = await page(env, query, scope, query.limit + 1);
  const shown = rows.slice(0, query.limit);
  const last = shown.at(-1);
  const more = rows.length > query.limit && last !== undefined;
  return { orders: shown.map(toLedgerRow), next_cursor: more ? encodeCursor(cursorOf(last)) : null };
}

/** Rows read per D1 query while exporting. */
export const EXPORT_PAGE = 500;

/** Every row `query` matches (its `limit` aside), one JSON object per line, read from D1 a page at a time. */
export function exportOrders(env: Env, query: LedgerQuery, scope: ReadonlySet<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor = query.cursor;
  let done = scope.size === 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return controller.close();
      let rows: StoredRow[];
      try {
        rows = await page(env, { ...query, cursor }, scope, EXPORT_PAGE);
      } catch (err) {
        // The 200 and the first lines are already out: the export ends cut short, and the log says why.
        log("error", { event: "orders_export_failed", error: errorName(err) });
        throw err;
      }
      const last = rows.at(-1);
      if (last) controller.enqueue(encoder.encode(rows.map((row) => `${JSON.stringify(toLedgerRow(row))}\n`).join("")));
      if (last) cursor = cursorOf(last);
      done = rows.length < EXPORT_PAGE;
      if (done) controller.close();
    },
  });
}

/**
 * Orders (creates and modifies) per account (`venue/account`) in the 60 s before `now`, refusals aside: what reached
 * the venue or was on its way to it. Accounts with none are absent.
 */
export async function countRecentOrders(env: Env, now: number = Date.now()): Promise<Map<string, number>> {
  const { results } = await env.DB.prepare(
    `SELECT venue, account, COUNT(*) AS n FROM orders
     WHERE at > ?1 AND at <= ?2 AND kind IN ('create', 'modify') AND outcome != 'refused'
     GROUP BY venue, account`,
  )
    .bind(now - 60_000, now)
    .all<{ venue: string; account: string; n: number }>();
  return new Map(results.map((r) => [accountKey(r.venue, r.account), r.n]));
}
