/**
 * Throughput producer → 1 consumer on loopback, both in this process, for each chunk size:
 * - baselines with no gateway logic: a raw `ws` WebSocket, and a raw node-datachannel
 *   data channel (native API, two peer connections, one reliable ordered channel);
 * - the gateway (publish → stream → transport) to an SDK receiver (ordering, acks,
 *   heartbeats) over WebRTC with each engine, and over WebTransport/HTTP-2.
 * Every case uses the same flow control: the producer keeps at most 2 MiB published but
 * not yet delivered, so none measures an unbounded queue. A round runs every case once
 * per size back to back; ratios are taken within a round, then the median over rounds.
 */
import nodeDataChannel from 'node-datachannel';
import { WebSocket, WebSocketServer } from 'ws';
import { createGateway, serve, type Gateway } from '../gateway/src/index.js';
import { Receiver, ReceiverCore } from '../receiver-sdk/src/node.js';
import { memoryReceiverCore } from '../test/helpers/memory-receiver.js';
import { waitFor } from '../test/helpers/webrtc-scenario.js';
import { flat, sleep, summarize } from './stats.js';

export type CaseName = 'ws' | 'raw_datachannel' | 'memory' | 'webrtc/node-datachannel' | 'webrtc/werift' | 'webtransport/http2';
export const BASELINES: CaseName[] = ['ws', 'raw_datachannel'];
/** `memory`: gateway → SDK over the in-process transport, i.e. the gateway and SDK logic with no network stage. */
export const CASES: CaseName[] = [...BASELINES, 'memory', 'webrtc/node-datachannel', 'webrtc/werift', 'webtransport/http2'];
const WINDOW_BYTES = 2 * 1024 * 1024;

/** The bytes/chunks a consumer saw in the measured interval. */
interface Sample {
  mbps: number;
  chunksPerS: number;
  /** CPU of this process (producer, gateway and consumer together), % of one core. */
  cpuPct: number;
}

/** A running pair: `send` one chunk, `delivered` counts the consumer's chunks. */
interface Pipe {
  send(payload: Uint8Array): void | Promise<unknown>;
  delivered(): number;
  /** Resolves when the consumer has seen a chunk since the last call (or after 5 ms). */
  progress(): Promise<void>;
  close(): Promise<void>;
}

function counter(): { inc: () => void; count: () => number; progress: () => Promise<void> } {
  let n = 0;
  let wake: (() => void) | undefined;
  return {
    inc: () => {
      n++;
      wake?.();
      wake = undefined;
    },
    count: () => n,
    progress: () =>
      new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 5);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      }),
  };
}

