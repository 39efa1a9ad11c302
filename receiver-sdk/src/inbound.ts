import type { Clock, TimerHandle } from './protocol/clock.js';
import { encodeFrame, END_REASON_REMOVED, FrameType, type DataFrame, type ReceiverReportFrame } from './protocol/frames.js';

/** One chunk, delivered in seq order per stream. */
export interface Chunk {
  streamId: string;
  seq: number;
  /** Gateway ingestion time, ms since the epoch. */
  timestamp: number;
  payload: Uint8Array;
  key?: string;
  layer?: number;
}

export interface RoleChange {
  streamId: string;
  role: 'active' | 'standby';
  fromSeq: number;
  /** The epoch of the stream's seq space. */
  epoch: string;
}

export interface Gap {
  streamId: string;
  from: number;
  to: number;
  reason: string;
}

/**
 * The stream's seq space changed under this receiver (e.g. an in-memory gateway restarted):
 * its position in `oldEpoch` means nothing in `newEpoch`, so it was forgotten and delivery
 * starts over in the new epoch. A downstream store keyed by seq should key by epoch too.
 */
export interface EpochReset {
  streamId: string;
  oldEpoch: string | undefined;
  newEpoch: string;
}

/** Where InboundStreams delivers what it decided. */
export interface InboundSink {
  chunk(chunk: Chunk): void;
  gap(gap: Gap): void;
  role(role: RoleChange): void;
  reset(reset: EpochReset): void;
  /** Send a frame to the gateway on the control channel; false when there is no link, a promise where the write completes later. */
  send(bytes: Uint8Array): boolean | Promise<boolean>;
}

export interface InboundOptions {
  clock: Clock;
  ackEveryChunks: number;
  ackDelayMs: number;
  reorderLimit: number;
}

interface StreamState {
  /** The epoch the position belongs to (undefined until a ROLE or RESET named it). */
  epoch: string | undefined;
  /** Everything up to here was delivered or declared lost: the resume point and the ACK value. */
  position: number;
  /** The highest ACK the link took. */
  acked: number;
  /** The ACK whose write is under way: not counted until the link says it is done. */
  acking: { seq: number } | undefined;
  role: 'active' | 'standby';
  pending: Map<number, Chunk>;
  ackTimer: TimerHandle | undefined;
  delivered: number;
  duplicates: number;
  bytes: number;
  /** Seqs lost in transit on an unreliable stream (not policy skips). */
  lost: number;
  /** Bytes at the previous report, for the received rate. */
  reportedBytes: number;
}

/**
 * The receiving side of every stream of one receiver: in-order delivery with duplicate
 * suppression, holes held until they fill or a GAP declares them, roles, epochs, and
 * cumulative ACKs. On every connection the gateway sends a stream's ROLE (or RESET, which
 * names the epoch) before its DATA, on the data channel, so a reliable stream's DATA can
 * never overtake it. An unreliable stream's DATA rides another channel and can: it is held
 * until the stream's ROLE or RESET has arrived on this connection.
 */
export class InboundStreams {
  readonly #o: InboundOptions;
  readonly #sink: InboundSink;
  readonly #streams = new Map<string, StreamState>();
  /** Streams whose ROLE or RESET arrived on the current connection. */
  readonly #confirmed = new Set<string>();
  /** Unreliable DATA that arrived before its stream was confirmed on this connection. */
  readonly #early = new Map<string, DataFrame[]>();

  constructor(options: InboundOptions, sink: InboundSink) {
    this.#o = options;
    this.#sink = sink;
  }

