/**
 * What the receiver needs from a transport: message in, message out, close. WebRTC,
 * WebTransport and the in-memory pair all provide it.
 */
import type { Channel } from './protocol/frames.js';
import { MirrorstreamError } from './protocol/errors.js';

/** The connection's logical channels (the wire protocol's `Channel`). */
export type LinkChannel = Channel;

export type LinkEvents = {
  message: [bytes: Uint8Array, channel: LinkChannel];
  close: [reason: string];
};

export interface FrameLink {
  readonly isClosed: boolean;
  /**
   * True when the bytes are on their way, false when the link cannot take them. A link whose
   * transport says when a write is done (a WebTransport stream) answers with a promise that
   * settles then: an ACK counts as sent only once it is.
   */
  send(bytes: Uint8Array, channel: LinkChannel): boolean | Promise<boolean>;
  close(reason: string): void;
  /** The transport's own RTT view (browsers: candidate-pair currentRoundTripTime), if it has one. */
  rttMs?(): Promise<number | undefined>;
  /** The gateway's WELCOME named its frame limit: links that reassemble frames from a byte stream adopt it. */
  setMaxFrameBytes?(bytes: number): void;
  on<K extends keyof LinkEvents>(event: K, listener: (...args: LinkEvents[K]) => void): unknown;
  off<K extends keyof LinkEvents>(event: K, listener: (...args: LinkEvents[K]) => void): unknown;
}

/** What the receiver wants from the next dial. */
export interface DialHint {
  /** The current gateway said GOAWAY: start with another gateway URL (the same one when it has only one: a load balancer picks another instance). */
  nextGateway?: boolean;
  /** The current gateway went silent (its link is still open): start with another gateway URL, or with only one, its next transport. */
  gatewaySilent?: boolean;
}

/** Opens a new link to the gateway (one per connection attempt). */
export type Dialer = (hint?: DialHint) => Promise<FrameLink>;

/** Decides the wait before the next reconnect attempt; `null` gives up. */
export interface ReconnectPolicy {
  nextRetryDelayMs(ctx: { attempt: number; lastError: unknown }): number | null;
}

/**
 * Exponential backoff with full jitter, capped; never gives up. A gateway that said how long to
 * wait (Retry-After on MS_OVERLOADED, MS_TOO_MANY_SESSIONS, a 503) is waited for that long plus
 * up to half again at random: the refused do not all come back in the same second.
 */
export class ExponentialBackoff implements ReconnectPolicy {
  constructor(
    readonly initialMs = 100,
    readonly maxMs = 5_000,
    readonly random: () => number = Math.random,
  ) {}

  nextRetryDelayMs({ attempt, lastError }: { attempt: number; lastError?: unknown }): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(attempt, 20));
    const backoff = Math.round(this.initialMs / 2 + this.random() * (ceiling - this.initialMs / 2));
    const asked = lastError instanceof MirrorstreamError ? lastError.retryAfterMs : undefined;
    return asked === undefined ? backoff : Math.max(backoff, Math.round(asked * (1 + this.random() / 2)));
  }
}
