import type { CodecRow } from './codec.js';
import type { DurableRow } from './durable.js';
import type { IngestRow } from './durable-ingest.js';
import type { failover, FailoverSummary } from './failover.js';
import { jsAndNative, type FanoutResult } from './fanout.js';
import type { HerdRow } from './herd.js';
import type { ThroughputRow } from './throughput.js';

/** bench/results/latest.json: see bench/README.md for every key. */
export interface BenchReport {
  at: string;
  mode: 'quick' | 'full';
  machine: { cpus: number; cpu: string; mem_gib: number; node: string; platform: string };
  plan: unknown;
  duration_s: number;
  throughput?: ThroughputRow[];
  failover?: Awaited<ReturnType<typeof failover>>;
  fanout?: FanoutResult['rows'];
  fanout_baseline?: FanoutResult['baseline'];
  fanout_idle?: FanoutResult['idle'];
  fanout_stopped?: FanoutResult['stopped'];
  herd?: HerdRow[];
  codec?: CodecRow[];
  durable?: DurableRow[];
  durable_ingest?: IngestRow[];
}

const n = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : '–');
const range = (v: number, lo: number, hi: number, d = 1): string => `${n(v, d)} (${n(lo, d)}–${n(hi, d)})`;
const table = (head: string[], rows: string[][]): string[] => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)];

