/**
 * Fan-out: N warm endpoints on one gateway (heartbeats on, one stream each at 1 chunk/s
 * of 100 B). The gateway runs in its own process, the receivers in another, so the
 * gateway's CPU % and RSS are its own. Endpoints are added in stages (10 → 100 → …);
 * each stage is measured after the new receivers are connected and have settled.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../gateway/src/index.js';
import type { FromGateway, FromReceivers, ToGateway, ToReceivers } from './fanout/protocol.js';
import { percentile, sleep } from './stats.js';

export interface FanoutRow {
  endpoints: number;
  connected: number;
  connect_s: number;
  cpu_pct: number;
  /** CPU % of the process holding all the receivers (same machine: it competes with the gateway). */
  receivers_cpu_pct: number;
  rss_mib: number;
  heap_mib: number;
  hb_rtt_p50_ms: number;
  hb_rtt_p99_ms: number;
  hb_samples: number;
  chunks_per_s: number;
  /** (RSS at this stage − RSS with no endpoint) / endpoints, both after a GC. */
  memory_per_endpoint_kib: number;
  heap_per_endpoint_kib: number;
}
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

export async function fanout(stages: number[], measureMs: number, config: GatewayConfigInput = {}): Promise<FanoutResult> {
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
      rx.send({ cmd: 'count' });
      const before = await rx.next('chunks', 10_000);
      const t0 = performance.now();
      gw.send({ cmd: 'measure', ms: measureMs });
      const m = await gw.next('measured', 30_000 + measureMs);
      rx.send({ cmd: 'count' });
      const after = await rx.next('chunks', 10_000);
      const windowS = (performance.now() - t0) / 1000;
      const row: FanoutRow = {
        endpoints: n,
        connected: m.connected,
        connect_s: Number(conn.seconds.toFixed(2)),
        cpu_pct: Number(m.cpuPct.toFixed(1)),
        receivers_cpu_pct: Number(((after.cpuUs - before.cpuUs) / 1e4 / windowS).toFixed(1)),
        rss_mib: Number((m.rssBytes / 2 ** 20).toFixed(1)),
        heap_mib: Number((m.heapUsedBytes / 2 ** 20).toFixed(1)),
        hb_rtt_p50_ms: Number(percentile(m.rttSamplesMs, 50).toFixed(2)),
        hb_rtt_p99_ms: Number(percentile(m.rttSamplesMs, 99).toFixed(2)),
        hb_samples: m.rttSamplesMs.length,
        chunks_per_s: Number(((after.count - before.count) / windowS).toFixed(0)),
        memory_per_endpoint_kib: Number((((m.rssBytes - base.rssBytes) / 1024) / n).toFixed(1)),
        heap_per_endpoint_kib: Number((((m.heapUsedBytes - base.heapUsedBytes) / 1024) / n).toFixed(1)),
      };
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
  console.log(JSON.stringify(await fanout(stages, 3_000, JSON.parse(process.argv[3] ?? '{}') as GatewayConfigInput), null, 2));
  process.exit(0);
}
