import { describe, expect, it } from 'vitest';
import { createGateway, MemoryTransport, serve, type Gateway, type GatewayOptions } from '../../gateway/src/index.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { range } from '../helpers/memory-harness.js';
import { natsForFile } from '../helpers/nats-for-file.js';
import { eventually, until } from '../helpers/poll.js';

/**
 * The JetStream log against a real nats-server (R1, one node): chunks acked only once
 * stored, idempotent retries, a restart that keeps epochs, cursors and chunks, and a NATS
 * outage answered with a retryable MS_LOG_UNAVAILABLE.
 */
const natsServer = natsForFile();

let prefixSeq = 0;
function jetstreamGateway(prefix: string, extra: GatewayOptions = {}): Gateway {
  return createGateway({ logLevel: 'silent', log: { kind: 'jetstream', nats: { servers: [natsServer().url], prefix, requestTimeoutMs: 1_000 } }, ...extra });
}

/** An in-process receiver on a MemoryTransport, dialing whichever gateway `target()` is now. */
function receiver(target: () => Gateway, id: string) {
  const chunks: Chunk[] = [];
  const resets: unknown[] = [];
  const core = new ReceiverCore({
    endpointId: id,
    reconnect: { nextRetryDelayMs: () => 50 },
    dial: async () => {
      const [g, r] = MemoryTransport.pair();
      target().accept(g, { endpointId: id });
      return r;
    },
  });
  core.on('chunk', (c) => chunks.push(c));
  core.on('reset', (r) => resets.push(r));
  return { core, chunks, resets };
}

