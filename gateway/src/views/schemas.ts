import { z } from 'zod';
import { policySchema, streamSpecSchema } from '../streams/spec.js';
import { SWITCH_REASONS } from '../streams/types.js';

/**
 * The JSON answers of the HTTP API, as zod schemas: the OpenAPI document (http/openapi.ts) is
 * generated from them, and the views' types are derived from them where the in-process value
 * and its JSON are the same. Objects are strict, so the contract test notices a field the
 * schema does not know.
 */

const isoTime = z.iso.datetime().meta({ description: 'ISO 8601 UTC time.' });
const clockMs = z.number().meta({ description: "The gateway clock's time, in ms since the epoch." });
const role = z.enum(['active', 'standby']).meta({ description: 'A hedging standby is sent the stream but is still a standby.' });
const endpointState = z.enum(['disconnected', 'alive', 'suspect', 'dead']);
const verdict = z.enum(['healthy', 'degraded']);
// a non-finite number (phi long after the last heartbeat) is null in JSON
const phi = z.number().nullable().meta({ description: 'Phi-accrual suspicion of the endpoint (null: infinite).' });

export const measurementSchema = z.strictObject({ value: z.number(), source: z.string().meta({ description: 'Who measured it.' }) });

export const metricStateSchema = z.strictObject({
  value: z.number().optional().meta({ description: 'Absent while there is nothing to measure (no traffic): never a breach.' }),
  threshold: z.number(),
  kind: z.enum(['max', 'min']).meta({ description: '`max`: breached above the threshold (RTT, loss, lag); `min`: breached below (delivery ratio).' }),
  source: z.string(),
  breached: z.boolean(),
  breachedSince: clockMs.optional().meta({ description: 'When the current breach began (absent while not breached).' }),
});

export const healthSnapshotSchema = z.strictObject({
  verdict,
  score: z.number().meta({ description: "1: every metric well inside its threshold; below 1: the worst metric's share of its threshold." }),
  since: clockMs,
  reasons: z.array(z.string()).meta({ description: 'Metric names whose breach made (or keeps) the verdict degraded.' }),
  metrics: z.record(z.string(), metricStateSchema),
});

// camelCase, as the transport adapters name them; what else an adapter measures is in `extra`
export const transportStatsSchema = z.strictObject({
  kind: z.string(),
  rttMs: measurementSchema.optional(),
  lossRate: measurementSchema.optional(),
  bytesSent: z.number(),
  bytesReceived: z.number(),
  messagesSent: z.number(),
  messagesReceived: z.number(),
  extra: z.record(z.string(), measurementSchema).optional().meta({ description: 'Whatever else the transport measures (cwnd, rto, buffered amount...).' }),
});

export const switchRecordSchema = z.strictObject({
  from: z.string().nullable(),
  to: z.string().nullable(),
  reason: z.enum(SWITCH_REASONS),
  at: clockMs,
  from_seq: z.number().meta({ description: 'First seq the new endpoint was sent.' }),
  detail: z.array(z.string()).optional().meta({ description: 'For degradation: which metrics were breached.' }),
  metrics: z.record(z.string(), metricStateSchema).optional().meta({ description: 'The health metrics of the endpoint that lost its role, at the switch.' }),
  interruption_ms: z.number().optional().meta({ description: "Measured delivery interruption; set once the new endpoint's first ack arrives, absent for a first start." }),
});

/** A listening endpoint's dialing (the gateway dials it), as the answering instance knows it. */
export const dialInfoSchema = z
  .strictObject({
    url: z.string(),
    state: z.enum(['connected', 'dialing', 'backoff', 'elsewhere']).meta({ description: '`elsewhere`: another instance dials it (`dialed_by`), or nobody right now (`dialed_by` null: its stream has no owner).' }),
    dialed_by: z.string().nullable().meta({ description: "The instance that dials it: the owner of its stream." }),
    since: isoTime.nullable().meta({ description: 'Since when it is in this state (null: elsewhere).' }),
    next_attempt_at: isoTime.nullable().meta({ description: 'In backoff: when the next dial starts.' }),
    failures: z.number().meta({ description: 'Failed dials since the last connection.' }),
    last_error: z.strictObject({ code: z.string(), message: z.string(), at: isoTime }).nullable(),
  })
  .meta({ description: 'Listening endpoints only; the token is never shown.' });
export type DialInfo = z.output<typeof dialInfoSchema>;

const endpointKind = z.enum(['dial-in', 'listening']).meta({ description: '`dial-in`: the receiver connects to the gateway; `listening`: it listens at a url and the gateway dials it.' });

export const streamEndpointInfoSchema = z.strictObject({
  endpoint_id: z.string(),
  priority: z.number(),
  kind: endpointKind,
  dial: dialInfoSchema.nullable(),
  role,
  state: endpointState,
  last_acked_seq: z.number(),
  sent_seq: z.number(),
});

export const streamInfoSchema = z.strictObject({
  stream_id: z.string(),
  epoch: z.string().meta({ description: "The seq space's id: a new one means seqs started over." }),
  mode: streamSpecSchema.shape.mode.unwrap(),
  reliability: streamSpecSchema.shape.reliability.unwrap(),
  mirror_k: z.number().nullable(),
  endpoint_list: z.array(streamEndpointInfoSchema),
  active: z.array(z.string()),
  first_seq: z.number(),
  last_seq: z.number(),
  retained_chunks: z.number(),
  retained_bytes: z.number(),
  evicted_chunks: z.number(),
  retention: z.strictObject({ max_chunks: z.number(), max_bytes: z.number(), max_age_ms: z.number() }),
  failback: z.strictObject({ enabled: z.boolean(), stable_ms: z.number() }),
  policy: z.strictObject({ overflow: policySchema.shape.overflow.unwrap(), max_backlog_ms: z.number(), decimate_n: z.number() }),
  created_at: isoTime,
  owner: z.string().nullable().meta({ description: 'The gateway instance deciding its roles (null: its lease expired, another takes over).' }),
});

