import { describe, expect, it } from 'vitest';
import { harness } from '../helpers/memory-harness.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('idempotent publishing (memory log)', () => {
  it('a batch retried with the same key within the window appends nothing again and names the same seqs', async () => {
    const h = harness({ idempotencyWindowMs: 10_000 });
    await h.gateway.createStream({ stream_id: 's', endpoint_list: [] });
    const batch = ['a', 'b', 'c'].map((p) => ({ payload: bytes(p) }));
    const first = await h.gateway.publishBatch('s', batch, { idempotencyKey: 'req-1' });
    await h.gateway.publish('s', 'unrelated');
    const retry = await h.gateway.publishBatch('s', batch, { idempotencyKey: 'req-1' });
    expect(first).toEqual({ stream_id: 's', first_seq: 1, last_seq: 3, count: 3 });
    expect(retry).toEqual(first);
    expect(h.gateway.getStream('s').last_seq).toBe(4);
    // another key is another request
    expect((await h.gateway.publishBatch('s', batch, { idempotencyKey: 'req-2' })).first_seq).toBe(5);
    // a single publish with a key, retried
    expect((await h.gateway.publish('s', 'x', { idempotencyKey: 'one' })).seq).toBe(8);
    expect((await h.gateway.publish('s', 'x', { idempotencyKey: 'one' })).seq).toBe(8);
    await h.close();
  });

  it('past the window the key is forgotten; a bad key is MS_BAD_REQUEST', async () => {
    const h = harness({ idempotencyWindowMs: 1_000 });
    await h.gateway.createStream({ stream_id: 's', endpoint_list: [] });
    expect((await h.gateway.publish('s', 'x', { idempotencyKey: 'k' })).seq).toBe(1);
    h.clock.advance(1_500);
    expect((await h.gateway.publish('s', 'x', { idempotencyKey: 'k' })).seq).toBe(2);
    await expect(h.gateway.publish('s', 'x', { idempotencyKey: 'has space' })).rejects.toMatchObject({ code: 'MS_BAD_REQUEST' });
    await expect(h.gateway.publish('s', 'x', { idempotencyKey: 'k'.repeat(129) })).rejects.toMatchObject({ code: 'MS_BAD_REQUEST' });
    expect(h.gateway.getStream('s').last_seq).toBe(2);
    await h.close();
  });
});
