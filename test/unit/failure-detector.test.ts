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
