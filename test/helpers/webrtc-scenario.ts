import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGateway, serve, type Gateway, type GatewayConfigInput, type RunningServer } from '../../gateway/src/index.js';

/**
 * The real-socket failover scenario shared by the integration test and the bench:
 * a gateway on 127.0.0.1, receivers in child processes over loopback WebRTC.
 */
export type Engine = 'node-datachannel' | 'werift';

const CHILD = fileURLToPath(new URL('../integration/fixtures/receiver-child.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));

export interface ChildReceiver {
  id: string;
  proc: ChildProcess;
  /** Deliveries: seq, wall time at the receiver, gateway ingestion time (same clock basis). */
  chunks: { seq: number; t: number; ts: number }[];
  ready: Promise<void>;
  exited: Promise<void>;
}

export async function startGateway(engine: Engine, config: GatewayConfigInput = {}): Promise<{ gateway: Gateway; server: RunningServer }> {
  const gateway = createGateway({ logLevel: 'silent', ...config, webrtc: { engine, bindAddress: '127.0.0.1', ...config.webrtc } });
  const server = await serve(gateway, { apiKey: 'scenario-key-0123456789', host: '127.0.0.1', port: 0 });
  return { gateway, server };
}

export async function spawnReceiver(gateway: Gateway, url: string, id: string, transports = 'webrtc'): Promise<ChildReceiver> {
  const { token } = await gateway.issueToken(id);
  return spawnReceiverWithToken(url, id, token, transports);
}

/** What a receiver child process printed: a chunk (`p`: its payload as text, with PAYLOADS=1) or a status. */
export interface ChildEvent {
  e: string;
  seq?: number;
  t?: number;
  ts?: number;
  p?: string;
  status?: string;
  detail?: string;
}

/**
 * A receiver child process with a token from anywhere (e.g. a gateway process's API).
 * `env`: more of the child's settings (RECONNECT_MS, PAYLOADS: see the fixture); `onEvent`: every line it prints.
 */
export function spawnReceiverWithToken(url: string, id: string, token: string, transports = 'webrtc', opts: { env?: Record<string, string>; onEvent?: (msg: ChildEvent) => void } = {}): ChildReceiver {
  const proc = spawn(process.execPath, ['--import', TSX, CHILD], {
    env: { ...process.env, GATEWAY_URL: url, ENDPOINT_ID: id, TOKEN: token, TRANSPORTS: transports, ...opts.env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const chunks: { seq: number; t: number; ts: number }[] = [];
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    let msg: ChildEvent;
    try {
      msg = JSON.parse(line) as ChildEvent;
    } catch {
      return;
    }
    opts.onEvent?.(msg);
    if (msg.e === 'chunk' && msg.seq !== undefined && msg.t !== undefined) chunks.push({ seq: msg.seq, t: msg.t, ts: msg.ts ?? Number.NaN });
    if (msg.e === 'ready') markReady();
  });
  return { id, proc, chunks, ready: withDeadline(ready, 20_000, `${id} ready`), exited };
}

export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface FailoverRun {
  engine: Engine;
  total: number;
  killedAt: number;
  killed: string;
  takeover: string | undefined;
  /** Last chunk the killed receiver delivered → first chunk the new active delivered after it. */
  interruptionMs: number;
  /** The same as the gateway measured it in the switch record (last ack on the old → first on the new). */
  recordedInterruptionMs: number | undefined;
  perReceiver: Record<string, number[]>;
  /** Every delivery with its wall time (ms since the epoch, performance clock), per receiver. */
  timeline: Record<string, { seq: number; t: number; ts: number }[]>;
  /** Wall time of the fault, same clock. */
  killTime: number;
  /** Median delivery latency (ingestion at the gateway → the receiver's application), every delivery of the run. */
  latencyP50Ms: number;
  /** The stream's hedge counters at the end. */
  hedges: { started: number; ended: number; committed: number };
  switchReasons: string[];
}

export interface FailoverOptions {
  total?: number;
  ratePerS?: number;
  /** The chunk after which the fault hits the active receiver. */
  killAt?: number;
  /** Transports per receiver id (default webrtc). */
  transports?: Record<string, string>;
  /** kill: SIGKILL; freeze: SIGSTOP, SIGCONT after `freezeMs` (no close, no packets meanwhile). */
  fault?: 'kill' | 'freeze';
  freezeMs?: number;
  config?: GatewayConfigInput;
  /** Load the gateway carries beside the failover stream (set up after it starts; returns its teardown). */
  background?: (gateway: Gateway, url: string) => Promise<() => Promise<void>>;
}

/** Failover mode, 3 receivers, `total` chunks at `ratePerS`, the fault on the active one at `killAt`. */
export async function runFailover(engine: Engine, opts: FailoverOptions = {}): Promise<FailoverRun> {
  const { total = 5_000, ratePerS = 500, killAt = 2_000, transports = {}, fault = 'kill', freezeMs = 2_000 } = opts;
  const { gateway, server } = await startGateway(engine, opts.config);
  let thaw: ReturnType<typeof setTimeout> | undefined;
  const ids = ['a', 'b', 'c'];
  const rx: ChildReceiver[] = [];
  let stopBackground: (() => Promise<void>) | undefined;
  try {
    stopBackground = await opts.background?.(gateway, server.url);
    for (const id of ids) rx.push(await spawnReceiver(gateway, server.url, id, transports[id]));
    await Promise.all(rx.map((r) => r.ready));
    gateway.createStream({ stream_id: 'feed', endpoint_list: ids });
    await waitFor(() => gateway.getStream('feed').active.length === 1, 5_000, 'an active endpoint');
    const killed = gateway.getStream('feed').active[0] ?? 'a';
    const start = performance.now();
    let killTime = 0;
    for (let seq = 1; seq <= total; seq++) {
      await gateway.publish('feed', new TextEncoder().encode(`tick ${seq}`));
      if (seq === killAt) {
        const victim = rx.find((r) => r.id === killed)?.proc;
        victim?.kill(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
        killTime = performance.timeOrigin + performance.now();
        if (fault === 'freeze') thaw = setTimeout(() => victim?.kill('SIGCONT'), freezeMs);
      }
      const due = start + (seq * 1000) / ratePerS;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
    await waitFor(() => union().size >= total, 15_000, 'all chunks delivered');
    const killedRx = rx.find((r) => r.id === killed);
    const lastBefore = killedRx?.chunks.filter((c) => c.t <= killTime).at(-1);
    const takeover = gateway.getStream('feed').active[0];
    const next = rx.find((r) => r.id === takeover)?.chunks.find((c) => c.seq > (lastBefore?.seq ?? 0));
    const latencies = rx.flatMap((r) => r.chunks.map((c) => c.t - c.ts)).filter(Number.isFinite).sort((x, y) => x - y);
    const health = gateway.streamHealth('feed');
    return {
      engine,
      total,
      killedAt: killAt,
      killed,
      takeover,
      interruptionMs: next && lastBefore ? next.t - lastBefore.t : Number.NaN,
      recordedInterruptionMs: health.switches.find((s) => s.reason !== 'initial')?.interruption_ms,
      perReceiver: Object.fromEntries(rx.map((r) => [r.id, r.chunks.map((c) => c.seq)])),
      timeline: Object.fromEntries(rx.map((r) => [r.id, r.chunks])),
      killTime,
      latencyP50Ms: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
      hedges: { started: health.hedges.started, ended: health.hedges.ended, committed: health.hedges.committed },
      switchReasons: health.switches.map((s) => s.reason),
    };
  } finally {
    clearTimeout(thaw);
    for (const r of rx) r.proc.kill('SIGKILL');
    await Promise.all(rx.map((r) => withDeadline(r.exited, 5_000, `${r.id} exit`).catch(() => undefined)));
    await stopBackground?.();
    await gateway.close();
    await server.close();
  }
}

export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}
