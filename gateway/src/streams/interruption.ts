import type { StreamLog } from './stream-log.js';
import type { SwitchRecord } from './types.js';

interface Open {
  fromSeq: number;
  /** The old endpoint's last ack (undefined: never acked). */
  since: number | undefined;
  at: number;
  /** The switch record to fill (a hedge has none until it is committed). */
  record: SwitchRecord | undefined;
  /** Measured before the record existed (a hedge's first ack). */
  measuredMs: number | undefined;
}

/**
 * Measures each switch's delivery interruption: from the old endpoint's last ack (or the
 * ingestion of the first chunk the new one is sent, if that came later) to the new
 * endpoint's first ack of it. Fills `interruption_ms` on the stored switch record. For a
 * hedge that is later committed, the interruption is the hedge's: it began delivering then.
 */
export class InterruptionMeter {
  /** Made at the first switch or hedge. */
  #open: Map<string, Open> | undefined;

  /** A switch to `record.to`; `oldLastAckAt`: when the endpoint it replaces last acked. */
  switched(record: SwitchRecord, oldLastAckAt: number | undefined): void {
    if (record.to === null || record.from === null) return;
    const open = (this.#open ??= new Map());
    const hedge = open.get(record.to);
    if (hedge && hedge.record === undefined) {
      if (hedge.measuredMs !== undefined) {
        record.interruption_ms = hedge.measuredMs;
        open.delete(record.to);
      } else hedge.record = record;
      return;
    }
    open.set(record.to, { fromSeq: record.from_seq, since: oldLastAckAt, at: record.at, record, measuredMs: undefined });
  }

  /** `by` began receiving from `fromSeq` beside the active endpoint, which last acked at `activeLastAckAt`. */
  hedged(by: string, fromSeq: number, activeLastAckAt: number | undefined, at: number): void {
    (this.#open ??= new Map()).set(by, { fromSeq, since: activeLastAckAt, at, record: undefined, measuredMs: undefined });
  }

  /** `endpointId` acked up to `seq` at `now` (on every ack: a map lookup unless a switch waits for it). */
  acked(endpointId: string, seq: number, now: number, log: Pick<StreamLog, 'get'>): void {
    const open = this.#open?.get(endpointId);
    if (!open || seq < open.fromSeq || open.measuredMs !== undefined) return;
    const start = Math.max(open.since ?? open.at, log.get(open.fromSeq)?.timestamp ?? -Infinity);
    const ms = Math.max(0, Math.round(now - start));
    if (open.record) {
      open.record.interruption_ms = ms;
      this.#open?.delete(endpointId);
    } else open.measuredMs = ms;
  }

  /** The endpoint lost its role or left before acking: nothing to measure. */
  forget(endpointId: string): void {
    this.#open?.delete(endpointId);
  }
}
