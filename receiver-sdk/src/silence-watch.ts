import type { Clock, TimerHandle } from './protocol/clock.js';

/**
 * A gateway that says nothing for `limitMs` is gone. One timer per silence period, not one
 * per frame: a frame only notes when it came (`heard`), and the timer, when it fires, waits
 * out the rest if something came meanwhile.
 */
export class SilenceWatch {
  readonly #clock: Clock;
  readonly #onSilent: (limitMs: number) => void;
  #timer: TimerHandle | undefined;
  #lastHeardAt = 0;
  #limitMs = 1_000;

  constructor(clock: Clock, onSilent: (limitMs: number) => void) {
    this.#clock = clock;
    this.#onSilent = onSilent;
  }

  /** (Re)start the watch from now, with a new limit if given. */
  start(limitMs = this.#limitMs): void {
    this.#limitMs = limitMs;
    this.#lastHeardAt = this.#clock.now();
    this.#after(limitMs);
  }

  heard(): void {
    this.#lastHeardAt = this.#clock.now();
  }

  stop(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #after(ms: number): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const quietMs = this.#clock.now() - this.#lastHeardAt;
      if (quietMs < this.#limitMs) this.#after(this.#limitMs - quietMs);
      else this.#onSilent(this.#limitMs);
    }, ms);
  }
}
