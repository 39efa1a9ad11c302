/**
 * Fan-out: N warm endpoints on one gateway (heartbeats on, one stream each at 1 chunk/s
 * of 100 B), over WebRTC or WebTransport/HTTP-2. The gateway runs in its own process and
 * the receivers are spread over several others, so the gateway's CPU % and RSS are its own
 * and no single receiver process is the bottleneck. Endpoints are added in stages; each
 * stage is measured over several windows once the new receivers are connected and have
 * settled (a figure is the median over the windows with min and max); after the last
 * stage one window with publishing paused gives what an idle warm endpoint costs.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { GatewayConfigInput } from '../gateway/src/index.js';
import type { FanoutTransport, FromGateway, FromReceivers, ToGateway, ToReceivers } from './fanout/protocol.js';
import { flat, percentile, sleep, summarize } from './stats.js';

/** Figures measured per window; a row has each as median `x` with `x_min`/`x_max` over the windows. */
const FIGURES = [
  'cpu_pct',
  /** CPU % of all receiver processes together (same machine: they compete with the gateway). */
  'receivers_cpu_pct',
  /** The worst receiver process's event-loop delay p99 over the window: how late its receivers answer heartbeats (part of the RTT). */
  'receivers_loop_p99_ms',
  'rss_mib',
  'heap_mib',
  /** (value at this stage − value with no endpoint) / endpoints, both after a GC. */
  'rss_per_endpoint_kib',
  'heap_per_endpoint_kib',
  'hb_rtt_p50_ms',
  'hb_rtt_p99_ms',
  /** Chunks the gateway published per second; the target is 1 per endpoint. */
  'published_per_s',
  /** The gateway's event-loop delay (perf_hooks, 5 ms resolution): p99 and max over the window. */
  'loop_delay_p99_ms',
  'loop_delay_max_ms',
  /** Chunks the receivers got per second, all together. */
  'delivered_per_s',
  /**
   * Share of the machine's CPU time the hypervisor gave to others while our vCPUs wanted it
   * (/proc/stat steal, all CPUs): on a shared VM, a window with much steal measured less machine.
   */
  'steal_pct',
] as const;
type Figure = (typeof FIGURES)[number];

export type FanoutRow = {
  transport: FanoutTransport;
  endpoints: number;
  connected: number;
  /** Seconds to connect this stage's new endpoints (signaling + handshake), all receiver processes at once. */
  connect_s: number;
  connect_failed: number;
  /** Receivers of this stage still refused as past the admission budget (503 MS_OVERLOADED) when it was measured: they keep coming back after Retry-After, as the SDK does. */
  refused: number;
  windows: number;
  hb_samples: number;
  target_per_s: number;
  /** Over the stage's windows: a seq skipped or repeated on some receiver (both must be 0). */
  gaps: number;
  duplicates: number;
  /** Gateway CPU % of one core added per 1 000 endpoints connected since the previous stage (null under 50). */
  cpu_pct_per_1000: number | null;
  /** Gateway CPU % by thread in the last window: the JavaScript thread vs the engine's native ones. */
  gateway_threads_pct: Record<string, number>;
} & Record<Figure | `${Figure}_min` | `${Figure}_max`, number>;

/**
 * One window after a stage with publishing paused and the retained chunks aged out: what
 * the warm endpoints cost by themselves. Per endpoint = the slope from the previous stage's
 * idle window (from the gateway with no endpoint for the first stage, which also counts the
 * code the gateway compiles as it warms up).
 */
export interface FanoutIdle {
  transport: FanoutTransport;
  endpoints: number;
  /** Endpoints connected in this window: the per-endpoint slopes are over these. */
  connected: number;
  cpu_pct: number;
  /** Idle CPU % of one core per 1 000 connected endpoints, on the JavaScript thread and on the engine's native threads (the slope from the previous idle window; null where fewer than 50 were added). */
  js_pct_per_1000: number | null;
  native_pct_per_1000: number | null;
  rss_mib: number;
  heap_mib: number;
  /** The endpoints this slope is over (from the previous idle window, or from none). */
  per_endpoint_over: string;
  /** Null where fewer than 50 endpoints were added (as the CPU slopes). */
  rss_per_endpoint_kib: number | null;
  heap_per_endpoint_kib: number | null;
  hb_rtt_p99_ms: number;
  loop_delay_p99_ms: number;
  steal_pct: number;
}

/** A stage the gateway could not be measured at (it stopped answering within the bench's wait): the run for that transport ends there. */
export interface FanoutStopped {
  transport: FanoutTransport;
  endpoints: number;
  /** Endpoints connected when it stopped answering. */
  connected: number;
  connect_failed: number;
  reason: string;
}

