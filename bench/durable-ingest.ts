/**
 * Ingest at feed rates (`npm run bench -- --only durable-ingest`): HTTP, the producer client
 * on the streaming ingest and the gateway's own publishBatch, on the memory log and on
 * JetStream R1/R3, beside raw JetStream async publish on the same servers.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../gateway/src/index.js';
import { startNats, startNatsCluster } from '../test/helpers/nats.js';
import type { FromIngestClient, IngestClientKind, ToIngestClient } from './durable/ingest-client.js';
import {
  Child,
  GatewayChild,
  httpTarget,
  INGEST_BATCH,
  INGEST_CHUNK,
  INGEST_CLIENT,
  INGEST_CONNECTIONS,
  inprocessTarget,
  INPROCESS_BATCH,
  PACED_RATE,
  PRODUCER_WINDOW,
  producerTarget,
  RAW_IN_FLIGHT,
  rawTarget,
  type IngestCase,
  type IngestTarget,
} from './durable/targets.js';
import { waitForJetStream } from './durable.js';
import { childTicks, flat, machineShare, machineTicks, percentile, sleep, summarize } from './stats.js';

export type { IngestCase } from './durable/targets.js';

/** A case's first run, not counted: JIT, connections, the logs filled to their limits. */
const WARM_UP_S = 6;

/** One row of `durable_ingest[]`: see bench/README.md. */
export interface IngestRow {
  case: IngestCase;
  /** JetStream replicas (0: no JetStream). */
  replicas: number;
  /** HTTP: keep-alive connections; raw: 1 NATS connection. */
  connections: number;
  /** At most this many chunks unacked at a time (HTTP: connections × batch). */
  in_flight: number;
  /** Chunks per request (raw: 1 per publish). */
  batch: number;
  chunk_bytes: number;
  rounds: number;
  /** Chunks stored per second (answered 200 / acked), median over rounds with min and max. */
  chunks_per_s: number;
  chunks_per_s_min: number;
  chunks_per_s_max: number;
  /** Per round, in run order. */
  chunks_per_s_rounds: number[];
  /** http/gateway-jetstream: chunks/s ÷ jetstream/raw-async at the same replicas within each round; the median of those. */
  ratio_vs_raw?: number;
  ratio_vs_raw_min?: number;
  ratio_vs_raw_max?: number;
  ratio_vs_raw_rounds?: number[];
  /** http/gateway-jetstream R1: the same against jetstream/raw-async-no-traces (the client without its per-request stack traces). */
  ratio_vs_raw_no_traces?: number;
  ratio_vs_raw_no_traces_min?: number;
  ratio_vs_raw_no_traces_max?: number;
  /** producer/gateway-*: chunks/s ÷ http/gateway-* at the same replicas within each round; the median of those. */
  ratio_vs_http?: number;
  ratio_vs_http_min?: number;
  ratio_vs_http_max?: number;
  /** producer/gateway-memory(-rx): the same against inprocess/publish-memory(-rx) (the gateway's own publishBatch, no network). */
  ratio_vs_inprocess?: number;
  ratio_vs_inprocess_min?: number;
  ratio_vs_inprocess_max?: number;
  /** producer*-rx: the same against inprocess/publish-memory-rx-fresh (a payload per chunk). */
  ratio_vs_inprocess_fresh?: number;
  ratio_vs_inprocess_fresh_min?: number;
  ratio_vs_inprocess_fresh_max?: number;
  /** producer-paced/*: the chunks published per second. */
  rate_per_s?: number;
  /** HTTP: the client (bench/durable/ingest-client.ts): `lean` (a prepared request, the answer read by its Content-Length) or `node-http` (Node's http.Agent). */
  http_client?: IngestClientKind;
  /** HTTP: request round trip at the client, every request of every round (nearest rank); producer*: publish() → resolved, per chunk. */
  request_p50_ms?: number;
  request_p99_ms?: number;
  /** Requests (raw: publishes) that failed; must be 0. */
  errors: number;
  /** The gateway process (raw: the publishing bench process), % of one core. */
  cpu_pct: number;
  /** The same as CPU time per chunk stored (µs): steadier than chunks/s on a shared machine. */
  cpu_us_per_chunk: number;
  /** The HTTP client process, % of one core. */
  client_cpu_pct?: number;
  /** Every nats-server process of the bench together (R3: all three), % of one core. */
  nats_cpu_pct: number;
  /** CPU time of the bench's processes (gateway or publisher, HTTP client, nats-servers) per chunk stored, µs: what a chunk costs the machine. */
  total_cpu_us_per_chunk: number;
  /** CPU the machine spent outside the bench's processes (other work on a shared machine), % of one core: read figures with much of it with care. */
  others_cpu_pct: number;
  /** The whole machine while the case ran: % busy, and % stolen by the hypervisor (median, min, max). */
  machine_busy_pct: number;
  steal_pct: number;
  steal_pct_min: number;
  steal_pct_max: number;
}

