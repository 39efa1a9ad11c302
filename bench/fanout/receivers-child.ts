/**
 * Fan-out bench, receiver side: a share of the SDK receivers (node-datachannel or
 * WebTransport over HTTP/2) in one of several processes, connected a few at a time so
 * signaling is not one burst. Counts chunks, and checks each receiver's seqs run on with
 * no gap and no repeat.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { Receiver } from '../../receiver-sdk/dist/node.js';
import type { FromReceivers, ToReceivers } from './protocol.js';

const CONCURRENCY = 8;

const send = (m: FromReceivers): void => void process.send?.(m);
// @fails-components/webtransport throws from a TLS socket callback when a session cannot be
// set up ('Can not get http2 TLSSocket'): no caller can catch that. Here it fails that one
// dial (its timeout counts it), not the whole process and with it the stage.
let uncaught = 0;
process.on('uncaughtException', (error) => {
  if (uncaught++ < 3) console.error(`receivers: uncaught in a library callback (${uncaught}): ${error.message}`);
});
const receivers: Receiver[] = [];
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
    return send({ ev: 'chunks', count: chunks, gaps, duplicates, cpuUs: ((u) => u.user + u.system)(process.cpuUsage()) });
  }
  void (async () => {
    const t0 = performance.now();
    // a stage that cannot connect everything by its deadline reports what it has (the rest
    // are counted as failed and closed) instead of holding the bench
    const deadline = t0 + msg.deadlineMs;
    const queue = [...msg.endpoints];
    let failed = 0;
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (performance.now() >= deadline) {
          failed++;
          continue;
        }
        const rx = new Receiver({ gatewayUrl: msg.url, endpointId: next.id, token: next.token, transports: [msg.transport], rtcConfig: { bindAddress: '127.0.0.1' } });
        let last = 0;
        rx.on('chunk', (c) => {
          chunks++;
          // the first chunk may be any seq (the stream ran before this receiver connected)
          if (last !== 0 && c.seq > last + 1) gaps++;
          if (c.seq <= last) duplicates++;
          last = Math.max(last, c.seq);
        });
        rx.on('error', () => undefined);
        const left = deadline - performance.now();
        const connected = await Promise.race([rx.connect().then(() => true, () => false), new Promise<boolean>((r) => setTimeout(() => r(false), left))]);
        if (connected) receivers.push(rx);
        else {
          failed++;
          rx.close();
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    send({ ev: 'connected', count: msg.endpoints.length - failed, failed, seconds: (performance.now() - t0) / 1000 });
  })();
});

process.on('disconnect', () => {
  for (const r of receivers) r.close();
  setTimeout(() => process.exit(0), 500);
});
