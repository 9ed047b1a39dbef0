/**
 * The exchange-clock offset estimator. Pure: no I/O, every time is passed in.
 *
 * Each response brackets θ = server − local within [date·1000 − tRecv, date·1000 + 1000 − tSend] (docs/protocol.md,
 * "Clocks"). The estimator keeps the recent brackets, widens each by a drift allowance proportional to its age,
 * and takes the region agreed by the most brackets (Marzullo's algorithm, as in NTP's intersection step), so one
 * bad `Date` can neither empty the interval nor move it. Low-delay samples have narrow brackets, so they set the
 * bounds. When the newest samples agree with each other but not with the old majority, the venue's clock stepped:
 * the old samples are dropped. Brackets that leave the window are folded into one merged bracket, so the interval
 * never widens as honest samples accumulate (except by drift over time).
 *
 * Timestamp choice: the whole second nearest `now + offset`. The header has whole-second resolution, so rounding
 * (not truncating) bounds its error by 0.5 s plus the interval's half-width. One response already bounds the
 * half-width to 0.5 s + RTT/2, so even at a 500 ms round trip the worst case is about 1.25 s against a 5 s window.
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
  /** Samples whose round trip exceeds this are ignored: they say little and may be stale. */
  maxRttMs?: number;
  /** How many recent brackets take part in the vote. */
  window?: number;
}

interface Bracket {
  low: number;
  high: number;
  /** Local time the bracket was taken (its age starts here). */
  at: number;
  /** How many samples it stands for (more than 1 for the merged bracket). */
  weight: number;
}

/** The default drift allowance, ppm: old brackets and shared estimates widen by this much of their age (clock
 * hardware is typically under 50 ppm). */
export const DRIFT_PPM = 100;

/** Consecutive samples outside the agreed region, agreeing with each other, that mean the venue's clock stepped. */
const STEP_SAMPLES = 2;

export class OffsetEstimator {
  readonly #driftPpm: number;
  readonly #maxRttMs: number;
  readonly #window: number;
  /** Samples folded out of the window, intersected: one bracket that votes with their weight. */
  #merged: Bracket | undefined;
  #recent: Bracket[] = [];
  #updatedAt = 0;
  /** Bumped by every change to the brackets; `estimate` answers again from its last answer for the same state and time. */
  #version = 0;
  #last: { version: number; now: number; estimate: ClockEstimate } | undefined;

  constructor(options: EstimatorOptions = {}) {
    this.#driftPpm = options.driftPpm ?? DRIFT_PPM;
    this.#maxRttMs = options.maxRttMs ?? 10_000;
    this.#window = options.window ?? 16;
  }

  #widen(b: Bracket, now: number): Bracket {
    const slack = (Math.max(0, now - b.at) * this.#driftPpm) / 1e6;
    return { low: b.low - slack, high: b.high + slack, at: now, weight: b.weight };
  }