  /** Last delivered (or declared lost) seq per stream: what a reconnect resumes from. */
  positions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, st] of this.#streams) out[id] = st.position;
    return out;
  }

  /** The epoch of each position, where the gateway named it. */
  epochs(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [id, st] of this.#streams) if (st.epoch !== undefined) out[id] = st.epoch;
    return out;
  }

  /**
   * A new connection: nothing of the stream is confirmed on it yet, and an ack scheduled on
   * the old one is not sent (HELLO's resume position says the same, with its epoch).
   */
  newConnection(): void {
    this.#confirmed.clear();
    this.#early.clear();
    for (const st of this.#streams.values()) {
      this.#o.clock.clearTimeout(st.ackTimer);
      st.ackTimer = undefined;
      st.acking = undefined; // a write on the old link proves nothing on this one
    }
  }

  data(f: DataFrame, unreliable: boolean): void {
    if (unreliable && !this.#confirmed.has(f.streamId)) {
      let early = this.#early.get(f.streamId);
      if (!early) this.#early.set(f.streamId, (early = []));
      // bounded like the reorder buffer; what falls out is an unreliable loss like any other
      if (early.length >= this.#o.reorderLimit) early.shift();
      early.push(f);
      return;
    }
    const st = this.#state(f.streamId);
    if (f.seq <= st.position || st.pending.has(f.seq)) {
      st.duplicates++;
      return;
    }
    const chunk: Chunk = { streamId: f.streamId, seq: f.seq, timestamp: f.timestamp, payload: f.payload };
    if (f.key !== undefined) chunk.key = f.key;
    if (f.layer !== undefined) chunk.layer = f.layer;
    if (unreliable) {
      // no retransmission is coming: a hole is a loss, report it and deliver what arrived
      if (f.seq > st.position + 1) {
        st.lost += f.seq - st.position - 1;
        this.#sink.gap({ streamId: f.streamId, from: st.position + 1, to: f.seq - 1, reason: 'unreliable-loss' });
      }
      this.#deliver(st, chunk);
      return;
    }
    if (f.seq !== st.position + 1) {
      st.pending.set(f.seq, chunk);
      if (st.pending.size > this.#o.reorderLimit) {
        // the hole is not going to fill: declare it and move on
        const next = Math.min(...st.pending.keys());
        this.gap({ streamId: f.streamId, from: st.position + 1, to: next - 1, reason: 'reorder-limit' });
      }
      return;
    }
    this.#deliver(st, chunk);
    this.#drainPending(f.streamId, st);
  }

  role(streamId: string, role: 'active' | 'standby', fromSeq: number, epoch: string): void {
    const st = this.#state(streamId);
    // a ROLE of another epoch than the one our position belongs to: that position is void
    if (st.epoch !== undefined && st.epoch !== epoch) this.#reset(streamId, st, epoch);
    st.epoch = epoch;
    st.role = role;
    // taking over from another endpoint: what came before fromSeq went elsewhere, not lost
    if (role === 'active' && fromSeq - 1 > st.position) {
      st.position = fromSeq - 1;
      this.#drainPending(streamId, st);
    }
    this.#sink.role({ streamId, role, fromSeq, epoch });
    this.#confirm(streamId);
  }

  /** The gateway said our position belongs to another epoch than the stream's. */
  reset(streamId: string, epoch: string): void {
    const st = this.#state(streamId);
    if (st.epoch !== epoch) this.#reset(streamId, st, epoch);
    this.#confirm(streamId);
  }

  gap(gap: Gap): void {
    const st = this.#state(gap.streamId);
    this.#sink.gap(gap);
    if (gap.to > st.position) st.position = gap.to;
    this.#drainPending(gap.streamId, st);
  }

  /**
   * The stream ended for this receiver. Ended (deleted, gateway closing): forget it, a
   * stream created again under its id is a new one. Only this endpoint `removed` from the
   * list: keep the position and its epoch, so if it is added back nothing delivered is
   * delivered again (what is held for it is dropped: the gateway resends from the position).
   */
  end(streamId: string, reason: string): void {
    const st = this.#streams.get(streamId);
    if (st) this.#o.clock.clearTimeout(st.ackTimer);
    this.#confirmed.delete(streamId);
    this.#early.delete(streamId);
    if (st && reason === END_REASON_REMOVED) {
      st.ackTimer = undefined;
      st.pending.clear();
      st.role = 'standby';
      return;
    }
    this.#streams.delete(streamId);
  }

  /** Send every pending ACK now. */
  flushAcks(): void {
    for (const [id, st] of this.#streams) this.#sendAck(id, st);
  }

  /** Stop the ack timers (the receiver closed). */
  stop(): void {
    for (const st of this.#streams.values()) this.#o.clock.clearTimeout(st.ackTimer);
  }

  /** RECEIVER_REPORT per stream for the last `seconds`: what arrived, at what rate, what was lost in transit. */
  reports(seconds: number, rttMs: number | null): ReceiverReportFrame[] {
    const out: ReceiverReportFrame[] = [];
    for (const [streamId, st] of this.#streams) {
      const rate = (st.bytes - st.reportedBytes) / seconds;
      st.reportedBytes = st.bytes;
      out.push({
        type: FrameType.RECEIVER_REPORT,
        streamId,
        receivedChunks: st.delivered,
        receivedBytes: st.bytes,
        rateBytesPerSec: rate,
        rttMs,
        gapCount: st.lost,
      });
    }
    return out;
  }

  #state(streamId: string): StreamState {
    let st = this.#streams.get(streamId);
    if (!st) {
      st = { epoch: undefined, position: 0, acked: 0, acking: undefined, role: 'standby', pending: new Map(), ackTimer: undefined, delivered: 0, duplicates: 0, bytes: 0, lost: 0, reportedBytes: 0 };
      this.#streams.set(streamId, st);
    }
    return st;
  }

  /** The stream's ROLE or RESET arrived on this connection: DATA held for it goes through now. */
  #confirm(streamId: string): void {
    this.#confirmed.add(streamId);
    const early = this.#early.get(streamId);
    if (!early) return;
    this.#early.delete(streamId);
    for (const f of early) this.data(f, true);
  }

  #reset(streamId: string, st: StreamState, epoch: string): void {
    const oldEpoch = st.epoch;
    st.epoch = epoch;
    st.position = 0;
    st.acked = 0;
    st.acking = undefined;
    st.pending.clear();
    this.#o.clock.clearTimeout(st.ackTimer);
    st.ackTimer = undefined;
    this.#sink.reset({ streamId, oldEpoch, newEpoch: epoch });
  }

  #deliver(st: StreamState, chunk: Chunk): void {
    st.position = chunk.seq;
    st.delivered++;
    st.bytes += chunk.payload.byteLength;
    this.#sink.chunk(chunk);
    this.#maybeAck(chunk.streamId, st);
  }

  #drainPending(streamId: string, st: StreamState): void {
    for (const seq of [...st.pending.keys()]) if (seq <= st.position) st.pending.delete(seq);
    for (let next = st.pending.get(st.position + 1); next; next = st.pending.get(st.position + 1)) {
      st.pending.delete(next.seq);
      this.#deliver(st, next);
    }
    this.#maybeAck(streamId, st);
  }

  #maybeAck(streamId: string, st: StreamState): void {
    const sent = ackedOrSending(st);
    if (st.position <= sent) return;
    if (st.position - sent >= this.#o.ackEveryChunks) {
      this.#sendAck(streamId, st);
      return;
    }
    st.ackTimer ??= this.#o.clock.setTimeout(() => {
      st.ackTimer = undefined;
      this.#sendAck(streamId, st);
    }, this.#o.ackDelayMs);
  }

  #sendAck(streamId: string, st: StreamState): void {
    this.#o.clock.clearTimeout(st.ackTimer);
    st.ackTimer = undefined;
    if (st.position <= ackedOrSending(st)) return;
    const seq = st.position;
    const sent = this.#sink.send(encodeFrame({ type: FrameType.ACK, streamId, seq }));
    if (typeof sent === 'boolean') {
      if (sent) st.acked = seq;
      return;
    }
    const acking = { seq };
    st.acking = acking;
    const written = (ok: boolean): void => {
      // a later ACK, an epoch reset or a new connection took its place: that one counts
      if (st.acking !== acking) return;
      st.acking = undefined;
      if (ok) st.acked = Math.max(st.acked, seq);
    };
    sent.then(written, () => written(false));
  }
}

/** What was acked, or is being written: no second ACK for it meanwhile. */
function ackedOrSending(st: StreamState): number {
  return Math.max(st.acked, st.acking?.seq ?? 0);
}
