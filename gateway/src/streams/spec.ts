import { z } from 'zod';
import { ID_PATTERN, MirrorstreamError } from '@mirrorstream/receiver/protocol';

/**
 * Input schemas shared by the in-process `Gateway` methods and the HTTP API, so both
 * entry points validate the same way. JSON shapes use snake_case, like the HTTP API.
 */
export const idSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(ID_PATTERN, 'ids are 1-128 chars of A-Z a-z 0-9 . _ : -')
  .meta({ description: 'A stream or endpoint id: 1-128 chars of A-Z a-z 0-9 . _ : -', examples: ['feed-1'] });

export const MAX_ENDPOINTS_PER_STREAM = 64;

const endpointListSchema = z
  .array(idSchema)
  .max(MAX_ENDPOINTS_PER_STREAM)
  .refine((list) => new Set(list).size === list.length, { message: 'endpoint_list has duplicates' })
  // the refine above is not rendered into JSON Schema: say it there too
  .meta({ uniqueItems: true, description: 'Endpoint ids in priority order (index 0 is the most preferred), no duplicates.' });

export const MAX_LISTENER_URL_LENGTH = 2048;

/** Where a listening endpoint is dialed: http or https, no credentials, no fragment. */
export const listenerUrlSchema = z
  .string()
  .max(MAX_LISTENER_URL_LENGTH)
  .superRefine((v, ctx) => {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return void ctx.addIssue({ code: 'custom', message: 'not a URL' });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `scheme ${url.protocol.slice(0, 20)} is not http or https` });
    if (url.username || url.password) ctx.addIssue({ code: 'custom', message: 'no credentials in the URL: the token goes in `token`' });
    if (url.hash) ctx.addIssue({ code: 'custom', message: 'no #fragment' });
  })
  .meta({ description: 'The listener\'s URL (http or https, no credentials): the gateway POSTs its WebRTC offer there.', examples: ['https://collector-1.example:9443/'] });

/** The secret the gateway presents to a listening endpoint (`Authorization: Bearer …`). */
export const listenerTokenSchema = z
  .string()
  .min(16)
  .max(1024)
  .regex(/^[\x21-\x7e]+$/, 'visible ASCII only')
  .meta({ description: 'The secret the gateway presents to the listener (Authorization: Bearer): 16-1024 visible ASCII characters. Never shown in answers.' });

/** An endpoint that listens: the gateway dials it. */
export const listeningEndpointSchema = z.strictObject({ endpoint_id: idSchema, url: listenerUrlSchema, token: listenerTokenSchema });
export type ListeningEndpointInput = z.input<typeof listeningEndpointSchema>;

/** What a stream keeps of its listening endpoints: where to dial each (by endpoint id). */
const listenersSchema = z.record(idSchema, z.strictObject({ url: listenerUrlSchema, token: listenerTokenSchema }));
export type Listeners = z.output<typeof listenersSchema>;

const endpointEntriesSchema = z
  .array(z.union([idSchema, listeningEndpointSchema]))
  .max(MAX_ENDPOINTS_PER_STREAM)
  .refine((list) => new Set(list.map(entryId)).size === list.length, { message: 'endpoint_list has duplicates' })
  .meta({
    uniqueItems: true,
    description: 'Endpoints in priority order (index 0 is the most preferred), no duplicate ids: an id (the endpoint dials in) or {endpoint_id, url, token} (it listens at url and the gateway dials it); both kinds mix.',
  });

/** The endpoint id of an endpoint_list entry. */
export function entryId(entry: string | { endpoint_id: string }): string {
  return typeof entry === 'string' ? entry : entry.endpoint_id;
}

const specFields = {
  stream_id: idSchema,
  mode: z
    .enum(['failover', 'mirror'])
    .default('failover')
    .meta({ description: 'failover: the most preferred healthy endpoint receives; mirror: mirror_k (default: all) receive at once.' }),
  /**
   * reliable: DATA on a reliable ordered channel (the default, the gap-free guarantee);
   * unreliable: DATA on an unordered channel without retransmission (live video, ticks
   * where late is useless); the SDK delivers what arrives in seq order and reports holes.
   */
  reliability: z
    .enum(['reliable', 'unreliable'])
    .default('reliable')
    .meta({ description: 'reliable: an ordered reliable channel, gap-free; unreliable: unordered, no retransmission (late is useless).' }),
  mirror_k: z
    .number()
    .int()
    .min(1)
    .max(MAX_ENDPOINTS_PER_STREAM)
    .optional()
    .meta({ description: 'Mode mirror only (refused with failover): how many endpoints receive at once (default: all).' }),
  retention: z
    .strictObject({
      max_chunks: z.number().int().min(1).max(10_000_000).optional(),
      max_bytes: z.number().int().min(1024).max(16 * 1024 ** 3).optional(),
      max_age_ms: z.number().int().min(1).max(7 * 24 * 3600_000).optional(),
    })
    .optional()
    .meta({ description: "What the stream's log keeps for resuming receivers (defaults: the gateway's retention config)." }),
  policy: z.lazy(() => policySchema).optional(),
  failback: z
    .strictObject({
      enabled: z.boolean().optional(),
      stable_ms: z.number().int().min(0).max(3600_000).optional(),
    })
    .optional()
    .meta({ description: 'Whether a recovered more preferred endpoint takes the stream back, once healthy for stable_ms.' }),
};

