import { encodeFrame, FrameType, type Channel } from '@mirrorstream/receiver/protocol';
import { planBacklog, topLayer, type OverflowPolicy } from '../rate/overflow.js';
import { Pacer, type PacerOptions } from '../rate/pacer.js';
import { ALL_LAYERS, recordSent, type Cursor } from './cursor.js';
import type { StreamLog } from './stream-log.js';
import { MAX_LAYER } from './spec.js';
import type { GapDeclared, Role, StreamLink } from './types.js';

const LAYER_UP_AFTER_MS = 2_000;
/** The chunks a climbing layer cap looks at for the stream's top layer. */
const RECENT_FOR_TOP_LAYER = 256;
/** Sent and unacked bytes a skipping policy allows at least (a new path, before acks give a rate). */
export const IN_FLIGHT_FLOOR_BYTES = 4 * 1024;
/**
 * The round trip counted in the in-flight limit at most: a queue that never drains inflates the
 * shortest send-to-ack time, which would let the limit (and the queue) grow without end.
 */
const IN_FLIGHT_RTT_MAX_MS = 1_000;

/**
 * How much a skipping policy lets be sent ahead of the acks: the path's delivery rate over half
 * of max_backlog_ms plus its round trip without queueing (the shortest send-to-ack time of the
 * last 10 s, at most 1 s), at least IN_FLIGHT_FLOOR_BYTES. Beyond it chunks wait in the log,
 * where their age triggers the policy; sent, they would wait in the transport's and the
 * network's queues, out of its reach. A saturated path so queues about half of max_backlog_ms.
 */
export function inFlightLimit(c: Cursor, policy: OverflowPolicy, now: number): number {
  const rtt = c.ackRtt.min(now);
  const horizonMs = policy.maxBacklogMs / 2 + (Number.isFinite(rtt) ? Math.min(rtt, IN_FLIGHT_RTT_MAX_MS) : 0);
  return Math.max(IN_FLIGHT_FLOOR_BYTES, (c.deliveredRecent.rate(now) * horizonMs) / 1000);
}

export interface SenderOptions {
  streamId: string;
  reliability: 'reliable' | 'unreliable';
  sendHighWaterBytes: number;
  pacing: PacerOptions;
  clock: () => number;
  /** Call `fn` after `ms`: a paced endpoint waits for tokens. */
  wake(ms: number, fn: () => void): void;
  /** Pump this endpoint again (over whatever link it has by then). */
  repump(endpointId: string): void;
  gap(e: GapDeclared): void;
}

/**
 * What goes on the wire for one stream: the pump that sends an active cursor's backlog
 * as fast as its link and its pacer allow, the overflow policy applied to a backlog that
 * got too old (skips declared by GAP), the layer cap, and the ROLE/GAP/RESET/END frames.
 * ROLE, GAP, RESET and END ride the data channel so they stay ordered with DATA.
 */
export class Sender {
  readonly #o: SenderOptions;
  readonly #log: StreamLog;
  readonly #dataChannel: Channel;
  #overflow: OverflowPolicy;

  constructor(options: SenderOptions, log: StreamLog, overflow: OverflowPolicy) {
    this.#o = options;
    this.#log = log;
    this.#overflow = overflow;
    this.#dataChannel = options.reliability === 'unreliable' ? 'data-unreliable' : 'data';
  }

  get overflow(): OverflowPolicy {
    return this.#overflow;
  }

  /** Change the overflow policy live; plans made under the old one are dropped. */
  setOverflow(policy: OverflowPolicy, cursors: Iterable<Cursor>): void {
    this.#overflow = policy;
    for (const c of cursors) {
      c.plan = undefined;
      if (policy.overflow !== 'layers') c.maxLayer = ALL_LAYERS;
    }
  }

