import { FrameReader, lengthPrefixed, TypedEmitter, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Channel, Measurement, Transport, TransportEvents, TransportStats } from '../transport.js';

/** The parts of a fails-components WebTransport session the transport uses. */
export interface WtSession {
  readonly closed: Promise<unknown>;
  close(info?: { closeCode?: number; reason?: string }): void;
  getStats?(): Promise<Record<string, unknown>>;
  datagrams?: { writable: WritableStream<Uint8Array> };
}

export type WebTransportBackend = 'http3' | 'http2';

export interface WebTransportTransportOptions {
  session: WtSession;
  backend: WebTransportBackend;
  /** The receiver's bidirectional control stream. */
  control: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> };
  /** Our unidirectional data stream to the receiver. */
  data: WritableStream<Uint8Array>;
  maxFrameBytes: number;
  /** The HTTP/3 stats refresh runs on it. */
  clock: Clock;
}

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

/**
 * A WebTransport session as a Transport. Control frames ride the receiver's
 * bidirectional stream; DATA (and ROLE/GAP/END) our unidirectional stream, each frame
 * length-prefixed. `data-unreliable` goes out as datagrams where the backend has them
 * (HTTP/3); over HTTP/2 everything is reliable, so it shares the data stream.
 * `bufferedAmount` counts bytes handed to a stream writer whose write has not settled.
 */
export class WebTransportTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly kind = 'webtransport';
  readonly backend: WebTransportBackend;
  readonly highWaterBytes = HIGH_WATER;
  readonly closed: Promise<string>;
  readonly #session: WtSession;
  readonly #writers: Record<'control' | 'data' | 'datagrams', WritableStreamDefaultWriter<Uint8Array> | undefined>;
  #buffered = 0;
  #closed = false;
  #resolveClosed!: (reason: string) => void;
  #bytesSent = 0;
  #bytesReceived = 0;
  #messagesSent = 0;
  #messagesReceived = 0;
  #sessionStats: Record<string, unknown> | undefined;
  readonly #clock: Clock;
  readonly #statsTimer: TimerHandle | undefined;

  constructor(opts: WebTransportTransportOptions) {
    super();
    this.backend = opts.backend;
    this.#session = opts.session;
    this.#clock = opts.clock;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#writers = {
      control: opts.control.writable.getWriter(),
      data: opts.data.getWriter(),
      datagrams: opts.backend === 'http3' && opts.session.datagrams ? opts.session.datagrams.writable.getWriter() : undefined,
    };
    void this.#readControl(opts.control.readable, opts.maxFrameBytes);
    opts.session.closed.then(
      () => this.close('session closed'),
      () => this.close('session failed'),
    );
    if (opts.backend === 'http3' && opts.session.getStats) {
      const getStats = opts.session.getStats.bind(opts.session);
      this.#statsTimer = opts.clock.setInterval(() => {
        getStats().then(
          (s) => (this.#sessionStats = s),
          () => undefined,
        );
      }, 1_000);
    }
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  send(bytes: Uint8Array, channel: Channel): boolean {
    if (this.#closed) return false;
    if (channel === 'data-unreliable' && this.#writers.datagrams) {
      // a datagram carries one frame whole: no prefix, and it may be lost
      this.#count(bytes.byteLength);
      this.#writers.datagrams.write(bytes).catch(() => undefined);
      return true;
    }
    const writer = channel === 'control' ? this.#writers.control : this.#writers.data;
    if (!writer) return false;
    const framed = lengthPrefixed(bytes);
    this.#buffered += framed.byteLength;
    this.#count(bytes.byteLength);
    writer.write(framed).then(
      () => {
        const before = this.#buffered;
        this.#buffered -= framed.byteLength;
        if (before > LOW_WATER && this.#buffered <= LOW_WATER && !this.#closed) this.emit('drain');
      },
      (error: unknown) => {
        this.emit('error', error instanceof Error ? error : new Error(String(error)));
        this.close('stream write failed');
      },
    );
    return true;
  }

  stats(): TransportStats {
    const extra: Record<string, Measurement> = {
      bufferedAmount: { value: this.#buffered, source: 'webtransport.stream-writer.pending' },
    };
    let rttMs: Measurement | undefined;
    const s = this.#sessionStats;
    if (s) {
      if (typeof s.smoothedRtt === 'number') rttMs = { value: s.smoothedRtt, source: 'webtransport.getStats.smoothedRtt' };
      if (typeof s.estimatedSendRate === 'number') extra.estimatedSendRateBitsPerSec = { value: s.estimatedSendRate, source: 'webtransport.getStats.estimatedSendRate' };
      if (typeof s.packetsLost === 'number') extra.packetsLost = { value: s.packetsLost, source: 'webtransport.getStats.packetsLost' };
    }
    return {
      kind: this.kind,
      ...(rttMs ? { rttMs } : {}),
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      messagesSent: this.#messagesSent,
      messagesReceived: this.#messagesReceived,
      extra: { ...extra, backendHttp3: { value: this.backend === 'http3' ? 1 : 0, source: 'webtransport.backend' } },
    };
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearInterval(this.#statsTimer);
    try {
      this.#session.close({ closeCode: 0, reason: reason.slice(0, 100) });
    } catch {
      // already closed
    }
    this.#resolveClosed(reason);
    this.emit('close', reason);
  }

  #count(bytes: number): void {
    this.#bytesSent += bytes;
    this.#messagesSent++;
  }

  async #readControl(readable: ReadableStream<Uint8Array>, maxFrameBytes: number): Promise<void> {
    const reader = readable.getReader();
    const frames = new FrameReader(maxFrameBytes);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const frame of frames.push(value)) {
          this.#bytesReceived += frame.byteLength;
          this.#messagesReceived++;
          this.emit('message', frame, 'control');
        }
      }
      this.close('control stream ended');
    } catch (error) {
      this.close(error instanceof Error ? `control stream: ${error.message}` : 'control stream failed');
    }
  }
}
