/**
 * Bytes over a sliding time window, for rates: stream input, per-endpoint delivery.
 * Samples are bucketed (10 per window) so memory stays constant at any message rate.
 */
export class RateWindow {
  readonly #windowMs: number;
  readonly #bucketMs: number;
  readonly #buckets: { start: number; bytes: number }[] = [];
  #total = 0;

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
    this.#bucketMs = Math.max(1, windowMs / 10);
  }

  add(now: number, bytes: number): void {
    this.#expire(now);
    const start = Math.floor(now / this.#bucketMs) * this.#bucketMs;
    const last = this.#buckets[this.#buckets.length - 1];
    if (last && last.start === start) last.bytes += bytes;
    else this.#buckets.push({ start, bytes });
    this.#total += bytes;
  }

  /** Bytes per second over the window ending now. */
  rate(now: number): number {
    this.#expire(now);
    return (this.#total * 1000) / this.#windowMs;
  }

  #expire(now: number): void {
    while (this.#buckets.length > 0 && (this.#buckets[0]?.start ?? 0) + this.#bucketMs <= now - this.#windowMs) {
      this.#total -= this.#buckets.shift()?.bytes ?? 0;
    }
  }
}
