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
  /** The last `windowSize` inter-arrival times, as a ring (32-bit floats: ms to a thousandth for hours). */
  readonly #intervals: Float32Array;
  #count = 0;
  #next = 0;
  #sum = 0;
  #sumSq = 0;
  #last: number | undefined;

  constructor(opts: PhiDetectorOptions) {
    this.#opts = opts;
    this.#intervals = new Float32Array(Math.max(2, opts.windowSize));
    this.#seed(opts.expectedIntervalMs);
  }

  /** Two seed samples around the expected interval: mean = expected, std = expected / 4. */
  #seed(expectedMs: number): void {
    const seedStd = expectedMs / 4;
    this.#push(expectedMs - seedStd);
    this.#push(expectedMs + seedStd);
  }

  /**
   * Heartbeats now come every `expectedMs` (the gateway changed the rate): the history of the
   * old rate no longer says what is late, so it starts over from the new one. The time since
   * the last heartbeat keeps its weight in intervals (half an old interval becomes half a new
   * one), so a silence under way is neither forgotten nor blown up: a dead standby moved up
   * to next in line stays overdue, and one merely between heartbeats is not judged late.
   */
  rebase(expectedMs: number, now: number): void {
    const oldMean = this.#mean;
    this.#count = 0;
    this.#next = 0;
    this.#sum = 0;
    this.#sumSq = 0;
    this.#seed(expectedMs);
    if (this.#last !== undefined && oldMean > 0) this.#last = now - (Math.max(0, now - this.#last) * expectedMs) / oldMean;
  }

  /** When phi reaches `phi` if no heartbeat comes first (undefined before the first). */
  timeAtPhi(phi: number): number | undefined {
    if (this.#last === undefined) return undefined;
    return this.#last + this.#mean + this.#std * yAtPhi(phi);
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
    return this.#sum / this.#count;
  }

  get stdDevMs(): number {
    const mean = this.#sum / this.#count;
    return Math.sqrt(Math.max(0, this.#sumSq / this.#count - mean * mean));
  }

  phi(now: number): number {
    if (this.#last === undefined) return 0;
    // logistic approximation of the normal CDF's tail (Akka); exact to ~1e-4
    return phiOfY((now - this.#last - this.#mean) / this.#std);
  }

  get #mean(): number {
    return this.meanMs + this.#opts.acceptablePauseMs;
  }

  get #std(): number {
    return Math.max(this.stdDevMs, this.#opts.minStdDevMs);
  }

  #push(ms: number): void {
    // the sums take the value as the ring keeps it, so what is added is exactly what is later taken away
    const interval = Math.fround(ms);
    const ring = this.#intervals;
    if (this.#count === ring.length) {
      const old = ring[this.#next] ?? 0;
      this.#sum -= old;
      this.#sumSq -= old * old;
    } else this.#count++;
    ring[this.#next] = interval;
    this.#next = (this.#next + 1) % ring.length;
    this.#sum += interval;
    this.#sumSq += interval * interval;
  }
}

const A = 1.5976;
const B = 0.070566;

/** phi as a function of y = (elapsed - mean) / std (the logistic tail above). */
function phiOfY(y: number): number {
  const e = Math.exp(-y * (A + B * y * y));
  const p = y > 0 ? e / (1 + e) : 1 / (1 + 1 / e);
  return p <= 0 ? Number.POSITIVE_INFINITY : -Math.log10(p);
}

const yCache = new Map<number, number>();

/** The y at which phi reaches `phi` (phi grows with y): found once per threshold by bisection. */
function yAtPhi(phi: number): number {
  let y = yCache.get(phi);
  if (y !== undefined) return y;
  let lo = -10;
  let hi = 40;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (phiOfY(mid) < phi) lo = mid;
    else hi = mid;
  }
  y = hi;
  yCache.set(phi, y);
  return y;
}
