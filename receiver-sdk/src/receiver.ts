import { RealClock, type Clock, type TimerHandle } from './clock.js';
import { TypedEmitter } from './emitter.js';
import { ERROR_CODES, MirrorstreamError, ProtocolError } from './errors.js';
import type { Dialer, FrameLink, LinkChannel, ReconnectPolicy } from './link.js';
import { ExponentialBackoff } from './link.js';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, type Frame } from './protocol.js';

export const SDK_VERSION = '0.1.0';

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
}

export interface Gap {
  streamId: string;
  from: number;
  to: number;
  reason: string;
}

export type ReceiverStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export type ReceiverEvents = {
  chunk: [chunk: Chunk];
  role: [role: RoleChange];
  gap: [gap: Gap];
  status: [status: ReceiverStatus, detail: string];
  end: [end: { streamId: string; reason: string }];
  error: [error: MirrorstreamError];
};

export interface ReceiverCoreOptions {
  endpointId: string;
  token: string;
  /** Opens a link to the gateway; the transport-specific part. */
  dial: Dialer;
  clock?: Clock;
  reconnect?: ReconnectPolicy;
  /** Send a cumulative ACK after this many delivered chunks... */
  ackEveryChunks?: number;
  /** ...or this long after the first unacked one, whichever comes first. */
  ackDelayMs?: number;
  /** Give up on a silent gateway after this long (default: 4 heartbeat intervals, at least 1 s). */
  gatewayTimeoutMs?: number;
  /** Out-of-order chunks held per stream before the hole is declared a gap. */
  reorderLimit?: number;
  /** How often to send RECEIVER_REPORT per stream (0 disables). */
  reportIntervalMs?: number;
  /** Transport names this receiver can dial, in preference order (told to the gateway in HELLO). */
  transports?: readonly string[];
  maxFrameBytes?: number;
}

interface StreamState {
  /** Everything up to here was delivered or declared lost: the resume point and the ACK value. */
  position: number;
  acked: number;
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

/** Codes after which reconnecting cannot help. */
const FATAL = new Set(['MS_UNAUTHORIZED', 'MS_PROTOCOL_VERSION']);

/**
 * The receiver, independent of the transport: HELLO with resume positions, heartbeat
 * echo, in-order delivery with duplicate suppression, cumulative ACKs, gateway silence
 * detection and reconnect with backoff.
 */
export class ReceiverCore extends TypedEmitter<ReceiverEvents> {
  readonly endpointId: string;
  readonly #opts: Required<Omit<ReceiverCoreOptions, 'gatewayTimeoutMs'>> & { gatewayTimeoutMs: number | undefined };
  readonly #streams = new Map<string, StreamState>();
  #status: ReceiverStatus = 'idle';
  #link: FrameLink | undefined;
  #attempt = 0;
  #retryTimer: TimerHandle | undefined;
  #silenceTimer: TimerHandle | undefined;
  #silenceMs = 1_000;
  #welcomed: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  sessionId: string | undefined;
  #reportTimer: TimerHandle | undefined;
  #lastReportAt = 0;
  #hbNonce = 0;
  /** RTT seen by this receiver: the transport's view if it has one, else our own heartbeat echo. */
  #rttMs: { value: number; source: string } | undefined;

  constructor(options: ReceiverCoreOptions) {
    super();
    this.endpointId = options.endpointId;
    this.#opts = {
      endpointId: options.endpointId,
      token: options.token,
      dial: options.dial,
      clock: options.clock ?? new RealClock(),
      reconnect: options.reconnect ?? new ExponentialBackoff(),
      ackEveryChunks: options.ackEveryChunks ?? 16,
      ackDelayMs: options.ackDelayMs ?? 20,
      gatewayTimeoutMs: options.gatewayTimeoutMs,
      reorderLimit: options.reorderLimit ?? 4096,
      reportIntervalMs: options.reportIntervalMs ?? 1_000,
      transports: options.transports ?? [],
      maxFrameBytes: options.maxFrameBytes ?? 16 * 1024 * 1024,
    };
  }

