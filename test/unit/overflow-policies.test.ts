import { describe, expect, it } from 'vitest';
import type { Gap } from '../../receiver-sdk/src/index.js';
import { harness, range, seqsOf, strictlyIncreasing } from '../helpers/memory-harness.js';

/**
 * Each overflow policy against a rate-capped endpoint (manual clock, in-memory link
 * capped at 20 kB/s while the stream offers ~46 kB/s): what the endpoint receives must
 * match the policy, and every chunk it did not get must be declared by a GAP.
 */
const CAP = 20_000;
const N = 2_000;
const KEYS = 10;

/** The oldest unacked chunk's age and the reasons the path was degraded, sampled while capped. */
interface CappedSamples {
  maxAckLagMs: number;
  reasons: Set<string>;
  /** delivery_ratio as last seen while capped. */
  deliveryRatio: number | undefined;
}

async function run(overflow: 'backpressure' | 'drop-oldest' | 'conflate' | 'decimate' | 'layers', sendHighWaterBytes = 1_024, maxBacklogMs = 500) {
  const h = harness({ sendHighWaterBytes, health: { recoverAfterMs: 1_000 } });
  const capped: CappedSamples = { maxAckLagMs: 0, reasons: new Set(), deliveryRatio: undefined };
  const a = await h.receiver('a');
  const gaps: Gap[] = [];
  a.core.on('gap', (g) => gaps.push(g));
  h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'], policy: { overflow, max_backlog_ms: maxBacklogMs, decimate_n: 2 } });
  await h.step(20);
  a.gatewaySide()?.setRateLimit(CAP, h.clock);
  const meta = new Map<number, { key: string; layer: number }>();
  const started = h.clock.now();
  const publish = async (i: number): Promise<void> => {
    const key = `k${i % KEYS}`;
    const layer = i % 3;
    let done = false;
    const p = h.gateway.publish('s1', new Uint8Array(200).fill(i & 255), { key, layer }).then((r) => {
      done = true;
      meta.set(r.seq, { key, layer });
    });
    await h.settle();
    while (!done) await h.step(10, 10); // backpressure: time moves on while publish waits
    await p;
  };
  for (let i = 1; i <= N; i++) {
    await publish(i);
    await h.step(5, 5); // offered: 200 chunks/s
    if (i % 20 === 0) {
      const e = h.gateway.streamHealth('s1').endpoints[0];
      capped.maxAckLagMs = Math.max(capped.maxAckLagMs, e?.metrics.ack_lag_ms?.value ?? 0);
      for (const reason of e?.reasons ?? []) capped.reasons.add(reason);
      capped.deliveryRatio = e?.metrics.delivery_ratio?.value ?? capped.deliveryRatio;
    }
  }
  const publishMs = h.clock.now() - started;
  a.gatewaySide()?.setRateLimit(undefined, h.clock);
  await h.step(6_000);
  // after the cap is gone the endpoint keeps up again (layers: climbs back one layer per calm 2 s)
  for (let i = N + 1; i <= N + 600; i++) {
    await publish(i);
    await h.step(5, 5);
  }
  await h.step(3_000);
  const got = seqsOf(a);
  const skipped = gaps.flatMap((g) => range(g.from, g.to));
  const result = { h, a, gaps, got, skipped, meta, publishMs, capped, health: h.gateway.streamHealth('s1') };
  return result;
}

function expectExactCoverage(got: number[], skipped: number[], total: number): void {
  expect(strictlyIncreasing(got)).toBe(true);
  const all = [...got, ...skipped].sort((x, y) => x - y);
  expect(all).toEqual(range(1, total)); // delivered ∪ declared = everything, no overlap
}

