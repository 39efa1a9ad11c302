import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createGateway, MemoryTransport, serve, type Gateway, type RunningServer } from '../../gateway/src/index.js';
import { IngestFrame, INGEST_PATH } from '../../gateway/src/http/ingest-stream.js';
import { ERROR_CODES, ReceiverCore } from '../../receiver-sdk/src/index.js';
import { until, withDeadline } from '../helpers/poll.js';
import { FUZZ, fuzzParams } from './fuzz-params.js';

/**
 * The streaming ingest fed generated frames over a real socket: batches good and bad (ids,
 * streams, keys, chunks, layers, `after` chains), other msgpack values, raw bytes and text. Every answer is a
 * documented frame; an ERROR names a documented code; the connection closes only after ERROR
 * MS_FRAME_MALFORMED; a batch is acked only if the gateway stored it; and a reference stream
 * published beside it delivers every chunk.
 */
const API_KEY = 'ingest-fuzz-key-0123456789';
const stream = fc.constantFrom('s', 's', 'missing', '', '../s', 'x'.repeat(300));
const payload = fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 64 }), fc.integer(), fc.constant(null));
const chunk = fc.oneof(
  fc.tuple(payload),
  fc.tuple(payload, fc.option(fc.string({ maxLength: 300 }))),
  fc.tuple(payload, fc.option(fc.string({ maxLength: 10 })), fc.option(fc.integer({ min: -3, max: 20 }))),
  fc.anything({ maxDepth: 2 }),
);
// small ids too, so that `after` often names a batch of the same connection (stored, refused or in flight)
const batchId = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer(), fc.double(), fc.string({ maxLength: 4 }));
const batchFields = fc.tuple(fc.constant(IngestFrame.BATCH), batchId, stream, fc.option(fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,20}$/), fc.string({ maxLength: 200 }))), fc.array(chunk, { maxLength: 6 }));
const batch = fc.oneof(
  batchFields,
  fc.tuple(batchFields, fc.option(batchId)).map(([b, after]) => [...b, after]),
);
const message = fc.oneof(
  { weight: 6, arbitrary: batch.map((b) => ({ binary: true, bytes: pack(b) })) },
  { weight: 1, arbitrary: fc.anything({ maxDepth: 3 }).map((v) => ({ binary: true, bytes: pack(v) })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => ({ binary: true, bytes: Buffer.from(b) })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 50 }).map((t) => ({ binary: false, bytes: Buffer.from(t) })) },
);

describe('ingest fuzz: generated frames on a real connection', () => {
  let gateway: Gateway;
  let server: RunningServer;
  let reference: ReceiverCore;
  const delivered: number[] = [];

  beforeAll(async () => {
    gateway = createGateway({ logLevel: 'silent' });
    server = await serve(gateway, { apiKey: API_KEY, host: '127.0.0.1', port: 0 });
    await gateway.createStream({ stream_id: 's', endpoint_list: ['fuzz-rx'] });
    await gateway.createStream({ stream_id: 'ref', endpoint_list: ['ref-rx'] });
    const [g, link] = MemoryTransport.pair();
    reference = new ReceiverCore({ endpointId: 'ref-rx', dial: async () => (gateway.accept(g, { endpointId: 'ref-rx' }), link) });
    reference.on('chunk', (c) => delivered.push(c.seq));
    await reference.connect();
  });
  afterAll(async () => {
    reference.close();
    await gateway.close();
    await server.close();
  });

  it('every answer documented, a close only after MS_FRAME_MALFORMED, acks only for stored batches, the reference stream undisturbed', async () => {
    let published = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 8 }), async (messages) => {
        const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}${INGEST_PATH}`, { headers: { authorization: `Bearer ${API_KEY}` } });
        const frames: unknown[][] = [];
        ws.on('message', (d: Buffer) => frames.push(unpack(d) as unknown[]));
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
        await withDeadline(new Promise<void>((r, j) => (ws.once('open', () => r()), ws.once('error', j))), 5_000, 'open');
        const lastSeqBefore = gateway.getStream('s').last_seq;
        for (const m of messages) ws.send(m.bytes, { binary: m.binary });
        await gateway.publish('ref', `ref ${++published}`);
        // every well-formed batch sent is answered, or the connection closed on a malformed one
        const batches = messages.filter((m) => m.binary).length;
        await until(() => ws.readyState === WebSocket.CLOSED || frames.filter((f) => f[0] === IngestFrame.ACK || f[0] === IngestFrame.ERROR).length >= batches, 5_000, 'answers', { state: () => frames });
        ws.close();
        const code = await withDeadline(closed, 5_000, 'closed');
        expect(frames[0]?.[0]).toBe(IngestFrame.WELCOME);
        let acked = 0;
        for (const f of frames.slice(1)) {
          expect([IngestFrame.ACK, IngestFrame.ERROR]).toContain(f[0]);
          if (f[0] === IngestFrame.ERROR) {
            expect(Object.keys(ERROR_CODES)).toContain(f[2]);
            expect(f[2]).not.toBe('MS_INTERNAL');
          } else acked += (f[3] as number) - (f[2] as number) + 1;
        }
        if (code === 1007) expect(frames.some((f) => f[0] === IngestFrame.ERROR && f[1] === null && f[2] === 'MS_FRAME_MALFORMED')).toBe(true);
        else expect(code).toBe(1005);
        // what was acked is what was stored on "s" (another stream's batches are refused: it does not exist)
        expect(gateway.getStream('s').last_seq - lastSeqBefore).toBe(acked);
      }),
      fuzzParams(FUZZ.ingestRuns),
    );
    await until(() => delivered.length === published, 5_000, 'the reference stream delivered everything', { state: () => [delivered.length, published] });
    expect(delivered).toEqual(Array.from({ length: published }, (_, i) => i + 1));
  }, 120_000);
});
