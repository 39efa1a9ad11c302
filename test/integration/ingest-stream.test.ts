import { pack, unpack } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createGateway, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { IngestFrame, INGEST_PATH } from '../../gateway/src/http/ingest-stream.js';
import { ReceiverCore, type Chunk } from '../../receiver-sdk/src/index.js';
import { memoryReceiver } from '../helpers/memory-receiver.js';
import { until, withDeadline } from '../helpers/poll.js';

const API_KEY = 'ingest-stream-key-0123456789';

/** A raw ingest connection: frames in and out as the gateway speaks them (the producer client builds on the same). */
class RawIngest {
  readonly frames: unknown[][] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly opened: Promise<void>;
  readonly ws: WebSocket;

  constructor(url: string, key = API_KEY) {
    this.ws = new WebSocket(`${url.replace(/^http/, 'ws')}${INGEST_PATH}`, { headers: { authorization: `Bearer ${key}` } });
    this.ws.on('message', (data: Buffer) => this.frames.push(unpack(data) as unknown[]));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => this.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  batch(id: number, stream: string, key: string | null, chunks: unknown[][], after?: number | null): void {
    this.ws.send(pack(after === undefined ? [IngestFrame.BATCH, id, stream, key, chunks] : [IngestFrame.BATCH, id, stream, key, chunks, after]));
  }

  /** The answer (ACK or ERROR) to batch `id`, bounded. */
  async answer(id: number): Promise<unknown[]> {
    let found: unknown[] | undefined;
    await until(() => (found = this.frames.find((f) => (f[0] === IngestFrame.ACK || f[0] === IngestFrame.ERROR) && f[1] === id)) !== undefined, 5_000, `the answer to batch ${id}`, { state: () => this.frames.slice(-3) });
    return found!;
  }
}

describe('the streaming ingest (WebSocket, msgpack frames, on the HTTP port)', () => {
  let gateway: Gateway;
  let server: RunningServer;
  let receivers: ReceiverCore[];

  beforeEach(async () => {
    gateway = createGateway({ logLevel: 'silent' });
    server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    receivers = [];
  });
  afterEach(async () => {
    for (const r of receivers) r.close();
    await gateway.close();
    await server.close();
  });

  const receiver = (endpointId: string): Promise<Chunk[]> => memoryReceiver(gateway, endpointId, receivers);

  it('one connection, batches of two streams in flight at once: each acked with its seqs once stored, delivered in order', async () => {
    await gateway.createStream({ stream_id: 'a', endpoint_list: ['ra'] });
    await gateway.createStream({ stream_id: 'b', endpoint_list: ['rb'] });
    const [gotA, gotB] = [await receiver('ra'), await receiver('rb')];
    const c = new RawIngest(server.url);
    await c.opened;
    for (let i = 0; i < 50; i++) c.batch(i, i % 2 === 0 ? 'a' : 'b', null, [[`${i}-0`], [new Uint8Array([i]), 'k', 2]]);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => c.answer(i)));
    expect(c.frames[0]).toEqual([IngestFrame.WELCOME, expect.objectContaining({ max_chunks_per_batch: 10_000, max_in_flight: 1_024 })]);
    // per stream, batches are sequenced in the order they came: batch k of a stream holds seqs 2k+1, 2k+2
    answers.forEach((a, i) => expect(a).toEqual([IngestFrame.ACK, i, Math.floor(i / 2) * 2 + 1, Math.floor(i / 2) * 2 + 2]));
    await until(() => gotA.length === 50 && gotB.length === 50, 5_000, 'every chunk delivered', { state: () => [gotA.length, gotB.length] });
    expect(gotA.map((ch) => ch.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new TextDecoder().decode(gotA[0]!.payload)).toBe('0-0');
    expect([...gotA[1]!.payload]).toEqual([0]);
    c.ws.close();
  });

  it('the same validation, idempotency and coded errors as POST .../chunks; a refused batch leaves the connection up', async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const c = new RawIngest(server.url);
    await c.opened;
    c.batch(1, 'missing', null, [['x']]);
    expect(await c.answer(1)).toEqual([IngestFrame.ERROR, 1, 'MS_STREAM_NOT_FOUND', expect.any(String), null]);
    c.batch(2, 's', null, [['x', null, 99]]);
    expect(await c.answer(2)).toEqual([IngestFrame.ERROR, 2, 'MS_BAD_REQUEST', expect.stringMatching(/layer/), null]);
    c.batch(3, 's', 'bad key with spaces', [['x']]);
    expect((await c.answer(3)).slice(0, 3)).toEqual([IngestFrame.ERROR, 3, 'MS_BAD_REQUEST']);
    c.batch(4, 's', 'batch-4', [['x'], ['y']]);
    c.batch(5, 's', 'batch-4', [['x'], ['y']]);
    expect(await c.answer(4)).toEqual([IngestFrame.ACK, 4, 1, 2]);
    expect(await c.answer(5)).toEqual([IngestFrame.ACK, 5, 1, 2]);
    expect(gateway.getStream('s').last_seq).toBe(2);
    c.batch(6, 's', null, [[`${'z'.repeat(gateway.config.maxChunkBytes + 1)}`]]);
    expect((await c.answer(6)).slice(0, 3)).toEqual([IngestFrame.ERROR, 6, 'MS_PAYLOAD_TOO_LARGE']);
    expect(c.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('a batch sent `after` another is stored only once that one is: behind one not stored it is refused (MS_PREVIOUS_BATCH_NOT_STORED, retry_after_ms 0), and so is the chain behind it', async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const got = await receiver('r');
    const c = new RawIngest(server.url);
    await c.opened;
    expect(c.frames[0]).toEqual([IngestFrame.WELCOME, expect.objectContaining({ batch_after: true })]);
    // a chain of five in flight at once: stored in the chain's order
    for (let id = 1; id <= 5; id++) c.batch(id, 's', `k${id}`, [[`${id}a`], [`${id}b`]], id === 1 ? null : id - 1);
    for (let id = 1; id <= 5; id++) expect(await c.answer(id)).toEqual([IngestFrame.ACK, id, 2 * id - 1, 2 * id]);
    // 6 is refused as it is (layer 99); 7 after it and 8 after 7 are not stored
    c.batch(6, 's', null, [['6', null, 99]], 5);
    c.batch(7, 's', 'k7', [['7']], 6);
    c.batch(8, 's', 'k8', [['8']], 7);
    expect((await c.answer(6)).slice(0, 3)).toEqual([IngestFrame.ERROR, 6, 'MS_BAD_REQUEST']);
    expect(await c.answer(7)).toEqual([IngestFrame.ERROR, 7, 'MS_PREVIOUS_BATCH_NOT_STORED', expect.stringMatching(/batch 6/), 0]);
    expect(await c.answer(8)).toEqual([IngestFrame.ERROR, 8, 'MS_PREVIOUS_BATCH_NOT_STORED', expect.stringMatching(/batch 7/), 0]);
    expect(gateway.getStream('s').last_seq).toBe(10);
    // sent again (new ids, same keys), 7 unchained: stored in order; an `after` the connection does not know counts as stored
    c.batch(9, 's', 'k7', [['7']], null);
    c.batch(10, 's', 'k8', [['8']], 9);
    expect(await c.answer(9)).toEqual([IngestFrame.ACK, 9, 11, 11]);
    expect(await c.answer(10)).toEqual([IngestFrame.ACK, 10, 12, 12]);
    c.batch(11, 's', null, [['11']], 123_456);
    expect(await c.answer(11)).toEqual([IngestFrame.ACK, 11, 13, 13]);
    await until(() => got.length === 13, 5_000, 'all delivered', { state: () => got.length });
    expect(got.map((ch) => new TextDecoder().decode(ch.payload))).toEqual(['1a', '1b', '2a', '2b', '3a', '3b', '4a', '4b', '5a', '5b', '7', '8', '11']);
  });

  it.each([
    ['a text frame', (ws: WebSocket) => ws.send('hello')],
    ['bytes that are not msgpack', (ws: WebSocket) => ws.send(Buffer.from([0xc1, 0xc1]))],
    ['msgpack that is not a batch', (ws: WebSocket) => ws.send(pack({ batch: 1 }))],
    ['a batch without chunks', (ws: WebSocket) => ws.send(pack([IngestFrame.BATCH, 1, 's', null, []]))],
    ['a batch id that is not a u32', (ws: WebSocket) => ws.send(pack([IngestFrame.BATCH, -1, 's', null, [['x']]]))],
    ['an `after` that is not a batch id', (ws: WebSocket) => ws.send(pack([IngestFrame.BATCH, 1, 's', null, [['x']], 'first']))],
    ['a batch with a seventh field', (ws: WebSocket) => ws.send(pack([IngestFrame.BATCH, 1, 's', null, [['x']], null, 1]))],
  ])('%s: ERROR MS_FRAME_MALFORMED, then the connection closes (1007); the gateway serves on', async (_what, sendBad) => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    const c = new RawIngest(server.url);
    await c.opened;
    sendBad(c.ws);
    const closed = await withDeadline(c.closed, 5_000, 'closed');
    expect(closed.code).toBe(1007);
    expect(c.frames.at(-1)?.slice(0, 3)).toEqual([IngestFrame.ERROR, null, 'MS_FRAME_MALFORMED']);
    const next = new RawIngest(server.url);
    await next.opened;
    next.batch(1, 's', null, [['x']]);
    expect((await next.answer(1))[0]).toBe(IngestFrame.ACK);
    next.ws.close();
  });

  it('without the API key the upgrade is refused with 401 {error}; a plain GET is 400', async () => {
    const c = new RawIngest(server.url, 'wrong-key-0123456789');
    const status = await new Promise<number>((resolve) => c.ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
    const plain = await fetch(`${server.url}${INGEST_PATH}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(plain.status).toBeGreaterThanOrEqual(400);
    expect(plain.status).toBeLessThan(500);
  });

  it('a draining gateway says GOAWAY; a batch after it is refused with MS_GATEWAY_CLOSED and retry_after_ms 0 (at once, elsewhere), one before it is answered', async () => {
    await gateway.createStream({ stream_id: 's', endpoint_list: ['r'] });
    await receiver('r');
    const c = new RawIngest(server.url);
    await c.opened;
    c.batch(1, 's', null, [['before']]);
    expect((await c.answer(1))[0]).toBe(IngestFrame.ACK);
    const closing = gateway.close();
    await until(() => c.frames.some((f) => f[0] === IngestFrame.GOAWAY), 5_000, 'GOAWAY');
    c.batch(2, 's', 'k2', [['after']]);
    expect(await c.answer(2)).toEqual([IngestFrame.ERROR, 2, 'MS_GATEWAY_CLOSED', expect.any(String), 0]);
    await closing;
  });
});
