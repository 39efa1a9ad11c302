import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorstreamError } from '../../receiver-sdk/src/index.js';
import { decodeVideoFrameChunk, encodeVideoFrameChunk, VIDEO_FRAME_HEADER_BYTES, webCodecsCodec, type VideoFrameChunk } from '../../receiver-sdk/src/video/frame-chunk.js';

/** The video frame chunk (receiver-sdk/src/video/frame-chunk.ts): what goes in comes out, and anything else is a coded error. */
const frame = fc.record({
  key: fc.boolean(),
  layer: fc.integer({ min: 0, max: 15 }),
  codec: fc.constantFrom('vp8' as const, 'vp9' as const),
  width: fc.integer({ min: 1, max: 0xffff }),
  height: fc.integer({ min: 1, max: 0xffff }),
  frame: fc.integer({ min: 0, max: 0xffffffff }),
  timestampUs: fc.double({ min: 0, max: 1e15, noNaN: true }),
  data: fc.uint8Array({ minLength: 1, maxLength: 64 }),
});

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (error) {
    return error instanceof MirrorstreamError ? error.code : `not coded: ${String(error)}`;
  }
};

describe('video frame chunk', () => {
  it('round-trips every valid frame, the data as a view of the payload', () => {
    fc.assert(
      fc.property(frame, (f: VideoFrameChunk) => {
        const payload = encodeVideoFrameChunk(f);
        expect(payload.byteLength).toBe(VIDEO_FRAME_HEADER_BYTES + f.data.byteLength);
        const back = decodeVideoFrameChunk(payload);
        expect({ ...back, data: [...back.data] }).toEqual({ ...f, data: [...f.data] });
        expect(back.data.buffer).toBe(payload.buffer);
      }),
      { seed: 33, numRuns: 500 },
    );
  });

  it('any other payload is MS_VIDEO_FRAME_INVALID, never another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const code = codeOf(() => decodeVideoFrameChunk(bytes));
        expect(code === undefined || code === 'MS_VIDEO_FRAME_INVALID').toBe(true);
      }),
      { seed: 33, numRuns: 2_000 },
    );
    const good = encodeVideoFrameChunk({ key: true, layer: 2, codec: 'vp8', width: 640, height: 360, frame: 7, timestampUs: 1e9, data: new Uint8Array([1, 2, 3]) });
    const bad = (at: number, value: number): Uint8Array => {
      const copy = good.slice();
      copy[at] = value;
      return copy;
    };
    for (const payload of [good.subarray(0, VIDEO_FRAME_HEADER_BYTES), bad(0, 2), bad(1, 2), bad(2, 16), bad(3, 9), bad(4, 0).fill(0, 4, 6)]) {
      expect(codeOf(() => decodeVideoFrameChunk(payload))).toBe('MS_VIDEO_FRAME_INVALID');
    }
  });

  it('refuses to encode what it could not carry', () => {
    const f: VideoFrameChunk = { key: false, layer: 0, codec: 'vp8', width: 1, height: 1, frame: 0, timestampUs: 0, data: new Uint8Array([1]) };
    for (const wrong of [{ layer: 16 }, { layer: -1 }, { width: 70_000 }, { frame: 2 ** 32 }, { timestampUs: Number.NaN }, { timestampUs: -1 }]) {
      expect(codeOf(() => encodeVideoFrameChunk({ ...f, ...wrong }))).toBe('MS_VIDEO_FRAME_INVALID');
    }
  });

  it('names the WebCodecs codec', () => {
    expect(webCodecsCodec('vp8')).toBe('vp8');
    expect(webCodecsCodec('vp9')).toBe('vp09.00.10.08');
  });
});
