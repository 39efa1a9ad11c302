import { TypedEmitter, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Channel, Measurement, Transport, TransportEvents, TransportStats } from '../transport.js';
import { ChannelClosedError, type ChannelHandle } from './channel.js';

/** Engine-specific telemetry, read when `stats()` is called. */
export interface PeerTelemetry {
  /** Synchronous snapshot of what the engine measures (RTT, cwnd, retransmissions...). */
  snapshot(): { rttMs?: Measurement; lossRate?: Measurement; extra: Record<string, Measurement> };
  /** The loss share the engine measured (werift: SCTP retransmissions), alone. */
  lossRate?(): Measurement | undefined;
  /** Refresh anything that needs an async call (getStats); called periodically. */
  refresh?(): Promise<void>;
  close(): void;
}

export interface DataChannelTransportOptions {
  engine: string;
  channels: Record<Channel, ChannelHandle>;
  telemetry: PeerTelemetry;
  /** The transport emits `drain` when the data channel's buffer falls below this. */
  lowWaterBytes: number;
  /** Suggested high-water mark for senders (werift's throughput collapses with deep buffers). */
  highWaterBytes: number;
  /** Telemetry refresh and the drain watch run on it. */
  clock: Clock;
}

/**
 * A WebRTC peer connection as a Transport: three negotiated data channels (control,
 * data, data-unreliable). Closing any channel closes the transport.
 */
export class DataChannelTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly kind = 'webrtc';
  readonly engine: string;
  readonly highWaterBytes: number;
  readonly closed: Promise<string>;
  readonly #channels: Record<Channel, ChannelHandle>;
  readonly #telemetry: PeerTelemetry;
  #resolveClosed!: (reason: string) => void;
  #closed = false;
  #bytesSent = 0;
  #bytesReceived = 0;
  #messagesSent = 0;
  #messagesReceived = 0;
  readonly #clock: Clock;
  readonly #refresh: TimerHandle | undefined;
  readonly #lowWaterBytes: number;
  #drainPoll: TimerHandle | undefined;

  constructor(opts: DataChannelTransportOptions) {
    super();
    this.engine = opts.engine;
    this.highWaterBytes = opts.highWaterBytes;
    this.#channels = opts.channels;
    this.#lowWaterBytes = opts.lowWaterBytes;
    this.#telemetry = opts.telemetry;
    this.#clock = opts.clock;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    for (const [name, ch] of Object.entries(opts.channels) as [Channel, ChannelHandle][]) {
      ch.onMessage((bytes) => {
        this.#bytesReceived += bytes.byteLength;
        this.#messagesReceived++;
        this.emit('message', bytes, name);
      });
      ch.onClose(() => this.close(`${name} channel closed`));
    }
    for (const name of ['data', 'data-unreliable', 'control'] as const) {
      const ch = opts.channels[name];
      ch.setLowThreshold?.(opts.lowWaterBytes);
      ch.onLow?.(() => this.emit('drain'));
    }
    if (opts.telemetry.refresh) {
      const refresh = opts.telemetry.refresh.bind(opts.telemetry);
      this.#refresh = opts.clock.setInterval(() => void refresh().catch(() => undefined), 1_000);
    }
  }

  /**
   * Data and control buffers (each read is a native call with node-datachannel, and the
   * pump asks once per frame, so the tiny unreliable-channel buffer is left out). Seeing
   * it at the high-water mark starts the drain watch.
   */
  get bufferedAmount(): number {
    const total = this.#channels.data.bufferedAmount + this.#channels.control.bufferedAmount;
    if (total >= this.highWaterBytes && this.#drainPoll === undefined && !this.#closed) this.#watchDrain();
    return total;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  send(bytes: Uint8Array, channel: Channel): boolean {
    const ch = this.#channels[channel];
    if (this.#closed || !ch.isOpen) return false;
    try {
      ch.send(bytes);
    } catch (error) {
      if (error instanceof ChannelClosedError) {
        this.close(`${channel} channel closed`);
        return false;
      }
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
      this.close('send failed');
      return false;
    }
    this.#bytesSent += bytes.byteLength;
    this.#messagesSent++;
    return true;
  }

  lossRate(): Measurement | undefined {
    return this.#closed ? undefined : this.#telemetry.lossRate?.();
  }

  stats(): TransportStats {
    const t = this.#telemetry.snapshot();
    return {
      kind: this.kind,
      ...(t.rttMs ? { rttMs: t.rttMs } : {}),
      ...(t.lossRate ? { lossRate: t.lossRate } : {}),
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      messagesSent: this.#messagesSent,
      messagesReceived: this.#messagesReceived,
      extra: { ...t.extra, bufferedAmount: { value: this.bufferedAmount, source: `${this.engine}.datachannel.bufferedAmount` } },
    };
  }

  /**
   * Engines fire their low-water event only when the byte count crosses the threshold,
   * which queued-message accounting (werift) may never do; a short poll while the
   * buffer is full makes `drain` certain.
   */
  #watchDrain(): void {
    this.#drainPoll = this.#clock.setInterval(() => {
      if (this.#closed || this.bufferedAmount <= this.#lowWaterBytes) {
        this.#clock.clearInterval(this.#drainPoll);
        this.#drainPoll = undefined;
        if (!this.#closed) this.emit('drain');
      }
    }, 2);
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.clearInterval(this.#refresh);
    this.#clock.clearInterval(this.#drainPoll);
    for (const ch of Object.values(this.#channels)) {
      try {
        ch.close();
      } catch {
        // already closed by the engine
      }
    }
    try {
      this.#telemetry.close();
    } catch {
      // the peer connection may already be gone
    }
    this.#resolveClosed(reason);
    this.emit('close', reason);
  }
}
