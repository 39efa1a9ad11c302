import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunksFromJson, chunksFromJsonSchema } from '../../gateway/src/http/chunks.js';

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
