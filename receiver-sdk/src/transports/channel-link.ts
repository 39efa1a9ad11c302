import type { FrameLink, LinkChannel, LinkEvents } from '../link.js';
import { TypedEmitter } from '../protocol/emitter.js';

/** The calls a link makes on one data channel, whatever API it comes from. */
export interface ChannelPort {
  /** Ready to take a message (a closed channel refuses). */
  writable(): boolean;
  /** Throws when the channel cannot take it (the link then closes). */
  write(bytes: Uint8Array): void;
  close(): void;
}

/**
 * A FrameLink over the three negotiated data channels, for the W3C dialer (browsers) and the
 * native one (Node) alike: sending by channel, closing everything once, the session's WHEP
 * DELETE. The dialers feed it messages and channel closes, and own the RTT reading.
 */
export abstract class ChannelLink extends TypedEmitter<LinkEvents> implements FrameLink {
  readonly #channels: Map<LinkChannel, ChannelPort>;
  #closed = false;
  /** Ends the signaling session (the WHEP DELETE), set once the dial knows it. */
  endSession: () => Promise<void> = () => Promise.resolve();

  constructor(channels: ReadonlyMap<LinkChannel, ChannelPort>) {
    super();
    this.#channels = new Map(channels);
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  abstract rttMs(): Promise<number | undefined>;

  /** Close the peer connection itself (after its channels). */
  protected abstract closePeer(): void;

  /** A message arrived on `channel` (ignored once closed). */
  protected received(bytes: Uint8Array, channel: LinkChannel): void {
    if (!this.#closed) this.emit('message', bytes, channel);
  }

  send(bytes: Uint8Array, channel: LinkChannel): boolean {
    const port = this.#channels.get(channel);
    if (this.#closed || !port?.writable()) return false;
    try {
      port.write(bytes);
      return true;
    } catch {
      this.close('send failed');
      return false;
    }
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    void this.endSession().catch(() => undefined);
    for (const port of this.#channels.values()) {
      try {
        port.close();
      } catch {
        // already closed
      }
    }
    try {
      this.closePeer();
    } catch {
      // already closed
    }
    this.emit('close', reason);
  }
}
