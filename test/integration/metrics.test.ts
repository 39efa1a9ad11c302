import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, MemoryTransport, serve, type Gateway, type HeartbeatEvent, type RunningServer, type SwitchEvent } from '../../gateway/src/index.js';
import { createMetrics, MAX_SERIES_PER_KIND } from '../../gateway/src/telemetry/metrics.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { harness, type Harness } from '../helpers/memory-harness.js';

/** Output of parse-prometheus-text-format (an untyped CommonJS package). */
interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const API_KEY = 'metrics-test-key-0123456789';
const STREAM = 'metrics-s1';

interface Receiver {
  id: string;
  core: ReceiverCore;
  chunks: Chunk[];
  link(): MemoryTransport | undefined;
}

/**
 * The gateway runs on a manual clock with in-memory receivers (nothing moves unless the test
 * steps the clock): heartbeats are answered in no time, none is missed, and what a scrape
 * shows is exactly what the gateway's own views show at that moment. /metrics itself is
 * served over a real socket.
 */
let h: Harness;
let gateway: Gateway;
let server: RunningServer;
const receivers: Receiver[] = [];
const switches: SwitchEvent[] = [];
const heartbeats: HeartbeatEvent[] = [];

/** A receiver on an in-memory link, on the manual clock, that never reconnects once its link dies. */
async function receiver(id: string): Promise<Receiver> {
  let current: MemoryTransport | undefined;
  const core = new ReceiverCore({
    endpointId: id,
    clock: h.clock,
    reconnect: { nextRetryDelayMs: () => null },
    dial: async () => {
      const [gatewaySide, receiverSide] = MemoryTransport.pair();
      gateway.accept(gatewaySide, { endpointId: id });
      current = receiverSide;
      return receiverSide;
    },
  });
  const r: Receiver = { id, core, chunks: [], link: () => current };
  core.on('chunk', (c) => r.chunks.push(c));
  receivers.push(r);
  const connected = core.connect();
  await h.settle();
  await connected;
  return r;
}

const endpointOf = (id: string) => gateway.streamHealth(STREAM).endpoints.find((e) => e.endpoint_id === id);

