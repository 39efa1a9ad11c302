import { describe, expect, it } from 'vitest';
import { harness } from '../helpers/memory-harness.js';

/** `failover.startupGraceMs`: a new stream gives its first choice a moment before settling for less. */
describe('startup grace', () => {
  it('three endpoints connecting in reverse priority order within the grace: the stream starts on the first, one switch record', async () => {
    const h = harness();
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.receiver('c');
    await h.step(300);
    await h.receiver('b');
    await h.step(300);
    expect(h.gateway.getStream('s1').active).toEqual([]);
    await h.receiver('a');
    await h.step(100);
    expect(h.gateway.getStream('s1').active).toEqual(['a']);
    await h.step(2_000);
    expect(h.gateway.streamHealth('s1').switches.map((s) => `${s.from ?? '-'}→${s.to} ${s.reason}`)).toEqual(['-→a initial']);
    await h.close();
  });

  it('the first never comes: after the grace the best connected one starts (and the first takes over later, by fail-back)', async () => {
    const h = harness({ failover: { startupGraceMs: 1_000 } });
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.receiver('c');
    await h.receiver('b');
    await h.step(900);
    expect(h.gateway.getStream('s1').active).toEqual([]);
    await h.step(200);
    expect(h.gateway.getStream('s1').active).toEqual(['b']);
    await h.close();
  });

  it('0 turns it off: the first endpoint to connect starts at once', async () => {
    const h = harness({ failover: { startupGraceMs: 0 } });
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    await h.receiver('b');
    await h.step(50);
    expect(h.gateway.getStream('s1').active).toEqual(['b']);
    await h.close();
  });
});
