import type { Maybe } from '../storage/backend.js';

/**
 * Operations under one key run one after the other: the next starts when the one before it
 * settled (fulfilled or rejected). An operation that completes synchronously while nothing
 * waits runs at once and leaves nothing behind (the memory backend's changes).
 */
export class KeyedQueue {
  readonly #busy = new Map<string, Promise<void>>();

  run<T>(key: string, op: () => Maybe<T>): Maybe<T> {
    const prev = this.#busy.get(key);
    const result = prev ? prev.then(op) : op();
    if (result instanceof Promise) {
      const settled = result.then(
        () => undefined,
        () => undefined,
      );
      this.#busy.set(key, settled);
      void settled.then(() => {
        if (this.#busy.get(key) === settled) this.#busy.delete(key);
      });
    }
    return result;
  }
}
