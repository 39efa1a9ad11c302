import type { Cursor } from './cursor.js';
import type { InterruptionMeter } from './interruption.js';
import type { Hedge, HedgeEvent, RoleChange, SwitchReason } from './types.js';

/** What the hedges of a stream need from it. */
export interface HedgeHost {
  readonly streamId: string;
  hedged(e: HedgeEvent): void;
  roleChanged(e: RoleChange): void;
  readonly interruptions: InterruptionMeter;
  cursor(id: string): Cursor | undefined;
  isActive(id: string): boolean;
  /** Where an endpoint entering the stream starts. */
  startSeq(c: Cursor): number;
  /** Send the stream to the standby from `fromSeq` (ROLE active first), without making it active. */
  start(c: Cursor, fromSeq: number): void;
  /** Stop sending to it (ROLE standby). */
  standDown(c: Cursor): void;
}

const NO_HEDGES: ReadonlyMap<string, Hedge & { since: number }> = new Map();

/**
 * The standbys of one stream that receive beside a suspect active endpoint (by standby),
 * applied from the decisions the failover policy makes: started, ended, or committed when
 * the standby is promoted (it keeps its position: nothing is sent twice).
 */
export class HedgeSet {
  readonly #host: HedgeHost;
  /** Made at the first hedge: most streams never hedge. */
  #running: Map<string, Hedge & { since: number }> | undefined;
  readonly counts = { started: 0, ended: 0, committed: 0 };

  constructor(host: HedgeHost) {
    this.#host = host;
  }

  get running(): ReadonlyMap<string, Hedge & { since: number }> {
    return this.#running ?? NO_HEDGES;
  }

  get size(): number {
    return this.#running?.size ?? 0;
  }

  /** Start the hedges a decision names and end the others. */
  apply(hedges: readonly Hedge[], now: number): void {
    const h = this.#host;
    const wanted = new Map(hedges.map((x) => [x.by, x]));
    const running = (this.#running ??= new Map());
    for (const [by, hedge] of running) {
      if (wanted.get(by)?.for === hedge.for) continue;
      running.delete(by);
      this.counts.ended++;
      h.interruptions.forget(by);
      const c = h.cursor(by);
      if (c && !h.isActive(by)) h.standDown(c);
      h.hedged({ streamId: h.streamId, for: hedge.for, by, fromSeq: hedge.fromSeq, kind: 'ended', at: now });
    }
    for (const x of wanted.values()) {
      const c = h.cursor(x.by);
      if (!c || running.has(x.by) || h.isActive(x.by)) continue;
      const fromSeq = Math.max(x.fromSeq, h.startSeq(c));
      running.set(x.by, { for: x.for, by: x.by, fromSeq, since: now });
      this.counts.started++;
      h.interruptions.hedged(x.by, fromSeq, h.cursor(x.for)?.lastAckAt, now);
      h.start(c, fromSeq);
      h.hedged({ streamId: h.streamId, for: x.for, by: x.by, fromSeq, kind: 'started', at: now });
    }
  }

  /**
   * The hedging standby is promoted: it goes on where it is (no replay, no new ROLE). Returns
   * false when it was not hedging (the caller activates it the usual way).
   */
  commit(c: Cursor, reason: SwitchReason, now: number): boolean {
    const hedge = this.#running?.get(c.endpointId);
    if (!hedge) return false;
    const h = this.#host;
    this.#running?.delete(c.endpointId);
    this.counts.committed++;
    h.roleChanged({ streamId: h.streamId, endpointId: c.endpointId, role: 'active', fromSeq: hedge.fromSeq, reason, at: now });
    h.hedged({ streamId: h.streamId, for: hedge.for, by: hedge.by, fromSeq: hedge.fromSeq, kind: 'committed', at: now });
    return true;
  }
}
