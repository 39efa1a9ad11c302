import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../gateway/src/index.js';
import {
  decodeFrame,
  encodeFrame,
  FrameType,
  ManualClock,
  PROTOCOL_VERSION,
  ReceiverCore,
  SDK_VERSION,
  type Chunk,
  type Frame,
} from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

/** A fake gateway end driven by the test: it sees the SDK's frames and sends frames back. */
async function setup() {
  const clock = new ManualClock();
  const sent: Frame[] = [];
  let gw: MemoryTransport | undefined;
  let dials = 0;
  const rx = new ReceiverCore({
    endpointId: 'rx',
    clock,
    reconnect: { nextRetryDelayMs: () => 50 },
    dial: async () => {
      dials++;
      const [g, r] = MemoryTransport.pair();
      gw = g;
      g.on('message', (b) => {
        const d = decodeFrame(b);
        if (d.ok) sent.push(d.frame);
      });
      return r;
    },
  });
  const chunks: Chunk[] = [];
  rx.on('chunk', (c) => chunks.push(c));
  const connected = rx.connect();
  await settle();
  const send = (f: Frame): void => void gw?.send(encodeFrame(f), 'data');
  send({ type: FrameType.WELCOME, version: PROTOCOL_VERSION, sessionId: 'sess', heartbeatIntervalMs: 250, maxFrameBytes: 1 << 20 });
  await connected;
  const data = (seq: number): void => send({ type: FrameType.DATA, streamId: 's', seq, timestamp: 1, payload: new Uint8Array([seq & 255]) });
  return { clock, rx, sent, chunks, send, data, gw: () => gw, dials: () => dials };
}

const acks = (frames: Frame[]): number[] => frames.flatMap((f) => (f.type === FrameType.ACK ? [f.seq] : []));

describe('ReceiverCore', () => {
  it('says HELLO with its endpoint id and SDK version, and echoes heartbeats', async () => {
    const t = await setup();
    expect(t.sent[0]).toMatchObject({ type: FrameType.HELLO, endpointId: 'rx', sdkVersion: SDK_VERSION, resume: {} });
    t.send({ type: FrameType.HEARTBEAT, nonce: 7, sentAt: 123.5 });
    await settle();
    expect(t.sent.find((f) => f.type === FrameType.HEARTBEAT_ACK)).toMatchObject({ nonce: 7, sentAt: 123.5 });
    t.rx.close();
  });

  it('delivers in order, holds out-of-order chunks, drops duplicates, acks cumulatively', async () => {
    const t = await setup();
    for (const seq of [1, 3, 2, 2, 1, 5, 4, 6]) t.data(seq);
    await settle();
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    t.clock.advance(25);
    await settle();
    expect(acks(t.sent).at(-1)).toBe(6);
    for (let seq = 7; seq <= 40; seq++) t.data(seq);
    await settle();
    expect(acks(t.sent)).toContain(22); // every 16 chunks without waiting for the timer
    t.rx.close();
  });

  it('jumps forward on ROLE active (taking over) and past a GAP, reporting the gap', async () => {
    const t = await setup();
    const gaps: unknown[] = [];
    t.rx.on('gap', (g) => gaps.push(g));
    t.data(1);
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 100, epoch: 'e1' });
    t.data(100);
    t.send({ type: FrameType.GAP, streamId: 's', from: 101, to: 150, reason: 'retention' });
    t.data(151);
    await settle();
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 100, 151]);
    expect(gaps).toEqual([{ streamId: 's', from: 101, to: 150, reason: 'retention' }]);
    t.rx.close();
  });

  it('reconnects after a silent gateway and resumes from its last delivered seq', async () => {
    const t = await setup();
    for (let seq = 1; seq <= 5; seq++) t.data(seq);
    await settle();
    const statuses: string[] = [];
    t.rx.on('status', (s) => statuses.push(s));
    t.gw()!.blackhole = true;
    t.clock.advance(1_100); // silence timeout (4 x 250 ms, at least 1 s)
    await settle();
    t.clock.advance(60);
    await settle();
    expect(t.dials()).toBe(2);
    expect(statuses).toContain('reconnecting');
    const hellos = t.sent.filter((f) => f.type === FrameType.HELLO);
    expect(hellos.at(-1)).toMatchObject({ resume: { s: 5 } });
    t.rx.close();
  });

  it('answers a malformed frame from the gateway with ERROR and reconnects', async () => {
    const t = await setup();
    const errors: string[] = [];
    t.rx.on('error', (e) => errors.push(e.code));
    t.gw()!.send(new Uint8Array([0x93, 0x01]), 'data');
    await settle();
    expect(errors).toEqual(['MS_FRAME_MALFORMED']);
    expect(t.sent.some((f) => f.type === FrameType.ERROR)).toBe(true);
    t.clock.advance(60);
    await settle();
    expect(t.dials()).toBe(2);
    t.rx.close();
  });

  it('a listener that throws does not break delivery', async () => {
    const t = await setup();
    t.rx.on('chunk', () => {
      throw new Error('app bug');
    });
    t.data(1);
    t.data(2);
    await settle();
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2]);
    t.rx.close();
  });
});
