import type { Channel, TypedEmitter } from '@mirrorstream/receiver/protocol';

/**
 * The one interface between the gateway and a transport (memory, WebRTC, WebTransport).
 * The gateway sees bytes, a buffered amount and events, never a socket.
 * `data-unreliable` carries streams created with `reliability: "unreliable"` (no retransmission).
 */
export type { Channel };

/** A measured number and where it came from (e.g. `werift.sctp.srtt`, `gateway.heartbeat`). */
export interface Measurement {
  readonly value: number;
  readonly source: string;
}

/**
 * What the transport itself measures. The delivery rate is not here: the gateway measures
 * it per stream from acks (`delivered_bytes_per_sec`), the same way on every transport.
 */
export interface TransportStats {
  readonly kind: string;
  readonly rttMs?: Measurement;
  readonly lossRate?: Measurement;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly messagesSent: number;
  readonly messagesReceived: number;
  /** Whatever else the transport really measures (cwnd, rto, flight size...). */
  readonly extra?: Readonly<Record<string, Measurement>>;
}

export type TransportEvents = {
  message: [bytes: Uint8Array, channel: Channel];
  /** `bufferedAmount` fell below the low-water mark: sending may resume. */
  drain: [];
  close: [reason: string];
  error: [error: Error];
};

export interface Transport extends Pick<TypedEmitter<TransportEvents>, 'on' | 'off' | 'once'> {
  readonly kind: string;
  /** Bytes accepted by `send` but not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Buffer depth above which senders should wait for `drain` (when the transport knows better than the config). */
  readonly highWaterBytes?: number;
  readonly isClosed: boolean;
  /** Resolves with the close reason once the transport is closed, whoever closed it. */
  readonly closed: Promise<string>;
  /** Queue one message; returns false (and drops it) when the transport is closed. */
  send(bytes: Uint8Array, channel: Channel): boolean;
  stats(): TransportStats;
  /**
   * The transport's own loss measurement, where it has one, without the rest of `stats()`
   * (each path assessment reads it; node-datachannel's stats are native calls).
   */
  lossRate?(): Measurement | undefined;
  /** Idempotent. */
  close(reason: string): void;
}
