/**
 * Fan-out: N warm endpoints on one gateway (heartbeats on, one stream each at 1 chunk/s
 * of 100 B). The gateway runs in its own process, the receivers in another, so the
 * gateway's CPU % and RSS are its own. Endpoints are added in stages (10 → 100 → …);
 * each stage is measured over several windows after the new receivers are connected and
 * have settled; a figure is the median over the windows with min and max.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../gateway/src/index.js';
import type { FromGateway, FromReceivers, ToGateway, ToReceivers } from './fanout/protocol.js';
import { flat, percentile, sleep, summarize } from './stats.js';

/** Figures measured per window; a row has each as median `x` with `x_min`/`x_max` over the windows. */
const FIGURES = [
  'cpu_pct',
  /** CPU % of the process holding all the receivers (same machine: it competes with the gateway). */
  'receivers_cpu_pct',
  'rss_mib',
  'heap_mib',
  /** (value at this stage − value with no endpoint) / endpoints, both after a GC. */
  'memory_per_endpoint_kib',
  'heap_per_endpoint_kib',
  'hb_rtt_p50_ms',
  'hb_rtt_p99_ms',
  /** Chunks the gateway published per second (the target is 1 per endpoint): below it, the gateway fell behind. */
  'published_per_s',
  'chunks_per_s',
] as const;
type Figure = (typeof FIGURES)[number];

export type FanoutRow = {
  endpoints: number;
  connected: number;
  connect_s: number;
  windows: number;
  hb_samples: number;
} & Record<Figure | `${Figure}_min` | `${Figure}_max`, number>;

export interface FanoutResult {
  rows: FanoutRow[];
  /** The gateway process with no endpoint, after a GC. */
  baseline: { rss_mib: number; heap_mib: number };
}

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url));

class Child<In, Out extends { ev: string }> {
  readonly proc: ChildProcess;
  constructor(script: string, execArgv: string[] = [], env: Record<string, string> = {}) {
    this.proc = fork(here(script), [], { execArgv: [...execArgv, '--import', TSX], env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }
  next<E extends Out['ev']>(ev: E, timeoutMs: number): Promise<Extract<Out, { ev: E }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.proc.off('message', on);
        reject(new Error(`no ${ev} from ${this.proc.spawnargs.at(-1)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: Out): void => {
        if (m.ev !== ev) return;
        clearTimeout(timer);
        this.proc.off('message', on);
        resolve(m as Extract<Out, { ev: E }>);
      };
      this.proc.on('message', on);
    });
  }
  send(m: In): void {
    this.proc.send(m as object);
  }
  async stop(): Promise<void> {
    const exited = new Promise<void>((r) => (this.proc.exitCode !== null ? r() : this.proc.once('exit', () => r())));
    if (this.proc.connected) this.proc.disconnect();
    await Promise.race([exited, sleep(5_000)]);
    this.proc.kill('SIGKILL');
  }
}

export async function fanout(stages: number[], measureMs: number, windows: number, config: GatewayConfigInput = {}): Promise<FanoutResult> {
  // FANOUT_GATEWAY_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway process
  const gw = new Child<ToGateway, FromGateway>('./fanout/gateway-child.ts', ['--expose-gc', ...(process.env.FANOUT_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? [])], {
    FANOUT_CONFIG: JSON.stringify(config),
  });
  const rx = new Child<ToReceivers, FromReceivers>('./fanout/receivers-child.ts');
  const rows: FanoutRow[] = [];
  try {
    const { url } = await gw.next('listening', 20_000);
    gw.send({ cmd: 'measure', ms: Math.min(measureMs, 1_000) });
    const base = await gw.next('measured', 10_000 + measureMs);
    let have = 0;
    for (const n of stages) {
      const ids = Array.from({ length: n - have }, (_, i) => `fan${have + i}`);
      gw.send({ cmd: 'add', ids });
      const { tokens } = await gw.next('added', 60_000);
      rx.send({ cmd: 'connect', url, endpoints: tokens });
      const conn = await rx.next('connected', 30_000 + 200 * ids.length);
      have = n;
      await sleep(2_000); // let the new connections' first heartbeats and probes settle
      const perWindow = new Map<Figure, number[]>(FIGURES.map((f) => [f, []]));
      let connected = 0;
      let hbSamples = 0;
      for (let w = 0; w < windows; w++) {
        rx.send({ cmd: 'count' });
        const before = await rx.next('chunks', 10_000);
        const t0 = performance.now();
        gw.send({ cmd: 'measure', ms: measureMs });
        const m = await gw.next('measured', 30_000 + measureMs);
        rx.send({ cmd: 'count' });
        const after = await rx.next('chunks', 10_000);
        const windowS = (performance.now() - t0) / 1000;
        connected = m.connected;
        hbSamples += m.rttSamplesMs.length;
        const got: Record<Figure, number> = {
          cpu_pct: m.cpuPct,
          receivers_cpu_pct: (after.cpuUs - before.cpuUs) / 1e4 / windowS,
          rss_mib: m.rssBytes / 2 ** 20,
          heap_mib: m.heapUsedBytes / 2 ** 20,
          memory_per_endpoint_kib: (m.rssBytes - base.rssBytes) / 1024 / n,
          heap_per_endpoint_kib: (m.heapUsedBytes - base.heapUsedBytes) / 1024 / n,
          hb_rtt_p50_ms: percentile(m.rttSamplesMs, 50),
          hb_rtt_p99_ms: percentile(m.rttSamplesMs, 99),
          published_per_s: m.publishedPerS,
          chunks_per_s: (after.count - before.count) / windowS,
        };
        for (const f of FIGURES) perWindow.get(f)?.push(got[f]);
      }
      const row = {
        endpoints: n,
        connected,
        connect_s: Number(conn.seconds.toFixed(2)),
        windows,
        hb_samples: hbSamples,
        ...Object.assign({}, ...FIGURES.map((f) => flat(f, summarize(perWindow.get(f) ?? []), f.startsWith('hb_') ? 2 : 1))),
      } as FanoutRow;
      rows.push(row);
      console.log(`fan-out ${JSON.stringify(row)}`);
    }
    return { rows, baseline: { rss_mib: Number((base.rssBytes / 2 ** 20).toFixed(1)), heap_mib: Number((base.heapUsedBytes / 2 ** 20).toFixed(1)) } };
  } finally {
    await Promise.all([rx.stop(), gw.stop()]);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // npx tsx bench/fanout.ts [stages] [gateway config JSON], e.g. 1000 '{"health":{"probeIntervalMs":200}}'
  const stages = (process.argv[2] ?? '10,100').split(',').map(Number);
  console.log(JSON.stringify(await fanout(stages, 3_000, 1, JSON.parse(process.argv[3] ?? '{}') as GatewayConfigInput), null, 2));
  process.exit(0);
}
