import { describe, expect, it } from 'vitest';
import { PhiAccrualDetector } from '../../gateway/src/health/failure-detector.js';

const opts = { expectedIntervalMs: 250, minStdDevMs: 50, acceptablePauseMs: 0, windowSize: 100 };

describe('phi accrual failure detector', () => {
  it('phi stays low while heartbeats arrive on time and climbs when they stop', () => {
    const d = new PhiAccrualDetector(opts);
    let t = 0;
    for (let i = 0; i < 50; i++) d.heartbeat((t += 250));
    expect(d.phi(t + 100)).toBeLessThan(1);
    expect(d.phi(t + 250)).toBeLessThan(1);
    expect(d.phi(t + 450)).toBeGreaterThan(3);
    expect(d.phi(t + 600)).toBeGreaterThan(8);
  });

  it('a jittery history is judged more leniently than a steady one', () => {
    const steady = new PhiAccrualDetector(opts);
    const jittery = new PhiAccrualDetector(opts);
    let ts = 0;
    let tj = 0;
    for (let i = 0; i < 100; i++) {
      steady.heartbeat((ts += 250));
      jittery.heartbeat((tj += i % 2 === 0 ? 100 : 400));
    }
    expect(jittery.phi(tj + 500)).toBeLessThan(steady.phi(ts + 500));
  });

  it('acceptable pause shifts the curve', () => {
    const d = new PhiAccrualDetector({ ...opts, acceptablePauseMs: 1_000 });
    d.heartbeat(0);
    d.heartbeat(250);
    expect(d.phi(250 + 1_000)).toBeLessThan(1);
  });

  it('a rate change keeps a silence under way: overdue stays overdue, between heartbeats stays fine', () => {
    const slow = { ...opts, expectedIntervalMs: 1_000 };
    // 3 s silent at a 1 s rate (dead there), then moved to 250 ms heartbeats
    const silent = new PhiAccrualDetector(slow);
    for (let t = 1_000; t <= 10_000; t += 1_000) silent.heartbeat(t);
    expect(silent.phi(13_000)).toBeGreaterThan(8);
    silent.rebase(250, 13_000);
    expect(silent.phi(13_000)).toBeGreaterThan(8);
    // half an interval since the last heartbeat: still fine at the new rate, and late one new interval on
    const between = new PhiAccrualDetector(slow);
    for (let t = 1_000; t <= 10_000; t += 1_000) between.heartbeat(t);
    between.rebase(250, 10_500);
    expect(between.phi(10_500)).toBeLessThan(1);
    expect(between.phi(10_500 + 500)).toBeGreaterThan(3);
    // from fast to slow: the next heartbeat is judged against the slow rate
    const fast = new PhiAccrualDetector(opts);
    for (let t = 250; t <= 5_000; t += 250) fast.heartbeat(t);
    fast.rebase(1_000, 5_100);
    expect(fast.phi(5_000 + 1_000)).toBeLessThan(3); // not suspect when the first slow one is due
  });

  it('phi is monotonic in elapsed time', () => {
    const d = new PhiAccrualDetector(opts);
    d.reset(0);
    let last = -1;
    for (let t = 0; t <= 2_000; t += 10) {
      const phi = d.phi(t);
      expect(phi).toBeGreaterThanOrEqual(last);
      last = phi;
    }
  });
});
