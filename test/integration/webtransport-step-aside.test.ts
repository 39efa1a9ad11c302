import { describe, expect, it } from 'vitest';
import { createGateway, serve } from '../../gateway/src/index.js';
import { Receiver } from '../../receiver-sdk/src/node.js';
import type { WebTransportCtor } from '../../receiver-sdk/src/index.js';
import { until, withDeadline } from '../helpers/poll.js';

/**
 * A browser's WebTransport from a plain `http:` gateway URL: the gateway's listener has a
 * certificate it generated, which the WebSocket tunnel cannot pin, and the page's origin is
 * not https. The SDK does not try it: it gives the ticket back, dials WebRTC in the same
 * attempt, says so once, and asks for no more tickets. Played here by the Node SDK with the
 * browser's choice (the tunnel), over real sockets.
 */
describe('WebTransport with no path a browser can trust', () => {
  it('steps aside to WebRTC at once, says so once, and asks for no more tickets', async () => {
    const gateway = createGateway({ logLevel: 'silent', webrtc: { bindAddress: '127.0.0.1' }, limits: { sessionsPerEndpoint: 3 } });
    const server = await serve(gateway, { apiKey: 'step-aside-test-key-01', port: 0 });
    const { token } = await gateway.issueToken('w');
    const requests: string[] = [];
    const sessions: string[] = [];
    const watched: typeof fetch = async (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${String(input).replace(server.url, '').replace(/[\w-]{20,}$/, '<ticket>')}`);
      const res = await fetch(input, init);
      const location = res.headers.get('location');
      if (location) sessions.push(location);
      return res;
    };
    const constructed: string[] = [];
    const Tunnel = class {
      constructor(url: string) {
        constructed.push(url);
        throw new Error('the tunnel is never dialed here');
      }
    } as unknown as WebTransportCtor;
    const statuses: string[] = [];
    const rx = new Receiver({
      gatewayUrl: server.url,
      endpointId: 'w',
      token,
      transports: ['webtransport', 'webrtc'],
      fetch: watched,
      selectWebTransport: () => ({ WebTransport: Tunnel, tunnel: true }),
      reconnect: { nextRetryDelayMs: () => 50 },
    });
    rx.on('status', (status, detail) => statuses.push(`${status}: ${detail}`));
    try {
      await withDeadline(rx.connect(), 15_000, 'connect');
      expect(rx.transport).toBe('webrtc');
      expect(constructed).toEqual([]);
      // two more connections: the gateway ends the WebRTC session each time
      for (let i = 1; i <= 2; i++) {
        expect((await fetch(`${server.url}${sessions.at(-1)}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } })).status).toBe(204);
        await until(() => statuses.filter((s) => s.startsWith('connected')).length > i, 15_000, `connection ${i + 1}`, { state: () => statuses.join(' | ') });
      }
      expect(requests.filter((r) => r.includes('/webtransport'))).toEqual(['POST /v1/endpoints/w/webtransport', 'DELETE /v1/endpoints/w/webtransport/<ticket>']);
      const told = statuses.filter((s) => s.includes('stepped aside'));
      expect(told).toHaveLength(1);
      expect(told[0]).toMatch(/^connected: .*webtransport at http:\/\/127\.0\.0\.1:\d+ stepped aside: WebTransport: no path this browser can trust/);
      // the ticket came back: beside the WebRTC session, both other slots are free
      for (let i = 0; i < 2; i++) expect((await fetch(`${server.url}/v1/endpoints/w/webtransport`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(201);
    } finally {
      rx.close();
      await server.close();
      await gateway.close();
    }
  }, 60_000);
});
