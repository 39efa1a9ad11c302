import type { Cursor } from './cursor.js';
import { DepartedCursors } from './departed.js';

/**
 * A stream's endpoints in priority order, one cursor each, and the last acked seq of the
 * endpoints that left it (DepartedCursors): one added back resumes there.
 */
export class CursorTable {
  #order: string[];
  readonly #cursors = new Map<string, Cursor>();
  readonly #departed = new DepartedCursors();
  readonly #make: (endpointId: string) => Cursor;

  constructor(list: readonly string[], make: (endpointId: string) => Cursor) {
    this.#make = make;
    this.#order = [...list];
    for (const id of this.#order) this.#cursors.set(id, make(id));
  }

  /** Endpoint ids, highest priority first. */
  get order(): readonly string[] {
    return this.#order;
  }

  get cursors(): ReadonlyMap<string, Cursor> {
    return this.#cursors;
  }

  get(endpointId: string): Cursor | undefined {
    return this.#cursors.get(endpointId);
  }

  has(endpointId: string): boolean {
    return this.#cursors.has(endpointId);
  }

  values(): IterableIterator<Cursor> {
    return this.#cursors.values();
  }

  /** Add an endpoint at `position` (the end when absent or beyond); returns where it left off when it was here before. */
  add(endpointId: string, position: number | undefined): number | undefined {
    const at = position === undefined ? this.#order.length : Math.min(position, this.#order.length);
    this.#order.splice(at, 0, endpointId);
    this.#cursors.set(endpointId, this.#make(endpointId));
    return this.#departed.take(endpointId);
  }

  /** Take an endpoint off the list; its last ack is kept for when it comes back. */
  remove(endpointId: string): void {
    const c = this.#cursors.get(endpointId);
    if (!c) return;
    this.#order = this.#order.filter((id) => id !== endpointId);
    this.#cursors.delete(endpointId);
    this.#departed.remember(endpointId, c.lastAcked);
  }

  /** A new priority order of the same endpoints. */
  reorder(list: readonly string[]): void {
    this.#order = [...list];
  }

  /**
   * Up to `seq` was delivered to the endpoint (a restore, or another instance moved its
   * cursor): its cursor moves there. Returns the cursor when it moved; one not on the list is
   * kept for when it is added back.
   */
  restore(endpointId: string, seq: number): Cursor | undefined {
    const c = this.#cursors.get(endpointId);
    if (!c) {
      this.#departed.remember(endpointId, seq);
      return undefined;
    }
    if (seq <= c.lastAcked) return undefined;
    c.lastAcked = seq;
    c.sentUpTo = Math.max(c.sentUpTo, seq);
    c.everActive = true;
    return c;
  }
}
