/**
 * Fan-out bench, gateway side: one gateway in its own process so its CPU and RSS are
 * its own. One stream per endpoint, each fed at `FANOUT_RATE` chunks/s (100 B).
 * Run with --expose-gc so the memory figures are taken after a collection.
 */
import { createGateway, serve, type GatewayConfigInput, type HeartbeatEvent } from '../../gateway/src/index.js';
import type { FromGateway, ToGateway } from './protocol.js';

const RATE = Number(process.env.FANOUT_RATE ?? 1);
const send = (m: FromGateway): void => void process.send?.(m);
// extra gateway configuration from the bench (e.g. a probe interval), JSON
const extra = JSON.parse(process.env.FANOUT_CONFIG ?? '{}') as GatewayConfigInput;
// every synthetic receiver signals from 127.0.0.1: the per-address signaling limit is off here
const gateway = createGateway({ logLevel: 'silent', ...extra, limits: { signalingPerAddress: 0, ...extra.limits }, webrtc: { engine: 'node-datachannel', bindAddress: '127.0.0.1' } });
const server = await serve(gateway, { apiKey: 'fanout-bench-key-0123', host: '127.0.0.1', port: 0 });
const streams: string[] = [];
const payload = new Uint8Array(100);

// every 100 ms a tenth of the streams get a chunk: RATE chunks/s each, spread evenly
let slice = 0;
let published = 0;
let idle = false;
const publisher = setInterval(() => {
  if (idle) return;
  for (let r = 0; r < RATE; r++) {
    for (let i = slice; i < streams.length; i += 10) void gateway.publish(streams[i] ?? '', payload).then(() => void published++, () => undefined);
  }
  slice = (slice + 1) % 10;
}, 100);

process.on('message', (raw: ToGateway) => {
  void (async () => {
    if (raw.cmd === 'add') {
      // all at once: with hundreds of endpoints connected the event loop is busy, and one
      // await per token would wait a loop turn each (minutes at 1000)
      const tokens = await Promise.all(
        raw.ids.map(async (id) => {
          await gateway.createStream({ stream_id: `s-${id}`, endpoint_list: [id] });
          streams.push(`s-${id}`);
          return { id, token: (await gateway.issueToken(id)).token };
        }),
      );
      send({ ev: 'added', tokens });
    } else if (raw.cmd === 'measure') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      const rttSamplesMs: number[] = [];
      const onHeartbeat = (e: HeartbeatEvent): void => void rttSamplesMs.push(e.rttMs);
      gateway.on('heartbeat', onHeartbeat);
      const published0 = published;
      idle = raw.idle === true;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, raw.ms));
      const cpu = process.cpuUsage(cpu0);
      const wallUs = (performance.now() - t0) * 1000;
      gateway.off('heartbeat', onHeartbeat);
      idle = false;
      gc?.();
      const mem = process.memoryUsage();
      send({
        ev: 'measured',
        connected: gateway.listEndpoints().filter((e) => e.connected).length,
        cpuPct: ((cpu.user + cpu.system) / wallUs) * 100,
        publishedPerS: ((published - published0) * 1e6) / wallUs,
        published,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        rttSamplesMs,
      });
    }
  })();
});

process.on('disconnect', () => {
  clearInterval(publisher);
  void Promise.race([Promise.all([gateway.close(), server.close()]), new Promise((r) => setTimeout(r, 3_000))]).then(() => process.exit(0));
});
send({ ev: 'listening', url: server.url });
