/**
 * Path probes: small HEARTBEATs the gateway sends on the unreliable data channel (no
 * retransmission), echoed by the receiver on the same channel. A probe that does not
 * come back is a lost packet, so loss is measured on every transport the same way
 * (werift's retransmission counter exists, node-datachannel has none); their echoes
 * also give RTT samples at a finer grain than the liveness heartbeats.
 */
export class ProbeWindow {
  readonly #windowMs: number;
  /** nonce -> sent time, for probes not yet echoed. */
  readonly #pending = new Map<number, number>();
  /** [sentAt, rttMs | undefined (lost)] in send order. */
  #samples: [number, number | undefined][] = [];

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  sent(nonce: number, at: number): void {
    this.#pending.set(nonce, at);
  }

  /** An echo arrived; returns its RTT, or undefined if the nonce is not a pending probe. */
  echoed(nonce: number, at: number): number | undefined {
    const sentAt = this.#pending.get(nonce);
    if (sentAt === undefined) return undefined;
    this.#pending.delete(nonce);
    const rtt = Math.max(0, at - sentAt);
    this.#samples.push([sentAt, rtt]);
    return rtt;
  }

  /**
   * Probes unanswered for longer than `lossAfterMs` count as lost (a late echo is
   * ignored). Then drop samples older than the window.
   */
  settle(now: number, lossAfterMs: number): void {
    for (const [nonce, sentAt] of this.#pending) {
      if (now - sentAt > lossAfterMs) {
        this.#pending.delete(nonce);
        this.#samples.push([sentAt, undefined]);
      }
    }
    if (this.#samples.length > 1) this.#samples.sort((a, b) => a[0] - b[0]);
    const cutoff = now - this.#windowMs - lossAfterMs;
    let drop = 0;
    while (drop < this.#samples.length && (this.#samples[drop]?.[0] ?? 0) < cutoff) drop++;
    if (drop > 0) this.#samples = this.#samples.slice(drop);
  }

  /** Lost / settled probes in the window; undefined with fewer than `minSamples`. */
  lossRatio(minSamples = 10): number | undefined {
    if (this.#samples.length < minSamples) return undefined;
    let lost = 0;
    for (const [, rtt] of this.#samples) if (rtt === undefined) lost++;
    return lost / this.#samples.length;
  }

  /** Median RTT of echoed probes in the window. */
  medianRttMs(): number | undefined {
    const rtts = this.#samples.flatMap(([, r]) => (r === undefined ? [] : [r])).sort((a, b) => a - b);
    if (rtts.length === 0) return undefined;
    return rtts[Math.floor(rtts.length / 2)];
  }

  clear(): void {
    this.#pending.clear();
    this.#samples = [];
  }
}
