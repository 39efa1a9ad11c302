import { encodeFrame, FrameType } from '@mirrorstream/receiver';
import type { FailbackConfig, HealthConfig, RetentionConfig } from '../config.js';
import { HealthTracker, type HealthSnapshot, type MetricState } from '../health/score.js';
import { RateWindow } from '../rate/rate-window.js';
import { planBacklog, topLayer, type BacklogPlan, type OverflowPolicy } from '../rate/overflow.js';
import { Pacer, type PacerOptions } from '../rate/pacer.js';
import type { DemotionReason, EndpointState, FailoverPolicy } from '../failover/policy.js';
import type { Channel } from '../transports/transport.js';
import { StreamLog } from './stream-log.js';

export type StreamMode = 'failover' | 'mirror';
export type Role = 'active' | 'standby';

/** Why a role changed; stable strings (they appear in the API, events and metrics). */
export type SwitchReason =
  | 'initial'
  | 'heartbeat-timeout'
  | 'disconnected'
  | 'degraded'
  | 'removed'
  | 'failback'
  | 'operator'
  | 'recovered';

/** What the stream needs to know about an endpoint; the gateway's endpoint registry provides it. */
export interface EndpointView {
  readonly state: EndpointState;
  /** Path health verdict from probes and transport telemetry. */
  readonly degraded: boolean;
  /** When the last connection closed (while disconnected). */
  readonly disconnectedAt: number | undefined;
  /** It is on its preferred transport and has another: a degraded path is fixed by switching transport first. */
  readonly canSwitchTransport: boolean;
  /** Loss the receiver reported for this stream between its last two reports. */
  receiverLoss(streamId: string): number | undefined;
  health(): HealthSnapshot;
  readonly upSince: number | undefined;
  /** The open connection, if any. */
  readonly link: StreamLink | undefined;
}

export interface StreamLink {
  readonly bufferedAmount: number;
  readonly highWaterBytes?: number;
  send(bytes: Uint8Array, channel: Channel): boolean;
}

export interface SwitchRecord {
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: SwitchReason;
  readonly at: number;
  /** First seq the new endpoint was sent. */
  readonly from_seq: number;
  /** For degradation: which metrics were breached. */
  readonly detail?: string[];
  /** The health metrics of the endpoint that lost its role, at the moment of the switch. */
  readonly metrics?: Record<string, MetricState>;
}

export interface StreamHooks {
  endpoint(id: string): EndpointView;
  roleChanged(e: { streamId: string; endpointId: string; role: Role; fromSeq: number; reason: SwitchReason; at: number }): void;
  switched(e: { streamId: string } & SwitchRecord): void;
  gap(e: { streamId: string; endpointId: string; from: number; to: number; reason: string }): void;
  /** Call `fn` after `ms` (the gateway clock): a paced endpoint waits for tokens. */
  wake(ms: number, fn: () => void): void;
  /** Ask an endpoint to reconnect over its next transport (its path is degraded). */
  switchTransport(endpointId: string, reasons: string[]): void;
}

export interface StreamOptions {
  id: string;
  mode: StreamMode;
  reliability: 'reliable' | 'unreliable';
  mirrorK: number | undefined;
  endpointList: readonly string[];
  retention: RetentionConfig;
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
}

/** Delivery state of one endpoint on one stream. */
export interface Cursor {
  readonly endpointId: string;
  role: Role;
  /** Next seq to send while active. */
  nextSeq: number;
  /** Highest seq sent (or declared lost by GAP) to this endpoint. */
  sentUpTo: number;
  /** Cumulative ack from the endpoint. */
  lastAcked: number;
  everActive: boolean;
  chunksSent: number;
  bytesSent: number;
  /** Sent DATA not yet acked, oldest first: [seq, sentAt, bytes] (ack lag, delivery rate). */
  inFlight: [number, number, number][];
  /** Index of the oldest unacked entry in `inFlight` (acked ones are dropped in batches). */
  inFlightHead: number;
  /** Bytes of DATA this endpoint acked (skipped chunks excluded), over the health window. */
  delivered: RateWindow;
  /** The same over a short window: pacing follows it so a new path ramps in a few RTTs. */
  deliveredRecent: RateWindow;
  activeSince: number | undefined;
  /** Stream-level health of this endpoint: ack lag and delivery ratio while active. */
  health: HealthTracker;
  pacer: Pacer;
  wakeScheduled: boolean;
  /** Overflow plan for the current backlog: seqs to send up to `to`, the rest skipped. */
  plan: (BacklogPlan & { idx: number; to: number }) | undefined;
  /** layers policy: highest layer this endpoint gets now. */
  maxLayer: number;
  layerOkSince: number | undefined;
  /** Chunks skipped by the overflow policy, by GAP reason. */
  skipped: Record<string, number>;
}

