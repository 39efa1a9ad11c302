/**
 * The mirrorstream wire format, shared by the gateway and the receiver SDK.
 *
 * A frame is one msgpack array whose first element is the integer frame type. Only
 * standard msgpack is written and accepted (no extension types, no msgpackr records),
 * so a receiver in any language, or a browser with any msgpack library, can speak it.
 * `decodeFrame` is the trust boundary: it never throws, and a frame it returns has
 * passed every check below, so callers do not re-validate.
 */
import { Packr, Unpackr } from 'msgpackr';
import { ProtocolError } from './errors.js';
import type { ErrorCode } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Also the limit a gateway advertises in WELCOME unless configured otherwise. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Endpoint and stream ids: safe in URLs, log lines and metric labels without escaping. */
export const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
export const MAX_ID_LENGTH = 128;
export const MAX_STRING_LENGTH = 4096;
/** Tokens may be JWTs with many claims, so they get more room than other strings. */
export const MAX_TOKEN_LENGTH = 8192;
/** Caps the work a single HELLO can ask for. */
export const MAX_RESUME_ENTRIES = 10_000;

export function isValidId(s: unknown): s is string {
  return typeof s === 'string' && s.length >= 1 && s.length <= MAX_ID_LENGTH && ID_PATTERN.test(s);
}

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
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
export type FrameTypeName = keyof typeof FrameType;

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
});

/** Receiver → gateway, first frame. `resume` maps streamId to the last seq delivered to the app. */
export interface HelloFrame {
  type: typeof FrameType.HELLO;
  version: number;
  endpointId: string;
  token: string;
  sdkVersion: string;
  resume: Record<string, number>;
  /** Optional: the transports this receiver can use, in preference order (it may switch on request). */
  transports?: string[];
}

export interface WelcomeFrame {
  type: typeof FrameType.WELCOME;
  version: number;
  sessionId: string;
  heartbeatIntervalMs: number;
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

export interface RoleFrame {
  type: typeof FrameType.ROLE;
  streamId: string;
  role: ReceiverRole;
  fromSeq: number;
}

/** Seqs `from..to` (inclusive) will never be delivered. */
export interface GapFrame {
  type: typeof FrameType.GAP;
  streamId: string;
  from: number;
  to: number;
  reason: string;
}

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
  | ErrorFrame;

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: ProtocolError };

// useRecords: false keeps the output plain msgpack. encodeUndefinedAsNil: a JS caller that
// leaves a field undefined gets a nil the peer rejects by name, not msgpackr's ext 0.
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

// The pre-scan in decodeFrame has already rejected extensions (which include msgpackr's
// record, bundled-string and structured-clone ones, enabled on every Unpackr), so these
// options only decide representation. Maps come back as Map so a `__proto__` key survives
// (mapsAsObjects renames it to `__proto_`); int64 comes back as number and is then
// rejected if it is not a safe integer.
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  int64AsType: 'number',
  structuredClone: false,
});

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
    case FrameType.HEARTBEAT_ACK:
      return packr.pack([frame.type, frame.nonce, frame.sentAt]);
    case FrameType.HELLO:
      return packr.pack(
        frame.transports === undefined
          ? [FrameType.HELLO, frame.version, frame.endpointId, frame.token, frame.sdkVersion, frame.resume]
          : [FrameType.HELLO, frame.version, frame.endpointId, frame.token, frame.sdkVersion, frame.resume, frame.transports],
      );
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
      return packr.pack([FrameType.ROLE, frame.streamId, frame.role, frame.fromSeq]);
    case FrameType.GAP:
      return packr.pack([FrameType.GAP, frame.streamId, frame.from, frame.to, frame.reason]);
    case FrameType.END:
      return packr.pack([FrameType.END, frame.streamId, frame.reason]);
    case FrameType.ERROR:
      return packr.pack([FrameType.ERROR, frame.code, frame.message]);
    default: {
      // Only reachable from untyped JS; sending garbage would just move the failure to the peer.
      const type: unknown = (frame as { type: unknown }).type;
      throw new ProtocolError('MS_FRAME_UNKNOWN_TYPE', `cannot encode frame type ${String(type)}`);
    }
  }
}

// Allowed array lengths per frame type, indexed by type; DATA may omit trailing key/layer.
const MIN_ARITY = [0, 6, 5, 5, 3, 3, 3, 7, 4, 5, 3, 3] as const;
const MAX_ARITY = [0, 7, 5, 7, 3, 3, 3, 7, 4, 5, 3, 3] as const;

function fail(code: ErrorCode, message: string): DecodeResult {
  return { ok: false, error: new ProtocolError(code, message) };
}

