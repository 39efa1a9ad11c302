import type { Clock, TimerHandle } from '@mirrorstream/receiver/protocol';

/** How a hedged open runs (part of a follower's timing). */
export interface HedgeTiming {
  /** A run not answered after this long is joined by another one. */
  hedgeMs: number;
  /** Runs in flight at once. */
  maxOpensInFlight: number;
  /** A run not answered within this long counts as failed (a late success is closed). */
  openTimeoutMs: number;
}

/**
 * Runs `open` and, while no run has succeeded, another one every `hedgeMs` as long as fewer than
 * `maxOpensInFlight` are in flight and it is not `givenUp()`. A run not answered within
 * `openTimeoutMs` counts as failed (its server may be dead: an open is several requests, each
 * with its own timeout, and one stuck run must not hold a place for all of them). The first
 * success is the answer; one that comes after it, or after its run timed out, is closed at once
 * (every run subscribes after the same position, and the follower skips what it has). Each
 * failed run is told to `onFailure`. Fails with the last error once every run made has failed
 * and none is in flight: an engine that refuses outright is retried with the follower's back-off.
 */
export function hedgedOpen<S extends { close(): void }>(
  open: () => Promise<S>,
  clock: Clock,
  timing: HedgeTiming,
  on: { givenUp?: () => boolean; onFailure?: (error: unknown) => void } = {},
): Promise<S> {
  return new Promise<S>((resolve, reject) => {
    let done = false;
    const running = new Set<TimerHandle>();
    // set below, before any run can answer (answers come after this turn)
    let tick: TimerHandle | undefined = undefined;
    const finish = (): void => {
      done = true;
      clock.clearInterval(tick);
      for (const t of running) clock.clearTimeout(t);
      running.clear();
    };
    const failed = (error: unknown): void => {
      if (done) return;
      on.onFailure?.(error);
      if (running.size > 0) return;
      finish();
      reject(error);
    };
    const launch = (): void => {
      let over = false;
      const timer: TimerHandle = clock.setTimeout(() => {
        over = true;
        running.delete(timer);
        failed(new Error(`the engine did not answer the open within ${timing.openTimeoutMs} ms`));
      }, timing.openTimeoutMs);
      running.add(timer);
      open().then(
        (sub) => {
          if (over || done) {
            sub.close();
            return;
          }
          finish();
          resolve(sub);
        },
        (error: unknown) => {
          if (over) return;
          over = true;
          clock.clearTimeout(timer);
          running.delete(timer);
          failed(error);
        },
      );
    };
    tick = clock.setInterval(() => {
      if (done) return;
      if (on.givenUp?.()) {
        // the runs in flight still answer or time out (a success is closed by its caller); start no more
        clock.clearInterval(tick);
        return;
      }
      if (running.size < timing.maxOpensInFlight) launch();
    }, timing.hedgeMs);
    launch();
  });
}
