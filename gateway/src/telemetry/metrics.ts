import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HeartbeatEvent, SwitchEvent } from '../core/events.js';
import type { Gateway } from '../gateway.js';
import { SWITCH_REASONS } from '../streams/types.js';
import type { EndpointHealth, StreamHealth, StreamInfo } from '../views/snapshots.js';

/**
 * Prometheus metrics of one gateway, in the text exposition format.
 *
 * The core knows nothing of Prometheus: every gauge and most counters are read from the
 * gateway's public snapshot API (`listStreams`, `streamHealth`, `listEndpoints`) when
 * scraped, and their series are dropped once the scrape is written, so a gateway with
 * thousands of endpoints holds no series for them between scrapes; only the failover counters (`switched` event) and the heartbeat RTT histogram
 * (`heartbeat` event) are fed as things happen. Each instance has
 * its own registry (never prom-client's global one), so several gateways in one process
 * do not collide. Default process metrics (`process_*`, `nodejs_*`) are included
 * without the `mirrorstream_` prefix, as is the Prometheus convention.
 *
 * Labels are `stream`, `endpoint`, `reason` and `policy`; ids are bounded by what the
 * gateway holds, and at most {@link MAX_SERIES_PER_KIND} streams, endpoints and
 * stream×endpoint pairs are exported per scrape (the rest are counted in
 * `mirrorstream_metrics_series_omitted`).
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** `text/plain; version=0.0.4; charset=utf-8` */
  readonly contentType: string;
  /** The exposition text of one scrape. */
  text(): Promise<string>;
  /** Stop listening to the gateway and drop the metrics. Idempotent. */
  close(): void;
}

/** Cap on the label sets of each kind (streams, endpoints, stream×endpoint pairs) in one scrape. */
export const MAX_SERIES_PER_KIND = 1000;

type StreamEndpoint = StreamHealth['endpoints'][number];

interface Snapshot {
  streams: { info: StreamInfo; health: StreamHealth }[];
  endpoints: EndpointHealth[];
  pairs: { stream: string; ep: StreamEndpoint }[];
  omitted: number;
}

type Labels<L extends string> = Record<L, string>;
type Emit<L extends string> = (labels: Labels<L>, value: number | null | undefined) => void;

