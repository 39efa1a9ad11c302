import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { frontierStall } from '../../bench/stats.js';
import { createGateway, MemoryTransport, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { listen, ReceiverCore, type ListeningReceiver } from '../../receiver-sdk/src/node.js';
import { testCertificate } from '../helpers/certs.js';
import { until, withDeadline } from '../helpers/poll.js';
import { monoMs, SchedulingDelay } from '../helpers/sched.js';
import { LISTENER_TOKEN, runFailover, spawnListener, type ChildReceiver } from '../helpers/webrtc-scenario.js';

const strictlyIncreasing = (s: number[]): boolean => s.every((v, i) => i === 0 || v > (s[i - 1] ?? 0));
const API_KEY = 'dial-out-key-0123456789';

/**
 * The gateway dials receivers that listen (an endpoint_list entry with url and token): real
 * gateways, real listeners (child processes where a test kills them) over loopback WebRTC.
 * Real-clock bounds are nominal + k × the measured scheduling delay (test/helpers/sched.ts).
 */
describe('listening receivers: failover between receivers the gateway dials', () => {
  it('three listeners in child processes, 2 000 chunks at 500/s, SIGKILL the active one at chunk 1 000: hedged and committed, nothing lost, each in order', async () => {
    const run = await runFailover('node-datachannel', { total: 2_000, killAt: 1_000, listening: ['a', 'b', 'c'] });
    const stall = frontierStall(run.timeline, run.killTime);
    const { health, tickMs } = run.config;
    const bound = run.sched.bound(health.carrierProbeIntervalMs + health.silenceFloorMs + tickMs, 4);
    console.log(`[listening] kill of ${run.killed}: ${run.takeover} took over (${run.away?.reason}); frontier stall ${stall.toFixed(0)} ms (${bound.text}); hedges ${JSON.stringify(run.hedges)}`);
    expect(run.takeover).not.toBe(run.killed);
    expect(run.away?.reason).toBe('hedge-commit');
    const union = new Set(Object.values(run.perReceiver).flat());
    expect(union.size).toBe(2_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
    expect(stall).toBeLessThan(bound.ms);
  }, 60_000);

  it.each<[string, string[]]>([
    ['a dial-in receiver to a listening one', ['b', 'c']],
    ['a listening receiver to a dial-in one', ['a', 'c']],
  ])('a mixed list fails over from %s', async (_what, listening) => {
    const run = await runFailover('node-datachannel', { total: 2_000, killAt: 700, listening });
    const union = new Set(Object.values(run.perReceiver).flat());
    console.log(`[mixed, listening ${listening.join(',')}] killed ${run.killed} → ${run.takeover} (${run.away?.reason}); frontier stall ${frontierStall(run.timeline, run.killTime).toFixed(0)} ms`);
    expect(run.killed).toBe('a');
    expect(run.takeover).toBe('b');
    expect(listening.includes('a')).not.toBe(listening.includes('b'));
    expect(union.size).toBe(2_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
  }, 60_000);

  it('the gateway offers from either engine: werift dials a listener too', async () => {
    const gateway = createGateway({ logLevel: 'silent', webrtc: { engine: 'werift', bindAddress: '127.0.0.1' } });
    const rx = await listen({ endpointId: 'w', token: LISTENER_TOKEN, rtcConfig: { bindAddress: '127.0.0.1' } });
    try {
      const got: number[] = [];
      rx.on('chunk', (c) => got.push(c.seq));
      await gateway.createStream({ stream_id: 's', endpoint_list: [{ endpoint_id: 'w', url: rx.url, token: LISTENER_TOKEN }] });
      await until(() => gateway.getStream('s').active.includes('w'), 15_000, 'w active', { state: () => gateway.getStream('s').endpoint_list });
      for (let i = 0; i < 20; i++) await gateway.publish('s', `m${i}`);
      await until(() => got.length === 20, 10_000, '20 chunks at the listener', { state: () => got.length });
      expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(gateway.getStream('s').endpoint_list[0]).toMatchObject({ kind: 'listening', dial: { state: 'connected', url: rx.url, failures: 0, last_error: null } });
    } finally {
      await rx.close();
      await gateway.close();
    }
  }, 60_000);

  it('a killed listener restarted on its port is re-dialed, becomes a warm standby and takes the stream back (fail-back)', async () => {
    const backoffMaxMs = 1_000;
    const gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, dialOut: { backoffMaxMs } });
    const children: ChildReceiver[] = [];
    const sched = SchedulingDelay.start();
    try {
      const a = spawnListener('a');
      const b = spawnListener('b');
      children.push(a, b);
      const urlA = await a.url!;
      const port = Number(new URL(urlA).port);
      await gateway.createStream({ stream_id: 's', endpoint_list: [{ endpoint_id: 'a', url: urlA, token: LISTENER_TOKEN }, { endpoint_id: 'b', url: await b.url!, token: LISTENER_TOKEN }], failback: { stable_ms: 1_000 } });
      await Promise.all([a.ready, b.ready]);
      await until(() => gateway.getStream('s').active[0] === 'a', 10_000, 'a active');
      a.proc.kill('SIGKILL');
      await a.exited;
      await until(() => gateway.getStream('s').active[0] === 'b', 10_000, 'b active after a died');
      // the listener comes back on the same port; the gateway has been re-dialing it meanwhile
      const a2 = spawnListener('a', { port });
      children.push(a2);
      await a2.url;
      const listening = monoMs();
      await withDeadline(a2.ready, 20_000, 'a re-dialed');
      const redialMs = monoMs() - listening;
      // from listening again: at most one backoff step (the gateway has been dialing a closed
      // port since a was judged dead), then one dial: offer, the new process's first answer
      // (it loads node-datachannel then), ICE, DTLS, HELLO, WELCOME; measured here 0.3-1.7 s
      // for the dial while other test runs loaded the machine
      const bound = sched.bound(backoffMaxMs + 2_000, 6);
      expect(gateway.getStream('s').endpoint_list.find((e) => e.endpoint_id === 'a')).toMatchObject({ kind: 'listening', dial: { state: 'connected' } });
      await until(() => gateway.getStream('s').active[0] === 'a', 15_000, 'fail-back to a', { state: () => gateway.getStream('s').active });
      const reasons = gateway.streamHealth('s').switches.map((s) => s.reason);
      console.log(`[listening] restarted on port ${port}: re-dialed and connected ${redialMs.toFixed(0)} ms after it listened again (${bound.text}); switches ${reasons.join(', ')}`);
      expect(redialMs).toBeLessThan(bound.ms);
      expect(reasons.at(-1)).toBe('failback');
      await gateway.publish('s', 'after fail-back');
      await until(() => a2.chunks.length > 0, 10_000, 'a delivers again');
    } finally {
      sched.stop();
      for (const c of children) c.proc.kill('SIGKILL');
      await gateway.close();
    }
  }, 90_000);
});

describe('listening endpoints: bad input and bad listeners', () => {
  let gateway: Gateway;
  let server: RunningServer;
  const helpers: Server[] = [];
  const listeners: ListeningReceiver[] = [];
  let reference: { rx: ReceiverCore; got: number[] };

  /** A plain HTTP server answering every request with `answer` (or never). */
  async function fakeListener(answer: ((res: import('node:http').ServerResponse) => void) | 'never'): Promise<string> {
    const srv = createServer((req, res) => {
      req.resume();
      if (answer !== 'never') answer(res);
    });
    helpers.push(srv);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`;
  }

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: { error?: { code: string; message: string } } & Record<string, unknown> }> => {
    const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } };
  };

  beforeAll(async () => {
    gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, dialOut: { connectTimeoutMs: 500, backoffInitialMs: 100, backoffMaxMs: 400 } });
    server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    // a reference stream with an in-memory receiver: it must not notice any of the below
    const [g, link] = MemoryTransport.pair();
    const rx = new ReceiverCore({ endpointId: 'ref', dial: async () => (gateway.accept(g, { endpointId: 'ref' }), link) });
    const got: number[] = [];
    rx.on('chunk', (c) => got.push(c.seq));
    await gateway.createStream({ stream_id: 'ref', endpoint_list: ['ref'] });
    await rx.connect();
    reference = { rx, got };
  });

  afterAll(async () => {
    reference.rx.close();
    for (const l of listeners) await l.close();
    for (const s of helpers) {
      s.closeAllConnections();
      s.close();
    }
    await gateway.close();
    await server.close();
  });

  it.each([
    ['another scheme', { endpoint_id: 'x', url: 'ftp://127.0.0.1/', token: LISTENER_TOKEN }, 400, 'MS_BAD_REQUEST'],
    ['credentials in the URL', { endpoint_id: 'x', url: 'http://u:p@127.0.0.1:9/', token: LISTENER_TOKEN }, 400, 'MS_BAD_REQUEST'],
    ['a host outside dialOut.allow', { endpoint_id: 'x', url: 'http://10.9.8.7:9/', token: LISTENER_TOKEN }, 403, 'MS_DIAL_REFUSED'],
    ['a name resolving outside it', { endpoint_id: 'x', url: 'http://no-such-host.invalid/', token: LISTENER_TOKEN }, 403, 'MS_DIAL_REFUSED'],
  ])('the API refuses %s with a coded error', async (_what, entry, status, code) => {
    const created = await api('POST', '/v1/streams', { stream_id: 'bad', endpoint_list: [entry] });
    expect(created.status).toBe(status);
    expect(created.json.error?.code).toBe(code);
    await gateway.createStream({ stream_id: 'ok', endpoint_list: ['web'] });
    const added = await api('POST', '/v1/streams/ok/endpoints', entry);
    expect([added.status, added.json.error?.code]).toEqual([status, code]);
    await gateway.deleteStream('ok');
  });

  it('one endpoint id is one receiver: another url for a listening id is 409 MS_ENDPOINT_CONFLICT', async () => {
    const url = await fakeListener((res) => res.writeHead(500).end());
    expect((await api('POST', '/v1/streams', { stream_id: 'c1', endpoint_list: [{ endpoint_id: 'same', url, token: LISTENER_TOKEN }] })).status).toBe(201);
    const other = await api('POST', '/v1/streams', { stream_id: 'c2', endpoint_list: [{ endpoint_id: 'same', url: `${url}other`, token: LISTENER_TOKEN }] });
    expect([other.status, other.json.error?.code]).toEqual([409, 'MS_ENDPOINT_CONFLICT']);
    // the same target on a second stream is the same receiver: fine
    expect((await api('POST', '/v1/streams', { stream_id: 'c3', endpoint_list: [{ endpoint_id: 'same', url, token: LISTENER_TOKEN }] })).status).toBe(201);
    await gateway.deleteStream('c1');
    await gateway.deleteStream('c3');
  });

  it.each([
    ['answers 500', (res: import('node:http').ServerResponse) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"X","message":"boom"}}'), /answered 500: X boom/],
    ['answers garbage with 201', (res: import('node:http').ServerResponse) => void res.writeHead(201, { 'content-type': 'text/plain' }).end('hello'), /without an SDP answer/],
    ['redirects', (res: import('node:http').ServerResponse) => void res.writeHead(307, { location: 'http://10.0.0.1/' }).end(), /307 \(a redirect: not followed\)/],
    ['never answers', 'never' as const, /no answer within 500 ms/],
  ])('a listener that %s: MS_DIAL_FAILED in the dial state, backoff, nothing else disturbed', async (what, answer, message) => {
    const url = await fakeListener(answer);
    const id = `bad-${what.replace(/\W+/g, '-')}`;
    const before = reference.got.length;
    await gateway.createStream({ stream_id: id, endpoint_list: [{ endpoint_id: id, url, token: LISTENER_TOKEN }] });
    await until(() => (gateway.getStream(id).endpoint_list[0]?.dial?.failures ?? 0) >= 2, 10_000, 'two failed dials', { state: () => gateway.getStream(id).endpoint_list[0]?.dial });
    const dial = gateway.getStream(id).endpoint_list[0]!.dial!;
    expect(dial.last_error?.code).toBe('MS_DIAL_FAILED');
    expect(dial.last_error?.message).toMatch(message);
    expect(dial.state).not.toBe('connected');
    const health = (await api('GET', `/v1/endpoints/${id}/health`)).json;
    expect(health).toMatchObject({ kind: 'listening', connected: false, dial: { url, last_error: { code: 'MS_DIAL_FAILED' } } });
    expect(JSON.stringify(health)).not.toContain(LISTENER_TOKEN);
    for (let i = 0; i < 10; i++) await gateway.publish('ref', `r${i}`);
    await until(() => reference.got.length === before + 10, 5_000, 'the reference stream delivers');
    await gateway.deleteStream(id);
  });

  it('a listener refusing the token: 401 from the listener is the dial error; the right token connects', async () => {
    const rx = await listen({ endpointId: 'tok', token: 'the-listeners-own-secret-0123', rtcConfig: { bindAddress: '127.0.0.1' } });
    listeners.push(rx);
    await gateway.createStream({ stream_id: 'tok', endpoint_list: [{ endpoint_id: 'tok', url: rx.url, token: LISTENER_TOKEN }] });
    await until(() => (gateway.getStream('tok').endpoint_list[0]?.dial?.failures ?? 0) >= 1, 10_000, 'a refused dial');
    expect(gateway.getStream('tok').endpoint_list[0]!.dial!.last_error?.message).toMatch(/answered 401 \(the listener refused the token\): MS_UNAUTHORIZED/);
    expect(rx.status).not.toBe('connected');
    await gateway.deleteStream('tok');
    await gateway.createStream({ stream_id: 'tok', endpoint_list: [{ endpoint_id: 'tok', url: rx.url, token: 'the-listeners-own-secret-0123' }] });
    await until(() => rx.status === 'connected' && gateway.getStream('tok').endpoint_list[0]?.dial?.state === 'connected', 15_000, 'connected with the right token', { state: () => [rx.status, gateway.getStream('tok').endpoint_list[0]?.dial] });
    await gateway.deleteStream('tok');
  }, 30_000);

  it('a listener under another endpoint id: the HELLO check refuses it, the listener reports it and stays open for the right entry', async () => {
    const rx = await listen({ endpointId: 'real-id', token: LISTENER_TOKEN, rtcConfig: { bindAddress: '127.0.0.1' } });
    listeners.push(rx);
    const errors: string[] = [];
    rx.on('error', (e) => errors.push(e.code));
    await gateway.createStream({ stream_id: 'wrong-id', endpoint_list: [{ endpoint_id: 'other-id', url: rx.url, token: LISTENER_TOKEN }] });
    await until(() => errors.includes('MS_UNAUTHORIZED'), 15_000, 'the gateway refused the HELLO', { state: () => errors });
    await gateway.deleteStream('wrong-id');
    expect(rx.status).not.toBe('closed');
    await gateway.createStream({ stream_id: 'right-id', endpoint_list: [{ endpoint_id: 'real-id', url: rx.url, token: LISTENER_TOKEN }] });
    await until(() => rx.status === 'connected', 15_000, 'connected under its own id', { state: () => rx.status });
    await gateway.deleteStream('right-id');
  }, 40_000);

  it('the listener answers bad requests with coded errors and keeps serving', async () => {
    const rx = await listen({ endpointId: 'probe', token: LISTENER_TOKEN });
    listeners.push(rx);
    const post = (headers: Record<string, string>, body: string) => fetch(rx.url, { method: 'POST', headers, body }).then(async (r) => [r.status, ((await r.json()) as { error: { code: string } }).error.code]);
    expect(await post({ 'content-type': 'application/sdp' }, 'v=0\r\n')).toEqual([401, 'MS_UNAUTHORIZED']);
    expect(await post({ authorization: `Bearer ${LISTENER_TOKEN}`, 'content-type': 'text/plain' }, 'v=0\r\n')).toEqual([415, 'MS_UNSUPPORTED_MEDIA_TYPE']);
    expect(await post({ authorization: `Bearer ${LISTENER_TOKEN}`, 'content-type': 'application/sdp' }, 'hello')).toEqual([400, 'MS_BAD_REQUEST']);
    expect(await post({ authorization: `Bearer ${LISTENER_TOKEN}`, 'content-type': 'application/sdp' }, `v=0\r\n${'a'.repeat(70_000)}`)).toEqual([413, 'MS_PAYLOAD_TOO_LARGE']);
    const del = await fetch(`${rx.url}sessions/nope`, { method: 'DELETE', headers: { authorization: `Bearer ${LISTENER_TOKEN}` } });
    expect(del.status).toBe(404);
    const other = await fetch(`${rx.url}elsewhere`, { method: 'GET' });
    expect(other.status).toBe(404);
  });
});

describe('an https listener: the gateway verifies its certificate', () => {
  it('refused on the system CAs (self-signed), accepted with dialOut.caFile or its pinned SHA-256, refused with another pin', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ms-dial-tls-'));
    const cert = await testCertificate(dir);
    const rx = await listen({ endpointId: 'tls', token: LISTENER_TOKEN, tls: { key: readFileSync(cert.keyFile), cert: cert.cert }, rtcConfig: { bindAddress: '127.0.0.1' } });
    const pin = new X509Certificate(cert.cert).fingerprint256;
    /**
     * Dial with these settings until the outcome the test expects shows: `connected`, or a dial
     * error matching `refused` (a connect can also fail on libdatachannel's own race and is
     * re-dialed after the backoff: not the TLS outcome, so it is waited past).
     */
    const outcome = async (dialOut: Record<string, unknown>, refused?: RegExp): Promise<{ state: string | undefined; error: string | undefined }> => {
      const gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, dialOut: { backoffInitialMs: 100, backoffMaxMs: 200, ...dialOut } });
      try {
        await gateway.createStream({ stream_id: 's', endpoint_list: [{ endpoint_id: 'tls', url: rx.url, token: LISTENER_TOKEN }] });
        const dial = () => gateway.getStream('s').endpoint_list[0]?.dial;
        const tlsRefusal = /certificate|self[- ]signed|pinSha256|DEPTH_ZERO|UNABLE_TO_VERIFY/i;
        await until(
          () => (refused ? refused.test(dial()?.last_error?.message ?? '') : dial()?.state === 'connected' || tlsRefusal.test(dial()?.last_error?.message ?? '')),
          15_000,
          refused ? `a dial refused with ${refused}` : 'connected',
          { state: dial },
        );
        return { state: dial()?.state, error: refused ? dial()?.last_error?.message : (tlsRefusal.exec(dial()?.last_error?.message ?? '')?.input ?? undefined) };
      } finally {
        await gateway.close();
      }
    };
    try {
      expect(rx.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const system = await outcome({}, /self[- ]signed|DEPTH_ZERO_SELF_SIGNED_CERT/i);
      expect(system.state).not.toBe('connected');
      expect(await outcome({ caFile: cert.certFile })).toEqual({ state: 'connected', error: undefined });
      expect(await outcome({ pinSha256: [pin] })).toEqual({ state: 'connected', error: undefined });
      expect(await outcome({ pinSha256: [pin.replace(/:/g, '').toLowerCase()] })).toEqual({ state: 'connected', error: undefined });
      const wrong = await outcome({ pinSha256: ['00'.repeat(32)] }, /is not one of dialOut\.pinSha256/);
      expect(wrong.state).not.toBe('connected');
    } finally {
      await rx.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