// ---- a strict check of the text exposition format (0.0.4), line by line -----------------

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})? (\S+)(?: (-?\d+))?$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** Every line is `# HELP`, `# TYPE` or a sample; returns the samples as `name{sorted labels}` keys. */
function checkExposition(text: string): string[] {
  expect(text.endsWith('\n')).toBe(true);
  const series: string[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      expect(meta, `comment line: ${line}`).not.toBeNull();
      expect(meta?.[2]).toMatch(METRIC_NAME);
      if (meta?.[1] === 'TYPE') expect(TYPES.has(meta[3] ?? ''), `type in: ${line}`).toBe(true);
      continue;
    }
    const m = SAMPLE.exec(line);
    expect(m, `sample line: ${line}`).not.toBeNull();
    if (!m) continue;
    expect(m[3], `value in: ${line}`).toMatch(FLOAT);
    const labels = [...(m[2] ?? '').matchAll(/([^=,]+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => {
      expect(k).toMatch(LABEL_NAME);
      return `${k}=${v}`;
    });
    expect(new Set(labels.map((l) => l.split('=')[0])).size, `repeated label in: ${line}`).toBe(labels.length);
    series.push(`${m[1]}{${labels.sort().join(',')}}`);
  }
  return series;
}

async function scrape(headers: Record<string, string> = {}): Promise<{ res: Response; text: string; families: Map<string, Family> }> {
  const res = await fetch(`${server.url}/metrics`, { headers });
  const text = await res.text();
  const families = new Map<string, Family>();
  for (const f of parsePrometheus(text)) {
    expect(families.has(f.name), `family ${f.name} appears twice`).toBe(false);
    families.set(f.name, f);
  }
  return { res, text, families };
}

/** The value of the one sample of `name` whose labels include `labels`. */
function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = (families.get(name)?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  expect(hits.length, `${name}${JSON.stringify(labels)} matches ${hits.length} samples`).toBeLessThanOrEqual(1);
  return hits[0]?.value === undefined ? undefined : Number(hits[0].value);
}

beforeAll(async () => {
  h = harness({ heartbeat: { intervalMs: 50 } });
  gateway = h.gateway;
  gateway.on('switched', (e) => switches.push(e));
  gateway.on('heartbeat', (e) => heartbeats.push(e));
  server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
  gateway.createStream({ stream_id: STREAM, endpoint_list: ['m-r1', 'm-r2'], mode: 'failover' });
});

afterAll(async () => {
  for (const r of receivers) r.core.close();
  await server?.close();
  await h?.close();
});

describe('GET /metrics', () => {
  it('exposes failover, delivery and process metrics in the Prometheus text format without an API key', async () => {
    const r1 = await receiver('m-r1');
    const r2 = await receiver('m-r2');
    await h.stepUntil(() => gateway.streamHealth(STREAM).active.join() === 'm-r1', 5_000, 'm-r1 to be active');

    for (let i = 0; i < 10; i++) await gateway.publish(STREAM, `chunk ${i}`);
    await h.stepUntil(() => r1.chunks.length === 10 && endpointOf('m-r1')?.last_acked_seq === 10, 5_000, 'm-r1 to receive and ack 10 chunks');

    // crash the active receiver: the stream fails over to m-r2
    r1.link()?.kill();
    await h.stepUntil(() => gateway.streamHealth(STREAM).active.join() === 'm-r2', 5_000, 'failover to m-r2');
    for (let i = 10; i < 15; i++) await gateway.publish(STREAM, `chunk ${i}`);
    await h.stepUntil(() => endpointOf('m-r2')?.last_acked_seq === 15, 5_000, 'm-r2 to ack seq 15');
    await h.stepUntil(() => gateway.endpointHealth('m-r2').rtt_ms !== null, 5_000, 'a heartbeat RTT on m-r2');

    const failover = switches.find((e) => e.from === 'm-r1' && e.to === 'm-r2');
    expect(failover?.reason).toBe('disconnected');

    // the clock stands still from here: the scrape and the views agree exactly
    const { res, text, families } = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);

    // strict grammar, and no series twice
    const series = checkExposition(text);
    expect(series.length).toBeGreaterThan(0);
    expect(new Set(series).size).toBe(series.length);

    // ours: a family is a counter iff its name ends in _total (prom-client's own
    // nodejs_active_*_total are gauges, so the default metrics are not held to it)
    const ours = [...families.values()].filter((f) => f.name.startsWith('mirrorstream_'));
    expect(ours.length).toBeGreaterThanOrEqual(20);
    for (const f of ours) expect(f.type === 'COUNTER', `${f.name} is ${f.type}`).toBe(f.name.endsWith('_total'));

    // the failover we caused, once
    expect(value(families, 'mirrorstream_failovers_total', { reason: 'disconnected' })).toBe(1);
    const failoverCount = (families.get('mirrorstream_failovers_total')?.metrics ?? []).reduce((n, m) => n + Number(m.value), 0);
    expect(failoverCount).toBe(switches.filter((e) => e.from !== null && e.to !== null).length);
    expect(value(families, 'mirrorstream_role_changes_total', { reason: 'initial' })).toBe(1);
    expect(value(families, 'mirrorstream_role_changes_total', { reason: 'disconnected' })).toBe(1);

    // what was delivered
    const pair = (endpoint: string) => ({ stream: STREAM, endpoint });
    expect(r2.chunks.map((c) => c.seq)).toEqual([11, 12, 13, 14, 15]);
    expect(value(families, 'mirrorstream_chunks_sent_total', pair('m-r2'))).toBe(r2.chunks.length);
    expect(value(families, 'mirrorstream_chunks_sent_total', pair('m-r1'))).toBe(r1.chunks.length);
    expect(value(families, 'mirrorstream_chunks_acked_total', pair('m-r2'))).toBe(15);
    expect(value(families, 'mirrorstream_endpoint_role', pair('m-r2'))).toBe(1);
    expect(value(families, 'mirrorstream_endpoint_role', pair('m-r1'))).toBe(0);
    expect(value(families, 'mirrorstream_ack_lag_chunks', pair('m-r2'))).toBe(0);
    expect(value(families, 'mirrorstream_stream_last_seq', { stream: STREAM })).toBe(15);
    expect(value(families, 'mirrorstream_stream_retained_chunks', { stream: STREAM })).toBe(15);
    expect(value(families, 'mirrorstream_chunks_dropped_total', pair('m-r2'))).toBeUndefined();
    expect(value(families, 'mirrorstream_chunks_conflated_total', pair('m-r2'))).toBe(0);

    // per endpoint: an in-memory echo takes no time on the manual clock
    expect(gateway.endpointHealth('m-r2').rtt_ms?.value).toBe(0);
    expect(value(families, 'mirrorstream_endpoint_rtt_seconds', { endpoint: 'm-r2' })).toBe(0);
    expect(value(families, 'mirrorstream_endpoint_up', { endpoint: 'm-r2' })).toBe(1);
    expect(value(families, 'mirrorstream_endpoint_up', { endpoint: 'm-r1' })).toBe(0);
    expect(value(families, 'mirrorstream_queue_bytes', { endpoint: 'm-r2' })).toBe(0);
    // what the failure detector counted: every heartbeat answered at once, none missed
    expect(gateway.endpointHealth('m-r2').heartbeat.misses).toBe(0);
    expect(value(families, 'mirrorstream_heartbeat_misses_total', { endpoint: 'm-r2' })).toBe(0);
    // every heartbeat echo the gateway reported (both endpoints', over all their connections) lands in one histogram, each taking 0 s
    const hb = families.get('mirrorstream_heartbeat_rtt_seconds');
    expect(hb?.type).toBe('HISTOGRAM');
    const hbSample = hb?.metrics[0] as { count?: string; sum?: string; buckets?: Record<string, string> } | undefined;
    // m-r2 kept its one connection: its own count is the events it raised
    expect(heartbeats.filter((e) => e.endpointId === 'm-r2').length).toBe(gateway.endpointHealth('m-r2').heartbeat.acked);
    expect(heartbeats.every((e) => e.rttMs === 0)).toBe(true);
    expect(Number(hbSample?.count)).toBe(heartbeats.length);
    expect(Number(hbSample?.buckets?.['0.001'])).toBe(heartbeats.length);
    expect(Number(hbSample?.buckets?.['+Inf'])).toBe(heartbeats.length);
    expect(Number(hbSample?.sum)).toBe(0);
    expect(families.get('mirrorstream_endpoint_health_score')?.metrics.length).toBe(2);

    // default process metrics, unprefixed
    expect(families.get('process_cpu_seconds_total')?.type).toBe('COUNTER');
    expect(families.has('nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('needs no API key, and ignores a wrong one, while /v1 still does', async () => {
    expect((await scrape({ authorization: 'Bearer not-the-key-000000000' })).res.status).toBe(200);
    expect((await fetch(`${server.url}/v1/streams`)).status).toBe(401);
  });

  it('several gateways in one process keep separate registries', async () => {
    const other = createGateway({ logLevel: 'silent' });
    const a = createMetrics(other);
    const b = createMetrics(other);
    try {
      other.createStream({ stream_id: 'other', endpoint_list: ['x'] });
      const text = await a.text();
      expect(text).toContain('mirrorstream_stream_last_seq{stream="other"} 0');
      expect(text).not.toContain(STREAM);
      expect(await b.text()).toContain('stream="other"');
    } finally {
      a.close();
      b.close();
      await other.close();
    }
  });

  it(`exports at most ${MAX_SERIES_PER_KIND} stream-endpoint pairs and counts the rest`, async () => {
    const big = createGateway({ logLevel: 'silent' });
    const metrics = createMetrics(big);
    try {
      const endpoints = Array.from({ length: 64 }, (_, i) => `e${i}`);
      for (let s = 0; s < 16; s++) big.createStream({ stream_id: `big${s}`, endpoint_list: endpoints });
      const families = new Map(parsePrometheus(await metrics.text()).map((f) => [f.name, f]));
      expect(families.get('mirrorstream_endpoint_role')?.metrics.length).toBe(MAX_SERIES_PER_KIND);
      expect(families.get('mirrorstream_stream_last_seq')?.metrics.length).toBe(16);
      expect(value(families, 'mirrorstream_metrics_series_omitted')).toBe(16 * 64 - MAX_SERIES_PER_KIND);
    } finally {
      metrics.close();
      await big.close();
    }
  });

  it('closing the server stops the metrics listening to the gateway', async () => {
    const before = gateway.listenerCount('switched');
    await server.close();
    expect(gateway.listenerCount('switched')).toBe(before - 1);
  });
});
