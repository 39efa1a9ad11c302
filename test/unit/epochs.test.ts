import { describe, expect, it } from 'vitest';
import { createGateway, ManualClock, MemoryTransport, type Gateway } from '../../gateway/src/index.js';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, ReceiverCore, SDK_VERSION, type Chunk, type EpochReset, type Frame } from '../../receiver-sdk/src/index.js';
import { closeOnManualClock, range, settle } from '../helpers/memory-harness.js';

/**
 * A receiver that always dials "the gateway at this address", whichever process that is
 * now: `restart()` crashes the current gateway (its link goes silent, nothing is said)
 * and puts a new one with an empty in-memory log in its place.
 */
function restartable() {
  const clock = new ManualClock();
  const make = (): Gateway => createGateway({ clock, logLevel: 'silent', failback: { enabled: false } });
  let gateway = make();
  let link: { gw: MemoryTransport; rx: MemoryTransport } | undefined;
  const rx = new ReceiverCore({
    endpointId: 'a',
    clock,
    reconnect: { nextRetryDelayMs: () => 100 },
    dial: async () => {
      const [gw, r] = MemoryTransport.pair();
      gateway.accept(gw, { endpointId: 'a' });
      link = { gw, rx: r };
      return r;
    },
  });
  const chunks: Chunk[] = [];
  const resets: EpochReset[] = [];
  rx.on('chunk', (c) => chunks.push(c));
  rx.on('reset', (r) => resets.push(r));
  const step = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      await settle();
    }
  };
  return {
    clock,
    rx,
    chunks,
    resets,
    step,
    gateway: () => gateway,
    /** The current path goes silent; the same gateway stays. */
    dropLink: () => {
      if (link) link.gw.blackhole = true;
    },
    /** SIGKILL: the old process says nothing more, its sockets go silent. */
    restart: () => {
      if (link) link.gw.blackhole = true;
      void gateway.close();
      gateway = make();
    },
    async publish(n: number): Promise<void> {
      for (let i = 0; i < n; i++) {
        await gateway.publish('s', `chunk ${i}`);
        await step(10);
      }
    },
    async connected(): Promise<void> {
      const ok = rx.connect();
      await settle();
      await ok;
    },
    async close(): Promise<void> {
      rx.close();
      await closeGateway(gateway, clock);
    },
  };
}

const closeGateway = closeOnManualClock;

const seqs = (chunks: Chunk[]): number[] => chunks.map((c) => c.seq);

describe('stream epochs across a gateway restart (manual clock)', () => {
  it('the receiver reconnects before the stream is created again: ROLE names the new epoch, the SDK resets and delivers all 50', async () => {
    const t = restartable();
    await t.connected();
    t.gateway().createStream({ stream_id: 's', endpoint_list: ['a'] });
    const epoch1 = t.gateway().getStream('s').epoch;
    await t.publish(100);
    expect(seqs(t.chunks)).toEqual(range(1, 100));
    expect(t.rx.epochs()).toEqual({ s: epoch1 });

    t.restart();
    await t.step(1_500); // silence timeout (1 s), then the reconnect
    expect(t.rx.status).toBe('connected');
    expect(t.resets).toEqual([]); // nothing to tell yet: the new gateway has no stream s
    t.gateway().createStream({ stream_id: 's', endpoint_list: ['a'] });
    const epoch2 = t.gateway().getStream('s').epoch;
    expect(epoch2).not.toBe(epoch1);
    await t.publish(50);

    expect(t.resets).toEqual([{ streamId: 's', oldEpoch: epoch1, newEpoch: epoch2 }]);
    expect(seqs(t.chunks)).toEqual([...range(1, 100), ...range(1, 50)]);
    expect(t.rx.positions()).toEqual({ s: 50 });
    expect(t.gateway().getStream('s').endpoint_list[0]?.last_acked_seq).toBe(50);
    await t.close();
  });

  it('the stream is already back when the receiver reconnects: HELLO names the old epoch, the gateway answers RESET, all 50 arrive', async () => {
    const t = restartable();
    await t.connected();
    t.gateway().createStream({ stream_id: 's', endpoint_list: ['a'] });
    const epoch1 = t.gateway().getStream('s').epoch;
    await t.publish(100);

    t.restart();
    t.gateway().createStream({ stream_id: 's', endpoint_list: ['a'] });
    for (let i = 0; i < 50; i++) await t.gateway().publish('s', `after ${i}`);
    const epoch2 = t.gateway().getStream('s').epoch;
    // the old position (100) must not count as acked in the new epoch
    await t.step(1_500);

    expect(t.resets).toEqual([{ streamId: 's', oldEpoch: epoch1, newEpoch: epoch2 }]);
    expect(seqs(t.chunks)).toEqual([...range(1, 100), ...range(1, 50)]);
    expect(t.chunks.slice(100).map((c) => new TextDecoder().decode(c.payload))).toEqual(range(0, 49).map((i) => `after ${i}`));
    expect(t.gateway().getStream('s').endpoint_list[0]?.last_acked_seq).toBe(50);
    await t.close();
  });

  it('a reconnect to the same gateway resumes in the same epoch: no reset, no duplicate', async () => {
    const t = restartable();
    await t.connected();
    t.gateway().createStream({ stream_id: 's', endpoint_list: ['a'] });
    await t.publish(30);
    t.dropLink(); // the path dies, the gateway lives on
    await t.publish(20); // published while the receiver is away (no ack comes back)
    // the receiver drops the silent link after 4 x the heartbeat interval WELCOME told it (1 s for a stream's only endpoint), then redials
    await t.step(4_500);
    expect(t.rx.status).toBe('connected');
    await t.publish(10);
    expect(t.resets).toEqual([]);
    expect(seqs(t.chunks)).toEqual(range(1, 60));
    await t.close();
  });
});

