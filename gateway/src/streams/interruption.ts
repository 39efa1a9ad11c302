import type { StreamLog } from './stream-log.js';
import type { SwitchRecord } from './types.js';

/**
 * Measures each switch's delivery interruption: from the old endpoint's last ack (or the
 * ingestion of the first chunk the new one is sent, if that came later) to the new
 * endpoint's first ack of it. Fills `interruption_ms` on the stored switch record.
 */
export class InterruptionMeter {
  readonly #open = new Map<string, { record: SwitchRecord; since: number | undefined }>();

  /** A switch to `record.to`; `oldLastAckAt`: when the endpoint it replaces last acked. */
  switched(record: SwitchRecord, oldLastAckAt: number | undefined): void {
    if (record.to === null || record.from === null) return;
    this.#open.set(record.to, { record, since: oldLastAckAt ?? record.at });
  }

  /** `endpointId` acked up to `seq` at `now` (on every ack: a map lookup unless a switch waits for it). */
  acked(endpointId: string, seq: number, now: number, log: Pick<StreamLog, 'get'>): void {
    const open = this.#open.get(endpointId);
    if (!open || seq < open.record.from_seq) return;
    this.#open.delete(endpointId);
    const start = Math.max(open.since ?? open.record.at, log.get(open.record.from_seq)?.timestamp ?? -Infinity);
    open.record.interruption_ms = Math.max(0, Math.round(now - start));
  }

  /** The endpoint lost its role or left before acking: nothing to measure. */
  forget(endpointId: string): void {
    this.#open.delete(endpointId);
  }
}
