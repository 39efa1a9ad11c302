import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { PhiAccrualDetector } from '../../gateway/src/health/failure-detector.js';
import { createGateway, serve, type Gateway, type GatewayConfigInput, type RunningServer } from '../../gateway/src/index.js';
import { until, withDeadline } from './poll.js';
import { monoMs, SchedulingDelay } from './sched.js';

// bench/ and soak/ (and ha-scenario.ts) import these from here
export { until as waitFor, withDeadline };

/**
 * The real-socket failover scenario shared by the integration test and the bench:
 * a gateway on 127.0.0.1, receivers in child processes over loopback WebRTC.
 */
export type Engine = 'node-datachannel' | 'werift';

const CHILD = fileURLToPath(new URL('../integration/fixtures/receiver-child.ts', import.meta.url));
const LISTENER_CHILD = fileURLToPath(new URL('../integration/fixtures/listener-child.ts', import.meta.url));
const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));

/** A delivery in a child: `t` when it arrived there (monoMs: comparable across processes), `ts` its ingestion time (the gateway's clock). */
export interface ChildChunk {
  seq: number;
  t: number;
  ts: number;
}

export interface ChildReceiver {
  id: string;
  proc: ChildProcess;
  chunks: ChildChunk[];
  /** The child's own event loop delay, one report per 250 ms: the worst `ms` up to `at` (monoMs). */
  lags: { at: number; ms: number }[];
  ready: Promise<void>;
  exited: Promise<void>;
  /** A listening receiver's url (undefined for one that dials in). */
  url?: Promise<string>;
}

/** The token the scenarios' listening receivers expect from the gateway. */
export const LISTENER_TOKEN = 'scenario-listener-token-0123';

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
  /** The child's performance clock (timeOrigin + now): compare only with the same child's. */
  t?: number;
  /** CLOCK_MONOTONIC (monoMs), shared by every process. */
  m?: number;
  ts?: number;
  /** A `lag` line: the child's worst event loop delay since its last one. */
  ms?: number;
  p?: string;
  status?: string;
  detail?: string;
  /** A listener's `listening` line: where it listens. */
  url?: string;
}

/**
 * A receiver child process with a token from anywhere (e.g. a gateway process's API).
 * `env`: more of the child's settings (RECONNECT_MS, PAYLOADS: see the fixture); `onEvent`: every line it prints.
 */
export function spawnReceiverWithToken(url: string, id: string, token: string, transports = 'webrtc', opts: { env?: Record<string, string>; onEvent?: (msg: ChildEvent) => void } = {}): ChildReceiver {
  return spawnChild(CHILD, id, { GATEWAY_URL: url, ENDPOINT_ID: id, TOKEN: token, TRANSPORTS: transports, ...opts.env }, opts.onEvent);
}

/** A receiver fixture in a child process: its lines parsed, chunks and lag reports collected. */
function spawnChild(fixture: string, id: string, env: Record<string, string>, onEvent?: (msg: ChildEvent) => void): ChildReceiver {
  const proc = spawn(process.execPath, ['--import', TSX, fixture], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: ChildChunk[] = [];
  const lags: { at: number; ms: number }[] = [];
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
    onEvent?.(msg);
    if (msg.e === 'chunk' && msg.seq !== undefined && msg.m !== undefined) chunks.push({ seq: msg.seq, t: msg.m, ts: msg.ts ?? Number.NaN });
    if (msg.e === 'lag' && msg.ms !== undefined && msg.m !== undefined) lags.push({ at: msg.m, ms: msg.ms });
    if (msg.e === 'ready') markReady();
  });
  return { id, proc, chunks, lags, ready: withDeadline(ready, 20_000, `${id} ready`), exited };
}

/**
 * A listening receiver child process (test/integration/fixtures/listener-child.ts) on
 * 127.0.0.1:`port` (0: a free port): `url` resolves once it listens; `ready` once a gateway
 * dialed it and said WELCOME.
 */