const CPUS = os.cpus().length;
/** Linux's USER_HZ (clock ticks in /proc): 100 on every common build. */
const TICKS_PER_S = 100;

interface Sample {
  chunksPerS: number;
  natsCpuPct: number;
  cpuPct: number;
  clientCpuPct: number | undefined;
  busyPct: number;
  stealPct: number;
  errors: number;
  latenciesMs: number[];
}

/**
 * Ingest at feed rates: 16 keep-alive connections (a client process of its own), each
 * posting batches of 10 × 100 B (JSON) one after the other, to a gateway (a process of its
 * own) on the memory log, on JetStream R1 (one nats-server) and on JetStream R3 (a 3-node
 * cluster); from the same client process @mirrorstream/producer, one publish() per 100 B
 * chunk, as fast as it goes and paced at 1 000/s (its publish-ack latency); on the memory
 * gateway its own publishBatch (no network), and the producer and publishBatch again into a
 * stream with one in-process receiver (`-rx`: chunks/s delivered to it); beside them the
 * NATS client alone publishing 100 B with 256 in flight to the same
 * servers, into a stream configured like the gateway's (at R1 also without the client's
 * per-request stack traces). A warm-up round first (not counted),
 * then every round runs every case once for `seconds`, the order rotating, so noise lands on
 * all of them; ratios are taken within a round.
 */
