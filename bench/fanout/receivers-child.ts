/**
 * Fan-out bench, receiver side: a share of the SDK receivers (node-datachannel or
 * WebTransport over HTTP/2) in one of several processes, connected a few at a time so
 * signaling is not one burst. Counts chunks, and checks each receiver's seqs run on with
 * no gap and no repeat.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ExponentialBackoff, MirrorstreamError, Receiver } from '../../receiver-sdk/dist/node.js';
import type { FromReceivers, ToReceivers } from './protocol.js';

const CONCURRENCY = 8;

/**
 * Receivers the gateway refuses as past its capacity (503 MS_OVERLOADED) do what the SDK does:
 * come back after Retry-After while the stage connects. A stage reports once every receiver
 * connected, or once no receiver of this process connected for PLATEAU_MS while some were
 * refused (the gateway admitted what its budget allows), or at the deadline; the receivers
 * refused then close (they would go to another instance), so the stage's windows measure what
 * the gateway admitted.
 */
// longer than the longest Retry-After a refused crowd is given (30 s) with the SDK's jitter (× 1.5)
const PLATEAU_MS = 50_000;
const overloaded = (e: unknown): boolean => e instanceof MirrorstreamError && e.code === 'MS_OVERLOADED';

const send = (m: FromReceivers): void => void process.send?.(m);
// @fails-components/webtransport throws from a TLS socket callback when a session cannot be
// set up ('Can not get http2 TLSSocket'): no caller can catch that. Here it fails that one
// dial (its timeout counts it), not the whole process and with it the stage.
let uncaught = 0;
process.on('uncaughtException', (error) => {
  if (uncaught++ < 3) console.error(`receivers: uncaught in a library callback (${uncaught}): ${error.message}`);
});
const receivers: Receiver[] = [];
// a heartbeat's RTT includes how late this process answers it
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
let chunks = 0;
let gaps = 0;
let duplicates = 0;

// FANOUT_PROFILE_DIR=/tmp/x: a CPU profile of this process between two counts (the measured windows)
const profiler = process.env.FANOUT_PROFILE_DIR ? new Session() : undefined;
let profiling = false;
async function profileWindow(): Promise<void> {
  if (!profiler) return;
  if (profiling) {
    const { profile } = await profiler.post('Profiler.stop');
    await writeFile(`${process.env.FANOUT_PROFILE_DIR}/receivers-${process.pid}-${Date.now()}.cpuprofile`, JSON.stringify(profile));
  } else {
    profiler.connect();
    await profiler.post('Profiler.enable');
  }
  await profiler.post('Profiler.start');
  profiling = true;
}

process.on('message', (msg: ToReceivers) => {
  if (msg.cmd === 'close') {
    for (const r of receivers.splice(0)) r.close();
    return send({ ev: 'closed' });
  }
  if (msg.cmd === 'count') {
    void profileWindow();
    const loopDelayP99Ms = loopDelay.count > 0 ? loopDelay.percentile(99) / 1e6 : 0;
    loopDelay.reset();
    return send({ ev: 'chunks', count: chunks, gaps, duplicates, cpuUs: ((u) => u.user + u.system)(process.cpuUsage()), loopDelayP99Ms });
  }
  void (async () => {
    const t0 = performance.now();
    const deadline = t0 + msg.deadlineMs;
    const queue = [...msg.endpoints];
    let connected = 0;
    let lastConnectAt = t0;
    /** Receivers not connected yet, still trying: the last error each had. */
    const trying = new Map<Receiver, unknown>();
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (performance.now() >= deadline) break;
        const backoff = new ExponentialBackoff();
        let refusedOnce: () => void = () => undefined;
        const refusal = new Promise<void>((r) => (refusedOnce = r));
        const rx = new Receiver({
          gatewayUrl: msg.url,
          endpointId: next.id,
          token: next.token,
          transports: [msg.transport],
          ...(process.env.FANOUT_REPORT_MS ? { reportIntervalMs: Number(process.env.FANOUT_REPORT_MS) } : {}),
          // the SDK's own policy; a refusal also frees this worker for the next receiver (the refused one comes back by itself)
          reconnect: {
            nextRetryDelayMs: (ctx) => {
              trying.set(rx, ctx.lastError);
              if (overloaded(ctx.lastError)) refusedOnce();
              return backoff.nextRetryDelayMs(ctx);
            },
          },
          rtcConfig: { bindAddress: '127.0.0.1' },
        });
        let last = 0;
        rx.on('chunk', (c) => {
          chunks++;
          // the first chunk may be any seq (the stream ran before this receiver connected)
          if (last !== 0 && c.seq > last + 1) gaps++;
          if (c.seq <= last) duplicates++;
          last = Math.max(last, c.seq);
        });
        rx.on('error', () => undefined);
        receivers.push(rx);
        trying.set(rx, undefined);
        const up = rx.connect().then(() => {
          trying.delete(rx);
          connected++;
          lastConnectAt = performance.now();
        });
        // the worker moves on once this one connected, was refused (it comes back by itself) or the stage's time is up
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([up, refusal, new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now()))))]);
        clearTimeout(timer);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const refusedNow = (): number => [...trying.values()].filter(overloaded).length;
    for (;;) {
      const now = performance.now();
      if (trying.size === 0 || now >= deadline || (refusedNow() > 0 && now - lastConnectAt >= PLATEAU_MS)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const refused = refusedNow();
    // those still refused go elsewhere (a real deployment gives them a second instance's URL):
    // the stage measures the admitted endpoints, not a crowd retrying on this machine's cores
    for (const [rx, error] of trying) {
      if (!overloaded(error)) continue;
      trying.delete(rx);
      receivers.splice(receivers.indexOf(rx), 1);
      rx.close();
    }
    // the endpoints never dialed (deadline) count as failed with those still failing for another reason
    send({ ev: 'connected', count: connected, failed: msg.endpoints.length - connected - refused, refused, seconds: (performance.now() - t0) / 1000 });
  })();
});

process.on('disconnect', () => {
  for (const r of receivers) r.close();
  setTimeout(() => process.exit(0), 500);
});
