import { pino } from 'pino';
import nodeDataChannel from 'node-datachannel';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, serve, type Gateway, type LoopDelaySource, type RunningServer } from '../../gateway/src/index.js';
import { Receiver, type Chunk } from '../../receiver-sdk/src/node.js';
import { until, withDeadline } from '../helpers/poll.js';

const API_KEY = 'admission-key-0123456789';
const bind = { bindAddress: '127.0.0.1' };

/** A WebRTC offer from a peer that will never connect: the gateway's handshake for it stays under way. */
async function strandedOffer(): Promise<{ sdp: string; close: () => void }> {
  const pc = new nodeDataChannel.PeerConnection('stranded', { iceServers: [], bindAddress: '127.0.0.1' });
  pc.createDataChannel('control', { negotiated: true, id: 0 });
  pc.setLocalDescription('offer');
  await until(() => pc.gatheringState() === 'complete', 5_000, 'ICE gathering');
  return { sdp: pc.localDescription()?.sdp ?? '', close: () => pc.close() };
}

async function offer(gateway: Gateway, url: string, endpointId: string, sdp: string): Promise<Response> {
  const { token } = await gateway.issueToken(endpointId);
  return fetch(`${url}/v1/endpoints/${endpointId}/webrtc`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' }, body: sdp, signal: AbortSignal.timeout(10_000) });
}

describe('admission control over real sockets', () => {
  const closers: (() => unknown)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  const start = async (options: Parameters<typeof createGateway>[0]): Promise<{ gateway: Gateway; server: RunningServer }> => {
    const gateway = createGateway({ logLevel: 'silent', webrtc: bind, ...options });
    const server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    closers.push(() => gateway.close(), () => server.close());
    return { gateway, server };
  };

  it('past the handshake budget a new endpoint gets 503 MS_OVERLOADED with Retry-After 1 s, and a receiver given a second instance connects there', async () => {
    // two instances of one deployment: one token secret
    const tokens = { secret: 'admission-shared-token-secret-0123456789' };
    const a = await start({ tokens, admission: { maxPendingHandshakes: 1 } });
    const b = await start({ tokens });
    for (const { gateway } of [a, b]) await gateway.createStream({ stream_id: 's', endpoint_list: ['x', 'y', 'z'] });
    const stranded = await strandedOffer();
    closers.push(stranded.close);
    expect((await offer(a.gateway, a.server.url, 'x', stranded.sdp)).status).toBe(201);
    expect(a.gateway.admission().pending_handshakes).toBe(1);

    const refused = await offer(a.gateway, a.server.url, 'z', stranded.sdp);
    expect(refused.status).toBe(503);
    // past the handshake budget: 1 s (handshakes complete quickly); past the loop budget: retryAfterS (below)
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('MS_OVERLOADED');

    const { token } = await a.gateway.issueToken('y');
    const rx = new Receiver({ gatewayUrl: [a.server.url, b.server.url], endpointId: 'y', token, rtcConfig: bind });
    closers.push(() => rx.close());
    await withDeadline(rx.connect(), 15_000, 'y connected');
    expect(rx.gatewayUrl).toBe(b.server.url);

    const metrics = await (await fetch(`${a.server.url}/metrics`)).text();
    expect(metrics).toMatch(/^mirrorstream_admission_refused_total\{reason="handshakes"\} 2$/m);
    expect(metrics).toMatch(/^mirrorstream_admission_pending_handshakes 1$/m);
    expect(metrics).toMatch(/^mirrorstream_admission_admitting 1$/m);
  });

  it('at a loop delay between the two admission targets a WebTransport session is refused (503, the rate), a WebRTC one admitted', async () => {
    const loop: LoopDelaySource & { p99: number } = { p99: 30, p99Ms: () => loop.p99, reset: () => undefined, stop: () => undefined };
    // minSessions 0: the loop budgets hold from the first session; 30 ms is past webtransportAdmitLoopDelayMs (25), under admitLoopDelayMs (40)
    const { gateway, server } = await start({ loopDelay: loop, admission: { windowMs: 100, minSessions: 0 } });
    await until(() => gateway.admission().webtransport_admit_rate_per_s === 0, 5_000, 'the WebTransport rate at none');
    expect(gateway.admission().admit_rate_per_s).toBeGreaterThan(0);
    const { token } = await gateway.issueToken('wt');
    const refused = await fetch(`${server.url}/v1/endpoints/wt/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect([refused.status, refused.headers.get('retry-after'), body.error.code]).toEqual([503, '1', 'MS_OVERLOADED']);
    expect(body.error.message).toContain('webtransportAdmitLoopDelayMs');
    await gateway.createStream({ stream_id: 's', endpoint_list: ['rtc'] });
    const rtc = new Receiver({ gatewayUrl: server.url, endpointId: 'rtc', token: (await gateway.issueToken('rtc')).token, rtcConfig: bind, transports: ['webrtc'] });
    closers.push(() => rtc.close());
    await withDeadline(rtc.connect(), 15_000, 'the WebRTC receiver connected');
    expect(gateway.admission().refused).toEqual({ loop_delay: 0, rate: 1, handshakes: 0 });
  });

  it('past the event-loop budget: /readyz overloaded, new endpoints refused, the connected one keeps its stream; admitted again once the delay falls', async () => {
    const loop: LoopDelaySource & { p99: number } = { p99: 0, p99Ms: () => loop.p99, reset: () => undefined, stop: () => undefined };
    const logged: { level: number; msg: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(JSON.parse(line) as { level: number; msg: string }) });
    // minSessions 1: the one receiver served stands for a gateway that holds enough for its loop's lateness to be theirs
    const { gateway, server } = await start({ loopDelay: loop, logger, admission: { maxLoopDelayMs: 100, windowMs: 100, windowsToClose: 2, retryAfterS: 7, minSessions: 1 } });
    await gateway.createStream({ stream_id: 's', endpoint_list: ['served', 'late'] });
    const got: Chunk[] = [];
    const served = new Receiver({ gatewayUrl: server.url, endpointId: 'served', token: (await gateway.issueToken('served')).token, rtcConfig: bind });
    closers.push(() => served.close());
    served.on('chunk', (c) => got.push(c));
    await withDeadline(served.connect(), 15_000, 'served connected');

    loop.p99 = 500;
    await until(async () => (await fetch(`${server.url}/readyz`)).status === 503, 5_000, '/readyz 503');
    expect(await (await fetch(`${server.url}/readyz`)).json()).toMatchObject({ ready: false, status: 'overloaded' });
    const stranded = await strandedOffer();
    closers.push(stranded.close);
    const refused = await offer(gateway, server.url, 'late', stranded.sdp);
    expect([refused.status, refused.headers.get('retry-after'), ((await refused.json()) as { error: { code: string } }).error.code]).toEqual([503, '7', 'MS_OVERLOADED']);
    // a refusal is the gateway's answer when full, not an error of its own: not in the error log
    expect(logged.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([]);
    for (let i = 1; i <= 20; i++) await gateway.publish('s', `c${i}`);
    await until(() => got.length === 20, 5_000, 'the served endpoint got every chunk');
    expect(got.map((c) => c.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));

    loop.p99 = 10;
    await until(async () => (await fetch(`${server.url}/readyz`)).status === 200, 5_000, '/readyz 200 again');
    // the admission rate reopens once the worse of the last two windows is under admitLoopDelayMs
    await until(() => (gateway.admission().admit_rate_per_s ?? 0) > 0, 5_000, 'admitting at a rate again');
    const late = new Receiver({ gatewayUrl: server.url, endpointId: 'late', token: (await gateway.issueToken('late')).token, rtcConfig: bind });
    closers.push(() => late.close());
    await withDeadline(late.connect(), 15_000, 'late connected');
    expect(gateway.admission().refused).toEqual({ loop_delay: 1, rate: 0, handshakes: 0 });
  });
});