export async function durableIngest(plan: { rounds: number; seconds: number; only?: string[] }): Promise<IngestRow[]> {
  const single = await startNats();
  const cluster = await startNatsCluster(3);
  // the producer as a plain install has it: ws without the optional native bufferutil (the gateway has it)
  const client = await Child.start<ToIngestClient, FromIngestClient>('./ingest-client.ts', [], process.env.DURABLE_CLIENT_ARGS?.split(' ').filter(Boolean) ?? [], { ...process.env, WS_NO_BUFFER_UTIL: '1' });
  const targets: IngestTarget[] = [];
  const gateways: GatewayChild[] = [];
  try {
    await waitForJetStream(cluster.urls);
    // one gateway process per log; the HTTP client, the producer client and (memory) the
    // in-process publisher take turns on it
    const gateway = async (kind: 'memory' | 'jetstream', replicas: number, config: GatewayConfigInput): Promise<void> => {
      const g = await GatewayChild.start(`${kind} R${replicas}`, config);
      gateways.push(g);
      targets.push(httpTarget(g, `http/gateway-${kind}`, replicas, client));
      targets.push(producerTarget(g, `producer/gateway-${kind}`, replicas, client));
      targets.push(producerTarget(g, `producer-paced/gateway-${kind}`, replicas, client));
      if (kind === 'memory') {
        targets.push(inprocessTarget(g, 'inprocess/publish-memory'));
        // with one receiver: chunks/s delivered to it, the path a stream in use takes
        targets.push(producerTarget(g, 'producer/gateway-memory-rx', 0, client));
        targets.push(inprocessTarget(g, 'inprocess/publish-memory-rx'));
        targets.push(inprocessTarget(g, 'inprocess/publish-memory-rx-fresh'));
      }
    };
    await gateway('memory', 0, { logLevel: 'silent' });
    await gateway('jetstream', 1, ingestConfig([single.url], 1, 'ingest1'));
    targets.push(await rawTarget([single.url], 1, 'ingest1'));
    targets.push(await rawTarget([single.url], 1, 'ingest1', { noAsyncTraces: true }));
    await gateway('jetstream', 3, ingestConfig(cluster.urls, 3, 'ingest3'));
    targets.push(await rawTarget(cluster.urls, 3, 'ingest3'));
    // `only`: some cases by label (`gateway-jetstream@R1`), for profiling and experiments
    const chosen = plan.only ? targets.filter((t) => plan.only?.includes(t.label)) : targets;
    // a warm-up round, not counted: JIT, connections, and the logs filled to their limits (steady
    // state: 100 000 chunks by default, ~5 s at the rates seen here)
    for (const t of chosen) await t.run(Math.max(plan.seconds, WARM_UP_S) * 1000);
    const samples = chosen.map((): Sample[] => []);
    for (let round = 0; round < plan.rounds; round++) {
      for (let k = 0; k < chosen.length; k++) {
        const i = (round + k) % chosen.length;
        const t = chosen[i] as IngestTarget;
        await sleep(300); // the previous case's tail (followers, acks) settles
        const m0 = machineTicks();
        const nats0 = childTicks('nats-server');
        const r = await t.run(plan.seconds * 1000);
        const natsTicks = childTicks('nats-server') - nats0;
        const { stealPct, busyPct } = machineShare(m0, machineTicks());
        if (r.errors > 0) console.warn(`durable ingest: ${t.label}: ${r.errors} errors, first: ${r.firstError}`);
        samples[i]?.push({
          chunksPerS: r.chunks / r.seconds,
          cpuPct: r.cpuUs / 1e4 / r.seconds,
          clientCpuPct: r.clientCpuUs === undefined ? undefined : r.clientCpuUs / 1e4 / r.seconds,
          natsCpuPct: (natsTicks / TICKS_PER_S / r.seconds) * 100,
          busyPct,
          stealPct,
          errors: r.errors,
          latenciesMs: r.latenciesMs,
        });
      }
    }
    const baseline = (c: IngestCase, replicas: number): Sample[] | undefined => samples[chosen.findIndex((x) => x.case === c && x.replicas === replicas)];
    return chosen.map((t, i) =>
      ingestRow(t, samples[i] ?? [], {
        raw: baseline('jetstream/raw-async', t.replicas),
        rawNoTraces: baseline('jetstream/raw-async-no-traces', t.replicas),
        http: baseline(t.case.endsWith('/gateway-memory') ? 'http/gateway-memory' : 'http/gateway-jetstream', t.replicas),
        inprocess: baseline(t.case.endsWith('-rx') ? 'inprocess/publish-memory-rx' : 'inprocess/publish-memory', 0),
        inprocessFresh: baseline('inprocess/publish-memory-rx-fresh', 0),
      }),
    );
  } finally {
    for (const t of targets.reverse()) await t.close().catch(() => undefined);
    for (const g of gateways) await g.stop();
    await client.stop();
    await cluster.close();
    await single.close();
  }
}

/** The gateway's JetStream log for the ingest section: the default retention (as deployed). */
function ingestConfig(servers: string[], replicas: number, prefix: string): GatewayConfigInput {
  return { logLevel: 'silent', log: { kind: 'jetstream', nats: { servers, replicas, prefix } } };
}

interface Baselines {
  raw: Sample[] | undefined;
  rawNoTraces: Sample[] | undefined;
  http: Sample[] | undefined;
  inprocess: Sample[] | undefined;
  inprocessFresh: Sample[] | undefined;
}

