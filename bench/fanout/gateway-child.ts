/**
 * Fan-out bench, gateway side: one gateway in its own process so its CPU and RSS are
 * its own. One stream per endpoint, each fed at `FANOUT_RATE` chunks/s (100 B).
 * Run with --expose-gc so the memory figures are taken after a collection. It runs the built
 * gateway (`gateway/dist`, as `npm start` does; `npm run bench` builds first), not the sources
 * through tsx, whose per-function name helpers would show in the profile.
 */
import { createGateway, serve, type GatewayConfigInput, type HeartbeatEvent } from '../../gateway/dist/index.js';
import { readdirSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { freeUdpPorts } from './free-port.js';
import type { FromGateway, ToGateway } from './protocol.js';

const RATE = Number(process.env.FANOUT_RATE ?? 1);

/**
 * CPU ticks (user + system) of this process per thread name (Linux /proc): where the gateway's
 * CPU goes, JS vs native threads. Read synchronously: the files are tiny, and with a busy event
 * loop one await per thread (~80 threads with 64 ICE ports) took minutes.
 */
function threadTicks(): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    let stat = '';
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const close = stat.lastIndexOf(')');
    if (close < 0) continue;
    const name = tid === String(process.pid) ? 'main (JS)' : stat.slice(stat.indexOf('(') + 1, close);
    const f = stat.slice(close + 2).split(' ');
    out[name] = (out[name] ?? 0) + Number(f[11]) + Number(f[12]);
  }
  return out;
}
/** The machine's CPU time so far (Linux /proc/stat, all CPUs): total and stolen by the hypervisor, in ticks. */
function machineTicks(): { total: number; steal: number } {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    return { total: cpu.slice(0, 8).reduce((a, b) => a + b, 0), steal: cpu[7] ?? 0 };
  } catch {
    return { total: 0, steal: 0 };
  }
}
/** After the forced collection before a window, how long until the window starts. */
const GC_SETTLE_MS = 1_000;
const send = (m: FromGateway): void => void (process.connected && process.send?.(m));
// extra gateway configuration from the bench (e.g. a probe interval), JSON
const extra = JSON.parse(process.env.FANOUT_CONFIG ?? '{}') as GatewayConfigInput;
// every synthetic receiver signals from 127.0.0.1: the per-address signaling limit is off here
// streams keep 10 s of chunks (retention.maxAgeMs; the default is 60 s): what an endpoint
// costs is measured apart from how much data its stream keeps
// ICE ports (UDP mux) are node-datachannel's: the werift engine binds a port per session
const icePorts = extra.webrtc?.engine === 'werift' ? {} : { icePort: await freeUdpPorts(extra.webrtc?.icePortCount ?? 8) };
const gateway = createGateway({ logLevel: 'silent', retention: { maxAgeMs: 10_000 }, ...extra, limits: { signalingPerAddress: 0, ...extra.limits }, webrtc: { engine: 'node-datachannel', bindAddress: '127.0.0.1', ...icePorts, ...extra.webrtc } });
const streams: string[] = [];
/** streams[i]'s one endpoint. */
const endpointOf: string[] = [];
const payload = new Uint8Array(100);
// Only the streams of endpoints heard from in the last LIVE_MS get chunks: a receiver the
// gateway refused goes to another instance (it closes in the bench), and its stream's load goes
// with it; the target is one chunk per second per connected endpoint.
const LIVE_MS = 3_000;
const heardAt = new Map<string, number>();
gateway.on('heartbeat', (e) => void heardAt.set(e.endpointId, performance.now()));

/** One stream per endpoint, each endpoint's token. */
async function addEndpoints(ids: string[], kind?: 'none' | 'empty'): Promise<{ id: string; token: string }[]> {
  // all at once: with hundreds of endpoints connected the event loop is busy, and one
  // await per token would wait a loop turn each (minutes at 1000)
  return Promise.all(
    ids.map(async (id) => {
      if (kind !== 'none') await gateway.createStream({ stream_id: `s-${id}`, endpoint_list: kind === 'empty' ? [] : [id] });
      if (kind === undefined) {
        streams.push(`s-${id}`);
        endpointOf.push(id);
      }
      return { id, token: (await gateway.issueToken(id)).token };
    }),
  );
}
// FANOUT_ENDPOINTS=500: the endpoints fan0..fan499 and their streams exist before the gateway
// listens (the herd bench restarts it under receivers that hold tokens from the same secret)
await addEndpoints(Array.from({ length: Number(process.env.FANOUT_ENDPOINTS ?? 0) }, (_, i) => `fan${i}`));
const server = await serve(gateway, { apiKey: 'fanout-bench-key-0123', host: '127.0.0.1', port: Number(process.env.FANOUT_PORT ?? 0) });

// every 100 ms a tenth of the streams get a chunk: RATE chunks/s each, spread evenly. (Slices of
// 10 ms were tried: WebTransport at ~950 endpoints, 2 runs each, loop p99 77-80 ms against
// 33 ms with 100 ms, heartbeat p99 225-282 against 146-185 ms.) The slices due are counted
// from the clock, not from the timer's ticks: a late tick publishes what fell due meanwhile, as
// a producer at a steady rate does (what the gateway does not store in time still shows, as
// publishes not yet resolved)
const SLICE_MS = 100;
const SLICES = 1_000 / SLICE_MS;
let slice = 0;
let published = 0;
let idle = false;
let slicesDone = 0;
const publishFrom = performance.now();
const publisher = setInterval(() => {
  const now = performance.now();
  const due = Math.floor((now - publishFrom) / SLICE_MS);
  for (; slicesDone < due; slicesDone++) {
    if (!idle) {
      for (let r = 0; r < RATE; r++) {
        for (let i = slice; i < streams.length; i += SLICES) {
          if (now - (heardAt.get(endpointOf[i] ?? '') ?? -Infinity) > LIVE_MS) continue;
          void gateway.publish(streams[i] ?? '', payload).then(() => void published++, () => undefined);
        }
      }
    }
    slice = (slice + 1) % SLICES;
  }
}, SLICE_MS);

