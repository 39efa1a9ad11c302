import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, it, vi } from 'vitest';
import { createGateway, ManualClock, serve, type HeartbeatEvent } from '../../gateway/src/index.js';
import { Receiver, type Chunk } from '../../receiver-sdk/src/node.js';
import { API_KEY, killAll, startGateway } from '../helpers/gateway-process.js';
import { closeOnManualClock } from '../helpers/memory-harness.js';
import { until, withDeadline } from '../helpers/poll.js';

/**
 * Resource limits over real sockets: a signaling flood from one address is refused with
 * 429 beyond the limits while another stream goes on; token issue is rate-limited per
 * address; WebTransport tickets hold a session slot until used or expired; slow clients
 * get 408 with the JSON error body.
 */
async function offerSdp(): Promise<string> {
  const { RTCPeerConnection } = await import('node-datachannel/polyfill');
  const pc = new RTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
  pc.createDataChannel('control', { negotiated: true, id: 0 });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise<void>((resolve) => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 2_000);
  });
  const sdp = pc.localDescription?.sdp ?? '';
  pc.close();
  return sdp;
}

const codeOf = async (res: Response): Promise<string> => ((await res.json()) as { error?: { code?: string } }).error?.code ?? `status ${res.status}`;

describe('resource limits', () => {
  it('a flood of 500 offers in 10 s with a valid token is refused with 429 beyond the limits; another stream is unaffected', async () => {
    const gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-01', port: 0 });
    await gateway.createStream({ stream_id: 'ref', endpoint_list: ['reference'] });
    const reference = new Receiver({ gatewayUrl: server.url, endpointId: 'reference', token: (await gateway.issueToken('reference')).token, rtcConfig: { bindAddress: '127.0.0.1' } });
    const delivered: { seq: number; at: number }[] = [];
    reference.on('chunk', (c: Chunk) => delivered.push({ seq: c.seq, at: performance.now() }));
    const rtts: { rtt: number; at: number }[] = [];
    gateway.on('heartbeat', (e: HeartbeatEvent) => e.endpointId === 'reference' && rtts.push({ rtt: e.rttMs, at: performance.now() }));
    let published = 0;
    const producer = setInterval(() => void gateway.publish('ref', `ref ${++published}`).catch(() => undefined), 10);
    try {
      await withDeadline(reference.connect(), 15_000, 'reference connected');
      const sdp = await offerSdp();
      const { token } = await gateway.issueToken('flooder');
      // a baseline before the flood: the reference stream delivering, its heartbeats answered
      await until(() => delivered.length >= 200 && rtts.length >= 2, 15_000, 'the reference stream delivering, with heartbeat RTTs', { state: () => ({ delivered: delivered.length, rtts: rtts.length }) });
      const baselineStart = delivered[0]?.at ?? 0;
      const floodStart = performance.now();
      const answers = new Map<string, number>();
      const inflight: Promise<void>[] = [];
      for (let i = 0; i < 500; i++) {
        const due = floodStart + i * 20;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        inflight.push(
          fetch(`${server.url}/v1/endpoints/flooder/webrtc`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' }, body: sdp }).then(async (res) => {
            const key = res.status === 201 ? '201' : `${res.status} ${await codeOf(res)}${res.headers.get('retry-after') ? ' (Retry-After)' : ''}`;
            if (res.status === 201) await res.text();
            answers.set(key, (answers.get(key) ?? 0) + 1);
          }),
        );
      }
      await Promise.all(inflight);
      const floodEnd = performance.now();
      clearInterval(producer);
      await until(() => delivered.length >= published, 10_000, 'every reference chunk delivered', { state: () => `${delivered.length} of ${published}` });

      const { sessionsPerEndpoint, signalingPerAddress, rateWindowMs } = gateway.config.limits;
      const { connectTimeoutMs } = gateway.config.webrtc;
      // windows the flood touched, however long a busy machine made it take: the one under way
      // when it began (the reference's own signaling opened a rate window earlier) and each
      // after; a session slot is held up to its connect timeout (the flooder never connects)
      const floodMs = floodEnd - floodStart;
      const sessionWindows = Math.ceil(floodMs / connectTimeoutMs) + 1;
      const rateWindows = Math.ceil(floodMs / rateWindowMs) + 1;
      // at most the session budget answered per window of the connect timeout; everything else 429 with a reason and Retry-After
      expect(answers.get('201') ?? 0).toBeLessThanOrEqual(sessionsPerEndpoint * sessionWindows);
      for (const key of answers.keys()) expect(['201', '429 MS_RATE_LIMITED (Retry-After)', '429 MS_TOO_MANY_SESSIONS (Retry-After)']).toContain(key);
      expect(answers.get('429 MS_RATE_LIMITED (Retry-After)') ?? 0).toBeGreaterThanOrEqual(500 - signalingPerAddress * rateWindows);
      expect(delivered.map((d) => d.seq)).toEqual(Array.from({ length: published }, (_, i) => i + 1));

      const before = [baselineStart, floodStart] as const;
      const during = [floodStart, floodEnd] as const;
      const rate = ([a, b]: readonly [number, number]): number => (delivered.filter((d) => d.at >= a && d.at < b).length * 1000) / (b - a);
      const p50 = ([a, b]: readonly [number, number]): number => {
        const xs = rtts.filter((r) => r.at >= a && r.at < b).map((r) => r.rtt).sort((x, y) => x - y);
        return xs[Math.floor(xs.length / 2)] ?? NaN;
      };
      console.log(
        `[signaling flood] 500 offers in ${((floodEnd - floodStart) / 1000).toFixed(1)} s: ${[...answers].map(([k, n]) => `${k}: ${n}`).join(', ')}; ` +
          `reference stream ${rate(before).toFixed(0)} chunks/s before, ${rate(during).toFixed(0)} during; heartbeat RTT p50 ${p50(before).toFixed(1)} ms before, ${p50(during).toFixed(1)} ms during; ${delivered.length} of ${published} delivered in order`,
      );
    } finally {
      clearInterval(producer);
      reference.close();
      await server.close();
      await gateway.close();
    }
  }, 90_000);

  it('token requests per address: beyond the limit 429 MS_RATE_LIMITED with Retry-After, allowed again in the next window', async () => {
    // the rate limiter (express-rate-limit's MemoryStore) reads Date.now(): a fake Date that only
    // moves when told, so every request lands in the window the test means (the gateway's own
    // clock is the performance clock, untouched)
    vi.useFakeTimers({ toFake: ['Date'], now: new Date('2030-01-01T00:00:00Z') });
    const gateway = createGateway({ logLevel: 'silent', webtransport: { enabled: false }, limits: { tokensPerAddress: 5, rateWindowMs: 60_000 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-02', port: 0 });
    const issue = (): Promise<Response> => fetch(`${server.url}/v1/endpoints/e/token`, { method: 'POST', headers: { authorization: 'Bearer limits-test-api-key-02' } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) statuses.push((await issue()).status);
      expect(statuses).toEqual([201, 201, 201, 201, 201, 429, 429]);
      vi.advanceTimersByTime(59_000);
      const refused = await issue();
      expect(refused.status).toBe(429);
      // seconds to the window's end, which began with the first request
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(await codeOf(refused)).toBe('MS_RATE_LIMITED');
      vi.advanceTimersByTime(1_000);
      expect((await issue()).status).toBe(201);
    } finally {
      vi.useRealTimers();
      await server.close();
      await gateway.close();
    }
  });

  it('behind a trusted proxy each client (X-Forwarded-For) has its own budget; from an address not trusted the header counts for nothing', async () => {
    const gateway = createGateway({ logLevel: 'silent', webtransport: { enabled: false }, trustProxy: ['127.0.0.1'], limits: { tokensPerAddress: 2, rateWindowMs: 60_000 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-04', host: '127.0.0.1', port: 0 });
    // a token request from `from` (a loopback source address) naming `client` in X-Forwarded-For
    const issue = (client: string, from = '127.0.0.1'): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpRequest(`${server.url}/v1/endpoints/e/token`, {
          method: 'POST',
          localAddress: from,
          headers: { authorization: 'Bearer limits-test-api-key-04', 'x-forwarded-for': client },
          timeout: 5_000,
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
        req.on('error', reject);
        req.end();
      });
    try {
      const a = [await issue('198.51.100.1'), await issue('198.51.100.1'), await issue('198.51.100.1')];
      const b = [await issue('198.51.100.2'), await issue('198.51.100.2')];
      expect([a, b]).toEqual([[201, 201, 429], [201, 201]]);
      // 127.0.0.2 is no trusted proxy: its header is ignored, and all it sends shares one budget
      expect([await issue('198.51.100.3', '127.0.0.2'), await issue('198.51.100.4', '127.0.0.2'), await issue('198.51.100.5', '127.0.0.2')]).toEqual([201, 201, 429]);
    } finally {
      await server.close();
      await gateway.close();
    }
  });

  it('the CLI sets the per-address limits (--tokens-per-address)', async () => {
    try {
      const g = await startGateway(0, ['--tokens-per-address', '2']);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await fetch(`${g.url}/v1/endpoints/e/token`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } })).status);
      expect(statuses).toEqual([201, 201, 429]);
    } finally {
      await killAll();
    }
  });

  it('WebTransport tickets hold a session slot until used or expired; a used one gives it back when its session ends', async () => {
    const clock = new ManualClock();
    const gateway = createGateway({ clock, logLevel: 'silent', limits: { sessionsPerEndpoint: 2 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-03', port: 0 });
    const { token } = await gateway.issueToken('w');
    const ticket = (): Promise<Response> => fetch(`${server.url}/v1/endpoints/w/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    try {
      expect((await ticket()).status).toBe(201);
      expect((await ticket()).status).toBe(201);
      const third = await ticket();
      expect(third.status).toBe(429);
      expect(await codeOf(third)).toBe('MS_TOO_MANY_SESSIONS');
      // both tickets expire unused (30 s): their slots come back
      clock.advance(30_001);
      // a receiver takes one (its ticket, then its session), one more ticket is out unused: full
      const rx = new Receiver({ gatewayUrl: server.url, endpointId: 'w', token, transports: ['webtransport'], clock });
      await withDeadline(rx.connect(), 15_000, 'WebTransport session');
      expect((await ticket()).status).toBe(201);
      expect((await ticket()).status).toBe(429);
      rx.close();
      // the receiver's session ended (the gateway saw it): its slot is free
      await until(() => !gateway.listEndpoints().some((e) => e.endpoint_id === 'w' && e.connected), 5_000, 'the gateway sees the session end');
      expect((await ticket()).status).toBe(201);
    } finally {
      await server.close();
      await closeOnManualClock(gateway, clock);
    }
  }, 60_000);

  it('a ticket given back (DELETE its cancel_path) frees its slot at once; only its endpoint can give it back, once', async () => {
    const gateway = createGateway({ logLevel: 'silent', limits: { sessionsPerEndpoint: 2 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-05', port: 0 });
    const { token } = await gateway.issueToken('w');
    const other = (await gateway.issueToken('v')).token;
    const ticket = (): Promise<Response> => fetch(`${server.url}/v1/endpoints/w/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const giveBack = (path: string, bearer = token): Promise<Response> => fetch(`${server.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${bearer}` } });
    try {
      const first = (await (await ticket()).json()) as { cancel_path: string; self_signed: boolean };
      expect(first.self_signed).toBe(true);
      expect((await ticket()).status).toBe(201);
      expect(await codeOf(await ticket())).toBe('MS_TOO_MANY_SESSIONS');
      expect(await codeOf(await giveBack(first.cancel_path, other))).toBe('MS_UNAUTHORIZED');
      expect(await codeOf(await giveBack(first.cancel_path.replace('/w/', '/v/'), other))).toBe('MS_SESSION_NOT_FOUND');
      expect((await giveBack(first.cancel_path)).status).toBe(204);
      expect(await codeOf(await giveBack(first.cancel_path))).toBe('MS_SESSION_NOT_FOUND');
      expect((await ticket()).status).toBe(201);
    } finally {
      await server.close();
      await gateway.close();
    }
  });

  it('a receiver whose WebTransport keeps failing is never locked out by its own retries: each failed attempt gives its ticket back', async () => {
    const gateway = createGateway({ logLevel: 'silent', limits: { sessionsPerEndpoint: 3 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-06', port: 0 });
    const { token } = await gateway.issueToken('w');
    // the listener is never reached (a browser that cannot trust its certificate fails the same way)
    class Unreachable {
      readonly ready = Promise.reject(new Error('net::ERR_CONNECTION_REFUSED'));
      readonly closed = this.ready;
      readonly incomingUnidirectionalStreams = new ReadableStream<ReadableStream<Uint8Array>>();
      createBidirectionalStream(): never {
        throw new Error('not connected');
      }
      close(): void {}
    }
    const errors: unknown[] = [];
    const rx = new Receiver({
      gatewayUrl: server.url,
      endpointId: 'w',
      token,
      transports: ['webtransport'],
      WebTransport: Unreachable,
      reconnect: { nextRetryDelayMs: (ctx) => (errors.push(ctx.lastError), 10) },
    });
    try {
      void rx.connect().catch(() => undefined);
      await until(() => errors.length >= 20, 30_000, '20 failed attempts', { state: () => `${errors.length} attempts` });
      const codes = errors.map((e) => (e instanceof Error && 'code' in e ? String(e.code) : String(e)));
      expect(codes.filter((c) => c === 'MS_TOO_MANY_SESSIONS')).toEqual([]);
      expect(new Set(codes)).toEqual(new Set(['MS_TRANSPORT_CLOSED']));
    } finally {
      rx.close();
      await server.close();
      await gateway.close();
    }
  }, 60_000);

  it('a slow client gets 408 MS_REQUEST_TIMEOUT as JSON: a head that never ends, a body that never comes', async () => {
    const gateway = createGateway({ logLevel: 'silent', webtransport: { enabled: false }, limits: { headersTimeoutMs: 1_000, requestTimeoutMs: 2_000 } });
    const server = await serve(gateway, { apiKey: 'limits-test-api-key-04', port: 0 });
    const slow = (text: string): Promise<{ answer: string; ms: number }> =>
      new Promise((resolve) => {
        const t0 = performance.now();
        let answer = '';
        const socket = connect(server.port, '127.0.0.1', () => socket.write(text));
        const timer = setTimeout(() => socket.destroy(), 8_000);
        socket.on('data', (d: Buffer) => (answer += d.toString()));
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearTimeout(timer);
          resolve({ answer, ms: performance.now() - t0 });
        });
      });
    try {
      const [head, body] = await Promise.all([
        slow('GET /healthz HTTP/1.1\r\nHost: x\r\n'),
        slow('POST /v1/streams HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer limits-test-api-key-04\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"stream'),
      ]);
      for (const r of [head, body]) {
        expect(r.answer).toMatch(/^HTTP\/1\.1 408 /);
        expect(JSON.parse(r.answer.slice(r.answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code: 'MS_REQUEST_TIMEOUT' } });
      }
      console.log(`[slow clients] unfinished head answered 408 after ${Math.round(head.ms)} ms (headersTimeoutMs 1000), unfinished body after ${Math.round(body.ms)} ms (requestTimeoutMs 2000)`);
    } finally {
      await server.close();
      await gateway.close();
    }
  }, 30_000);
});
