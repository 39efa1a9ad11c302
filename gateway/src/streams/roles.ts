import { clearInFlight, type Cursor } from './cursor.js';
import type { CursorTable } from './cursor-table.js';
import { HedgeSet } from './hedges.js';
import { InterruptionMeter } from './interruption.js';
import type { Sender } from './sender.js';
import type { StreamLog } from './stream-log.js';
import type { RoleDecision, StreamEvents, StreamLink, StreamMode, SwitchReason, SwitchRecord } from './types.js';

/** What the role applier needs from its stream. */
export interface RolesHost {
  readonly streamId: string;
  readonly mode: StreamMode;
  readonly log: StreamLog;
  readonly table: CursorTable;
  readonly sender: Sender;
  /** Switch records kept. */
  readonly switchHistory: number;
  /** Highest cumulative ack of any endpoint. */
  frontier(): number;
  link(endpointId: string): StreamLink | undefined;
  pump(endpointId: string): void;
  emit<K extends keyof StreamEvents>(event: K, ...args: StreamEvents[K]): void;
}

/**
 * Who of a stream's endpoints receives it, and the carrying out of decisions: promoted
 * endpoints start sending before demoted ones stop (make-before-break), hedging standbys
 * start, end or are committed, every switch is recorded with its measured interruption.
 */
export class Roles {
  readonly #h: RolesHost;
  #active: string[] = [];
  #hadActive = false;
  #lastLoss: SwitchReason | undefined;
  readonly #switches: SwitchRecord[] = [];
  readonly interruptions = new InterruptionMeter();
  readonly hedges: HedgeSet;

  constructor(host: RolesHost, clock: () => number) {
    this.#h = host;
    this.hedges = new HedgeSet({
      streamId: host.streamId,
      hedged: (e) => host.emit('hedged', e),
      roleChanged: (e) => host.emit('roleChanged', e),
      interruptions: this.interruptions,
      cursor: (id) => host.table.get(id),
      isActive: (id) => this.#active.includes(id),
      startSeq: (c) => this.startSeq(c),
      start: (c, fromSeq) => this.activate(c, fromSeq, clock(), undefined),
      standDown: (c) => this.standDown(c),
    });
  }

  get active(): readonly string[] {
    return this.#active;
  }

  get switches(): readonly SwitchRecord[] {
    return this.#switches;
  }

  /** Inputs of the next decision: whether any endpoint was ever active, and why the last one lost its role. */
  get history(): { hadActive: boolean; lastLoss: SwitchReason | undefined } {
    return { hadActive: this.#hadActive, lastLoss: this.#lastLoss };
  }

  /** The endpoints the stream is sent to now: the active ones and the hedging standbys. */
  receiving(): readonly string[] {
    return this.hedges.size === 0 ? this.#active : [...this.#active, ...this.hedges.running.keys()];
  }

  /** The endpoint left the list: it is no longer active (its replacement is being decided). */
  drop(endpointId: string): void {
    this.#active = this.#active.filter((id) => id !== endpointId);
    this.#h.emit('activeChanged');
  }

  /** The list was reordered: the active set follows the new priority order. */
  sort(order: readonly string[]): void {
    this.#active.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  }

  /** Apply a decision to the cursors: promoted ones start sending, demoted ones stop. */
  apply(decision: RoleDecision, now: number): void {
    const { table } = this.#h;
    // make before break: bring the new endpoints up before the old ones are told to stop;
    // an endpoint removed since the decision was made has no cursor and is passed over
    for (const p of decision.promoted) {
      const c = table.get(p.id);
      if (!c) continue;
      if (!this.hedges.commit(c, p.reason, now)) this.activate(c, Math.max(p.fromSeq, this.startSeq(c)), now, p.reason);
      this.#record(p.record);
    }
    for (const d of decision.demoted) {
      const c = table.get(d.id);
      if (!c) continue;
      this.#deactivate(c, now, d.reason);
      if (d.record) {
        this.#lastLoss = d.reason;
        this.#record(d.record);
      }
    }
    this.#active = decision.active.filter((id) => table.has(id));
    this.#h.emit('activeChanged');
    this.hedges.apply(decision.hedges ?? [], now);
    this.#h.emit('assessing');
  }

  /** Where an endpoint entering the active set starts. */
  startSeq(c: Cursor): number {
    // failover: continue right after what the stream as a whole has delivered;
    // mirror: each endpoint has its own cursor; a newcomer gets everything retained.
    if (this.#h.mode === 'failover') return this.#h.frontier() + 1;
    return c.everActive || c.lastAcked > 0 ? c.lastAcked + 1 : this.#h.log.firstSeq;
  }

  activate(c: Cursor, fromSeq: number, now: number, reason: SwitchReason | undefined): void {
    const h = this.#h;
    const wasActive = c.role === 'active';
    c.role = 'active';
    c.everActive = true;
    c.nextSeq = fromSeq;
    c.sentUpTo = Math.max(c.sentUpTo, fromSeq - 1);
    clearInFlight(c);
    c.plan = undefined;
    if (!wasActive) {
      h.sender.restartPacing(c, now);
      c.activeSince = now;
      c.activeFromSeq = fromSeq;
    }
    this.#hadActive = true;
    const link = h.link(c.endpointId);
    if (link) {
      h.sender.role(link, 'active', fromSeq);
      if (fromSeq < h.log.firstSeq) h.sender.gap(c, link, h.log.firstSeq - 1, 'retention');
    }
    if (!wasActive && reason) h.emit('roleChanged', { streamId: h.streamId, endpointId: c.endpointId, role: 'active', fromSeq, reason, at: now });
    h.pump(c.endpointId);
  }

  standDown(c: Cursor): void {
    c.role = 'standby';
    c.activeSince = undefined;
    clearInFlight(c);
    this.#h.sender.role(this.#h.link(c.endpointId), 'standby', this.#h.frontier() + 1);
  }

  #deactivate(c: Cursor, now: number, reason: SwitchReason): void {
    if (c.role !== 'active') return;
    this.interruptions.forget(c.endpointId);
    this.standDown(c);
    this.#h.emit('roleChanged', { streamId: this.#h.streamId, endpointId: c.endpointId, role: 'standby', fromSeq: c.lastAcked + 1, reason, at: now });
  }

  #record(rec: SwitchRecord): void {
    this.interruptions.switched(rec, rec.from === null ? undefined : this.#h.table.get(rec.from)?.lastAckAt);
    this.#switches.push(rec);
    if (this.#switches.length > this.#h.switchHistory) this.#switches.shift();
    this.#h.emit('switched', { streamId: this.#h.streamId, ...rec });
  }
}