export function spawnListener(id: string, opts: { port?: number; env?: Record<string, string>; onEvent?: (msg: ChildEvent) => void } = {}): ChildReceiver {
  let markUrl!: (url: string) => void;
  const url = new Promise<string>((resolve) => (markUrl = resolve));
  const child = spawnChild(LISTENER_CHILD, id, { ENDPOINT_ID: id, TOKEN: LISTENER_TOKEN, PORT: String(opts.port ?? 0), ...opts.env }, (msg) => {
    if (msg.e === 'listening' && msg.url) markUrl(msg.url);
    opts.onEvent?.(msg);
  });
  return { ...child, url: withDeadline(url, 20_000, `${id} listening`) };
}

/** The worst event loop delay the children reported for the time since `fromMono` (monoMs). */
export function childLagMs(rx: readonly ChildReceiver[], fromMono: number): number {
  return Math.max(0, ...rx.flatMap((r) => r.lags.filter((l) => l.at >= fromMono).map((l) => l.ms)));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** How long after its last heartbeat a steady endpoint is `dead` by the config's phi detector (heartbeats exactly every intervalMs): the nominal detection time. */
export function deadAfterMs(config: Gateway['config']): number {
  const h = config.heartbeat;
  const detector = new PhiAccrualDetector({ expectedIntervalMs: h.intervalMs, minStdDevMs: h.minStdDevMs, acceptablePauseMs: h.acceptablePauseMs, windowSize: h.windowSize });
  let t = 0;
  for (let i = 0; i <= h.windowSize + 1; i++) detector.heartbeat((t = i * h.intervalMs));
  return (detector.timeAtPhi(h.phiDead) ?? Number.NaN) - t;
}

export interface FailoverRun {
  engine: Engine;
  total: number;
  killedAt: number;
  killed: string;
  takeover: string | undefined;
  /** Last chunk the killed receiver delivered → first chunk the new active delivered after it (monoMs in both children). */
  interruptionMs: number;
  /** The switch away from the killed endpoint, as the gateway recorded it (`interruption_ms`: last ack on the old → first on the new). */
  away: { to: string | null; reason: string; interruption_ms?: number } | undefined;
  perReceiver: Record<string, number[]>;
  /** Every delivery with its time at the receiver (monoMs), per receiver. */
  timeline: Record<string, ChildChunk[]>;
  /** When the fault was sent (monoMs). */
  killTime: number;
  /** Median delivery latency (ingestion at the gateway → the receiver's application), every delivery of the run. */
  latencyP50Ms: number;
  /** The stream's hedge counters at the end. */
  hedges: { started: number; ended: number; committed: number };
  switchReasons: string[];
  /** The gateway's config as it ran (for bounds taken from it). */
  config: Gateway['config'];
  /** Scheduling delay from the first chunk on: the gateway's (this process) and the reports of the children not faulted. */
  sched: SchedulingDelay;
}

export interface FailoverOptions {
  total?: number;
  ratePerS?: number;
  /** The chunk after which the fault hits the active receiver. */
  killAt?: number;
  /** Transports per receiver id (default webrtc). */
  transports?: Record<string, string>;
  /** Receivers that listen (the gateway dials them) instead of dialing in. */
  listening?: readonly string[];
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
  // listeners connect once the stream exists (the gateway dials them): the first pick waits
  // for the most preferred one to be dialed, not 1 s (startupGraceMs), so the run starts on it
  const listeningConfig = opts.listening?.length ? { failover: { startupGraceMs: 10_000, ...opts.config?.failover } } : {};
  const { gateway, server } = await startGateway(engine, { ...opts.config, ...listeningConfig });
  let thaw: ReturnType<typeof setTimeout> | undefined;
  const ids = ['a', 'b', 'c'];
  const rx: ChildReceiver[] = [];
  let stopBackground: (() => Promise<void>) | undefined;
  let sched: SchedulingDelay | undefined;
  try {
    stopBackground = await opts.background?.(gateway, server.url);
    const listening = new Set(opts.listening ?? []);
    for (const id of ids) rx.push(listening.has(id) ? spawnListener(id) : await spawnReceiver(gateway, server.url, id, transports[id]));
    await Promise.all(rx.filter((r) => !r.url).map((r) => r.ready));
    const entries = await Promise.all(rx.map(async (r) => (r.url ? { endpoint_id: r.id, url: await r.url, token: LISTENER_TOKEN } : r.id)));
    await gateway.createStream({ stream_id: 'feed', endpoint_list: entries });
    await Promise.all(rx.map((r) => r.ready));
    await until(() => gateway.getStream('feed').active.length === 1, 5_000, 'an active endpoint');
    const killed = gateway.getStream('feed').active[0] ?? 'a';
    sched = SchedulingDelay.start();
    const startMono = monoMs();
    const start = performance.now();
    let killTime = 0;
    for (let seq = 1; seq <= total; seq++) {
      await gateway.publish('feed', new TextEncoder().encode(`tick ${seq}`));
      if (seq === killAt) {
        const victim = rx.find((r) => r.id === killed)?.proc;
        victim?.kill(fault === 'kill' ? 'SIGKILL' : 'SIGSTOP');
        killTime = monoMs();
        if (fault === 'freeze') thaw = setTimeout(() => victim?.kill('SIGCONT'), freezeMs);
      }
      const due = start + (seq * 1000) / ratePerS;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
    await until(() => union().size >= total, 15_000, 'all chunks delivered', { state: () => `${union().size} of ${total}` });
    sched.stop();
    // the faulted child's own report of its SIGSTOP is the fault, not the machine's delay
    for (const l of rx.filter((r) => r.id !== killed).flatMap((r) => r.lags)) if (l.at >= startMono) sched.note(l.ms, l.at);
    const health = gateway.streamHealth('feed');
    const away = health.switches.find((s) => s.from === killed);
    const killedRx = rx.find((r) => r.id === killed);
    const lastBefore = killedRx?.chunks.filter((c) => c.t <= killTime).at(-1);
    const takeover = gateway.getStream('feed').active[0];
    const next = rx.find((r) => r.id === away?.to)?.chunks.find((c) => c.seq > (lastBefore?.seq ?? 0));
    // ingestion times are on the gateway's clock (this process): to monoMs here, then like with like
    const toMono = gateway.clock.now() - monoMs();
    const latencies = rx.flatMap((r) => r.chunks.map((c) => c.t - (c.ts - toMono))).filter(Number.isFinite).sort((x, y) => x - y);
    return {
      engine,
      total,
      killedAt: killAt,
      killed,
      takeover,
      interruptionMs: next && lastBefore ? next.t - lastBefore.t : Number.NaN,
      away: away && { to: away.to, reason: away.reason, ...(away.interruption_ms === undefined ? {} : { interruption_ms: away.interruption_ms }) },
      perReceiver: Object.fromEntries(rx.map((r) => [r.id, r.chunks.map((c) => c.seq)])),
      timeline: Object.fromEntries(rx.map((r) => [r.id, r.chunks])),
      killTime,
      latencyP50Ms: latencies[Math.floor(latencies.length / 2)] ?? Number.NaN,
      hedges: { started: health.hedges.started, ended: health.hedges.ended, committed: health.hedges.committed },
      switchReasons: health.switches.map((s) => s.reason),
      config: gateway.config,
      sched,
    };
  } finally {
    sched?.stop();
    clearTimeout(thaw);
    for (const r of rx) r.proc.kill('SIGKILL');
    await Promise.all(rx.map((r) => withDeadline(r.exited, 5_000, `${r.id} exit`).catch(() => undefined)));
    await stopBackground?.();
    await gateway.close();
    await server.close();
  }
}

