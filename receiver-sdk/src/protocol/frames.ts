/**
 * The mirrorstream wire format, shared by the gateway and the receiver SDK.
 *
 * A frame is one msgpack array whose first element is the integer frame type. Only
 * standard msgpack is written and accepted (no extension types, no msgpackr records),
 * so a receiver in any language, or a browser with any msgpack library, can speak it.
 * `decodeFrame` (decode.ts) is the trust boundary: it never throws, and a frame it
 * returns has passed every check, so callers do not re-validate.
 *
 * Version 2 (this one): stream epochs. ROLE names the epoch of its stream's seq space,
 * HELLO names the epoch of each resume position, and RESET tells a receiver that its
 * position belongs to an epoch that is gone. HELLO no longer carries a token (signaling
 * authenticates the connection before HELLO).
 */
import { Packr } from 'msgpackr';
import { ProtocolError } from './errors.js';

/** Also the limit a gateway advertises in WELCOME unless configured otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** The largest frame limit a gateway may advertise (its `maxFrameBytes` config caps here too). */
export const MAX_FRAME_BYTES_LIMIT = 64 * 1024 * 1024;

/** Endpoint, stream ids and epochs: safe in URLs, log lines and metric labels without escaping. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const MAX_ID_LENGTH = 128;
export const MAX_STRING_LENGTH = 4096;
/** Caps the work a single HELLO can ask for. */
export const MAX_RESUME_ENTRIES = 10_000;

export function isValidId(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= MAX_ID_LENGTH && ID_PATTERN.test(s);
}

/**
 * The logical channels of a connection: `control` (reliable, ordered: handshake, acks,
 * heartbeats, ERROR), `data` (DATA with ROLE, GAP, RESET and END ordered among them) and
 * `data-unreliable` (streams created unreliable, and the gateway's loss probes).
 */
export type Channel = 'control' | 'data' | 'data-unreliable';

export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  DATA: 3,
  ACK: 4,
  HEARTBEAT: 5,
  HEARTBEAT_ACK: 6,
  RECEIVER_REPORT: 7,
  ROLE: 8,
  GAP: 9,
  END: 10,
  ERROR: 11,
  RESET: 12,
  GOAWAY: 13,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
export type FrameTypeName = keyof typeof FrameType;
export const MAX_FRAME_TYPE = 13;

/** For log lines: numbers on the wire, names for humans. */
export const FRAME_TYPE_NAMES: Readonly<Record<FrameType, FrameTypeName>> = Object.freeze({
  1: 'HELLO',
  2: 'WELCOME',
  3: 'DATA',
  4: 'ACK',
  5: 'HEARTBEAT',
  6: 'HEARTBEAT_ACK',
  7: 'RECEIVER_REPORT',
  8: 'ROLE',
  9: 'GAP',
  10: 'END',
  11: 'ERROR',
  12: 'RESET',
  13: 'GOAWAY',
});

/**
 * Receiver → gateway, first frame. `resume` maps streamId to the last seq delivered to
 * the app; `epochs` names the epoch each of those positions belongs to. A position
 * without an epoch belongs to no epoch the gateway can verify, so it is never resumed.
 */
export interface HelloFrame {
  type: typeof FrameType.HELLO;
  version: number;
  endpointId: string;
  /** The receiver SDK's semver; the gateway admits the SDK majors it speaks. */
  sdkVersion: string;
  resume: Record<string, number>;
  epochs: Record<string, string>;
  /** Optional: the transports this receiver can use, in preference order (it may switch on request). */
  transports?: string[];
}

export interface WelcomeFrame {
  type: typeof FrameType.WELCOME;
  version: number;
  sessionId: string;
  heartbeatIntervalMs: number;
  /** The largest frame the gateway sends on this connection. */
  maxFrameBytes: number;
}

/**
 * One chunk. Decoded frames always carry the `key` and `layer` properties (undefined when
 * absent) so every DATA object has the same shape on the hot path; test with `!== undefined`.
 * A decoded `payload` is a view into the received bytes, not a copy (a Buffer in Node when
 * the input was one): copy it before the transport reuses its receive buffer.
 */
export interface DataFrame {
  type: typeof FrameType.DATA;
  streamId: string;
  seq: number;
  timestamp: number;
  payload: Uint8Array;
  key?: string;
  layer?: number;
}

/** Cumulative: everything up to and including `seq` was delivered; 0 means nothing yet. */
export interface AckFrame {
  type: typeof FrameType.ACK;
  streamId: string;
  seq: number;
}

export interface HeartbeatFrame {
  type: typeof FrameType.HEARTBEAT;
  nonce: number;
  sentAt: number;
  /**
   * Optional, gateway → receiver on the control channel: until its next control HEARTBEAT the
   * gateway sends this connection a HEARTBEAT (probe or heartbeat, either channel) at least
   * every `cadenceMs`, so the receiver may judge it silent sooner (SDK: 4 × this, at least
   * 300 ms). A gateway sends it only to SDKs from HEARTBEAT_CADENCE_SINCE on (version.ts):
   * older ones reject a 4-element HEARTBEAT.
   */
  cadenceMs?: number;
  /**
   * Optional, told with `cadenceMs` only: until its next control HEARTBEAT the gateway wants a
   * RECEIVER_REPORT about every `reportMs` (slower where no decision waits on this endpoint).
   * Sent only to SDKs from REPORT_CADENCE_SINCE on (version.ts): older ones reject a 5-element
   * HEARTBEAT.
   */
  reportMs?: number;
}

