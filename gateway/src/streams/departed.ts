import { MAX_ENDPOINTS_PER_STREAM } from './spec.js';

/**
 * Last acked seq of endpoints that are off a stream's list (removed here, or by another
 * instance, or restored from the backend while not listed): one added back resumes there
 * instead of starting over. Bounded: the oldest goes first.
 */
export class DepartedCursors {
  /** Made at the first departure: most streams never have one. */
  #acked: Map<string, number> | undefined;

  /** Keep `seq` for the endpoint unless a later one is kept already. */
  remember(endpointId: string, seq: number): void {
    const acked = (this.#acked ??= new Map());
    if (seq <= (acked.get(endpointId) ?? 0)) return;
    acked.delete(endpointId);
    acked.set(endpointId, seq);
    if (acked.size > MAX_ENDPOINTS_PER_STREAM) acked.delete(acked.keys().next().value!);
  }

  /** The kept seq of an endpoint coming back (and forget it). */
  take(endpointId: string): number | undefined {
    const seq = this.#acked?.get(endpointId);
    this.#acked?.delete(endpointId);
    return seq;
  }
}
