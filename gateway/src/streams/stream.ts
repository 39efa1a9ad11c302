import { END_REASON_REMOVED } from '@mirrorstream/receiver/protocol';
import type { FailbackConfig, HealthConfig, RetentionConfig } from '../config.js';
import type { FailoverPolicy } from '../failover/policy.js';
import type { OverflowPolicy } from '../rate/overflow.js';
import type { PacerOptions } from '../rate/pacer.js';
import { RateWindow } from '../rate/rate-window.js';
import { applyAck, assessCursor, clearInFlight, newCursor, newCursorHealth, oldestUnackedAt, type Cursor } from './cursor.js';
import { decideRoles } from './decide.js';
import { DepartedCursors } from './departed.js';
import { InterruptionMeter } from './interruption.js';
import { Sender } from './sender.js';
import type { ChunkInput } from './spec.js';
import type { AppendChunk, AppendResult, StreamLog } from './stream-log.js';
import { HedgeSet } from './hedges.js';
import type { RoleDecision, StreamHooks, StreamMode, SwitchReason, SwitchRecord } from './types.js';

export interface StreamOptions {
  id: string;
  mode: StreamMode;
  reliability: 'reliable' | 'unreliable';
  mirrorK: number | undefined;
  endpointList: readonly string[];
  log: StreamLog;
  failback: FailbackConfig;
  sendHighWaterBytes: number;
  switchHistory: number;
  policy: FailoverPolicy;
  hooks: StreamHooks;
  health: HealthConfig;
  clock: () => number;
  overflow: OverflowPolicy;
  pacing: PacerOptions;
  reconnectGraceMs: number;
  startupGraceMs: number;
  hedge: boolean;
}

/** A resume position from HELLO: the last seq the receiver delivered, and the epoch it names. */
export interface ResumePosition {
  seq: number;
  epoch: string | undefined;
}

/**
 * One stream: its endpoints in priority order, one cursor per endpoint, and the active
 * set chosen by the failover policy, applied make-before-break. What goes on the wire is
 * the Sender's; where chunks live is the StreamLog's. It never touches a socket.
 */
export class Stream {
  readonly id: string;
  readonly mode: StreamMode;
  readonly reliability: 'reliable' | 'unreliable';
  readonly mirrorK: number | undefined;
  readonly createdAt: number;
  readonly log: StreamLog;
  readonly failback: FailbackConfig;
  readonly #opts: StreamOptions;
  readonly #sender: Sender;
  readonly #cursors = new Map<string, Cursor>();
  readonly #departed = new DepartedCursors();
  #order: string[];
  #active: string[] = [];
  /** Highest cumulative ack of any endpoint: in failover mode everything up to it is delivered. */
  #ackFrontier = 0;
  #hadActive = false;
  #lastLoss: SwitchReason | undefined;
  readonly #switches: SwitchRecord[] = [];
  readonly #interruptions = new InterruptionMeter();
  readonly #hedges: HedgeSet;
  #closed = false;
  /** A decision sent to the control and not applied yet (the owner decides once at a time). */
  #pending = false;
  readonly #input: RateWindow;