/** A hand-written receiver: sends exactly the HELLO the test gives and records the answer. */
async function rawHello(gateway: Gateway, hello: Omit<Extract<Frame, { type: typeof FrameType.HELLO }>, 'type'>, clock: ManualClock): Promise<Frame[]> {
  const [g, r] = MemoryTransport.pair();
  const frames: Frame[] = [];
  r.on('message', (b) => {
    const d = decodeFrame(b);
    if (d.ok) frames.push(d.frame);
  });
  gateway.accept(g, { endpointId: hello.endpointId });
  r.send(encodeFrame({ type: FrameType.HELLO, ...hello }), 'control');
  for (let i = 0; i < 5; i++) {
    clock.advance(10);
    await settle();
  }
  r.close('done');
  return frames;
}

describe('resume positions are checked against the epoch', () => {
  it('a position without an epoch, or of another epoch, gets RESET and is not counted as acked', async () => {
    const clock = new ManualClock();
    const gateway = createGateway({ clock, logLevel: 'silent' });
    gateway.createStream({ stream_id: 's', endpoint_list: ['old', 'other'] });
    for (let i = 0; i < 10; i++) await gateway.publish('s', 'x');
    const epoch = gateway.getStream('s').epoch;
    const base = { version: PROTOCOL_VERSION, sdkVersion: SDK_VERSION, resume: { s: 7 } };
    const noEpoch = await rawHello(gateway, { ...base, endpointId: 'old', epochs: {} }, clock);
    const otherEpoch = await rawHello(gateway, { ...base, endpointId: 'other', epochs: { s: 'gone-epoch' } }, clock);
    expect(noEpoch.find((f) => f.type === FrameType.RESET)).toEqual({ type: FrameType.RESET, streamId: 's', epoch, previousEpoch: null });
    expect(otherEpoch.find((f) => f.type === FrameType.RESET)).toEqual({ type: FrameType.RESET, streamId: 's', epoch, previousEpoch: 'gone-epoch' });
    // ROLE follows on the same channel and names the stream's epoch
    expect(otherEpoch.find((f) => f.type === FrameType.ROLE)).toMatchObject({ streamId: 's', epoch });
    expect(gateway.getStream('s').endpoint_list.map((e) => e.last_acked_seq)).toEqual([0, 0]);
    await closeGateway(gateway, clock);
  });

  it('a position in the current epoch resumes: counted as acked as far as it was sent, no RESET', async () => {
    const clock = new ManualClock();
    const gateway = createGateway({ clock, logLevel: 'silent' });
    gateway.createStream({ stream_id: 's', endpoint_list: ['b'] });
    const epoch = gateway.getStream('s').epoch;
    const hello = { version: PROTOCOL_VERSION, sdkVersion: SDK_VERSION, endpointId: 'b' };
    for (let i = 0; i < 10; i++) await gateway.publish('s', 'x');
    const first = await rawHello(gateway, { ...hello, resume: {}, epochs: {} }, clock);
    expect(first.filter((f) => f.type === FrameType.DATA).map((f) => (f.type === FrameType.DATA ? f.seq : 0))).toEqual(range(1, 10));
    const again = await rawHello(gateway, { ...hello, resume: { s: 8 }, epochs: { s: epoch } }, clock);
    expect(again.some((f) => f.type === FrameType.RESET)).toBe(false);
    expect(again.find((f) => f.type === FrameType.ROLE && f.role === 'active')).toMatchObject({ streamId: 's', fromSeq: 9, epoch });
    expect(again.filter((f) => f.type === FrameType.DATA).map((f) => (f.type === FrameType.DATA ? f.seq : 0))).toEqual([9, 10]);
    await closeGateway(gateway, clock);
  });

  it('a HELLO from another SDK release line or protocol version gets a coded ERROR', async () => {
    const clock = new ManualClock();
    const gateway = createGateway({ clock, logLevel: 'silent' });
    const errorOf = (frames: Frame[]): string | undefined => {
      const e = frames.find((f) => f.type === FrameType.ERROR);
      return e?.type === FrameType.ERROR ? e.code : undefined;
    };
    const base = { resume: {}, epochs: {} };
    expect(errorOf(await rawHello(gateway, { ...base, version: PROTOCOL_VERSION, sdkVersion: '1.0.0', endpointId: 'x' }, clock))).toBe('MS_PROTOCOL_VERSION');
    expect(errorOf(await rawHello(gateway, { ...base, version: PROTOCOL_VERSION, sdkVersion: 'not-semver', endpointId: 'y' }, clock))).toBe('MS_PROTOCOL_VERSION');
    // while the major is 0, each minor is its own line (semver): 0.1.x receivers speak another protocol
    expect(errorOf(await rawHello(gateway, { ...base, version: PROTOCOL_VERSION, sdkVersion: '0.1.0', endpointId: 'w' }, clock))).toBe('MS_PROTOCOL_VERSION');
    expect(errorOf(await rawHello(gateway, { ...base, version: PROTOCOL_VERSION, sdkVersion: '0.2.7', endpointId: 'v' }, clock))).toBeUndefined();
    expect(errorOf(await rawHello(gateway, { ...base, version: 1, sdkVersion: SDK_VERSION, endpointId: 'z' }, clock))).toBe('MS_PROTOCOL_VERSION');
    expect(errorOf(await rawHello(gateway, { ...base, version: PROTOCOL_VERSION, sdkVersion: SDK_VERSION, endpointId: 'ok' }, clock))).toBeUndefined();
    await closeGateway(gateway, clock);
  });
});
