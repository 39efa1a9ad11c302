import { afterEach, describe, expect, it } from 'vitest';
import { Receiver, type Chunk, type EpochReset } from '../../receiver-sdk/src/node.js';
import { range } from '../helpers/memory-harness.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { api, kill, killAll, startGateway } from '../helpers/gateway-process.js';
import { until, withDeadline } from '../helpers/poll.js';

/**
 * The restart a user sees: the gateway process (the built CLI, in-memory log) is killed
 * and started again on the same port with the same secrets; the stream is created again
 * and 50 chunks are published. The receiver must notice the new epoch and deliver them.
 */
afterEach(killAll);

describe('stream epochs across a real gateway restart', () => {
  it('kill -9 the gateway, start it again on the same port, re-create the stream, publish 50: the receiver emits reset and delivers all 50', async () => {
    const first = await startGateway(0);
    const port = Number(new URL(first.url).port);
    const stream = { stream_id: 's', endpoint_list: ['a'] };
    await api(first.url, 'POST', '/v1/streams', stream);
    const { token } = (await api(first.url, 'POST', '/v1/endpoints/a/token', {})) as { token: string };
    const rx = new Receiver({ gatewayUrl: first.url, endpointId: 'a', token, rtcConfig: { bindAddress: '127.0.0.1' }, reconnect: { nextRetryDelayMs: () => 100 } });
    const chunks: Chunk[] = [];
    const resets: EpochReset[] = [];
    const statuses: string[] = [];
    rx.on('chunk', (c) => chunks.push({ ...c, payload: new Uint8Array(c.payload) }));
    rx.on('reset', (r) => resets.push(r));
    rx.on('status', (s) => statuses.push(s));
    try {
      await withDeadline(rx.connect(), 15_000, 'receiver connected');
      const batch = (from: number, n: number): unknown => ({ chunks: range(from, from + n - 1).map((i) => ({ payload: `chunk ${i}` })) });
      await api(first.url, 'POST', '/v1/streams/s/chunks', batch(1, 100));
      await until(() => chunks.length === 100, 10_000, '100 chunks before the restart');
      const epoch1 = ((await api(first.url, 'GET', '/v1/streams/s')) as { epoch: string }).epoch;

      await kill(first);
      statuses.length = 0;
      const second = await startGateway(port);
      expect(second.url).toBe(first.url);
      await until(() => statuses.includes('connected'), 15_000, 'receiver reconnected to the new gateway');
      const created = (await api(second.url, 'POST', '/v1/streams', stream)) as { epoch: string };
      const answer = (await api(second.url, 'POST', '/v1/streams/s/chunks', batch(1, 50))) as { first_seq: number; last_seq: number };
      expect(answer).toMatchObject({ first_seq: 1, last_seq: 50 });
      await until(() => chunks.length === 150, 10_000, '50 chunks after the restart');

      expect(created.epoch).not.toBe(epoch1);
      expect(resets).toEqual([{ streamId: 's', oldEpoch: epoch1, newEpoch: created.epoch }]);
      const after = chunks.slice(100);
      expect(after.map((c) => c.seq)).toEqual(range(1, 50));
      expect(after.map((c) => new TextDecoder().decode(c.payload))).toEqual(range(1, 50).map((i) => `chunk ${i}`));
      console.log(`[epoch restart] reconnected, reset ${epoch1} → ${created.epoch}, delivered ${after.length} of 50 after the restart`);
    } finally {
      rx.close();
    }
  }, 60_000);
});

describe('a real gateway restart with the JetStream log', () => {
  let nats: NatsServer | undefined;
  afterEach(async () => {
    await nats?.close();
    nats = undefined;
  });

  it('kill -9 right after publishing, start again: the stream is back with its epoch, the receiver resumes with no reset and no loss', async () => {
    nats = await startNats();
    const withNats = ['--nats', nats.url];
    const first = await startGateway(0, withNats);
    const port = Number(new URL(first.url).port);
    const created = (await api(first.url, 'POST', '/v1/streams', { stream_id: 's', endpoint_list: ['a'] })) as { epoch: string };
    const { token } = (await api(first.url, 'POST', '/v1/endpoints/a/token', {})) as { token: string };
    const rx = new Receiver({ gatewayUrl: first.url, endpointId: 'a', token, rtcConfig: { bindAddress: '127.0.0.1' }, reconnect: { nextRetryDelayMs: () => 100 } });
    const chunks: Chunk[] = [];
    const resets: EpochReset[] = [];
    rx.on('chunk', (c) => chunks.push({ ...c, payload: new Uint8Array(c.payload) }));
    rx.on('reset', (r) => resets.push(r));
    try {
      await withDeadline(rx.connect(), 15_000, 'receiver connected');
      const batch = (from: number, n: number): unknown => ({ chunks: range(from, from + n - 1).map((i) => ({ payload: `chunk ${i}` })) });
      await api(first.url, 'POST', '/v1/streams/s/chunks', batch(1, 50));
      await until(() => chunks.length === 50, 10_000, '50 chunks');
      // acknowledged to the producer, then the process dies before the receiver has them all
      const acked = (await api(first.url, 'POST', '/v1/streams/s/chunks', batch(51, 50))) as { last_seq: number };
      expect(acked.last_seq).toBe(100);
      await kill(first);
      const second = await startGateway(port, withNats);
      const restored = (await api(second.url, 'GET', '/v1/streams/s')) as { epoch: string; last_seq: number };
      expect(restored).toMatchObject({ epoch: created.epoch, last_seq: 100 });
      await api(second.url, 'POST', '/v1/streams/s/chunks', batch(101, 50));
      await until(() => chunks.length >= 150, 15_000, '150 chunks after the restart');
      expect(resets).toEqual([]);
      expect(chunks.map((c) => c.seq)).toEqual(range(1, 150));
      expect(chunks.map((c) => new TextDecoder().decode(c.payload))).toEqual(range(1, 150).map((i) => `chunk ${i}`));
      console.log(`[jetstream restart] epoch ${created.epoch} kept, ${chunks.length} chunks in order, no reset`);
    } finally {
      rx.close();
    }
  }, 60_000);
});