export function renderMarkdown(r: BenchReport): string {
  const out: string[] = [
    '# mirrorstream benchmarks',
    '',
    `${r.at}, ${r.mode} run (${r.duration_s} s) on ${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.mem_gib} GiB, Node ${r.machine.node}, ${r.machine.platform}.`,
    'Every figure is the median over repeated runs with (min–max); ratios are taken within one round, then the median. Loopback only.',
    '',
  ];
  if (r.throughput) {
    const rounds = r.throughput[0]?.rounds ?? 0;
    out.push(`## Throughput, producer → 1 receiver (${rounds} rounds)`, '');
    out.push(
      ...table(
        ['case', 'chunk', 'MB/s', 'chunks/s', 'ratio_vs_ws', 'ratio_vs_raw_datachannel'],
        r.throughput.map((t) => [
          t.baseline ? `baseline: ${t.case}` : `gateway → SDK: ${t.case}`,
          `${t.chunk_bytes / 1024} KiB`,
          range(t.mbps, t.mbps_min, t.mbps_max),
          range(t.chunks_per_s, t.chunks_per_s_min, t.chunks_per_s_max, 0),
          range(t.ratio_vs_ws, t.ratio_vs_ws_min, t.ratio_vs_ws_max, 3),
          range(t.ratio_vs_raw_datachannel, t.ratio_vs_raw_datachannel_min, t.ratio_vs_raw_datachannel_max, 2),
        ]),
      ),
      '',
    );
  }
  if (r.failover) {
    const f = r.failover;
    out.push(`## Failover interruption at ${f.rate_per_s} chunks/s`, '');
    out.push(
      'Process faults of the active receiver (3 receivers in child processes; kill = SIGKILL, freeze = SIGSTOP for 2 s then SIGCONT); hedge off is the baseline (the switch on death only). Interruption = the longest stall of the in-order frontier of the union of all receivers after the fault.',
      '',
    );
    const dups = (s: FailoverSummary): string =>
      Object.entries(s.duplicates_per_endpoint)
        .map(([id, d]) => `${id}: ${d}`)
        .join(', ');
    out.push(
      ...table(
        ['fault', 'transport', 'hedge', 'standbys on the gateway', 'runs', 'p50 ms', 'p99 ms', 'max ms', 'min ms', 'latency p50 ms', 'hedges started / ended / committed', 'lost', 'duplicates per endpoint'],
        f.process_faults.map((c) => [
          c.fault,
          c.transport === 'webrtc' ? 'WebRTC (node-datachannel)' : c.transport === 'webrtc-listening' ? 'WebRTC, listening receivers (the gateway dials)' : 'WebTransport/HTTP-2',
          c.hedge ? 'on' : 'off (baseline)',
          String(c.standbys ?? 0),
          String(c.runs),
          n(c.p50_ms),
          n(c.p99_ms),
          n(c.max_ms),
          n(c.min_ms),
          n(c.latency_p50_ms ?? Number.NaN, 2),
          `${c.hedges_started ?? 0} / ${c.hedges_ended ?? 0} / ${c.hedges_committed ?? 0}`,
          String(c.lost),
          dups(c),
        ]),
      ),
      '',
      // a run of some transports only (--transports) has no degradation runs: no table
      ...(f.degradation.runs === 0
        ? []
        : [
            ...table(
              ['degradation', 'runs', 'p50 ms', 'p99 ms', 'max ms', 'fault → switch ms (p50 / max)', 'lost', 'duplicates per endpoint'],
              [
                [
                  f.degradation.impairment,
                  String(f.degradation.runs),
                  n(f.degradation.p50_ms),
                  n(f.degradation.p99_ms),
                  n(f.degradation.max_ms),
                  `${n(f.degradation.switch_p50_ms ?? Number.NaN, 0)} / ${n(f.degradation.switch_max_ms ?? Number.NaN, 0)}`,
                  String(f.degradation.lost),
                  dups(f.degradation),
                ],
              ],
            ),
            '',
          ]),
      'Interruption: the longest time from the fault on that the in-order frontier of the union of all receivers did not advance (2 ms between chunks without a fault).',
      '',
    );
  }
  if (r.fanout) {
    out.push(`## Fan-out: warm endpoints on one gateway (heartbeats on, one stream each at 1 chunk/s; ${r.fanout[0]?.windows ?? 0} windows per stage)`, '');
    out.push(
      ...table(
        ['transport', 'endpoints offered', 'connected', 'refused (503 MS_OVERLOADED)', 'gateway CPU %', 'of it JS thread / native threads %', 'CPU % per 1000 added', 'loop delay p99 ms', 'gateway RSS MiB', 'RSS per endpoint KiB', 'heap per endpoint KiB', 'heartbeat RTT p50 / p99 ms', 'published / target per s', 'delivered per s', 'gaps / dups', 'receivers CPU %', 'receivers loop delay p99 ms', 'connect s', 'machine CPU stolen %'],
        r.fanout.map((x) => [
          x.transport,
          String(x.endpoints),
          String(x.connected),
          String(x.refused),
          range(x.cpu_pct, x.cpu_pct_min, x.cpu_pct_max),
          threadSplit(x.gateway_threads_pct),
          x.cpu_pct_per_1000 === null ? '' : n(x.cpu_pct_per_1000),
          range(x.loop_delay_p99_ms, x.loop_delay_p99_ms_min, x.loop_delay_p99_ms_max),
          range(x.rss_mib, x.rss_mib_min, x.rss_mib_max),
          range(x.rss_per_endpoint_kib, x.rss_per_endpoint_kib_min, x.rss_per_endpoint_kib_max),
          range(x.heap_per_endpoint_kib, x.heap_per_endpoint_kib_min, x.heap_per_endpoint_kib_max),
          `${n(x.hb_rtt_p50_ms, 2)} / ${range(x.hb_rtt_p99_ms, x.hb_rtt_p99_ms_min, x.hb_rtt_p99_ms_max, 2)}`,
          `${range(x.published_per_s, x.published_per_s_min, x.published_per_s_max, 0)} / ${x.target_per_s}`,
          range(x.delivered_per_s, x.delivered_per_s_min, x.delivered_per_s_max, 0),
          `${x.gaps} / ${x.duplicates}`,
          range(x.receivers_cpu_pct, x.receivers_cpu_pct_min, x.receivers_cpu_pct_max),
          x.receivers_loop_p99_ms === undefined ? 'not recorded' : range(x.receivers_loop_p99_ms, x.receivers_loop_p99_ms_min, x.receivers_loop_p99_ms_max),
          `${n(x.connect_s, 2)}${x.connect_failed > 0 ? ` (${x.connect_failed} failed)` : ''}`,
          x.steal_pct === undefined ? 'not recorded' : range(x.steal_pct, x.steal_pct_min, x.steal_pct_max),
        ]),
      ),
      '',
      ...table(
        ['idle (publishing paused, retention aged out)', 'endpoints offered', 'gateway CPU %', 'per 1000 connected: JS thread / native threads %', 'RSS MiB', 'heap MiB', 'per endpoint over', 'RSS per endpoint KiB', 'heap per endpoint KiB', 'heartbeat RTT p99 ms', 'loop delay p99 ms', 'machine CPU stolen %'],
        (r.fanout_idle ?? []).map((x) => [x.transport, String(x.endpoints), n(x.cpu_pct), x.js_pct_per_1000 === null || x.native_pct_per_1000 === null ? '' : `${n(x.js_pct_per_1000)} / ${n(x.native_pct_per_1000)}`, n(x.rss_mib), n(x.heap_mib), x.per_endpoint_over, x.rss_per_endpoint_kib === null ? '' : n(x.rss_per_endpoint_kib), x.heap_per_endpoint_kib === null ? '' : n(x.heap_per_endpoint_kib), n(x.hb_rtt_p99_ms, 2), n(x.loop_delay_p99_ms), x.steal_pct === undefined ? 'not recorded' : n(x.steal_pct)]),
      ),
      '',
      ...(r.fanout_stopped ?? []).map((x) => `**${x.transport} at ${x.endpoints} endpoints: not measured** (${x.connected} connected, ${x.connect_failed} did not connect within the stage's deadline): ${x.reason}. The gateway stopped answering the bench in time: that run ends there.\n`),
      `Per endpoint at a stage: (value at the stage − value with no endpoint) / endpoints, after a GC; idle: the slope from the previous idle window (the first from none, so it also holds the code the gateway compiled while warming up). The gateway with no endpoint: ${Object.entries(r.fanout_baseline ?? {}).map(([t, b]) => `${t} run ${n(b.rss_mib)} MiB RSS, ${n(b.heap_mib)} MiB heap`).join('; ')}. CPU % is of one core and includes the gateway's native threads; the receivers run in several other processes on the same ${r.machine.cpus} cores.`,
      '',
    );
  }
  if (r.herd) {
    out.push(`## Thundering herd: the gateway restarted under ${r.herd[0]?.receivers ?? 0} warm receivers (WebRTC, one stream each at 1 chunk/s)`, '');
    out.push(
      ...table(
        ['restart', 'away s (signal → new process listening)', 'half back s', 'all back s', 'most back within 1 s', 'refused (503 MS_OVERLOADED)', 'loop delay p99 while coming back, worst 250 ms, ms', 'after: heartbeat RTT p99 ms', 'after: published / target per s', 'after: loop delay p99 ms', 'after: fewest connected', 'machine CPU stolen %'],
        r.herd.map((x) => [
          x.fault === 'sigterm' ? 'SIGTERM (drain, GOAWAY)' : 'SIGKILL (crash)',
          n(x.away_s, 2),
          x.half_back_s === null ? 'not within 120 s' : n(x.half_back_s, 2),
          x.all_back_s === null ? 'not within 120 s' : n(x.all_back_s, 2),
          String(x.most_back_in_1s),
          String(x.refused),
          n(x.loop_delay_p99_max_ms),
          n(x.hb_rtt_p99_ms, 2),
          `${n(x.published_per_s, 0)} / ${x.target_per_s}`,
          n(x.loop_delay_p99_ms),
          `${x.min_connected_after} of ${x.receivers}`,
          n(x.steal_pct),
        ]),
      ),
      '',
      'A new gateway process on the same port and token secret after each restart (streams in memory: they begin anew, a new epoch). Back: from the new process listening until that many endpoints were connected (sampled every 250 ms). The receivers back off with jitter and honor Retry-After; the gateway admits them within its budget (`admission`). "After": one window 3 s after all were back; fewest connected: from all back to the window\'s end (fewer than all is a second collapse).',
      '',
    );
  }
  if (r.codec) {
    out.push('## Codec: one DATA frame encoded + decoded', '');
    out.push(
      ...table(
        ['payload', 'codec', 'frame bytes', 'frames/s', 'ratio_vs_json'],
        r.codec.map((c) => [`${c.payload_bytes} B`, c.codec, String(c.frame_bytes), range(c.frames_per_s, c.frames_per_s_min, c.frames_per_s_max, 0), range(c.ratio_vs_json, c.ratio_vs_json_min, c.ratio_vs_json_max, 2)]),
      ),
      '',
      '`protocol` = encodeFrame + decodeFrame as the gateway and SDK run them (with validation); `msgpackr` = pack + unpack only; `json` = JSON text with a base64 payload.',
      '',
    );
  }
  if (r.durable) {
    out.push('## Durable log: publish-ack latency and producer → receiver throughput (1 KiB chunks)', '');
    out.push(
      ...table(
        ['case', 'replicas', 'publish ack p50 / p99 ms (one at a time)', 'chunks/s (batches of 64)', 'MB/s'],
        r.durable.map((d) => [d.case, d.replicas === 0 ? '–' : `R${d.replicas}`, `${n(d.publish_ack_p50_ms, 3)} / ${n(d.publish_ack_p99_ms, 3)}`, String(d.chunks_per_s), n(d.mbps)]),
      ),
      '',
      `\`gateway/*\` = \`publish()\` resolving once stored (JetStream: once JetStream acked), and chunks/s delivered to one in-process receiver; \`jetstream/raw\` = the NATS client publishing to and consuming from the same servers without the gateway (${r.durable[0]?.acks ?? 0} acks per case). R3 = three nats-server processes on this machine.`,
      '',
    );
  }
  if (r.durable_ingest) {
    const rows = r.durable_ingest;
    out.push(`## Ingest at feed rates: HTTP, the producer client, in process; memory and durable logs (${rows[0]?.rounds ?? 0} rounds, cases interleaved)`, '');
    out.push(
      ...table(
        ['case', 'replicas', 'chunks/s', 'ratios (same round)', 'request (producer: publish → ack) p50 / p99 ms', 'CPU % of one core: process / client / nats-server', 'CPU µs per chunk: process / all three', 'other load on the machine, % of one core', 'machine CPU stolen %', 'errors'],
        rows.map((d) => [
          ingestCaseLabel(d),
          d.replicas === 0 ? '–' : `R${d.replicas}`,
          range(d.chunks_per_s, d.chunks_per_s_min, d.chunks_per_s_max, 0),
          [
            d.ratio_vs_raw === undefined ? '' : `to raw ${range(d.ratio_vs_raw, d.ratio_vs_raw_min ?? Number.NaN, d.ratio_vs_raw_max ?? Number.NaN, 2)}`,
            d.ratio_vs_raw_no_traces === undefined ? '' : `to raw without traces ${range(d.ratio_vs_raw_no_traces, d.ratio_vs_raw_no_traces_min ?? Number.NaN, d.ratio_vs_raw_no_traces_max ?? Number.NaN, 2)}`,
            d.ratio_vs_http === undefined ? '' : `to HTTP ${range(d.ratio_vs_http, d.ratio_vs_http_min ?? Number.NaN, d.ratio_vs_http_max ?? Number.NaN, 2)}`,
            d.ratio_vs_inprocess === undefined ? '' : `to in process ${range(d.ratio_vs_inprocess, d.ratio_vs_inprocess_min ?? Number.NaN, d.ratio_vs_inprocess_max ?? Number.NaN, 2)}`,
            d.ratio_vs_inprocess_fresh === undefined ? '' : `to in process, a payload per chunk ${range(d.ratio_vs_inprocess_fresh, d.ratio_vs_inprocess_fresh_min ?? Number.NaN, d.ratio_vs_inprocess_fresh_max ?? Number.NaN, 2)}`,
          ]
            .filter(Boolean)
            .join('; '),
          d.request_p50_ms === undefined ? '' : `${n(d.request_p50_ms, 2)} / ${n(d.request_p99_ms ?? Number.NaN, 2)}`,
          `${n(d.cpu_pct)} / ${d.client_cpu_pct === undefined ? '–' : n(d.client_cpu_pct)} / ${n(d.nats_cpu_pct)}`,
          `${n(d.cpu_us_per_chunk)} / ${n(d.total_cpu_us_per_chunk)}`,
          n(d.others_cpu_pct),
          range(d.steal_pct, d.steal_pct_min, d.steal_pct_max),
          String(d.errors),
        ]),
      ),
      '',
      `${rows[0]?.chunk_bytes ?? 0} B chunks. \`http/*\` = a gateway in its own process answering \`POST /v1/streams/:id/chunks\` (JSON) once the chunks are stored, to a client process (${rows.find((d) => d.http_client)?.http_client ?? ''} HTTP/1.1 client) keeping ${rows.find((d) => d.http_client)?.connections ?? 0} keep-alive connections busy; \`producer/*\` = \`@mirrorstream/producer\` in that client process, one \`publish()\` per chunk into the same stream over the streaming ingest (one WebSocket; the client batches), ${rows.find((d) => d.case === 'producer/gateway-memory')?.in_flight ?? 0} unanswered at a time; the client process runs ws without the native \`bufferutil\` (the producer does not install it), the gateway with it; \`producer-paced/*\` = the same at ${rows.find((d) => d.rate_per_s)?.rate_per_s ?? 0} chunks/s, its latency from \`publish()\` to resolved; \`inprocess/publish-memory\` = the gateway's own \`publishBatch\` of ${rows.find((d) => d.case === 'inprocess/publish-memory')?.batch ?? 0} chunks, one after the other, in the gateway process (no network); \`-rx\`: into a second stream with one receiver in the gateway process (MemoryTransport), chunks/s = what that receiver got: the path of a stream in use (without \`-rx\` the stream has no endpoint, so a chunk is only stored); \`-fresh\`: each chunk with a payload of its own, as an application's data is (the others publish one shared payload object, which the log then holds once; over the network every chunk arrives as its own); \`jetstream/raw-async\` = the NATS client (nats.js, default options) alone publishing to a stream configured like the gateway's, each publish awaited for its ack; \`-no-traces\`: the same with \`noAsyncTraces\` (no stack captured per request). Every case runs once per round for the same time, the order rotating; the ratio is taken within each round, then the median. Process: the gateway (raw: the publisher); nats-server: all of the bench's servers; other load: the machine's busy time outside these processes (another job on a shared machine). Per round (chunks/s): ${rows.map((d) => `${d.case}${d.replicas ? ` R${d.replicas}` : ''}: ${d.chunks_per_s_rounds.join(', ')}`).join('; ')}.`,
      '',
    );
  }
  return out.join('\n');
}

/** The gateway's CPU in its last window: its JavaScript thread vs the engine's native threads (and V8's helpers). */
function threadSplit(threads: Record<string, number> | undefined): string {
  if (!threads) return '';
  const { js, native } = jsAndNative(threads);
  return `${js.toFixed(1)} / ${native.toFixed(1)}`;
}

function ingestCaseLabel(d: IngestRow): string {
  if (d.case.startsWith('jetstream/')) return `baseline: ${d.case} (${d.in_flight} in flight)`;
  if (d.case === 'inprocess/publish-memory') return `baseline: ${d.case} (publishBatch × ${d.batch})`;
  if (d.case.startsWith('producer-paced/')) return `${d.case} (1 connection, ${d.rate_per_s ?? 0} chunks/s)`;
  if (d.case.startsWith('producer/')) return `${d.case} (1 connection, ${d.in_flight} publish() unanswered)`;
  return `${d.case} (${d.connections} connections × ${d.batch} chunks)`;
}