export const streamHealthSchema = z.strictObject({
  stream_id: z.string(),
  status: z.enum(['ok', 'degraded', 'down']).meta({ description: 'ok: an endpoint receives; degraded: fewer than wanted or one is suspect; down: nobody receives.' }),
  last_seq: z.number(),
  ack_frontier: z.number(),
  active: z.array(z.string()),
  endpoints: z.array(
    z.strictObject({
      endpoint_id: z.string(),
      priority: z.number(),
      role,
      state: endpointState,
      phi,
      rtt_ms: measurementSchema.nullable(),
      last_acked_seq: z.number(),
      ack_lag_chunks: z.number(),
      verdict: verdict.meta({ description: 'Path verdict combined from the endpoint (probes, transport) and this stream (ack lag, delivery).' }),
      score: z.number(),
      reasons: z.array(z.string()),
      metrics: z.record(z.string(), metricStateSchema),
      delivered_bytes_per_sec: z.number().meta({ description: 'Acked bytes/s (the sustainable rate estimate while the path is saturated).' }),
      pace_bytes_per_sec: z.number().nullable().meta({ description: 'Current pacing rate.' }),
      skipped: z.record(z.string(), z.number()).meta({ description: 'Chunks the overflow policy skipped (GAP-declared), by reason.' }),
      layer_cap: z.number().nullable().meta({ description: "`layers` policy: the highest layer this endpoint gets now; null: every layer (no cap, or another policy)." }),
      chunks_sent: z.number(),
      bytes_sent: z.number(),
      hedging_for: z.string().nullable().meta({ description: 'The active endpoint this standby is receiving beside (a hedge), or null.' }),
      suspect_ms_total: z.number(),
    }),
  ),
  input_bytes_per_sec: z.number(),
  hedges: z.strictObject({
    running: z.array(z.strictObject({ for: z.string(), by: z.string(), from_seq: z.number(), since: isoTime })),
    started: z.number(),
    ended: z.number(),
    committed: z.number(),
  }),
  switches: z.array(switchRecordSchema),
});

export const endpointHealthSchema = z.strictObject({
  endpoint_id: z.string(),
  kind: endpointKind,
  dial: dialInfoSchema.nullable(),
  connected: z.boolean(),
  state: endpointState,
  phi,
  up_since: isoTime.nullable(),
  rtt_ms: measurementSchema.nullable(),
  srtt_ms: measurementSchema.nullable(),
  heartbeat: z.strictObject({ interval_ms: z.number(), last_at: isoTime.nullable(), sent: z.number(), acked: z.number(), misses: z.number() }),
  suspect_ms_total: z.number().meta({ description: 'Time spent suspect (silent, or heartbeats late) since the gateway knows the endpoint.' }),
  silence_limit_ms: z.number().meta({ description: 'While active on a stream: how long a probe may wait unanswered before the endpoint is suspect.' }),
  path: healthSnapshotSchema.meta({ description: 'Health score of the path: verdict, score and every metric with value, threshold and source.' }),
  connects: z.number(),
  transport: transportStatsSchema.nullable(),
  streams: z.array(
    z.strictObject({
      stream_id: z.string(),
      role,
      last_acked_seq: z.number(),
      ack_lag_chunks: z.number(),
      receiver_report: z
        .strictObject({
          age_ms: z.number(),
          received_chunks: z.number(),
          received_bytes: z.number(),
          rate_bytes_per_sec: z.number(),
          rtt_ms: z.number().nullable(),
          lost_chunks: z.number(),
        })
        .nullable()
        .meta({ description: "The receiver's latest RECEIVER_REPORT for this stream (null before the first)." }),
    }),
  ),
});

export const engineFollowingSchema = z.strictObject({
  stale_followers: z.array(z.string()).meta({ description: 'Followers being recreated (`log:<stream>`, `control:<stream>`, `kv:<bucket>`): this instance does not decide their streams.' }),
  subscription_restarts: z.number(),
});

export const gatewayStatusSchema = z.strictObject({
  status: z.enum(['ok', 'draining']),
  instance_id: z.string().meta({ description: "This gateway process (a new id every start); a stream's `owner` names one of these." }),
  webtransport: z
    .strictObject({ backend: z.enum(['http3', 'http2']), url: z.string() })
    .nullable()
    .meta({ description: 'Which WebTransport backend runs (null until started or when disabled).' }),
  streams: z.number(),
  endpoints: z.number(),
  connected_endpoints: z.number(),
  uptime_s: z.number(),
  engine: engineFollowingSchema
    .optional()
    .meta({ description: 'A shared engine (JetStream): its subscriptions not following now, and how many were recreated since start.' }),
});

export const gatewayReadinessSchema = z.strictObject({
  ready: z.boolean(),
  status: z.enum(['ready', 'starting', 'draining', 'log_unavailable', 'not_following', 'overloaded']).meta({
    description:
      "starting: the CLI's warm-up runs; draining: shutting down; log_unavailable: the stream log cannot store; not_following: a stream's log or control subscription is being recreated (see `stale`); overloaded: past its admission budget, new endpoints are refused (MS_OVERLOADED) while it serves those it has.",
  }),
  instance_id: z.string(),
  stale: z.array(z.string()).optional().meta({ description: 'With `not_following`: the followers that are not following.' }),
});
