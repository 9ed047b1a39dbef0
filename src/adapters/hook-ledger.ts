/**
 * Webhook dedupe: one Durable Object per route, one record per delivery id. The first delivery claims the id and
 * later stores its result; a replay gets that result back (or "in progress"), so it never places a second order.
 * Records expire after `ttlMs`; an alarm sweeps them.
 */
import { DurableObject } from "cloudflare:workers";

/** What the first delivery of an id produced: the response the caller got. */
export interface HookResult {
  status: number;
  body: string;
}

export type Claim = { state: "new" } | { state: "pending" } | { state: "done"; result: HookResult };

interface LedgerRecord {
  expiresAt: number;
  result?: HookResult;
}

export class HookLedger extends DurableObject<Env> {
  /** Claims `id` for the caller, or reports that it is being handled or was handled. Atomic within the object. */
  async claim(id: string, ttlMs: number, now: number = Date.now()): Promise<Claim> {
    const record = await this.ctx.storage.get<LedgerRecord>(id);
    if (record && record.expiresAt > now) {
      return record.result ? { state: "done", result: record.result } : { state: "pending" };
    }
    await this.ctx.storage.put<LedgerRecord>(id, { expiresAt: now + ttlMs });
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(now + ttlMs);
    return { state: "new" };
  }

  /** Stores the result of the delivery that claimed `id`. */
  async complete(id: string, result: HookResult): Promise<void> {
    const record = await this.ctx.storage.get<LedgerRecord>(id);
    if (record) await this.ctx.storage.put<LedgerRecord>(id, { ...record, result });
  }

  /** Gives `id` up without a result, when nothing reached the venue, so a retry by the sender can succeed. */
  async release(id: string): Promise<void> {
    await this.ctx.storage.delete(id);
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [id, record] of await this.ctx.storage.list<LedgerRecord>()) {
      if (record.expiresAt <= now) await this.ctx.storage.delete(id);
      else next = Math.min(next, record.expiresAt);
    }
    if (Number.isFinite(next)) await this.ctx.storage.setAlarm(next);
  }
}
