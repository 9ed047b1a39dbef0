/**
 * The account's rules before anything is sent: its own guards (`screen`: read_only, the order guards), and its gate
 * (the `RateGate` Durable Object: the halt, the order count and the send slot, in one round trip). A refusal is
 * logged with who asked, alerted when it is an order guard's, and thrown.
 */
import { type AlertEvent, events } from "../core/alerts.ts";
import { type Screened, screen } from "../core/guards.ts";
import type { IsolateMetrics } from "../core/metrics.ts";
import type { VenueConfig } from "../core/venue-config.ts";
import type { RequestKind } from "../venues/profile.ts";
import { log } from "./log.ts";
import type { Admission, Admitted } from "./rate-gate.ts";
import { RateLimitedError, RefusedError } from "./venue-errors.ts";

/** The account's gate (the `RateGate` Durable Object): halt, order count and send slot, in one round trip. */
export interface SlotGate {
  admit(admission: Admission): Promise<Admitted>;
}

/** What one attempt asks the gate; the pacing and the wait cap are added from the account's configuration. */
export type Ask = Omit<Admission, "pacing" | "maxWaitMs">;

/** What the rules read and do: the account, its gate, the clock, and where refusals are alerted. */
export interface GateParts {
  readonly config: VenueConfig;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly options: { gate?: SlotGate; alert?: (event: AlertEvent) => void; metrics?: IsolateMetrics };
}

/** A read waits at most this long for a send slot, a write (order, cancel, kill-switch, webhook) this long. */
const READ_MAX_WAIT_MS = 500;
const WRITE_MAX_WAIT_MS = 1_000;

/** The account's own rules (core/guards.ts `screen`): what to send, or a RefusedError, logged and thrown. */
export function screened(
  parts: GateParts,
  kind: RequestKind,
  request: { body?: string | Uint8Array; by?: string },
): Screened {
  const { profile, account, rules } = parts.config;
  const result = screen(rules, kind, request.body, `${profile.name}/${account}`);
  if (!("refused" in result)) return result;
  const { status, code, rule, message } = result.refused;
  throw refusal(parts, request.by, new RefusedError(status, code, rule, message));
}

/** Logs a refusal with who asked (an order guard's is also alerted) and returns it to be thrown. */
function refusal(parts: GateParts, by: string | undefined, err: RefusedError): RefusedError {
  const { profile, account } = parts.config;
  log("warn", { event: "refused", venue: profile.name, account, by, rule: err.rule, status: err.status });
  parts.options.metrics?.refusals.inc(profile.name, account, err.rule);
  if (err.code === "order_refused") {
    parts.options.alert?.(events.orderRefused(profile.name, account, err.rule, by, err.message));
  }
  return err;
}

/**
 * Asks the account's gate (halt, order count, send slot) when there is anything to ask, and resolves to the local
 * time by which the request must leave (core/pacing.ts: at most `lagMs` after the grant). Rejects with
 * RateLimitedError past the priority's wait cap, RefusedError for a halt or a full minute of orders. `ask` is read
 * before this returns, so the caller may change it for the next attempt.
 */
export function takeSlot(parts: GateParts, ask: Ask, by: string | undefined): Promise<number> {
  const { gate } = parts.options;
  const { pacing } = parts.config;
  if (!gate || (!pacing && !ask.haltable && ask.ordersPerMinute === undefined)) {
    return Promise.resolve(Number.POSITIVE_INFINITY);
  }
  const cap = ask.priority === "write" ? WRITE_MAX_WAIT_MS : READ_MAX_WAIT_MS;
  // Without a grant nothing may be sent: a gate that fails is a refusal (429), never a 500 after a send.
  const admitted = gate.admit({ ...ask, pacing, maxWaitMs: cap }).catch(() => ({ refused: "busy" as const }));
  return granted(parts, admitted, ask.ordersPerMinute, by);
}

/** The gate's answer as a send-by time, or the refusal it says, thrown. */
async function granted(
  parts: GateParts,
  answer: Promise<Admitted | { refused: "busy" }>,
  limit: number | undefined,
  by: string | undefined,
): Promise<number> {
  const admitted = await answer;
  const { pacing, profile, account } = parts.config;
  const label = `${profile.name}/${account}`;
  if ("refused" in admitted) {
    if (admitted.refused === "busy") {
      parts.options.metrics?.gateRateLimited.inc(profile.name, "busy");
      throw new RateLimitedError(profile.name, 1);
    }
    if (admitted.refused === "halted") {
      const { reason, by: who, at } = admitted.halt;
      const message = `account ${label} is halted: ${reason} (by ${who} at ${at})`;
      throw refusal(parts, by, new RefusedError(423, "account_halted", "halt", message));
    }
    const { retryAfterSeconds } = admitted;
    const message = `max_orders_per_minute ${limit} reached (account ${label}); retry after ${retryAfterSeconds} s`;
    throw refusal(
      parts,
      by,
      new RefusedError(422, "order_refused", "max_orders_per_minute", message, retryAfterSeconds),
    );
  }
  const { wait } = admitted;
  if (!pacing) return Number.POSITIVE_INFINITY;
  // Counted from when the grant reaches this isolate: the gate's return trip (a few ms with DO_LOCATION_HINT) is
  // on top of lagMs, and a slow gate cannot make every grant stale.
  const grantedAt = parts.now();
  if (wait > 0) {
    parts.options.metrics?.gateWaits.inc(profile.name, account);
    parts.options.metrics?.gateWaitSeconds.inc(profile.name, account, "", wait / 1000);
    await parts.sleep(wait);
  }
  return grantedAt + wait + pacing.lagMs;
}
