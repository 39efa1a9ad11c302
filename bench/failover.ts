/**
 * Failover interruption over real loopback sockets, the stream at 500 chunks/s:
 * - process faults: 3 receivers in child processes on the public SDK, over WebRTC
 *   (node-datachannel) or WebTransport/HTTP-2; the active one is SIGKILLed, or frozen
 *   (SIGSTOP for 2 s, then SIGCONT: no close, no packets); with hedging (the default) and,
 *   side by side as the baseline, with `failover.hedge: false` (the switch on death only);
 * - degradation: 2 in-process receivers behind netsim UDP relays, 10 % loss (both
 *   directions) put on the active link mid-stream.
 * Interruption = the longest time, from the fault on, that the in-order frontier of the
 * union of all receivers (what an application merging them by seq sees) did not advance.
 * With no fault it is the 2 ms between chunks. Lost = published − |union|; duplicates =
 * per receiver, seqs its application saw more than once.
 */
import type { Impairment } from '../netsim/index.js';
import { ImpairedLink } from '../netsim/index.js';
import type { SwitchEvent } from '../gateway/src/index.js';
import { Receiver } from '../receiver-sdk/src/node.js';
import { runFailover, startGateway, waitFor } from '../test/helpers/webrtc-scenario.js';
import type { Gateway } from '../gateway/src/index.js';
import { ReceiverPool } from './fanout.js';
import { freeUdpPorts } from './fanout/free-port.js';
import { frontierStall, percentile, sleep, type Timeline } from './stats.js';

const RATE = 500;

export interface FailoverRun {
  interruption_ms: number;
  /** Median ingestion → delivery latency of every delivery in the run. */
  latency_p50_ms?: number;
  hedges?: { started: number; ended: number; committed: number };
  switches?: string[];
  /** Fault → the gateway's switch event (degradation only; a kill has no switch-time stamp here). */
  switch_ms?: number;
  published: number;
  lost: number;
  duplicates: Record<string, number>;
}

export interface FailoverSummary {
  runs: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  min_ms: number;
  switch_p50_ms?: number;
  switch_max_ms?: number;
  lost: number;
  duplicates: number;
  duplicates_per_endpoint: Record<string, number>;
  latency_p50_ms?: number;
  hedges_started?: number;
  hedges_ended?: number;
  hedges_committed?: number;
  samples_ms: number[];
}

export type ProcessFault = 'kill' | 'freeze';
/** `webrtc-listening`: the receivers listen and the gateway dials them (issue 29). */
export const FAILOVER_TRANSPORTS = ['webrtc', 'webtransport', 'webrtc-listening'] as const;
export type Transport = (typeof FAILOVER_TRANSPORTS)[number];

export interface ProcessFaultCase extends FailoverSummary {
  fault: ProcessFault;
  transport: Transport;
  hedge: boolean;
  /** Warm standby endpoints connected to the gateway beside the failover stream (0: none). */
  standbys: number;
}

/** Endpoints per background stream: the most a stream may list. */
const STANDBYS_PER_STREAM = 64;

/**
 * The gateway also carries `count` warm endpoints over WebRTC, in streams of 64 (one active
 * with one next in line, the rest far standbys), each stream fed 1 chunk/s; their receivers
 * run in the pool's processes (the SDK, like every receiver here).
 */
function withStandbys(count: number, pool: ReceiverPool): (gateway: Gateway, url: string) => Promise<() => Promise<void>> {
  return async (gateway, url) => {
    const streams = Math.ceil(count / STANDBYS_PER_STREAM);
    const tokens: { id: string; token: string }[] = [];
    for (let s = 0; s < streams; s++) {
      const ids = Array.from({ length: Math.min(STANDBYS_PER_STREAM, count - s * STANDBYS_PER_STREAM) }, (_, i) => `warm-${s}-${i}`);
      await gateway.createStream({ stream_id: `warm-${s}`, endpoint_list: ids });
      tokens.push(...(await Promise.all(ids.map(async (id) => ({ id, token: (await gateway.issueToken(id)).token })))));
    }
    const { failed } = await pool.connect(url, 'webrtc', tokens);
    if (failed > 0) throw new Error(`${failed} of ${count} standby receivers did not connect`);
    const feed = setInterval(() => {
      for (let s = 0; s < streams; s++) void gateway.publish(`warm-${s}`, new Uint8Array(100)).catch(() => undefined);
    }, 1_000);
    await sleep(2_000); // their first heartbeats and probes
    return async () => {
      clearInterval(feed);
      await pool.closeAll();
    };
  };
}

