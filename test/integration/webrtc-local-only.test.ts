import dgram from 'node:dgram';
import dns from 'node:dns';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { webrtcSelfTest } from '../../gateway/src/transports/webrtc/index.js';
import { Receiver } from '../../receiver-sdk/src/node.js';
import { startGateway } from '../helpers/webrtc-scenario.js';
import { until } from '../helpers/poll.js';

/**
 * werift falls back to stun.l.google.com even with `iceServers: []`; the gateway must
 * not send a single packet or DNS lookup off the machine. We watch every UDP send and
 * DNS lookup made by this process while a session comes up and carries data.
 */
describe('no traffic leaves the machine', () => {
  afterEach(() => vi.restoreAllMocks());

  it('werift self-test finds every internal it reads', async () => {
    expect(await webrtcSelfTest({ engine: 'werift', iceServers: [], connectTimeoutMs: 10_000, icePortCount: 1 })).toEqual([]);
  });

  it('a werift session on 127.0.0.1 sends UDP only to 127.0.0.1 and looks up no STUN host', async () => {
    const destinations = new Set<string>();
    const send = dgram.Socket.prototype.send;
    vi.spyOn(dgram.Socket.prototype, 'send').mockImplementation(function (this: dgram.Socket, ...args: unknown[]) {
      // (msg, port, address, cb) or (msg, offset, length, port, address, cb)
      const portAt = typeof args[1] === 'number' && typeof args[2] === 'number' ? 3 : 1;
      destinations.add(String(args[portAt + 1]));
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as typeof send);
    const lookups: string[] = [];
    const lookup = dns.lookup;
    vi.spyOn(dns, 'lookup').mockImplementation(((host: string, ...rest: unknown[]) => {
      lookups.push(host);
      return (lookup as (...a: unknown[]) => void)(host, ...rest);
    }) as typeof dns.lookup);

    const { gateway, server } = await startGateway('werift');
    try {
      gateway.createStream({ stream_id: 's', endpoint_list: ['local'] });
      const { token } = await gateway.issueToken('local');
      const rx = new Receiver({ gatewayUrl: server.url, endpointId: 'local', token, rtcConfig: { bindAddress: '127.0.0.1' } });
      let got = 0;
      rx.on('chunk', () => got++);
      await rx.connect();
      for (let i = 0; i < 100; i++) await gateway.publish('s', `x${i}`);
      await until(() => got === 100, 5_000, 'delivery');
      await new Promise((r) => setTimeout(r, 1_500)); // give a background STUN attempt time to show
      rx.close();
    } finally {
      await gateway.close();
      await server.close();
    }
    expect(destinations.size).toBeGreaterThan(0);
    expect([...destinations]).toEqual(['127.0.0.1']);
    expect(lookups.filter((h) => /stun|google/i.test(h))).toEqual([]);
  }, 20_000);
});
