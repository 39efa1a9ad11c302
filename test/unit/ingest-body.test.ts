import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunksFromJson, chunksFromJsonSchema } from '../../gateway/src/http/chunks.js';
import { batchFromFrame, batchFromFrameSchema } from '../../gateway/src/http/ingest-stream.js';

/** The hand-checked common JSON batch accepts exactly what the schema accepts, with the same chunks. */
const outcome = (f: () => unknown): unknown => {
  try {
    return { ok: f() };
  } catch (error) {
    return { code: (error as { code?: string }).code };
  }
};

describe('JSON chunk batches', () => {
  it('the fast path and the schema agree on every body', () => {
    const value = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.string({ minLength: 250, maxLength: 260 }),
      fc.integer({ min: -2, max: 17 }),
      fc.double({ min: -1, max: 16, noNaN: true }),
      fc.constant(null),
      fc.boolean(),
      fc.constant(''),
      fc.array(fc.integer(), { maxLength: 2 }),
    );
    const chunk = fc.oneof(
      fc.record({ payload: fc.string({ maxLength: 30 }) }),
      fc.record({ payload: value, key: fc.option(value, { nil: undefined }), layer: fc.option(value, { nil: undefined }) }, { requiredKeys: [] }),
      fc.dictionary(fc.constantFrom('payload', 'key', 'layer', 'json', 'payload_base64', 'extra', '__proto__'), value, { maxKeys: 4 }),
      value,
    );
    const body = fc.oneof(
      fc.record({ chunks: fc.array(chunk, { maxLength: 5 }) }),
      fc.record({ chunks: fc.array(chunk, { maxLength: 3 }), more: value }),
      value,
    );
    fc.assert(
      fc.property(body, (b) => {
        // as express.json hands it over: parsed JSON text
        const parsed = JSON.parse(JSON.stringify(b) ?? 'null') as unknown;
        expect(outcome(() => chunksFromJson(parsed))).toEqual(outcome(() => chunksFromJsonSchema(parsed)));
      }),
      // seeded: the same 2 000 bodies every run (a failure prints its seed and path)
      { numRuns: 2_000, seed: 3701 },
    );
  });

  it('a plain batch: text payloads as UTF-8, key and layer kept, limits as the schema has them', () => {
    expect(chunksFromJson({ chunks: [{ payload: 'é' }, { payload: 'x', key: 'k', layer: 15 }] })).toEqual([
      { payload: new TextEncoder().encode('é') },
      { payload: new TextEncoder().encode('x'), key: 'k', layer: 15 },
    ]);
    expect(() => chunksFromJson({ chunks: [{ payload: 'x', layer: 16 }] })).toThrow(/layer/);
    expect(() => chunksFromJson({ chunks: [] })).toThrow();
    expect(() => chunksFromJson({ chunks: Array.from({ length: 10_001 }, () => ({ payload: 'x' })) })).toThrow();
  });
});

describe('streaming ingest BATCH frames', () => {
  it('the hand check and the schema agree on every decoded frame', () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 8 }),
      fc.string({ minLength: 255, maxLength: 258 }),
      fc.integer({ min: -2, max: 2 ** 32 + 1 }),
      fc.constantFrom(0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32 - 1, 2 ** 32),
      fc.constant(null),
      fc.constant(undefined),
      fc.boolean(),
      fc.uint8Array({ maxLength: 4 }),
    );
    const entry = fc.oneof(fc.tuple(fc.uint8Array({ maxLength: 4 })), fc.tuple(fc.string({ maxLength: 4 }), fc.option(fc.string({ maxLength: 4 })), fc.option(fc.integer({ min: -1, max: 16 }))), fc.array(scalar, { maxLength: 4 }), scalar);
    const frame = fc.oneof(
      fc.tuple(fc.constant(1), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.string({ maxLength: 6 }), fc.option(fc.string({ maxLength: 6 })), fc.array(entry, { maxLength: 4 })),
      fc.tuple(fc.constant(1), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.string({ maxLength: 6 }), fc.option(fc.string({ maxLength: 6 })), fc.array(entry, { maxLength: 4 }), fc.oneof(fc.option(fc.integer({ min: 0, max: 2 ** 32 - 1 })), scalar)),
      fc.tuple(fc.constant(1), fc.integer({ min: 0, max: 5 }), fc.string({ maxLength: 3 }), fc.constant(null), fc.array(entry, { minLength: 1, maxLength: 2 }), scalar, scalar),
      fc.tuple(fc.oneof(fc.constant(1), scalar), scalar, scalar, scalar, fc.oneof(fc.array(entry, { maxLength: 3 }), scalar)),
      fc.array(scalar, { maxLength: 7 }),
      scalar,
    );
    fc.assert(
      fc.property(frame, (f) => {
        expect(outcome(() => batchFromFrame(f))).toEqual(outcome(() => batchFromFrameSchema(f)));
      }),
      { numRuns: 3_000, seed: 3702 },
    );
  });
});
