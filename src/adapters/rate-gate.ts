/**
 * The gate every outbound request of one account passes, across every isolate: one Durable Object per account
 * (venue and name: a halt outlives a change of the account's key secret; two accounts never share a key). In one
 * round trip it answers all three questions a send asks:
 *   - is the account halted? (for whatever a halt stops: core/guards.ts `passesHalt`);
 *   - is another order inside `max_orders_per_minute`? (counted here, across isolates, when its slot is granted);
 *   - which slot of the key's pacing grid may it take (core/pacing.ts)?
 * A Durable Object, not the rate-limiting binding: the binding counts per location, approximately, over 10 s or 60 s
 * periods, so it cannot promise "never more than 40 in any second"; one object serialising grants can.
 * The halt is stored (it survives restarts and deploys); the schedule and the order count live in memory, and an
 * object is only evicted after it has been idle longer than either period.
 */
import { DurableObject } from "cloudflare:workers";
import { type Pacing, type Priority, RollingCount, SendSchedule } from "../core/pacing.ts";

/** A halt set on the account itself, or on every account at once (`/halt`): each is lifted on its own. */
export type HaltScope = "account" | "all";
const HALT_KEY: Record<HaltScope, string> = { account: "halt", all: "halt:all" };

/** Who halted an account, when, and why. */
export interface Halt {
  reason: string;
  /** The name of the token that set it. */
  by: string;
  /** ISO 8601. */
  at: string;
}

/** What a send asks the gate. */
export interface Admission {
  /** The key's pacing; undefined = not paced (the gate is asked for the halt or the order count only). */
  pacing: Pacing | undefined;
  priority: Priority;
  maxWaitMs: number;
  /** Whether a halt stops this request (orders and other writes; not reads, cancels or the kill-switch). */
  haltable: boolean;
  /** Set for an order on an account with `max_orders_per_minute`: count it against that limit. */
  ordersPerMinute: number | undefined;
  /** Whether this is an order to count (every account counts them, for `orders_last_minute`). */
  countOrder?: boolean;
}

/** The gate's answer: how long to wait before sending, or why nothing may be sent (nothing was counted). */
export type Admitted =
  | { wait: number }
  | { refused: "busy" }
  | { refused: "halted"; halt: Halt }
  | { refused: "orders"; retryAfterSeconds: number };

const MINUTE_MS = 60_000;

export class RateGate extends DurableObject<Env> {
  readonly #schedule = new SendSchedule();
  readonly #orders = new RollingCount(MINUTE_MS);

  /** A halt, read from storage (a synchronous SQLite read in this object: no round trip). */
  #halt(scope: HaltScope): Halt | undefined {
    return this.ctx.storage.kv.get<Halt>(HALT_KEY[scope]);
  }

  admit(admission: Admission, now: number = Date.now()): Admitted {
    const { pacing, priority, maxWaitMs, haltable, ordersPerMinute, countOrder } = admission;
    if (haltable) {
      const halt = this.#halt("account") ?? this.#halt("all");
      if (halt) return { refused: "halted", halt };
    }
    if (ordersPerMinute !== undefined && this.#orders.count(now) >= ordersPerMinute) {
      return { refused: "orders", retryAfterSeconds: this.#orders.retryAfterSeconds(ordersPerMinute, now) };
    }
    const wait = pacing ? this.#schedule.reserve(pacing, priority, maxWaitMs, now) : 0;
    if (wait === null) return { refused: "busy" };
    if (ordersPerMinute !== undefined || countOrder === true) this.#orders.add(now + wait);
    return { wait };
  }

  /** Sets (or, with null, lifts) the halt of one scope; returns that scope's halt before. */
  setHalt(halt: Halt | null, scope: HaltScope = "account"): Halt | null {
    const before = this.#halt(scope) ?? null;
    if (halt) this.ctx.storage.kv.put(HALT_KEY[scope], halt);
    else this.ctx.storage.kv.delete(HALT_KEY[scope]);
    return before;
  }

  /** The halts in force and the orders counted in the last minute, for `GET /accounts`. */
  state(now: number = Date.now()): { halt: Halt | null; haltAll: Halt | null; ordersLastMinute: number } {
    return {
      halt: this.#halt("account") ?? null,
      haltAll: this.#halt("all") ?? null,
      ordersLastMinute: this.#orders.count(now),
    };
  }
}
