import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, SDK_VERSION } from '@mirrorstream/receiver/protocol';
import { MemoryTransport } from '../../gateway/src/index.js';
import { describe, expect, it } from 'vitest';
import { harness, type TestReceiver } from '../helpers/memory-harness.js';

/** Heartbeats (HEARTBEATs on the control channel) a receiver gets over `ms` of manual-clock time. */
async function heartbeatsOver(h: ReturnType<typeof harness>, receivers: TestReceiver[], ms: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const offs = receivers.map((r) => {
    counts[r.id] = 0;
    const link = r.link();
    const on = (bytes: Uint8Array, channel: string): void => {
      const d = decodeFrame(bytes);
      if (channel === 'control' && d.ok && d.frame.type === FrameType.HEARTBEAT) counts[r.id] = (counts[r.id] ?? 0) + 1;
    };
    link?.on('message', on);
    return () => link?.off('message', on);
  });
  await h.step(ms, 5);
  for (const off of offs) off();
  return counts;
}

/** Probes (HEARTBEATs on the unreliable channel) a receiver gets over `ms` of manual-clock time. */
async function probesOver(h: ReturnType<typeof harness>, receivers: TestReceiver[], ms: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const offs = receivers.map((r) => {
    counts[r.id] = 0;
    const link = r.link();
    const on = (_bytes: Uint8Array, channel: string): void => void (channel === 'data-unreliable' && (counts[r.id] = (counts[r.id] ?? 0) + 1));
    link?.on('message', on);
    return () => link?.off('message', on);
  });
  await h.step(ms, 5);
  for (const off of offs) off();
  return counts;
}

