import type { z } from 'zod';
import type { Endpoint } from '../endpoints/endpoint.js';
import type { HealthSnapshot, MetricState, Verdict } from '../health/score.js';
import type { Stream } from '../streams/stream.js';
import type { EndpointView, SwitchRecord } from '../streams/types.js';
import type { Measurement, TransportStats } from '../transports/transport.js';
import type { DialInfo, streamEndpointInfoSchema, streamInfoSchema } from './schemas.js';

/**
 * JSON shapes returned by the HTTP API and the Gateway's query methods (snake_case, like
 * the API), built from the core's state on request; their schemas are in schemas.ts. Used by
 * the facade, http/ and telemetry/; the core never imports them.
 */
export type StreamEndpointInfo = z.output<typeof streamEndpointInfoSchema>;

export type StreamInfo = z.output<typeof streamInfoSchema>;

/**
 * Kept as an interface (like EndpointHealth): it names the core's types (SwitchRecord,
 * MetricState), and phi may be Infinity here where its JSON is null. Its schema,
 * `streamHealthSchema`, is held to it by test/integration/openapi.test.ts.
 */
export interface StreamHealth {
  stream_id: string;
  /** ok: an endpoint receives; degraded: fewer than wanted or one is suspect; down: nobody receives. */
  status: 'ok' | 'degraded' | 'down';
  last_seq: number;
  ack_frontier: number;
  active: string[];
  endpoints: {
    endpoint_id: string;
    priority: number;
    role: 'active' | 'standby';
    state: Endpoint['state'];
    phi: number;
    rtt_ms: Measurement | null;
    last_acked_seq: number;
    ack_lag_chunks: number;
    /** Path verdict combined from the endpoint (probes, transport) and this stream (ack lag, delivery). */
    verdict: Verdict;
    score: number;
    reasons: string[];
    metrics: Record<string, MetricState>;
    /** Acked bytes/s (the sustainable rate estimate while the path is saturated). */
    delivered_bytes_per_sec: number;
    /** Current pacing rate. */
    pace_bytes_per_sec: number | null;
    /** Chunks the overflow policy skipped (GAP-declared), by reason. */
    skipped: Record<string, number>;
    /** `layers` policy: the highest layer this endpoint gets now; null: every layer. */
    layer_cap: number | null;
    chunks_sent: number;
    bytes_sent: number;
    /** The active endpoint this standby is receiving beside (a hedge), or null. */
    hedging_for: string | null;
    /** Time the endpoint has spent suspect (silent, or heartbeats late) since the gateway knows it. */
    suspect_ms_total: number;
  }[];
  input_bytes_per_sec: number;
  /** Hedged delivery: the hedges running now and how many started, ended and were committed. */
  hedges: {
    running: { for: string; by: string; from_seq: number; since: string }[];
    started: number;
    ended: number;
    committed: number;
  };
  switches: SwitchRecord[];
}

