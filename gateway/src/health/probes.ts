/**
 * Path probes: small HEARTBEATs the gateway sends on the unreliable data channel (no
 * retransmission), echoed by the receiver on the same channel. A probe that does not
 * come back is a lost packet, so loss is measured on every transport the same way
 * (werift's retransmission counter exists, node-datachannel has none); their echoes
 * also give RTT samples at a finer grain than the liveness heartbeats.
 *
 * The window is the last probes sent within `windowMs`, in typed arrays sized for the probe
 * rate (nothing allocated per probe; 127 slots, 2 KiB, at the fast rates, 13 slots at the
 * standby rate): a probe's slot is its nonce modulo the (odd) slot count, so consecutive
 * nonces of any stride fill every slot in turn.
 */
export const PROBE_SLOTS = 127;

const PENDING = -1;
const LOST = -2;
const NONE = 0xffffffff;
/** Shared by every window: the median is selected in it, one window at a time. */
const scratch = new Float64Array(PROBE_SLOTS);

/** Slots for probes every `intervalMs` over a window of `windowMs` (at least 10 probes), odd. */
export function probeSlotsFor(intervalMs: number, windowMs: number): number {
  const n = Math.min(PROBE_SLOTS, Math.ceil(Math.max(windowMs, 10 * intervalMs) / intervalMs) + 2);
  return n % 2 === 1 ? n : n + 1;
}

export class ProbeWindow {
  readonly #windowMs: number;
  #slots: number;
  /** Nonces are odd 32-bit numbers; NONE marks an empty slot. */
  #nonces: Uint32Array;
  #sentAt: Float64Array;
  /** RTT in ms, PENDING (no echo yet) or LOST. */
  #rtt: Float32Array;
  /** Samples count back to this (probes sent earlier are out of the window). */
  #cutoff = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number, slots = PROBE_SLOTS) {
    this.#windowMs = windowMs;
    this.#slots = slots;
    this.#nonces = new Uint32Array(slots).fill(NONE);
    this.#sentAt = new Float64Array(slots);
    this.#rtt = new Float32Array(slots);
  }

  get slots(): number {
    return this.#slots;
  }

  /** Resize for another probe rate, keeping what fits (the newest probe where two share a slot). */
  resize(slots: number): void {
    if (slots === this.#slots) return;
    const [nonces, sentAt, rtt] = [this.#nonces, this.#sentAt, this.#rtt];
    this.#slots = slots;
    this.#nonces = new Uint32Array(slots).fill(NONE);
    this.#sentAt = new Float64Array(slots);
    this.#rtt = new Float32Array(slots);
    for (let j = 0; j < nonces.length; j++) {
      const nonce = nonces[j] ?? NONE;
      if (nonce === NONE) continue;
      const i = nonce % slots;
      if (this.#nonces[i] !== NONE && (this.#sentAt[i] ?? 0) > (sentAt[j] ?? 0)) continue;
      this.#nonces[i] = nonce;
      this.#sentAt[i] = sentAt[j] ?? 0;
      this.#rtt[i] = rtt[j] ?? PENDING;
    }
  }

  sent(nonce: number, at: number): void {
    const i = nonce % this.#slots;
    this.#nonces[i] = nonce;
    this.#sentAt[i] = at;
    this.#rtt[i] = PENDING;
  }

  /** An echo arrived; returns its RTT, or undefined if the nonce is not a pending probe. */
  echoed(nonce: number, at: number): number | undefined {
    const i = nonce % this.#slots;
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
    for (let i = 0; i < this.#slots; i++) {
      if (this.#rtt[i] === PENDING && this.#nonces[i] !== NONE && now - (this.#sentAt[i] ?? now) > lossAfterMs) this.#rtt[i] = LOST;
    }
    this.#cutoff = now - Math.max(windowMs, this.#windowMs) - lossAfterMs;
  }

  /** Lost / settled probes in the window; undefined with fewer than `minSamples`. */
  lossRatio(minSamples = 10): number | undefined {
    let lost = 0;
    let settled = 0;
    for (let i = 0; i < this.#slots; i++) {
      const rtt = this.#rtt[i] ?? PENDING;
      if (rtt === PENDING || this.#nonces[i] === NONE || (this.#sentAt[i] ?? 0) < this.#cutoff) continue;
      settled++;
      if (rtt === LOST) lost++;
    }
    return settled < minSamples ? undefined : lost / settled;
  }

  /** Median RTT of echoed probes in the window (selected, not sorted). */
  medianRttMs(): number | undefined {
    let n = 0;
    for (let i = 0; i < this.#slots; i++) {
      const rtt = this.#rtt[i] ?? PENDING;
      if (rtt >= 0 && this.#nonces[i] !== NONE && (this.#sentAt[i] ?? 0) >= this.#cutoff) scratch[n++] = rtt;
    }
    return n === 0 ? undefined : select(scratch, n, Math.floor(n / 2));
  }

  clear(): void {
    this.#nonces.fill(NONE);
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
