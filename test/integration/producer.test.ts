import { createServer, type AddressInfo } from 'node:net';
import { pack, unpack } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { MirrorstreamError, Producer } from '../../producer/src/index.js';
import { INGEST_PATH, IngestFrame } from '../../receiver-sdk/src/protocol/index.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { memoryReceiver } from '../helpers/memory-receiver.js';
import { until, withDeadline } from '../helpers/poll.js';

const API_KEY = 'producer-test-key-0123456789';

/** @mirrorstream/producer against a real gateway over loopback: the streaming ingest and the admin API. */
describe('the producer client', () => {
  let gateway: Gateway;
  let server: RunningServer;
  let receivers: ReceiverCore[];
  let producers: Producer[];

  beforeEach(async () => {
    gateway = createGateway({ logLevel: 'silent' });
    server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    receivers = [];
    producers = [];
  });
  afterEach(async () => {
    for (const p of producers) await withDeadline(p.close(), 10_000, 'producer closed').catch(() => undefined);
    for (const r of receivers) r.close();
    await gateway.close();
    await server.close();
  });

  const producer = (options: Partial<ConstructorParameters<typeof Producer>[0]> = {}): Producer => {
    const p = new Producer({ gatewayUrl: server.url, apiKey: API_KEY, ...options });
    producers.push(p);
    return p;
  };

  const receiver = (endpointId: string): Promise<Chunk[]> => memoryReceiver(gateway, endpointId, receivers);

  it('publish resolves with the stored seq: 3 000 chunks on two streams at once, batched, in order per stream', async () => {
    const p = producer();
    await p.admin.createStream({ stream_id: 'a', endpoint_list: ['ra'] });
    await p.admin.createStream({ stream_id: 'b', endpoint_list: ['rb'] });
    const [gotA, gotB] = [await receiver('ra'), await receiver('rb')];
    const results = await Promise.all(Array.from({ length: 3_000 }, (_, i) => p.publish(i % 3 === 0 ? 'b' : 'a', `m${i}`, i % 5 === 0 ? { key: `k${i % 7}` } : {})));
    const seqsA = results.filter((_, i) => i % 3 !== 0).map((r) => r.seq);
    const seqsB = results.filter((_, i) => i % 3 === 0).map((r) => r.seq);
    expect(seqsA).toEqual(Array.from({ length: 2_000 }, (_, i) => i + 1));
    expect(seqsB).toEqual(Array.from({ length: 1_000 }, (_, i) => i + 1));
    await until(() => gotA.length === 2_000 && gotB.length === 1_000, 10_000, 'all delivered', { state: () => [gotA.length, gotB.length] });
    // in the order published: chunk n of stream a is message n of those sent to a
    const sentToA = Array.from({ length: 3_000 }, (_, i) => i).filter((i) => i % 3 !== 0);
    expect(gotA.map((c) => new TextDecoder().decode(c.payload))).toEqual(sentToA.map((i) => `m${i}`));
    // batched: far fewer batches than chunks, on one connection, nothing sent twice
    expect(p.stats.batches).toBeLessThan(100);
    expect(p.stats).toMatchObject({ retries: 0, connects: 1 });
    expect((await p.admin.streamHealth('a')).stream_id).toBe('a');
  });

  it('publishBatch, flush and close: close drains, then publishing is refused (MS_TRANSPORT_CLOSED)', async () => {
    const p = producer({ lingerMs: 50 });
    await p.admin.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const pending = p.publishBatch('s', [{ payload: 'x' }, { payload: new Uint8Array([1, 2]), layer: 3 }, { payload: 'y', key: 'k' }]);
    await p.flush();
    expect(await pending).toEqual({ stream_id: 's', first_seq: 1, last_seq: 3, count: 3 });
    const last = p.publish('s', 'z');
    await p.close();
    expect(await last).toEqual({ seq: 4 });
    await expect(p.publish('s', 'late')).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED' });
  });

  it('what the gateway refuses rejects with its code (not stored); what the caller got wrong rejects at once; the rest goes on', async () => {
    const p = producer();
    await p.admin.createStream({ stream_id: 's', endpoint_list: ['r'] });
    await expect(p.publish('missing', 'x')).rejects.toMatchObject({ code: 'MS_STREAM_NOT_FOUND' });
    await expect(p.publish('s', 'x'.repeat(gateway.config.maxChunkBytes + 1))).rejects.toMatchObject({ code: 'MS_PAYLOAD_TOO_LARGE' });
    await expect(p.publish('s', 'x', { layer: 16 })).rejects.toMatchObject({ code: 'MS_BAD_REQUEST' });
    await expect(p.publish('s', 42 as unknown as string)).rejects.toBeInstanceOf(MirrorstreamError);
    expect(await p.publish('s', 'ok')).toEqual({ seq: 1 });
    await expect(p.admin.getStream('missing')).rejects.toMatchObject({ code: 'MS_STREAM_NOT_FOUND' });
    await expect(p.admin.createStream({ stream_id: 's', endpoint_list: [] })).rejects.toMatchObject({ code: 'MS_STREAM_EXISTS' });
    const token = await p.admin.issueToken('r');
    expect(token.endpoint_id).toBe('r');
  });

  it('a wrong API key rejects every publish with MS_UNAUTHORIZED (retrying cannot help)', async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const p = producer({ apiKey: 'not-the-key-0123456789' });
    const all = await Promise.allSettled([p.publish('s', 'a'), p.publish('s', 'b')]);
    for (const r of all) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'MS_UNAUTHORIZED' } });
    expect(gateway.getStream('s').last_seq).toBe(0);
  });

  it('the first gateway URL does not answer: it goes to the next one, and tells so (connectFailed, connected)', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const p = producer({ gatewayUrl: [`http://127.0.0.1:${closed}`, server.url], backoff: { initialMs: 10, maxMs: 50 } });
    const events: string[] = [];
    p.on('connectFailed', (url, e) => events.push(`failed ${url} ${e.code}`)).on('connected', (url) => events.push(`connected ${url}`));
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    expect(await p.publish('s', 'x')).toEqual({ seq: 1 });
    expect(p.gatewayUrl).toBe(server.url);
    // what a CLI or a log shows of it
    expect(events).toEqual([`failed http://127.0.0.1:${closed} MS_TRANSPORT_CLOSED`, `connected ${server.url}`]);
  });

  it('backpressure a caller can feel: with the queue full, publish waits for room', async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const p = producer({ maxQueuedChunks: 10, maxBatchChunks: 5, lingerMs: 0 });
    const seqs = await Promise.all(Array.from({ length: 200 }, (_, i) => p.publish('s', `${i}`).then((r) => r.seq)));
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  it("a stream's publish() promises settle in publish order: its first chunk, the ones waiting for room, and those after them", async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    await gateway.createStream({ stream_id: 't', endpoint_list: ['r2'] });
    const p = producer({ maxQueuedChunks: 50, maxBatchChunks: 20 });
    const settled: string[] = [];
    const published: string[] = [];
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < 600; i++) {
      // two streams interleaved; a pause now and then lets batches go out while more wait for room
      const stream = i % 4 === 0 ? 't' : 's';
      published.push(`${stream}${i}`);
      all.push(p.publish(stream, `${i}`).then((r) => settled.push(`${stream}${i}@${r.seq}`)));
      if (i % 97 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(all);
    for (const stream of ['s', 't']) {
      const mine = settled.filter((x) => x.startsWith(stream));
      expect(mine.map((x) => x.split('@')[0])).toEqual(published.filter((x) => x.startsWith(stream)));
      expect(mine.map((x) => Number(x.split('@')[1]))).toEqual(mine.map((_, i) => i + 1));
    }
  });
});

