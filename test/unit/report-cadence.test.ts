import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../gateway/src/index.js';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, ReceiverCore, REPORT_CADENCE_SINCE, versionAtLeast, type Frame } from '../../receiver-sdk/src/index.js';
import { harness, type Harness, type TestReceiver } from '../helpers/memory-harness.js';

/**
 * How often receivers report: the gateway asks for RECEIVER_REPORT every second where a
 * decision waits on the endpoint and every 5 s elsewhere (HEARTBEAT's reportMs), and the SDK
 * reports at the slower of that and its own interval. Manual clock throughout: no sleeps.
 */

/** The report intervals the gateway told this receiver, newest last, and the times its reports reached the gateway. */
function watch(r: TestReceiver): { told: number[]; reportsAt: number[] } {
  const told: number[] = [];
  const reportsAt: number[] = [];
  r.link()?.on('message', (bytes, channel) => {
    const d = decodeFrame(bytes);
    if (channel === 'control' && d.ok && d.frame.type === FrameType.HEARTBEAT && d.frame.reportMs !== undefined) told.push(d.frame.reportMs);
  });
  return { told, reportsAt };
}

function countReports(h: Harness, r: TestReceiver, into: number[]): void {
  r.gatewaySide()?.on('message', (bytes) => {
    const d = decodeFrame(bytes);
    if (d.ok && d.frame.type === FrameType.RECEIVER_REPORT) into.push(h.clock.now());
  });
}

describe('report cadence (manual clock)', () => {
  it('asks for reports every second where a decision waits and every 5 s elsewhere; the receivers follow', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c'), await h.receiver('lone')];
    const seen = rx.map(watch);
    rx.forEach((r, i) => countReports(h, r, seen[i]!.reportsAt));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    h.gateway.createStream({ stream_id: 's2', endpoint_list: ['lone'] });
    const createdAt = h.clock.now();
    await h.step(5_000);
    // the first report on a link goes out at the receiver's own interval (1 s), whatever was told since
    for (const s of seen) expect(s.reportsAt[0]! - createdAt).toBeLessThanOrEqual(2_100);
    // a carries s1 with b to fail over to, b is next in line; c and the only endpoint of s2 wait on nothing
    expect(seen.map((s) => s.told.at(-1))).toEqual([1_000, 1_000, 5_000, 5_000]);
    const from = h.clock.now();
    await h.step(20_000);
    const over = (s: { reportsAt: number[] }): number => s.reportsAt.filter((at) => at > from).length;
    expect(seen.map(over)).toEqual([20, 20, 4, 4]);
    await h.close();
  });

  it('tells a faster interval at once when the endpoint becomes next in line', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    const c = watch(rx[2]!);
    countReports(h, rx[2]!, c.reportsAt);
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.step(3_000);
    expect(c.told.at(-1)).toBe(5_000);
    const toldBefore = c.told.length;
    await h.gateway.removeEndpoint('s1', 'b');
    const changedAt = h.clock.now();
    await h.step(50);
    expect(c.told.slice(toldBefore)).toEqual([1_000]);
    // the receiver reports within a second of being told, then every second
    await h.step(5_000 - 50);
    const after = c.reportsAt.filter((at) => at > changedAt);
    expect(after[0]! - changedAt).toBeLessThanOrEqual(1_000);
    expect(after.length).toBeGreaterThanOrEqual(5);
    await h.close();
  });

  it("the slower of the gateway's and the receiver's own interval holds; a receiver with reports off sends none", async () => {
    const h = harness();
    const reportsAt = new Map<string, number[]>();
    for (const [id, reportIntervalMs] of [['slow', 2_000], ['off', 0]] as const) {
      const [gatewaySide, receiverSide] = MemoryTransport.pair();
      const core = new ReceiverCore({ endpointId: id, clock: h.clock, reportIntervalMs, reconnect: { nextRetryDelayMs: () => 100 }, dial: () => Promise.resolve(receiverSide) });
      h.gateway.accept(gatewaySide, { endpointId: id });
      const at: number[] = [];
      reportsAt.set(id, at);
      gatewaySide.on('message', (bytes) => {
        const d = decodeFrame(bytes);
        if (d.ok && d.frame.type === FrameType.RECEIVER_REPORT) at.push(h.clock.now());
      });
      const connected = core.connect();
      await h.settle();
      await connected;
    }
    await h.receiver('other');
    // both wait on a decision: the gateway asks for a report every second
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['slow', 'other'] });
    h.gateway.createStream({ stream_id: 's2', endpoint_list: ['off', 'other'] });
    await h.step(2_000);
    const from = h.clock.now();
    await h.step(20_000);
    expect(reportsAt.get('slow')!.filter((at) => at > from).length).toBe(10);
    expect(reportsAt.get('off')).toEqual([]);
    await h.close();
  });

  it('an SDK before REPORT_CADENCE_SINCE is told no report interval (its decoder rejects a 5-element HEARTBEAT)', async () => {
    expect(versionAtLeast('0.2.1', REPORT_CADENCE_SINCE)).toBe(false);
    const h = harness();
    const heartbeats: Frame[] = [];
    const [gatewaySide, receiverSide] = MemoryTransport.pair();
    receiverSide.on('message', (bytes, channel) => {
      const d = decodeFrame(bytes);
      if (channel !== 'control' || !d.ok || d.frame.type !== FrameType.HEARTBEAT) return;
      heartbeats.push(d.frame);
      receiverSide.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: d.frame.nonce, sentAt: d.frame.sentAt }), 'control');
    });
    h.gateway.accept(gatewaySide, { endpointId: 'old' });
    receiverSide.send(encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'old', sdkVersion: '0.2.1', resume: {}, epochs: {} }), 'control');
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['old'] });
    await h.step(3_000);
    expect(heartbeats.length).toBeGreaterThan(2);
    expect(heartbeats.some((f) => f.type === FrameType.HEARTBEAT && f.cadenceMs !== undefined)).toBe(true);
    expect(heartbeats.every((f) => f.type === FrameType.HEARTBEAT && f.reportMs === undefined)).toBe(true);
    receiverSide.close('done');
    await h.close();
  });
});