function ingestRow(t: IngestTarget, s: Sample[], base: Baselines): IngestRow {
  const r1 = (v: number): number => Number(v.toFixed(1));
  const median = (f: (x: Sample) => number): number => r1(summarize(s.map(f)).median);
  const latencies = s.flatMap((x) => x.latenciesMs);
  const http = t.case.startsWith('http/');
  const producer = t.case.startsWith('producer');
  const client = http || producer;
  const ratiosTo = (of: IngestCase[], b: Sample[] | undefined): number[] | undefined => (of.includes(t.case) && b ? s.map((x, round) => x.chunksPerS / (b[round]?.chunksPerS ?? Number.NaN)) : undefined);
  const ratioFields = <K extends string>(key: K, ratios: number[] | undefined): Record<string, number> => (ratios ? flat(key, summarize(ratios), 3) : {});
  const ratios = ratiosTo(['http/gateway-jetstream'], base.raw);
  return {
    case: t.case,
    replicas: t.replicas,
    connections: client ? (http ? INGEST_CONNECTIONS : 1) : t.case === 'inprocess/publish-memory' ? 0 : 1,
    in_flight: http ? INGEST_CONNECTIONS * INGEST_BATCH : t.case.startsWith('producer/') ? PRODUCER_WINDOW : t.case.startsWith('inprocess/') ? INPROCESS_BATCH : t.case.startsWith('producer-paced') ? 0 : RAW_IN_FLIGHT,
    batch: http ? INGEST_BATCH : t.case.startsWith('inprocess/') ? INPROCESS_BATCH : 1,
    chunk_bytes: INGEST_CHUNK,
    rounds: s.length,
    ...(flat('chunks_per_s', summarize(s.map((x) => x.chunksPerS)), 0) as Pick<IngestRow, 'chunks_per_s' | 'chunks_per_s_min' | 'chunks_per_s_max'>),
    chunks_per_s_rounds: s.map((x) => Math.round(x.chunksPerS)),
    ...(ratios ? { ...ratioFields('ratio_vs_raw', ratios), ratio_vs_raw_rounds: ratios.map((v) => Number(v.toFixed(3))) } : {}),
    ...ratioFields('ratio_vs_raw_no_traces', ratiosTo(['http/gateway-jetstream'], base.rawNoTraces)),
    ...ratioFields('ratio_vs_http', ratiosTo(['producer/gateway-memory', 'producer/gateway-jetstream'], base.http)),
    ...ratioFields('ratio_vs_inprocess', ratiosTo(['producer/gateway-memory', 'producer/gateway-memory-rx'], base.inprocess)),
    ...ratioFields('ratio_vs_inprocess_fresh', ratiosTo(['producer/gateway-memory-rx'], base.inprocessFresh)),
    ...(t.case.startsWith('producer-paced') ? { rate_per_s: PACED_RATE } : {}),
    ...(http ? { http_client: INGEST_CLIENT } : {}),
    ...(client ? { request_p50_ms: Number(percentile(latencies, 50).toFixed(2)), request_p99_ms: Number(percentile(latencies, 99).toFixed(2)) } : {}),
    errors: s.reduce((a, x) => a + x.errors, 0),
    cpu_pct: median((x) => x.cpuPct),
    cpu_us_per_chunk: median((x) => (x.cpuPct * 1e4) / x.chunksPerS),
    ...(client ? { client_cpu_pct: median((x) => x.clientCpuPct ?? Number.NaN) } : {}),
    nats_cpu_pct: median((x) => x.natsCpuPct),
    total_cpu_us_per_chunk: median((x) => ((x.cpuPct + (x.clientCpuPct ?? 0) + x.natsCpuPct) * 1e4) / x.chunksPerS),
    others_cpu_pct: median((x) => Math.max(0, x.busyPct * CPUS - x.cpuPct - (x.clientCpuPct ?? 0) - x.natsCpuPct)),
    machine_busy_pct: median((x) => x.busyPct),
    ...(flat('steal_pct', summarize(s.map((x) => x.stealPct)), 1) as Pick<IngestRow, 'steal_pct' | 'steal_pct_min' | 'steal_pct_max'>),
  };
}

// npx tsx bench/durable.ts [rounds] [seconds] [cases, e.g. gateway-jetstream@R1,raw-async@R1]: the ingest section alone, as JSON lines
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const only = process.argv[4]?.split(',');
  const rows = await durableIngest({ rounds: Number(process.argv[2] ?? 3), seconds: Number(process.argv[3] ?? 3), ...(only ? { only } : {}) });
  for (const r of rows) console.log(JSON.stringify(r));
  process.exit(0);
}
