/**
 * Fan-out bench, receiver side: many SDK receivers (node-datachannel) in one process,
 * connected a few at a time so signaling is not one burst.
 */
import { Receiver } from '../../receiver-sdk/src/node.js';
import type { FromReceivers, ToReceivers } from './protocol.js';

const CONCURRENCY = 16;
const send = (m: FromReceivers): void => void process.send?.(m);
const receivers: Receiver[] = [];
let chunks = 0;

process.on('message', (msg: ToReceivers) => {
  if (msg.cmd === 'count') return send({ ev: 'chunks', count: chunks, cpuUs: ((u) => u.user + u.system)(process.cpuUsage()) });
  void (async () => {
    const t0 = performance.now();
    const queue = [...msg.endpoints];
    let failed = 0;
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        const rx = new Receiver({ gatewayUrl: msg.url, endpointId: next.id, token: next.token, rtcConfig: { bindAddress: '127.0.0.1' } });
        rx.on('chunk', () => void chunks++);
        rx.on('error', () => undefined);
        receivers.push(rx);
        await rx.connect().catch(() => void failed++);
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
