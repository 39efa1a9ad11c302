import { describe, expect, it } from 'vitest';
import { ManualClock, MirrorstreamError, Receiver, sessionUrl } from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

const missingLibrary = async (): Promise<typeof RTCPeerConnection> => {
  throw new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'WebRTC in Node needs node-datachannel');
};

describe('Receiver transport choice', () => {
  it('a transport whose library is missing fails connect() with MS_TRANSPORT_UNAVAILABLE instead of retrying forever', async () => {
    const rx = new Receiver({ gatewayUrl: 'http://127.0.0.1:9', endpointId: 'a', token: 't', clock: new ManualClock(), loadRTCPeerConnection: missingLibrary });
    await expect(rx.connect()).rejects.toMatchObject({ code: 'MS_TRANSPORT_UNAVAILABLE' });
    expect(rx.status).toBe('closed');
  });

  it('when another transport fails for a reason that may pass, the receiver keeps retrying', async () => {
    const clock = new ManualClock();
    let signalingCalls = 0;
    const unavailableGateway = (async () => {
      signalingCalls++;
      return new Response(JSON.stringify({ error: { code: 'MS_GATEWAY_CLOSED', message: 'restarting' } }), { status: 503 });
    }) as typeof fetch;
    const rx = new Receiver({
      gatewayUrl: 'http://127.0.0.1:9',
      endpointId: 'a',
      token: 't',
      clock,
      transports: ['webrtc', 'webtransport'],
      loadRTCPeerConnection: missingLibrary,
      selectWebTransport: () => {
        throw new Error('not reached: signaling fails first');
      },
      fetch: unavailableGateway,
      reconnect: { nextRetryDelayMs: () => 100 },
    });
    const statuses: string[] = [];
    rx.on('status', (s) => statuses.push(s));
    const connecting = rx.connect();
    connecting.catch(() => undefined);
    await settle();
    clock.advance(100);
    await settle();
    expect(signalingCalls).toBe(2);
    expect(statuses).toEqual(['connecting', 'reconnecting', 'reconnecting', 'reconnecting']);
    rx.close();
    await expect(connecting).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED' });
  });
});

describe('Receiver with several gateway URLs', () => {
  it('tries each gateway in turn (all transports of one, then the next) and starts over after the last', async () => {
    const clock = new ManualClock();
    const asked: string[] = [];
    const refuse = (async (url: string | URL | Request) => {
      asked.push(new URL(String(url)).origin);
      return new Response('{}', { status: 503 });
    }) as typeof fetch;
    const rx = new Receiver({
      gatewayUrl: ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'],
      endpointId: 'a',
      token: 't',
      clock,
      transports: ['webtransport'],
      selectWebTransport: () => {
        throw new Error('not reached: signaling fails first');
      },
      fetch: refuse,
      reconnect: { nextRetryDelayMs: () => 100 },
    });
    const connecting = rx.connect();
    connecting.catch(() => undefined);
    await settle();
    clock.advance(100);
    await settle();
    expect(asked).toEqual(['http://10.0.0.1:8080', 'http://10.0.0.2:8080', 'http://10.0.0.1:8080', 'http://10.0.0.2:8080']);
    rx.close();
  });

  it('needs at least one URL', () => {
    expect(() => new Receiver({ gatewayUrl: [], endpointId: 'a', token: 't', loadRTCPeerConnection: missingLibrary })).toThrowError(TypeError);
  });
});

describe('WebTransport session URL', () => {
  const ticket = {
    url: 'https://10.0.0.1:4433/v1/wt?ticket=abc',
    backend: 'http2' as const,
    certificate_hashes: [],
    tunnel_path: '/v1/wt?ticket=abc',
  };

  it('the tunnel takes the gateway base when that is HTTPS (a TLS proxy in front), keeping its path prefix', () => {
    expect(sessionUrl(ticket, 'https://feeds.example.com/gw1', true)).toBe('https://feeds.example.com/gw1/v1/wt?ticket=abc');
  });

  it('otherwise the listener URL: a plain-HTTP base, no tunnel, an older gateway, a tunnel path that is not one', () => {
    expect(sessionUrl(ticket, 'http://127.0.0.1:8080', true)).toBe(ticket.url);
    expect(sessionUrl(ticket, 'https://feeds.example.com', false)).toBe(ticket.url);
    expect(sessionUrl({ ...ticket, tunnel_path: undefined }, 'https://feeds.example.com', true)).toBe(ticket.url);
    expect(sessionUrl({ ...ticket, tunnel_path: '//evil.example/v1/wt?ticket=abc' }, 'https://feeds.example.com', true)).toBe(ticket.url);
    expect(sessionUrl({ ...ticket, tunnel_path: 42 as unknown as string }, 'https://feeds.example.com', true)).toBe(ticket.url);
  });

  it('a relative base resolves against the page', () => {
    const g = globalThis as { location?: unknown };
    const before = Object.getOwnPropertyDescriptor(g, 'location');
    Object.defineProperty(g, 'location', { value: { href: 'https://site.example/app/index.html' }, configurable: true });
    try {
      expect(sessionUrl(ticket, '/gw2', true)).toBe('https://site.example/gw2/v1/wt?ticket=abc');
    } finally {
      if (before) Object.defineProperty(g, 'location', before);
      else delete g.location;
    }
  });
});