/**
 * Never throws: whatever a peer sends becomes `{ ok: false, error }` with a stable code, so
 * a connection can answer with ERROR and close instead of crashing.
 *
 * - MS_FRAME_TOO_LARGE: more than `maxFrameBytes` (checked before any parsing).
 * - MS_FRAME_MALFORMED: not exactly one complete msgpack value (truncated, trailing bytes,
 *   reserved byte 0xc1), not an array, type not an unsigned integer, or wrong array length.
 * - MS_FRAME_UNKNOWN_TYPE: an integer type this version does not know (checked before the
 *   rest of the frame, so a newer peer is told exactly that).
 * - MS_FRAME_INVALID_FIELD: a field of the wrong kind or out of range, an extension type
 *   anywhere, a container nested deeper than HELLO's resume map, or a non-string map key.
 */
export function decodeFrame(bytes: Uint8Array, maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES): DecodeResult {
  if (!(bytes instanceof Uint8Array)) return fail('MS_FRAME_MALFORMED', 'frame is not binary');
  const end = bytes.byteLength;
  if (end > maxFrameBytes) return fail('MS_FRAME_TOO_LARGE', `frame of ${end} bytes exceeds the limit of ${maxFrameBytes}`);
  try {
    if (end === 0) return fail('MS_FRAME_MALFORMED', 'empty frame');
    let p = readToken(bytes, 0, end);
    if (p < 0 || tokKind !== K_ARRAY) return fail('MS_FRAME_MALFORMED', 'frame is not a msgpack array');
    const arity = tokCount;
    if (arity === 0) return fail('MS_FRAME_MALFORMED', 'frame array is empty');
    const type = peekType(bytes, p, end);
    if (type === TYPE_NOT_UINT) return fail('MS_FRAME_MALFORMED', 'frame type is not an unsigned integer');
    if (type < 1 || type > 11) return fail('MS_FRAME_UNKNOWN_TYPE', `unknown frame type ${type === TYPE_TOO_BIG ? '(large)' : type}`);
    if (arity < MIN_ARITY[type]! || arity > MAX_ARITY[type]!) {
      return fail('MS_FRAME_MALFORMED', `${FRAME_TYPE_NAMES[type as FrameType]} frame has ${arity} elements`);
    }
    p = scanElements(bytes, p, end, arity);
    if (p === SCAN_INVALID) return fail('MS_FRAME_INVALID_FIELD', 'frame contains an extension type, a nested container or a non-string map key');
    if (p < 0) return fail('MS_FRAME_MALFORMED', 'frame is truncated or not valid msgpack');
    if (p !== end) return fail('MS_FRAME_MALFORMED', `${end - p} trailing bytes after the frame`);

    const a: unknown = unpackr.unpack(bytes);
    // The scan proved this; a msgpackr change that broke it must not get past here.
    if (!Array.isArray(a) || a.length !== arity) return fail('MS_FRAME_MALFORMED', 'frame is not a msgpack array');
    const frame = validate(type as FrameType, a);
    if (typeof frame === 'string') return fail('MS_FRAME_INVALID_FIELD', frame);
    return { ok: true, frame };
  } catch {
    // The scan leaves nothing that should make msgpackr throw; this is the backstop.
    return fail('MS_FRAME_MALFORMED', 'frame is not valid msgpack');
  }
}

// ---------------------------------------------------------------------------------------
// Pre-scan. msgpackr's Unpackr always honours its own extensions (records redefine fixints
// 0x40-0x7f, bundled strings, structured-clone references, typed arrays, Dates) and
// recurses on nesting, and on trailing bytes it builds a JSON preview of the whole value
// for its error message. Walking the token headers first (no allocation, a dozen tokens
// for DATA, bodies skipped by length) lets only plain msgpack reach it, exactly one value,
// at most two levels deep.

const K_SCALAR = 0;
const K_STR = 1;
const K_ARRAY = 2;
const K_MAP = 3;
const K_EXT = 4;
const K_RESERVED = 5;

// Second and third results of readToken; module state so the hot path allocates nothing.
let tokKind = K_SCALAR;
let tokCount = 0;

const SCAN_MALFORMED = -1;
const SCAN_INVALID = -2;

function u16(b: Uint8Array, p: number): number {
  return (b[p]! << 8) | b[p + 1]!;
}

function u32(b: Uint8Array, p: number): number {
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!);
}

/** `n` more bytes from `p`, or -1 if the frame ends first. */
function skip(p: number, n: number, end: number): number {
  return n > end - p ? -1 : p + n;
}

