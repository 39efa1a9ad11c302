/**
 * Token-bucket pacing of one endpoint's sends. The rate follows what the path has shown
 * it can deliver (acked bytes/s) and what the stream produces, times a gain, so a new
 * path (after a switch, or a mirror joiner replaying retention) ramps up instead of
 * taking the whole backlog at once, while a healthy path is never held below its
 * input rate.
 */
export interface PacerOptions {
  minBytesPerSec: number;
  gain: number;
  /** Bucket depth in ms of the current rate (small bursts are fine). */
  burstMs: number;
}

export class Pacer {
  readonly #o: PacerOptions;
  #tokens: number;
  #last: number;
  #rate: number;

  constructor(options: PacerOptions, now: number) {
    this.#o = options;
    this.#rate = options.minBytesPerSec;
    this.#tokens = this.#burst();
    this.#last = now;
  }

  get rateBytesPerSec(): number {
    return this.#rate;
  }

  /** Re-aim the rate from fresh estimates (bytes/s). */
  retune(deliveredBytesPerSec: number, inputBytesPerSec: number): void {
    this.#rate = Math.max(this.#o.minBytesPerSec, this.#o.gain * Math.max(deliveredBytesPerSec, inputBytesPerSec));
  }

  /** Take `bytes` if the bucket allows; otherwise return how many ms until it will. */
  take(bytes: number, now: number): number {
    this.#refill(now);
    if (this.#tokens >= bytes || this.#tokens >= this.#burst()) {
      this.#tokens -= bytes;
      return 0;
    }
    return Math.max(1, Math.ceil(((bytes - this.#tokens) * 1000) / this.#rate));
  }

  #burst(): number {
    return Math.max(64 * 1024, (this.#rate * this.#o.burstMs) / 1000);
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#last);
    this.#last = now;
    this.#tokens = Math.min(this.#burst(), this.#tokens + (this.#rate * elapsed) / 1000);
  }
}