  get status(): ReceiverStatus {
    return this.#status;
  }

  /** Last delivered (or declared lost) seq per stream: what a reconnect resumes from. */
  positions(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [id, st] of this.#streams) out[id] = st.position;
    return out;
  }

  /** Connect; resolves on WELCOME. Later drops reconnect by themselves. */
  connect(): Promise<void> {
    if (this.#status === 'closed') return Promise.reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver is closed'));
    if (this.#status === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#welcomed = { resolve, reject };
      if (this.#status === 'idle') void this.#open('connecting');
    });
  }

  /** Flush acks, close the link, stop reconnecting. */
  close(): void {
    if (this.#status === 'closed') return;
    for (const [id, st] of this.#streams) this.#sendAck(id, st);
    this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#opts.clock.clearTimeout(this.#silenceTimer);
    this.#opts.clock.clearInterval(this.#reportTimer);
    for (const st of this.#streams.values()) this.#opts.clock.clearTimeout(st.ackTimer);
    const link = this.#link;
    this.#link = undefined;
    link?.close('receiver closed');
    this.#setStatus('closed', 'closed by application');
    this.#welcomed?.reject(new MirrorstreamError('MS_TRANSPORT_CLOSED', 'receiver closed'));
    this.#welcomed = undefined;
  }

  async #open(status: 'connecting' | 'reconnecting'): Promise<void> {
    this.#setStatus(status, `attempt ${this.#attempt + 1}`);
    let link: FrameLink;
    try {
      link = await this.#opts.dial();
    } catch (error) {
      this.#scheduleRetry(error);
      return;
    }
    if (this.#status === 'closed') {
      link.close('receiver closed');
      return;
    }
    this.#link = link;
    link.on('message', (bytes, channel) => {
      if (this.#link === link) this.#onMessage(link, bytes, channel);
    });
    link.on('close', (reason) => {
      if (this.#link !== link) return;
      this.#link = undefined;
      this.#opts.clock.clearTimeout(this.#silenceTimer);
      this.#scheduleRetry(new MirrorstreamError('MS_TRANSPORT_CLOSED', reason, { retryable: true }));
    });
    link.send(
      encodeFrame({
        type: FrameType.HELLO,
        version: PROTOCOL_VERSION,
        endpointId: this.endpointId,
        token: this.#opts.token,
        sdkVersion: SDK_VERSION,
        resume: this.positions(),
        ...(this.#opts.transports.length > 1 ? { transports: [...this.#opts.transports] } : {}),
      }),
      'control',
    );
    this.#armSilence();
  }

  #scheduleRetry(error: unknown): void {
    if (this.#status === 'closed') return;
    const code = error instanceof MirrorstreamError ? error.code : undefined;
    const delay = code && FATAL.has(code) ? null : this.#opts.reconnect.nextRetryDelayMs({ attempt: this.#attempt, lastError: error });
    this.#attempt++;
    if (delay === null) {
      const err = error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', String(error), { cause: error });
      this.#welcomed?.reject(err);
      this.#welcomed = undefined;
      this.close();
      return;
    }
    this.#setStatus('reconnecting', error instanceof Error ? error.message : String(error));
    this.#opts.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = this.#opts.clock.setTimeout(() => void this.#open('reconnecting'), delay);
  }

  /** A gateway that says nothing for too long is gone: drop the link and reconnect. */
  #armSilence(): void {
    this.#opts.clock.clearTimeout(this.#silenceTimer);
    this.#silenceTimer = this.#opts.clock.setTimeout(() => {
      const link = this.#link;
      if (!link) return;
      this.#link = undefined;
      link.close('gateway silent');
      this.#scheduleRetry(new MirrorstreamError('MS_TRANSPORT_CLOSED', `no frame from the gateway for ${this.#silenceMs} ms`, { retryable: true }));
    }, this.#silenceMs);
  }

  #onMessage(link: FrameLink, bytes: Uint8Array, channel: LinkChannel): void {
    const decoded = decodeFrame(bytes, this.#opts.maxFrameBytes);
    if (!decoded.ok) {
      this.#protocolFailure(link, decoded.error);
      return;
    }
    this.#armSilence();
    const f = decoded.frame;
    switch (f.type) {
      case FrameType.WELCOME:
        this.sessionId = f.sessionId;
        this.#silenceMs = this.#opts.gatewayTimeoutMs ?? Math.max(1_000, 4 * f.heartbeatIntervalMs);
        this.#armSilence();
        this.#attempt = 0;
        this.#setStatus('connected', `session ${f.sessionId}`);
        this.#startReports();
        this.#welcomed?.resolve();
        this.#welcomed = undefined;
        return;
      case FrameType.HEARTBEAT:
        // echo on the channel it came by: probes on the unreliable channel measure its loss
        link.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: f.nonce, sentAt: f.sentAt }), channel === 'data-unreliable' ? channel : 'control');
        return;
      case FrameType.HEARTBEAT_ACK:
        // our own heartbeat came back: RTT as this receiver sees it
        if (this.#rttMs?.source !== 'receiver.transport') this.#rttMs = { value: Math.max(0, this.#opts.clock.now() - f.sentAt), source: 'receiver.heartbeat' };
        return;
      case FrameType.DATA:
        this.#onData(f, channel === 'data-unreliable');
        return;
      case FrameType.ROLE:
        this.#onRole(f.streamId, f.role, f.fromSeq);
        return;
      case FrameType.GAP:
        this.#onGap({ streamId: f.streamId, from: f.from, to: f.to, reason: f.reason });
        return;
      case FrameType.END: {
        const st = this.#streams.get(f.streamId);
        if (st) this.#opts.clock.clearTimeout(st.ackTimer);
        this.#streams.delete(f.streamId);
        this.emit('end', { streamId: f.streamId, reason: f.reason });
        return;
      }
      case FrameType.ERROR: {
        const err = new MirrorstreamError(isKnownCode(f.code) ? f.code : 'MS_INTERNAL', `gateway: ${f.message}`, {
          retryable: !FATAL.has(f.code),
        });
        this.emit('error', err);
        this.#link = undefined;
        link.close(`gateway error ${f.code}`);
        this.#scheduleRetry(err);
        return;
      }
      default:
        this.#protocolFailure(link, new ProtocolError('MS_PROTOCOL_STATE', `unexpected frame type ${f.type} from gateway`));
    }
  }

  #protocolFailure(link: FrameLink, error: ProtocolError): void {
    this.emit('error', error);
    link.send(encodeFrame({ type: FrameType.ERROR, code: error.code, message: error.message }), 'control');
    this.#link = undefined;
    link.close(error.code);
    this.#scheduleRetry(error);
  }

  #state(streamId: string): StreamState {
    let st = this.#streams.get(streamId);
    if (!st) {
      st = { position: 0, acked: 0, role: 'standby', pending: new Map(), ackTimer: undefined, delivered: 0, duplicates: 0, bytes: 0, lost: 0, reportedBytes: 0 };
      this.#streams.set(streamId, st);
    }
    return st;
  }