/**
 * Reads the token at `p < end`: sets tokKind (and tokCount for containers) and returns the
 * offset after it, including a string's or binary's body but not a container's elements;
 * -1 if it runs past `end`. Extension and reserved tokens are not measured: they end the scan.
 */
function readToken(b: Uint8Array, p: number, end: number): number {
  const t = b[p]!;
  if (t < 0x80 || t >= 0xe0) {
    tokKind = K_SCALAR;
    return p + 1;
  }
  if (t < 0x90) {
    tokKind = K_MAP;
    tokCount = t & 0x0f;
    return p + 1;
  }
  if (t < 0xa0) {
    tokKind = K_ARRAY;
    tokCount = t & 0x0f;
    return p + 1;
  }
  if (t < 0xc0) {
    tokKind = K_STR;
    return skip(p + 1, t & 0x1f, end);
  }
  tokKind = K_SCALAR;
  switch (t) {
    case 0xc0: // nil
    case 0xc2: // false
    case 0xc3: // true
      return p + 1;
    case 0xcc: // uint 8
    case 0xd0: // int 8
      return skip(p, 2, end);
    case 0xcd:
    case 0xd1:
      return skip(p, 3, end);
    case 0xca: // float 32
    case 0xce:
    case 0xd2:
      return skip(p, 5, end);
    case 0xcb: // float 64
    case 0xcf:
    case 0xd3:
      return skip(p, 9, end);
    case 0xc4: // bin 8
      return p + 2 > end ? -1 : skip(p + 2, b[p + 1]!, end);
    case 0xc5:
      return p + 3 > end ? -1 : skip(p + 3, u16(b, p + 1), end);
    case 0xc6:
      return p + 5 > end ? -1 : skip(p + 5, u32(b, p + 1), end);
    case 0xd9: // str 8
      tokKind = K_STR;
      return p + 2 > end ? -1 : skip(p + 2, b[p + 1]!, end);
    case 0xda:
      tokKind = K_STR;
      return p + 3 > end ? -1 : skip(p + 3, u16(b, p + 1), end);
    case 0xdb:
      tokKind = K_STR;
      return p + 5 > end ? -1 : skip(p + 5, u32(b, p + 1), end);
    case 0xdc: // array 16
    case 0xde: // map 16
      if (p + 3 > end) return -1;
      tokKind = t === 0xdc ? K_ARRAY : K_MAP;
      tokCount = u16(b, p + 1);
      return p + 3;
    case 0xdd: // array 32
    case 0xdf: // map 32
      if (p + 5 > end) return -1;
      tokKind = t === 0xdd ? K_ARRAY : K_MAP;
      tokCount = u32(b, p + 1);
      return p + 5;
    case 0xc1: // never used
      tokKind = K_RESERVED;
      return p + 1;
    default: // 0xc7-0xc9, 0xd4-0xd8: ext
      tokKind = K_EXT;
      return p + 1;
  }
}

const TYPE_NOT_UINT = -1;
const TYPE_TOO_BIG = -2;

/** The frame type from its encoding: any unsigned integer form; other integers are unknown types. */
function peekType(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return TYPE_NOT_UINT;
  const t = b[p]!;
  if (t < 0x80) return t;
  if (t >= 0xe0) return TYPE_TOO_BIG; // negative fixint
  switch (t) {
    case 0xcc:
      return p + 2 > end ? TYPE_NOT_UINT : b[p + 1]!;
    case 0xcd:
      return p + 3 > end ? TYPE_NOT_UINT : u16(b, p + 1);
    case 0xce:
      return p + 5 > end ? TYPE_NOT_UINT : u32(b, p + 1);
    case 0xcf:
      if (p + 9 > end) return TYPE_NOT_UINT;
      return u32(b, p + 1) === 0 ? u32(b, p + 5) : TYPE_TOO_BIG;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3:
      return skip(p, t === 0xd0 ? 2 : t === 0xd1 ? 3 : t === 0xd2 ? 5 : 9, end) < 0 ? TYPE_NOT_UINT : TYPE_TOO_BIG;
    default:
      return TYPE_NOT_UINT;
  }
}

/**
 * Walks `count` elements from `p`: returns the offset after them, SCAN_MALFORMED, or
 * SCAN_INVALID. An element may be a container of scalars (HELLO's resume map); a map's keys
 * must be strings. Nested containers are capped at MAX_RESUME_ENTRIES so a small frame
 * cannot make the decoder build a huge map before the field check rejects it.
 */
