import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../gateway/src/index.js';
import { ERROR_LINGER_MS } from '../../gateway/src/endpoints/connection.js';
import { decodeFrame, encodeFrame, ERROR_CODES, FrameType, PROTOCOL_VERSION, SDK_VERSION, type Frame } from '../../receiver-sdk/src/index.js';
import { harness, seqsOf } from '../helpers/memory-harness.js';
import { FUZZ, fuzzParams } from './fuzz-params.js';

/**
 * Property tests of the wire: the decoder on any bytes (never throws; rejects with a
 * frame code; what it accepts re-encodes to the same frame), and the gateway's handshake
 * fed generated frame sequences (a violation gets ERROR with a documented code before
 * the close; a valid HELLO gets WELCOME; a reference receiver is never disturbed).
 */
const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,32}$/);
const u32 = fc.integer({ min: 0, max: 2 ** 32 - 1 });
const seq = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });

/** Frames as a receiver might send them; `versions` lets HELLO name protocols other than ours. */
const frames = (versions: readonly number[]): fc.Arbitrary<Frame> => fc.oneof(
  fc
    .record({
      version: fc.constantFrom(...versions),
      endpointId: fc.constantFrom('rx', 'rx', 'mallory'),
      sdkVersion: fc.constantFrom(SDK_VERSION, SDK_VERSION, '1.0.0', '0.1.0', 'x'),
      resume: fc.dictionary(id, seq, { maxKeys: 3 }),
    })
    // an epoch may be named only for a stream with a resume position
    .chain((h) => fc.subarray(Object.keys(h.resume)).chain((keys) => fc.tuple(...keys.map(() => id)).map((eps) => ({ type: FrameType.HELLO, ...h, resume: { ...h.resume }, epochs: Object.fromEntries(keys.map((k, i) => [k, eps[i]!])) })))),
  fc.record({ type: fc.constant(FrameType.ACK), streamId: id, seq }),
  fc.record({ type: fc.constant(FrameType.HEARTBEAT), nonce: u32, sentAt: seq, cadenceMs: fc.integer({ min: 1, max: 60_000 }) }, { requiredKeys: ['type', 'nonce', 'sentAt'] }),
  // a report interval is told only with a cadence
  fc.record({ type: fc.constant(FrameType.HEARTBEAT), nonce: u32, sentAt: seq, cadenceMs: fc.integer({ min: 1, max: 60_000 }), reportMs: fc.integer({ min: 1, max: 600_000 }) }),
  fc.record({ type: fc.constant(FrameType.HEARTBEAT_ACK), nonce: u32, sentAt: seq }),
  fc.record({
    type: fc.constant(FrameType.RECEIVER_REPORT),
    streamId: id,
    receivedChunks: seq,
    receivedBytes: seq,
    rateBytesPerSec: fc.double({ min: 0, max: 1e12, noNaN: true }),
    rttMs: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true })),
    gapCount: seq,
  }),
  fc.record({ type: fc.constant(FrameType.DATA), streamId: id, seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), timestamp: seq, payload: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ type: fc.constant(FrameType.ROLE), streamId: id, role: fc.constantFrom('active' as const, 'standby' as const), fromSeq: seq, epoch: id }),
  fc.record({ type: fc.constant(FrameType.ERROR), code: fc.constantFrom(...Object.keys(ERROR_CODES)), message: fc.string({ maxLength: 50 }) }),
  fc.record({ type: fc.constant(FrameType.END), streamId: id, reason: fc.string({ maxLength: 20 }) }),
);
/** Valid in layout (not necessarily in the session's state). */
const validFrame = frames([PROTOCOL_VERSION]);
/** Sometimes a HELLO of another protocol version. */
const frame = frames([PROTOCOL_VERSION, PROTOCOL_VERSION, 1, 3, 99]);

/** Bytes: any, frame-shaped msgpack with wrong fields, deeply nested msgpack, and valid frames. */
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.tuple(fc.integer({ min: -2, max: 20 }), fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 8 })).map(([t, rest]) => new Uint8Array(pack([t, ...rest]))),
  fc.integer({ min: 10, max: 5_000 }).map((n) => new Uint8Array([...Array.from({ length: n }, () => 0x91), 0x01])),
  // well-formed frames most often, so sessions get past the handshake and on
  { arbitrary: frame.map((f) => encodeFrame(f)), weight: 6 },
  frame.chain((f) => fc.nat({ max: 40 }).map((cut) => encodeFrame(f).subarray(0, cut))),
);

