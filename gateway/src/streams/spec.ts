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

export const streamSpecSchema = z
  .strictObject({
    stream_id: idSchema,
    endpoint_list: endpointListSchema,
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
  })
  .refine((s) => s.mode === 'mirror' || s.mirror_k === undefined, {
    message: 'mirror_k is only valid with mode "mirror"',
    path: ['mirror_k'],
  });

export type StreamSpecInput = z.input<typeof streamSpecSchema>;

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

export const addEndpointSchema = z.strictObject({
  endpoint_id: idSchema,
  priority: z.number().int().min(0).max(MAX_ENDPOINTS_PER_STREAM).optional().meta({ description: 'Position in the priority list (0 = most preferred); default: last.' }),
});
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
