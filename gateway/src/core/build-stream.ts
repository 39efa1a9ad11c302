import type { Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig, RetentionConfig } from '../config.js';
import type { FailoverPolicy } from '../failover/policy.js';
import type { OverflowPolicy } from '../rate/overflow.js';
import { policySchema, type StreamSpec } from '../streams/spec.js';
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
  /** The stream's active set may have changed. */
  activeChanged?: () => void;
  /** An endpoint joined or left the stream's list. */
  listChanged?: () => void;
  /** The stream sent or its roles changed: measure it every tick until it settles. */
  assessing?: () => void;
  /** Re-run its policy at this time unless something changes first (undefined: nothing pending). */
  evaluateAt?: (at: number | undefined) => void;
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
  return new Stream({
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
    hooks: {
      wake: (ms, fn) => void clock.setTimeout(fn, ms),
      endpoint: ctx.endpoint,
      roleChanged: (e) => events.emit('roleChanged', e),
      switched: (e) => {
        ctx.log.info({ stream: e.streamId, from: e.from, to: e.to, reason: e.reason, fromSeq: e.from_seq }, 'switch');
        events.emit('switched', e);
      },
      gap: (e) => events.emit('gap', e),
      hedged: (e) => {
        ctx.log.info({ stream: e.streamId, for: e.for, by: e.by, fromSeq: e.fromSeq }, `hedge ${e.kind}`);
        events.emit('hedged', e);
      },
      acked: (endpointId, seq) => ctx.acked(spec.stream_id, endpointId, seq),
      control: ctx.control,
      activeChanged: ctx.activeChanged,
      listChanged: ctx.listChanged,
      assessing: ctx.assessing,
      evaluateAt: ctx.evaluateAt,
    },
  });
}

/** The scheduler's side of the gateway's streams: when to measure each and when to re-run its policy. */
export interface StreamTiming {
  assessing(s: Stream): void;
  evaluateAt(s: Stream, at: number | undefined): void;
  /** An input of its policy changed that the scheduler does not see (an owner change). */
  changed(s: Stream): void;
  /** The stream is gone from this gateway: nothing more to measure or decide. */
  removed(s: Stream): void;
}
