import { END_REASON_REMOVED, TypedEmitter } from '@mirrorstream/receiver/protocol';
import type { FailbackConfig, HealthConfig, RetentionConfig } from '../config.js';
import type { FailoverPolicy } from '../failover/policy.js';
import type { OverflowPolicy } from '../rate/overflow.js';
import type { PacerOptions } from '../rate/pacer.js';
import { RateWindow } from '../rate/rate-window.js';
import { applyAck, assessCursor, newCursor, newCursorHealth, oldestUnackedAt, type Cursor } from './cursor.js';
import { CursorTable } from './cursor-table.js';
import { decideRoles } from './decide.js';
import { Sender } from './sender.js';
import type { ChunkInput } from './spec.js';
import type { AppendChunk, AppendResult, StreamLog } from './stream-log.js';
import type { HedgeSet } from './hedges.js';
import { Roles } from './roles.js';
import { localDecisions, type DecisionPort, type Decisions } from './decisions.js';
import type { EndpointView, StreamEvents, StreamLink, StreamMode, SwitchRecord } from './types.js';

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
  /** What the gateway knows of an endpoint (its connection, its health). */
  endpoint(id: string): EndpointView;
  /** Call `fn` after `ms` (the gateway clock): a paced endpoint waits for tokens. */
  wake(ms: number, fn: () => void): void;
  /** How decisions take effect (default: at once; several instances: through the stream's control). */
  decisions?: Decisions;
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
 * the Sender's; where chunks live is the StreamLog's; how a decision takes effect is its
 * DecisionPort's. It never touches a socket; what it has to say it emits (StreamEvents).
 */
export class Stream extends TypedEmitter<StreamEvents> {
  readonly id: string;
  readonly mode: StreamMode;
  readonly reliability: 'reliable' | 'unreliable';
  readonly mirrorK: number | undefined;
  readonly createdAt: number;
  readonly log: StreamLog;
  readonly failback: FailbackConfig;
  readonly #opts: StreamOptions;
  readonly #sender: Sender;
  readonly #table: CursorTable;
  readonly #roles: Roles;
  /** Highest cumulative ack of any endpoint: in failover mode everything up to it is delivered. */
  #ackFrontier = 0;
  #closed = false;
  readonly #decisions: DecisionPort;
  readonly #input: RateWindow;

