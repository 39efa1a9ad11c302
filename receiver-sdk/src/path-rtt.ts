import type { FrameLink } from './link.js';
import type { Clock } from './protocol/clock.js';
import { encodeFrame, FrameType } from './protocol/frames.js';

/** How often the transport's own RTT is read (getStats, a costly call); reports in between carry the last reading. */
const TRANSPORT_RTT_EVERY_MS = 5_000;

/**
 * The RTT this receiver reports for its current link: the transport's view where it has one
 * (browsers: candidate-pair currentRoundTripTime; node-datachannel: the SCTP association's),
 * else the echo of a heartbeat of our own.
 */
export class PathRtt {
  readonly #clock: Clock;
  #rtt: { value: number; source: 'receiver.transport' | 'receiver.heartbeat' } | undefined;
  /** When the transport's RTT was last read (a new link reads it at its first report). */
  #readAt = Number.NEGATIVE_INFINITY;
  #nonce = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get ms(): number | null {
    return this.#rtt?.value ?? null;
  }

  /** A new link: an RTT is the path's, the new one measures its own. */
  reset(): void {
    this.#rtt = undefined;
    this.#readAt = Number.NEGATIVE_INFINITY;
  }

  /** Our own heartbeat came back. */
  echoed(sentAt: number): void {
    if (this.#rtt?.source !== 'receiver.transport') this.#rtt = { value: Math.max(0, this.#clock.now() - sentAt), source: 'receiver.heartbeat' };
  }

  /** Before a report: read the transport's RTT if due, or send our own heartbeat where it has none. False if `link` stopped being current meanwhile. */
  async refresh(link: FrameLink, isCurrent: () => boolean): Promise<boolean> {
    if (this.#rtt?.source === 'receiver.transport' && this.#clock.now() - this.#readAt < TRANSPORT_RTT_EVERY_MS) return true;
    const transportRtt = link.rttMs ? await link.rttMs() : undefined;
    if (!isCurrent()) return false;
    if (transportRtt !== undefined) {
      this.#rtt = { value: transportRtt, source: 'receiver.transport' };
      this.#readAt = this.#clock.now();
    }
    // its echo feeds the next report
    else void link.send(encodeFrame({ type: FrameType.HEARTBEAT, nonce: ++this.#nonce, sentAt: this.#clock.now() }), 'control');
    return true;
  }
}