describe('overflow policies with a rate-capped endpoint', () => {
  it('backpressure: nothing is dropped and ingest is slowed to the path', async () => {
    const r = await run('backpressure');
    expect(r.gaps).toEqual([]);
    expect(r.got).toEqual(range(1, N + 600));
    const offeredMs = N * 5;
    console.log(`backpressure: publishing ${N} chunks offered over ${offeredMs} ms took ${r.publishMs} ms of manual time (cap ${CAP} B/s)`);
    expect(r.publishMs).toBeGreaterThan(offeredMs * 1.5);
    await r.h.close();
  }, 60_000);

  it('drop-oldest: GAP frames cover exactly the dropped range', async () => {
    const r = await run('drop-oldest');
    expect(r.skipped.length).toBeGreaterThan(0);
    expect(new Set(r.gaps.map((g) => g.reason))).toEqual(new Set(['overflow:drop-oldest']));
    expectExactCoverage(r.got, r.skipped, N + 600);
    expect(r.health.endpoints[0]?.skipped['overflow:drop-oldest']).toBe(r.skipped.length);
    await r.h.close();
  }, 60_000);

  it('conflate: every chunk left out is superseded by a newer delivered chunk of the same key', async () => {
    const r = await run('conflate');
    expect(r.skipped.length).toBeGreaterThan(0);
    expect(new Set(r.gaps.map((g) => g.reason))).toEqual(new Set(['overflow:conflate']));
    expectExactCoverage(r.got, r.skipped, N + 600);
    const deliveredByKey = new Map<string, number[]>();
    for (const seq of r.got) {
      const k = r.meta.get(seq)?.key ?? '';
      deliveredByKey.set(k, [...(deliveredByKey.get(k) ?? []), seq]);
    }
    for (const seq of r.skipped) {
      const k = r.meta.get(seq)?.key ?? '';
      expect((deliveredByKey.get(k) ?? []).some((t) => t > seq)).toBe(true);
    }
    await r.h.close();
  }, 60_000);

  it('decimate: within an overflow only every n-th chunk goes out', async () => {
    const r = await run('decimate');
    expect(r.skipped.length).toBeGreaterThan(0);
    expect(new Set(r.gaps.map((g) => g.reason))).toEqual(new Set(['overflow:decimate']));
    expectExactCoverage(r.got, r.skipped, N + 600);
    for (const g of r.gaps) expect(g.to - g.from + 1).toBeLessThanOrEqual(1); // n = 2: never two in a row skipped
    for (const seq of r.skipped) expect(seq % 2).toBe(1);
    await r.h.close();
  }, 60_000);

  it('layers: the capped endpoint gets the lower layers, and the top layer again once the path recovers', async () => {
    const r = await run('layers');
    expect(r.skipped.length).toBeGreaterThan(0);
    expect(new Set(r.gaps.map((g) => g.reason))).toEqual(new Set(['overflow:layers']));
    expectExactCoverage(r.got, r.skipped, N + 600);
    for (const seq of r.skipped) expect(r.meta.get(seq)?.layer).toBeGreaterThan(0);
    const lastTop = r.got.filter((s) => s > N && r.meta.get(s)?.layer === 2);
    expect(lastTop.length).toBeGreaterThan(0);
    await r.h.close();
  }, 60_000);

  it('layers behind a deep queue (the default 256 KiB high water): sends wait in the log, so the layer drops and the path stays healthy', async () => {
    // without the in-flight limit 256 KiB would queue in the link: 13 s at 20 kB/s, and the
    // ack lag and delivery ratio would call the path degraded
    const r = await run('layers', 256 * 1024, 200);
    expect(r.skipped.length).toBeGreaterThan(0);
    expectExactCoverage(r.got, r.skipped, N + 600);
    for (const seq of r.skipped) expect(r.meta.get(seq)?.layer).toBeGreaterThan(0);
    // in flight ≤ 20 kB/s × 100 ms (4 kB, the floor): 0.2 s at 20 kB/s, plus a message or two
    expect(r.capped.maxAckLagMs).toBeLessThan(500);
    expect([...r.capped.reasons]).toEqual([]);
    // shown, with the skipped layers counted as taken (about 1: the endpoint keeps up with what it is sent)
    expect(r.capped.deliveryRatio).toBeGreaterThan(0.8);
    expect(r.got.filter((s) => s > N && r.meta.get(s)?.layer === 2).length).toBeGreaterThan(0);
    await r.h.close();
  }, 60_000);
});

describe('live policy change and paced replay', () => {
  it('a policy changed while the stream runs applies from then on', async () => {
    const h = harness({ sendHighWaterBytes: 1_024 });
    const a = await h.receiver('a');
    const gaps: Gap[] = [];
    a.core.on('gap', (g) => gaps.push(g));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'], policy: { overflow: 'drop-oldest', max_backlog_ms: 500 } });
    await h.step(20);
    a.gatewaySide()?.setRateLimit(CAP, h.clock);
    for (let i = 1; i <= 600; i++) {
      await h.gateway.publish('s1', new Uint8Array(200), { key: `k${i % 3}` });
      await h.step(5, 5);
    }
    expect(gaps.length).toBeGreaterThan(0);
    const info = await h.gateway.setPolicy('s1', { overflow: 'conflate', max_backlog_ms: 500 });
    expect(info.policy).toEqual({ overflow: 'conflate', max_backlog_ms: 500, decimate_n: 2 });
    const before = gaps.length;
    for (let i = 601; i <= 1_200; i++) {
      await h.gateway.publish('s1', new Uint8Array(200), { key: `k${i % 3}` });
      await h.step(5, 5);
    }
    const after = gaps.slice(before).map((g) => g.reason);
    expect(after.length).toBeGreaterThan(0);
    expect(new Set(after)).toEqual(new Set(['overflow:conflate']));
    await expect(h.gateway.setPolicy('s1', { overflow: 'sample' as never })).rejects.toThrowError(/invalid policy/);
    await h.close();
  }, 30_000);

  it('replay onto a new path is paced and ramps with its acks, not burst', async () => {
    const pace = 200_000;
    const h = harness({ rate: { minPaceBytesPerSec: pace, paceGain: 2, paceBurstMs: 50 } });
    await h.receiver('a');
    const b = await h.receiver('b');
    h.gateway.createStream({ stream_id: 's1', mode: 'mirror', endpoint_list: ['a'] });
    // 1 MB of history at 100 kB/s, then the producer pauses
    for (let i = 0; i < 1_000; i++) {
      await h.gateway.publish('s1', new Uint8Array(1_000));
      await h.step(10, 10);
    }
    await h.step(2_000, 50); // input rate falls to 0
    h.gateway.addEndpoint('s1', { endpoint_id: 'b' }); // a new path: it replays everything retained
    const perSlice: number[] = [];
    let last = 0;
    for (let i = 0; i < 10; i++) {
      await h.step(100, 10);
      perSlice.push(seqsOf(b).length - last);
      last = seqsOf(b).length;
    }
    console.log(`paced replay of a 1 000 KB backlog onto a new path, KB per 100 ms: ${perSlice.join(', ')} (pace floor ${pace / 1000} KB/s, gain 2)`);
    // unpaced, the in-memory path would take the whole backlog in the first tick; paced, the
    // first 100 ms carry the floor rate, one bucket and one re-aim from the first acks
    // (retuned every 50 ms tick), and it ramps as acks come back
    expect(perSlice[0]).toBeLessThan(150);
    expect(Math.max(...perSlice.slice(2))).toBeGreaterThan(2 * (perSlice[0] ?? 0));
    await h.step(10_000, 50);
    expect(seqsOf(b)).toEqual(range(1, 1_000));
    await h.close();
  }, 30_000);
});
