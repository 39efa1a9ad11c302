import { describe, expect, it } from 'vitest';
import type { HedgeEvent, RoleChangedEvent } from '../../gateway/src/index.js';
import { harness, range, seqsOf, strictlyIncreasing, type Harness, type TestReceiver } from '../helpers/memory-harness.js';

/** Hedged delivery with the manual clock: 500 chunks/s, the active endpoint goes silent. */
const payload = (seq: number): Uint8Array => new TextEncoder().encode(`chunk-${seq}`);

async function setup(config = {}): Promise<{ h: Harness; rx: TestReceiver[]; hedges: HedgeEvent[]; roles: RoleChangedEvent[] }> {
  const h = harness({ failback: { enabled: false }, ...config });
  const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
  const hedges: HedgeEvent[] = [];
  const roles: RoleChangedEvent[] = [];
  h.gateway.on('hedged', (e) => hedges.push(e));
  h.gateway.on('roleChanged', (e) => roles.push(e));
  h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
  await h.settle();
  expect(h.gateway.getStream('s1').active).toEqual(['a']);
  return { h, rx, hedges, roles };
}

/** Publish `n` chunks at 500/s of manual time, calling `at` before each. */
async function publish(h: Harness, n: number, at: (i: number) => void | Promise<void> = () => undefined): Promise<void> {
  for (let i = 0; i < n; i++) {
    await at(i);
    await h.gateway.publish('s1', payload(i));
    await h.step(2, 2);
  }
}

function union(rx: TestReceiver[]): number[] {
  return [...new Set(rx.flatMap((r) => seqsOf(r)))].sort((x, y) => x - y);
}

describe('hedged delivery (manual clock)', () => {
  it('a silent active endpoint is hedged within tens of ms; its death commits the hedge (hedge-commit, nothing replayed)', async () => {
    const { h, rx, hedges, roles } = await setup();
    const [a, b, c] = rx as [TestReceiver, TestReceiver, TestReceiver];
    let frozenAt = 0;
    let ackedByA = 0;
    await publish(h, 4_000, async (i) => {
      if (i !== 2_000) return;
      a.freeze();
      frozenAt = h.clock.now();
      ackedByA = h.gateway.getStream('s1').endpoint_list[0]?.last_acked_seq ?? 0;
    });
    await h.step(500);

    const started = hedges.find((e) => e.kind === 'started');
    expect(started).toMatchObject({ for: 'a', by: 'b', fromSeq: ackedByA + 1 });
    const hedgeMs = (started?.at ?? 0) - frozenAt;
    // the first probe after a's last frame (≤ 10 ms), then the 15 ms floor, then the deferred check
    console.log(`hedge: started ${hedgeMs.toFixed(0)} ms after the freeze (probes every 10 ms while carrying a stream, silence floor 15 ms)`);
    expect(hedgeMs).toBeGreaterThanOrEqual(15);
    expect(hedgeMs).toBeLessThanOrEqual(30);
    // death (phi over heartbeats) commits it: b stays where it is
    expect(hedges.map((e) => e.kind)).toEqual(['started', 'committed']);
    const switches = h.gateway.streamHealth('s1').switches;
    expect(switches.map((s) => [s.from, s.to, s.reason, s.detail])).toEqual([
      [null, 'a', 'initial', undefined],
      ['a', 'b', 'hedge-commit', ['heartbeat-timeout']],
    ]);
    expect(switches[1]?.from_seq).toBe(ackedByA + 1);
    // measured from a's last ack to b's first ack: the hedge's start, not the commit
    expect(switches[1]?.interruption_ms).toBeLessThanOrEqual(hedgeMs + 40);
    expect(roles.filter((e) => e.endpointId === 'b').map((e) => [e.role, e.reason])).toEqual([['active', 'hedge-commit']]);

    const health = h.gateway.streamHealth('s1');
    expect(health.hedges).toMatchObject({ started: 1, ended: 0, committed: 1, running: [] });
    expect(health.endpoints.find((e) => e.endpoint_id === 'a')?.suspect_ms_total).toBeGreaterThan(0);
    for (const r of rx) expect(strictlyIncreasing(seqsOf(r))).toBe(true);
    expect(seqsOf(b)[0]).toBe(ackedByA + 1);
    expect(seqsOf(c)).toEqual([]);
    expect(union(rx)).toEqual(range(1, 4_000));
    // every chunk went to b once
    expect(health.endpoints.find((e) => e.endpoint_id === 'b')?.chunks_sent).toBe(4_000 - ackedByA);
    await h.close();
  });

  it('a stopped active endpoint that answers again ends the hedge: no switch, the standby stands down, nothing re-sent to the active', async () => {
    const { h, rx, hedges } = await setup();
    const [a, b] = rx as [TestReceiver, TestReceiver];
    await publish(h, 3_000, (i) => {
      if (i === 1_000) a.pause();
      if (i === 1_100) a.resume(); // 200 ms stopped: long enough to hedge, too short to be dead
    });
    await h.step(500);

    expect(hedges.map((e) => [e.kind, e.for, e.by])).toEqual([
      ['started', 'a', 'b'],
      ['ended', 'a', 'b'],
    ]);
    const health = h.gateway.streamHealth('s1');
    expect(health.switches.map((s) => s.reason)).toEqual(['initial']);
    expect(health.active).toEqual(['a']);
    expect(health.hedges).toMatchObject({ started: 1, ended: 1, committed: 0, running: [] });
    const ea = health.endpoints.find((e) => e.endpoint_id === 'a');
    const eb = health.endpoints.find((e) => e.endpoint_id === 'b');
    expect(eb?.role).toBe('standby');
    expect(eb?.hedging_for).toBeNull();
    // a got every chunk once, in order: the hedge changed nothing for it
    expect(seqsOf(a)).toEqual(range(1, 3_000));
    expect(ea?.chunks_sent).toBe(3_000);
    // b got the stretch from a's last ack until a answered, in order, and then nothing
    const got = seqsOf(b);
    expect(got.length).toBeGreaterThan(0);
    expect(strictlyIncreasing(got)).toBe(true);
    expect(got.at(-1)).toBeLessThan(1_200);
    await h.close();
  });

  it('hedging off: the same stop hedges nothing, and a healthy stream never hedges', async () => {
    const off = await setup({ failover: { hedge: false } });
    await publish(off.h, 1_500, (i) => {
      if (i === 500) off.rx[0]?.pause();
      if (i === 600) off.rx[0]?.resume();
    });
    expect(off.hedges).toEqual([]);
    expect(seqsOf(off.rx[1] as TestReceiver)).toEqual([]);
    await off.h.close();

    const healthy = await setup();
    await publish(healthy.h, 2_000);
    expect(healthy.hedges).toEqual([]);
    expect(healthy.h.gateway.streamHealth('s1').endpoints.map((e) => e.suspect_ms_total)).toEqual([0, 0, 0]);
    await healthy.h.close();
  });
});