const mirrorKOnlyWithMirror = (s: { mode: string; mirror_k?: number | undefined }): boolean => s.mode === 'mirror' || s.mirror_k === undefined;
const MIRROR_K_ONLY = { message: 'mirror_k is only valid with mode "mirror"', path: ['mirror_k'] };

/** A stream's spec as stored and applied: endpoint ids in priority order, and where to dial the listening ones. */
export const streamSpecSchema = z
  .strictObject({
    ...specFields,
    endpoint_list: endpointListSchema,
    listeners: listenersSchema.optional().meta({ description: 'The listening endpoints of endpoint_list: where the gateway dials each.' }),
  })
  .refine(mirrorKOnlyWithMirror, MIRROR_K_ONLY);

/** `POST /v1/streams` and `createStream`: the spec with endpoint_list entries of both kinds. */
export const streamSpecInputSchema = z.strictObject({ ...specFields, endpoint_list: endpointEntriesSchema }).refine(mirrorKOnlyWithMirror, MIRROR_K_ONLY);

/** The stored form of a parsed input spec: ids in endpoint_list, the listeners' targets beside. */
export function specFromInput(input: z.output<typeof streamSpecInputSchema>): StreamSpec {
  const listeners: Listeners = {};
  for (const e of input.endpoint_list) if (typeof e !== 'string') listeners[e.endpoint_id] = { url: e.url, token: e.token };
  const { endpoint_list, ...rest } = input;
  return { ...rest, endpoint_list: endpoint_list.map(entryId), ...(Object.keys(listeners).length > 0 ? { listeners } : {}) };
}

export type StreamSpecInput = z.input<typeof streamSpecInputSchema>;

/**
 * Overflow policy: what happens when the stream produces faster than an endpoint takes
 * it (its oldest unsent, or for backpressure unacked, chunk is older than max_backlog_ms).
 */
export const policySchema = z.strictObject({
  overflow: z
    .enum(['backpressure', 'drop-oldest', 'conflate', 'decimate', 'layers'])
    .default('backpressure')
    .meta({ description: 'backpressure holds the producer back (429 MS_BACKPRESSURE); the others skip chunks (GAP) for the slow endpoint only.' }),
  max_backlog_ms: z.number().int().min(10).max(600_000).default(2_000),
  decimate_n: z.number().int().min(2).max(1_000).default(2),
});
export type PolicyInput = z.input<typeof policySchema>;
export type StreamSpec = z.output<typeof streamSpecSchema>;

export const addEndpointSchema = z
  .strictObject({
    endpoint_id: idSchema,
    priority: z.number().int().min(0).max(MAX_ENDPOINTS_PER_STREAM).optional().meta({ description: 'Position in the priority list (0 = most preferred); default: last.' }),
    url: listenerUrlSchema.optional().meta({ description: 'With token: the endpoint listens at this URL and the gateway dials it.' }),
    token: listenerTokenSchema.optional(),
  })
  .refine((e) => (e.url === undefined) === (e.token === undefined), { message: 'url and token go together (a listening endpoint)', path: ['token'] });
export type AddEndpointInput = z.input<typeof addEndpointSchema>;

export const reorderSchema = z.strictObject({ endpoint_list: endpointListSchema });

export const MAX_KEY_LENGTH = 256;
export const MAX_LAYER = 15;

export const chunkOptionsSchema = z.strictObject({
  key: z.string().min(1).max(MAX_KEY_LENGTH).optional(),
  layer: z.number().int().min(0).max(MAX_LAYER).optional(),
});
export type ChunkOptions = z.input<typeof chunkOptionsSchema>;

/** A chunk for `publishBatch`: the bytes plus optional conflation key and quality layer. */
export interface ChunkInput extends ChunkOptions {
  payload: Uint8Array;
}

/** Parse with a schema; failures become MS_BAD_REQUEST with every problem listed. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new MirrorstreamError('MS_BAD_REQUEST', `invalid ${what}: ${z.prettifyError(result.error).replace(/\n/g, '; ')}`);
  }
  return result.data;
}
