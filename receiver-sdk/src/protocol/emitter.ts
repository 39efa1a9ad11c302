/**
 * A small typed event emitter for browser and Node. A listener that throws never breaks
 * the emitter or the other listeners: the error goes to the `onListenerError` hook.
 */
export type EventMap = { [event: string]: unknown[] };
type Listener<A extends unknown[]> = (...args: A) => void;
type AnyListener = (...args: unknown[]) => void;

export class TypedEmitter<E extends EventMap> {
  /**
   * Per event, its listeners as an array that is replaced, never changed in place, when one
   * is added or removed: `emit` walks the array it found without copying it (it runs for
   * every frame), and one emitter per connection stays small.
   */
  readonly #listeners = new Map<keyof E, readonly AnyListener[]>();
  /** Called with errors thrown by listeners; silent by default. */
  onListenerError: (error: unknown, event: keyof E) => void = () => {};

  on<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.#listeners.get(event) ?? [];
    if (!list.includes(listener as unknown as AnyListener)) this.#listeners.set(event, [...list, listener as unknown as AnyListener]);
    return this;
  }

  once<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const wrapped: Listener<E[K]> = (...args) => {
      this.off(event, wrapped);
      listener(...args);
    };
    return this.on(event, wrapped);
  }

  off<K extends keyof E>(event: K, listener: Listener<E[K]>): this {
    const list = this.#listeners.get(event);
    if (!list?.includes(listener as unknown as AnyListener)) return this;
    const rest = list.filter((l) => l !== (listener as unknown as AnyListener));
    if (rest.length > 0) this.#listeners.set(event, rest);
    else this.#listeners.delete(event);
    return this;
  }

  listenerCount<K extends keyof E>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  removeAllListeners(): void {
    this.#listeners.clear();
  }

  /** Emit to every listener; returns whether anyone listened. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.#listeners.get(event);
    if (!list) return false;
    for (const listener of list) {
      try {
        (listener as unknown as Listener<E[K]>)(...args);
      } catch (error) {
        try {
          this.onListenerError(error, event);
        } catch {
          // the error hook itself failed: nothing more to do without breaking emit
        }
      }
    }
    return true;
  }
}
