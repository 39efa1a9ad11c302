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
  type ReceiverCoreOptions,
} from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

/**
 * A fake gateway end driven by the test: it sees the SDK's frames and sends frames back.
 * `connect()` has been called and the first dial made; nothing was answered yet.
 */
async function fakeGateway(options: Partial<Omit<ReceiverCoreOptions, 'dial'>> = {}) {
  const clock = new ManualClock();
  const sent: Frame[] = [];
  let gw: MemoryTransport | undefined;
  let dials = 0;
  const hints: unknown[] = [];
  const rx = new ReceiverCore({
    endpointId: 'rx',
    clock,
    reconnect: { nextRetryDelayMs: () => 50 },
    ...options,
    dial: async (hint) => {
      dials++;
      hints.push(hint);
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
  connected.catch(() => undefined);
  await settle();
  const send = (f: Frame): void => void gw?.send(encodeFrame(f), 'data');
  const welcome = (maxFrameBytes = 1 << 20, version = PROTOCOL_VERSION): void =>
    send({ type: FrameType.WELCOME, version, sessionId: 'sess', heartbeatIntervalMs: 250, maxFrameBytes });
  return { clock, rx, sent, chunks, send, welcome, connected, gw: () => gw, dials: () => dials, hints };
}

/** The fake gateway after WELCOME, with a DATA sender for stream `s`. */
async function setup() {
  const t = await fakeGateway();
  t.welcome();
  await t.connected;
  const data = (seq: number): void => t.send({ type: FrameType.DATA, streamId: 's', seq, timestamp: 1, payload: new Uint8Array([seq & 255]) });
  return { ...t, data };
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

  it('GOAWAY: what is unacked is acked on the old link, then it dials again at once (no backoff), asking for the next gateway, and resumes', async () => {
    const t = await fakeGateway({ reconnect: { nextRetryDelayMs: () => 60_000 } });
    t.welcome();
    await t.connected;
    for (let seq = 1; seq <= 3; seq++) t.send({ type: FrameType.DATA, streamId: 's', seq, timestamp: 1, payload: new Uint8Array([seq]) });
    await settle();
    // the ack is due 20 ms later: not sent yet
    expect(t.sent.filter((f) => f.type === FrameType.ACK)).toEqual([]);
    const old = t.gw()!;
    const statuses: string[] = [];
    t.rx.on('status', (s, detail) => statuses.push(`${s}: ${detail}`));
    t.send({ type: FrameType.GOAWAY, reason: 'gateway draining' });
    await settle();
    expect(t.sent.filter((f) => f.type === FrameType.ACK)).toEqual([{ type: FrameType.ACK, streamId: 's', seq: 3 }]);
    expect(old.isClosed).toBe(true);
    // no clock advance: the new dial did not wait for the (60 s) backoff
    expect(t.dials()).toBe(2);
    expect(t.hints).toEqual([undefined, { nextGateway: true }]);
    expect(statuses[0]).toBe('reconnecting: gateway going away: gateway draining');
    expect(t.sent.filter((f) => f.type === FrameType.HELLO).at(-1)).toMatchObject({ resume: { s: 3 } });
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

describe('ReceiverCore: epochs', () => {
  it('RESET from the gateway forgets the position of the old epoch; the new epoch is delivered from its start', async () => {
    const t = await setup();
    const resets: unknown[] = [];
    t.rx.on('reset', (r) => resets.push(r));
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e1' });
    for (let seq = 1; seq <= 5; seq++) t.data(seq);
    await settle();
    t.send({ type: FrameType.RESET, streamId: 's', epoch: 'e2', previousEpoch: 'e1' });
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e2' });
    for (let seq = 1; seq <= 3; seq++) t.data(seq);
    await settle();
    expect(resets).toEqual([{ streamId: 's', oldEpoch: 'e1', newEpoch: 'e2' }]);
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 1, 2, 3]);
    expect(t.rx.positions()).toEqual({ s: 3 });
    expect(t.rx.epochs()).toEqual({ s: 'e2' });
    t.rx.close();
  });

  it('a ROLE naming another epoch than the position resets too; the same epoch does not', async () => {
    const t = await setup();
    const resets: unknown[] = [];
    t.rx.on('reset', (r) => resets.push(r));
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e1' });
    t.data(1);
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'standby', fromSeq: 2, epoch: 'e1' });
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e9' });
    t.data(1);
    await settle();
    expect(resets).toEqual([{ streamId: 's', oldEpoch: 'e1', newEpoch: 'e9' }]);
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 1]);
    t.rx.close();
  });

  it('HELLO after a reconnect names the epoch of every position', async () => {
    const t = await setup();
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e1' });
    for (let seq = 1; seq <= 4; seq++) t.data(seq);
    await settle();
    t.gw()!.close('gone');
    await settle();
    t.clock.advance(60);
    await settle();
    const hello = t.sent.filter((f) => f.type === FrameType.HELLO).at(-1);
    expect(hello).toMatchObject({ resume: { s: 4 }, epochs: { s: 'e1' }, sdkVersion: SDK_VERSION });
    t.rx.close();
  });
});