  constructor(opts: StreamOptions) {
    this.#opts = opts;
    this.id = opts.id;
    this.mode = opts.mode;
    this.reliability = opts.reliability;
    this.mirrorK = opts.mirrorK;
    this.failback = opts.failback;
    this.createdAt = opts.clock();
    this.log = opts.log;
    this.#input = new RateWindow(opts.health.windowMs);
    this.#sender = new Sender(
      {
        streamId: opts.id,
        reliability: opts.reliability,
        sendHighWaterBytes: opts.sendHighWaterBytes,
        pacing: opts.pacing,
        clock: opts.clock,
        wake: opts.hooks.wake,
        repump: (id) => this.pump(id),
        gap: opts.hooks.gap,
      },
      opts.log,
      opts.overflow,
    );
    this.#hedges = new HedgeSet({
      streamId: opts.id,
      hooks: opts.hooks,
      interruptions: this.#interruptions,
      cursor: (id) => this.#cursors.get(id),
      isActive: (id) => this.#active.includes(id),
      startSeq: (c) => this.#startSeq(c),
      start: (c, fromSeq) => this.#activate(c, fromSeq, opts.clock(), undefined),
      standDown: (c) => this.#standDown(c),
    });
    this.#order = [...opts.endpointList];
    for (const id of this.#order) this.#cursors.set(id, this.#newCursor(id));
    // chunks another gateway instance appended to a shared log go out like our own
    opts.log.onForeignAppend?.((entry) => {
      this.#input.add(opts.clock(), entry.payload.byteLength);
      for (const id of this.#receiving()) this.pump(id);
    });
  }

  /** The epoch of this stream's seq space (its log's). */
  get epoch(): string {
    return this.log.epoch;
  }

  get retention(): Readonly<RetentionConfig> {
    return this.log.limits;
  }

  get endpointList(): readonly string[] {
    return this.#order;
  }

  get active(): readonly string[] {
    return this.#active;
  }

  get ackFrontier(): number {
    return this.#ackFrontier;
  }

  get switches(): readonly SwitchRecord[] {
    return this.#switches;
  }

  /** The hedges running now (by standby), with when each began, and how many started, ended and were committed. */
  get hedges(): Pick<HedgeSet, 'running' | 'counts'> {
    return this.#hedges;
  }

  /** The endpoint is active on this stream (a hedging standby is not). */
  isActive(endpointId: string): boolean {
    return this.#active.includes(endpointId);
  }

  cursor(endpointId: string): Readonly<Cursor> | undefined {
    return this.#cursors.get(endpointId);
  }

  get slots(): number {
    return this.mode === 'failover' ? 1 : (this.mirrorK ?? Number.POSITIVE_INFINITY);
  }

  /** Append chunks to the log, then push them to the active endpoints (synchronously when the log stores synchronously). */
  append(chunks: readonly AppendChunk[], now: number): AppendResult | Promise<AppendResult> {
    const stored = this.log.appendBatch(chunks, now);
    return stored instanceof Promise ? stored.then((r) => this.#appended(chunks, now, r)) : this.#appended(chunks, now, stored);
  }

  #appended(chunks: readonly ChunkInput[], now: number, result: AppendResult): AppendResult {
    for (const c of chunks) this.#input.add(now, c.payload.byteLength);
    for (const id of this.#receiving()) this.pump(id);
    return result;
  }

  /** Send what the endpoint may receive until its link's buffer is full. */
  pump(endpointId: string): void {
    const c = this.#cursors.get(endpointId);
    if (!c || c.role !== 'active' || this.#closed) return;
    const link = this.#opts.hooks.endpoint(endpointId).link;
    if (!link) return;
    const before = c.nextSeq;
    this.#sender.pump(c, link);
    // something went out: measure the stream until it is acked (a drain with nothing to send is no news)
    if (c.nextSeq !== before) this.#opts.hooks.assessing?.();
  }

  /** Cumulative ack from an endpoint; acks beyond what was sent are clamped. */
  ack(endpointId: string, seq: number): void {
    const c = this.#cursors.get(endpointId);
    const now = this.#opts.clock();
    const acked = c ? applyAck(c, seq, now) : undefined;
    if (acked === undefined) return;
    this.#interruptions.acked(endpointId, acked, now, this.log);
    if (acked > this.#ackFrontier) this.#ackFrontier = acked;
    this.#opts.hooks.acked(endpointId, acked);
  }

  /**
   * A cursor as the durable backend kept it (a restore) or another instance moved it: up to
   * `seq` was delivered to that endpoint. One not on the list is kept for when it is added back.
   */
  restoreCursor(endpointId: string, seq: number): void {
    const c = this.#cursors.get(endpointId);
    if (!c) {
      this.#departed.remember(endpointId, seq);
      return;
    }
    if (seq <= c.lastAcked) return;
    c.lastAcked = seq;
    c.sentUpTo = Math.max(c.sentUpTo, seq);
    c.everActive = true;
    if (seq > this.#ackFrontier) this.#ackFrontier = seq;
  }

  /**
   * An endpoint (re)connected. A position in this stream's epoch counts as acked as far as it
   * was sent; one of another epoch gets RESET (never clamped). Then the endpoint learns its role.
   */
  endpointConnected(endpointId: string, position: ResumePosition | undefined, now: number): void {
    const c = this.#cursors.get(endpointId);
    if (!c) return;
    // a new connection is a new path: its stream-level health is measured afresh
    c.health = newCursorHealth(this.#opts.health, now);
    if (position !== undefined) {
      if (position.epoch === this.epoch) this.ack(endpointId, position.seq);
      else if (position.seq > 0 || position.epoch !== undefined) this.#sender.reset(this.#link(endpointId), position.epoch ?? null);
    }
    if (c.role === 'active') {
      // the active endpoint back within its grace goes on from its own position, even where a
      // hedge carried the stream meanwhile (and moved the frontier): it has no hole of its own
      const own = this.mode === 'failover' && this.#active.includes(endpointId) ? Math.max(c.lastAcked + 1, c.activeFromSeq) : undefined;
      this.#activate(c, own ?? this.#startSeq(c), now, undefined);
    }
    else this.#sender.role(this.#link(endpointId), 'standby', this.#ackFrontier + 1);
  }

  /**
   * Measure what only the stream sees (ack lag, delivery ratio, reported loss), re-aim
   * pacing; every tick while the stream is not `settled`, before decisions. Returns true
   * when an endpoint's verdict on this stream changed (the policy should run again).
   */
  assess(now: number): boolean {
    const input = this.#input.rate(now);
    let changed = false;
    for (const c of this.#cursors.values()) {
      const view = this.#opts.hooks.endpoint(c.endpointId);
      const active = c.role === 'active' && view.link !== undefined;
      if (active) this.#sender.tune(c, now, input);
      const receiverLoss = active && this.reliability === 'unreliable' ? view.receiverLoss(this.id) : undefined;
      if (assessCursor(c, { now, active, inputRate: input, receiverLoss }, this.#opts.health)) changed = true;
    }
    return changed;
  }

  /**
   * Nothing to measure until something is sent again: no hedge running, nothing in flight
   * or waiting to go to a connected receiving endpoint, no verdict breached or degraded.
   */
  get settled(): boolean {
    if (this.#hedges.size > 0) return false;
    const last = this.log.lastSeq;
    for (const c of this.#cursors.values()) {
      if (c.health.unsettled) return false;
      if (c.role !== 'active') continue;
      if (oldestUnackedAt(c) !== undefined) return false;
      if (c.nextSeq <= last && this.#link(c.endpointId)) return false;
    }
    return true;
  }

  /**
   * Re-run the failover policy and apply its decision (make-before-break). With several
   * instances only the owner decides; the decision applies once stored (on every instance).
   */
  evaluate(now: number, immediate = false, removing?: string): void {
    if (this.#closed) return;
    const control = this.#opts.hooks.control;
    if (control && (!control.isOwner() || this.#pending)) return;
    const { decision, wakeAt } = this.#decide(now, immediate, removing);
    this.#opts.hooks.evaluateAt?.(wakeAt);
    if (!decision) return;
    if (!control) {
      this.apply(decision, now);
      return;
    }
    this.#pending = true;
    control.publish(decision).catch(() => {
      this.#pending = false;
      // not stored (lease lost, NATS away): decide again, with what is true by then
      this.#opts.hooks.evaluateAt?.(this.#opts.clock());
    });
  }

  /** Apply a decision to the cursors: promoted ones start sending, demoted ones stop. */
  apply(decision: RoleDecision, now: number): void {
    this.#pending = false;
    if (this.#closed) return;
    // make before break: bring the new endpoints up before the old ones are told to stop
    for (const p of decision.promoted) {
      const c = this.#cursors.get(p.id);
      if (!c) continue;
      if (!this.#hedges.commit(c, p.reason, now)) this.#activate(c, Math.max(p.fromSeq, this.#startSeq(c)), now, p.reason);
      this.#record(p.record);
    }
    for (const d of decision.demoted) {
      const c = this.#cursors.get(d.id);
      if (!c) continue;
      this.#deactivate(c, now, d.reason);
      if (d.record) {
        this.#lastLoss = d.reason;
        this.#record(d.record);
      }
    }
    this.#active = decision.active.filter((id) => this.#cursors.has(id));
    this.#opts.hooks.activeChanged?.();
    this.#hedges.apply(decision.hedges ?? [], now);
    this.#opts.hooks.assessing?.();
    // with a control, what changed while this decision was being stored is decided now
    if (this.#opts.hooks.control) this.#opts.hooks.evaluateAt?.(now);
  }

  #receiving(): string[] {
    return this.#hedges.size === 0 ? this.#active : [...this.#active, ...this.#hedges.running.keys()];
  }

  #decide(now: number, immediate: boolean, removing: string | undefined): ReturnType<typeof decideRoles> {
    return decideRoles({
      streamId: this.id,
      mode: this.mode,
      order: this.#order,
      cursors: this.#cursors,
      active: this.#active,
      slots: this.slots,
      failback: this.failback,
      reconnectGraceMs: this.#opts.reconnectGraceMs,
      startupUntil: this.createdAt + this.#opts.startupGraceMs,
      policy: this.#opts.policy,
      endpoint: this.#opts.hooks.endpoint,
      hedge: this.#opts.hedge,
      hedges: this.#hedges.running,
      hadActive: this.#hadActive,
      lastLoss: this.#lastLoss,
      startSeq: (c) => this.#startSeq(c),
      now,
      immediate,
      removing,
    });
  }

  addEndpoint(endpointId: string, position: number | undefined, now: number): void {
    if (this.#cursors.has(endpointId)) return;
    const at = position === undefined ? this.#order.length : Math.min(position, this.#order.length);
    this.#order.splice(at, 0, endpointId);
    this.#cursors.set(endpointId, this.#newCursor(endpointId));
    this.#opts.hooks.listChanged?.();
    const departed = this.#departed.take(endpointId);
    if (departed !== undefined) this.restoreCursor(endpointId, departed);
    this.#sender.role(this.#link(endpointId), 'standby', this.#ackFrontier + 1);
    this.evaluate(now, true);
  }

  /** Remove an endpoint; if it was active, the next one takes over at once. */
  removeEndpoint(endpointId: string, now: number): void {
    if (!this.#cursors.has(endpointId)) return;
    this.evaluate(now, true, endpointId);
    this.#order = this.#order.filter((id) => id !== endpointId);
    this.#active = this.#active.filter((id) => id !== endpointId);
    this.#opts.hooks.activeChanged?.();
    const lastAcked = this.#cursors.get(endpointId)?.lastAcked ?? 0;
    this.#cursors.delete(endpointId);
    this.#opts.hooks.listChanged?.();
    this.#departed.remember(endpointId, lastAcked);
    this.#sender.end(this.#link(endpointId), END_REASON_REMOVED);
  }

  /** New priority order (same set of endpoints); a better endpoint takes over at once. */
  reorder(list: readonly string[], now: number): void {
    this.#order = [...list];
    this.#active.sort((a, b) => this.#order.indexOf(a) - this.#order.indexOf(b));
    this.evaluate(now, true);
  }

  /** True when every active endpoint has acked everything published. */
  get drained(): boolean {
    const last = this.log.lastSeq;
    return this.#active.every((id) => (this.#cursors.get(id)?.lastAcked ?? 0) >= last || !this.#link(id));
  }

  /** Tell every connected endpoint the stream ended; stop sending. */
  end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.#order) this.#sender.end(this.#link(id), reason);
  }

  get overflow(): OverflowPolicy {
    return this.#sender.overflow;
  }

  /** Change the overflow policy live; plans made under the old one are dropped. */
  setOverflow(policy: OverflowPolicy): void {
    this.#sender.setOverflow(policy, this.#cursors.values());
    for (const id of this.#receiving()) this.pump(id);
  }

  /** Stream input over the health window, bytes/s. */
  inputRate(now: number): number {
    return this.#input.rate(now);
  }

  /** Whether the endpoint has an open connection to this gateway. */
  isConnected(endpointId: string): boolean {
    return this.#link(endpointId) !== undefined;
  }

  #link(endpointId: string): ReturnType<StreamHooks['endpoint']>['link'] {
    return this.#opts.hooks.endpoint(endpointId).link;
  }

  #newCursor(endpointId: string): Cursor {
    return newCursor(endpointId, this.#opts.health, this.#opts.pacing, this.#opts.clock());
  }

  /** Where an endpoint entering the active set starts. */
  #startSeq(c: Cursor): number {
    // failover: continue right after what the stream as a whole has delivered;
    // mirror: each endpoint has its own cursor; a newcomer gets everything retained.
    if (this.mode === 'failover') return this.#ackFrontier + 1;
    return c.everActive || c.lastAcked > 0 ? c.lastAcked + 1 : this.log.firstSeq;
  }

  #activate(c: Cursor, fromSeq: number, now: number, reason: SwitchReason | undefined): void {
    const wasActive = c.role === 'active';
    c.role = 'active';
    c.everActive = true;
    c.nextSeq = fromSeq;
    c.sentUpTo = Math.max(c.sentUpTo, fromSeq - 1);
    clearInFlight(c);
    c.plan = undefined;
    if (!wasActive) {
      this.#sender.restartPacing(c, now);
      c.activeSince = now;
      c.activeFromSeq = fromSeq;
    }
    this.#hadActive = true;
    const link = this.#link(c.endpointId);
    if (link) {
      this.#sender.role(link, 'active', fromSeq);
      if (fromSeq < this.log.firstSeq) this.#sender.gap(c, link, this.log.firstSeq - 1, 'retention');
    }
    if (!wasActive && reason) {
      this.#opts.hooks.roleChanged({ streamId: this.id, endpointId: c.endpointId, role: 'active', fromSeq, reason, at: now });
    }
    this.pump(c.endpointId);
  }

  #deactivate(c: Cursor, now: number, reason: SwitchReason): void {
    if (c.role !== 'active') return;
    this.#interruptions.forget(c.endpointId);
    this.#standDown(c);
    this.#opts.hooks.roleChanged({ streamId: this.id, endpointId: c.endpointId, role: 'standby', fromSeq: c.lastAcked + 1, reason, at: now });
  }

  #standDown(c: Cursor): void {
    c.role = 'standby';
    c.activeSince = undefined;
    clearInFlight(c);
    this.#sender.role(this.#link(c.endpointId), 'standby', this.#ackFrontier + 1);
  }

  #record(rec: SwitchRecord): void {
    this.#interruptions.switched(rec, rec.from === null ? undefined : this.#cursors.get(rec.from)?.lastAckAt);
    this.#switches.push(rec);
    if (this.#switches.length > this.#opts.switchHistory) this.#switches.shift();
    this.#opts.hooks.switched({ streamId: this.id, ...rec });
  }
}