function scanElements(b: Uint8Array, p: number, end: number, count: number): number {
  for (let i = 0; i < count; i++) {
    if (p >= end) return SCAN_MALFORMED;
    p = readToken(b, p, end);
    if (p < 0) return SCAN_MALFORMED;
    const kind = tokKind;
    if (kind === K_SCALAR || kind === K_STR) continue;
    if (kind === K_RESERVED) return SCAN_MALFORMED;
    if (kind === K_EXT || tokCount > MAX_RESUME_ENTRIES) return SCAN_INVALID;
    const isMap = kind === K_MAP;
    const items = isMap ? tokCount * 2 : tokCount;
    for (let j = 0; j < items; j++) {
      if (p >= end) return SCAN_MALFORMED;
      p = readToken(b, p, end);
      if (p < 0 || tokKind === K_RESERVED) return SCAN_MALFORMED;
      if (tokKind === K_STR) continue;
      if (tokKind !== K_SCALAR || (isMap && (j & 1) === 0)) return SCAN_INVALID;
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// Field checks. Each returns the frame or a string naming the bad field; strings are
// literals, so the success path allocates only the frame object.

/** Safe integer >= 0, or -1. `+ 0` turns -0 into 0 so a decoded frame re-encodes identically. */
function uint(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v + 0 : -1;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isString(v: unknown, max: number): v is string {
  return typeof v === 'string' && v.length <= max;
}

function validate(type: FrameType, a: unknown[]): Frame | string {
  switch (type) {
    case FrameType.DATA:
      return validateData(a);
    case FrameType.ACK: {
      const streamId = a[1];
      const seq = uint(a[2]);
      if (!isValidId(streamId)) return 'ACK.streamId is not a valid id';
      if (seq < 0) return 'ACK.seq must be an unsigned integer';
      return { type: FrameType.ACK, streamId, seq };
    }
    case FrameType.HEARTBEAT:
    case FrameType.HEARTBEAT_ACK: {
      const nonce = uint(a[1]);
      const sentAt = a[2];
      if (nonce < 0) return 'HEARTBEAT.nonce must be an unsigned integer';
      if (!isFiniteNumber(sentAt)) return 'HEARTBEAT.sentAt must be a finite number';
      return { type, nonce, sentAt: sentAt + 0 };
    }
    case FrameType.HELLO:
      return validateHello(a);
    case FrameType.WELCOME: {
      const version = uint(a[1]);
      const sessionId = a[2];
      const heartbeatIntervalMs = uint(a[3]);
      const maxFrameBytes = uint(a[4]);
      if (version < 0) return 'WELCOME.version must be an unsigned integer';
      if (!isString(sessionId, MAX_STRING_LENGTH)) return 'WELCOME.sessionId must be a string';
      if (heartbeatIntervalMs < 0) return 'WELCOME.heartbeatIntervalMs must be an unsigned integer';
      if (maxFrameBytes < 0) return 'WELCOME.maxFrameBytes must be an unsigned integer';
      return { type: FrameType.WELCOME, version, sessionId, heartbeatIntervalMs, maxFrameBytes };
    }
    case FrameType.RECEIVER_REPORT: {
      const streamId = a[1];
      const receivedChunks = uint(a[2]);
      const receivedBytes = uint(a[3]);
      const rate = a[4];
      const rtt = a[5];
      const gapCount = uint(a[6]);
      if (!isValidId(streamId)) return 'RECEIVER_REPORT.streamId is not a valid id';
      if (receivedChunks < 0) return 'RECEIVER_REPORT.receivedChunks must be an unsigned integer';
      if (receivedBytes < 0) return 'RECEIVER_REPORT.receivedBytes must be an unsigned integer';
      if (!isFiniteNumber(rate) || rate < 0) return 'RECEIVER_REPORT.rateBytesPerSec must be a finite number >= 0';
      if (rtt !== null && (!isFiniteNumber(rtt) || rtt < 0)) return 'RECEIVER_REPORT.rttMs must be null or a finite number >= 0';
      if (gapCount < 0) return 'RECEIVER_REPORT.gapCount must be an unsigned integer';
      return {
        type: FrameType.RECEIVER_REPORT,
        streamId,
        receivedChunks,
        receivedBytes,
        rateBytesPerSec: rate + 0,
        rttMs: rtt === null ? null : rtt + 0,
        gapCount,
      };
    }
    case FrameType.ROLE: {
      const streamId = a[1];
      const role = a[2];
      const fromSeq = uint(a[3]);
      if (!isValidId(streamId)) return 'ROLE.streamId is not a valid id';
      if (role !== 'active' && role !== 'standby') return "ROLE.role must be 'active' or 'standby'";
      if (fromSeq < 0) return 'ROLE.fromSeq must be an unsigned integer';
      return { type: FrameType.ROLE, streamId, role, fromSeq };
    }
    case FrameType.GAP: {
      const streamId = a[1];
      const from = uint(a[2]);
      const to = uint(a[3]);
      const reason = a[4];
      if (!isValidId(streamId)) return 'GAP.streamId is not a valid id';
      if (from < 1) return 'GAP.from must be an integer >= 1';
      if (to < from) return 'GAP.to must be an integer >= from';
      if (!isString(reason, MAX_STRING_LENGTH)) return 'GAP.reason must be a string';
      return { type: FrameType.GAP, streamId, from, to, reason };
    }
    case FrameType.END: {
      const streamId = a[1];
      const reason = a[2];
      if (!isValidId(streamId)) return 'END.streamId is not a valid id';
      if (!isString(reason, MAX_STRING_LENGTH)) return 'END.reason must be a string';
      return { type: FrameType.END, streamId, reason };
    }
    case FrameType.ERROR: {
      const code = a[1];
      const message = a[2];
      if (!isString(code, MAX_STRING_LENGTH)) return 'ERROR.code must be a string';
      if (!isString(message, MAX_STRING_LENGTH)) return 'ERROR.message must be a string';
      return { type: FrameType.ERROR, code, message };
    }
  }
}

function validateData(a: unknown[]): DataFrame | string {
  const streamId = a[1];
  const seq = uint(a[2]);
  const timestamp = a[3];
  const payload = a[4];
  if (!isValidId(streamId)) return 'DATA.streamId is not a valid id';
  if (seq < 1) return 'DATA.seq must be an integer >= 1';
  if (!isFiniteNumber(timestamp)) return 'DATA.timestamp must be a finite number';
  // The scan excluded extensions, so a Uint8Array here can only be a msgpack bin.
  if (!(payload instanceof Uint8Array)) return 'DATA.payload must be binary';
  // A short array and nil both mean "none".
  let key: string | undefined;
  const rawKey = a[5];
  if (rawKey !== undefined && rawKey !== null) {
    if (!isString(rawKey, MAX_STRING_LENGTH)) return 'DATA.key must be nil or a string';
    key = rawKey;
  }
  let layer: number | undefined;
  const rawLayer = a[6];
  if (rawLayer !== undefined && rawLayer !== null) {
    layer = uint(rawLayer);
    if (layer < 0) return 'DATA.layer must be nil or an unsigned integer';
  }
  return { type: FrameType.DATA, streamId, seq, timestamp: timestamp + 0, payload, key, layer };
}

function validateHello(a: unknown[]): HelloFrame | string {
  const version = uint(a[1]);
  const endpointId = a[2];
  const token = a[3];
  const sdkVersion = a[4];
  if (version < 0) return 'HELLO.version must be an unsigned integer';
  if (!isValidId(endpointId)) return 'HELLO.endpointId is not a valid id';
  if (!isString(token, MAX_TOKEN_LENGTH)) return 'HELLO.token must be a string';
  if (!isString(sdkVersion, MAX_STRING_LENGTH)) return 'HELLO.sdkVersion must be a string';
  const resume = toResume(a[5]);
  if (resume === undefined) return `HELLO.resume must map at most ${MAX_RESUME_ENTRIES} stream ids to unsigned integers`;
  if (a.length < 7) return { type: FrameType.HELLO, version, endpointId, token, sdkVersion, resume };
  const transports = a[6];
  if (!Array.isArray(transports) || transports.length > 4 || !transports.every((t) => typeof t === 'string' && /^[a-z0-9-]{1,32}$/.test(t))) {
    return 'HELLO.transports must be at most 4 transport names';
  }
  return { type: FrameType.HELLO, version, endpointId, token, sdkVersion, resume, transports: transports as string[] };
}

/**
 * Accepts a Map (what the Unpackr yields) or a plain object (another decoder's output).
 * The result has no prototype, so keys like `__proto__` or `constructor` are plain data.
 */
function toResume(v: unknown): Record<string, number> | undefined {
  const out = Object.create(null) as Record<string, number>;
  if (v instanceof Map) {
    if (v.size > MAX_RESUME_ENTRIES) return undefined;
    for (const [k, s] of v as Map<unknown, unknown>) {
      const seq = uint(s);
      if (!isValidId(k) || seq < 0) return undefined;
      out[k] = seq;
    }
    return out;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return undefined;
  const keys = Object.keys(v);
  if (keys.length > MAX_RESUME_ENTRIES) return undefined;
  for (const k of keys) {
    const seq = uint((v as Record<string, unknown>)[k]);
    if (!isValidId(k) || seq < 0) return undefined;
    out[k] = seq;
  }
  return out;
}
