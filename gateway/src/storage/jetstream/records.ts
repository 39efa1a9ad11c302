import { z } from 'zod';
import { ID_PATTERN } from '@mirrorstream/receiver/protocol';
import { streamSpecSchema } from '../../streams/spec.js';
import type { StoredStream, SharedEndpointState } from '../backend.js';
import { SWITCH_REASONS, type RoleDecision, type SwitchRecord } from '../../streams/types.js';

/**
 * What the gateway reads back from the engine, checked with the schemas the HTTP API uses:
 * another instance (another version, a bug, a hand-made write) may have stored anything, and
 * a record that does not fit is logged and skipped, never cast.
 */

const id = z.string().regex(ID_PATTERN);
const time = z.number().finite();
const seq = z.number().int().nonnegative();

const storedStreamSchema = z.object({ spec: streamSpecSchema, epoch: id, createdAt: time });

const metricStateSchema = z.object({
  value: z.number().optional(),
  threshold: z.number(),
  kind: z.enum(['max', 'min']),
  source: z.string(),
  breached: z.boolean(),
  breachedSince: time.optional(),
});
const metricsSchema = z.record(z.string(), metricStateSchema);

const healthSchema = z.object({
  verdict: z.enum(['healthy', 'degraded']),
  score: z.number(),
  since: time,
  reasons: z.array(z.string()),
  metrics: metricsSchema,
});

/** An endpoint board record: one instance's view of an endpoint it holds, and when it wrote it. */
const boardRecordSchema = z.object({
  state: z.enum(['disconnected', 'alive', 'suspect', 'dead']),
  degraded: z.boolean(),
  upSince: time.optional(),
  disconnectedAt: time.optional(),
  streams: z.record(z.string(), z.boolean()),
  health: healthSchema,
  at: time,
});

const reasonSchema = z.enum(SWITCH_REASONS);
const switchRecordSchema = z.object({
  from: id.nullable(),
  to: id.nullable(),
  reason: reasonSchema,
  at: time,
  from_seq: seq,
  detail: z.array(z.string()).optional(),
  metrics: metricsSchema.optional(),
  interruption_ms: z.number().optional(),
});
const decisionSchema = z.object({
  active: z.array(id),
  promoted: z.array(z.object({ id, fromSeq: seq, reason: reasonSchema, record: switchRecordSchema })),
  demoted: z.array(z.object({ id, reason: reasonSchema, record: switchRecordSchema.optional() })),
  hedges: z.array(z.object({ for: id, by: id, fromSeq: seq })).optional(),
});

const controlMessageSchema = z.discriminatedUnion('k', [
  z.object({ k: z.literal('lease'), by: z.string().min(1).max(64), until: time }),
  z.object({ k: z.literal('roles'), by: z.string().min(1).max(64), d: decisionSchema }),
]);

export type BoardRecord = SharedEndpointState & { readonly at: number };
export type ControlMessage = { k: 'lease'; by: string; until: number } | { k: 'roles'; by: string; d: RoleDecision };

function parse<T>(schema: z.ZodType<T>, text: string): T | undefined {
  try {
    const r = schema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export function parseStoredStream(text: string): StoredStream | undefined {
  return parse(storedStreamSchema, text);
}

export function parseBoardRecord(text: string): BoardRecord | undefined {
  const r = parse(boardRecordSchema, text);
  return r && { ...r, upSince: r.upSince, disconnectedAt: r.disconnectedAt, health: { ...r.health, metrics: normalizeMetrics(r.health.metrics) } };
}

export function parseControlMessage(text: string): ControlMessage | undefined {
  const m = parse(controlMessageSchema, text);
  if (!m || m.k === 'lease') return m;
  const { active, promoted, demoted, hedges } = m.d;
  const d: RoleDecision = {
    active,
    promoted: promoted.map((p) => ({ ...p, record: switchRecord(p.record) })),
    demoted: demoted.map((x) => (x.record ? { ...x, record: switchRecord(x.record) } : { id: x.id, reason: x.reason })),
    ...(hedges ? { hedges } : {}),
  };
  return { k: 'roles', by: m.by, d };
}

function switchRecord(r: z.infer<typeof switchRecordSchema>): SwitchRecord {
  const { metrics, ...rest } = r;
  return metrics ? { ...rest, metrics: normalizeMetrics(metrics) } : rest;
}

/** A cursor value: the last acked seq, as decimal text. */
export function parseCursor(text: string): number | undefined {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/** JSON drops `undefined`: a metric with nothing measured yet comes back without `value`. */
function normalizeMetrics(metrics: z.infer<typeof metricsSchema>) {
  return Object.fromEntries(Object.entries(metrics).map(([k, m]) => [k, { ...m, value: m.value, breachedSince: m.breachedSince }]));
}