/**
 * A gateway that keeps the streaming ingest's contract (a batch sent `after` one not stored is
 * refused; a key seen before answers its first seqs) and fails what the test tells it to, on
 * one stream; answers go out a moment later, in order, so batches pile up in flight.
 */
class ContractGateway {
  readonly stored: string[] = [];
  /** Frames received: [id, key, after, chunks]. */
  readonly received: { id: number; key: string; after: number | null; chunks: number }[] = [];
  maxUnanswered = 0;
  readonly #wss: WebSocketServer;
  readonly #seqsOf = new Map<string, [number, number]>();
  readonly #failed = new Set<string>();

  /** `fault(k, key)`: the k-th distinct batch key's first attempt: fail it (retryable), or store it and drop the connection unanswered. */
  constructor(
    readonly fault: (k: number) => 'fail' | 'store-and-drop' | undefined,
    readonly batchAfter = true,
  ) {
    this.#wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: INGEST_PATH });
    this.#wss.on('connection', (ws) => this.#serve(ws));
  }

  async listening(): Promise<string> {
    if (this.#wss.address() === null) await new Promise((resolve) => this.#wss.once('listening', resolve));
    return `http://127.0.0.1:${(this.#wss.address() as AddressInfo).port}`;
  }

  close(): Promise<void> {
    for (const ws of this.#wss.clients) ws.terminate();
    return new Promise((resolve) => this.#wss.close(() => resolve()));
  }

  #serve(ws: WebSocket): void {
    const notStored = new Set<number>();
    let unanswered = 0;
    const answer = (frame: unknown[]): void => {
      this.maxUnanswered = Math.max(this.maxUnanswered, ++unanswered);
      setTimeout(() => {
        unanswered--;
        if (ws.readyState === WebSocket.OPEN) ws.send(pack(frame));
      }, 2);
    };
    ws.send(pack([IngestFrame.WELCOME, { instance_id: 'contract', max_chunks_per_batch: 10_000, max_frame_bytes: 1 << 20, max_in_flight: 1_024, ...(this.batchAfter ? { batch_after: true } : {}) }]));
    ws.on('message', (data: Buffer) => {
      const [, id, , key, chunks, after = null] = unpack(data) as [number, number, string, string, [Uint8Array | string][], number | null];
      this.received.push({ id, key, after, chunks: chunks.length });
      if (after !== null && notStored.has(after)) {
        notStored.add(id);
        return answer([IngestFrame.ERROR, id, 'MS_PREVIOUS_BATCH_NOT_STORED', `after ${after}`, 0]);
      }
      const seen = this.#seqsOf.get(key);
      if (seen) return answer([IngestFrame.ACK, id, ...seen]);
      const fault = this.#failed.has(key) ? undefined : this.fault(this.#seqsOf.size + this.#failed.size);
      if (fault === 'fail') {
        this.#failed.add(key);
        notStored.add(id);
        return answer([IngestFrame.ERROR, id, 'MS_LOG_UNAVAILABLE', 'an outage', 20]);
      }
      const first = this.stored.length + 1;
      for (const [payload] of chunks) this.stored.push(typeof payload === 'string' ? payload : new TextDecoder().decode(payload));
      this.#seqsOf.set(key, [first, this.stored.length]);
      if (fault === 'store-and-drop') {
        this.#failed.add(key);
        return ws.terminate();
      }
      answer([IngestFrame.ACK, id, first, this.stored.length]);
    });
  }
}

describe('the producer client: several batches of a stream in flight', () => {
  let fake: ContractGateway | undefined;
  afterEach(async () => {
    await fake?.close();
  });

  const publishAll = async (p: Producer, n: number): Promise<number[]> => {
    const seqs = await withDeadline(Promise.all(Array.from({ length: n }, (_, i) => p.publish('s', `m${i}`).then((r) => r.seq))), 20_000, 'every publish answered');
    await p.close();
    return seqs;
  };

  it('a batch not stored in the middle of a chain, and a connection lost with a chain in flight: sent again in order, nothing stored twice or out of order', async () => {
    // the 3rd and 11th batches fail once; the 7th is stored and its connection dropped unanswered
    fake = new ContractGateway((k) => (k === 3 || k === 11 ? 'fail' : k === 7 ? 'store-and-drop' : undefined));
    const p = new Producer({ gatewayUrl: await fake.listening(), apiKey: 'k', maxBatchChunks: 10, lingerMs: 0, maxInFlightPerStream: 4, backoff: { initialMs: 5, maxMs: 20 } });
    const seqs = await publishAll(p, 400);
    expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(fake.stored).toEqual(Array.from({ length: 400 }, (_, i) => `m${i}`));
    // it did pipeline: chained batches, several unanswered at once; and it did retry (the failed ones, those refused behind them, the lost connection's)
    expect(fake.received.filter((r) => r.after !== null).length).toBeGreaterThan(10);
    expect(fake.maxUnanswered).toBeGreaterThan(1);
    expect(fake.maxUnanswered).toBeLessThanOrEqual(4);
    expect(p.stats.retries).toBeGreaterThanOrEqual(3);
    expect(p.stats.connects).toBe(2);
  });

  it('a gateway that does not take `after` (an older one): one batch of a stream at a time, never an `after`', async () => {
    fake = new ContractGateway((k) => (k === 2 ? 'fail' : undefined), false);
    const p = new Producer({ gatewayUrl: await fake.listening(), apiKey: 'k', maxBatchChunks: 10, lingerMs: 0, maxInFlightPerStream: 4 });
    expect(await publishAll(p, 100)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(fake.stored).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    expect(fake.received.every((r) => r.after === null)).toBe(true);
    expect(fake.maxUnanswered).toBe(1);
  });
});