describe('ReceiverCore: application errors and connect', () => {
  it('a listener that throws is reported as an error event (MS_LISTENER_ERROR, with the cause); delivery and acks go on', async () => {
    const t = await setup();
    const errors: { code: string; cause: unknown }[] = [];
    t.rx.on('error', (e) => errors.push({ code: e.code, cause: e.cause }));
    const bug = new Error('app bug');
    t.rx.on('chunk', (c) => {
      if (c.seq === 2) throw bug;
    });
    for (let seq = 1; seq <= 3; seq++) t.data(seq);
    await settle();
    t.clock.advance(25);
    await settle();
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2, 3]);
    expect(errors).toEqual([{ code: 'MS_LISTENER_ERROR', cause: bug }]);
    expect(acks(t.sent).at(-1)).toBe(3);
    t.rx.close();
  });

  it('an error listener that throws goes to the injected logger, not into a loop', async () => {
    const warnings: unknown[] = [];
    const clock = new ManualClock();
    const rx = new ReceiverCore({
      endpointId: 'rx',
      clock,
      logger: { warn: (_message, detail) => warnings.push(detail) },
      dial: async () => MemoryTransport.pair()[1],
    });
    const inError = new Error('error handler bug');
    rx.on('error', () => {
      throw inError;
    });
    rx.on('status', () => {
      throw new Error('status handler bug');
    });
    void rx.connect().catch(() => undefined);
    await settle();
    expect(warnings).toEqual([inError]);
    rx.close();
  });

  it('a second connect() while connecting gets the same promise, and both resolve on WELCOME', async () => {
    const clock = new ManualClock();
    let gw: MemoryTransport | undefined;
    const rx = new ReceiverCore({
      endpointId: 'rx',
      clock,
      dial: async () => {
        const [g, r] = MemoryTransport.pair();
        gw = g;
        return r;
      },
    });
    const first = rx.connect();
    const second = rx.connect();
    expect(second).toBe(first);
    await settle();
    let settled = 0;
    void first.then(() => settled++);
    void second.then(() => settled++);
    gw?.send(encodeFrame({ type: FrameType.WELCOME, version: PROTOCOL_VERSION, sessionId: 's', heartbeatIntervalMs: 250, maxFrameBytes: 1 << 20 }), 'control');
    await settle();
    expect(settled).toBe(2);
    await expect(rx.connect()).resolves.toBeUndefined();
    rx.close();
  });

  it('the frame limit is the protocol default until WELCOME, then the one the gateway advertises', async () => {
    const big = (seq: number, bytes: number): Frame => ({ type: FrameType.DATA, streamId: 's', seq, timestamp: 1, payload: new Uint8Array(bytes) });
    const t = await fakeGateway();
    const errors: string[] = [];
    t.rx.on('error', (e) => errors.push(e.code));
    t.send(big(1, 1_100_000)); // > 1 MiB before WELCOME
    await settle();
    expect(errors).toEqual(['MS_FRAME_TOO_LARGE']);
    t.clock.advance(60); // reconnect
    await settle();
    t.welcome(2 << 20);
    await t.connected;
    t.send(big(1, 1_500_000)); // allowed by the gateway's 2 MiB
    await settle();
    expect(t.chunks.map((c) => c.payload.byteLength)).toEqual([1_500_000]);
    t.welcome(64 * 1024);
    t.send(big(2, 100_000)); // above what this gateway said it sends
    await settle();
    expect(errors).toEqual(['MS_FRAME_TOO_LARGE', 'MS_FRAME_TOO_LARGE']);
    t.rx.close();
  });
});

