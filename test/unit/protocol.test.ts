import { describe, it, expect } from 'vitest';
import {
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_TYPE_NAMES,
  FrameType,
  ID_PATTERN,
  MAX_RESUME_ENTRIES,
  PROTOCOL_VERSION,
  decodeFrame,
  encodeFrame,
  isValidId,
  type DecodeResult,
  type Frame,
} from '../../receiver-sdk/src/protocol/index.js';
import { ProtocolError, type ErrorCode } from '../../receiver-sdk/src/protocol/index.js';
import { mulberry32 } from '../helpers/random.js';

// ---------------------------------------------------------------------------------------
// A tiny msgpack writer independent of msgpackr, so the decoder is also tested against
// bytes another implementation would produce, including non-canonical encodings and
// things our encoder never writes (extensions, reserved bytes, odd map keys).

class MpMap {
  constructor(readonly entries: Array<[Mp, Mp]>) {}
}
class Raw {
  constructor(readonly bytes: number[]) {}
}
class F64 {
  constructor(readonly value: number) {}
}
class U64 {
  constructor(readonly value: bigint) {}
}
type Mp = null | boolean | number | string | Uint8Array | Mp[] | MpMap | Raw | F64 | U64;

const map = (entries: Array<[Mp, Mp]>): MpMap => new MpMap(entries);
const raw = (...bytes: number[]): Raw => new Raw(bytes);
const f64 = (value: number): F64 => new F64(value);
const u64 = (value: bigint): U64 => new U64(value);
const utf8 = new TextEncoder();

function be(out: number[], value: number | bigint, bytes: number): void {
  let v = BigInt.asUintN(bytes * 8, BigInt(value));
  const tmp: number[] = [];
  for (let i = 0; i < bytes; i++) {
    tmp.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  out.push(...tmp);
}

/** Writes `tag` then `value` big-endian in `bytes` bytes. */
function head(out: number[], tag: number, value: number | bigint, bytes: number): void {
  out.push(tag);
  be(out, value, bytes);
}

/** Smallest header of a str/bin/array/map of length `n`: fix form if `fixMax`, else 8/16/32-bit. */
function lengthHeader(out: number[], n: number, fix: number, fixMax: number, tags: [number | null, number, number]): void {
  if (n < fixMax) out.push(fix | n);
  else if (n < 0x100 && tags[0] !== null) head(out, tags[0], n, 1);
  else if (n < 0x10000) head(out, tags[1], n, 2);
  else head(out, tags[2], n, 4);
}

function writeNumber(out: number[], v: number): void {
  if (!Number.isInteger(v) || Object.is(v, -0)) writeF64(out, v);
  else if (v >= 0) {
    if (v < 0x80) out.push(v);
    else if (v < 0x100) head(out, 0xcc, v, 1);
    else if (v < 0x10000) head(out, 0xcd, v, 2);
    else if (v < 2 ** 32) head(out, 0xce, v, 4);
    else head(out, 0xcf, v, 8);
  } else if (v >= -32) out.push(0x100 + v);
  else if (v >= -0x80) head(out, 0xd0, v, 1);
  else if (v >= -0x8000) head(out, 0xd1, v, 2);
  else if (v >= -(2 ** 31)) head(out, 0xd2, v, 4);
  else head(out, 0xd3, v, 8);
}

function writeF64(out: number[], v: number): void {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, v);
  out.push(0xcb, ...new Uint8Array(dv.buffer));
}

function write(out: number[], v: Mp): void {
  if (v === null) out.push(0xc0);
  else if (typeof v === 'boolean') out.push(v ? 0xc3 : 0xc2);
  else if (typeof v === 'number') writeNumber(out, v);
  else if (typeof v === 'string') {
    const b = utf8.encode(v);
    lengthHeader(out, b.length, 0xa0, 32, [0xd9, 0xda, 0xdb]);
    out.push(...b);
  } else if (v instanceof Uint8Array) {
    lengthHeader(out, v.length, 0, 0, [0xc4, 0xc5, 0xc6]);
    for (const x of v) out.push(x);
  } else if (Array.isArray(v)) {
    lengthHeader(out, v.length, 0x90, 16, [null, 0xdc, 0xdd]);
    for (const x of v) write(out, x);
  } else if (v instanceof MpMap) {
    lengthHeader(out, v.entries.length, 0x80, 16, [null, 0xde, 0xdf]);
    for (const [k, x] of v.entries) {
      write(out, k);
      write(out, x);
    }
  } else if (v instanceof Raw) out.push(...v.bytes);
  else if (v instanceof F64) writeF64(out, v.value);
  else head(out, 0xcf, v.value, 8);
}

