/**
 * Thundering herd: N warm receivers on one gateway (one stream each at 1 chunk/s, as in the
 * fan-out), then the gateway restarted as a supervisor restarts it: SIGTERM (it drains and
 * says GOAWAY) or SIGKILL (a crash: the receivers notice the silence), and a new process on
 * the same port with the same token secret. Measured per restart:
 * - how long the gateway was away (signal → the new process listening);
 * - how long until every receiver was back (the new process listening → all connected), with
 *   the most endpoints that came back within any one second: the receivers' backoff and the
 *   gateway's admission spread them, or they come as one wave;
 * - the refusals (503 MS_OVERLOADED) the new process answered meanwhile;
 * - once all are back, one window as in the fan-out (heartbeat RTT p99, published / target,
 *   loop delay) and the fewest connected over it: a second collapse shows as endpoints lost again.
 * The streams are in memory: each restart begins the streams' data anew (a new epoch), which
 * the receivers take as the SDK does; what is measured is the reconnection, not the data.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/nats.js';
import { Child, ReceiverPool } from './fanout.js';
import type { FanoutTransport, FromGateway, ToGateway } from './fanout/protocol.js';
import { percentile, sleep } from './stats.js';

export type HerdFault = 'sigterm' | 'sigkill';

export interface HerdPlan {
  transport: FanoutTransport;
  receivers: number;
  faults: HerdFault[];
  receiverProcesses: number;
  windowMs: number;
}

export interface HerdRow {
  transport: FanoutTransport;
  fault: HerdFault;
  receivers: number;
  /** The signal → the new process listening. */
  away_s: number;
  /** The new process listening → every receiver connected (null: not all within the deadline). */
  all_back_s: number | null;
  half_back_s: number | null;
  /** The most endpoints that connected within one second (of 1 s buckets from the new process's start). */
  most_back_in_1s: number;
  /** Refusals (503 MS_OVERLOADED) the new process answered until all were back. */
  refused: number;
  /** Its event loop's worst p99 delay (per 250 ms tick) while they came back. */
  loop_delay_p99_max_ms: number;
  /** One window once all were back. */
  hb_rtt_p99_ms: number;
  published_per_s: number;
  target_per_s: number;
  loop_delay_p99_ms: number;
  /** The fewest connected from all back to the window's end (= receivers: no second collapse). */
  min_connected_after: number;
  steal_pct: number;
}

const TICK_MS = 250;

