import { describe, expect, it } from 'vitest';
import type { RoleChangedEvent } from '../../gateway/src/index.js';
import { harness, range, seqsOf, strictlyIncreasing } from '../helpers/memory-harness.js';

const payload = (seq: number): Uint8Array => new TextEncoder().encode(`chunk-${seq}`);

describe('failover mode with a manual clock', () => {
  it('hedging off (the switch on death only): 3 endpoints, 10 000 chunks, primary heartbeats stop at chunk 4 000: next takes over, no chunk lost', async () => {
    const h = harness({ failback: { enabled: false }, failover: { hedge: false } });
    const [a, b, c] = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    const roles: RoleChangedEvent[] = [];
    h.gateway.on('roleChanged', (e) => roles.push(e));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.settle();
    expect(h.gateway.getStream('s1').active).toEqual(['a']);

    let frozenAt = 0;
    let ackedByAAtFreeze = 0;
    for (let seq = 1; seq <= 10_000; seq++) {
      const { seq: assigned } = await h.gateway.publish('s1', payload(seq));
      expect(assigned).toBe(seq);
      if (seq === 4_000) {
        await h.step(40); // let a's last acks in, like a live receiver would
        a.freeze();
        frozenAt = h.clock.now();
        ackedByAAtFreeze = h.gateway.getStream('s1').endpoint_list[0]?.last_acked_seq ?? 0;
      }
      await h.step(2, 2); // 500 chunks/s of manual time
    }
    await h.step(500);

    const takeover = roles.find((e) => e.endpointId === 'b' && e.role === 'active');
    expect(takeover).toBeDefined();
    const detectionMs = (takeover?.at ?? 0) - frozenAt;
    console.log(`failover: detection + switch took ${detectionMs.toFixed(0)} ms of manual-clock time (heartbeat 250 ms, phiDead 8)`);
    expect(detectionMs).toBeGreaterThan(250);
    expect(detectionMs).toBeLessThanOrEqual(1_000);
    expect(takeover?.reason).toBe('heartbeat-timeout');
    expect(takeover?.fromSeq).toBe(ackedByAAtFreeze + 1);

    const info = h.gateway.getStream('s1');
    expect(info.active).toEqual(['b']);
    const acked = new Map(info.endpoint_list.map((e) => [e.endpoint_id, e.last_acked_seq]));
    for (const r of [a, b, c]) expect(strictlyIncreasing(seqsOf(r))).toBe(true);
    expect(seqsOf(c)).toEqual([]);
    expect(seqsOf(b)[0]).toBe(ackedByAAtFreeze + 1);

    // union of what the endpoints acked: each endpoint's delivered seqs up to its cumulative ack
    const union = new Set<number>();
    for (const r of [a, b, c]) for (const s of seqsOf(r)) if (s <= (acked.get(r.id) ?? 0)) union.add(s);
    expect([...union].sort((x, y) => x - y)).toEqual(range(1, 10_000));
    const switches = h.gateway.streamHealth('s1').switches;
    expect(switches.map((s) => [s.from, s.to, s.reason])).toEqual([
      [null, 'a', 'initial'],
      ['a', 'b', 'heartbeat-timeout'],
    ]);
    // it starts at a's last ack or at the ingestion of b's first chunk (both within 40 ms of the
    // freeze) and ends at b's first ack (within its 20 ms ack delay of the takeover)
    expect(switches[0]?.interruption_ms).toBeUndefined();
    expect(switches[1]?.interruption_ms).toBeGreaterThanOrEqual(detectionMs - 40);
    expect(switches[1]?.interruption_ms).toBeLessThanOrEqual(detectionMs + 70);
    await h.close();
  });

  it('fails back to the recovered primary after the stable period, resuming after the frontier', async () => {
    const h = harness({ failback: { enabled: true, stableMs: 2_000 } });
    const [a, b] = [await h.receiver('a'), await h.receiver('b')];
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    const publish = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        await h.gateway.publish('s1', payload(i));
        await h.step(2, 2);
      }
    };
    await publish(500);
    a.freeze();
    await publish(1_000); // 2 s: a is declared dead, b takes over
    expect(h.gateway.getStream('s1').active).toEqual(['b']);
    a.thaw(); // a left the hung link (its silence watch) and now reconnects; the new link replaces the hung one
    await publish(500); // 1 s: a is back but not yet stable for 2 s
    expect(h.gateway.getStream('s1').active).toEqual(['b']);
    expect(h.gateway.endpointHealth('a').state).toBe('alive');
    // its path counts as degraded (the hung link's lost probes) for health.recoverAfterMs (3 s), then 2 s stable
    await publish(3_000);
    expect(h.gateway.getStream('s1').active).toEqual(['a']);
    await h.step(200);
    const switches = h.gateway.streamHealth('s1').switches.map((s) => [s.from, s.to, s.reason]);
    // b was hedging for the hung receiver; it is committed by whichever fires first: the
    // heartbeat detector or the path score (its probes and acks stop too)
    const commit = h.gateway.streamHealth('s1').switches[1];
    expect(commit?.detail?.[0]).toMatch(/^(heartbeat-timeout|degraded)$/);
    expect(switches).toEqual([
      [null, 'a', 'initial'],
      ['a', 'b', 'hedge-commit'],
      ['b', 'a', 'failback'],
    ]);
    const all = new Set([...seqsOf(a), ...seqsOf(b)]);
    expect(all.size).toBe(5_000);
    expect(Math.max(...all)).toBe(5_000);
    expect(strictlyIncreasing(seqsOf(a))).toBe(true);
    expect(strictlyIncreasing(seqsOf(b))).toBe(true);
    await h.close();
  });
});