function mp(v: Mp): Uint8Array {
  const out: number[] = [];
  write(out, v);
  return new Uint8Array(out);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Buffers and Uint8Arrays are not toEqual; compare payloads as plain byte lists. */
function comparable(frame: Frame): unknown {
  if (frame.type === FrameType.DATA) return { ...frame, payload: Array.from(frame.payload) };
  if (frame.type === FrameType.HELLO) return { ...frame, resume: { ...frame.resume }, epochs: { ...frame.epochs } };
  return frame;
}

function decodeOk(bytes: Uint8Array, max?: number): Frame {
  const r = decodeFrame(bytes, max);
  if (!r.ok) throw new Error(`expected ok, got ${r.error.code}: ${r.error.message} for ${hex(bytes)}`);
  return r.frame;
}

function expectCode(bytes: Uint8Array, code: ErrorCode, max?: number): void {
  const r = decodeFrame(bytes, max);
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.error).toBeInstanceOf(ProtocolError);
  expect(r.error.code).toBe(code);
}

const bytesOf = (...xs: number[]): Uint8Array => new Uint8Array(xs);

// ---------------------------------------------------------------------------------------

const samples: Frame[] = [
  { type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'edge-1.eu:a_b', sdkVersion: '0.2.0', resume: { cam1: 10, 'cam-2': 0, 'x.y:z': Number.MAX_SAFE_INTEGER }, epochs: { cam1: 'Ep0ch-1', 'x.y:z': 'e.2:x_y' } },
  { type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'e', sdkVersion: '', resume: {}, epochs: {} },
  { type: FrameType.WELCOME, version: 1, sessionId: 'sess-123', heartbeatIntervalMs: 5000, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES },
  { type: FrameType.DATA, streamId: 'cam1', seq: 1, timestamp: 1_700_000_000_123, payload: bytesOf(1, 2, 3, 255), key: 'frame-7', layer: 2 },
  { type: FrameType.DATA, streamId: 'cam1', seq: 2, timestamp: 1_700_000_000_123.5, payload: bytesOf() },
  { type: FrameType.DATA, streamId: 'cam1', seq: Number.MAX_SAFE_INTEGER, timestamp: -5, payload: bytesOf(0), key: '' },
  { type: FrameType.DATA, streamId: 'cam1', seq: 3, timestamp: 0, payload: new Uint8Array(300).fill(9), layer: 0 },
  { type: FrameType.ACK, streamId: 'cam1', seq: 0 },
  { type: FrameType.ACK, streamId: 'cam1', seq: 2 ** 40 },
  { type: FrameType.HEARTBEAT, nonce: 7, sentAt: 1_700_000_000_000.25 },
  { type: FrameType.HEARTBEAT, nonce: 8, sentAt: 1_700_000_000_000, cadenceMs: 10 },
  { type: FrameType.HEARTBEAT, nonce: 10, sentAt: 1_700_000_000_000, cadenceMs: 1_000, reportMs: 5_000 },
  { type: FrameType.HEARTBEAT_ACK, nonce: 0, sentAt: 12 },
  { type: FrameType.RECEIVER_REPORT, streamId: 'cam1', receivedChunks: 10, receivedBytes: 2 ** 33, rateBytesPerSec: 1234.5, rttMs: 17.25, gapCount: 1 },
  { type: FrameType.RECEIVER_REPORT, streamId: 'cam1', receivedChunks: 0, receivedBytes: 0, rateBytesPerSec: 0, rttMs: null, gapCount: 0 },
  { type: FrameType.ROLE, streamId: 'cam1', role: 'active', fromSeq: 5, epoch: 'qH3k-9_x' },
  { type: FrameType.ROLE, streamId: 'cam1', role: 'standby', fromSeq: 0, epoch: 'e' },
  { type: FrameType.GAP, streamId: 'cam1', from: 4, to: 4, reason: 'evicted' },
  { type: FrameType.GAP, streamId: 'cam1', from: 1, to: 900, reason: '' },
  { type: FrameType.END, streamId: 'cam1', reason: 'stream deleted' },
  { type: FrameType.ERROR, code: 'MS_FRAME_MALFORMED', message: 'ünïcødé ✓ message' },
  { type: FrameType.RESET, streamId: 'cam1', epoch: 'e2', previousEpoch: 'e1' },
  { type: FrameType.RESET, streamId: 'cam1', epoch: 'e2', previousEpoch: null },
  { type: FrameType.GOAWAY, reason: 'gateway draining' },
];

