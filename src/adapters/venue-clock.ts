/**
 * One venue's clock as this isolate knows it: an estimator fed by every response, seeded once from the
 * shared `ClockState` Durable Object when the isolate is cold, and offering improvements back to it.
 */
import { type ClockEstimate, type ClockSample, DRIFT_PPM, OffsetEstimator } from "../lib/estimator.ts";
import { readShared, sharedReadWait } from "../lib/store.ts";
import { withTimeout } from "../lib/timeout.ts";
import { log } from "./log.ts";

/** Where the current estimate came from, for `GET /clock`. */
export type ClockSource = "none" | "shared" | "responses";

/** Offer the shared store at most this often, unless the estimate stepped. */
const OFFER_INTERVAL_MS = 10_000;

type Store = Pick<import("./clock-store.ts").ClockState, "read" | "offer">;

/** A move of the estimated offset larger than this is a `clock.stepped` alert. */
export const STEP_ALERT_MS = 1_000;

/**
 * After a cold probe that taught nothing (it failed, timed out, or its answer had no usable `Date`), no other cold
 * probe is sent for this long. The requests that were waiting for it sign without an estimate, are refused once and
 * re-signed (the documented fallback), and the first such refusal teaches the clock within one round trip: a probe
 * from each request that arrives meanwhile would only add load on a venue (or an isolate) already too slow to
 * answer, and make every new request wait again. Only if nothing taught the clock for this long does a cold request
 * probe again. The same 30 s as the background sync's courtesy interval.
 */
export const COLD_PROBE_BACKOFF_MS = 30_000;

/** What a cold request waits for: the probe run in flight, and whether it is the cold probe or a background sync. */
interface ProbeRun {
  done: Promise<void>;
  cold: boolean;
}

export class VenueClock {
  readonly estimator = new OffsetEstimator({ driftPpm: DRIFT_PPM });
  source: ClockSource = "none";
  #seeding: Promise<void> | undefined;
  #lastOffer = Number.NEGATIVE_INFINITY;
  #lastSync = Number.NEGATIVE_INFINITY;
  /** The probe run in flight (the cold probe, or a background sync's timed probes): at most one at a time. */
  #run: ProbeRun | undefined;
  #coldFailedAt = Number.NEGATIVE_INFINITY;
  /** Resolved when the estimator first learns anything (a sample or a shared seed): releases cold waiters. */
  #taught: { promise: Promise<void>; resolve: () => void } | undefined;

  /**
   * Gets a cold isolate its first estimate before it signs: called by every request that finds no estimate (after
   * `ready`). One cold probe per venue per isolate at a time: the first caller sends it, every other caller waits for
   * it, and all of them resume only once its answer taught the estimator (or a shared seed arrived first), or it
   * taught nothing. A probe that taught nothing is not repeated for `COLD_PROBE_BACKOFF_MS`; in between, callers
   * return at once and sign without an estimate. A background sync in flight counts as the probe: callers wait for
   * its first answer, and probe themselves only if it ends without one. No caller waits longer than `maxWaitMs` for
   * a run (the probe's own timeout and a margin).
   */
  async coldStart(now: () => number, probe: () => Promise<ClockSample | undefined>, maxWaitMs: number): Promise<void> {
    while (!this.estimator.estimate(now())) {
      const run = this.#run;
      if (run) {
        // Bounded on this caller's own timer too: a probe started by a request whose I/O the runtime cancelled
        // might never settle, and must not hold every other request.
        await withTimeout(Promise.race([run.done, this.#whenTaught()]), maxWaitMs);
        if (run.cold) return;
        continue;
      }
      if (now() - this.#coldFailedAt < COLD_PROBE_BACKOFF_MS) return;
      this.#start(true, async () => {
        this.observe(await probe().catch(() => undefined));
        if (this.estimator.estimate(now())) return;
        this.#coldFailedAt = now();
        log("warn", { event: "clock_probe_failed" });
      });
    }
  }

  /** Runs a background sync after any probe run in flight, never beside it. */
  exclusive<T>(sync: () => Promise<T>): Promise<T> {
    const before = this.#run?.done ?? Promise.resolve();
    let result!: Promise<T>;
    this.#start(false, async () => {
      await before;
      result = sync();
      await result.catch(() => undefined);
    });
    return (this.#run as ProbeRun).done.then(() => result);
  }

  #start(cold: boolean, body: () => Promise<void>): void {
    const run: ProbeRun = { cold, done: Promise.resolve() };
    run.done = body()
      .catch(() => undefined)
      .finally(() => {
        if (this.#run === run) this.#run = undefined;
      });
    this.#run = run;
  }

  #whenTaught(): Promise<void> {
    if (!this.#taught) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#taught = { promise, resolve };
    }
    return this.#taught.promise;
  }

  #learned(): void {
    this.#taught?.resolve();
    this.#taught = undefined;
  }

  /** True at most once per 30 s: background probing is a courtesy to the venue, not a flood. */
  claimSync(now: number): boolean {
    if (now - this.#lastSync < 30_000) return false;
    this.#lastSync = now;
    return true;
  }

  /**
   * Seeds from the shared store once per isolate; later calls resolve at once. The wait is capped at 250 ms, but a
   * read that answers later still seeds the estimator if it has learned nothing else by then (and releases the
   * requests waiting for the cold probe).
   */
  ready(store: Store | undefined): Promise<void> {
    if (!store) return Promise.resolve();
    this.#seeding ??= this.#seed(store);
    return this.#seeding;
  }

  async #seed(store: Store): Promise<void> {
    const failed = (err: unknown) => {
      log("warn", { event: "clock_shared_read_failed", error: err instanceof Error ? err.name : "unknown" });
    };
    // A read that answers after the wait still seeds (`#seedShared` checks that nothing was learned meanwhile).
    await sharedReadWait(readShared(store, failed).then((shared) => this.#seedShared(shared)));
  }

  #seedShared(shared: ClockEstimate | null): void {
    if (!shared || this.estimator.estimate(shared.updatedAt) !== undefined) return;
    this.estimator.seed(shared);
    this.source = "shared";
    this.#learned();
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
    this.#learned();
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
