import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig, RetentionConfig } from '../config.js';
import type { FailoverPolicy } from '../failover/policy.js';
import type { OverflowPolicy } from '../rate/overflow.js';
import { policySchema, type StreamSpec } from '../streams/spec.js';
import { controlledDecisions } from '../streams/decisions.js';
import { Stream } from '../streams/stream.js';
import type { StreamLog } from '../streams/stream-log.js';
import type { EndpointView, StreamControl } from '../streams/types.js';
import type { EventSink } from './events.js';

export interface StreamContext {
  config: GatewayConfig;
  clock: Clock;
  log: Logger;
  policy: FailoverPolicy;
  events: EventSink;
  endpoint(id: string): EndpointView;
  /** An endpoint's cumulative ack moved forward (the backend stores it). */
  acked(streamId: string, endpointId: string, seq: number): void;
  /** Several instances serve the stream: who decides its roles. */
  control?: StreamControl | undefined;
}

/** The retention limits of a stream: its own, else the gateway's. */
export function retentionOf(spec: StreamSpec, defaults: RetentionConfig): RetentionConfig {
  return {
    maxChunks: spec.retention?.max_chunks ?? defaults.maxChunks,
    maxBytes: spec.retention?.max_bytes ?? defaults.maxBytes,
    maxAgeMs: spec.retention?.max_age_ms ?? defaults.maxAgeMs,
  };
}

export function toOverflow(p: { overflow: OverflowPolicy['overflow']; max_backlog_ms: number; decimate_n: number }): OverflowPolicy {
  return { overflow: p.overflow, maxBacklogMs: p.max_backlog_ms, decimateN: p.decimate_n };
}

/** A Stream for a spec over its log, wired to the gateway's clock, policy and events. */
export function buildStream(spec: StreamSpec, log: StreamLog, ctx: StreamContext): Stream {
  const { config, clock, events } = ctx;
  const stream = new Stream({
    id: spec.stream_id,
    mode: spec.mode,
    reliability: spec.reliability,
    mirrorK: spec.mirror_k,
    endpointList: spec.endpoint_list,
    log,
    failback: {
      enabled: spec.failback?.enabled ?? config.failback.enabled,
      stableMs: spec.failback?.stable_ms ?? config.failback.stableMs,
    },
    sendHighWaterBytes: config.sendHighWaterBytes,
    switchHistory: config.switchHistory,
    policy: ctx.policy,
    health: config.health,
    clock: () => clock.now(),
    overflow: toOverflow(spec.policy ?? policySchema.parse({})),
    reconnectGraceMs: config.failover.reconnectGraceMs,
    startupGraceMs: config.failover.startupGraceMs,
    hedge: config.failover.hedge,
    pacing: { minBytesPerSec: config.rate.minPaceBytesPerSec, gain: config.rate.paceGain, burstMs: config.rate.paceBurstMs },
    endpoint: ctx.endpoint,
    wake: (ms, fn) => void clock.setTimeout(fn, ms),
    decisions: ctx.control ? controlledDecisions(ctx.control) : undefined,
  });
  stream.onListenerError = (err, event) => ctx.log.error({ err, stream: spec.stream_id, event }, 'stream event listener threw');
  stream.on('roleChanged', (e) => events.emit('roleChanged', e));
  stream.on('switched', (e) => {
    ctx.log.info({ stream: e.streamId, from: e.from, to: e.to, reason: e.reason, fromSeq: e.from_seq }, 'switch');
    events.emit('switched', e);
  });
  stream.on('gap', (e) => events.emit('gap', e));
  stream.on('hedged', (e) => {
    ctx.log.info({ stream: e.streamId, for: e.for, by: e.by, fromSeq: e.fromSeq }, `hedge ${e.kind}`);
    events.emit('hedged', e);
  });
  stream.on('acked', (endpointId, seq) => ctx.acked(spec.stream_id, endpointId, seq));
  return stream;
}