export interface FanoutResult {
  rows: FanoutRow[];
  idle: FanoutIdle[];
  stopped: FanoutStopped[];
  /** The gateway process with no endpoint, after a GC, per transport run. */
  baseline: Record<string, { rss_mib: number; heap_mib: number }>;
}

export interface FanoutPlan {
  transport: FanoutTransport;
  stages: number[];
  windows: number;
  windowMs: number;
  receiverProcesses: number;
  config?: GatewayConfigInput;
}

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const TSX = fileURLToPath(new URL('../node_modules/tsx/dist/loader.mjs', import.meta.url));

export class Child<In, Out extends { ev: string }> {
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

type Counts = { count: number; gaps: number; duplicates: number; cpuUs: number; loopDelayP99Ms: number };

/** How long a stage may take to connect its new endpoints; what did not connect by then is reported as failed. */
const CONNECT_DEADLINE_MS = 120_000;

/** The receiver processes together. */
export class ReceiverPool {
  readonly #children: Child<ToReceivers, FromReceivers>[];
  /**
   * `niceness` > 0 runs the receivers below the gateway's priority: where they stand in for
   * other machines (the failover bench's standbys), their CPU must not come out of the
   * gateway's share of this machine's cores.
   */
  constructor(processes: number, niceness = 0) {
    // FANOUT_RECEIVER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof-rx" profiles the receiver processes
    const args = process.env.FANOUT_RECEIVER_ARGS?.split(' ').filter(Boolean) ?? [];
    this.#children = Array.from({ length: processes }, () => new Child<ToReceivers, FromReceivers>('./fanout/receivers-child.ts', args));
    for (const c of this.#children) if (niceness > 0 && c.proc.pid !== undefined) setPriority(c.proc.pid, niceness);
  }
  /**
   * Deal the endpoints out round-robin; resolves when every process has connected its share,
   * or at `deadlineMs` with what connected by then (the rest count as failed).
   */
  async connect(url: string, transport: FanoutTransport, endpoints: { id: string; token: string }[], deadlineMs = CONNECT_DEADLINE_MS): Promise<{ seconds: number; failed: number; refused: number }> {
    const t0 = performance.now();
    const shares = this.#children.map((_, i) => endpoints.filter((_, j) => j % this.#children.length === i));
    const done = this.#children.map((c) => c.next('connected', deadlineMs + 30_000));
    this.#children.forEach((c, i) => c.send({ cmd: 'connect', url, transport, endpoints: shares[i] ?? [], deadlineMs }));
    const results = await Promise.all(done);
    return { seconds: (performance.now() - t0) / 1000, failed: results.reduce((a, r) => a + r.failed, 0), refused: results.reduce((a, r) => a + r.refused, 0) };
  }
  async counts(): Promise<Counts> {
    const all = await Promise.all(this.#children.map((c) => (c.send({ cmd: 'count' }), c.next('chunks', 10_000))));
    return all.reduce((a, r) => ({ count: a.count + r.count, gaps: a.gaps + r.gaps, duplicates: a.duplicates + r.duplicates, cpuUs: a.cpuUs + r.cpuUs, loopDelayP99Ms: Math.max(a.loopDelayP99Ms, r.loopDelayP99Ms) }), { count: 0, gaps: 0, duplicates: 0, cpuUs: 0, loopDelayP99Ms: 0 });
  }
  /** Close every receiver (the processes stay for the next gateway). */
  async closeAll(): Promise<void> {
    await Promise.all(this.#children.map((c) => (c.send({ cmd: 'close' }), c.next('closed', 30_000))));
  }

  stop(): Promise<void[]> {
    return Promise.all(this.#children.map((c) => c.stop()));
  }

  get pids(): number[] {
    return this.#children.flatMap((c) => (c.proc.pid === undefined ? [] : [c.proc.pid]));
  }
}

/** Every thread of `pid` on `cpus` (taskset's list syntax); threads it starts later inherit it. */
function pinTo(cpus: string, pid: number | undefined): void {
  if (pid !== undefined) execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

export async function fanout(plan: FanoutPlan): Promise<{ rows: FanoutRow[]; idle: FanoutIdle[]; stopped: FanoutStopped | undefined; baseline: { rss_mib: number; heap_mib: number } }> {
  // FANOUT_GATEWAY_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway process
  const gw = new Child<ToGateway, FromGateway>('./fanout/gateway-child.ts', ['--expose-gc', ...(process.env.FANOUT_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? [])], {
    FANOUT_CONFIG: JSON.stringify(plan.config ?? {}),
  });
  const pool = new ReceiverPool(plan.receiverProcesses, Number(process.env.FANOUT_RECEIVERS_NICE ?? 0));
  // FANOUT_PIN=0:1: the gateway (all its threads) on CPU 0, the receivers on CPU 1, to see what
  // sharing the cores does to the gateway's figures (bench/README.md, Findings).
  const pin = process.env.FANOUT_PIN?.split(':');
  if (pin) {
    pinTo(pin[0] ?? '0', gw.proc.pid);
    for (const pid of pool.pids) pinTo(pin[1] ?? '1', pid);
  }
  const rows: FanoutRow[] = [];
  const { transport, windows, windowMs } = plan;
  try {
    const { url } = await gw.next('listening', 20_000);
    gw.send({ cmd: 'measure', ms: 1_000 });
    const base = await gw.next('measured', 11_000);
    const idle: FanoutIdle[] = [];
    const r1 = (v: number): number => Number(v.toFixed(1));
    let idleBefore = { endpoints: 0, connected: 0, rssBytes: base.rssBytes, heapUsedBytes: base.heapUsedBytes, ...jsAndNative(base.threadsPct) };
    let have = 0;
    let stopped: FanoutStopped | undefined;
    for (const n of plan.stages) {
      const ids = Array.from({ length: n - have }, (_, i) => `fan${have + i}`);
      // FANOUT_UNDIALED_STAGES=5000: that stage's endpoints and streams are created, never dialed
      // (what the gateway's registry costs, apart from a refused crowd's visits);
      // FANOUT_UNDIALED_STREAMS=none|empty: tokens only, or streams with no endpoint;
      // FANOUT_STALL_MS=2000: the gateway's event loop blocked that long first (a stall)
      const undialed = (process.env.FANOUT_UNDIALED_STAGES ?? '').split(',').includes(String(n));
      const kind = process.env.FANOUT_UNDIALED_STREAMS;
      const stallMs = undialed ? Number(process.env.FANOUT_STALL_MS ?? 0) : 0;
      gw.send({ cmd: 'add', ids, ...(undialed && (kind === 'none' || kind === 'empty') ? { streams: kind } : {}), ...(stallMs > 0 ? { stallMs } : {}) });
      const { tokens } = await gw.next('added', 60_000);
      const conn = undialed ? { seconds: 0, failed: 0, refused: 0 } : await pool.connect(url, transport, tokens);
      have = n;
      try {
        await sleep(3_000); // let the new connections' first heartbeats and probes settle
        const perWindow = new Map<Figure, number[]>(FIGURES.map((f) => [f, []]));
        let connected = 0;
        let hbSamples = 0;
        let threads: Record<string, number> = {};
        const first = await pool.counts();
        let before = first;
        for (let w = 0; w < windows; w++) {
          const t0 = performance.now();
          gw.send({ cmd: 'measure', ms: windowMs });
          const m = await gw.next('measured', 30_000 + windowMs);
          const after = await pool.counts();
          const windowS = (performance.now() - t0) / 1000;
          connected = m.connected;
          hbSamples += m.rttSamplesMs.length;
          const got: Record<Figure, number> = {
            cpu_pct: m.cpuPct,
            receivers_cpu_pct: (after.cpuUs - before.cpuUs) / 1e4 / windowS,
            receivers_loop_p99_ms: after.loopDelayP99Ms,
            rss_mib: m.rssBytes / 2 ** 20,
            heap_mib: m.heapUsedBytes / 2 ** 20,
            rss_per_endpoint_kib: (m.rssBytes - base.rssBytes) / 1024 / n,
            heap_per_endpoint_kib: (m.heapUsedBytes - base.heapUsedBytes) / 1024 / n,
            hb_rtt_p50_ms: percentile(m.rttSamplesMs, 50),
            hb_rtt_p99_ms: percentile(m.rttSamplesMs, 99),
            published_per_s: m.publishedPerS,
            loop_delay_p99_ms: m.loopDelayP99Ms,
            loop_delay_max_ms: m.loopDelayMaxMs,
            delivered_per_s: (after.count - before.count) / windowS,
            steal_pct: m.stealPct,
          };
          for (const f of FIGURES) perWindow.get(f)?.push(got[f]);
          threads = m.threadsPct;
          before = after;
        }
        const cpu = summarize(perWindow.get('cpu_pct') ?? []).median;
        const prev = rows.at(-1);
        const row = {
          transport,
          endpoints: n,
          connected,
          connect_s: Number(conn.seconds.toFixed(2)),
          connect_failed: conn.failed,
          refused: conn.refused,
          windows,
          hb_samples: hbSamples,
          // a chunk per second per connected endpoint (the publisher feeds those only)
          target_per_s: connected,
          gaps: before.gaps - first.gaps,
          duplicates: before.duplicates - first.duplicates,
          gateway_threads_pct: threads,
          // over the endpoints connected since the previous stage (admission may have refused the rest); a slope over a handful is noise
          cpu_pct_per_1000: prev && connected - prev.connected >= 50 ? Number((((cpu - prev.cpu_pct) / (connected - prev.connected)) * 1000).toFixed(1)) : null,
          ...Object.assign({}, ...FIGURES.map((f) => flat(f, summarize(perWindow.get(f) ?? []), f.startsWith('hb_') ? 2 : 1))),
        } as FanoutRow;
        rows.push(row);
        console.log(`fan-out ${JSON.stringify(row)}`);
        gw.send({ cmd: 'measure', ms: windowMs, idle: true });
        const m = await gw.next('measured', 60_000 + windowMs);
        const added = Math.max(1, m.connected - idleBefore.connected);
        const threadsNow = jsAndNative(m.threadsPct);
        // a slope over a handful of endpoints is noise
        const slope = (now: number, before: number): number | null => (added >= 50 ? r1(((now - before) / added) * 1000) : null);
        const still: FanoutIdle = {
          transport,
          endpoints: n,
          connected: m.connected,
          cpu_pct: r1(m.cpuPct),
          js_pct_per_1000: slope(threadsNow.js, idleBefore.js),
          native_pct_per_1000: slope(threadsNow.native, idleBefore.native),
          rss_mib: r1(m.rssBytes / 2 ** 20),
          heap_mib: r1(m.heapUsedBytes / 2 ** 20),
          per_endpoint_over: `${idleBefore.connected} → ${m.connected} connected`,
          rss_per_endpoint_kib: added >= 50 ? r1((m.rssBytes - idleBefore.rssBytes) / 1024 / added) : null,
          heap_per_endpoint_kib: added >= 50 ? r1((m.heapUsedBytes - idleBefore.heapUsedBytes) / 1024 / added) : null,
          hb_rtt_p99_ms: Number(percentile(m.rttSamplesMs, 99).toFixed(2)),
          loop_delay_p99_ms: r1(m.loopDelayP99Ms),
          steal_pct: r1(m.stealPct),
        };
        idle.push(still);
        idleBefore = { endpoints: n, connected: m.connected, rssBytes: m.rssBytes, heapUsedBytes: m.heapUsedBytes, ...threadsNow };
        console.log(`fan-out idle ${JSON.stringify(still)}`);
      } catch (error) {
        // a saturated gateway stops answering the bench in time: that is the stage's result
        stopped = { transport, endpoints: n, connected: n - conn.failed, connect_failed: conn.failed, reason: error instanceof Error ? error.message : String(error) };
        console.log(`fan-out stopped ${JSON.stringify(stopped)}`);
        break;
      }
    }
    return { rows, idle, stopped, baseline: { rss_mib: r1(base.rssBytes / 2 ** 20), heap_mib: r1(base.heapUsedBytes / 2 ** 20) } };
  } finally {
    await Promise.all([pool.stop(), gw.stop()]);
  }
}

/** CPU % of one core on the JavaScript thread and on all the others (the engine's native threads, libuv's). */
export function jsAndNative(threads: Record<string, number>): { js: number; native: number } {
  const js = threads['main (JS)'] ?? 0;
  return { js, native: Object.values(threads).reduce((a, b) => a + b, 0) - js };
}

/** Every plan in turn, each on a fresh gateway. */
export async function fanoutAll(plans: FanoutPlan[]): Promise<FanoutResult> {
  const result: FanoutResult = { rows: [], idle: [], stopped: [], baseline: {} };
  for (const p of plans) {
    const r = await fanout(p);
    result.rows.push(...r.rows);
    result.idle.push(...r.idle);
    if (r.stopped) result.stopped.push(r.stopped);
    result.baseline[p.transport] = r.baseline;
  }
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // npx tsx bench/fanout.ts [webrtc|webtransport] [stages] [gateway config JSON], e.g. webrtc 100,1000 '{"health":{"probeIntervalMs":200}}'
  const transport = (process.argv[2] ?? 'webrtc') as FanoutTransport;
  const stages = (process.argv[3] ?? '10,100').split(',').map(Number);
  const config = JSON.parse(process.argv[4] ?? '{}') as GatewayConfigInput;
  const windows = Number(process.env.FANOUT_WINDOWS ?? 1);
  console.log(JSON.stringify(await fanout({ transport, stages, windows, windowMs: 3_000, receiverProcesses: Number(process.env.FANOUT_PROCESSES ?? 4), config }), null, 2));
  process.exit(0);
}