export function createMetrics(gateway: Gateway): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  // One snapshot per scrape: prom-client runs every collect() in the same synchronous
  // pass, so the cache lives until the next microtask.
  let cached: Snapshot | undefined;
  const snapshot = (): Snapshot => {
    if (!cached) {
      cached = takeSnapshot(gateway);
      queueMicrotask(() => (cached = undefined));
    }
    return cached;
  };

  /** Series built from the snapshot for one scrape and dropped after it (nothing per endpoint is held between scrapes). */
  const perScrape: { reset(): void }[] = [];

  /** A gauge whose series are rebuilt from the snapshot on every scrape. */
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (emit: Emit<L>, s: Snapshot) => void): void => {
    const g = new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill((labels, value) => {
          if (value !== null && value !== undefined && !Number.isNaN(value)) this.set(labels, value);
        }, snapshot());
      },
    });
    perScrape.push(g);
  };

  /**
   * A counter whose value the gateway already counts (cumulative in the snapshot).
   * prom-client's Counter has no `set`, so collect() resets and increments by the total.
   */
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (emit: Emit<L>, s: Snapshot) => void): void => {
    const c = new Counter<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill((labels, value) => {
          if (value !== null && value !== undefined && Number.isFinite(value) && value >= 0) this.inc(labels, value);
        }, snapshot());
      },
    });
    perScrape.push(c);
  };

  // ---- endpoints -------------------------------------------------------------

  gauge('mirrorstream_endpoint_rtt_seconds', 'Heartbeat round-trip time of the endpoint connection.', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.rtt_ms === null ? null : e.rtt_ms.value / 1000);
  });
  gauge('mirrorstream_endpoint_loss_ratio', 'Probe loss ratio on the endpoint path (0..1).', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.path.metrics.loss_ratio?.value);
  });
  gauge('mirrorstream_endpoint_up', '1 when the endpoint is connected and alive or suspect, else 0.', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.connected && (e.state === 'alive' || e.state === 'suspect') ? 1 : 0);
  });
  gauge('mirrorstream_endpoint_health_score', 'Path health score: 1 = every metric well inside its threshold.', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.path.score);
  });
  gauge('mirrorstream_queue_bytes', 'Bytes queued in the endpoint transport and not yet sent (bufferedAmount; 0 when the transport does not report it).', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.transport?.extra?.bufferedAmount?.value ?? 0);
  });
  counter('mirrorstream_heartbeat_misses_total', 'Times the failure detector moved the endpoint to suspect (probes unanswered, heartbeats late) or dead.', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.heartbeat.misses);
  });
  counter('mirrorstream_endpoint_suspect_seconds_total', 'Time the endpoint spent suspect (silent on the probe path, or heartbeats late).', ['endpoint'], (emit, s) => {
    for (const e of s.endpoints) emit({ endpoint: e.endpoint_id }, e.suspect_ms_total / 1000);
  });

  // ---- stream × endpoint ------------------------------------------------------

  const pairGauge = (name: string, help: string, value: (ep: StreamEndpoint) => number | null | undefined): void =>
    gauge(name, help, ['stream', 'endpoint'], (emit, s) => {
      for (const { stream, ep } of s.pairs) emit({ stream, endpoint: ep.endpoint_id }, value(ep));
    });
  const pairCounter = (name: string, help: string, value: (ep: StreamEndpoint) => number | undefined): void =>
    counter(name, help, ['stream', 'endpoint'], (emit, s) => {
      for (const { stream, ep } of s.pairs) emit({ stream, endpoint: ep.endpoint_id }, value(ep));
    });

  pairGauge('mirrorstream_delivery_rate_bytes_per_second', 'Acked bytes/s on the endpoint (the sustainable rate while the path is saturated).', (ep) => ep.delivered_bytes_per_sec);
  pairGauge('mirrorstream_pace_rate_bytes_per_second', 'Current pacing rate towards the endpoint (absent while unpaced).', (ep) => ep.pace_bytes_per_sec);
  pairGauge('mirrorstream_ack_lag_chunks', 'Chunks the active endpoint has not acked yet (0 on standby).', (ep) => ep.ack_lag_chunks);
  pairGauge('mirrorstream_endpoint_role', '1 when the endpoint is active on the stream, 0 on standby.', (ep) => (ep.role === 'active' ? 1 : 0));
  pairCounter('mirrorstream_chunks_sent_total', 'Chunks sent to the endpoint on the stream.', (ep) => ep.chunks_sent);
  pairCounter('mirrorstream_bytes_sent_total', 'Payload bytes sent to the endpoint on the stream.', (ep) => ep.bytes_sent);
  pairCounter('mirrorstream_chunks_acked_total', 'Highest seq the endpoint acked on the stream (cumulative ack).', (ep) => ep.last_acked_seq);
  pairCounter('mirrorstream_chunks_conflated_total', 'Chunks superseded by a newer chunk of the same key (overflow policy conflate).', (ep) => ep.skipped['overflow:conflate'] ?? 0);
  counter(
    'mirrorstream_chunks_dropped_total',
    'Chunks the overflow policy skipped for the endpoint (declared as GAP), by reason.',
    ['stream', 'endpoint', 'reason'],
    (emit, s) => {
      for (const { stream, ep } of s.pairs) {
        for (const [reason, n] of Object.entries(ep.skipped)) {
          if (reason !== 'overflow:conflate') emit({ stream, endpoint: ep.endpoint_id, reason }, n);
        }
      }
    },
  );

  // ---- streams -----------------------------------------------------------------

  gauge('mirrorstream_stream_last_seq', 'Seq of the newest chunk published on the stream.', ['stream'], (emit, s) => {
    for (const { info } of s.streams) emit({ stream: info.stream_id }, info.last_seq);
  });
  gauge('mirrorstream_stream_input_bytes_per_second', 'Published bytes/s on the stream.', ['stream'], (emit, s) => {
    for (const { health } of s.streams) emit({ stream: health.stream_id }, health.input_bytes_per_sec);
  });
  gauge('mirrorstream_stream_retained_chunks', 'Chunks held in the stream log for resume and failover.', ['stream'], (emit, s) => {
    for (const { info } of s.streams) emit({ stream: info.stream_id }, info.retained_chunks);
  });
  gauge('mirrorstream_stream_policy_info', 'The stream overflow policy (value always 1).', ['stream', 'policy'], (emit, s) => {
    for (const { info } of s.streams) emit({ stream: info.stream_id, policy: info.policy.overflow }, 1);
  });
  const hedgeCounter = (kind: 'started' | 'ended' | 'committed', help: string): void =>
    counter(`mirrorstream_hedges_${kind}_total`, help, ['stream'], (emit, s) => {
      for (const { health } of s.streams) emit({ stream: health.stream_id }, health.hedges[kind]);
    });
  hedgeCounter('started', 'Hedges begun: a standby also receiving the stream while the active endpoint is suspect.');
  hedgeCounter('ended', 'Hedges ended without a switch (the active endpoint answered again, or the hedge was no longer needed).');
  hedgeCounter('committed', 'Hedges committed: the active endpoint was confirmed gone and the hedging standby kept the stream.');
  // ---- the shared engine (JetStream) --------------------------------------------

  gauge('mirrorstream_engine_followers_stale', 'Subscriptions to the engine (a stream log or control, a shared view) being recreated now: the instance does not decide their streams (absent on the memory log).', [], (emit) => {
    emit({}, gateway.status().engine?.stale_followers.length);
  });
  counter('mirrorstream_engine_subscription_restarts_total', 'Subscriptions to the engine recreated after a stall, a lost consumer or a reconnect.', [], (emit) => {
    emit({}, gateway.status().engine?.subscription_restarts);
  });
  gauge('mirrorstream_metrics_series_omitted', `Streams, endpoints and stream-endpoint pairs left out of this scrape by the cap of ${MAX_SERIES_PER_KIND} per kind.`, [], (emit, s) => {
    emit({}, s.omitted);
  });

  // ---- admission control (signaling/admission.ts) --------------------------------

  gauge('mirrorstream_admission_admitting', 'Whether new endpoints are admitted (1), or the gateway is overloaded and refuses them with 503 MS_OVERLOADED (0): its event loop over budget admission.windowsToClose windows in a row.', [], (emit) => {
    emit({}, gateway.admission().admitting ? 1 : 0);
  });
  gauge('mirrorstream_admission_rate_per_second', "New endpoints admitted per second now: admission.maxNewPerSecond scaled by the event loop's headroom (absent without a rate limit).", [], (emit) => {
    const rate = gateway.admission().admit_rate_per_s;
    if (rate !== null) emit({}, rate);
  });
  gauge('mirrorstream_admission_webtransport_rate_per_second', "Of those, WebTransport endpoints at most: admission.maxNewPerSecond scaled by the event loop's headroom under admission.webtransportAdmitLoopDelayMs (absent without a rate limit).", [], (emit) => {
    const rate = gateway.admission().webtransport_admit_rate_per_s;
    if (rate !== null) emit({}, rate);
  });
  gauge('mirrorstream_admission_loop_delay_p99_seconds', "The event loop's p99 delay over the last admission window: the gateway's headroom (admission.maxLoopDelayMs is its budget).", [], (emit) => {
    emit({}, gateway.admission().loop_delay_p99_ms / 1000);
  });
  gauge('mirrorstream_admission_pending_handshakes', 'WebRTC handshakes under way (admission.maxPendingHandshakes is their budget).', [], (emit) => {
    emit({}, gateway.admission().pending_handshakes);
  });
  counter('mirrorstream_admission_refused_total', 'New endpoint sessions refused with MS_OVERLOADED, by budget (loop_delay, rate, handshakes).', ['reason'], (emit) => {
    for (const [reason, n] of Object.entries(gateway.admission().refused)) emit({ reason }, n);
  });

  // ---- events ------------------------------------------------------------------

  const failovers = new Counter<'reason'>({
    name: 'mirrorstream_failovers_total',
    help: 'Switches of the active role from one endpoint to another, by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  const roleChanges = new Counter<'reason'>({
    name: 'mirrorstream_role_changes_total',
    help: 'Active-role changes (including first activation and loss without replacement), by reason.',
    labelNames: ['reason'],
    registers: [registry],
  });
  // every reason starts at 0, so `rate()` sees the first increment (a first activation is no failover)
  for (const reason of SWITCH_REASONS) {
    roleChanges.inc({ reason }, 0);
    if (reason !== 'initial') failovers.inc({ reason }, 0);
  }

  const onSwitched = (e: SwitchEvent): void => {
    roleChanges.inc({ reason: e.reason });
    if (e.from !== null && e.to !== null) failovers.inc({ reason: e.reason });
  };
  gateway.on('switched', onSwitched);

  // one histogram over all endpoints: per-endpoint buckets would multiply series by 12
  const heartbeatRtt = new Histogram({
    name: 'mirrorstream_heartbeat_rtt_seconds',
    help: 'Heartbeat round-trip times over all endpoint connections (gateway -> receiver -> gateway).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const onHeartbeat = (e: HeartbeatEvent): void => heartbeatRtt.observe(e.rttMs / 1000);
  gateway.on('heartbeat', onHeartbeat);

  let closed = false;
  return {
    registry,
    contentType: registry.contentType,
    text: async () => {
      const text = await registry.metrics();
      for (const m of perScrape) m.reset();
      return text;
    },
    close() {
      if (closed) return;
      closed = true;
      gateway.off('switched', onSwitched);
      gateway.off('heartbeat', onHeartbeat);
      registry.clear();
    },
  };
}

function takeSnapshot(gateway: Gateway): Snapshot {
  let omitted = 0;
  const streams: Snapshot['streams'] = [];
  const pairs: Snapshot['pairs'] = [];
  for (const info of gateway.listStreams()) {
    if (streams.length >= MAX_SERIES_PER_KIND) {
      omitted += 1 + info.endpoint_list.length;
      continue;
    }
    const health = gateway.streamHealth(info.stream_id);
    streams.push({ info, health });
    for (const ep of health.endpoints) {
      if (pairs.length < MAX_SERIES_PER_KIND) pairs.push({ stream: health.stream_id, ep });
      else omitted++;
    }
  }
  const all = gateway.listEndpoints();
  omitted += Math.max(0, all.length - MAX_SERIES_PER_KIND);
  return { streams, endpoints: all.slice(0, MAX_SERIES_PER_KIND), pairs, omitted };
}