describe('round trip', () => {
  it('covers every frame type', () => {
    const types = new Set(samples.map((f) => f.type));
    expect([...types].sort((a, b) => a - b)).toEqual(Object.values(FrameType).sort((a, b) => a - b));
  });

  it.each(samples.map((f, i) => [`${i} ${FRAME_TYPE_NAMES[f.type]}`, f] as const))('%s', (_name, frame) => {
    const decoded = decodeOk(encodeFrame(frame));
    expect(comparable(decoded)).toEqual(comparable(frame));
    expect(decoded.type).toBe(frame.type);
  });

  it('keeps payload bytes and omits absent key/layer', () => {
    const payload = new Uint8Array(1000).map((_, i) => (i * 31) & 0xff);
    const frame = decodeOk(encodeFrame({ type: FrameType.DATA, streamId: 's', seq: 9, timestamp: 1, payload }));
    if (frame.type !== FrameType.DATA) throw new Error('not DATA');
    expect(Array.from(frame.payload)).toEqual(Array.from(payload));
    expect(frame.payload).toBeInstanceOf(Uint8Array);
    expect(frame.key).toBeUndefined();
    expect(frame.layer).toBeUndefined();
  });

  it('HELLO resume of several streams comes back as a prototype-free record', () => {
    const resume: Record<string, number> = { a: 1, b: 2, c: 3, 'd.e': 4 };
    const frame = decodeOk(encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'e', sdkVersion: 'v', resume, epochs: {} }));
    if (frame.type !== FrameType.HELLO) throw new Error('not HELLO');
    expect({ ...frame.resume }).toEqual(resume);
    expect(Object.getPrototypeOf(frame.resume)).toBeNull();
  });
});

describe('wire format', () => {
  it('ACK is a plain msgpack array', () => {
    expect(hex(encodeFrame({ type: FrameType.ACK, streamId: 's', seq: 5 }))).toBe('9304a17305');
  });

  it('DATA writes absent key/layer as nil and the payload as bin', () => {
    const bytes = encodeFrame({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 1.5, payload: bytesOf(9, 8) });
    expect(hex(bytes)).toBe(hex(mp([3, 's', 1, f64(1.5), bytesOf(9, 8), null, null])));
  });

  it('HELLO writes resume and epochs as msgpack maps with string keys', () => {
    const bytes = encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'e', sdkVersion: 'v', resume: { s: 7 }, epochs: { s: 'x' } });
    // msgpackr writes map16 even for small maps; both are standard headers
    expect(hex(bytes)).toMatch(/^960102a165a176(81|de0001)a17307(81|de0001)a173a178$/);
  });

  it('decodes non-canonical encodings another implementation may write', () => {
    const frame = decodeOk(mp([raw(0xcc, 3), raw(0xd9, 1, 0x73), u64(5n), f64(2), raw(0xc6, 0, 0, 0, 1, 7), raw(0xc0)]));
    expect(comparable(frame)).toEqual({ type: 3, streamId: 's', seq: 5, timestamp: 2, payload: [7], key: undefined, layer: undefined });
    const hello = decodeOk(mp([1, 2, 'e', 'v', raw(0xde, 0, 1, 0xa1, 0x73, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7), map([])]));
    expect(comparable(hello)).toMatchObject({ resume: { s: 7 } });
  });

  it('payload is a view into the input, also at a non-zero offset', () => {
    const inner = mp([3, 's', 1, 1, bytesOf(4, 5, 6)]);
    const big = new Uint8Array(inner.length + 10);
    big.set(inner, 7);
    const view = big.subarray(7, 7 + inner.length);
    const frame = decodeOk(view);
    if (frame.type !== FrameType.DATA) throw new Error('not DATA');
    expect(Array.from(frame.payload)).toEqual([4, 5, 6]);
    expect(frame.payload.buffer).toBe(big.buffer);
  });

  it('exports names and id helpers', () => {
    expect(FRAME_TYPE_NAMES[FrameType.RECEIVER_REPORT]).toBe('RECEIVER_REPORT');
    expect(Object.keys(FRAME_TYPE_NAMES)).toHaveLength(13);
    expect(isValidId('a.B-9:_')).toBe(true);
    expect(isValidId('x'.repeat(128))).toBe(true);
    expect(isValidId('x'.repeat(129))).toBe(false);
    expect(isValidId('')).toBe(false);
    expect(isValidId('a b')).toBe(false);
    expect(isValidId('a/b')).toBe(false);
    expect(isValidId(5)).toBe(false);
    expect(ID_PATTERN.test('ok-id')).toBe(true);
  });
});

describe('size limit', () => {
  it('rejects frames over the default limit before parsing', () => {
    const bytes = encodeFrame({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 1, payload: new Uint8Array(DEFAULT_MAX_FRAME_BYTES) });
    expect(bytes.length).toBeGreaterThan(DEFAULT_MAX_FRAME_BYTES);
    expectCode(bytes, 'MS_FRAME_TOO_LARGE');
    // garbage is reported as too large, not malformed: size is checked first
    expectCode(new Uint8Array(DEFAULT_MAX_FRAME_BYTES + 1).fill(0xc1), 'MS_FRAME_TOO_LARGE');
  });

  it('honours a custom limit, inclusive', () => {
    const bytes = encodeFrame({ type: FrameType.ACK, streamId: 'stream', seq: 1 });
    expectCode(bytes, 'MS_FRAME_TOO_LARGE', 4);
    expectCode(bytes, 'MS_FRAME_TOO_LARGE', bytes.length - 1);
    expect(decodeOk(bytes, bytes.length).type).toBe(FrameType.ACK);
  });
});