describe('JetStream log (R1)', () => {
  it('a restarted gateway brings back the stream with its epoch, chunks and cursors: the receiver resumes, no reset, no loss', async () => {
    const prefix = `t${++prefixSeq}`;
    let gateway = jetstreamGateway(prefix);
    await gateway.start();
    await gateway.createStream({ stream_id: 'feed.1:a', endpoint_list: ['rx'] });
    const epoch = gateway.getStream('feed.1:a').epoch;
    const rx = receiver(() => gateway, 'rx');
    await rx.core.connect();
    for (let i = 1; i <= 100; i++) expect((await gateway.publish('feed.1:a', `c${i}`)).seq).toBe(i);
    await until(() => rx.chunks.length === 100, 5_000, '100 chunks');
    // the acks are in (close() writes the cursor they moved)
    await until(() => gateway.getStream('feed.1:a').endpoint_list[0]?.last_acked_seq === 100, 5_000, 'acked through 100');
    await gateway.close();
    // no END for a stored stream: the receiver keeps its position and epoch for the next gateway
    expect(rx.core.positions()).toEqual({ 'feed.1:a': 100 });
    expect(rx.core.epochs()).toEqual({ 'feed.1:a': epoch });

    gateway = jetstreamGateway(prefix);
    await gateway.start();
    const info = gateway.getStream('feed.1:a');
    expect(info).toMatchObject({ epoch, first_seq: 1, last_seq: 100 });
    expect(info.endpoint_list[0]?.last_acked_seq).toBe(100);
    for (let i = 101; i <= 150; i++) await gateway.publish('feed.1:a', `c${i}`);
    await until(() => rx.chunks.length === 150, 10_000, '150 chunks after the restart');
    expect(rx.resets).toEqual([]);
    expect(rx.chunks.map((c) => c.seq)).toEqual(range(1, 150));
    expect(rx.chunks.map((c) => new TextDecoder().decode(c.payload))).toEqual(range(1, 150).map((i) => `c${i}`));
    rx.core.close();
    await gateway.close();
  });

  it('mirror: an endpoint removed, the gateway restarted, the endpoint added back: it resumes from its stored cursor, not the oldest chunk', async () => {
    const prefix = `t${++prefixSeq}`;
    let gateway = jetstreamGateway(prefix);
    await gateway.start();
    await gateway.createStream({ stream_id: 'm', mode: 'mirror', endpoint_list: ['a', 'b'] });
    const b = receiver(() => gateway, 'b');
    await b.core.connect();
    for (let i = 1; i <= 100; i++) await gateway.publish('m', `c${i}`);
    await until(() => b.chunks.length === 100, 5_000, '100 chunks');
    // the acks are in (close() writes the cursor they moved)
    await until(() => gateway.getStream('m').endpoint_list.find((e) => e.endpoint_id === 'b')?.last_acked_seq === 100, 5_000, 'acked through 100');
    await gateway.removeEndpoint('m', 'b');
    await gateway.close();

    gateway = jetstreamGateway(prefix);
    await gateway.start();
    for (let i = 101; i <= 150; i++) await gateway.publish('m', `c${i}`);
    await gateway.addEndpoint('m', { endpoint_id: 'b' });
    await until(() => b.chunks.length === 150, 10_000, '150 chunks after the re-add');
    expect(b.chunks.map((c) => c.seq)).toEqual(range(1, 150));
    // from its own last ack (100) on: 50 sent, not the 150 retained
    expect(gateway.streamHealth('m').endpoints.find((e) => e.endpoint_id === 'b')?.chunks_sent).toBe(50);
    b.core.close();
    await gateway.close();
  });

  it('what JetStream trimmed stays trimmed after a restart: the window starts where JetStream does', async () => {
    const prefix = `t${++prefixSeq}`;
    let gateway = jetstreamGateway(prefix);
    await gateway.start();
    await gateway.createStream({ stream_id: 's', endpoint_list: [], retention: { max_chunks: 100 } });
    await gateway.publishBatch('s', range(1, 150).map((i) => ({ payload: new TextEncoder().encode(`${i}`), key: `k${i % 3}`, layer: i % 4 })));
    await gateway.close();
    gateway = jetstreamGateway(prefix);
    await gateway.start();
    expect(gateway.getStream('s')).toMatchObject({ first_seq: 51, last_seq: 150, retained_chunks: 100 });
    await gateway.close();
  });

  it('a retried publish with the same idempotency key appends nothing twice; the answer names the original seqs', async () => {
    const gateway = jetstreamGateway(`t${++prefixSeq}`);
    await gateway.start();
    await gateway.createStream({ stream_id: 's', endpoint_list: [] });
    const batch = range(1, 5).map((i) => ({ payload: new TextEncoder().encode(`${i}`) }));
    const first = await gateway.publishBatch('s', batch, { idempotencyKey: 'order-77' });
    await gateway.publish('s', 'other');
    const again = await gateway.publishBatch('s', batch, { idempotencyKey: 'order-77' });
    expect(first).toMatchObject({ first_seq: 1, last_seq: 5, count: 5 });
    expect(again).toMatchObject({ first_seq: 1, last_seq: 5, count: 5 });
    expect(gateway.getStream('s').last_seq).toBe(6);
    await gateway.close();
  });

  it('NATS down: publishing answers 503 MS_LOG_UNAVAILABLE (retryable, Retry-After) and acks nothing; NATS back: it goes on', async () => {
    const gateway = jetstreamGateway(`t${++prefixSeq}`);
    await gateway.start();
    const server = await serve(gateway, { apiKey: 'jetstream-test-key-0123', host: '127.0.0.1', port: 0 });
    const post = (body: unknown, idempotencyKey?: string): Promise<Response> =>
      fetch(`${server.url}/v1/streams/s/chunks`, {
        method: 'POST',
        headers: { authorization: 'Bearer jetstream-test-key-0123', 'content-type': 'application/json', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
        body: JSON.stringify(body),
      });
    try {
      await gateway.createStream({ stream_id: 's', endpoint_list: [] });
      expect((await post({ chunks: [{ payload: 'before' }] })).status).toBe(200);
      await natsServer().kill();
      const down = await post({ chunks: [{ payload: 'while down' }] }, 'retry-me');
      expect(down.status).toBe(503);
      expect(down.headers.get('retry-after')).toBe('1');
      expect(((await down.json()) as { error: { code: string } }).error.code).toBe('MS_LOG_UNAVAILABLE');
      expect(gateway.getStream('s').last_seq).toBe(1);
      await natsServer().restart();
      // the producer retries the refused request with its idempotency key until it is taken
      let answer: Response | undefined;
      await until(async () => (answer = await post({ chunks: [{ payload: 'while down' }] }, 'retry-me')).status === 200, 10_000, 'the retried publish taken', {
        everyMs: 100,
        state: () => answer?.status,
      });
      expect(await answer?.json()).toMatchObject({ first_seq: 2, last_seq: 2 });
      // and once more (its answer was lost, say): the same seq, nothing appended
      expect(await (await post({ chunks: [{ payload: 'while down' }] }, 'retry-me')).json()).toMatchObject({ first_seq: 2, last_seq: 2 });
      expect(gateway.getStream('s').last_seq).toBe(2);
    } finally {
      await server.close();
      await gateway.close();
    }
  }, 30_000);
});

describe('two gateway instances on one NATS', () => {
  it('share specs (create, change, delete on one, seen on the other), chunks (published on one, delivered by the other) and cursors', async () => {
    const prefix = `t${++prefixSeq}`;
    const [a, b] = [jetstreamGateway(prefix), jetstreamGateway(prefix)];
    // both create the KV buckets at once: one may be refused meanwhile (nats-server answers
    // "subjects overlap" to the second of two concurrent creates), a retryable MS_LOG_UNAVAILABLE;
    // start() is retried on it, as its contract asks of callers (the CLI does the same)
    const retryable = (error: unknown): boolean => (error as { retryable?: boolean }).retryable === true;
    await Promise.all([a, b].map((g) => eventually(() => g.start(), 10_000, 'gateway started', { retryIf: retryable })));
    const rx = receiver(() => b, 'rx');
    const ends: string[] = [];
    rx.core.on('end', (e) => ends.push(e.reason));
    try {
      await a.createStream({ stream_id: 's', endpoint_list: ['rx'] });
      const epoch = a.getStream('s').epoch;
      await until(() => b.listStreams().some((s) => s.stream_id === 's'), 5_000, 'b has the stream');
      expect(b.getStream('s').epoch).toBe(epoch);
      await rx.core.connect();
      for (let i = 1; i <= 20; i++) await a.publish('s', `c${i}`);
      // (once, in a full CI run, not within 5 s: the state says where the chunks were)
      await until(() => rx.chunks.length === 20, 5_000, '20 chunks through b', {
        state: () => ({ received: rx.chunks.length, receiver: rx.core.status, a: a.getStream('s').last_seq, b: b.getStream('s').last_seq, onB: b.getStream('s').endpoint_list[0] }),
      });
      expect(rx.chunks.map((c) => c.seq)).toEqual(range(1, 20));
      // b's receiver acked: the cursor reaches a through KV
      await until(() => a.getStream('s').endpoint_list[0]?.last_acked_seq === 20, 5_000, "a sees rx's cursor");
      await a.addEndpoint('s', { endpoint_id: 'rx2', priority: 0 });
      await until(() => b.getStream('s').endpoint_list.map((e) => e.endpoint_id).join() === 'rx2,rx', 5_000, 'b has the new endpoint list');
      await b.setPolicy('s', { overflow: 'drop-oldest' });
      await until(() => a.getStream('s').policy.overflow === 'drop-oldest', 5_000, 'a has the new policy');
      await a.deleteStream('s');
      await until(() => !b.listStreams().some((s) => s.stream_id === 's'), 5_000, 'b dropped the stream');
      await until(() => ends.includes('deleted'), 5_000, 'rx told END');
    } finally {
      rx.core.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a change on one instance right after a change on the other starts from what the other stored (no stale list)', async () => {
    const prefix = `t${++prefixSeq}`;
    const [a, b] = [jetstreamGateway(prefix), jetstreamGateway(prefix)];
    // both create the KV buckets at once: one may be refused meanwhile (nats-server answers
    // "subjects overlap" to the second of two concurrent creates), a retryable MS_LOG_UNAVAILABLE;
    // start() is retried on it, as its contract asks of callers (the CLI does the same)
    const retryable = (error: unknown): boolean => (error as { retryable?: boolean }).retryable === true;
    await Promise.all([a, b].map((g) => eventually(() => g.start(), 10_000, 'gateway started', { retryIf: retryable })));
    try {
      await a.createStream({ stream_id: 's', endpoint_list: ['x', 'y', 'z'] });
      await until(() => b.listStreams().some((s) => s.stream_id === 's'), 5_000, 'b has the stream');
      // like a client behind a load balancer: each call may land on the other instance
      for (let round = 0; round < 20; round++) {
        const [first, second] = round % 2 === 0 ? [a, b] : [b, a];
        await first.removeEndpoint('s', 'y');
        await second.addEndpoint('s', { endpoint_id: 'y', priority: round % 3 });
        await first.reorderEndpoints('s', ['z', 'y', 'x']);
        const policy = round % 2 === 0 ? 'drop-oldest' : 'backpressure';
        await second.setPolicy('s', { overflow: policy });
        // what an instance wrote stays: the watch bringing back older changes must not take it back
        for (let i = 0; i < 5; i++) {
          expect(second.getStream('s').policy.overflow, `round ${round}, ${i * 10} ms after the write`).toBe(policy);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      const list = (g: Gateway): string => g.getStream('s').endpoint_list.map((e) => e.endpoint_id).join();
      await until(() => list(a) === 'z,y,x' && list(b) === 'z,y,x', 5_000, 'both instances have the last list');
      expect(a.getStream('s').policy.overflow).toBe('backpressure');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
