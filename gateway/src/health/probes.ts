/**
 * Path probes: small HEARTBEATs the gateway sends on the unreliable data channel (no
 * retransmission), echoed by the receiver on the same channel. A probe that does not
 * come back is a lost packet, so loss is measured on every transport the same way
 * (werift's retransmission counter exists, node-datachannel has none); their echoes
 * also give RTT samples at a finer grain than the liveness heartbeats.
 *
 * The window is the last PROBE_SLOTS probes sent within `windowMs`, in fixed typed arrays
 * (2 KiB per endpoint, nothing allocated per probe): a probe's slot is its nonce modulo
 * the (odd) slot count, so consecutive nonces of any stride fill every slot in turn.
 */
export const PROBE_SLOTS = 127;

const PENDING = -1;
const LOST = -2;
/** Shared by every window: the median is selected in it, one window at a time. */
const scratch = new Float64Array(PROBE_SLOTS);

export class ProbeWindow {
  readonly #windowMs: number;
  readonly #nonces = new Float64Array(PROBE_SLOTS).fill(-1);
  readonly #sentAt = new Float64Array(PROBE_SLOTS);
  /** RTT in ms, PENDING (no echo yet) or LOST. */
  readonly #rtt = new Float32Array(PROBE_SLOTS);
  /** Samples count back to this (probes sent earlier are out of the window). */
  #cutoff = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  sent(nonce: number, at: number): void {
    const i = nonce % PROBE_SLOTS;
    this.#nonces[i] = nonce;
    this.#sentAt[i] = at;
    this.#rtt[i] = PENDING;
  }

  /** An echo arrived; returns its RTT, or undefined if the nonce is not a pending probe. */
  echoed(nonce: number, at: number): number | undefined {
    const i = nonce % PROBE_SLOTS;
    if (this.#nonces[i] !== nonce || this.#rtt[i] !== PENDING) return undefined;
    const rtt = Math.max(0, at - (this.#sentAt[i] ?? at));
    this.#rtt[i] = rtt;
    return rtt;
  }

  /**
   * Probes unanswered for longer than `lossAfterMs` count as lost (a late echo is
   * ignored); samples older than the window (`windowMs` unless a longer one is given, for
   * a path probed slowly) stop counting.
   */
  settle(now: number, lossAfterMs: number, windowMs = this.#windowMs): void {
    for (let i = 0; i < PROBE_SLOTS; i++) {
      if (this.#rtt[i] === PENDING && this.#nonces[i] !== -1 && now - (this.#sentAt[i] ?? now) > lossAfterMs) this.#rtt[i] = LOST;
    }
    this.#cutoff = now - Math.max(windowMs, this.#windowMs) - lossAfterMs;
  }

  /** Lost / settled probes in the window; undefined with fewer than `minSamples`. */
  lossRatio(minSamples = 10): number | undefined {
    let lost = 0;
    let settled = 0;
    for (let i = 0; i < PROBE_SLOTS; i++) {
      const rtt = this.#rtt[i] ?? PENDING;
      if (rtt === PENDING || this.#nonces[i] === -1 || (this.#sentAt[i] ?? 0) < this.#cutoff) continue;
      settled++;
      if (rtt === LOST) lost++;
    }
    return settled < minSamples ? undefined : lost / settled;
  }

  /** Median RTT of echoed probes in the window (selected, not sorted). */
  medianRttMs(): number | undefined {
    let n = 0;
    for (let i = 0; i < PROBE_SLOTS; i++) {
      const rtt = this.#rtt[i] ?? PENDING;
      if (rtt >= 0 && this.#nonces[i] !== -1 && (this.#sentAt[i] ?? 0) >= this.#cutoff) scratch[n++] = rtt;
    }
    return n === 0 ? undefined : select(scratch, n, Math.floor(n / 2));
  }

  clear(): void {
    this.#nonces.fill(-1);
    this.#cutoff = Number.NEGATIVE_INFINITY;
  }
}

/** The k-th smallest of a[0..n) (Hoare's quickselect; reorders a). */
function select(a: Float64Array, n: number, k: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1] ?? 0;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((a[i] ?? 0) < pivot) i++;
      while ((a[j] ?? 0) > pivot) j--;
      if (i <= j) {
        const t = a[i] ?? 0;
        a[i] = a[j] ?? 0;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return a[k] ?? 0;
}
