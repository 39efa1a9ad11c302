import { describe, expect, it } from 'vitest';
import { harness, range, seqsOf, strictlyIncreasing } from '../helpers/memory-harness.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('endpoints added, removed and reordered while the stream runs', () => {
  it('failover mode: no chunk lost across add, reorder and remove of the active endpoint', async () => {
    const h = harness();
    const [a, b, c, d] = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c'), await h.receiver('d')];
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    const actives: string[] = [];
    for (let seq = 1; seq <= 6_000; seq++) {
      await h.gateway.publish('s1', bytes(`${seq}`));
      if (seq === 1_000) h.gateway.addEndpoint('s1', { endpoint_id: 'c', priority: 0 });
      if (seq === 2_000) h.gateway.reorderEndpoints('s1', ['b', 'c', 'a']);
      if (seq === 3_000) h.gateway.removeEndpoint('s1', 'b');
      if (seq === 4_000) h.gateway.addEndpoint('s1', { endpoint_id: 'd' });
      if (seq === 5_000) h.gateway.removeEndpoint('s1', 'c');
      if (seq % 1_000 === 0) actives.push(h.gateway.getStream('s1').active.join(','));
      await h.step(2, 2);
    }
    await h.step(300);
    expect(actives).toEqual(['c', 'b', 'c', 'c', 'a', 'a']);
    expect(h.gateway.getStream('s1').endpoint_list.map((e) => e.endpoint_id)).toEqual(['a', 'd']);
    for (const r of [a, b, c, d]) expect(strictlyIncreasing(seqsOf(r))).toBe(true);
    const union = new Set([a, b, c, d].flatMap((r) => seqsOf(r)));
    expect([...union].sort((x, y) => x - y)).toEqual(range(1, 6_000));
    expect(h.gateway.streamHealth('s1').switches.map((s) => s.reason)).toEqual([
      'initial',
      'operator',
      'operator',
      'removed',
      'removed',
    ]);
    await h.close();
  });

  it('mirror mode: a newcomer gets everything retained, a removed endpoint stops, the others never miss', async () => {
    const h = harness();
    const [a, b, c] = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    h.gateway.createStream({ stream_id: 's1', mode: 'mirror', endpoint_list: ['a', 'b'] });
    for (let seq = 1; seq <= 3_000; seq++) {
      await h.gateway.publish('s1', bytes(`${seq}`));
      if (seq === 1_000) h.gateway.addEndpoint('s1', { endpoint_id: 'c' });
      if (seq === 2_000) h.gateway.removeEndpoint('s1', 'b');
      if (seq === 2_500) h.gateway.reorderEndpoints('s1', ['c', 'a']);
      await h.step(2, 2);
    }
    await h.step(300);
    expect(seqsOf(a)).toEqual(range(1, 3_000));
    expect(seqsOf(c)).toEqual(range(1, 3_000));
    expect(seqsOf(b)).toEqual(range(1, 2_000));
    expect(h.gateway.getStream('s1').active).toEqual(['c', 'a']);
    await h.close();
  });

  it('mirror mode: an endpoint removed and added back resumes from its own last ack, and its receiver sees no seq twice', async () => {
    const h = harness();
    const [a, b] = [await h.receiver('a'), await h.receiver('b')];
    h.gateway.createStream({ stream_id: 's1', mode: 'mirror', endpoint_list: ['a', 'b'] });
    const ends: string[] = [];
    b.core.on('end', (e) => ends.push(e.reason));
    for (let seq = 1; seq <= 3_000; seq++) {
      await h.gateway.publish('s1', bytes(`${seq}`));
      if (seq === 1_000) h.gateway.removeEndpoint('s1', 'b');
      if (seq === 1_500) h.gateway.addEndpoint('s1', { endpoint_id: 'b', priority: 0 });
      await h.step(2, 2);
    }
    await h.step(300);
    expect(ends).toEqual(['removed']);
    // it missed nothing while it was out (retained), and got nothing twice
    expect(seqsOf(b)).toEqual(range(1, 3_000));
    expect(seqsOf(a)).toEqual(range(1, 3_000));
    // sent again from its own last ack (a few unacked chunks at most), not from the oldest retained
    const sent = h.gateway.streamHealth('s1').endpoints.find((e) => e.endpoint_id === 'b')!.chunks_sent;
    expect(sent).toBeGreaterThanOrEqual(2_000);
    expect(sent).toBeLessThan(2_100);
    await h.close();
  });

  it('mirror mode with k = 2: the third endpoint joins when one of the two dies', async () => {
    const h = harness({ failback: { enabled: false } });
    const [a, b, c] = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    h.gateway.createStream({ stream_id: 's1', mode: 'mirror', mirror_k: 2, endpoint_list: ['a', 'b', 'c'] });
    for (let seq = 1; seq <= 2_000; seq++) {
      await h.gateway.publish('s1', bytes(`${seq}`));
      if (seq === 1_000) b.link()?.kill('crash');
      await h.step(2, 2);
    }
    await h.step(300);
    expect(seqsOf(a)).toEqual(range(1, 2_000));
    expect(h.gateway.getStream('s1').active).toContain('c');
    // c is new to the stream: it gets everything retained, in order
    expect(seqsOf(c)).toEqual(range(1, 2_000));
    expect(strictlyIncreasing(seqsOf(b))).toBe(true);
    await h.close();
  });
});

