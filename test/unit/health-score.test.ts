import { describe, expect, it } from 'vitest';
import { ProbeWindow } from '../../gateway/src/health/probes.js';
import { HealthTracker, type MetricSample } from '../../gateway/src/health/score.js';
import { RttHistogram } from '../../gateway/src/health/silence.js';
import { harness, seqsOf, strictlyIncreasing } from '../helpers/memory-harness.js';

const rtt = (value: number | undefined): Record<string, MetricSample> => ({ rtt_ms: { value, threshold: 100, kind: 'max', source: 'test' } });

describe('HealthTracker hysteresis', () => {
  it('degrades only after a sustained breach and recovers only after a stable period', () => {
    const t = new HealthTracker({ degradeAfterMs: 500, recoverAfterMs: 2_000 }, 0);
    expect(t.update(0, rtt(150))).toBe(false);
    expect(t.update(400, rtt(150))).toBe(false);
    expect(t.update(450, rtt(50))).toBe(false); // breach interrupted: timer restarts
    expect(t.update(600, rtt(150))).toBe(false);
    expect(t.update(1_100, rtt(150))).toBe(true);
    expect(t.snapshot()).toMatchObject({ verdict: 'degraded', reasons: ['rtt_ms'], score: 0.667 });
    expect(t.update(2_000, rtt(50))).toBe(false);
    expect(t.update(2_900, rtt(150))).toBe(false); // a breach during recovery restarts it
    expect(t.update(4_800, rtt(50))).toBe(false);
    expect(t.update(4_900, rtt(50))).toBe(true);
    expect(t.snapshot()).toMatchObject({ verdict: 'healthy', reasons: [] });
    expect(t.snapshot().metrics.rtt_ms).toMatchObject({ value: 50, threshold: 100, source: 'test', breached: false });
  });

  it('a missing value is never a breach; min-kind metrics breach below the threshold', () => {
    const t = new HealthTracker({ degradeAfterMs: 0, recoverAfterMs: 0 }, 0);
    expect(t.update(0, rtt(undefined))).toBe(false);
    expect(t.update(1, { ratio: { value: 0.5, threshold: 0.8, kind: 'min', source: 'test' } })).toBe(true);
    expect(t.snapshot().score).toBe(0.625);
  });
});

describe('ProbeWindow', () => {
  it('counts unanswered probes as lost after the loss timeout and gives the median RTT', () => {
    const w = new ProbeWindow(1_000);
    for (let i = 0; i < 20; i++) w.sent(i, i * 10);
    for (let i = 0; i < 20; i++) if (i % 5 !== 0) w.echoed(i, i * 10 + 4 + (i % 3));
    expect(w.echoed(999, 5)).toBeUndefined();
    w.settle(150, 100); // probes sent before 50 ms and unanswered are lost
    w.settle(400, 100);
    expect(w.lossRatio()).toBe(4 / 20);
    expect(w.medianRttMs()).toBe(5);
    w.settle(2_000, 100);
    expect(w.lossRatio()).toBeUndefined();
  });
});

describe('degradation failover without flapping (manual clock)', () => {
  it('loss oscillating around the threshold for 30 s switches at most as often as the hysteresis allows', async () => {
    const recoverAfterMs = 3_000;
    const stableMs = 5_000;
    const h = harness({ health: { recoverAfterMs }, failback: { stableMs } });
    const [a, b] = [await h.receiver('a'), await h.receiver('b')];
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    let seed = 7;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const link = (): ReturnType<typeof a.link> => a.link();
    for (let t = 0; t < 30_000; t += 1_000) {
      // 1 s at 3 % loss, 1 s at 9 %: the 5 % threshold is crossed every second
      link()?.setUnreliableLoss((t / 1_000) % 2 === 0 ? 0.03 : 0.09, random);
      for (let i = 0; i < 100; i++) {
        await h.gateway.publish('s1', `x${t + i}`);
        await h.step(10, 10);
      }
    }
    const switches = h.gateway.streamHealth('s1').switches.filter((s) => s.reason !== 'initial');
    const allowed = 2 * Math.ceil(30_000 / (recoverAfterMs + stableMs));
    console.log(`oscillating loss for 30 s: ${switches.length} switches (${switches.map((s) => `${s.from}->${s.to}:${s.reason}`).join(', ')}); hysteresis allows at most ${allowed}`);
    expect(switches.length).toBeGreaterThan(0); // the breach is real: it does react
    expect(switches.length).toBeLessThanOrEqual(allowed);
    for (const s of switches.filter((x) => x.reason === 'degraded')) {
      expect(s.detail).toContain('loss_ratio');
      expect(s.metrics?.loss_ratio?.value).toBeGreaterThan(0.05);
    }
    expect(strictlyIncreasing(seqsOf(a)) && strictlyIncreasing(seqsOf(b))).toBe(true);
    const union = new Set([...seqsOf(a), ...seqsOf(b)]);
    expect(union.size).toBe(3_000);
    await h.close();
  });
});

describe('RTT histogram (silence limit)', () => {
  it('nearest-rank quantiles within 10 %, over the last `capacity` samples only', () => {
    const h = new RttHistogram(100);
    expect(h.quantile(0.99)).toBeUndefined();
    for (let i = 1; i <= 100; i++) h.add(i); // 1..100 ms
    const p99 = h.quantile(0.99) ?? 0;
    expect(p99).toBeGreaterThanOrEqual(99);
    expect(p99).toBeLessThanOrEqual(99 * 1.1);
    const p50 = h.quantile(0.5) ?? 0;
    expect(p50).toBeGreaterThanOrEqual(50);
    expect(p50).toBeLessThanOrEqual(55);
    // one hiccup among 100 samples is the max, not the p99
    for (let i = 0; i < 99; i++) h.add(1);
    h.add(500);
    expect(h.quantile(0.99)).toBeLessThanOrEqual(1.1);
    expect(h.quantile(1)).toBeGreaterThanOrEqual(500);
    h.clear();
    expect(h.quantile(0.5)).toBeUndefined();
  });
});
