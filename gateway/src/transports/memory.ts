import { TypedEmitter } from '@mirrorstream/receiver';
import type { Channel, Transport, TransportEvents, TransportStats } from './transport.js';

/**
 * In-process transport pair: for embedding a receiver in the gateway's process and for
 * unit tests. Messages are delivered in order on a microtask, so a sender never
 * re-enters its own receiver synchronously. `blackhole` drops traffic silently (a hung
 * peer); `kill` closes both ends at once (a crashed peer).
 */
export class MemoryTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly kind = 'memory';
  #peer: MemoryTransport | undefined;
  #buffered = 0;
  #closed = false;
  #blackhole = false;
  /** Drop ratio for the unreliable channel only (reliable channels retransmit, so they never lose). */
  #unreliableLoss = 0;
  #random: () => number = Math.random;
  #resolveClosed!: (reason: string) => void;
  readonly closed: Promise<string>;
  #bytesSent = 0;
  #bytesReceived = 0;
  #messagesSent = 0;
  #messagesReceived = 0;

  constructor() {
    super();
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Connect two fresh transports to each other. */
  static pair(): [gatewaySide: MemoryTransport, receiverSide: MemoryTransport] {
    const a = new MemoryTransport();
    const b = new MemoryTransport();
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  get bufferedAmount(): number {
    return this.#buffered;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Drop everything sent in either direction from now on (true) or resume (false). */
  set blackhole(on: boolean) {
    this.#blackhole = on;
    if (this.#peer) this.#peer.#blackhole = on;
  }

  get blackhole(): boolean {
    return this.#blackhole;
  }

  /** Lose this share of `data-unreliable` messages in both directions (tests of loss scoring). */
  setUnreliableLoss(ratio: number, random: () => number = Math.random): void {
    for (const t of [this, this.#peer]) {
      if (!t) continue;
      t.#unreliableLoss = ratio;
      t.#random = random;
    }
  }

  send(bytes: Uint8Array, channel: Channel): boolean {
    if (this.#closed) return false;
    this.#bytesSent += bytes.byteLength;
    this.#messagesSent++;
    if (this.#blackhole) return true;
    if (channel === 'data-unreliable' && this.#unreliableLoss > 0 && this.#random() < this.#unreliableLoss) return true;
    const peer = this.#peer;
    this.#buffered += bytes.byteLength;
    queueMicrotask(() => {
      this.#buffered -= bytes.byteLength;
      if (this.#buffered === 0 && !this.#closed) this.emit('drain');
      if (!peer || peer.#closed || this.#blackhole) return;
      peer.#bytesReceived += bytes.byteLength;
      peer.#messagesReceived++;
      peer.emit('message', bytes, channel);
    });
    return true;
  }

  stats(): TransportStats {
    return {
      kind: this.kind,
      bytesSent: this.#bytesSent,
      bytesReceived: this.#bytesReceived,
      messagesSent: this.#messagesSent,
      messagesReceived: this.#messagesReceived,
    };
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#resolveClosed(reason);
    this.emit('close', reason);
    // the other end learns at once, like a clean transport shutdown
    const peer = this.#peer;
    if (peer && !peer.#closed) queueMicrotask(() => peer.close(`peer closed: ${reason}`));
  }

  /** Crash both ends: no goodbye frames, both see `close`. */
  kill(reason = 'killed'): void {
    const peer = this.#peer;
    this.close(reason);
    peer?.close(reason);
  }
}

