/**
 * Halts and account state, as the API (`routes/accounts.ts`) and the console both use them: set or lift a halt on
 * some accounts, logged and alerted, and read each account's halts and order count from its gate.
 */
import { events } from "../core/alerts.ts";
import type { VenueConfig } from "../core/venue-config.ts";
import { raiseLater } from "./alerts.ts";
import { accountGate } from "./client.ts";
import { errorName, log } from "./log.ts";
import type { Halt, HaltScope } from "./rate-gate.ts";

/** One account after a halt call: its halt of that scope now and before, or why its gate did not answer. */
export type HaltResult =
  | { venue: string; name: string; scope: HaltScope; halt: Halt | null; was: Halt | null }
  | { venue: string; name: string; error: string };

/** Sets (`halt`) or lifts (null) the halt of `scope` on each of `targets`; `by` is `token:<name>`. */
export async function applyHalt(
  env: Env,
  ctx: ExecutionContext,
  targets: readonly VenueConfig[],
  halt: Halt | null,
  scope: HaltScope,
  by: string,
): Promise<HaltResult[]> {
  return Promise.all(
    targets.map(async (a): Promise<HaltResult> => {
      const venue = a.profile.name;
      let was: Halt | null;
      try {
        was = await accountGate(env, venue, a.account).setHalt(halt, scope);
      } catch (err) {
        log("error", { event: "gate_unavailable", venue, account: a.account, error: errorName(err) });
        return { venue, name: a.account, error: "the account's gate did not answer; nothing changed, try again" };
      }
      log("warn", {
        event: halt ? "halt" : "resume",
        venue,
        account: a.account,
        by,
        scope,
        reason: halt?.reason,
        was_halted: was !== null,
      });
      raiseLater(
        env,
        ctx,
        halt ? events.halted(venue, a.account, by, halt.reason) : events.resumed(venue, a.account, by),
      );
      return { venue, name: a.account, scope, halt, was };
    }),
  );
}

/** An account's halts and orders in the last minute, or null halts with `error` when its gate did not answer. */
export async function accountState(env: Env, account: VenueConfig) {
  try {
    const { halt, haltAll, ordersLastMinute } = await accountGate(env, account.profile.name, account.account).state();
    return { halt, haltAll, ordersLastMinute, error: undefined };
  } catch (err) {
    log("error", {
      event: "gate_unavailable",
      venue: account.profile.name,
      account: account.account,
      error: errorName(err),
    });
    return { halt: null, haltAll: null, ordersLastMinute: null, error: "the account's gate did not answer; try again" };
  }
}
