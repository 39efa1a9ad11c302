/**
 * Phi-accrual failure detector (Hayashibara et al.; the variant Akka and Cassandra use):
 * phi grows with the time since the last heartbeat, scaled by the observed inter-arrival
 * distribution, so a jittery link is judged more leniently than a steady one.
 */
/**
 * An endpoint's liveness: `disconnected` (no connection), `alive`, `suspect` (phi above
 * phiSuspect: kept if active, not promoted) or `dead` (phi above phiDead: replaced).
 */
export type EndpointState = 'disconnected' | 'alive' | 'suspect' | 'dead';

export interface PhiDetectorOptions {
  /** Expected heartbeat interval; seeds the history so a new connection is judged fairly. */
  expectedIntervalMs: number;
  minStdDevMs: number;
  acceptablePauseMs: number;
  windowSize: number;
}

export class PhiAccrualDetector {
  readonly #opts: PhiDetectorOptions;
  readonly #intervals: number[] = [];
  #sum = 0;
  #sumSq = 0;
  #last: number | undefined;

  constructor(opts: PhiDetectorOptions) {
    this.#opts = opts;
    // two seed samples around the expected interval: mean = expected, std = expected / 4
    const seedStd = opts.expectedIntervalMs / 4;
    this.#push(opts.expectedIntervalMs - seedStd);
    this.#push(opts.expectedIntervalMs + seedStd);
  }

  heartbeat(now: number): void {
    if (this.#last !== undefined) {
      const interval = now - this.#last;
      if (interval >= 0) this.#push(interval);
    }
    this.#last = now;
  }

  /** The gateway itself was stalled for `ms`: that silence is not the endpoint's. */
  forgive(ms: number): void {
    if (this.#last !== undefined) this.#last += ms;
  }

  /** Start the clock without an interval sample (connection just opened). */
  reset(now: number): void {
    this.#last = now;
  }

  get meanMs(): number {
    return this.#sum / this.#intervals.length;
  }

  get stdDevMs(): number {
    const n = this.#intervals.length;
    const mean = this.#sum / n;
    return Math.sqrt(Math.max(0, this.#sumSq / n - mean * mean));
  }

  phi(now: number): number {
    if (this.#last === undefined) return 0;
    const elapsed = now - this.#last;
    const mean = this.meanMs + this.#opts.acceptablePauseMs;
    const std = Math.max(this.stdDevMs, this.#opts.minStdDevMs);
    const y = (elapsed - mean) / std;
    // logistic approximation of the normal CDF's tail (Akka); exact to ~1e-4
    const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
    const p = elapsed > mean ? e / (1 + e) : 1 - 1 / (1 + e);
    return p <= 0 ? Number.POSITIVE_INFINITY : -Math.log10(p);
  }

  #push(interval: number): void {
    this.#intervals.push(interval);
    this.#sum += interval;
    this.#sumSq += interval * interval;
    if (this.#intervals.length > this.#opts.windowSize) {
      const old = this.#intervals.shift() ?? 0;
      this.#sum -= old;
      this.#sumSq -= old * old;
    }
  }
}