describe('adaptive probing (manual clock)', () => {
  it('probes fast only where a decision needs it: the carrying endpoint, the next in line; the rest at the standby rate', async () => {
    const h = harness({ health: { carrierProbeIntervalMs: 10, probeIntervalMs: 20, standbyProbeIntervalMs: 250 } });
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c'), await h.receiver('d'), await h.receiver('solo')];
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c', 'd'] });
    await h.gateway.createStream({ stream_id: 'alone', endpoint_list: ['solo'] });
    await h.step(1_000, 5); // rates settle at the first probe after the roles are known
    const counts = await probesOver(h, rx, 2_000);
    console.log(`probes in 2 s: ${JSON.stringify(counts)}`);
    // a carries feed with b..d behind it: every 10 ms (slack for the 5 ms step)
    expect(counts.a).toBeGreaterThanOrEqual(190);
    // b is next in line (the hedge candidate): every 20 ms
    expect(counts.b).toBeGreaterThanOrEqual(95);
    expect(counts.b).toBeLessThanOrEqual(101);
    // c, d wait behind b; solo is active with nowhere to fail over to: the standby rate
    for (const id of ['c', 'd', 'solo']) expect(counts[id]).toBeLessThanOrEqual(9);
    for (const id of ['c', 'd', 'solo']) expect(counts[id]).toBeGreaterThanOrEqual(7);
    await h.close();
  });

  it('a degraded endpoint proves its recovery fast only where a stream could switch on it: the only endpoint of its stream stays at the standby rate', async () => {
    const h = harness({ health: { carrierProbeIntervalMs: 10, probeIntervalMs: 20, standbyProbeIntervalMs: 250 } });
    const [solo, , , c] = [await h.receiver('solo'), await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    await h.gateway.createStream({ stream_id: 'alone', endpoint_list: ['solo'] });
    // c waits behind b (standby rate while healthy): degraded, it proves its recovery for a later switch
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c'] });
    // probes counted where they leave the gateway (a lost one counts too)
    const sent: Record<string, number> = { solo: 0, c: 0 };
    for (const [id, r] of [['solo', solo], ['c', c]] as const) {
      const side = r?.gatewaySide();
      if (!side) continue;
      const send = side.send.bind(side);
      side.send = (bytes, channel) => (channel === 'data-unreliable' && (sent[id] = (sent[id] ?? 0) + 1), send(bytes, channel));
    }
    let seed = 7;
    const random = (): number => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    await h.step(1_000, 5);
    for (const r of [solo, c]) r?.link()?.setUnreliableLoss(0.5, random);
    await h.step(6_000, 5);
    expect([h.gateway.endpointHealth('solo').path.verdict, h.gateway.endpointHealth('c').path.verdict]).toEqual(['degraded', 'degraded']);
    const before = { ...sent };
    await h.step(1_000, 5);
    const perSecond = { solo: (sent.solo ?? 0) - (before.solo ?? 0), c: (sent.c ?? 0) - (before.c ?? 0) };
    console.log(`degraded, probes sent in 1 s: ${JSON.stringify(perSecond)}`);
    // solo: nothing waits on its recovery, every 250 ms (it was every 20 ms); c: a switch may, every 20 ms
    expect(perSecond.solo).toBeLessThanOrEqual(5);
    expect(perSecond.solo).toBeGreaterThanOrEqual(3);
    expect(perSecond.c).toBeGreaterThanOrEqual(45);
    await h.close();
  });

  it('an endpoint probed at the normal rate from its first connection counts its lost probes (the window fits that rate)', async () => {
    // standby probes every second: a window sized for that rate would reuse its slots before a fast probe could count as lost
    const h = harness({ health: { carrierProbeIntervalMs: 10, probeIntervalMs: 20, standbyProbeIntervalMs: 1_000 } });
    // the stream first: b connects as next in line, at the rate a new connection starts with (no rate change)
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b'] });
    await h.receiver('a');
    const b = await h.receiver('b');
    let seed = 11;
    b.link()?.setUnreliableLoss(0.3, () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    await h.step(2_000, 5);
    const loss = h.gateway.endpointHealth('b').path.metrics.loss_ratio?.value;
    console.log(`b next in line, 30 % unreliable loss each way: loss_ratio ${loss}`);
    expect(loss).toBeGreaterThan(0.15); // 0 before: lost probes were overwritten before they could count
    expect(h.gateway.endpointHealth('b').path.verdict).toBe('degraded');
    await h.close();
  });

  it('a standby that becomes active is probed at the carrier rate from its next probe on', async () => {
    const h = harness({ health: { carrierProbeIntervalMs: 10, probeIntervalMs: 20, standbyProbeIntervalMs: 250 } });
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c'] });
    await h.step(1_000, 5);
    await h.gateway.reorderEndpoints('feed', ['c', 'a', 'b']);
    await h.step(300, 5); // one standby-rate probe interval for c to learn its new rate
    expect(h.gateway.getStream('feed').active).toEqual(['c']);
    const counts = await probesOver(h, rx, 1_000);
    console.log(`after the reorder, probes in 1 s: ${JSON.stringify(counts)}`);
    expect(counts.c).toBeGreaterThanOrEqual(75);
    expect(counts.a).toBeGreaterThanOrEqual(40); // next in line now
    expect(counts.b).toBeLessThanOrEqual(5);
    await h.close();
  });

  it('the hedge candidate is the first *connected* standby: with b not connected, c is probed at the normal rate', async () => {
    const h = harness({ health: { carrierProbeIntervalMs: 10, probeIntervalMs: 20, standbyProbeIntervalMs: 250 } });
    const rx = [await h.receiver('a'), await h.receiver('c'), await h.receiver('d')];
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c', 'd'] });
    await h.step(1_000, 5);
    const counts = await probesOver(h, rx, 1_000);
    console.log(`b never connected, probes in 1 s: ${JSON.stringify(counts)}`);
    expect(counts.a).toBeGreaterThanOrEqual(95);
    expect(counts.c).toBeGreaterThanOrEqual(47);
    expect(counts.c).toBeLessThanOrEqual(51);
    expect(counts.d).toBeLessThanOrEqual(5);
    await h.close();
  });

  it('heartbeats follow the same need: 250 ms where a decision waits, 1 s elsewhere; WELCOME tells the longest', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c'), await h.receiver('solo')];
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c'] });
    await h.gateway.createStream({ stream_id: 'alone', endpoint_list: ['solo'] });
    await h.step(2_000, 5);
    const counts = await heartbeatsOver(h, rx, 4_000);
    console.log(`heartbeats in 4 s: ${JSON.stringify(counts)}`);
    for (const id of ['a', 'b']) expect(counts[id]).toBeGreaterThanOrEqual(15);
    for (const id of ['a', 'b']) expect(counts[id]).toBeLessThanOrEqual(17);
    for (const id of ['c', 'solo']) expect(counts[id]).toBeGreaterThanOrEqual(3);
    for (const id of ['c', 'solo']) expect(counts[id]).toBeLessThanOrEqual(5);
    // a new connection learns the longest interval it may see (its silence limit is 4 x that)
    const [gatewaySide, receiverSide] = MemoryTransport.pair();
    const welcomes: number[] = [];
    receiverSide.on('message', (bytes) => {
      const d = decodeFrame(bytes);
      if (d.ok && d.frame.type === FrameType.WELCOME) welcomes.push(d.frame.heartbeatIntervalMs);
    });
    h.gateway.accept(gatewaySide, { endpointId: 'raw' });
    receiverSide.send(encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'raw', sdkVersion: SDK_VERSION, resume: {}, epochs: {} }), 'control');
    await h.step(20, 5);
    expect(welcomes).toEqual([1_000]);
    receiverSide.close('done');
    await h.close();
  });

  it('a standby that moves up to next in line is heartbeated fast at once; one further down that dies is found dead within a few seconds', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    await h.gateway.createStream({ stream_id: 'feed', endpoint_list: ['a', 'b', 'c'] });
    await h.step(2_000, 5);
    // b leaves the list: c is next in line now
    await h.gateway.removeEndpoint('feed', 'b');
    await h.step(100, 5);
    const counts = await heartbeatsOver(h, [rx[2] as TestReceiver], 1_000);
    expect(counts.c).toBeGreaterThanOrEqual(3);
    // b comes back at the end of the list (heartbeated every second) and hangs there: found dead
    // after a few of its heartbeat intervals, not at the 250 ms rate of the endpoints ahead of it
    await h.gateway.addEndpoint('feed', { endpoint_id: 'b' });
    await h.step(100, 5);
    const dead: Record<string, number> = {};
    const start = h.clock.now();
    h.gateway.on('endpointHealth', (e) => void (e.state === 'dead' && (dead[e.endpointId] ??= h.clock.now() - start)));
    rx[1]?.freeze();
    await h.step(6_000, 10);
    console.log(`far standby b found dead after ${dead.b} ms of silence`);
    expect(dead.b).toBeGreaterThan(1_000);
    expect(dead.b).toBeLessThan(4_000);
    await h.close();
  });
});
