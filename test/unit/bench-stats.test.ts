import { describe, expect, it } from 'vitest';
import { flat, frontierStall, percentile, summarize } from '../../bench/stats.js';

describe('bench statistics', () => {
  it('summarize: median of odd and even counts, min, max; ignores non-finite samples', () => {
    expect(summarize([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, runs: 3 });
    expect(summarize([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, runs: 4 });
    expect(summarize([Number.NaN, 2, Number.POSITIVE_INFINITY])).toEqual({ median: 2, min: 2, max: 2, runs: 1 });
    expect(summarize([]).runs).toBe(0);
  });

  it('percentile: nearest rank', () => {
    const ms = Array.from({ length: 30 }, (_, i) => i + 1);
    expect(percentile(ms, 50)).toBe(15);
    expect(percentile(ms, 99)).toBe(30);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('flat: x, x_min, x_max', () => {
    expect(flat('mbps', { median: 1.234, min: 1, max: 2, runs: 3 }, 1)).toEqual({ mbps: 1.2, mbps_min: 1, mbps_max: 2 });
  });

  it('frontierStall: the longest wait for the next in-order seq across receivers, from the fault on', () => {
    // a delivers 1..5 every 2 ms, dies; b replays 4..8 from t=400 (4 and 5 are duplicates across receivers)
    const a = [1, 2, 3, 4, 5].map((seq) => ({ seq, t: seq * 2 }));
    const b = [4, 5, 6, 7, 8].map((seq, i) => ({ seq, t: 400 + i * 2 }));
    expect(frontierStall({ a, b }, 9)).toBe(400 + 4 - 10); // 6 arrives at 404, 5 was at 10
    // out-of-order arrival: 3 before 2 does not advance the frontier until 2 arrives
    const c = [
      { seq: 1, t: 0 },
      { seq: 3, t: 5 },
      { seq: 2, t: 50 },
      { seq: 4, t: 52 },
    ];
    expect(frontierStall({ c }, 0)).toBe(50);
    // stalls that ended before the fault are not counted
    expect(frontierStall({ c }, 51)).toBe(2);
  });
});
