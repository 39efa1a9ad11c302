import { describe, expect, it } from 'vitest';
import { harness, seqsOf } from '../helpers/memory-harness.js';

describe('receiver reports', () => {
  it('the SDK reports what it received and its RTT view; the gateway shows and scores it', async () => {
    const h = harness();
    await h.receiver('a');
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a'] });
    for (let i = 0; i < 300; i++) {
      await h.gateway.publish('s1', new Uint8Array(100));
      await h.step(10, 10);
    }
    // the only endpoint of its stream: no decision waits on it, it reports every 5 s
    await h.step(5_100);
    const s = h.gateway.endpointHealth('a').streams[0];
    expect(s?.receiver_report).toMatchObject({ received_chunks: 300, received_bytes: 30_000, lost_chunks: 0 });
    expect(s?.receiver_report?.age_ms).toBeLessThan(5_100);
    expect(s?.receiver_report?.rtt_ms).toBeGreaterThanOrEqual(0);
    expect(h.gateway.endpointHealth('a').path.metrics.receiver_rtt_ms?.source).toBe('receiver.report.rtt');
    await h.close();
  });

  it('loss the receiver reports on an unreliable stream degrades the path and moves the stream', async () => {
    const h = harness({ health: { maxLossRatio: 0.05 } });
    const [a, b] = [await h.receiver('a'), await h.receiver('b')];
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'], reliability: 'unreliable' });
    let seed = 3;
    const random = (): number => ((seed = (seed * 16_807) % 2_147_483_647) / 2_147_483_647);
    for (let i = 0; i < 600; i++) {
      if (i === 200) a.link()?.setUnreliableLoss(0.2, random);
      await h.gateway.publish('s1', new Uint8Array(100));
      await h.step(10, 10);
    }
    const away = h.gateway.streamHealth('s1').switches.find((x) => x.from === 'a');
    expect(away?.reason).toBe('degraded');
    expect(away?.detail).toEqual(expect.arrayContaining(['loss_ratio']));
    expect(seqsOf(b).length).toBeGreaterThan(0);
    await h.close();
  });
});
