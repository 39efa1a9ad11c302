import { afterEach, describe, expect, it, vi } from 'vitest';
import { Stream } from '../../gateway/src/streams/stream.js';
import { harness, type TestReceiver } from '../helpers/memory-harness.js';

/**
 * Work proportional to change (manual clock): settled streams are neither measured nor
 * re-decided on a timer; a change re-decides the streams it touches, and only those.
 */
describe('work proportional to change', () => {
  afterEach(() => vi.restoreAllMocks());

  it('200 settled streams cost no policy runs and no measurements per tick; one endpoint going silent re-decides only its stream', async () => {
    const h = harness();
    const rx: TestReceiver[] = [];
    for (let i = 0; i < 200; i++) {
      rx.push(await h.receiver(`e${i}`));
      await h.gateway.createStream({ stream_id: `s${i}`, endpoint_list: [`e${i}`] });
    }
    await h.gateway.createStream({ stream_id: 'pair', endpoint_list: ['p1', 'p2'] });
    const p = [await h.receiver('p1'), await h.receiver('p2')];
    await h.step(3_000, 10); // startup graces over, rates settled
    const spyEval = vi.spyOn(Stream.prototype, 'evaluate');
    const spyAssess = vi.spyOn(Stream.prototype, 'assess');
    await h.step(2_000, 10); // 40 ticks
    console.log(`settled, 2 s: ${spyEval.mock.calls.length} policy runs, ${spyAssess.mock.calls.length} stream measurements over 201 streams (${[...new Set(spyAssess.mock.contexts.map((s) => (s as Stream).id))].slice(0, 5).join(', ')})`);
    expect(spyEval.mock.calls.length).toBe(0);
    expect(spyAssess.mock.calls.length).toBe(0);
    // the active endpoint of the pair freezes: its stream (and no other) is re-decided
    p[0]?.freeze();
    await h.step(1_500, 10);
    const streams = new Set(spyEval.mock.contexts.map((s) => (s as Stream).id));
    console.log(`after p1 froze: policy runs on ${[...streams].join(', ')} (${spyEval.mock.calls.length} runs)`);
    expect([...streams]).toEqual(['pair']);
    expect(h.gateway.getStream('pair').active).toEqual(['p2']);
    await h.close();
  });

  it('a stream deleted with chunks in flight is measured no more (its acks cannot reach it: it would never settle)', async () => {
    const h = harness();
    const rx = await h.receiver('e');
    await h.gateway.createStream({ stream_id: 'gone', endpoint_list: ['e'] });
    await h.step(1_000, 10);
    rx.freeze(); // nothing is acked from here on
    for (let i = 0; i < 5; i++) await h.gateway.publish('gone', `x${i}`);
    await h.step(100, 10);
    const spyAssess = vi.spyOn(Stream.prototype, 'assess');
    await h.step(100, 10);
    expect(spyAssess.mock.calls.length).toBeGreaterThan(0); // in flight: measured every tick
    await h.gateway.deleteStream('gone');
    spyAssess.mockClear();
    await h.step(1_000, 10);
    console.log(`deleted stream: ${spyAssess.mock.calls.length} measurements in the 1 s after`);
    expect(spyAssess.mock.calls.length).toBe(0);
    await h.close();
  });
});