process.on('message', (raw: ToGateway) => {
  void (async () => {
    if (raw.cmd === 'add') {
      if (raw.stallMs) for (const until = performance.now() + raw.stallMs; performance.now() < until; );
      send({ ev: 'added', tokens: await addEndpoints(raw.ids, raw.streams) });
    } else if (raw.cmd === 'tokens') {
      send({ ev: 'tokens', tokens: await Promise.all(raw.ids.map(async (id) => ({ id, token: (await gateway.issueToken(id)).token }))) });
    } else if (raw.cmd === 'measure') {
      const gc = (globalThis as { gc?: () => void }).gc;
      if (raw.idle) {
        // idle: nothing published, and the chunks retained from before aged out (the stream's
        // data, not the endpoint's cost) before the window starts
        idle = true;
        await new Promise((r) => setTimeout(r, gateway.config.retention.maxAgeMs + 1_500));
      }
      gc?.();
      // the forced collection stops the world (57-73 ms here at 600 WebTransport endpoints): the
      // heartbeats and echoes it held up would count in the window's RTT, so the window starts
      // once they are through (RTTs here are far below this)
      if (gc) await new Promise((r) => setTimeout(r, GC_SETTLE_MS));
      const rttSamplesMs: number[] = [];
      const onHeartbeat = (e: HeartbeatEvent): void => void rttSamplesMs.push(e.rttMs);
      gateway.on('heartbeat', onHeartbeat);
      const published0 = published;
      idle = raw.idle === true;
      // FANOUT_PROFILE_DIR=/tmp/x: a CPU profile of the gateway's JavaScript per window (steady state only)
      const profiler = process.env.FANOUT_PROFILE_DIR ? new Session() : undefined;
      if (profiler) {
        profiler.connect();
        await profiler.post('Profiler.enable');
        await profiler.post('Profiler.start');
      }
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const ticks0 = threadTicks();
      const machine0 = machineTicks();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, raw.ms));
      const cpu = process.cpuUsage(cpu0);
      const ticks1 = threadTicks();
      const machine1 = machineTicks();
      loop.disable();
      const threadsPct: Record<string, number> = {};
      // clock ticks are 1/100 s on Linux
      for (const [name, t] of Object.entries(ticks1)) threadsPct[name] = Number((((t - (ticks0[name] ?? 0)) / 100) * 1000 / raw.ms * 100).toFixed(1));
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        await writeFile(`${process.env.FANOUT_PROFILE_DIR}/window-${Date.now()}.cpuprofile`, JSON.stringify(profile));
        profiler.disconnect();
      }
      const wallUs = (performance.now() - t0) * 1000;
      gateway.off('heartbeat', onHeartbeat);
      idle = false;
      gc?.();
      const mem = process.memoryUsage();
      // FANOUT_HEAP_SNAPSHOT=/tmp/x: what the heap holds at the idle window (bench/heap-summary.ts reads it)
      if ((raw.idle || streams.length === 0) && process.env.FANOUT_HEAP_SNAPSHOT) writeHeapSnapshot(`${process.env.FANOUT_HEAP_SNAPSHOT}/gateway-${streams.length}.heapsnapshot`);
      send({
        ev: 'measured',
        connected: gateway.listEndpoints().filter((e) => e.connected).length,
        cpuPct: ((cpu.user + cpu.system) / wallUs) * 100,
        publishedPerS: ((published - published0) * 1e6) / wallUs,
        published,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        rttSamplesMs,
        threadsPct,
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        loopDelayMaxMs: loop.max / 1e6,
        stealPct: machine1.total > machine0.total ? ((machine1.steal - machine0.steal) / (machine1.total - machine0.total)) * 100 : 0,
      });
    }
  })();
});

// FANOUT_TICK_MS=250: every so often, how many endpoints are connected, the admission refusals
// so far and the event loop's p99 delay since the last tick (the herd bench's timeline)
const tickMs = Number(process.env.FANOUT_TICK_MS ?? 0);
if (tickMs > 0) {
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  setInterval(() => {
    const refused = gateway.admission().refused;
    send({ ev: 'tick', atMs: Date.now(), connected: gateway.listEndpoints().filter((e) => e.connected).length, refused: refused.loop_delay + refused.rate + refused.handshakes, loopDelayP99Ms: loop.percentile(99) / 1e6 });
    loop.reset();
  }, tickMs);
}

// a graceful stop (the bench's disconnect, or SIGTERM as a supervisor restarts it): drain, GOAWAY, exit
// once: SIGTERM and the bench's disconnect may both come, and a second server.close() rejects
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  clearInterval(publisher);
  void Promise.race([Promise.all([gateway.close(), server.close()]), new Promise((r) => setTimeout(r, gateway.config.drainTimeoutMs + 3_000))]).then(() => process.exit(0));
};
process.on('disconnect', stop);
process.on('SIGTERM', stop);
send({ ev: 'listening', url: server.url });
