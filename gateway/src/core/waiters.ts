import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';

/**
 * Conditions waited on until acks move: a backpressured publish, a draining close. Every
 * ack and every tick calls `notify()`, which re-checks them.
 */
export class AckWaiters {
  readonly #clock: Clock;
  readonly #checks = new Set<() => void>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  notify(): void {
    if (this.#checks.size > 0) for (const check of [...this.#checks]) check();
  }

  /**
   * Resolve once `cond` holds. After `timeoutMs` (none: wait forever) `onTimeout` decides:
   * an error rejects, undefined resolves.
   */
  until(cond: () => boolean, timeoutMs: number | undefined, onTimeout: () => MirrorstreamError | undefined): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        this.#checks.delete(check);
        this.#clock.clearTimeout(timer);
        resolve();
      };
      const timer =
        timeoutMs === undefined
          ? undefined
          : this.#clock.setTimeout(() => {
              this.#checks.delete(check);
              const error = onTimeout();
              if (error) reject(error);
              else resolve();
            }, timeoutMs);
      this.#checks.add(check);
    });
  }
}

export function backpressureTimeout(timeoutMs: number): MirrorstreamError {
  return new MirrorstreamError('MS_BACKPRESSURE', `stream is backpressured for more than ${timeoutMs} ms`, { retryable: true });
}
