import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGateway, ManualClock, serve } from '../../gateway/src/index.js';
import { Receiver, type Chunk } from '../../receiver-sdk/src/node.js';
import { api, killAll, startGateway } from '../helpers/gateway-process.js';
import { settle } from '../helpers/memory-harness.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { until, withDeadline } from '../helpers/poll.js';

type Probe = { status: number; body: { status: string; ready?: boolean } };

async function probe(url: string, path: '/readyz' | '/healthz'): Promise<Probe> {
  const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: (await res.json()) as Probe['body'] };
}

/**
 * `/readyz` (ready for new receivers and publishers) beside `/healthz` (alive): a load
 * balancer takes a draining gateway, or one whose stream log cannot store, out of rotation,
 * while a liveness probe leaves it running.
 */
describe('readiness', () => {
  it('in-memory gateway: ready; while it drains (an active endpoint has not acked yet) 503 draining, still alive; the receiver gets every chunk and END', async () => {
    const gateway = createGateway({ logLevel: 'silent', drainTimeoutMs: 10_000, webrtc: { bindAddress: '127.0.0.1' } });
    const server = await serve(gateway, { apiKey: 'readiness-api-key-0123', port: 0 });
    // the receiver's timers run on a clock of its own that only the test moves: it acks the
    // chunks 1.5 s of that clock after the first, i.e. when the test says so, and the drain waits
    // for that (over WebTransport: the SDK's WebRTC dialer times its set-up on that clock too)
    const rxClock = new ManualClock();
    const { token } = await gateway.issueToken('rx');
    const rx = new Receiver({ gatewayUrl: server.url, endpointId: 'rx', token, transports: ['webtransport'], clock: rxClock, ackEveryChunks: 1_000, ackDelayMs: 1_500 });
    const chunks: Chunk[] = [];
    const ends: string[] = [];
    rx.on('chunk', (c) => chunks.push(c));
    rx.on('end', (e) => ends.push(`${e.streamId} after ${chunks.length}`));
    try {
      expect(await probe(server.url, '/readyz')).toEqual({ status: 200, body: { ready: true, status: 'ready', instance_id: expect.any(String) } });
      await gateway.createStream({ stream_id: 's', endpoint_list: ['rx'] });
      await withDeadline(rx.connect(), 15_000, 'connected');
      for (let i = 1; i <= 5; i++) await gateway.publish('s', `c${i}`);
      await until(() => chunks.length === 5, 5_000, '5 chunks');
      const closed = gateway.close();
      expect(await probe(server.url, '/readyz')).toEqual({ status: 503, body: { ready: false, status: 'draining', instance_id: expect.any(String) } });
      expect(await probe(server.url, '/healthz')).toMatchObject({ status: 200, body: { status: 'draining' } });
      expect(gateway.getStream('s').endpoint_list[0]?.last_acked_seq).toBe(0);
      rxClock.advance(1_500); // the ack goes out: the drain is through
      await withDeadline(closed, 10_000, 'drained and closed');
      await until(() => ends.length === 1, 5_000, 'END');
      expect(chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(ends).toEqual(['s after 5']);
    } finally {
      rx.close();
      await gateway.close();
      await server.close();
    }
  }, 40_000);

  it('503 starting while start-up work it was told of runs (the CLI\'s warm-up), ready once that settled, also when it failed', async () => {
    const gateway = createGateway({ logLevel: 'silent', webtransport: { enabled: false } });
    const server = await serve(gateway, { apiKey: 'readiness-api-key-0123', port: 0 });
    try {
      let finish!: () => void;
      let fail!: (e: Error) => void;
      const finishing = new Promise<void>((r) => (finish = r));
      gateway.notReadyUntil(finishing);
      const failing = new Promise<void>((_, reject) => (fail = reject));
      failing.catch(() => undefined);
      gateway.notReadyUntil(failing);
      expect(await probe(server.url, '/readyz')).toEqual({ status: 503, body: { ready: false, status: 'starting', instance_id: expect.any(String) } });
      finish();
      // a barrier, not a pause: the promise settled and every continuation queued on it ran
      await finishing;
      await settle();
      expect((await probe(server.url, '/readyz')).body.status).toBe('starting');
      fail(new Error('warm-up failed'));
      await failing.catch(() => undefined);
      await settle();
      expect(await probe(server.url, '/readyz')).toEqual({ status: 200, body: { ready: true, status: 'ready', instance_id: expect.any(String) } });
    } finally {
      await gateway.close();
      await server.close();
    }
  });

  describe('the CLI on SIGTERM (in-memory log)', () => {
    afterEach(() => killAll());

    it('the receiver gets every chunk published before, then END, and the process exits 0', async () => {
      const g = await startGateway(0);
      await api(g.url, 'POST', '/v1/streams', { stream_id: 's', endpoint_list: ['rx'] });
      const { token } = (await api(g.url, 'POST', '/v1/endpoints/rx/token', {})) as { token: string };
      const rx = new Receiver({ gatewayUrl: g.url, endpointId: 'rx', token, transports: ['webrtc'], rtcConfig: { bindAddress: '127.0.0.1' }, ackDelayMs: 500 });
      const chunks: number[] = [];
      const ends: string[] = [];
      rx.on('chunk', (c) => chunks.push(c.seq));
      rx.on('end', (e) => ends.push(`${e.reason} after ${chunks.length}`));
      try {
        await withDeadline(rx.connect(), 15_000, 'connected');
        for (let i = 0; i < 20; i++) await api(g.url, 'POST', '/v1/streams/s/chunks', { chunks: Array.from({ length: 10 }, (_, j) => ({ payload: `c${i}-${j}` })) });
        const exitCode = new Promise<number | null>((r) => g.proc.once('exit', (c) => r(c)));
        g.proc.kill('SIGTERM');
        expect(await withDeadline(exitCode, 15_000, 'exit after SIGTERM')).toBe(0);
        await until(() => ends.length === 1, 5_000, 'END');
        expect(chunks).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
        expect(ends).toEqual(['gateway closing after 200']);
      } finally {
        rx.close();
      }
    }, 40_000);
  });

  describe('JetStream', () => {
    let nats: NatsServer;
    beforeAll(async () => {
      nats = await startNats();
    });
    afterAll(async () => {
      await nats?.close();
    });

    it('503 log_unavailable while NATS is down, ready again once it is back', async () => {
      const gateway = createGateway({ logLevel: 'silent', log: { kind: 'jetstream', nats: { servers: [nats.url], prefix: 'ready1', requestTimeoutMs: 1_000 } }, webtransport: { enabled: false } });
      const server = await serve(gateway, { apiKey: 'readiness-api-key-0123', port: 0 });
      try {
        // not started: nothing can be stored yet
        expect(await probe(server.url, '/readyz')).toMatchObject({ status: 503, body: { ready: false, status: 'log_unavailable' } });
        await gateway.start();
        expect(await probe(server.url, '/readyz')).toMatchObject({ status: 200, body: { ready: true, status: 'ready' } });
        await nats.kill();
        await until(async () => (await probe(server.url, '/readyz')).status === 503, 10_000, 'not ready while NATS is down');
        expect(await probe(server.url, '/readyz')).toMatchObject({ status: 503, body: { status: 'log_unavailable' } });
        expect((await probe(server.url, '/healthz')).status).toBe(200);
        await nats.restart();
        await until(async () => (await probe(server.url, '/readyz')).status === 200, 20_000, 'ready once NATS is back');
      } finally {
        await server.close();
        await gateway.close();
      }
    }, 40_000);
  });
});