  constructor(opts: StreamOptions) {
    super();
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
        wake: opts.wake,
        repump: (id) => this.pump(id),
        gap: (e) => this.emit('gap', e),
      },
      opts.log,
      opts.overflow,
    );
    this.#table = new CursorTable(opts.endpointList, (id) => newCursor(id, opts.health, opts.pacing, opts.clock()));
    this.#roles = new Roles(
      {
        streamId: opts.id,
        mode: opts.mode,
        log: opts.log,
        table: this.#table,
        sender: this.#sender,
        switchHistory: opts.switchHistory,
        frontier: () => this.#ackFrontier,
        link: (id) => this.#link(id),
        pump: (id) => this.pump(id),
        emit: (event, ...args) => void this.emit(event, ...args),
      },
      opts.clock,
    );
    this.#decisions = (opts.decisions ?? localDecisions)({
      apply: (decision) => {
        if (!this.#closed) this.#roles.apply(decision, opts.clock());
      },
      decideAgain: () => this.emit('evaluateAt', opts.clock()),
    });
    // chunks another gateway instance appended to a shared log go out like our own
    opts.log.onForeignAppend?.((entry) => {
      this.#input.add(opts.clock(), entry.payload.byteLength);
      for (const id of this.#roles.receiving()) this.pump(id);
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
    return this.#table.order;
  }

  get active(): readonly string[] {
    return this.#roles.active;
  }

  get ackFrontier(): number {
    return this.#ackFrontier;
  }

  get switches(): readonly SwitchRecord[] {
    return this.#roles.switches;
  }

  /** The hedges running now (by standby), with when each began, and how many started, ended and were committed. */
  get hedges(): Pick<HedgeSet, 'running' | 'counts'> {
    return this.#roles.hedges;
  }

  /** The endpoint is active on this stream (a hedging standby is not). */
  isActive(endpointId: string): boolean {
    return this.#roles.active.includes(endpointId);
  }

  cursor(endpointId: string): Readonly<Cursor> | undefined {
    return this.#table.get(endpointId);
  }

  get slots(): number {
    return this.mode === 'failover' ? 1 : (this.mirrorK ?? Number.POSITIVE_INFINITY);
  }

  /** Append chunks to the log, then push them to the active endpoints (synchronously when the log stores synchronously). */
  append(chunks: readonly AppendChunk[], now: number, key?: string): AppendResult | Promise<AppendResult> {
    const stored = this.log.appendBatch(chunks, now, key);
    return stored instanceof Promise ? stored.then((r) => this.#appended(chunks, now, r)) : this.#appended(chunks, now, stored);
  }

  #appended(chunks: readonly ChunkInput[], now: number, result: AppendResult): AppendResult {
    for (const c of chunks) this.#input.add(now, c.payload.byteLength);
    for (const id of this.#roles.receiving()) this.pump(id);
    return result;
  }

  /** Send what the endpoint may receive until its link's buffer is full. */
  pump(endpointId: string): void {
    const c = this.#table.get(endpointId);
    if (!c || c.role !== 'active' || this.#closed) return;
    const link = this.#link(endpointId);
    if (!link) return;
    const before = c.nextSeq;
    this.#sender.pump(c, link);
    // something went out: measure the stream until it is acked (a drain with nothing to send is no news)
    if (c.nextSeq !== before) this.emit('assessing');
  }

  /** Cumulative ack from an endpoint; acks beyond what was sent are clamped. */
  ack(endpointId: string, seq: number): void {
    const c = this.#table.get(endpointId);
    const now = this.#opts.clock();
    const acked = c ? applyAck(c, seq, now) : undefined;
    if (acked === undefined) return;
    this.#roles.interruptions.acked(endpointId, acked, now, this.log);
    if (acked > this.#ackFrontier) this.#ackFrontier = acked;
    this.emit('acked', endpointId, acked);
    // a skipping policy holds sends back until acks come (the in-flight limit): go on
    if (this.#sender.overflow.overflow !== 'backpressure' && c?.role === 'active' && c.nextSeq <= this.log.lastSeq) this.pump(endpointId);
  }

  /**
   * A cursor as the durable backend kept it (a restore) or another instance moved it: up to
   * `seq` was delivered to that endpoint. One not on the list is kept for when it is added back.
   */
  restoreCursor(endpointId: string, seq: number): void {
    if (this.#table.restore(endpointId, seq) && seq > this.#ackFrontier) this.#ackFrontier = seq;
  }

  /**
   * An endpoint (re)connected. A position in this stream's epoch counts as acked as far as it
   * was sent; one of another epoch gets RESET (never clamped). Then the endpoint learns its role.
   */
  endpointConnected(endpointId: string, position: ResumePosition | undefined, now: number): void {
    const c = this.#table.get(endpointId);
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
      const own = this.mode === 'failover' && this.isActive(endpointId) ? Math.max(c.lastAcked + 1, c.activeFromSeq) : undefined;
      this.#roles.activate(c, own ?? this.#roles.startSeq(c), now, undefined);
    } else this.#sender.role(this.#link(endpointId), 'standby', this.#ackFrontier + 1);
  }

  /**
   * Measure what only the stream sees (ack lag, delivery ratio, reported loss), re-aim
   * pacing; every tick while the stream is not `settled`, before decisions. Returns true
   * when an endpoint's verdict on this stream changed (the policy should run again).
   */
  assess(now: number): boolean {
    const input = this.#input.rate(now);
    let changed = false;
    for (const c of this.#table.values()) {
      const view = this.#opts.endpoint(c.endpointId);
      const active = c.role === 'active' && view.link !== undefined;
      if (active) this.#sender.tune(c, now, input);
      const receiverLoss = active && this.reliability === 'unreliable' ? view.receiverLoss(this.id) : undefined;
      if (assessCursor(c, { now, active, inputRate: input, receiverLoss, skipping: this.#sender.overflow.overflow !== 'backpressure' }, this.#opts.health)) changed = true;
    }
    return changed;
  }

  /**
   * Nothing to measure until something is sent again: no hedge running, nothing in flight
   * or waiting to go to a connected receiving endpoint, no verdict breached or degraded.
   */
  get settled(): boolean {
    if (this.#roles.hedges.size > 0) return false;
    const last = this.log.lastSeq;
    for (const c of this.#table.values()) {
      if (c.health.unsettled) return false;
      if (c.role !== 'active') continue;
      if (oldestUnackedAt(c) !== undefined) return false;
      if (c.nextSeq <= last && this.#link(c.endpointId)) return false;
    }
    return true;
  }

  /**
   * Re-run the failover policy and hand its decision to the decision port, which applies it
   * (make-before-break) at once or, with several instances, once stored (only the owner decides).
   */
  evaluate(now: number, immediate = false, removing?: string): void {
    if (this.#closed || !this.#decisions.canDecide) return;
    const { decision, wakeAt } = this.#decide(now, immediate, removing);
    this.emit('evaluateAt', wakeAt);
    if (decision) this.#decisions.submit(decision);
  }

  #decide(now: number, immediate: boolean, removing: string | undefined): ReturnType<typeof decideRoles> {
    const { hadActive, lastLoss } = this.#roles.history;
    return decideRoles({
      streamId: this.id,
      mode: this.mode,
      order: this.#table.order,
      cursors: this.#table.cursors,
      active: this.#roles.active,
      slots: this.slots,
      failback: this.failback,
      reconnectGraceMs: this.#opts.reconnectGraceMs,
      startupUntil: this.createdAt + this.#opts.startupGraceMs,
      policy: this.#opts.policy,
      endpoint: this.#opts.endpoint,
      hedge: this.#opts.hedge,
      hedges: this.#roles.hedges.running,
      hadActive,
      lastLoss,
      startSeq: (c) => this.#roles.startSeq(c),
      now,
      immediate,
      removing,
    });
  }

  addEndpoint(endpointId: string, position: number | undefined, now: number): void {
    if (this.#table.has(endpointId)) return;
    const departed = this.#table.add(endpointId, position);
    this.emit('listChanged');
    if (departed !== undefined) this.restoreCursor(endpointId, departed);
    this.#sender.role(this.#link(endpointId), 'standby', this.#ackFrontier + 1);
    this.evaluate(now, true);
  }

  /**
   * Remove an endpoint; if it was active, the next one takes over at once. The decision is made
   * (and, with several instances, sent) first; the endpoint leaves the list at once, and a
   * decision applied later passes over it.
   */
  removeEndpoint(endpointId: string, now: number): void {
    if (!this.#table.has(endpointId)) return;
    this.evaluate(now, true, endpointId);
    this.#roles.drop(endpointId);
    this.#table.remove(endpointId);
    this.emit('listChanged');
    this.#sender.end(this.#link(endpointId), END_REASON_REMOVED);
  }

  /** New priority order (same set of endpoints); a better endpoint takes over at once. */
  reorder(list: readonly string[], now: number): void {
    this.#table.reorder(list);
    this.#roles.sort(this.#table.order);
    this.evaluate(now, true);
  }

  /** True when every active endpoint has acked everything published. */
  get drained(): boolean {
    const last = this.log.lastSeq;
    return this.#roles.active.every((id) => (this.#table.get(id)?.lastAcked ?? 0) >= last || !this.#link(id));
  }

  /** Tell every connected endpoint the stream ended; stop sending. */
  end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.#table.order) this.#sender.end(this.#link(id), reason);
  }

  get overflow(): OverflowPolicy {
    return this.#sender.overflow;
  }

  /** Change the overflow policy live; plans made under the old one are dropped. */
  setOverflow(policy: OverflowPolicy): void {
    this.#sender.setOverflow(policy, this.#table.values());
    for (const id of this.#roles.receiving()) this.pump(id);
  }

  /** Stream input over the health window, bytes/s. */
  inputRate(now: number): number {
    return this.#input.rate(now);
  }

  /** Whether the endpoint has an open connection to this gateway. */
  isConnected(endpointId: string): boolean {
    return this.#link(endpointId) !== undefined;
  }

  #link(endpointId: string): StreamLink | undefined {
    return this.#opts.endpoint(endpointId).link;
  }
}