  /** Send what an active cursor may receive until its link's buffer is full. */
  pump(c: Cursor, link: StreamLink): void {
    const log = this.#log;
    const highWater = Math.min(this.#o.sendHighWaterBytes, link.highWaterBytes ?? Infinity);
    const now = this.#o.clock();
    const policy = this.#overflow;
    // a policy that may skip keeps the queue in the log, where it can still skip: what is sent
    // and not yet acked stays within what the path delivers in max_backlog_ms (plus its round trip)
    const inFlightCap = policy.overflow === 'backpressure' ? Infinity : inFlightLimit(c, policy, now);
    while (c.nextSeq <= log.lastSeq && link.bufferedAmount < highWater && c.inFlightBytes < inFlightCap) {
      if (c.nextSeq < log.firstSeq) {
        this.gap(c, link, log.firstSeq - 1, 'retention');
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
      recordSent(c, c.nextSeq, now, frame.byteLength);
      c.nextSeq++;
      c.chunksSent++;
      c.bytesSent += frame.byteLength;
    }
  }

  /** A new path starts at the floor rate and ramps with its acks (no burst of the backlog). */
  restartPacing(c: Cursor, now: number): void {
    c.pacer = new Pacer(this.#o.pacing, now);
  }

  /** Re-aim an active cursor's pacing, and let a capped layer climb while its backlog stays small. */
  tune(c: Cursor, now: number, inputRate: number): void {
    c.pacer.retune(c.deliveredRecent.rate(now), inputRate);
    if (this.#overflow.overflow !== 'layers' || c.maxLayer === ALL_LAYERS) return;
    const oldest = this.#log.get(c.nextSeq);
    const calm = !oldest || now - oldest.timestamp < this.#overflow.maxBacklogMs / 4;
    if (!calm) {
      c.layerOkSince = undefined;
      return;
    }
    c.layerOkSince ??= now;
    if (now - c.layerOkSince >= LAYER_UP_AFTER_MS) {
      // a cap at the stream's top layer (of its recent chunks) is no cap
      const log = this.#log;
      const top = topLayer((seq) => log.get(seq), Math.max(log.firstSeq, log.lastSeq - RECENT_FOR_TOP_LAYER + 1), log.lastSeq);
      c.maxLayer = c.maxLayer >= MAX_LAYER || c.maxLayer + 1 >= top ? ALL_LAYERS : c.maxLayer + 1;
      c.layerOkSince = now;
    }
  }

  role(link: StreamLink | undefined, role: Role, fromSeq: number): void {
    link?.send(encodeFrame({ type: FrameType.ROLE, streamId: this.#o.streamId, role, fromSeq, epoch: this.#log.epoch }), 'data');
  }

  /** The receiver's position named `previousEpoch`, not this stream's: it must start over. */
  reset(link: StreamLink | undefined, previousEpoch: string | null): void {
    link?.send(encodeFrame({ type: FrameType.RESET, streamId: this.#o.streamId, epoch: this.#log.epoch, previousEpoch }), 'data');
  }

  end(link: StreamLink | undefined, reason: string): void {
    link?.send(encodeFrame({ type: FrameType.END, streamId: this.#o.streamId, reason }), 'data');
  }

  /** Declare `c.nextSeq..to` lost to this endpoint. */
  gap(c: Cursor, link: StreamLink, to: number, reason: string): void {
    const from = c.nextSeq;
    link.send(encodeFrame({ type: FrameType.GAP, streamId: this.#o.streamId, from, to, reason }), 'data');
    c.nextSeq = to + 1;
    c.sentUpTo = Math.max(c.sentUpTo, to);
    this.#o.gap({ streamId: this.#o.streamId, endpointId: c.endpointId, from, to, reason });
  }

  /** Skip `c.nextSeq..to` by policy: a GAP frame declares it, the counters keep it. */
  #skip(c: Cursor, link: StreamLink, to: number, reason: string): void {
    c.skipped[reason] = (c.skipped[reason] ?? 0) + (to - c.nextSeq + 1);
    let bytes = 0;
    for (let seq = c.nextSeq; seq <= to; seq++) bytes += this.#log.get(seq)?.payload.byteLength ?? 0;
    c.skippedBytes.add(this.#o.clock(), bytes);
    this.gap(c, link, to, reason);
  }

  #wakeLater(c: Cursor, ms: number): void {
    if (c.wakeScheduled) return;
    c.wakeScheduled = true;
    this.#o.wake(ms, () => {
      c.wakeScheduled = false;
      this.#o.repump(c.endpointId);
    });
  }
}
