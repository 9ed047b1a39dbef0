/**
 * One venue's clock as this isolate knows it: an estimator fed by every response, seeded once from the
 * shared `ClockState` Durable Object when the isolate is cold, and offering improvements back to it.
 */
import { type ClockEstimate, OffsetEstimator } from "../lib/index.ts";
import { log } from "./log.ts";

/** Where the current estimate came from, for `GET /clock`. */
export type ClockSource = "none" | "shared" | "responses";

/** Drift allowance used to widen old brackets and shared estimates (clock hardware is typically < 50 ppm). */
export const DRIFT_PPM = 100;
/** How long a cold isolate waits for the shared estimate before signing without it. */
const SHARED_READ_TIMEOUT_MS = 250;
/** Offer the shared store at most this often, unless the estimate stepped. */
const OFFER_INTERVAL_MS = 10_000;

type Store = Pick<import("./clock-store.ts").ClockState, "read" | "offer">;

/** A move of the estimated offset larger than this is a `clock.stepped` alert. */
export const STEP_ALERT_MS = 1_000;

export class VenueClock {
  readonly estimator = new OffsetEstimator({ driftPpm: DRIFT_PPM });
  source: ClockSource = "none";
  #seeding: Promise<void> | undefined;
  #lastOffer = Number.NEGATIVE_INFINITY;
  #lastSync = Number.NEGATIVE_INFINITY;
  #probing: Promise<unknown> | undefined;

  /** Runs `probe` unless one is already running, in which case it waits for that one: one cold probe per isolate. */
  probeOnce(probe: () => Promise<unknown>): Promise<unknown> {
    this.#probing ??= probe().finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  /** True at most once per 30 s: background probing is a courtesy to the venue, not a flood. */
  claimSync(now: number): boolean {
    if (now - this.#lastSync < 30_000) return false;
    this.#lastSync = now;
    return true;
  }

  /** Seeds from the shared store once per isolate (bounded wait); later calls resolve at once. */
  ready(store: Store | undefined): Promise<void> {
    if (!store) return Promise.resolve();
    this.#seeding ??= this.#seed(store);
    return this.#seeding;
  }

  async #seed(store: Store): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), SHARED_READ_TIMEOUT_MS);
    });
    try {
      const shared = await Promise.race([store.read(), timeout]);
      if (shared && this.estimator.estimate(shared.updatedAt) === undefined) {
        this.estimator.seed(shared);
        this.source = "shared";
      }
    } catch (err) {
      log("warn", { event: "clock_shared_read_failed", error: err instanceof Error ? err.name : "unknown" });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  /**
   * Records one response's clock sample; returns how far the estimate's offset moved if that was more than
   * `STEP_ALERT_MS` (the venue's clock stepped, or the estimate was wrong), else undefined.
   */
  observe(sample: Parameters<OffsetEstimator["add"]>[0] | undefined, rejected = false): number | undefined {
    if (!sample) return undefined;
    const before = this.estimator.estimate(sample.tRecv);
    if (!this.estimator.add(sample, { rejected })) return undefined;
    this.source = "responses";
    const after = this.estimator.estimate(sample.tRecv);
    const moved = before && after ? after.offsetMs - before.offsetMs : 0;
    return Math.abs(moved) > STEP_ALERT_MS ? moved : undefined;
  }

  /** The estimate to offer the shared store now, or undefined if it is too soon since the last offer. */
  takeOffer(now: number): ClockEstimate | undefined {
    if (this.source !== "responses" || now - this.#lastOffer < OFFER_INTERVAL_MS) return undefined;
    this.#lastOffer = now;
    return this.estimator.estimate(now);
  }
}

const clocks = new Map<string, VenueClock>();

/** This isolate's clock for one venue endpoint (keyed by venue and base URL, so a sandbox has its own). */
export function venueClock(venue: string, baseUrl: string): VenueClock {
  const id = `${venue} ${baseUrl}`;
  let clock = clocks.get(id);
  if (!clock) {
    clock = new VenueClock();
    clocks.set(id, clock);
  }
  return clock;
}