/** No layer cap. */
const ALL_LAYERS = Number.POSITIVE_INFINITY;
const LAYER_UP_AFTER_MS = 2_000;
const PACING_WINDOW_MS = 250;

/**
 * One stream: its retention log, its endpoints in priority order, one cursor per
 * endpoint, and the active set chosen by the failover policy. It writes frames to the
 * endpoints' links and never touches a socket.
 */
export class Stream {
  readonly id: string;
  readonly mode: StreamMode;
  readonly reliability: 'reliable' | 'unreliable';
  readonly #dataChannel: Channel;
  readonly mirrorK: number | undefined;
  readonly createdAt: number;
  readonly log: StreamLog;
  readonly retention: RetentionConfig;
  readonly failback: FailbackConfig;
  readonly #opts: StreamOptions;
  readonly #cursors = new Map<string, Cursor>();
  #order: string[];
  #active: string[] = [];
  /** Highest cumulative ack of any endpoint: in failover mode everything up to it is delivered. */
  #ackFrontier = 0;
  #hadActive = false;
  #lastLoss: SwitchReason | undefined;
  readonly #switches: SwitchRecord[] = [];
  #closed = false;
  readonly #input: RateWindow;
  #overflow: OverflowPolicy;

  constructor(opts: StreamOptions) {
    this.#opts = opts;
    this.id = opts.id;
    this.mode = opts.mode;
    this.reliability = opts.reliability;
    this.#dataChannel = opts.reliability === 'unreliable' ? 'data-unreliable' : 'data';
    this.mirrorK = opts.mirrorK;
    this.retention = opts.retention;
    this.failback = opts.failback;
    this.createdAt = opts.clock();
    this.log = new StreamLog(opts.id, opts.retention);
    this.#input = new RateWindow(opts.health.windowMs);
    this.#overflow = opts.overflow;
    this.#order = [...opts.endpointList];
    for (const id of this.#order) this.#cursors.set(id, this.#newCursor(id));
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

  cursor(endpointId: string): Readonly<Cursor> | undefined {
    return this.#cursors.get(endpointId);
  }

  get slots(): number {
    return this.mode === 'failover' ? 1 : (this.mirrorK ?? Number.POSITIVE_INFINITY);
  }

  /** Append one chunk and push it to the active endpoints. */
  append(payload: Uint8Array, timestamp: number, key?: string, layer?: number): number {
    const entry = this.log.append(payload, timestamp, key, layer);
    this.#input.add(timestamp, payload.byteLength);
    for (const id of this.#active) this.pump(id);
    return entry.seq;
  }

  /** Send what the endpoint may receive until its link's buffer is full. */
  pump(endpointId: string): void {
    const c = this.#cursors.get(endpointId);
    if (!c || c.role !== 'active' || this.#closed) return;
    const link = this.#opts.hooks.endpoint(endpointId).link;
    if (!link) return;
    const log = this.log;
    const highWater = Math.min(this.#opts.sendHighWaterBytes, link.highWaterBytes ?? Infinity);
    const now = this.#opts.clock();
    const policy = this.#overflow;
    while (c.nextSeq <= log.lastSeq && link.bufferedAmount < highWater) {
      if (c.nextSeq < log.firstSeq) {
        this.#sendGap(c, link, log.firstSeq - 1, 'retention');
        continue;
      }
      if (!c.plan && policy.overflow !== 'backpressure' && now - (log.get(c.nextSeq)?.timestamp ?? now) > policy.maxBacklogMs) {
        // the endpoint cannot keep up: apply the stream's overflow policy to its backlog
        if (policy.overflow === 'layers') {
          c.maxLayer = Math.max(0, Math.min(c.maxLayer, topLayer((s) => log.get(s), c.nextSeq, log.lastSeq)) - 1);
          c.layerOkSince = undefined;
        }
        const plan = planBacklog(policy, (s) => log.get(s), c.nextSeq, log.lastSeq, now, c.maxLayer);
        if (plan) c.plan = { ...plan, idx: 0, to: log.lastSeq };
      }
      if (c.plan) {
        const target = c.plan.keep[c.plan.idx];
        if (target === undefined) {
          if (c.nextSeq <= c.plan.to) this.#skip(c, link, c.plan.to, c.plan.reason);
          c.plan = undefined;
          continue;
        }
        if (target > c.nextSeq) {
          this.#skip(c, link, target - 1, c.plan.reason);
          continue;
        }
      } else if (policy.overflow === 'layers' && (log.get(c.nextSeq)?.layer ?? 0) > c.maxLayer) {
        let to = c.nextSeq;
        while (to < log.lastSeq && (log.get(to + 1)?.layer ?? 0) > c.maxLayer) to++;
        this.#skip(c, link, to, 'overflow:layers');
        continue;
      }
      const frame = log.frame(c.nextSeq);
      if (!frame) return;
      const wait = c.pacer.take(frame.byteLength, now);
      if (wait > 0) {
        this.#wakeLater(c, wait);
        return;
      }
      if (!link.send(frame, this.#dataChannel)) return;
      if (c.plan) c.plan.idx++;
      c.sentUpTo = c.nextSeq;
      c.inFlight.push([c.nextSeq, now, frame.byteLength]);
      c.nextSeq++;
      c.chunksSent++;
      c.bytesSent += frame.byteLength;
    }
  }

  /** Cumulative ack from an endpoint; acks beyond what was sent are clamped. */
  ack(endpointId: string, seq: number): void {
    const c = this.#cursors.get(endpointId);
    if (!c) return;
    const acked = Math.min(seq, c.sentUpTo);
    if (acked <= c.lastAcked) return;
    c.lastAcked = acked;
    const now = this.#opts.clock();
    let bytes = 0;
    while (c.inFlightHead < c.inFlight.length && (c.inFlight[c.inFlightHead]?.[0] ?? Infinity) <= acked) {
      bytes += c.inFlight[c.inFlightHead]?.[2] ?? 0;
      c.inFlightHead++;
    }
    if (bytes > 0) {
      c.delivered.add(now, bytes);
      c.deliveredRecent.add(now, bytes);
    }
    // compact now and then instead of shifting the array on every ack
    if (c.inFlightHead > 1024 && c.inFlightHead * 2 > c.inFlight.length) {
      c.inFlight = c.inFlight.slice(c.inFlightHead);
      c.inFlightHead = 0;
    }
    if (acked > this.#ackFrontier) this.#ackFrontier = acked;
  }

  /**
   * An endpoint (re)connected. `resume` is the last seq its SDK delivered: it counts as
   * acked as far as this gateway actually sent it. The endpoint learns its role.
   */
  endpointConnected(endpointId: string, resume: number | undefined, now: number): void {
    const c = this.#cursors.get(endpointId);
    if (!c) return;
    // a new connection is a new path: its stream-level health is measured afresh
    c.health = new HealthTracker({ degradeAfterMs: this.#opts.health.degradeAfterMs, recoverAfterMs: this.#opts.health.recoverAfterMs }, now);
    if (resume !== undefined) this.ack(endpointId, resume);
    if (c.role === 'active') this.#activate(c, this.#startSeq(c), now, undefined);
    else this.#sendRole(c, 'standby', this.#ackFrontier + 1);
  }

  /** Re-run the failover policy and apply its decision (make-before-break). */
  evaluate(now: number, immediate = false, removing?: string): void {
    if (this.#closed) return;
    const hooks = this.#opts.hooks;
    this.#assess(now);
    const candidates = this.#order.map((id) => {
      const view = hooks.endpoint(id);
      // an endpoint being removed looks disconnected to the policy, so it is replaced
      let state: EndpointState = id === removing ? 'disconnected' : view.state;
      const cursor = this.#cursors.get(id);
      const streamDegraded = cursor?.health.verdict === 'degraded';
      let degraded = view.degraded || streamDegraded;
      if ((degraded || state === 'dead') && cursor?.role === 'active' && view.canSwitchTransport && id !== removing) {
        // the transport pair goes first: the endpoint keeps its role (reconnect grace) while
        // it changes transport, before the stream fails over to another endpoint
        const why = state === 'dead' ? ['heartbeat-timeout'] : [...view.health().reasons, ...cursor.health.reasons];
        hooks.switchTransport(id, why);
        degraded = false;
        state = 'suspect';
      }
      return {
        id,
        state,
        degraded,
        upSince: streamDegraded ? undefined : view.upSince,
        disconnectedAt: id === removing ? undefined : view.disconnectedAt,
        active: this.#active.includes(id),
      };
    });
    const wasActive = this.#active.filter((id) => this.#cursors.has(id));
    const sel = this.#opts.policy.select({
      candidates,
      slots: this.slots,
      now,
      failback: { enabled: this.failback.enabled, stableMs: this.failback.stableMs },
      immediate,
      reconnectGraceMs: this.#opts.reconnectGraceMs,
    });
    if (sel.promoted.length === 0 && sel.demoted.length === 0 && sameList(sel.active, wasActive)) return;

    const demotionReason = (d: { id: string; reason: DemotionReason }): SwitchReason =>
      d.id === removing ? 'removed' : d.reason;
    const demotedReason = new Map(sel.demoted.map((d) => [d.id, demotionReason(d)]));
    /** What the switch record says about the endpoint that lost its role. */
    const evidence = (id: string | null, reason: SwitchReason): Pick<SwitchRecord, 'detail' | 'metrics'> => {
      if (id === null) return {};
      const ep = hooks.endpoint(id).health();
      const cur = this.#cursors.get(id)?.health.snapshot();
      const metrics = { ...ep.metrics, ...cur?.metrics };
      return reason === 'degraded' ? { detail: [...ep.reasons, ...(cur?.reasons ?? [])], metrics } : { metrics };
    };
    // make before break: bring the new endpoints up before the old ones are told to stop
    for (const p of sel.promoted) {
      const c = this.#cursors.get(p.id);
      if (!c) continue;
      const fromSeq = this.#startSeq(c);
      let reason: SwitchReason;
      if (p.reason === 'failback') reason = 'failback';
      else if (p.reason === 'operator') reason = 'operator';
      else if (p.replaces !== undefined) reason = demotedReason.get(p.replaces) ?? 'recovered';
      else if (!this.#hadActive) reason = 'initial';
      else reason = this.#lastLoss ?? 'recovered';
      const from = p.replaces ?? (this.mode === 'failover' ? (wasActive[0] ?? null) : null);
      this.#activate(c, fromSeq, now, reason);
      this.#record({ from, to: p.id, reason, at: now, from_seq: fromSeq, ...evidence(from, reason) });
    }
    for (const d of sel.demoted) {
      const c = this.#cursors.get(d.id);
      if (!c) continue;
      const reason = demotionReason(d);
      this.#deactivate(c, now, reason);
      const replaced = sel.promoted.some((p) => p.replaces === d.id);
      if (!replaced) {
        this.#lastLoss = reason;
        this.#record({ from: d.id, to: null, reason, at: now, from_seq: c.lastAcked + 1, ...evidence(d.id, reason) });
      }
    }
    this.#active = [...sel.active];
  }

  addEndpoint(endpointId: string, position: number | undefined, now: number): void {
    if (this.#cursors.has(endpointId)) return;
    const at = position === undefined ? this.#order.length : Math.min(position, this.#order.length);
    this.#order.splice(at, 0, endpointId);
    const c = this.#newCursor(endpointId);
    this.#cursors.set(endpointId, c);
    if (this.#opts.hooks.endpoint(endpointId).link) this.#sendRole(c, 'standby', this.#ackFrontier + 1);
    this.evaluate(now, true);
  }

  /** Remove an endpoint; if it was active, the next one takes over at once. */
  removeEndpoint(endpointId: string, now: number): void {
    const c = this.#cursors.get(endpointId);
    if (!c) return;
    this.evaluate(now, true, endpointId);
    this.#order = this.#order.filter((id) => id !== endpointId);
    this.#active = this.#active.filter((id) => id !== endpointId);
    this.#cursors.delete(endpointId);
    this.#opts.hooks
      .endpoint(endpointId)
      .link?.send(encodeFrame({ type: FrameType.END, streamId: this.id, reason: 'removed' }), 'data');
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
    return this.#active.every((id) => (this.#cursors.get(id)?.lastAcked ?? 0) >= last || !this.#opts.hooks.endpoint(id).link);
  }

  /** Tell every connected endpoint the stream ended; stop sending. */
  end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const frame = encodeFrame({ type: FrameType.END, streamId: this.id, reason });
    for (const id of this.#order) this.#opts.hooks.endpoint(id).link?.send(frame, 'data');
  }

  get overflow(): OverflowPolicy {
    return this.#overflow;
  }

  /** Change the overflow policy live; plans made under the old one are dropped. */
  setOverflow(policy: OverflowPolicy): void {
    this.#overflow = policy;
    for (const c of this.#cursors.values()) {
      c.plan = undefined;
      if (policy.overflow !== 'layers') c.maxLayer = ALL_LAYERS;
    }
    for (const id of this.#active) this.pump(id);
  }

  /**
   * Backpressure: true while an active endpoint's oldest unacked chunk is older than
   * `maxBacklogMs`, or half the retention is unacked (so eviction never outruns it).
   */
  overloaded(now: number): boolean {
    const p = this.#overflow;
    for (const id of this.#active) {
      const c = this.#cursors.get(id);
      if (!c || !this.#opts.hooks.endpoint(id).link) continue;
      const oldest = this.log.get(c.lastAcked + 1);
      if (oldest && now - oldest.timestamp > p.maxBacklogMs) return true;
      if (this.log.lastSeq - c.lastAcked > this.retention.maxChunks / 2) return true;
    }
    return false;
  }

  /** Chunks the overflow policy skipped for an endpoint, by reason. */
  skipped(endpointId: string): Readonly<Record<string, number>> {
    return this.#cursors.get(endpointId)?.skipped ?? {};
  }

  /** Current pacing rate of an endpoint, bytes/s. */
  paceRate(endpointId: string): number | undefined {
    return this.#cursors.get(endpointId)?.pacer.rateBytesPerSec;
  }

  /** Acked (delivered) bytes/s of an endpoint over the health window. */
  deliveryRate(endpointId: string, now: number): number {
    return this.#cursors.get(endpointId)?.delivered.rate(now) ?? 0;
  }

  /** Stream input over the health window, bytes/s. */
  inputRate(now: number): number {
    return this.#input.rate(now);
  }

  /** Stream-level health of one endpoint (ack lag, delivery ratio). */
  cursorHealth(endpointId: string): HealthSnapshot | undefined {
    return this.#cursors.get(endpointId)?.health.snapshot();
  }

  /**
   * Measure what only the stream sees: how far behind its acks the active endpoint is,
   * and whether it delivers what the producer offers. Standbys get no samples, so their
   * stream-level verdict recovers after `recoverAfterMs`.
   */
  #assess(now: number): void {
    const h = this.#opts.health;
    const input = this.#input.rate(now);
    for (const c of this.#cursors.values()) {
      const active = c.role === 'active' && this.#opts.hooks.endpoint(c.endpointId).link !== undefined;
      if (active) {
        c.pacer.retune(c.deliveredRecent.rate(now), input);
        this.#maybeRaiseLayer(c, now);
      }
      const head = c.inFlight[c.inFlightHead];
      const warmedUp = active && c.activeSince !== undefined && now - c.activeSince >= h.windowMs;
      c.health.update(now, {
        ack_lag_ms: { value: active ? (head ? now - head[1] : 0) : undefined, threshold: h.maxAckLagMs, kind: 'max', source: 'gateway.ack.oldest-unacked' },
        delivery_ratio: {
          value: warmedUp && input > 0 ? c.delivered.rate(now) / input : undefined,
          threshold: h.minDeliveryRatio,
          kind: 'min',
          source: 'gateway.ack.delivered-bytes/input-bytes',
        },
        // unreliable streams: what the receiver says it lost between its reports
        receiver_loss_ratio: {
          value: active && this.reliability === 'unreliable' ? this.#opts.hooks.endpoint(c.endpointId).receiverLoss(this.id) : undefined,
          threshold: h.maxLossRatio,
          kind: 'max',
          source: 'receiver.report.gapCount',
        },
      });
    }
  }

  #newCursor(endpointId: string): Cursor {
    const h = this.#opts.health;
    return {
      endpointId,
      role: 'standby',
      nextSeq: 1,
      sentUpTo: 0,
      lastAcked: 0,
      everActive: false,
      chunksSent: 0,
      bytesSent: 0,
      inFlight: [],
      inFlightHead: 0,
      delivered: new RateWindow(h.windowMs),
      deliveredRecent: new RateWindow(PACING_WINDOW_MS),
      activeSince: undefined,
      health: new HealthTracker({ degradeAfterMs: h.degradeAfterMs, recoverAfterMs: h.recoverAfterMs }, this.#opts.clock()),
      pacer: new Pacer(this.#opts.pacing, this.#opts.clock()),
      wakeScheduled: false,
      plan: undefined,
      maxLayer: ALL_LAYERS,
      layerOkSince: undefined,
      skipped: {},
    };
  }

  /** layers policy: a capped endpoint whose backlog stayed small gets one layer more. */
  #maybeRaiseLayer(c: Cursor, now: number): void {
    if (this.#overflow.overflow !== 'layers' || c.maxLayer === ALL_LAYERS) return;
    const oldest = this.log.get(c.nextSeq);
    const calm = !oldest || now - oldest.timestamp < this.#overflow.maxBacklogMs / 4;
    if (!calm) {
      c.layerOkSince = undefined;
      return;
    }
    c.layerOkSince ??= now;
    if (now - c.layerOkSince >= LAYER_UP_AFTER_MS) {
      c.maxLayer = c.maxLayer >= 15 ? ALL_LAYERS : c.maxLayer + 1;
      c.layerOkSince = now;
    }
  }

  #wakeLater(c: Cursor, ms: number): void {
    if (c.wakeScheduled) return;
    c.wakeScheduled = true;
    this.#opts.hooks.wake(ms, () => {
      c.wakeScheduled = false;
      this.pump(c.endpointId);
    });
  }

  /** Skip `c.nextSeq..to` by policy: a GAP frame declares it, the counters keep it. */
  #skip(c: Cursor, link: StreamLink, to: number, reason: string): void {
    c.skipped[reason] = (c.skipped[reason] ?? 0) + (to - c.nextSeq + 1);
    this.#sendGap(c, link, to, reason);
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
    c.inFlight = [];
    c.inFlightHead = 0;
    c.plan = undefined;
    // a new path starts at the floor rate and ramps with its acks (no burst of the backlog)
    if (!wasActive) c.pacer = new Pacer(this.#opts.pacing, now);
    if (!wasActive) c.activeSince = now;
    this.#hadActive = true;
    const link = this.#opts.hooks.endpoint(c.endpointId).link;
    if (link) {
      this.#sendRole(c, 'active', fromSeq);
      if (fromSeq < this.log.firstSeq) this.#sendGap(c, link, this.log.firstSeq - 1, 'retention');
    }
    if (!wasActive && reason) {
      this.#opts.hooks.roleChanged({ streamId: this.id, endpointId: c.endpointId, role: 'active', fromSeq, reason, at: now });
    }
    this.pump(c.endpointId);
  }

  #deactivate(c: Cursor, now: number, reason: SwitchReason): void {
    if (c.role !== 'active') return;
    c.role = 'standby';
    c.activeSince = undefined;
    c.inFlight = [];
    c.inFlightHead = 0;
    this.#sendRole(c, 'standby', this.#ackFrontier + 1);
    this.#opts.hooks.roleChanged({ streamId: this.id, endpointId: c.endpointId, role: 'standby', fromSeq: c.lastAcked + 1, reason, at: now });
  }

  #sendRole(c: Cursor, role: Role, fromSeq: number): void {
    this.#opts.hooks
      .endpoint(c.endpointId)
      .link?.send(encodeFrame({ type: FrameType.ROLE, streamId: this.id, role, fromSeq }), 'data');
  }

  /** Declare `c.nextSeq..to` lost to this endpoint (ROLE/GAP ride the data channel so they stay ordered with DATA). */
  #sendGap(c: Cursor, link: StreamLink, to: number, reason: string): void {
    const from = c.nextSeq;
    link.send(encodeFrame({ type: FrameType.GAP, streamId: this.id, from, to, reason }), 'data');
    c.nextSeq = to + 1;
    c.sentUpTo = Math.max(c.sentUpTo, to);
    this.#opts.hooks.gap({ streamId: this.id, endpointId: c.endpointId, from, to, reason });
  }

  #record(rec: SwitchRecord): void {
    this.#switches.push(rec);
    if (this.#switches.length > this.#opts.switchHistory) this.#switches.shift();
    this.#opts.hooks.switched({ streamId: this.id, ...rec });
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