/** Echoes the heartbeat's `sentAt`, so the sender measures RTT on its own clock. */
export interface HeartbeatAckFrame {
  type: typeof FrameType.HEARTBEAT_ACK;
  nonce: number;
  sentAt: number;
}

export interface ReceiverReportFrame {
  type: typeof FrameType.RECEIVER_REPORT;
  streamId: string;
  receivedChunks: number;
  receivedBytes: number;
  rateBytesPerSec: number;
  /** null until the receiver has a measurement. */
  rttMs: number | null;
  gapCount: number;
}

export type ReceiverRole = 'active' | 'standby';

/** The endpoint's role on a stream, and the epoch of the stream's seq space. */
export interface RoleFrame {
  type: typeof FrameType.ROLE;
  streamId: string;
  role: ReceiverRole;
  fromSeq: number;
  epoch: string;
}

/** Seqs `from..to` (inclusive) will never be delivered. */
export interface GapFrame {
  type: typeof FrameType.GAP;
  streamId: string;
  from: number;
  to: number;
  reason: string;
}

/**
 * END's reason when only this endpoint left the stream's list (the stream goes on, and the
 * endpoint may be added back); any other reason means the stream itself ended.
 */
export const END_REASON_REMOVED = 'removed';

export interface EndFrame {
  type: typeof FrameType.END;
  streamId: string;
  reason: string;
}

/** `code` is a string, not ErrorCode: a newer peer may send codes this build does not know. */
export interface ErrorFrame {
  type: typeof FrameType.ERROR;
  code: string;
  message: string;
}

/**
 * The receiver's position on a stream belongs to `previousEpoch` (null: it named none),
 * but the stream is now in `epoch`: forget the position; delivery starts over in `epoch`.
 */
export interface ResetFrame {
  type: typeof FrameType.RESET;
  streamId: string;
  epoch: string;
  previousEpoch: string | null;
}

/**
 * Gateway → receiver: this gateway is going away (a planned restart or scale-in). The receiver
 * dials the next gateway at once and resumes there; what it has acked is stored, so nothing
 * is lost. An SDK that predates GOAWAY rejects the frame type and reconnects all the same.
 */
export interface GoawayFrame {
  type: typeof FrameType.GOAWAY;
  reason: string;
}

export type Frame =
  | HelloFrame
  | WelcomeFrame
  | DataFrame
  | AckFrame
  | HeartbeatFrame
  | HeartbeatAckFrame
  | ReceiverReportFrame
  | RoleFrame
  | GapFrame
  | EndFrame
  | ErrorFrame
  | ResetFrame
  | GoawayFrame;

// useRecords: false keeps the output plain msgpack. encodeUndefinedAsNil: a JS caller that
// leaves a field undefined gets a nil the peer rejects by name, not msgpackr's ext 0.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

/**
 * Trusts its input: frames are built by our own code, and checking every field again on
 * the send path would cost the hot path for nothing. The peer's decodeFrame is the check.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  switch (frame.type) {
    case FrameType.DATA:
      return packr.pack([
        FrameType.DATA,
        frame.streamId,
        frame.seq,
        frame.timestamp,
        frame.payload,
        frame.key ?? null,
        frame.layer ?? null,
      ]);
    case FrameType.ACK:
      return packr.pack([FrameType.ACK, frame.streamId, frame.seq]);
    case FrameType.HEARTBEAT:
      if (frame.cadenceMs === undefined) return packr.pack([frame.type, frame.nonce, frame.sentAt]);
      return packr.pack(frame.reportMs === undefined ? [frame.type, frame.nonce, frame.sentAt, frame.cadenceMs] : [frame.type, frame.nonce, frame.sentAt, frame.cadenceMs, frame.reportMs]);
    case FrameType.HEARTBEAT_ACK:
      return packr.pack([frame.type, frame.nonce, frame.sentAt]);
    case FrameType.HELLO: {
      const fields = [FrameType.HELLO, frame.version, frame.endpointId, frame.sdkVersion, frame.resume, frame.epochs];
      return packr.pack(frame.transports === undefined ? fields : [...fields, frame.transports]);
    }
    case FrameType.WELCOME:
      return packr.pack([FrameType.WELCOME, frame.version, frame.sessionId, frame.heartbeatIntervalMs, frame.maxFrameBytes]);
    case FrameType.RECEIVER_REPORT:
      return packr.pack([
        FrameType.RECEIVER_REPORT,
        frame.streamId,
        frame.receivedChunks,
        frame.receivedBytes,
        frame.rateBytesPerSec,
        frame.rttMs ?? null,
        frame.gapCount,
      ]);
    case FrameType.ROLE:
      return packr.pack([FrameType.ROLE, frame.streamId, frame.role, frame.fromSeq, frame.epoch]);
    case FrameType.GAP:
      return packr.pack([FrameType.GAP, frame.streamId, frame.from, frame.to, frame.reason]);
    case FrameType.END:
      return packr.pack([FrameType.END, frame.streamId, frame.reason]);
    case FrameType.GOAWAY:
      return packr.pack([FrameType.GOAWAY, frame.reason]);
    case FrameType.ERROR:
      return packr.pack([FrameType.ERROR, frame.code, frame.message]);
    case FrameType.RESET:
      return packr.pack([FrameType.RESET, frame.streamId, frame.epoch, frame.previousEpoch]);
    default: {
      // Only reachable from untyped JS; sending garbage would just move the failure to the peer.
      const type: unknown = (frame as { type: unknown }).type;
      throw new ProtocolError('MS_FRAME_UNKNOWN_TYPE', `cannot encode frame type ${String(type)}`);
    }
  }
}