function accounting(timeline: Timeline, published: number): Pick<FailoverRun, 'lost' | 'duplicates'> {
  const union = new Set(Object.values(timeline).flatMap((l) => l.map((c) => c.seq)));
  const duplicates = Object.fromEntries(Object.entries(timeline).map(([id, l]) => [id, l.length - new Set(l.map((c) => c.seq)).size]));
  return { lost: published - union.size, duplicates };
}

export async function processFault(fault: ProcessFault, transport: Transport, hedge: boolean, total: number, killAt: number, background?: ReturnType<typeof withStandbys>): Promise<FailoverRun> {
  const r = await runFailover('node-datachannel', {
    total,
    ratePerS: RATE,
    killAt,
    fault,
    freezeMs: 2_000,
    ...(transport === 'webrtc-listening' ? { listening: ['a', 'b', 'c'] } : { transports: { a: transport, b: transport, c: transport } }),
    // with the standbys: their receivers signal from one address (the per-address signaling
    // limit is off), and the gateway serves its sessions on ICE ports as a large one would
    config: { failover: { hedge }, ...(background ? { limits: { signalingPerAddress: 0 }, webrtc: { icePort: await freeUdpPorts(8) } } : {}) },
    ...(background ? { background } : {}),
  });
  return {
    interruption_ms: frontierStall(r.timeline, r.killTime),
    latency_p50_ms: Number(r.latencyP50Ms.toFixed(2)),
    hedges: r.hedges,
    switches: r.switchReasons,
    published: total,
    ...accounting(r.timeline, total),
  };
}