describe('ReceiverCore: a gateway of another protocol version', () => {
  it('a WELCOME of another version fails connect() with MS_PROTOCOL_VERSION and does not retry', async () => {
    const t = await fakeGateway();
    t.welcome(1 << 20, PROTOCOL_VERSION + 1);
    await expect(t.connected).rejects.toMatchObject({ code: 'MS_PROTOCOL_VERSION' });
    t.clock.advance(500);
    await settle();
    expect(t.dials()).toBe(1);
    expect(t.rx.status).toBe('closed');
  });

  it('a gateway that cannot read our HELLO (ERROR MS_FRAME_* before WELCOME) is an old one: MS_PROTOCOL_VERSION, no retry loop', async () => {
    const t = await fakeGateway();
    t.send({ type: FrameType.ERROR, code: 'MS_FRAME_INVALID_FIELD', message: 'HELLO.sdkVersion must be a string' });
    await expect(t.connected).rejects.toMatchObject({ code: 'MS_PROTOCOL_VERSION' });
    t.clock.advance(500);
    await settle();
    expect(t.dials()).toBe(1);
  });
});

describe('ReceiverCore: per-connection order', () => {
  it('unreliable DATA that overtakes its stream ROLE on a new connection is held until the ROLE, then judged in the new epoch', async () => {
    const t = await setup();
    const resets: unknown[] = [];
    t.rx.on('reset', (r) => resets.push(r));
    t.send({ type: FrameType.ROLE, streamId: 'u', role: 'active', fromSeq: 1, epoch: 'e1' });
    const udata = (seq: number): void => void t.gw()?.send(encodeFrame({ type: FrameType.DATA, streamId: 'u', seq, timestamp: 1, payload: new Uint8Array([seq]) }), 'data-unreliable');
    for (let seq = 1; seq <= 5; seq++) udata(seq);
    await settle();
    t.gw()!.close('gateway restarted');
    await settle();
    t.clock.advance(60); // reconnect
    await settle();
    // the new gateway's DATA of epoch e2 arrives before its ROLE (another channel)
    udata(1);
    udata(2);
    await settle();
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5]);
    t.send({ type: FrameType.ROLE, streamId: 'u', role: 'active', fromSeq: 1, epoch: 'e2' });
    await settle();
    expect(resets).toEqual([{ streamId: 'u', oldEpoch: 'e1', newEpoch: 'e2' }]);
    expect(t.chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5, 1, 2]);
    t.rx.close();
  });

  it('an ack scheduled on the old connection is not sent on the new one (HELLO carries the position with its epoch)', async () => {
    const t = await fakeGateway({ ackDelayMs: 500 });
    const { clock, sent, send } = t;
    t.welcome();
    await t.connected;
    send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e1' });
    send({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 1, payload: new Uint8Array(1) }); // ack due in 500 ms
    await settle();
    t.gw()!.close('gateway restarted');
    await settle();
    clock.advance(60); // reconnected long before the old ack timer
    await settle();
    clock.advance(600); // where the old timer would have fired, on the new connection
    await settle();
    const lastHello = sent.map((f) => f.type).lastIndexOf(FrameType.HELLO);
    const afterHello = sent.slice(lastHello);
    expect(afterHello[0]).toMatchObject({ type: FrameType.HELLO, resume: { s: 1 }, epochs: { s: 'e1' } });
    expect(acks(afterHello)).toEqual([]);
    t.rx.close();
  });
});
