import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';

/**
 * The gateway's one scheduler of timed work: every connection's heartbeats and probes, every
 * endpoint's liveness deadline and silence deadline, and streams' timed re-evaluations are
 * entries in one binary min-heap by due time, behind one clock timer armed for the earliest.
 * Everything due at once runs in one turn; rescheduling an entry (a heartbeat answered
 * moves its endpoint's liveness deadline) is O(log n) and allocates nothing, where a timer
 * per object would be re-created each time.
 */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #heap: Timer[] = [];
  #armed: TimerHandle | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #running = false;
  #closed = false;
  readonly #onError: (error: unknown) => void;

  /** `onError` hears what an entry threw; the entries due with it still run. Without it, the error is thrown on. */
  constructor(clock: Clock, onError?: (error: unknown) => void) {
    this.#clock = clock;
    this.#onError =
      onError ??
      ((error) => {
        throw error;
      });
  }

  get clock(): Clock {
    return this.#clock;
  }

  /** Entries waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** A new entry that runs `fn` each time it comes due (schedule it with `at` or `after`). */
  timer(fn: (now: number) => void): Timer {
    return new Timer(this, fn);
  }

  /** Drop every entry and take no more (the gateway closes: what its shutdown still schedules never runs). */
  close(): void {
    this.#closed = true;
    for (const t of this.#heap) t.index = -1;
    this.#heap.length = 0;
    this.#clock.clearTimeout(this.#armed);
    this.#armed = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
  }

  /** @internal Timer.at */
  place(t: Timer): void {
    if (this.#closed) return;
    if (t.index < 0) {
      t.index = this.#heap.length;
      this.#heap.push(t);
      this.#up(t.index);
    } else {
      this.#up(t.index);
      this.#down(t.index);
    }
    this.#arm();
  }

  /** @internal Timer.cancel */
  remove(t: Timer): void {
    const i = t.index;
    if (i < 0) return;
    t.index = -1;
    const last = this.#heap.pop();
    if (last && last !== t) {
      this.#heap[i] = last;
      last.index = i;
      this.#up(i);
      this.#down(i);
    }
  }

  #arm(): void {
    const first = this.#heap[0];
    if (!first || this.#running || first.dueAt >= this.#armedAt) return;
    this.#clock.clearTimeout(this.#armed);
    this.#armedAt = first.dueAt;
    this.#armed = this.#clock.setTimeout(() => this.#fire(), Math.max(0, first.dueAt - this.#clock.now()));
  }

  #fire(): void {
    this.#armed = undefined;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const now = this.#clock.now();
    this.#running = true;
    try {
      // what a run schedules for now or earlier runs in this turn too
      for (let first = this.#heap[0]; first && first.dueAt <= now; first = this.#heap[0]) {
        this.remove(first);
        try {
          first.fn(now);
        } catch (error) {
          this.#onError(error);
        }
      }
    } finally {
      this.#running = false;
      this.#arm();
    }
  }

  #up(i: number): void {
    const heap = this.#heap;
    const t = heap[i];
    if (!t) return;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p];
      if (!parent || parent.dueAt <= t.dueAt) break;
      heap[i] = parent;
      parent.index = i;
      i = p;
    }
    heap[i] = t;
    t.index = i;
  }

  #down(i: number): void {
    const heap = this.#heap;
    const t = heap[i];
    if (!t) return;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const left = heap[l];
      const right = heap[l + 1];
      const c = right && left && right.dueAt < left.dueAt ? l + 1 : l;
      const child = heap[c];
      if (!child || child.dueAt >= t.dueAt) break;
      heap[i] = child;
      child.index = i;
      i = c;
    }
    heap[i] = t;
    t.index = i;
  }
}

/** One entry of the queue: due at most once at a time; scheduling it again moves it. */
export class Timer {
  readonly #queue: TimerQueue;
  /** @internal */
  readonly fn: (now: number) => void;
  /** @internal position in the heap, -1 when not scheduled */
  index = -1;
  dueAt = 0;

  constructor(queue: TimerQueue, fn: (now: number) => void) {
    this.#queue = queue;
    this.fn = fn;
  }

  get pending(): boolean {
    return this.index >= 0;
  }

  /** Run at `time` (clock ms), replacing any earlier schedule. */
  at(time: number): void {
    this.dueAt = time;
    this.#queue.place(this);
  }

  /** Run `ms` from now. */
  after(ms: number): void {
    this.at(this.#queue.clock.now() + ms);
  }

  cancel(): void {
    this.#queue.remove(this);
  }
}
