/** The receiver's public types: its status, events, logger and options (ReceiverCore is the behaviour). */
import type { Chunk, EpochReset, Gap, RoleChange } from './inbound.js';
import type { Dialer, ReconnectPolicy } from './link.js';
import type { Clock } from './protocol/clock.js';
import type { MirrorstreamError } from './protocol/errors.js';

export type ReceiverStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

export type ReceiverEvents = {
  chunk: [chunk: Chunk];
  role: [role: RoleChange];
  gap: [gap: Gap];
  /** The stream's epoch changed: the old position was forgotten, delivery starts over. */
  reset: [reset: EpochReset];
  status: [status: ReceiverStatus, detail: string];
  end: [end: { streamId: string; reason: string }];
  /** Protocol and connection errors, and MS_LISTENER_ERROR when an application listener threw. */
  error: [error: MirrorstreamError];
};

/** Where the SDK reports what it cannot report as an `error` event (it is silent by default). */
export interface ReceiverLogger {
  warn(message: string, detail?: unknown): void;
}

export interface ReceiverCoreOptions {
  endpointId: string;
  /** Opens a link to the gateway; the transport-specific part. */
  dial: Dialer;
  clock?: Clock;
  reconnect?: ReconnectPolicy;
  /** Send a cumulative ACK after this many delivered chunks... */
  ackEveryChunks?: number;
  /** ...or this long after the first unacked one, whichever comes first. */
  ackDelayMs?: number;
  /**
   * Give up on a silent gateway after this long. Default: 4 × the cadence its control
   * HEARTBEATs promise, at least 300 ms, at most 4 × WELCOME's heartbeat interval (at least 1 s).
   */
  gatewayTimeoutMs?: number;
  /** Out-of-order chunks held per stream before the hole is declared a gap. */
  reorderLimit?: number;
  /**
   * How often to send RECEIVER_REPORT per stream at most (default 1 000 ms; 0 disables). A
   * gateway may ask for them less often (every 5 s by default where no failover decision waits
   * on this endpoint): the slower of the two holds.
   */
  reportIntervalMs?: number;
  /** Transport names this receiver can dial, in preference order (told to the gateway in HELLO). */
  transports?: readonly string[];
  /**
   * Largest frame this receiver accepts. Until WELCOME the protocol default (1 MiB) applies;
   * then the gateway's advertised limit, never above this cap when it is set.
   */
  maxFrameBytes?: number;
  /**
   * Error codes after which the receiver stops for good instead of reconnecting. Default:
   * MS_UNAUTHORIZED, MS_PROTOCOL_VERSION, MS_TRANSPORT_UNAVAILABLE. A listening receiver has
   * none: one gateway's error ends only that gateway's connection.
   */
  fatalCodes?: readonly string[];
  /** Gets errors thrown by `error` listeners, and listener errors nobody listens for. */
  logger?: ReceiverLogger;
}
