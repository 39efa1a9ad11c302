import { describe, expect, it } from 'vitest';
import { createGateway, MemoryTransport, serve, type Gateway } from '../../gateway/src/index.js';
import { MAX_IN_FLIGHT } from '../../gateway/src/storage/jetstream/publisher.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { range } from '../helpers/memory-harness.js';
import { natsForFile } from '../helpers/nats-for-file.js';
import { until } from '../helpers/poll.js';

/**
 * The append path on JetStream (R1): publishes of every request share one bounded, pipelined
 * publisher per NATS connection. Concurrent batches (in process and over HTTP) and a batch
 * larger than the publisher's window each get consecutive seqs, in their own order, and
 * exactly what was acked is stored; a retried large batch appends nothing twice.
 */
const natsServer = natsForFile();

let prefixSeq = 0;
const jetstreamGateway = (prefix: string): Gateway => createGateway({ logLevel: 'silent', log: { kind: 'jetstream', nats: { servers: [natsServer().url], prefix } } });
const text = (c: Chunk): string => new TextDecoder().decode(c.payload);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every chunk of `stream` as a fresh receiver gets it from `gateway` (mirror mode: from the first retained seq). */
async function readAll(gateway: Gateway, stream: string, count: number): Promise<Chunk[]> {
  await gateway.addEndpoint(stream, { endpoint_id: 'reader' });
  const chunks: Chunk[] = [];
  const rx = new ReceiverCore({
    endpointId: 'reader',
    dial: async () => {
      const [g, r] = MemoryTransport.pair();
      gateway.accept(g, { endpointId: 'reader' });
      return r;
    },
  });
  rx.on('chunk', (c) => chunks.push(c));
  await rx.connect();
  await until(() => chunks.length >= count, 20_000, `${count} chunks read back`, { state: () => chunks.length }).finally(() => rx.close());
  return chunks;
}

describe('JetStream append path', () => {
  it('concurrent batches and one larger than the window: each batch takes consecutive seqs in its order, all of them stored', async () => {
    const gateway = jetstreamGateway(`p${++prefixSeq}`);
    await gateway.start();
    try {
      await gateway.createStream({ stream_id: 's', mode: 'mirror', endpoint_list: [] });
      await gateway.createStream({ stream_id: 't', mode: 'mirror', endpoint_list: [] });
      const big = MAX_IN_FLIGHT * 2 + 100;
      const batches = [...range(0, 19).map((b) => ({ stream: b % 4 === 3 ? 't' : 's', tag: `b${b}`, n: 1 + (b % 7) * 5 })), { stream: 's', tag: 'big', n: big }, { stream: 't', tag: 'after', n: 10 }];
      const answers = await Promise.all(batches.map((b) => gateway.publishBatch(b.stream, range(0, b.n - 1).map((i) => ({ payload: bytes(`${b.tag}:${i}`) })))));
      for (const [i, a] of answers.entries()) expect(a.last_seq - a.first_seq + 1, batches[i]?.tag).toBe(a.count);
      for (const stream of ['s', 't']) {
        const mine = answers.filter((a) => a.stream_id === stream).sort((x, y) => x.first_seq - y.first_seq);
        const total = mine.reduce((n, a) => n + a.count, 0);
        // the ranges tile 1..total: nothing lost, nothing twice
        expect(mine.map((a) => [a.first_seq, a.last_seq])).toEqual(mine.map((_, k) => [1 + mine.slice(0, k).reduce((n, a) => n + a.count, 0), mine.slice(0, k + 1).reduce((n, a) => n + a.count, 0)]));
        expect(gateway.getStream(stream).last_seq).toBe(total);
        const chunks = await readAll(gateway, stream, total);
        expect(chunks.map((c) => c.seq)).toEqual(range(1, total));
        for (const [i, a] of answers.entries()) {
          if (a.stream_id !== stream) continue;
          const b = batches[i] as { tag: string; n: number };
          expect(chunks.slice(a.first_seq - 1, a.last_seq).map(text)).toEqual(range(0, b.n - 1).map((k) => `${b.tag}:${k}`));
        }
      }
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('a batch larger than the window retried with its idempotency key appends nothing twice', async () => {
    const gateway = jetstreamGateway(`p${++prefixSeq}`);
    await gateway.start();
    try {
      await gateway.createStream({ stream_id: 's', endpoint_list: [] });
      const batch = range(1, MAX_IN_FLIGHT + 500).map((i) => ({ payload: bytes(`${i}`), key: `k${i % 5}`, layer: i % 3 }));
      const first = await gateway.publishBatch('s', batch, { idempotencyKey: 'big-1' });
      const again = await gateway.publishBatch('s', batch, { idempotencyKey: 'big-1' });
      expect(first).toMatchObject({ first_seq: 1, last_seq: batch.length, count: batch.length });
      expect(again).toEqual(first);
      expect(gateway.getStream('s').last_seq).toBe(batch.length);
    } finally {
      await gateway.close();
    }
  }, 60_000);

  it('16 HTTP connections posting batches of 10 at once: every answer a consecutive range, together 1..N, in each request order', async () => {
    const gateway = jetstreamGateway(`p${++prefixSeq}`);
    await gateway.start();
    const server = await serve(gateway, { apiKey: 'publish-test-key-0123', host: '127.0.0.1', port: 0 });
    try {
      await gateway.createStream({ stream_id: 'feed', mode: 'mirror', endpoint_list: [] });
      const post = async (conn: number, req: number): Promise<{ first_seq: number; last_seq: number; count: number; tag: string }> => {
        const tag = `c${conn}r${req}`;
        const res = await fetch(`${server.url}/v1/streams/feed/chunks`, {
          method: 'POST',
          headers: { authorization: 'Bearer publish-test-key-0123', 'content-type': 'application/json' },
          body: JSON.stringify({ chunks: range(0, 9).map((i) => ({ payload: `${tag}:${i}` })) }),
        });
        expect(res.status).toBe(200);
        return { ...((await res.json()) as { first_seq: number; last_seq: number; count: number }), tag };
      };
      const answers = (
        await Promise.all(
          range(0, 15).map(async (conn) => {
            const out = [];
            for (let req = 0; req < 10; req++) out.push(await post(conn, req));
            return out;
          }),
        )
      ).flat();
      for (const a of answers) expect(a.last_seq - a.first_seq + 1).toBe(10);
      expect(answers.map((a) => a.first_seq).sort((x, y) => x - y)).toEqual(range(0, 159).map((k) => 1 + k * 10));
      const chunks = await readAll(gateway, 'feed', 1_600);
      expect(chunks.map((c) => c.seq)).toEqual(range(1, 1_600));
      for (const a of answers) expect(chunks.slice(a.first_seq - 1, a.last_seq).map(text)).toEqual(range(0, 9).map((i) => `${a.tag}:${i}`));
    } finally {
      await server.close();
      await gateway.close();
    }
  }, 60_000);
});
