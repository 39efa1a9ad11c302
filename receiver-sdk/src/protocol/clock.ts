/**
 * Every timer and `now()` goes through a Clock so failover, heartbeat and rate logic can
 * be tested with a ManualClock: no sleeps, no flakes.
 */
export interface TimerHandle {
  readonly id: number;
}

export interface Clock {
  /** Milliseconds since the Unix epoch (fractional where the platform allows). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

type NativeTimer = ReturnType<typeof globalThis.setTimeout>;

/** The real clock: `performance` for sub-millisecond RTTs, native timers. */
export class RealClock implements Clock {
  #next = 1;
  readonly #timers = new Map<number, NativeTimer>();

  now(): number {
    return performance.timeOrigin + performance.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(
      id,
      globalThis.setTimeout(() => {
        this.#timers.delete(id);
        fn();
      }, ms),
    );
    return { id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const t = this.#timers.get(handle.id);
    if (t !== undefined) globalThis.clearTimeout(t);
    this.#timers.delete(handle.id);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, globalThis.setInterval(fn, ms));
    return { id };
  }

  clearInterval(handle: TimerHandle | undefined): void {
    if (!handle) return;
    const t = this.#timers.get(handle.id);
    if (t !== undefined) globalThis.clearInterval(t);
    this.#timers.delete(handle.id);
  }
}

interface ManualTimer {
  id: number;
  due: number;
  fn: () => void;
  everyMs: number | undefined;
}

/** A clock that only moves when told to; timers fire in due order during `advance`. */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, ManualTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.#add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle) this.#timers.delete(handle.id);
  }

  clearInterval(handle: TimerHandle | undefined): void {
    if (handle) this.#timers.delete(handle.id);
  }

  /** Number of pending timers (tests use it to check that everything was cleaned up). */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /** Move time forward by `ms`, firing due timers in order (timers may add timers). */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let first: ManualTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.due <= target && (!first || t.due < first.due || (t.due === first.due && t.id < first.id))) first = t;
      }
      if (!first) break;
      this.#now = Math.max(this.#now, first.due);
      if (first.everyMs === undefined) this.#timers.delete(first.id);
      else first.due += first.everyMs;
      first.fn();
    }
    this.#now = target;
  }

  #add(fn: () => void, ms: number, everyMs: number | undefined): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { id, due: this.#now + Math.max(0, ms), fn, everyMs });
    return { id };
  }
}

/** `p`, or a rejection with `timeoutError()` after `ms` of `clock` time (the timer is cleared either way). */
export function withTimeout<T>(clock: Clock, p: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: TimerHandle | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = clock.setTimeout(() => reject(timeoutError()), ms);
    }),
  ]).finally(() => clock.clearTimeout(timer));
}

/**
 * Resolve once `done()` is true, reject with what it returns when that is an Error, or with
 * `timeoutError()` after `ms`; `done` is looked at every `everyMs` of `clock` time for 100 ms,
 * then every 10 x `everyMs`. For state a native library exposes as getters: its callbacks may
 * cost more than a few looks.
 */
export function pollUntil(clock: Clock, done: () => boolean | Error, ms: number, timeoutError: () => Error, everyMs = 2): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = clock.now();
    const deadline = start + ms;
    const look = (): void => {
      let result: boolean | Error;
      try {
        result = done();
      } catch (error) {
        result = error instanceof Error ? error : new Error(String(error));
      }
      if (result instanceof Error) reject(result);
      else if (result) resolve();
      else if (clock.now() >= deadline) reject(timeoutError());
      // most dials finish within the first 100 ms; one that does not (a peer that never
      // answers) is looked at 10x less often for the rest of its timeout
      else clock.setTimeout(look, clock.now() - start < 100 ? everyMs : 10 * everyMs);
    };
    look();
  });
}