/** Kept as an interface, like StreamHealth; its schema is `endpointHealthSchema`. */
export interface EndpointHealth {
  endpoint_id: string;
  /** `listening`: the gateway dials it (its `dial` state); `dial-in`: it connects to the gateway. */
  kind: 'dial-in' | 'listening';
  dial: DialInfo | null;
  connected: boolean;
  state: Endpoint['state'];
  phi: number;
  up_since: string | null;
  rtt_ms: Measurement | null;
  srtt_ms: Measurement | null;
  heartbeat: { interval_ms: number; last_at: string | null; sent: number; acked: number; misses: number };
  /** Time spent suspect (silent, or heartbeats late) since the gateway knows the endpoint. */
  suspect_ms_total: number;
  /** While it is active on a stream: how long a probe may wait unanswered before it is suspect (from its RTT p99 and loss). */
  silence_limit_ms: number;
  /** Health score of the path: verdict, score and every metric with value, threshold and source. */
  path: HealthSnapshot;
  connects: number;
  transport: TransportStats | null;
  streams: {
    stream_id: string;
    role: 'active' | 'standby';
    last_acked_seq: number;
    ack_lag_chunks: number;
    /** The receiver's latest RECEIVER_REPORT for this stream (null before the first). */
    receiver_report: { age_ms: number; received_chunks: number; received_bytes: number; rate_bytes_per_sec: number; rtt_ms: number | null; lost_chunks: number } | null;
  }[];
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function streamInfo(s: Stream, endpoint: (id: string) => EndpointView, owner: string | null, dial: (id: string) => DialInfo | null): StreamInfo {
  return {
    stream_id: s.id,
    epoch: s.epoch,
    mode: s.mode,
    reliability: s.reliability,
    mirror_k: s.mirrorK ?? null,
    endpoint_list: s.endpointList.map((id, priority) => {
      const c = s.cursor(id);
      const d = dial(id);
      return {
        endpoint_id: id,
        priority,
        kind: d ? 'listening' : 'dial-in',
        dial: d,
        role: roleOn(s, id),
        state: endpoint(id).state,
        last_acked_seq: c?.lastAcked ?? 0,
        sent_seq: c?.sentUpTo ?? 0,
      };
    }),
    active: [...s.active],
    first_seq: s.log.firstSeq,
    last_seq: s.log.lastSeq,
    retained_chunks: s.log.size,
    retained_bytes: s.log.bytes,
    evicted_chunks: s.log.evicted,
    retention: { max_chunks: s.retention.maxChunks, max_bytes: s.retention.maxBytes, max_age_ms: s.retention.maxAgeMs },
    failback: { enabled: s.failback.enabled, stable_ms: s.failback.stableMs },
    policy: { overflow: s.overflow.overflow, max_backlog_ms: s.overflow.maxBacklogMs, decimate_n: s.overflow.decimateN },
    created_at: new Date(s.createdAt).toISOString(),
    owner,
  };
}

export function streamHealth(s: Stream, endpoint: (id: string) => Endpoint, now: number): StreamHealth {
  const last = s.log.lastSeq;
  const endpoints = s.endpointList.map((id, priority) => {
    const ep = endpoint(id);
    const c = s.cursor(id);
    const acked = c?.lastAcked ?? 0;
    const path = ep.health();
    const cur = c?.health.snapshot();
    const degraded = path.verdict === 'degraded' || cur?.verdict === 'degraded';
    return {
      endpoint_id: id,
      priority,
      role: roleOn(s, id),
      state: ep.state,
      phi: round(ep.phi),
      rtt_ms: heartbeatRtt(ep),
      last_acked_seq: acked,
      ack_lag_chunks: c?.role === 'active' ? Math.max(0, last - acked) : 0,
      verdict: (degraded ? 'degraded' : 'healthy') as Verdict,
      score: Math.min(path.score, cur?.score ?? 1),
      reasons: [...path.reasons, ...(cur?.reasons ?? [])],
      metrics: { ...path.metrics, ...cur?.metrics },
      delivered_bytes_per_sec: Math.round(c?.delivered.rate(now) ?? 0),
      pace_bytes_per_sec: c ? Math.round(c.pacer.rateBytesPerSec) : null,
      skipped: { ...c?.skipped },
      layer_cap: c && Number.isFinite(c.maxLayer) ? c.maxLayer : null,
      chunks_sent: c?.chunksSent ?? 0,
      bytes_sent: c?.bytesSent ?? 0,
      hedging_for: s.hedges.running.get(id)?.for ?? null,
      suspect_ms_total: Math.round(ep.suspectMs(now)),
    };
  });
  const activeStates = endpoints.filter((e) => e.role === 'active');
  const wanted = Math.min(s.slots, s.endpointList.length);
  const status: StreamHealth['status'] =
    activeStates.length === 0
      ? 'down'
      : activeStates.length < wanted || activeStates.some((e) => e.state !== 'alive')
        ? 'degraded'
        : 'ok';
  return {
    stream_id: s.id,
    status,
    last_seq: last,
    ack_frontier: s.ackFrontier,
    active: [...s.active],
    endpoints,
    input_bytes_per_sec: Math.round(s.inputRate(now)),
    hedges: {
      running: [...s.hedges.running.values()].map((h) => ({ for: h.for, by: h.by, from_seq: h.fromSeq, since: new Date(h.since).toISOString() })),
      ...s.hedges.counts,
    },
    switches: [...s.switches],
  };
}

function reportOf(ep: Endpoint, streamId: string, now: number): EndpointHealth['streams'][number]['receiver_report'] {
  const r = ep.lastReport(streamId);
  if (!r) return null;
  return {
    age_ms: Math.round(now - r.at),
    received_chunks: r.report.receivedChunks,
    received_bytes: r.report.receivedBytes,
    rate_bytes_per_sec: Math.round(r.report.rateBytesPerSec),
    rtt_ms: r.report.rttMs === null ? null : round(r.report.rttMs),
    lost_chunks: r.report.gapCount,
  };
}

export function endpointHealth(ep: Endpoint, streams: Iterable<Stream>, intervalMs: number, now: number, dial: DialInfo | null): EndpointHealth {
  const conn = ep.connection;
  const list: EndpointHealth['streams'] = [];
  for (const s of streams) {
    const c = s.cursor(ep.id);
    if (!c) continue;
    list.push({
      stream_id: s.id,
      role: roleOn(s, ep.id),
      last_acked_seq: c.lastAcked,
      ack_lag_chunks: c.role === 'active' ? Math.max(0, s.log.lastSeq - c.lastAcked) : 0,
      receiver_report: reportOf(ep, s.id, now),
    });
  }
  return {
    endpoint_id: ep.id,
    kind: dial ? 'listening' : 'dial-in',
    dial,
    connected: ep.link !== undefined,
    state: ep.state,
    phi: round(ep.phi),
    up_since: iso(ep.upSince),
    rtt_ms: heartbeatRtt(ep),
    srtt_ms: ep.srttMs === undefined ? null : { value: round(ep.srttMs), source: 'gateway.heartbeat.srtt' },
    heartbeat: {
      interval_ms: intervalMs,
      last_at: iso(ep.lastHeartbeatAt),
      sent: conn?.heartbeatsSent ?? 0,
      acked: conn?.heartbeatsAcked ?? 0,
      misses: ep.heartbeatMisses,
    },
    suspect_ms_total: Math.round(ep.suspectMs(now)),
    silence_limit_ms: round(ep.silenceLimitMs),
    path: ep.health(),
    connects: ep.connects,
    transport: ep.link ? ep.link.transport.stats() : null,
    streams: list,
  };
}

/** The API's role: a hedging standby is sent the stream but is still a standby. */
function roleOn(s: Stream, id: string): 'active' | 'standby' {
  return s.active.includes(id) ? 'active' : 'standby';
}

function heartbeatRtt(ep: Endpoint): Measurement | null {
  return ep.rttMs === undefined ? null : { value: round(ep.rttMs), source: 'gateway.heartbeat' };
}

function round(v: number): number {
  return Number.isFinite(v) ? Math.round(v * 1000) / 1000 : v;
}