export async function degradation(impairment: Partial<Impairment>, beforeMs = 2_000, afterMs = 2_000): Promise<FailoverRun> {
  // fail-back would bring a back mid-run; the bench measures the way away from the fault
  const { gateway, server } = await startGateway('node-datachannel', { failback: { enabled: false } });
  const links: ImpairedLink[] = [];
  const receivers: Receiver[] = [];
  const timeline: Timeline = {};
  const now = (): number => performance.timeOrigin + performance.now();
  try {
    for (const id of ['a', 'b']) {
      const link = new ImpairedLink();
      links.push(link);
      const { token } = await gateway.issueToken(id);
      const rx = new Receiver({ gatewayUrl: server.url, endpointId: id, token, rtcConfig: { bindAddress: '127.0.0.1' }, fetch: link.fetch });
      const list: { seq: number; t: number }[] = (timeline[id] = []);
      rx.on('chunk', (c) => list.push({ seq: c.seq, t: now() }));
      receivers.push(rx);
      await rx.connect();
    }
    gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b'] });
    await waitFor(() => gateway.getStream('feed').active[0] === 'a', 5_000, 'a active');
    const switches: SwitchEvent[] = [];
    gateway.on('switched', (e) => switches.push(e));
    let published = 0;
    let faultAt = Number.POSITIVE_INFINITY;
    let switchedAt: number | undefined;
    let switchesAtFault = Number.POSITIVE_INFINITY;
    const start = performance.now();
    const payload = new Uint8Array(1_000);
    while (switchedAt === undefined || now() < switchedAt + afterMs) {
      await gateway.publish('feed', payload);
      published++;
      if (published === Math.round((beforeMs / 1000) * RATE)) {
        links[0]?.set(impairment);
        faultAt = now();
        switchesAtFault = switches.length; // only a switch after the fault counts
      }
      if (switchedAt === undefined && switches.slice(switchesAtFault).some((s) => s.from === 'a' && s.to === 'b')) switchedAt = now();
      if (now() > faultAt + 15_000) throw new Error('no switch within 15 s of the impairment');
      const wait = start + (published * 1000) / RATE - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const union = (): number => new Set(Object.values(timeline).flatMap((l) => l.map((c) => c.seq))).size;
    await waitFor(() => union() >= published, 15_000, 'all chunks delivered').catch(() => undefined);
    return {
      interruption_ms: frontierStall(timeline, faultAt),
      switch_ms: (switchedAt ?? Number.NaN) - faultAt,
      published,
      ...accounting(timeline, published),
    };
  } finally {
    for (const r of receivers) r.close();
    await gateway.close();
    await server.close();
    for (const l of links) await l.close();
  }
}

export function summarizeRuns(runs: FailoverRun[]): FailoverSummary {
  const ms = runs.map((r) => r.interruption_ms);
  const sw = runs.map((r) => r.switch_ms).filter((v): v is number => v !== undefined);
  const perEndpoint: Record<string, number> = {};
  for (const r of runs) for (const [id, d] of Object.entries(r.duplicates)) perEndpoint[id] = (perEndpoint[id] ?? 0) + d;
  const round = (v: number): number => Number(v.toFixed(1));
  const lat = runs.map((r) => r.latency_p50_ms).filter((v): v is number => v !== undefined);
  const hedged = runs.filter((r) => r.hedges);
  const sum = (k: 'started' | 'ended' | 'committed'): number => hedged.reduce((n, r) => n + (r.hedges?.[k] ?? 0), 0);
  return {
    runs: runs.length,
    p50_ms: round(percentile(ms, 50)),
    p99_ms: round(percentile(ms, 99)),
    max_ms: round(Math.max(...ms)),
    min_ms: round(Math.min(...ms)),
    ...(sw.length ? { switch_p50_ms: round(percentile(sw, 50)), switch_max_ms: round(Math.max(...sw)) } : {}),
    lost: runs.reduce((n, r) => n + r.lost, 0),
    duplicates: Object.values(perEndpoint).reduce((a, b) => a + b, 0),
    duplicates_per_endpoint: perEndpoint,
    ...(lat.length ? { latency_p50_ms: Number(percentile(lat, 50).toFixed(2)) } : {}),
    ...(hedged.length ? { hedges_started: sum('started'), hedges_ended: sum('ended'), hedges_committed: sum('committed') } : {}),
    samples_ms: ms.map(round),
  };
}

export interface FailoverPlan {
  /** Runs per (fault, transport) with hedging, and of the hedge-off baseline. */
  processFaults: number;
  baselineRuns: number;
  degradations: number;
  total: number;
  /** Runs per fault over WebRTC with hedging while `standbys` warm endpoints are connected too (0 runs: none). */
  standbyRuns: number;
  standbys: number;
  /** Process faults over these transports (default: all). */
  transports?: readonly Transport[];
}

export async function failover(opts: FailoverPlan): Promise<{
  rate_per_s: number;
  process_faults: ProcessFaultCase[];
  degradation: FailoverSummary & { impairment: string };
  lost: number;
  duplicates: number;
}> {
  const cases: ProcessFaultCase[] = [];
  for (const transport of opts.transports ?? FAILOVER_TRANSPORTS) {
    for (const fault of ['kill', 'freeze'] as const) {
      for (const hedge of [true, false]) {
        const n = hedge ? opts.processFaults : opts.baselineRuns;
        const runs: FailoverRun[] = [];
        for (let i = 0; i < n; i++) {
          runs.push(await processFault(fault, transport, hedge, opts.total, Math.floor(opts.total / 3)));
          console.log(`failover ${fault} ${transport} hedge=${hedge} ${i + 1}/${n}: ${JSON.stringify(runs.at(-1))}`);
        }
        cases.push({ fault, transport, hedge, standbys: 0, ...summarizeRuns(runs) });
      }
    }
  }
  if (opts.standbyRuns > 0) {
    const pool = new ReceiverPool(4, 10);
    try {
      for (const fault of ['kill', 'freeze'] as const) {
        const runs: FailoverRun[] = [];
        for (let i = 0; i < opts.standbyRuns; i++) {
          runs.push(await processFault(fault, 'webrtc', true, opts.total, Math.floor(opts.total / 3), withStandbys(opts.standbys, pool)));
          console.log(`failover ${fault} webrtc hedge=true with ${opts.standbys} standbys ${i + 1}/${opts.standbyRuns}: ${JSON.stringify(runs.at(-1))}`);
        }
        cases.push({ fault, transport: 'webrtc', hedge: true, standbys: opts.standbys, ...summarizeRuns(runs) });
      }
    } finally {
      await pool.stop();
    }
  }
  const degr: FailoverRun[] = [];
  for (let i = 0; i < opts.degradations; i++) {
    degr.push(await degradation({ lossPct: 10 }));
    console.log(`failover degradation ${i + 1}/${opts.degradations}: ${JSON.stringify(degr.at(-1))}`);
  }
  const degradationSummary = { ...summarizeRuns(degr), impairment: 'netsim 10 % loss, both directions, on the active link' };
  return {
    rate_per_s: RATE,
    process_faults: cases,
    degradation: degradationSummary,
    lost: cases.reduce((n, c) => n + c.lost, 0) + degradationSummary.lost,
    duplicates: cases.reduce((n, c) => n + c.duplicates, 0) + degradationSummary.duplicates,
  };
}

if (process.argv[1]?.endsWith('failover.ts')) {
  const runs = Number(process.argv[2] ?? 2);
  // npx tsx bench/failover.ts [runs] [degradations] [standby runs] [standbys]
  const standbyRuns = Number(process.argv[4] ?? 0);
  console.log(JSON.stringify(await failover({ processFaults: runs, baselineRuns: runs, degradations: Number(process.argv[3] ?? 2), total: 3_000, standbyRuns, standbys: Number(process.argv[5] ?? 1_000) }), null, 2));
  process.exit(0);
}
