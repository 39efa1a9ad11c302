import { describe, expect, it } from 'vitest';
import { judgeStream, type Acked, type Delivery } from '../../soak/check.js';

const acked = (entries: [number, string, number][]): Map<number, Acked> => new Map(entries.map(([seq, payload, at]) => [seq, { payload, at }]));
const d = (endpoint: string, life: number, seq: number, payload: string, at: number): Delivery => ({ endpoint, life, seq, payload, at });

describe('soak verdict on one stream', () => {
  it('a clean failover: nothing lost, the replay to the new active is a redelivery, the stall is the switch', () => {
    const a = acked([
      [1, 'a', 0],
      [2, 'b', 10],
      [3, 'c', 20],
      [4, 'd', 30],
    ]);
    const v = judgeStream(a, [d('e1', 0, 1, 'a', 1), d('e1', 0, 2, 'b', 11), d('e2', 0, 2, 'b', 300), d('e2', 0, 3, 'c', 301), d('e2', 0, 4, 'd', 302)]);
    expect(v).toMatchObject({ acked: 4, lost: [], duplicatesPerLife: 0, corrupted: 0, payloadAtTwoSeqs: 0, redelivered: 1, unackedDelivered: 0 });
    // seq 3 acked at 20, frontier at 2 since 11: it moved again at 301
    expect(v.longestFrontierStallMs).toBe(281);
    expect(v.delayMs.max).toBe(281);
  });

  it('counts what must not happen: a lost seq, a seq twice in one life, a wrong payload, a payload at two seqs', () => {
    const a = acked([
      [1, 'a', 0],
      [2, 'b', 0],
      [3, 'c', 0],
      [4, 'd', 0],
    ]);
    const v = judgeStream(a, [d('e1', 0, 1, 'a', 1), d('e1', 0, 1, 'a', 2), d('e1', 0, 2, 'x', 3), d('e1', 0, 4, 'a', 4), d('e1', 1, 1, 'a', 9)]);
    expect(v.lost).toEqual([3]);
    expect(v.duplicatesPerLife).toBe(1);
    expect(v.corrupted).toBe(2);
    expect(v.payloadAtTwoSeqs).toBe(1);
    // a new life may see a seq again
    expect(v.redelivered).toBe(2);
  });

  it('a delivery before the ack arrived is no stall; a chunk stored but never acked is reported, not lost', () => {
    const v = judgeStream(acked([[1, 'a', 50]]), [d('e1', 0, 1, 'a', 40), d('e1', 0, 2, 'b', 60)]);
    expect(v).toMatchObject({ lost: [], unackedDelivered: 1, longestFrontierStallMs: 0 });
    expect(v.delayMs.max).toBe(0);
  });
});