  #all(): Bracket[] {
    return this.#merged ? [this.#merged, ...this.#recent] : this.#recent;
  }

  /** Scratch for `#agreed`, reused on every call (it runs several times per request): edge positions, weights, order. */
  readonly #pos: number[] = [];
  readonly #delta: number[] = [];
  readonly #order: number[] = [];

  /** Marzullo: the region covered by the greatest total weight of (drift-widened) brackets at `now`. */
  #agreed(brackets: readonly Bracket[], now: number): { low: number; high: number; votes: number } | undefined {
    if (brackets.length === 0) return undefined;
    const pos = this.#pos;
    const delta = this.#delta;
    const order = this.#order;
    const edges = brackets.length * 2;
    for (let i = 0; i < brackets.length; i++) {
      const b = brackets[i] as Bracket;
      const slack = (Math.max(0, now - b.at) * this.#driftPpm) / 1e6;
      pos[2 * i] = b.low - slack;
      delta[2 * i] = b.weight;
      pos[2 * i + 1] = b.high + slack;
      delta[2 * i + 1] = -b.weight;
    }
    // A stable insertion sort of the edges by position, starts before ends at the same point (so touching brackets
    // count as overlapping): the edges are few and nearly in order already.
    for (let i = 0; i < edges; i++) {
      const p = pos[i] as number;
      const d = delta[i] as number;
      let j = i;
      for (; j > 0; j--) {
        const k = order[j - 1] as number;
        const q = pos[k] as number;
        if (q < p || (q === p && (delta[k] as number) >= d)) break;
        order[j] = k;
      }
      order[j] = i;
    }
    let votes = 0;
    let best = 0;
    let low = 0;
    let high = 0;
    for (let r = 0; r < edges; r++) {
      const e = order[r] as number;
      const d = delta[e] as number;
      votes += d;
      if (d > 0 && votes > best) {
        best = votes;
        low = pos[e] as number;
        // A start is never the last edge: its bracket's end comes after it.
        high = pos[order[r + 1] as number] as number;
      }
    }
    return { low, high, votes: best };
  }

  /**
   * Feeds one sample. Returns false when it was ignored (absurd round trip). `rejected` says the venue refused a
   * timestamp signed from the current estimate: proof that the estimate is wrong, so brackets that disagree with
   * this sample are dropped at once instead of out-voting it.
   */
  add(sample: ClockSample, options: { rejected?: boolean } = {}): boolean {
    const rtt = sample.tRecv - sample.tSend;
    if (!(rtt >= 0 && rtt <= this.#maxRttMs) || !Number.isFinite(sample.date)) return false;
    const bracket: Bracket = {
      low: sample.date * 1000 - sample.tRecv,
      high: sample.date * 1000 + 1000 - sample.tSend,
      at: sample.tRecv,
      weight: 1,
    };
    const agreed = this.#agreed(this.#all(), sample.tRecv);
    const disagrees = agreed !== undefined && (bracket.high < agreed.low || bracket.low > agreed.high);
    if (disagrees && options.rejected) {
      this.#merged = undefined;
      this.#recent = [];
    } else if (disagrees) {
      // A step shows as the newest samples agreeing with each other and not with the rest.
      const tail = [...this.#recent.slice(-(STEP_SAMPLES - 1)), bracket];
      const tailAgreed = this.#agreed(tail, sample.tRecv);
      const outside = tail.every((b) => b.high < (agreed?.low ?? 0) || b.low > (agreed?.high ?? 0));
      if (tail.length >= STEP_SAMPLES && outside && tailAgreed?.votes === tail.length) {
        this.#merged = undefined;
        this.#recent = tail.slice(0, -1);
      }
    }
    this.#recent.push(bracket);
    this.#version++;
    this.#updatedAt = Math.max(this.#updatedAt, sample.tRecv);
    if (this.#recent.length > this.#window) this.#fold(this.#recent.shift() as Bracket);
    return true;
  }

  /** Folds a bracket leaving the window into the merged one, if it agrees with the region everyone else agrees on. */
  #fold(oldest: Bracket): void {
    const agreed = this.#agreed(this.#all(), oldest.at);
    if (!agreed || oldest.high < agreed.low || oldest.low > agreed.high) return; // an outlier: forget it
    if (!this.#merged) {
      this.#merged = oldest;
      return;
    }
    const at = Math.max(this.#merged.at, oldest.at);
    const a = this.#widen(this.#merged, at);
    const b = this.#widen(oldest, at);
    const low = Math.max(a.low, b.low);
    const high = Math.min(a.high, b.high);
    this.#merged = low <= high ? { low, high, at, weight: a.weight + b.weight } : this.#merged;
  }

  /** The estimate at local time `now` (drift-widened), or undefined before the first sample. */
  estimate(now: number): ClockEstimate | undefined {
    const last = this.#last;
    if (last && last.version === this.#version && last.now === now) return { ...last.estimate };
    const all = this.#all();
    const agreed = this.#agreed(all, now);
    if (!agreed) return undefined;
    const samples = all.reduce((n, b) => n + b.weight, 0);
    const estimate = {
      offsetMs: (agreed.low + agreed.high) / 2,
      lowMs: agreed.low,
      highMs: agreed.high,
      samples,
      updatedAt: this.#updatedAt,
    };
    this.#last = { version: this.#version, now, estimate };
    return { ...estimate };
  }

  /** Starts from an estimate learned elsewhere (another isolate), widened for its age like any old bracket. */
  seed(estimate: ClockEstimate): void {
    if (this.#all().length > 0) return;
    this.#merged = { low: estimate.lowMs, high: estimate.highMs, at: estimate.updatedAt, weight: 1 };
    this.#version++;
    this.#updatedAt = estimate.updatedAt;
  }
}

/** Half the width of the estimate's interval, in ms: how far the true offset may be from `offsetMs`. */
export function halfWidthMs(estimate: ClockEstimate): number {
  return (estimate.highMs - estimate.lowMs) / 2;
}

/**
 * The timestamp to sign with: the whole second nearest the venue's "now". Rounding (not truncating)
 * halves the worst-case error of the integer header: it is at most 0.5 s + the estimate's half-width.
 */
export function timestampFor(now: number, estimate: ClockEstimate | undefined): number {
  return Math.round((now + (estimate?.offsetMs ?? 0)) / 1000);
}
