import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { Gateway, RunningServer } from '../../gateway/src/index.js';
import { until } from '../helpers/poll.js';
import { startGateway } from '../helpers/webrtc-scenario.js';

/**
 * The browser's WebSocket tunnel on the gateway's HTTP port (`/v1/wt`), relayed to the
 * WebTransport listener: the handshake over real sockets, and every refusal as a coded JSON
 * answer. (Chromium carries a stream over it through nginx in test/e2e/nginx-origin.test.ts.)
 */
interface UpgradeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw WebSocket upgrade, as the library's tunnel client sends it. */
function upgrade(url: string, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, {
      method,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-protocol': 'webtransport_kDraft2, webtransport_kDraft1',
        ...headers,
      },
      timeout: 5_000,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', reject);
    req.end(body);
  });
}

async function ticket(gateway: Gateway, server: RunningServer, endpointId: string): Promise<{ url: string; tunnel_path: string }> {
  const { token } = await gateway.issueToken(endpointId);
  const res = await fetch(`${server.url}/v1/endpoints/${endpointId}/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(201);
  return (await res.json()) as { url: string; tunnel_path: string };
}

const errorCode = (a: UpgradeAnswer): unknown => (JSON.parse(a.body) as { error: { code: string } }).error.code;

describe('WebTransport tunnel on the HTTP port', () => {
  let gateway: Gateway | undefined;
  let server: RunningServer | undefined;

  afterEach(async () => {
    await gateway?.close();
    await server?.close();
    gateway = server = undefined;
  });

  it('a live ticket upgrades on the HTTP port (the listener answers through the relay); once used, it is refused', async () => {
    ({ gateway, server } = await startGateway('node-datachannel'));
    const t = await ticket(gateway, server, 'tun1');
    expect(t.tunnel_path).toMatch(/^\/v1\/wt\?ticket=[\w-]+$/);
    expect(new URL(t.url).search).toBe(new URL(t.tunnel_path, 'http://x').search);
    // the library's client asks for `//v1/wt`
    const ok = await upgrade(server.url, `/${t.tunnel_path}`);
    expect(ok.status).toBe(101);
    expect(ok.headers['sec-websocket-protocol']).toBe('webtransport_kDraft2');
    const again = await upgrade(server.url, t.tunnel_path);
    expect(again.status).toBe(401);
    expect(errorCode(again)).toBe('MS_UNAUTHORIZED');
  });

  it('a relay that ends before its session gives the ticket back: the endpoint may ask for another at once', async () => {
    ({ gateway, server } = await startGateway('node-datachannel', { limits: { sessionsPerEndpoint: 1 } }));
    const t = await ticket(gateway, server, 'tun5');
    const { token } = await gateway.issueToken('tun5');
    const again = (): Promise<Response> => fetch(`${server!.url}/v1/endpoints/tun5/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    const held = await again();
    expect([held.status, ((await held.json()) as { error: { code: string } }).error.code]).toEqual([429, 'MS_TOO_MANY_SESSIONS']);
    // the tunnel opens (101) and the client goes away before its session: the ticket is given back
    expect((await upgrade(server.url, t.tunnel_path)).status).toBe(101);
    await until(async () => (await again()).status === 201, 5_000, 'a new ticket after the relay ended', { everyMs: 250 });
  });

  it('a relay whose hop to the listener fails (the listener presents another certificate) answers 503 MS_TRANSPORT_CLOSED and gives the ticket back at once', async () => {
    ({ gateway, server } = await startGateway('node-datachannel', { limits: { sessionsPerEndpoint: 1 } }));
    const t = await ticket(gateway, server, 'tun6');
    // the listener's certificate as the relay expects it, one byte off: the real TLS hop fails its pin
    const target = gateway.webTransportTunnelTarget.bind(gateway);
    gateway.webTransportTunnelTarget = async (path) => {
      const real = await target(path);
      const pin = Uint8Array.from(real.certificateSha256);
      pin[0] = (pin[0] ?? 0) ^ 0xff;
      return { ...real, certificateSha256: pin };
    };
    const failed = await upgrade(server.url, t.tunnel_path);
    expect([failed.status, errorCode(failed)]).toEqual([503, 'MS_TRANSPORT_CLOSED']);
    expect(failed.body).toContain('another certificate');
    // no wait: the slot (sessionsPerEndpoint 1) is free as soon as the refusal is out
    const { token } = await gateway.issueToken('tun6');
    const next = await fetch(`${server.url}/v1/endpoints/tun6/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(next.status).toBe(201);
  });

  it('refuses with a coded JSON error: a made-up ticket, not a WebSocket, a closing gateway', async () => {
    ({ gateway, server } = await startGateway('node-datachannel'));
    // before any ticket (no listener yet) and after one
    const early = await upgrade(server.url, '/v1/wt?ticket=made-up');
    expect([early.status, errorCode(early)]).toEqual([401, 'MS_UNAUTHORIZED']);
    await ticket(gateway, server, 'tun2');
    const madeUp = await upgrade(server.url, '/v1/wt?ticket=made-up');
    expect([madeUp.status, errorCode(madeUp)]).toEqual([401, 'MS_UNAUTHORIZED']);
    const noTicket = await upgrade(server.url, '/v1/wt');
    expect([noTicket.status, errorCode(noTicket)]).toEqual([401, 'MS_UNAUTHORIZED']);
    const h2c = await upgrade(server.url, '/v1/wt?ticket=x', { upgrade: 'h2c' });
    expect([h2c.status, errorCode(h2c)]).toEqual([400, 'MS_BAD_REQUEST']);
    const post = await upgrade(server.url, '/v1/wt?ticket=x', {}, 'POST');
    expect([post.status, errorCode(post)]).toEqual([400, 'MS_BAD_REQUEST']);
    // the HTTP API still answers after all that
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);

    const closing = gateway.close();
    const refused = await upgrade(server.url, '/v1/wt?ticket=x');
    expect([refused.status, errorCode(refused)]).toEqual([503, 'MS_GATEWAY_CLOSED']);
    await closing;
  });

  it('one relay per ticket: of two upgrades at once with one ticket, one is relayed, the other answered 401', async () => {
    ({ gateway, server } = await startGateway('node-datachannel'));
    const t = await ticket(gateway, server, 'tun4');
    const answers = await Promise.all([upgrade(server.url, t.tunnel_path), upgrade(server.url, t.tunnel_path)]);
    expect(answers.map((a) => a.status).sort()).toEqual([101, 401]);
    expect(errorCode(answers.find((a) => a.status === 401)!)).toBe('MS_UNAUTHORIZED');
  });

  it('an Upgrade header elsewhere is ignored, as before the tunnel: the request is served as plain HTTP (one with a body: 400)', async () => {
    ({ gateway, server } = await startGateway('node-datachannel'));
    // curl --http2 on plain http sends this
    const h2c = await upgrade(server.url, '/healthz', { connection: 'Upgrade, HTTP2-Settings', upgrade: 'h2c', 'http2-settings': 'AAMAAABkAAQAoAAAAAIAAAAA' });
    expect(h2c.status).toBe(200);
    expect((JSON.parse(h2c.body) as { status: string }).status).toBe('ok');
    const api = await upgrade(server.url, '/v1/streams');
    expect([api.status, errorCode(api)]).toEqual([401, 'MS_UNAUTHORIZED']);
    const withBody = await upgrade(server.url, '/v1/streams', { connection: 'Upgrade', upgrade: 'h2c', 'content-type': 'application/json' }, 'POST', '{"stream_id":"x","endpoint_list":["a"]}');
    expect([withBody.status, errorCode(withBody)]).toEqual([400, 'MS_BAD_REQUEST']);
    expect(gateway.listStreams()).toEqual([]);
  });

  it('a gateway without WebTransport has no tunnel', async () => {
    ({ gateway, server } = await startGateway('node-datachannel', { webtransport: { enabled: false } }));
    const answer = await upgrade(server.url, '/v1/wt?ticket=x');
    expect([answer.status, errorCode(answer)]).toEqual([404, 'MS_NOT_FOUND']);
  });

  it('relays a session whose ticket is live and closes it when the gateway stops', async () => {
    ({ gateway, server } = await startGateway('node-datachannel'));
    const t = await ticket(gateway, server, 'tun3');
    const { closed } = await new Promise<{ closed: Promise<void> }>((resolve, reject) => {
      const req = request(`${server!.url}${t.tunnel_path}`, {
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
          'sec-websocket-protocol': 'webtransport_kDraft2',
        },
      });
      req.on('upgrade', (res, socket) => {
        expect(res.statusCode).toBe(101);
        socket.on('error', () => undefined);
        resolve({ closed: new Promise<void>((done) => socket.once('close', () => done())) });
      });
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    const stopped = Promise.all([gateway.close(), server.close()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('tunnel still open 10 s after the gateway stopped')), 10_000)))]);
    clearTimeout(timer);
    await stopped;
    gateway = server = undefined;
  });
});