const FRAME_CODES = new Set(['MS_FRAME_TOO_LARGE', 'MS_FRAME_MALFORMED', 'MS_FRAME_UNKNOWN_TYPE', 'MS_FRAME_INVALID_FIELD', 'MS_PROTOCOL_VERSION']);

describe('wire fuzz (fast-check)', () => {
  it('the decoder never throws; it rejects with a frame code; what it accepts re-encodes to the same frame', () => {
    fc.assert(
      fc.property(bytes, (b) => {
        const d = decodeFrame(b, 1024 * 1024);
        if (!d.ok) {
          expect(FRAME_CODES).toContain(d.error.code);
          return;
        }
        const again = decodeFrame(encodeFrame(d.frame));
        expect(again.ok && again.frame).toEqual(d.frame);
      }),
      fuzzParams(FUZZ.decoderRuns),
    );
  });

  it('every valid frame round-trips', () => {
    fc.assert(
      fc.property(validFrame, (f) => {
        const d = decodeFrame(encodeFrame(f));
        // the decoder hands DATA payloads out as Buffers (views, no copy)
        const decoded = d.ok && d.frame.type === FrameType.DATA ? { ...d.frame, payload: new Uint8Array(d.frame.payload) } : d.ok && d.frame;
        expect(decoded).toEqual(f);
      }),
      fuzzParams(FUZZ.decoderRuns),
    );
  });

  it('handshake: a violation gets ERROR (documented code) before the close, a valid HELLO gets WELCOME; the reference receiver gets every chunk', async () => {
    const outcomes = new Map<string, number>();
    await fc.assert(
      // half the sessions start with a valid HELLO, so what follows is tried on an open connection
      fc.asyncProperty(fc.boolean(), fc.array(bytes, { minLength: 1, maxLength: 12 }), async (helloFirst, rest) => {
        const hello = encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'rx', sdkVersion: SDK_VERSION, resume: {}, epochs: {} });
        const inputs = helloFirst ? [hello, ...rest] : rest;
        const h = harness({ helloTimeoutMs: 1_000 });
        try {
          const good = await h.receiver('good');
          await h.gateway.createStream({ stream_id: 'ref', endpoint_list: ['good'] });
          const [g, r] = MemoryTransport.pair();
          const got: string[] = [];
          const codes: string[] = [];
          r.on('message', (b) => {
            const d = decodeFrame(b);
            got.push(d.ok ? String(d.frame.type) : 'undecodable');
            if (d.ok && d.frame.type === FrameType.ERROR) codes.push(d.frame.code);
          });
          r.on('close', () => got.push('close'));
          h.gateway.accept(g, { endpointId: 'rx' });
          for (const [i, b] of inputs.entries()) {
            r.send(b, 'control');
            await h.gateway.publish('ref', `ref ${i}`);
            await h.step(10);
          }
          await h.step(1_000 + ERROR_LINGER_MS + 100);
          expect(got).not.toContain('undecodable');
          const closeAt = got.indexOf('close');
          const errorAt = got.indexOf(String(FrameType.ERROR));
          const receiverSentError = got[0] === String(FrameType.WELCOME) && inputs.some((b) => {
            const d = decodeFrame(b);
            return d.ok && d.frame.type === FrameType.ERROR;
          });
          if (closeAt >= 0 && errorAt < 0) {
            // the receiver's own ERROR on an open connection closes it without an answer
            expect(receiverSentError).toBe(true);
          } else if (closeAt >= 0) {
            // else closed only after an ERROR, with a documented code
            expect(errorAt).toBeLessThan(closeAt);
            expect(Object.keys(ERROR_CODES)).toContain(codes[0]);
            expect(got.slice(errorAt + 1, closeAt)).toEqual([]);
          } else {
            // still open: it said a valid HELLO first
            expect(got[0]).toBe(String(FrameType.WELCOME));
          }
          const outcome = closeAt < 0 ? 'open' : errorAt < 0 ? 'closed on the receiver\'s ERROR' : `ERROR ${codes[0]}`;
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          expect(seqsOf(good, 'ref')).toEqual(inputs.map((_, i) => i + 1));
        } finally {
          await h.close();
        }
      }),
      fuzzParams(FUZZ.handshakeRuns),
    );
    console.log(`[handshake fuzz] ${[...outcomes].sort((a, b) => b[1] - a[1]).map(([o, n]) => `${o}: ${n}`).join(', ')}`);
  }, 900_000);
});