  #onData(f: Extract<Frame, { type: typeof FrameType.DATA }>, unreliable: boolean): void {
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
        this.emit('gap', { streamId: f.streamId, from: st.position + 1, to: f.seq - 1, reason: 'unreliable-loss' });
      }
      this.#deliver(st, chunk);
      return;
    }
    if (f.seq !== st.position + 1) {
      st.pending.set(f.seq, chunk);
      if (st.pending.size > this.#opts.reorderLimit) {
        // the hole is not going to fill: declare it and move on
        const next = Math.min(...st.pending.keys());
        this.#onGap({ streamId: f.streamId, from: st.position + 1, to: next - 1, reason: 'reorder-limit' });
      }
      return;
    }
    this.#deliver(st, chunk);
    this.#drainPending(f.streamId, st);
  }

  #deliver(st: StreamState, chunk: Chunk): void {
    st.position = chunk.seq;
    st.delivered++;
    st.bytes += chunk.payload.byteLength;
    this.emit('chunk', chunk);
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

  #onRole(streamId: string, role: 'active' | 'standby', fromSeq: number): void {
    const st = this.#state(streamId);
    st.role = role;
    // taking over from another endpoint: what came before fromSeq went elsewhere, not lost
    if (role === 'active' && fromSeq - 1 > st.position) {
      st.position = fromSeq - 1;
      this.#drainPending(streamId, st);
    }
    this.emit('role', { streamId, role, fromSeq });
  }

  #onGap(gap: Gap): void {
    const st = this.#state(gap.streamId);
    this.emit('gap', gap);
    if (gap.to > st.position) st.position = gap.to;
    this.#drainPending(gap.streamId, st);
  }

  #maybeAck(streamId: string, st: StreamState): void {
    if (st.position <= st.acked) return;
    if (st.position - st.acked >= this.#opts.ackEveryChunks) {
      this.#sendAck(streamId, st);
      return;
    }
    st.ackTimer ??= this.#opts.clock.setTimeout(() => {
      st.ackTimer = undefined;
      this.#sendAck(streamId, st);
    }, this.#opts.ackDelayMs);
  }

  #sendAck(streamId: string, st: StreamState): void {
    this.#opts.clock.clearTimeout(st.ackTimer);
    st.ackTimer = undefined;
    if (st.position <= st.acked || !this.#link) return;
    if (this.#link.send(encodeFrame({ type: FrameType.ACK, streamId, seq: st.position }), 'control')) st.acked = st.position;
  }

  /**
   * RECEIVER_REPORT per stream: what arrived, at what rate, the RTT this side sees and
   * the chunks lost in transit, so the gateway can score the path from both ends.
   */
  #startReports(): void {
    this.#opts.clock.clearInterval(this.#reportTimer);
    if (this.#opts.reportIntervalMs <= 0) return;
    this.#lastReportAt = this.#opts.clock.now();
    this.#reportTimer = this.#opts.clock.setInterval(() => void this.#report(), this.#opts.reportIntervalMs);
  }

  async #report(): Promise<void> {
    const link = this.#link;
    if (!link) return;
    link.send(encodeFrame({ type: FrameType.HEARTBEAT, nonce: ++this.#hbNonce, sentAt: this.#opts.clock.now() }), 'control');
    const transportRtt = link.rttMs ? await link.rttMs() : undefined;
    if (transportRtt !== undefined) this.#rttMs = { value: transportRtt, source: 'receiver.transport' };
    if (link !== this.#link) return;
    const now = this.#opts.clock.now();
    const seconds = Math.max(0.001, (now - this.#lastReportAt) / 1000);
    this.#lastReportAt = now;
    for (const [streamId, st] of this.#streams) {
      const rate = (st.bytes - st.reportedBytes) / seconds;
      st.reportedBytes = st.bytes;
      link.send(
        encodeFrame({
          type: FrameType.RECEIVER_REPORT,
          streamId,
          receivedChunks: st.delivered,
          receivedBytes: st.bytes,
          rateBytesPerSec: rate,
          rttMs: this.#rttMs?.value ?? null,
          gapCount: st.lost,
        }),
        'control',
      );
    }
  }

  #setStatus(status: ReceiverStatus, detail: string): void {
    if (this.#status === status && status !== 'reconnecting') return;
    this.#status = status;
    this.emit('status', status, detail);
  }
}

function isKnownCode(code: string): code is MirrorstreamError['code'] {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}
