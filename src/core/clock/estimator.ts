/**
 * The exchange-clock offset estimator. Pure: no I/O, every time is passed in.
 *
 * Each response brackets θ = server − local within [date·1000 − tRecv, date·1000 + 1000 − tSend]
 * (PROTOCOL.md, "Clocks"). FIRST VERSION: a plain intersection of all brackets, widened by drift.
 * To be replaced by the outlier-tolerant version (issue 3); the exported API stays.
 */

/** One response: local epoch ms right before the fetch and right after it, and the `Date` header in whole seconds. */
export interface ClockSample {
  tSend: number;
  tRecv: number;
  date: number;
}

/** The estimate at some local time. `lowMs..highMs` always contains the true offset, if samples were honest. */
export interface ClockEstimate {
  offsetMs: number;
  lowMs: number;
  highMs: number;
  samples: number;
  /** Local epoch ms of the newest sample that was used. */
  updatedAt: number;
}

export interface EstimatorOptions {
  /** Drift allowance, parts per million of age, added to each side of an old bracket. */
  driftPpm?: number;
  /** Samples whose round trip exceeds this are ignored. */
  maxRttMs?: number;
}

export class OffsetEstimator {
  readonly #driftPpm: number;
  readonly #maxRttMs: number;
  #low = Number.NEGATIVE_INFINITY;
  #high = Number.POSITIVE_INFINITY;
  #at = 0;
  #samples = 0;

  constructor(options: EstimatorOptions = {}) {
    this.#driftPpm = options.driftPpm ?? 100;
    this.#maxRttMs = options.maxRttMs ?? 10_000;
  }

  /** Feeds one sample. Returns false when it was ignored (absurd round trip). */
  add(sample: ClockSample): boolean {
    const rtt = sample.tRecv - sample.tSend;
    if (!(rtt >= 0 && rtt <= this.#maxRttMs) || !Number.isFinite(sample.date)) return false;
    const low = sample.date * 1000 - sample.tRecv;
    const high = sample.date * 1000 + 1000 - sample.tSend;
    const widened = this.#widened(sample.tRecv);
    const nextLow = Math.max(low, widened.low);
    const nextHigh = Math.min(high, widened.high);
    if (nextLow > nextHigh) {
      // Disagreement: trust the newest sample (a clock step or a bad earlier sample).
      this.#low = low;
      this.#high = high;
      this.#samples = 1;
    } else {
      this.#low = nextLow;
      this.#high = nextHigh;
      this.#samples++;
    }
    this.#at = sample.tRecv;
    return true;
  }

  #widened(now: number): { low: number; high: number } {
    const slack = (Math.max(0, now - this.#at) * this.#driftPpm) / 1e6;
    return { low: this.#low - slack, high: this.#high + slack };
  }

  /** The estimate at local time `now` (drift-widened), or undefined before the first sample. */
  estimate(now: number): ClockEstimate | undefined {
    if (this.#samples === 0) return undefined;
    const { low, high } = this.#widened(now);
    return { offsetMs: (low + high) / 2, lowMs: low, highMs: high, samples: this.#samples, updatedAt: this.#at };
  }

  /** Starts from an estimate learned elsewhere (another isolate), widened for its age like any old bracket. */
  seed(estimate: ClockEstimate): void {
    if (this.#samples > 0) return;
    this.#low = estimate.lowMs;
    this.#high = estimate.highMs;
    this.#at = estimate.updatedAt;
    this.#samples = estimate.samples;
  }
}

/**
 * The timestamp to sign with: the whole second nearest the venue's "now". Rounding (not truncating)
 * halves the worst-case error of the integer header: it is at most 0.5 s + the estimate's half-width.
 */
export function timestampFor(now: number, estimate: ClockEstimate | undefined): number {
  return Math.round((now + (estimate?.offsetMs ?? 0)) / 1000);
}