describe('truncation and trailing bytes', () => {
  it('every proper prefix of every sample is malformed', () => {
    let checked = 0;
    for (const frame of samples) {
      const bytes = encodeFrame(frame);
      for (let len = 0; len < bytes.length; len++) {
        const r = decodeFrame(bytes.subarray(0, len));
        if (r.ok || r.error.code !== 'MS_FRAME_MALFORMED') {
          throw new Error(`prefix ${len}/${bytes.length} of ${FRAME_TYPE_NAMES[frame.type]}: ${r.ok ? 'ok' : r.error.code}`);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });

  it('rejects trailing data after the frame', () => {
    for (const frame of samples.slice(0, 5)) {
      const bytes = encodeFrame(frame);
      const withByte = new Uint8Array(bytes.length + 1);
      withByte.set(bytes);
      expectCode(withByte, 'MS_FRAME_MALFORMED');
      const twice = new Uint8Array(bytes.length * 2);
      twice.set(bytes);
      twice.set(bytes, bytes.length);
      expectCode(twice, 'MS_FRAME_MALFORMED');
    }
  });
});

// Valid element lists per type; the field tests below replace one element at a time.
const base = {
  hello: [1, 2, 'e', 'v', map([['s', 1]]), map([['s', 'x']])] as Mp[],
  welcome: [2, 1, 'sess', 5000, 65536] as Mp[],
  data: [3, 's', 1, 1_700_000_000_000, bytesOf(1), 'k', 0] as Mp[],
  ack: [4, 's', 0] as Mp[],
  heartbeat: [5, 1, 1.5] as Mp[],
  heartbeatAck: [6, 1, 1.5] as Mp[],
  report: [7, 's', 1, 2, 3.5, 4.5, 0] as Mp[],
  role: [8, 's', 'active', 1, 'e1'] as Mp[],
  gap: [9, 's', 2, 3, 'r'] as Mp[],
  end: [10, 's', 'r'] as Mp[],
  error: [11, 'MS_X', 'm'] as Mp[],
  reset: [12, 's', 'e2', 'e1'] as Mp[],
};
const withField = (els: Mp[], index: number, value: Mp): Uint8Array => mp(els.map((e, i) => (i === index ? value : e)));

describe('field validation', () => {
  it('the base frames are valid', () => {
    for (const els of Object.values(base)) expect(decodeFrame(mp(els)).ok).toBe(true);
  });

  const S4097 = 'x'.repeat(4097);
  const ID129 = 'x'.repeat(129);
  const invalid: Array<[string, Uint8Array]> = [
    ['HELLO version string', withField(base.hello, 1, '1')],
    ['HELLO endpointId bad chars', withField(base.hello, 2, 'bad id!')],
    ['HELLO endpointId empty', withField(base.hello, 2, '')],
    ['HELLO endpointId too long', withField(base.hello, 2, ID129)],
    ['HELLO endpointId number', withField(base.hello, 2, 5)],
    ['HELLO sdkVersion too long', withField(base.hello, 3, S4097)],
    ['HELLO sdkVersion number', withField(base.hello, 3, 1)],
    ['HELLO resume array', withField(base.hello, 4, ['s', 1])],
    ['HELLO resume nil', withField(base.hello, 4, null)],
    ['HELLO resume bad key', withField(base.hello, 4, map([['a b', 1]]))],
    ['HELLO resume non-string key', withField(base.hello, 4, map([[5, 1]]))],
    ['HELLO resume negative seq', withField(base.hello, 4, map([['s', -1]]))],
    ['HELLO resume float seq', withField(base.hello, 4, map([['s', 1.5]]))],
    ['HELLO resume unsafe seq', withField(base.hello, 4, map([['s', u64(2n ** 53n)]]))],
    ['HELLO resume string seq', withField(base.hello, 4, map([['s', '1']]))],
    ['HELLO resume too many entries', withField(base.hello, 4, map(Array.from({ length: MAX_RESUME_ENTRIES + 1 }, (_, i): [Mp, Mp] => [`s${i}`, i])))],
    ['HELLO epochs nil', withField(base.hello, 5, null)],
    ['HELLO epochs array', withField(base.hello, 5, ['s', 'x'])],
    ['HELLO epochs bad epoch', withField(base.hello, 5, map([['s', 'bad epoch!']]))],
    ['HELLO epochs empty epoch', withField(base.hello, 5, map([['s', '']]))],
    ['HELLO epochs number epoch', withField(base.hello, 5, map([['s', 1]]))],
    ['HELLO epochs for a stream without a resume position', withField(base.hello, 5, map([['t', 'x']]))],
    ['WELCOME heartbeat negative', withField(base.welcome, 3, -1)],
    ['WELCOME maxFrameBytes string', withField(base.welcome, 4, '1')],
    ['WELCOME sessionId number', withField(base.welcome, 2, 1)],
    ['DATA seq 0', withField(base.data, 2, 0)],
    ['DATA seq negative', withField(base.data, 2, -1)],
    ['DATA seq float', withField(base.data, 2, 1.5)],
    ['DATA seq string', withField(base.data, 2, '1')],
    ['DATA seq 2^53 (uint64)', withField(base.data, 2, u64(2n ** 53n))],
    ['DATA seq max uint64', withField(base.data, 2, u64(2n ** 64n - 1n))],
    ['DATA seq nil', withField(base.data, 2, null)],
    ['DATA timestamp NaN', withField(base.data, 3, f64(NaN))],
    ['DATA timestamp Infinity', withField(base.data, 3, f64(Infinity))],
    ['DATA timestamp string', withField(base.data, 3, '1')],
    ['DATA streamId bad chars', withField(base.data, 1, 'cam/1')],
    ['DATA streamId non-ascii', withField(base.data, 1, 'camé')],
    ['DATA streamId too long', withField(base.data, 1, ID129)],
    ['DATA payload string', withField(base.data, 4, 'bytes')],
    ['DATA payload array', withField(base.data, 4, [1, 2])],
    ['DATA payload nil', withField(base.data, 4, null)],
    ['DATA key number', withField(base.data, 5, 5)],
    ['DATA key too long', withField(base.data, 5, S4097)],
    ['DATA layer negative', withField(base.data, 6, -1)],
    ['DATA layer string', withField(base.data, 6, 'a')],
    ['DATA layer float', withField(base.data, 6, 0.5)],
    ['ACK seq negative', withField(base.ack, 2, -1)],
    ['ACK streamId number', withField(base.ack, 1, 5)],
    ['HEARTBEAT nonce negative', withField(base.heartbeat, 1, -1)],
    ['HEARTBEAT sentAt NaN', withField(base.heartbeat, 2, f64(NaN))],
    ['HEARTBEAT cadenceMs 0', mp([...base.heartbeat, 0])],
    ['HEARTBEAT cadenceMs float', mp([...base.heartbeat, 2.5])],
    ['HEARTBEAT cadenceMs nil', mp([...base.heartbeat, null])],
    ['HEARTBEAT cadenceMs string', mp([...base.heartbeat, '10'])],
    ['HEARTBEAT reportMs 0', mp([...base.heartbeat, 10, 0])],
    ['HEARTBEAT reportMs float', mp([...base.heartbeat, 10, 2.5])],
    ['HEARTBEAT reportMs nil', mp([...base.heartbeat, 10, null])],
    ['HEARTBEAT reportMs negative', mp([...base.heartbeat, 10, -1])],
    ['HEARTBEAT cadenceMs nil with reportMs', mp([...base.heartbeat, null, 1000])],
    ['HEARTBEAT_ACK nonce string', withField(base.heartbeatAck, 1, 'a')],
    ['HEARTBEAT_ACK sentAt -Infinity', withField(base.heartbeatAck, 2, f64(-Infinity))],
    ['REPORT rate negative', withField(base.report, 4, -1)],
    ['REPORT rate Infinity', withField(base.report, 4, f64(Infinity))],
    ['REPORT rtt negative', withField(base.report, 5, -0.5)],
    ['REPORT rtt string', withField(base.report, 5, '1')],
    ['REPORT gapCount float', withField(base.report, 6, 1.5)],
    ['REPORT receivedBytes unsafe', withField(base.report, 3, 2 ** 53)],
    ['REPORT receivedChunks bool', withField(base.report, 2, true)],
    ['ROLE bad role', withField(base.role, 2, 'leader')],
    ['ROLE role number', withField(base.role, 2, 1)],
    ['ROLE fromSeq negative', withField(base.role, 3, -1)],
    ['ROLE epoch nil', withField(base.role, 4, null)],
    ['ROLE epoch bad chars', withField(base.role, 4, 'a b')],
    ['RESET streamId bad', withField(base.reset, 1, 'a/b')],
    ['RESET epoch empty', withField(base.reset, 2, '')],
    ['RESET epoch nil', withField(base.reset, 2, null)],
    ['RESET previousEpoch number', withField(base.reset, 3, 5)],
    ['GAP to < from', withField(base.gap, 3, 1)],
    ['GAP from 0', withField(base.gap, 2, 0)],
    ['GAP reason too long', withField(base.gap, 4, S4097)],
    ['GAP reason nil', withField(base.gap, 4, null)],
    ['END reason number', withField(base.end, 2, 5)],
    ['END streamId empty', withField(base.end, 1, '')],
    ['ERROR code number', withField(base.error, 1, 5)],
    ['ERROR message too long', withField(base.error, 2, S4097)],
    // encodings the pre-scan refuses, whatever the field
    ['timestamp ext (Date) as sentAt', withField(base.heartbeat, 2, raw(0xd6, 0xff, 0, 0, 0, 1))],
    ['typed-array ext as payload', withField(base.data, 4, raw(0xc7, 4, 0x74, 1, 1, 2, 3))],
    ['ext 0 (undefined) as key', withField(base.data, 5, raw(0xd4, 0, 0))],
    ['msgpackr record ext in resume', withField(base.hello, 4, raw(0xd4, 0x72, 0x40, 0x91, 0xa1, 0x73, 0x01))],
    ['bundled-strings ext as reason', withField(base.end, 2, raw(0xd6, 0x62, 0, 0, 0, 0))],
    ['array nested two deep', withField(base.data, 4, [[1]])],
    ['map inside resume', withField(base.hello, 4, map([['s', map([])]]))],
    ['array inside epochs', withField(base.hello, 5, map([['s', ['x']]]))],
  ];

  it.each(invalid)('%s → MS_FRAME_INVALID_FIELD', (_name, bytes) => {
    expectCode(bytes, 'MS_FRAME_INVALID_FIELD');
  });

  const accepted: Array<[string, Uint8Array]> = [
    ['ACK seq 0', mp(base.ack)],
    ['DATA seq MAX_SAFE_INTEGER as uint64', withField(base.data, 2, u64(BigInt(Number.MAX_SAFE_INTEGER)))],
    ['DATA arity 5', mp(base.data.slice(0, 5))],
    ['DATA arity 6 with nil key', mp([...base.data.slice(0, 5), null])],
    ['id of 128 chars', withField(base.ack, 1, 'x'.repeat(128))],
    ['RESET with nil previousEpoch', withField(base.reset, 3, null)],
    ['epoch of 128 chars', withField(base.role, 4, 'x'.repeat(128))],
    ['reason of 4096 chars', withField(base.end, 2, 'x'.repeat(4096))],
    ['GAP to == from', withField(base.gap, 3, 2)],
    ['HEARTBEAT with a cadence', mp([...base.heartbeat, 250])],
    ['HEARTBEAT with a cadence and a report interval', mp([...base.heartbeat, 250, 5000])],
    ['REPORT rtt nil', withField(base.report, 5, null)],
    ['integer-valued float seq', withField(base.data, 2, f64(3))],
    ['resume of exactly the maximum size', mp([1, 2, 'e', 'v', map(Array.from({ length: MAX_RESUME_ENTRIES }, (_, i): [Mp, Mp] => [`s${i}`, i])), map([])])],
  ];

  it.each(accepted)('accepts %s', (_name, bytes) => {
    expect(decodeFrame(bytes).ok).toBe(true);
  });

  it('DATA with short arity or nil key/layer has no key/layer', () => {
    for (const bytes of [mp(base.data.slice(0, 5)), mp([...base.data.slice(0, 5), null]), mp([...base.data.slice(0, 5), null, null])]) {
      const frame = decodeOk(bytes);
      if (frame.type !== FrameType.DATA) throw new Error('not DATA');
      expect(frame.key).toBeUndefined();
      expect(frame.layer).toBeUndefined();
    }
  });

  it('normalizes -0 so a decoded frame re-encodes to the same value', () => {
    const frame = decodeOk(mp([4, 's', f64(-0)]));
    if (frame.type !== FrameType.ACK) throw new Error('not ACK');
    expect(Object.is(frame.seq, 0)).toBe(true);
  });

  it('`__proto__` and `constructor` in resume are plain data and pollute nothing', () => {
    const bytes = mp([1, 2, 'e', 'v', map([['__proto__', 7], ['constructor', 3], ['polluted', 1]]), map([['__proto__', 'e1']])]);
    const frame = decodeOk(bytes);
    if (frame.type !== FrameType.HELLO) throw new Error('not HELLO');
    expect(Object.getPrototypeOf(frame.resume)).toBeNull();
    expect(Object.getOwnPropertyDescriptor(frame.resume, '__proto__')?.value).toBe(7);
    expect(Object.keys(frame.resume).sort()).toEqual(['__proto__', 'constructor', 'polluted']);
    expect(frame.resume['constructor']).toBe(3);
    expect(Object.getPrototypeOf(frame.epochs)).toBeNull();
    expect(Object.getOwnPropertyDescriptor(frame.epochs, '__proto__')?.value).toBe('e1');
    const probe: Record<string, unknown> = {};
    expect(probe['polluted']).toBeUndefined();
    expect(Object.getPrototypeOf(probe)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
    // and it survives a round trip unchanged
    expect(comparable(decodeOk(encodeFrame(frame)))).toEqual(comparable(frame));
  });
});

describe('frame structure', () => {
  const malformed: Array<[string, Uint8Array]> = [
    ['empty input', bytesOf()],
    ['top-level map', mp(map([['type', 3]]))],
    ['top-level number', mp(3)],
    ['top-level string', mp('hello')],
    ['top-level nil', mp(null)],
    ['top-level bin', mp(bytesOf(0x93, 4))],
    ['top-level ext', bytesOf(0xd4, 0x01, 0x00)],
    ['reserved byte 0xc1', bytesOf(0xc1)],
    ['reserved byte inside', mp([4, 's', raw(0xc1)])],
    ['empty array', mp([])],
    ['type as string', mp(['4', 's', 0])],
    ['type as name', mp(['ACK', 's', 0])],
    ['type nil', mp([null, 's', 0])],
    ['type float', mp([f64(4), 's', 0])],
    ['type array', mp([[4], 's', 0])],
    ['ACK arity 2', mp([4, 's'])],
    ['ACK arity 4', mp([4, 's', 0, 0])],
    ['HEARTBEAT arity 6', mp([...base.heartbeat, 10, 10, 10])],
    ['HEARTBEAT_ACK arity 4 (only HEARTBEAT carries a cadence)', mp([...base.heartbeatAck, 10])],
    ['DATA arity 4', mp(base.data.slice(0, 4))],
    ['DATA arity 8', mp([...base.data, null])],
    ['HELLO arity 5', mp(base.hello.slice(0, 5))],
    ['REPORT arity 6', mp(base.report.slice(0, 6))],
    ['array32 header claiming 4G elements', bytesOf(0xdd, 0xff, 0xff, 0xff, 0xff, 0x04)],
    ['str length past the end', bytesOf(0x93, 0x04, 0xdb, 0xff, 0xff, 0xff, 0xff, 0x73, 0x00)],
    ['bin length past the end', mp([3, 's', 1, 1, raw(0xc6, 0x7f, 0xff, 0xff, 0xff, 1)])],
  ];

  it.each(malformed)('%s → MS_FRAME_MALFORMED', (_name, bytes) => {
    expectCode(bytes, 'MS_FRAME_MALFORMED');
  });

  const unknown: Array<[string, Uint8Array]> = [
    ['type 99', mp([99, 's', 0])],
    ['type 0', mp([0])],
    ['type 14', mp([14, 'future', [1, [2, [3]]]])],
    ['type -1', mp([-1, 's'])],
    ['type 300 (uint16)', mp([300, 's'])],
    ['type 2^40 (uint64)', mp([2 ** 40])],
    ['type int64 negative', mp([-(2 ** 40)])],
  ];

  it.each(unknown)('%s → MS_FRAME_UNKNOWN_TYPE', (_name, bytes) => {
    expectCode(bytes, 'MS_FRAME_UNKNOWN_TYPE');
  });

  it('accepts a type written as a wider unsigned int', () => {
    expect(decodeOk(mp([raw(0xcd, 0, 4), 's', 0])).type).toBe(FrameType.ACK);
    expect(decodeOk(mp([u64(4n), 's', 0])).type).toBe(FrameType.ACK);
  });

  it('rejects deep nesting and huge container headers quickly without recursion', () => {
    const deep = new Uint8Array(200_000).fill(0x91);
    deep.set([0x97, 0x03], 0);
    expectCode(deep, 'MS_FRAME_INVALID_FIELD');
    // map32 header claiming 4G entries as the resume map
    expectCode(mp([1, 2, 'e', 'v', raw(0xdf, 0xff, 0xff, 0xff, 0xff), map([])]), 'MS_FRAME_INVALID_FIELD');
  });

  it('never throws for non-binary input', () => {
    for (const bad of [undefined, null, 'abc', 42, {}, [0x93, 4, 0xa1, 0x73, 0], new ArrayBuffer(4)]) {
      const r: DecodeResult = decodeFrame(bad as unknown as Uint8Array);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('MS_FRAME_MALFORMED');
    }
  });
});

// ---------------------------------------------------------------------------------------


const CODES = new Set<string>(['MS_FRAME_TOO_LARGE', 'MS_FRAME_MALFORMED', 'MS_FRAME_UNKNOWN_TYPE', 'MS_FRAME_INVALID_FIELD', 'MS_PROTOCOL_VERSION']);

interface FuzzStats {
  ok: number;
  rejected: number;
  codes: Record<string, number>;
}

/** The invariants, checked without expect() per input to keep 20 000 iterations fast. */
function checkInput(bytes: Uint8Array, stats: FuzzStats): void {
  let r: DecodeResult;
  try {
    r = decodeFrame(bytes, 512);
  } catch (error) {
    throw new Error(`decodeFrame threw for ${hex(bytes)}: ${String(error)}`);
  }
  if (r.ok === true) {
    stats.ok++;
    const again = decodeFrame(encodeFrame(r.frame));
    if (!again.ok) throw new Error(`re-encoded frame rejected (${again.error.code}) for ${hex(bytes)}`);
    expect(comparable(again.frame), hex(bytes)).toEqual(comparable(r.frame));
  } else if (r.ok === false) {
    stats.rejected++;
    if (!(r.error instanceof ProtocolError) || !CODES.has(r.error.code)) throw new Error(`bad error ${String(r.error)} for ${hex(bytes)}`);
    stats.codes[r.error.code] = (stats.codes[r.error.code] ?? 0) + 1;
  } else {
    throw new Error(`result without ok flag for ${hex(bytes)}`);
  }
}

describe('fuzz', () => {
  it('random byte arrays never throw', () => {
    const rand = mulberry32(0x5eed1);
    const stats: FuzzStats = { ok: 0, rejected: 0, codes: {} };
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      const bytes = new Uint8Array(Math.floor(rand() * 257));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(rand() * 256);
      // half of them start like a frame so the decoder gets past the header more often
      if (i % 2 === 1 && bytes.length >= 2) {
        bytes[0] = 0x90 | (2 + Math.floor(rand() * 6));
        bytes[1] = 1 + Math.floor(rand() * 12);
      }
      checkInput(bytes, stats);
    }
    expect(stats.ok + stats.rejected).toBe(N);
    expect(stats.codes['MS_FRAME_MALFORMED']).toBeGreaterThan(0);
    expect(stats.codes['MS_FRAME_UNKNOWN_TYPE']).toBeGreaterThan(0);
  });

  it('mutations of valid frames never throw and accepted ones round-trip', () => {
    const rand = mulberry32(0xc0ffee);
    const pick = (n: number): number => Math.floor(rand() * n);
    const seeds = [...samples.filter((f) => f.type !== FrameType.DATA || f.payload.length < 100).map(encodeFrame), ...Object.values(base).map(mp)];
    const stats: FuzzStats = { ok: 0, rejected: 0, codes: {} };
    const N = 10_000;
    for (let i = 0; i < N; i++) {
      let bytes = Array.from(seeds[pick(seeds.length)]!);
      const ops = 1 + pick(3);
      for (let k = 0; k < ops; k++) {
        const op = pick(5);
        const at = pick(bytes.length + 1);
        if (op === 0 && bytes.length > 0) bytes[Math.min(at, bytes.length - 1)] = pick(256);
        else if (op === 1 && bytes.length > 0) bytes[Math.min(at, bytes.length - 1)]! ^= 1 << pick(8);
        else if (op === 2) bytes = bytes.slice(0, at);
        else if (op === 3) bytes.splice(at, 0, ...Array.from({ length: 1 + pick(4) }, () => pick(256)));
        else bytes.splice(at, 1 + pick(3));
      }
      checkInput(new Uint8Array(bytes), stats);
    }
    expect(stats.ok + stats.rejected).toBe(N);
    // the re-encode branch must actually run, and every kind of rejection should show up
    expect(stats.ok).toBeGreaterThan(100);
    expect(stats.codes['MS_FRAME_MALFORMED']).toBeGreaterThan(0);
    expect(stats.codes['MS_FRAME_INVALID_FIELD']).toBeGreaterThan(0);
    expect(stats.codes['MS_FRAME_UNKNOWN_TYPE']).toBeGreaterThan(0);
    expect(stats.codes['MS_FRAME_TOO_LARGE']).toBeUndefined();
  });
});

describe('HELLO transports (optional 7th field)', () => {
  it('round-trips the transport list and rejects a bad one', () => {
    const hello = { type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'e', sdkVersion: '1', resume: {}, epochs: {}, transports: ['webtransport', 'webrtc'] } as const;
    const d = decodeFrame(encodeFrame({ ...hello, transports: [...hello.transports] }));
    expect(d.ok && d.frame).toEqual({ ...hello, transports: ['webtransport', 'webrtc'] });
    const bad = decodeFrame(encodeFrame({ ...hello, transports: ['NOT OK'] }));
    expect(bad.ok ? undefined : bad.error.code).toBe('MS_FRAME_INVALID_FIELD');
    const many = decodeFrame(encodeFrame({ ...hello, transports: ['a', 'b', 'c', 'd', 'e'] }));
    expect(many.ok ? undefined : many.error.code).toBe('MS_FRAME_INVALID_FIELD');
  });
});

describe('HELLO of another protocol version', () => {
  it('a version 1 HELLO (token, sdkVersion, resume without epochs) is reported as MS_PROTOCOL_VERSION, not as a bad field', () => {
    expectCode(mp([1, 1, 'edge-1', 'eyJhbGciOiJIUzI1NiJ9.x.y', '0.1.0', map([['s', 5]])]), 'MS_PROTOCOL_VERSION');
    expectCode(mp([1, 1, 'edge-1', 'tok', '0.1.0', map([]), ['webtransport', 'webrtc']]), 'MS_PROTOCOL_VERSION');
  });

  it('so is a newer version, whatever its layout; a version that is not an unsigned integer is a bad field', () => {
    expectCode(mp([1, 3, 'e', 'v', map([]), map([])]), 'MS_PROTOCOL_VERSION');
    expectCode(mp([1, 3, 'e', 'v', 'whatever', 7]), 'MS_PROTOCOL_VERSION');
    expectCode(mp([1, -1, 'e', 'v', map([]), map([])]), 'MS_FRAME_INVALID_FIELD');
    expectCode(mp([1, PROTOCOL_VERSION, 'e', 'v', map([]), map([])]).subarray(0, 5), 'MS_FRAME_MALFORMED');
  });
});