async function wsPipe(): Promise<Pipe> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => server.once('listening', () => r()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const serverSide = new Promise<WebSocket>((r) => server.once('connection', (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  const c = counter();
  client.on('message', () => c.inc());
  await new Promise<void>((r, reject) => client.once('open', () => r()).once('error', reject));
  const ws = await serverSide;
  return {
    send: (p) => ws.send(p, { binary: true }),
    delivered: c.count,
    progress: c.progress,
    close: async () => {
      client.close();
      ws.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function rawDataChannelPipe(): Promise<Pipe> {
  const opts = { iceServers: [], bindAddress: '127.0.0.1' };
  const a = new nodeDataChannel.PeerConnection('bench-a', opts);
  const b = new nodeDataChannel.PeerConnection('bench-b', opts);
  // a throw inside a native callback aborts the process: signal through the event loop
  a.onLocalDescription((sdp, type) => setImmediate(() => b.setRemoteDescription(sdp, type)));
  b.onLocalDescription((sdp, type) => setImmediate(() => a.setRemoteDescription(sdp, type)));
  a.onLocalCandidate((cand, mid) => setImmediate(() => b.addRemoteCandidate(cand, mid)));
  b.onLocalCandidate((cand, mid) => setImmediate(() => a.addRemoteCandidate(cand, mid)));
  const c = counter();
  const held: unknown[] = []; // native channel objects must stay referenced or their callbacks go
  b.onDataChannel((rx) => {
    held.push(rx);
    rx.onMessage(() => c.inc());
  });
  // reliable and ordered, like the gateway's `data` channel
  const tx = a.createDataChannel('data');
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('raw data channel did not open in 10 s')), 10_000);
    tx.onOpen(() => {
      clearTimeout(t);
      resolve();
    });
  });
  return {
    send: (p) => void tx.sendMessageBinary(Buffer.from(p.buffer, p.byteOffset, p.byteLength)),
    delivered: c.count,
    progress: c.progress,
    close: async () => {
      held.length = 0;
      a.close();
      b.close();
      await sleep(50);
    },
  };
}

async function memoryPipe(): Promise<Pipe> {
  const gateway = createGateway({ logLevel: 'silent' });
  gateway.createStream({ stream_id: 'b', endpoint_list: ['rx'] });
  const rx = memoryReceiverCore(gateway, 'rx');
  return receiverPipe(gateway, rx, async () => undefined);
}

/** Publish on stream `b` of `gateway`, count what `rx` delivers. */
async function receiverPipe(gateway: Gateway, rx: ReceiverCore, stop: () => Promise<unknown>): Promise<Pipe> {
  const c = counter();
  rx.on('chunk', () => c.inc());
  await rx.connect();
  await waitFor(() => gateway.getStream('b').active.length === 1, 5_000, 'receiver active');
  return {
    send: (p) => gateway.publish('b', p),
    delivered: c.count,
    progress: c.progress,
    close: async () => {
      rx.close();
      await gateway.close();
      await stop();
    },
  };
}

async function gatewayPipe(name: CaseName): Promise<Pipe> {
  const engine = name === 'webrtc/werift' ? 'werift' : 'node-datachannel';
  const gateway = createGateway({ logLevel: 'silent', webrtc: { engine, bindAddress: '127.0.0.1' } });
  const server = await serve(gateway, { apiKey: 'bench-key-0123456789', host: '127.0.0.1', port: 0 });
  gateway.createStream({ stream_id: 'b', endpoint_list: ['rx'] });
  const { token } = await gateway.issueToken('rx');
  const rx = new Receiver({
    gatewayUrl: server.url,
    endpointId: 'rx',
    token,
    rtcConfig: { bindAddress: '127.0.0.1' },
    transports: [name === 'webtransport/http2' ? 'webtransport' : 'webrtc'],
  });
  return receiverPipe(gateway, rx, () => server.close());
}

async function measure(name: CaseName, size: number, seconds: number): Promise<Sample> {
  const pipe = name === 'ws' ? await wsPipe() : name === 'raw_datachannel' ? await rawDataChannelPipe() : name === 'memory' ? await memoryPipe() : await gatewayPipe(name);
  try {
    const payload = new Uint8Array(size).map((_, i) => i & 255);
    const window = Math.max(64, Math.floor(WINDOW_BYTES / size));
    let sent = 0;
    const run = async (ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        // at most one window per pass: an in-process consumer may keep pace inside `send`
        for (let i = 0; i < window && sent - pipe.delivered() < window; i++) {
          await pipe.send(payload);
          sent++;
        }
        // window full: wait for the consumer; otherwise just let other tasks run
        if (sent - pipe.delivered() >= window) await pipe.progress();
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
    };
    // warm up: JIT, congestion window, and the gateway's pacing ramp (it starts a new path at 1 MiB/s)
    await run(500);
    const n0 = pipe.delivered();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run(seconds * 1000);
    const n = pipe.delivered() - n0;
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    return { mbps: (n * size) / elapsed / 1e6, chunksPerS: n / elapsed, cpuPct: (cpu.user + cpu.system) / 1e4 / elapsed };
  } finally {
    await pipe.close();
  }
}

export interface ThroughputRow {
  case: CaseName;
  baseline: boolean;
  chunk_bytes: number;
  rounds: number;
  mbps: number;
  mbps_min: number;
  mbps_max: number;
  chunks_per_s: number;
  chunks_per_s_min: number;
  chunks_per_s_max: number;
  cpu_pct: number;
  cpu_pct_min: number;
  cpu_pct_max: number;
  ratio_vs_ws: number;
  ratio_vs_ws_min: number;
  ratio_vs_ws_max: number;
  ratio_vs_raw_datachannel: number;
  ratio_vs_raw_datachannel_min: number;
  ratio_vs_raw_datachannel_max: number;
}

export async function throughput(opts: { rounds: number; seconds: number; sizes?: number[]; cases?: CaseName[] }): Promise<ThroughputRow[]> {
  const sizes = opts.sizes ?? [1024, 16 * 1024];
  const cases = opts.cases ?? CASES;
  const samples = new Map<string, Sample[]>();
  const ratios = new Map<string, { ws: number[]; raw: number[] }>();
  const key = (c: CaseName, size: number): string => `${c}@${size}`;
  for (let round = 1; round <= opts.rounds; round++) {
    for (const size of sizes) {
      const got = new Map<CaseName, Sample>();
      for (const c of cases) {
        const s = await measure(c, size, opts.seconds);
        got.set(c, s);
        samples.set(key(c, size), [...(samples.get(key(c, size)) ?? []), s]);
        console.log(`throughput round ${round} ${c.padEnd(24)} ${String(size).padStart(6)} B  ${s.mbps.toFixed(1).padStart(6)} MB/s  ${s.chunksPerS.toFixed(0).padStart(6)} chunks/s  cpu ${s.cpuPct.toFixed(0)} %`);
      }
      for (const c of cases) {
        const r = ratios.get(key(c, size)) ?? { ws: [], raw: [] };
        const mine = got.get(c)?.mbps ?? Number.NaN;
        r.ws.push(mine / (got.get('ws')?.mbps ?? Number.NaN));
        r.raw.push(mine / (got.get('raw_datachannel')?.mbps ?? Number.NaN));
        ratios.set(key(c, size), r);
      }
    }
  }
  return sizes.flatMap((size) =>
    cases.map((c) => {
      const s = samples.get(key(c, size)) ?? [];
      const r = ratios.get(key(c, size)) ?? { ws: [], raw: [] };
      return {
        case: c,
        baseline: BASELINES.includes(c),
        chunk_bytes: size,
        rounds: s.length,
        ...flat('mbps', summarize(s.map((x) => x.mbps))),
        ...flat('chunks_per_s', summarize(s.map((x) => x.chunksPerS)), 0),
        ...flat('cpu_pct', summarize(s.map((x) => x.cpuPct)), 0),
        ...flat('ratio_vs_ws', summarize(r.ws), 4),
        ...flat('ratio_vs_raw_datachannel', summarize(r.raw), 3),
      } as ThroughputRow;
    }),
  );
}

if (process.argv[1]?.endsWith('throughput.ts')) {
  // npx tsx bench/throughput.ts [seconds] [case,case] [bytes,bytes]: one round, e.g. under --cpu-prof
  const only = process.argv[3] ? (process.argv[3].split(',') as CaseName[]) : undefined;
  const sizes = process.argv[4] ? process.argv[4].split(',').map(Number) : undefined;
  console.table(await throughput({ rounds: 1, seconds: Number(process.argv[2] ?? 2), cases: only, sizes }));
  process.exit(0);
}
