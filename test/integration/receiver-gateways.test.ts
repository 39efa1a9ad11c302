import { describe, expect, it } from 'vitest';
import { createGateway, serve } from '../../gateway/src/index.js';
import { Receiver, type Chunk } from '../../receiver-sdk/src/node.js';
import { until, withDeadline } from '../helpers/poll.js';

describe('a receiver given several gateway URLs (real sockets, WebRTC)', () => {
  it('when its gateway goes away it dials the next one and goes on there', async () => {
    const secret = 'shared-token-secret-0123456789abcdefgh';
    const options = { logLevel: 'silent' as const, tokens: { secret }, webrtc: { bindAddress: '127.0.0.1' }, webtransport: { enabled: false } };
    const [a, b] = [createGateway(options), createGateway(options)];
    const [sa, sb] = await Promise.all([serve(a, { apiKey: 'receiver-gateways-key', port: 0 }), serve(b, { apiKey: 'receiver-gateways-key', port: 0 })]);
    const chunks: Chunk[] = [];
    // instances share the token secret, so a token issued by one is accepted by the other
    const { token } = await a.issueToken('rx');
    const rx = new Receiver({ gatewayUrl: [sa.url, sb.url], endpointId: 'rx', token, rtcConfig: { bindAddress: '127.0.0.1' }, reconnect: { nextRetryDelayMs: () => 100 } });
    rx.on('chunk', (c) => chunks.push(c));
    try {
      for (const g of [a, b]) await g.createStream({ stream_id: 's', endpoint_list: ['rx'] });
      await withDeadline(rx.connect(), 15_000, 'connected');
      expect(rx.gatewayUrl).toBe(sa.url);
      for (let i = 1; i <= 10; i++) await a.publish('s', `a${i}`);
      await until(() => chunks.length === 10, 5_000, '10 chunks from a');
      await sa.close();
      await a.close();
      await until(() => rx.gatewayUrl === sb.url && rx.status === 'connected', 15_000, 'connected to b');
      for (let i = 1; i <= 5; i++) await b.publish('s', `b${i}`);
      await until(() => chunks.length === 15, 5_000, '5 chunks from b');
      expect(chunks.slice(10).map((c) => new TextDecoder().decode(c.payload))).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    } finally {
      rx.close();
      await sb.close();
      await b.close();
    }
  }, 40_000);
});
