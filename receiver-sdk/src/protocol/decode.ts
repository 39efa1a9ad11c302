/**
 * The decoder: the trust boundary of the wire format (frames.ts). A pre-scan (scan.ts)
 * lets only plain msgpack of the right shape reach msgpackr; then every field is checked.
 */
import { Unpackr } from 'msgpackr';
import { ProtocolError, type ErrorCode } from './errors.js';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_TYPE_NAMES,
  FrameType,
  isValidId,
  MAX_FRAME_TYPE,
  MAX_RESUME_ENTRIES,
  MAX_STRING_LENGTH,
  type DataFrame,
  type Frame,
  type HelloFrame,
} from './frames.js';
import { K_ARRAY, peekType, readToken, SCAN_INVALID, scanElements, tokCount, tokKind, TYPE_NOT_UINT, TYPE_TOO_BIG } from './scan.js';
import { PROTOCOL_VERSION } from './version.js';

export type DecodeResult = { ok: true; frame: Frame } | { ok: false; error: ProtocolError };

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

// Allowed array lengths per frame type, indexed by type; DATA may omit trailing key/layer,
// HELLO its transports, HEARTBEAT its cadence and report interval.
const MIN_ARITY = [0, 6, 5, 5, 3, 3, 3, 7, 5, 5, 3, 3, 4, 2] as const;
const MAX_ARITY = [0, 7, 5, 7, 3, 5, 3, 7, 5, 5, 3, 3, 4, 2] as const;

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
 * - MS_PROTOCOL_VERSION: a HELLO whose version is not PROTOCOL_VERSION (checked before its
 *   layout, which differs between versions).
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
    if (type < 1 || type > MAX_FRAME_TYPE) return fail('MS_FRAME_UNKNOWN_TYPE', `unknown frame type ${type === TYPE_TOO_BIG ? '(large)' : type}`);
    if (type === FrameType.HELLO && arity >= 2) {
      // another version lays HELLO out differently: say so before judging its fields
      const afterType = readToken(bytes, p, end);
      const version = afterType < 0 ? TYPE_NOT_UINT : peekType(bytes, afterType, end);
      if (version >= 0 && version !== PROTOCOL_VERSION) {
        return fail('MS_PROTOCOL_VERSION', `HELLO of protocol version ${version}; this side speaks ${PROTOCOL_VERSION}`);
      }
    }
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
      if (a.length < 4) return { type, nonce, sentAt: sentAt + 0 };
      const cadenceMs = uint(a[3]);
      if (cadenceMs < 1) return 'HEARTBEAT.cadenceMs must be an integer >= 1';
      if (a.length < 5) return { type: FrameType.HEARTBEAT, nonce, sentAt: sentAt + 0, cadenceMs };
      const reportMs = uint(a[4]);
      if (reportMs < 1) return 'HEARTBEAT.reportMs must be an integer >= 1';
      return { type: FrameType.HEARTBEAT, nonce, sentAt: sentAt + 0, cadenceMs, reportMs };
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
      const epoch = a[4];
      if (!isValidId(epoch)) return 'ROLE.epoch is not a valid id';
      return { type: FrameType.ROLE, streamId, role, fromSeq, epoch };
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
    case FrameType.RESET: {
      const streamId = a[1];
      const epoch = a[2];
      const previousEpoch = a[3];
      if (!isValidId(streamId)) return 'RESET.streamId is not a valid id';
      if (!isValidId(epoch)) return 'RESET.epoch is not a valid id';
      if (previousEpoch !== null && !isValidId(previousEpoch)) return 'RESET.previousEpoch must be nil or a valid id';
      return { type: FrameType.RESET, streamId, epoch, previousEpoch };
    }
    case FrameType.GOAWAY: {
      const reason = a[1];
      if (!isString(reason, MAX_STRING_LENGTH)) return 'GOAWAY.reason must be a string';
      return { type: FrameType.GOAWAY, reason };
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
  const sdkVersion = a[3];
  if (version < 0) return 'HELLO.version must be an unsigned integer';
  if (!isValidId(endpointId)) return 'HELLO.endpointId is not a valid id';
  if (!isString(sdkVersion, MAX_STRING_LENGTH)) return 'HELLO.sdkVersion must be a string';
  const resume = toIdMap(a[4], (s) => {
    const seq = uint(s);
    return seq < 0 ? undefined : seq;
  });
  if (resume === undefined) return `HELLO.resume must map at most ${MAX_RESUME_ENTRIES} stream ids to unsigned integers`;
  const epochs = toIdMap(a[5], (e) => (isValidId(e) ? e : undefined));
  if (epochs === undefined) return `HELLO.epochs must map at most ${MAX_RESUME_ENTRIES} stream ids to epoch ids`;
  for (const id of Object.keys(epochs)) if (!(id in resume)) return 'HELLO.epochs names a stream without a resume position';
  if (a.length < 7) return { type: FrameType.HELLO, version, endpointId, sdkVersion, resume, epochs };
  const transports = a[6];
  if (!Array.isArray(transports) || transports.length > 4 || !transports.every((t) => typeof t === 'string' && /^[a-z0-9-]{1,32}$/.test(t))) {
    return 'HELLO.transports must be at most 4 transport names';
  }
  return { type: FrameType.HELLO, version, endpointId, sdkVersion, resume, epochs, transports: transports as string[] };
}

/**
 * A map of ids to checked values. Accepts a Map (what the Unpackr yields) or a plain object
 * (another decoder's output). The result has no prototype, so keys like `__proto__` or
 * `constructor` are plain data.
 */
function toIdMap<V>(v: unknown, check: (value: unknown) => V | undefined): Record<string, V> | undefined {
  const out = Object.create(null) as Record<string, V>;
  let entries: Iterable<[unknown, unknown]>;
  if (v instanceof Map) {
    if (v.size > MAX_RESUME_ENTRIES) return undefined;
    entries = v as Map<unknown, unknown>;
  } else {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const proto: unknown = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return undefined;
    const keys = Object.keys(v);
    if (keys.length > MAX_RESUME_ENTRIES) return undefined;
    entries = keys.map((k) => [k, (v as Record<string, unknown>)[k]]);
  }
  for (const [k, raw] of entries) {
    const value = check(raw);
    if (!isValidId(k) || value === undefined) return undefined;
    out[k] = value;
  }
  return out;
}
