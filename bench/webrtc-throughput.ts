/**
 * Throughput gateway → 1 receiver over loopback WebRTC, per engine and chunk size, side
 * by side with a baseline: the same engine's raw data channel with no gateway, protocol
 * or acks; then WebTransport over HTTP/2. Receiver: the SDK's Node defaults, in-process.
 * Usage: npx tsx bench/webrtc-throughput.ts [seconds]
 */
import { createGateway, serve } from '../gateway/src/index.js';
import { createWebRtcEngine } from '../gateway/src/transports/webrtc/index.js';
import { Receiver, webrtcDialer } from '../receiver-sdk/src/node.js';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { record, type Row } from './results.js';

type Engine = 'node-datachannel' | 'werift';
const seconds = Number(process.argv[2] ?? 5);
const sizes = [1024, 16 * 1024];
const engines: Engine[] = ['node-datachannel', 'werift'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function throughGateway(engine: Engine, size: number, transport: 'webrtc' | 'webtransport' = 'webrtc'): Promise<Row> {
  const gateway = createGateway({ logLevel: 'silent', webrtc: { engine, bindAddress: '127.0.0.1' } });
  const server = await serve(gateway, { apiKey: 'bench-key-0123456789', port: 0 });
  gateway.createStream({ stream_id: 'b', endpoint_list: ['rx'] });
  const { token } = await gateway.issueToken('rx');
  const rx = new Receiver({ gatewayUrl: server.url, endpointId: 'rx', token, rtcConfig: { bindAddress: '127.0.0.1' }, transports: [transport] });
  let received = 0;
  let bytes = 0;
  rx.on('chunk', (c) => {
    received++;
    bytes += c.payload.byteLength;
  });
  await rx.connect();
  const payload = new Uint8Array(size);
  let published = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  // keep at most ~2 MiB published ahead of the receiver (the retention ring is not the bench)
  const window = Math.max(64, Math.floor((2 * 1024 * 1024) / size));
  while (performance.now() < end) {
    while (published - received < window) {
      await gateway.publish('b', payload);
      published++;
    }
    await sleep(1);
  }
  const elapsed = (performance.now() - t0) / 1000;
  const row = { case: `gateway → SDK receiver (${transport})`, engine: transport === 'webtransport' ? 'http2 (fails-components)' : engine, chunkBytes: size, MBps: bytes / elapsed / 1e6, chunksPerS: received / elapsed, seconds: elapsed };
  rx.close();
  await gateway.close();
  await server.close();
  return row;
}

/** Baseline: the same gateway-side engine and negotiated channels, raw bytes, no protocol. */
async function rawChannel(engine: Engine, size: number): Promise<Row> {
  const eng = await createWebRtcEngine({ engine, bindAddress: '127.0.0.1', iceServers: [], connectTimeoutMs: 10_000 });
  let transportPromise: Promise<import('../gateway/src/index.js').Transport> | undefined;
  const dial = webrtcDialer({
    gatewayUrl: 'http://unused',
    endpointId: 'raw',
    token: 'raw',
    RTCPeerConnection: RTCPeerConnection as unknown as typeof globalThis.RTCPeerConnection,
    rtcConfig: { bindAddress: '127.0.0.1' },
    fetch: (async (_url: string | URL | Request, init?: RequestInit) => {
      const offer = await eng.answer(String(init?.body ?? ''));
      transportPromise = offer.transport;
      return new Response(offer.answerSdp, { status: 201, headers: { location: '/raw' } });
    }) as typeof fetch,
  });
  const link = await dial();
  const transport = await transportPromise!;
  let bytes = 0;
  let count = 0;
  link.on('message', (b) => {
    bytes += b.byteLength;
    count++;
  });
  const payload = new Uint8Array(size);
  const highWater = Math.min(256 * 1024, transport.highWaterBytes ?? Infinity);
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    while (transport.bufferedAmount < highWater) transport.send(payload, 'data');
    await new Promise<void>((r) => {
      const t = setTimeout(r, 5);
      transport.once('drain', () => {
        clearTimeout(t);
        r();
      });
    });
  }
  const elapsed = (performance.now() - t0) / 1000;
  link.close('done');
  transport.close('done');
  return { case: 'baseline: raw data channel', engine, chunkBytes: size, MBps: bytes / elapsed / 1e6, chunksPerS: count / elapsed, seconds: elapsed };
}

const rows: Row[] = [];
for (const engine of engines) {
  for (const size of sizes) {
    const base = await rawChannel(engine, size);
    const gw = await throughGateway(engine, size);
    rows.push(base, gw);
    const f = (v: unknown, d: number): string => Number(v).toFixed(d);
    console.log(`${engine.padEnd(16)} ${String(size).padStart(6)} B  raw ${f(base.MBps, 1)} MB/s  gateway ${f(gw.MBps, 1)} MB/s (${f(gw.chunksPerS, 0)} chunks/s)`);
  }
}
// WebTransport over HTTP/2 (the backend available here), same harness
for (const size of sizes) {
  const wt = await throughGateway('node-datachannel', size, 'webtransport');
  rows.push(wt);
  console.log(`webtransport/h2  ${String(size).padStart(6)} B  gateway ${Number(wt.MBps).toFixed(1)} MB/s (${Number(wt.chunksPerS).toFixed(0)} chunks/s)`);
}
await record('webrtc-throughput', rows);
process.exit(0);
