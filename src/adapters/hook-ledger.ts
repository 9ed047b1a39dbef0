/**
 * Webhook dedupe: one Durable Object per route, one record per idempotency key. The first delivery claims the key
 * and later stores its result; a replay within `ttlMs` gets that result back (or "in progress"), so it never places
 * a second order. After `ttlMs` the same key is a new delivery, of the next generation: its own delivery id and
 * client_order_id (routes/hooks.ts). So the record outlives its window as a tombstone holding the generation, for
 * `keepMs` (as long as D1 keeps deliveries), and an alarm sweeps tombstones after that.
 */
import { DurableObject } from "cloudflare:workers";

/** What the first delivery of an id produced: the response the caller got. */
export interface HookResult {
  status: number;
  body: string;
}

export type Claim = { state: "new"; generation: number } | { state: "pending" } | { state: "done"; result: HookResult };

interface LedgerRecord {
  expiresAt: number;
  /** The generation that claimed the key last (absent in records from before generations: 0). */
  generation?: number;
  /** Until when the record is kept, as a tombstone after `expiresAt` (absent in older records: `expiresAt`). */
  keepUntil?: number;
  result?: HookResult;
}

export class HookLedger extends DurableObject<Env> {
  /**
   * Claims `key` for the caller, or reports that it is being handled or was handled within its window. A claim
   * after the window is a new delivery of the next generation. Atomic within the object.
   */
  async claim(key: string, ttlMs: number, now: number = Date.now(), keepMs = 0): Promise<Claim> {
    const record = await this.ctx.storage.get<LedgerRecord>(key);
    if (record && record.expiresAt > now) {
      return record.result ? { state: "done", result: record.result } : { state: "pending" };
    }
    const generation = record ? (record.generation ?? 0) + 1 : 0;
    const keepUntil = now + ttlMs + keepMs;
    await this.ctx.storage.put<LedgerRecord>(key, { expiresAt: now + ttlMs, generation, keepUntil });
    const alarm = await this.ctx.storage.getAlarm();
    if (alarm === null || alarm > keepUntil) await this.ctx.storage.setAlarm(keepUntil);
    return { state: "new", generation };
  }

  /** Stores the result of the delivery that claimed `key`. */
  async complete(key: string, result: HookResult): Promise<void> {
    const record = await this.ctx.storage.get<LedgerRecord>(key);
    if (record) await this.ctx.storage.put<LedgerRecord>(key, { ...record, result });
  }

  /**
   * Gives `key` up without a result, when nothing reached the venue, so a retry by the sender can succeed: the
   * retry is the same delivery, so it takes the same generation again.
   */
  async release(key: string): Promise<void> {
    const record = await this.ctx.storage.get<LedgerRecord>(key);
    if (!record) return;
    const generation = record.generation ?? 0;
    if (generation === 0) await this.ctx.storage.delete(key);
    else await this.ctx.storage.put<LedgerRecord>(key, { ...record, expiresAt: 0, generation: generation - 1 });
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [key, record] of await this.ctx.storage.list<LedgerRecord>()) {
      // Records written before tombstones existed have no keepUntil: they go at their expiry, as they used to.
      const keepUntil = record.keepUntil ?? record.expiresAt;
      if (keepUntil <= now) await this.ctx.storage.delete(key);
      else next = Math.min(next, keepUntil);
    }
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(next);
  }
}
