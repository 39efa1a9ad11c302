import type { Clock, TimerHandle } from './protocol/clock.js';

/**
 * The shortest silence limit a gateway's cadence can set: 30 probes at the carrier rate (10 ms),
 * 3 × the 50-100 ms event-loop delays a busy 2-core VM shows on either side.
 */
export const SILENCE_FLOOR_MS = 300;
/** Cadences the gateway may miss before it counts as silent (lost probes, scheduling jitter). */
export const SILENCE_CADENCES = 4;

/**
 * How long a gateway may say nothing: 4 × the cadence it promised in its last control HEARTBEAT,
 * within [SILENCE_FLOOR_MS, 4 × WELCOME's longest heartbeat interval (at least 1 s)]; that
 * ceiling alone before a cadence came (an older gateway never sends one).
 */
export function silenceLimitMs(cadenceMs: number | undefined, welcomeIntervalMs: number): number {
  const ceiling = Math.max(1_000, SILENCE_CADENCES * welcomeIntervalMs);
  if (cadenceMs === undefined) return ceiling;
  return Math.min(ceiling, Math.max(SILENCE_FLOOR_MS, SILENCE_CADENCES * cadenceMs));
}

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

  /** A new limit for the silence under way (a shorter one must not wait out the longer timer). */
  setLimit(limitMs: number): void {
    if (limitMs === this.#limitMs) return;
    this.#limitMs = limitMs;
    if (this.#timer) this.#after(Math.max(0, this.#lastHeardAt + limitMs - this.#clock.now()));
  }

  heard(): void {
    this.#lastHeardAt = this.#clock.now();
  }

  stop(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #after(ms: number, settling = false): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      const quietMs = this.#clock.now() - this.#lastHeardAt;
      if (quietMs < this.#limitMs) this.#after(this.#limitMs - quietMs);
      // a timer runs before input that is already here is read (a stalled event loop sees
      // its timers first): judge once more after that input, so our own stall is not theirs
      else if (!settling) this.#after(0, true);
      else this.#onSilent(this.#limitMs);
    }, ms);
  }
}
