import { unpack } from 'msgpackr';
import { z } from 'zod';
import { MirrorstreamError } from '@mirrorstream/receiver/protocol';
import { MAX_KEY_LENGTH, MAX_LAYER, parseInput, type ChunkInput } from '../streams/spec.js';

/**
 * Ingest body formats for `POST /v1/streams/:id/chunks`:
 * - `application/json`: `{chunks:[{payload|payload_base64|json, key?, layer?}]}`:
 *   `payload` is text sent as UTF-8, `payload_base64` is binary, `json` is any JSON
 *   value sent as its UTF-8 JSON text (market ticks, sensor readings).
 * - `application/msgpack`: `{chunks:[{payload: bin|str, key?, layer?}]}`.
 * - `application/octet-stream`: the body is one chunk; `?key=&layer=` in the query.
 */
export const MAX_CHUNKS_PER_BATCH = 10_000;

/** The media types taken as msgpack. */
export const MSGPACK_TYPES = ['application/msgpack', 'application/x-msgpack', 'application/vnd.msgpack'] as const;

const common = {
  key: z.string().min(1).max(MAX_KEY_LENGTH).optional(),
  layer: z.number().int().min(0).max(MAX_LAYER).optional(),
};

const jsonChunk = z
  .strictObject({
    payload: z.string().optional(),
    payload_base64: z.base64().optional(),
    json: z.unknown().optional(),
    ...common,
  })
  .refine((c) => [c.payload, c.payload_base64, c.json].filter((v) => v !== undefined).length === 1, {
    message: 'each chunk needs exactly one of payload, payload_base64, json',
  })
  .meta({
    description: 'Exactly one of payload (text, sent as UTF-8), payload_base64 (bytes) or json (any JSON value, sent as its JSON text).',
    // the refine is not rendered into JSON Schema: "exactly one" said in JSON Schema
    override: { oneOf: [{ required: ['payload'] }, { required: ['payload_base64'] }, { required: ['json'] }] },
  });

/** The `application/json` body (exported for the OpenAPI document, like the two below). */
export const jsonBatch = z.strictObject({ chunks: z.array(jsonChunk).min(1).max(MAX_CHUNKS_PER_BATCH) });

const msgpackChunk = z.strictObject({
  payload: z.union([
    // a Uint8Array has no JSON Schema: the document names the msgpack type instead
    z.instanceof(Uint8Array).meta({ override: { type: 'string', contentMediaType: 'application/octet-stream', description: 'msgpack bin' } }),
    z.string().meta({ description: 'msgpack str, sent as UTF-8' }),
  ]),
  ...common,
});
/** The `application/msgpack` body, decoded. */
export const msgpackBatch = z.strictObject({ chunks: z.array(msgpackChunk).min(1).max(MAX_CHUNKS_PER_BATCH) });

/** The query of an `application/octet-stream` body. */
export const rawQuery = z.object({
  key: z.string().min(1).max(MAX_KEY_LENGTH).optional(),
  layer: z.coerce.number().int().min(0).max(MAX_LAYER).optional(),
});

const encoder = new TextEncoder();

export function chunksFromJson(body: unknown): ChunkInput[] {
  return plainJsonBatch(body) ?? chunksFromJsonSchema(body);
}

/** A JSON batch through the schema: every shape, and the error messages (the common shape takes plainJsonBatch). */
export function chunksFromJsonSchema(body: unknown): ChunkInput[] {
  const { chunks } = parseInput(jsonBatch, body, 'chunk batch');
  return chunks.map((c) => ({
    payload:
      c.payload !== undefined
        ? encoder.encode(c.payload)
        : c.payload_base64 !== undefined
          ? new Uint8Array(Buffer.from(c.payload_base64, 'base64'))
          : encoder.encode(JSON.stringify(c.json)),
    ...(c.key === undefined ? {} : { key: c.key }),
    ...(c.layer === undefined ? {} : { layer: c.layer }),
  }));
}

/**
 * The common JSON batch, `{chunks: [{payload: "text", key?, layer?}, …]}`, checked by hand: it
 * accepts only what `jsonBatch` accepts, without the schema's cost per chunk (a feed posts
 * thousands of these a second). Anything else (other fields, base64 or json payloads, a value
 * out of range) is undefined here and goes through the schema, which also words the errors.
 */
function plainJsonBatch(body: unknown): ChunkInput[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const top = Object.keys(body);
  const list = (body as { chunks?: unknown }).chunks;
  if (top.length !== 1 || top[0] !== 'chunks' || !Array.isArray(list) || list.length < 1 || list.length > MAX_CHUNKS_PER_BATCH) return undefined;
  const out: ChunkInput[] = [];
  for (const c of list as unknown[]) {
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
    const { payload, key, layer } = c as { payload?: unknown; key?: unknown; layer?: unknown };
    const fields = Object.keys(c).length;
    if (typeof payload !== 'string' || fields !== 1 + (key === undefined ? 0 : 1) + (layer === undefined ? 0 : 1)) return undefined;
    if (key !== undefined && (typeof key !== 'string' || key.length < 1 || key.length > MAX_KEY_LENGTH)) return undefined;
    if (layer !== undefined && (typeof layer !== 'number' || !Number.isInteger(layer) || layer < 0 || layer > MAX_LAYER)) return undefined;
    out.push({ payload: encoder.encode(payload), ...(key === undefined ? {} : { key }), ...(layer === undefined ? {} : { layer }) });
  }
  return out;
}

export function chunksFromMsgpack(body: Uint8Array): ChunkInput[] {
  let decoded: unknown;
  try {
    decoded = unpack(body);
  } catch (error) {
    throw new MirrorstreamError('MS_BAD_REQUEST', 'request body is not valid msgpack', { cause: error });
  }
  const { chunks } = parseInput(msgpackBatch, decoded, 'chunk batch');
  return chunks.map((c) => ({
    payload: typeof c.payload === 'string' ? encoder.encode(c.payload) : c.payload,
    ...(c.key === undefined ? {} : { key: c.key }),
    ...(c.layer === undefined ? {} : { layer: c.layer }),
  }));
}

export function chunkFromRaw(body: Uint8Array, query: unknown): ChunkInput[] {
  const q = parseInput(rawQuery, query, 'query');
  return [{ payload: body, ...(q.key === undefined ? {} : { key: q.key }), ...(q.layer === undefined ? {} : { layer: q.layer }) }];
}