/** HERD_CONFIG: a JSON object of gateway settings (the gateway validates the settings themselves). */
function herdConfig(): object {
  const raw = process.env.HERD_CONFIG ?? '{}';
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new Error(`HERD_CONFIG is not JSON (${error instanceof Error ? error.message : String(error)}): ${raw}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`HERD_CONFIG must be a JSON object of gateway settings: ${raw}`);
  return parsed;
}
const BACK_DEADLINE_MS = 120_000;

type Tick = Extract<FromGateway, { ev: 'tick' }>;

export async function herd(plan: HerdPlan): Promise<HerdRow[]> {
  const port = await freePort();
  const env = {
    // HERD_CONFIG='{"admission":{"admitLoopDelayMs":40}}': gateway settings to compare
    FANOUT_CONFIG: JSON.stringify({ ...herdConfig(), tokens: { secret: randomBytes(24).toString('hex') } }),
    FANOUT_PORT: String(port),
    FANOUT_ENDPOINTS: String(plan.receivers),
    FANOUT_TICK_MS: String(TICK_MS),
  };
  const start = (): Child<ToGateway, FromGateway> => new Child<ToGateway, FromGateway>('./fanout/gateway-child.ts', ['--expose-gc'], env);
  let gw = start();
  const pool = new ReceiverPool(plan.receiverProcesses);
  const rows: HerdRow[] = [];
  try {
    const { url } = await gw.next('listening', 30_000);
    // the endpoints exist already (FANOUT_ENDPOINTS): their tokens
    gw.send({ cmd: 'tokens', ids: Array.from({ length: plan.receivers }, (_, i) => `fan${i}`) });
    const { tokens } = await gw.next('tokens', 30_000);
    const first = await pool.connect(url, plan.transport, tokens, BACK_DEADLINE_MS);
    console.log(`herd: ${plan.receivers - first.failed} of ${plan.receivers} connected in ${first.seconds.toFixed(1)} s`);
    await sleep(3_000);
    for (const fault of plan.faults) {
      const t0 = Date.now();
      const exited = new Promise<void>((r) => gw.proc.once('exit', () => r()));
      gw.proc.kill(fault === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
      await exited;
      gw = start();
      const ticks: Tick[] = [];
      gw.proc.on('message', (m: FromGateway) => void (m.ev === 'tick' && ticks.push(m)));
      await gw.next('listening', 30_000);
      const listeningAt = Date.now();
      const deadline = listeningAt + BACK_DEADLINE_MS;
      while (Date.now() < deadline && (ticks.at(-1)?.connected ?? 0) < plan.receivers) await sleep(TICK_MS);
      const backTick = ticks.find((t) => t.connected >= plan.receivers);
      const halfTick = ticks.find((t) => t.connected >= plan.receivers / 2);
      const untilBack = ticks.slice(0, backTick ? ticks.indexOf(backTick) + 1 : ticks.length);
      const afterFrom = ticks.length;
      await sleep(3_000);
      gw.send({ cmd: 'measure', ms: plan.windowMs });
      const m = await gw.next('measured', 30_000 + plan.windowMs);
      const after = ticks.slice(afterFrom);
      const row: HerdRow = {
        transport: plan.transport,
        fault,
        receivers: plan.receivers,
        away_s: round((listeningAt - t0) / 1000, 2),
        all_back_s: backTick ? round((backTick.atMs - listeningAt) / 1000, 2) : null,
        half_back_s: halfTick ? round((halfTick.atMs - listeningAt) / 1000, 2) : null,
        most_back_in_1s: mostInOneSecond(untilBack),
        refused: untilBack.at(-1)?.refused ?? 0,
        loop_delay_p99_max_ms: round(Math.max(0, ...untilBack.map((t) => t.loopDelayP99Ms)), 1),
        hb_rtt_p99_ms: round(percentile(m.rttSamplesMs, 99), 2),
        published_per_s: round(m.publishedPerS, 1),
        target_per_s: plan.receivers,
        loop_delay_p99_ms: round(m.loopDelayP99Ms, 1),
        min_connected_after: Math.min(m.connected, ...after.map((t) => t.connected)),
        steal_pct: round(m.stealPct, 1),
      };
      rows.push(row);
      console.log(`herd ${JSON.stringify(row)}`);
    }
    return rows;
  } finally {
    await Promise.all([pool.stop(), gw.stop()]);
  }
}

/** The largest rise of `connected` within any 1 s (ticks are TICK_MS apart; from none before the first). */
function mostInOneSecond(ticks: Tick[]): number {
  const per = Math.round(1000 / TICK_MS);
  let most = 0;
  for (let i = 0; i < ticks.length; i++) {
    const from = i - per >= 0 ? (ticks[i - per]?.connected ?? 0) : 0;
    most = Math.max(most, (ticks[i]?.connected ?? 0) - from);
  }
  return most;
}

const round = (v: number, digits: number): number => Number(v.toFixed(digits));

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  // npx tsx bench/herd.ts [webrtc|webtransport] [receivers] [sigterm,sigkill]
  const transport = (process.argv[2] ?? 'webrtc') as FanoutTransport;
  const receivers = Number(process.argv[3] ?? 500);
  const faults = (process.argv[4] ?? 'sigterm,sigkill').split(',') as HerdFault[];
  console.log(JSON.stringify(await herd({ transport, receivers, faults, receiverProcesses: Number(process.env.FANOUT_PROCESSES ?? 4), windowMs: 3_000 }), null, 2));
  process.exit(0);
}
