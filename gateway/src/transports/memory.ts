import { TypedEmitter, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Channel, Transport, TransportEvents, TransportStats } from './transport.js';

/**
 * In-process transport pair: for embedding a receiver in the gateway's process and for
 * unit tests. Messages are delivered in order on a microtask, so a sender never
 * re-enters its own receiver synchronously. `blackhole` drops traffic silently (a hung
 * peer); `paused` holds it and delivers it all on resume (a stopped process: SIGSTOP, then
 * SIGCONT); `kill` closes both ends at once (a crashed peer).
 */
export class MemoryTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly kind = 'memory';
  #peer: MemoryTransport | undefined;
  #buffered = 0;
  #closed = false;
  #blackhole = false;
  /** Held while paused, in order (this → peer). */
  #held: [Uint8Array, Channel][] | undefined;
  /** Drop ratio for the unreliable channel only (reliable channels retransmit, so they never lose). */
  #unreliableLoss = 0;
  #random: () => number = Math.random;
  /** Rate cap of this direction (this → peer): a bottleneck link for tests of rate policies. */
  #cap: { bytesPerSec: number; clock: Clock; queue: [Uint8Array, Channel][]; timer: TimerHandle | undefined; credit: number } | undefined;
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

  /** Hold everything sent in either direction (true); deliver what was held, in order, and go on (false). */
  set paused(on: boolean) {
    for (const t of [this, this.#peer]) {
      if (!t) continue;
      if (on) {
        t.#held ??= [];
        continue;
      }
      const held = t.#held ?? [];
      t.#held = undefined;
      for (const [bytes, channel] of held) {
        t.#buffered -= bytes.byteLength;
        t.#deliver(bytes, channel);
      }
      if (held.length > 0 && !t.#closed) queueMicrotask(() => t.emit('drain'));
    }
  }

  /** Lose this share of `data-unreliable` messages in both directions (tests of loss scoring). */
  setUnreliableLoss(ratio: number, random: () => number = Math.random): void {
    for (const t of [this, this.#peer]) {
      if (!t) continue;
      t.#unreliableLoss = ratio;
      t.#random = random;
    }
  }

  /**
   * Cap this direction at `bytesPerSec` (undefined lifts it). Messages queue (counted in
   * `bufferedAmount`) and leave every 10 ms of `clock` time as the budget allows.
   */
  setRateLimit(bytesPerSec: number | undefined, clock: Clock): void {
    if (bytesPerSec === undefined) {
      const cap = this.#cap;
      this.#cap = undefined;
      if (cap) {
        cap.clock.clearInterval(cap.timer);
        for (const [bytes, channel] of cap.queue) {
          this.#buffered -= bytes.byteLength;
          this.#deliver(bytes, channel);
        }
      }
      return;
    }
    if (this.#cap) this.#cap.bytesPerSec = bytesPerSec;
    else {
      const cap = { bytesPerSec, clock, queue: [] as [Uint8Array, Channel][], timer: undefined as TimerHandle | undefined, credit: 0 };
      cap.timer = clock.setInterval(() => {
        cap.credit = Math.min(cap.credit + cap.bytesPerSec / 100, cap.bytesPerSec);
        let sent = false;
        while (cap.queue.length > 0 && (cap.queue[0]?.[0].byteLength ?? 0) <= cap.credit) {
          const [bytes, channel] = cap.queue.shift() ?? [new Uint8Array(0), 'data' as Channel];
          cap.credit -= bytes.byteLength;
          this.#buffered -= bytes.byteLength;
          this.#deliver(bytes, channel);
          sent = true;
        }
        if (cap.queue.length === 0) cap.credit = 0;
        if (sent && !this.#closed) this.emit('drain');
      }, 10);
      this.#cap = cap;
    }
  }

  send(bytes: Uint8Array, channel: Channel): boolean {
    if (this.#closed) return false;
    this.#bytesSent += bytes.byteLength;
    this.#messagesSent++;
    if (this.#blackhole) return true;
    if (channel === 'data-unreliable' && this.#unreliableLoss > 0 && this.#random() < this.#unreliableLoss) return true;
    if (this.#held) {
      this.#held.push([bytes, channel]);
      this.#buffered += bytes.byteLength;
      return true;
    }
    if (this.#cap) {
      this.#cap.queue.push([bytes, channel]);
      this.#buffered += bytes.byteLength;
      return true;
    }
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

  #deliver(bytes: Uint8Array, channel: Channel): void {
    const peer = this.#peer;
    queueMicrotask(() => {
      if (!peer || peer.#closed || this.#blackhole) return;
      peer.#bytesReceived += bytes.byteLength;
      peer.#messagesReceived++;
      peer.emit('message', bytes, channel);
    });
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
    if (this.#cap) this.#cap.clock.clearInterval(this.#cap.timer);
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