describe('resume and retention', () => {
  it('a reconnecting endpoint resumes from its own last ack', async () => {
    const h = harness();
    const a = await h.receiver('a');
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'] });
    for (let seq = 1; seq <= 2_000; seq++) {
      await h.gateway.publish('s1', bytes(`${seq}`));
      if (seq === 700) a.link()?.kill('network drop');
      await h.step(2, 2);
    }
    await h.step(500);
    expect(seqsOf(a)).toEqual(range(1, 2_000));
    expect(h.gateway.endpointHealth('a').connects).toBe(2);
    await h.close();
  });

  it('an endpoint whose position was evicted gets GAP(from, to) and continues', async () => {
    const h = harness({ retention: { maxChunks: 100 } });
    const a = await h.receiver('a');
    const gaps: { from: number; to: number; reason: string }[] = [];
    a.core.on('gap', (g) => gaps.push(g));
    const gatewayGaps: number[][] = [];
    h.gateway.on('gap', (g) => gatewayGaps.push([g.from, g.to]));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'] });
    for (let seq = 1; seq <= 50; seq++) await h.gateway.publish('s1', bytes(`${seq}`));
    await h.step(100);
    a.freeze();
    await h.step(4_500); // dead (a stream's only endpoint is heartbeated every second) and disconnected (the receiver's silence limit, 4 s)
    for (let seq = 51; seq <= 500; seq++) await h.gateway.publish('s1', bytes(`${seq}`));
    a.thaw();
    await h.step(1_000);
    expect(h.gateway.getStream('s1').first_seq).toBe(401);
    expect(gaps).toEqual([{ streamId: 's1', from: 51, to: 400, reason: 'retention' }]);
    expect(gatewayGaps).toEqual([[51, 400]]);
    expect(seqsOf(a)).toEqual([...range(1, 50), ...range(401, 500)]);
    await h.close();
  });
});

describe('publish and then change the stream at once', () => {
  it('chunks published without awaiting go out before a delete that follows in the same turn', async () => {
    const h = harness();
    const a = await h.receiver('a');
    const ends: string[] = [];
    a.core.on('end', (e) => ends.push(e.reason));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'] });
    await h.step(10);
    void h.gateway.publish('s1', bytes('1'));
    void h.gateway.publishBatch('s1', [{ payload: bytes('2') }, { payload: bytes('3') }]);
    h.gateway.deleteStream('s1');
    await h.step(50);
    expect(seqsOf(a)).toEqual([1, 2, 3]);
    expect(ends).toEqual(['deleted']);
    await h.close();
  });
});
