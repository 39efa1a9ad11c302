import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../gateway/src/index.js';
import { ERROR_LINGER_MS } from '../../gateway/src/endpoints/connection.js';
import { decodeFrame, encodeFrame, FrameType, PROTOCOL_VERSION, SDK_VERSION, type Frame } from '../../receiver-sdk/src/index.js';
import { harness, seqsOf } from '../helpers/memory-harness.js';

/** A raw client: sends whatever bytes the test wants and records what comes back. */
function rawClient(h: ReturnType<typeof harness>, endpointId: string) {
  const [g, r] = MemoryTransport.pair();
  const frames: Frame[] = [];
  /** What arrived, in order: frame type names and `close`. */
  const events: string[] = [];
  let closed: string | undefined;
  r.on('message', (b) => {
    const d = decodeFrame(b);
    if (d.ok) frames.push(d.frame);
    events.push(d.ok ? `frame ${d.frame.type}` : 'undecodable');
  });
  r.on('close', (reason) => {
    closed = reason;
    events.push('close');
  });
  h.gateway.accept(g, { endpointId });
  return {
    r,
    frames,
    events,
    closed: () => closed,
    hello: (id = endpointId, version = PROTOCOL_VERSION) =>
      r.send(encodeFrame({ type: FrameType.HELLO, version, endpointId: id, sdkVersion: SDK_VERSION, resume: {}, epochs: {} }), 'control'),
  };
}

const errorCode = (frames: Frame[]): string | undefined => {
  const e = frames.find((f) => f.type === FrameType.ERROR);
  return e && e.type === FrameType.ERROR ? e.code : undefined;
};

describe('gateway connection input validation', () => {
  it.each([
    ['garbage bytes', new Uint8Array([0xc1, 0x00, 0xff]), 'MS_FRAME_MALFORMED'],
    ['frame before HELLO', encodeFrame({ type: FrameType.ACK, streamId: 's1', seq: 1 }), 'MS_PROTOCOL_STATE'],
    ['oversized frame', new Uint8Array(2 * 1024 * 1024), 'MS_FRAME_TOO_LARGE'],
  ])('%s: ERROR frame with a code, then close; other receivers unaffected', async (_name, bytes, expected) => {
    const h = harness();
    const good = await h.receiver('good');
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['good'] });
    const bad = rawClient(h, 'bad');
    bad.r.send(bytes, 'control');
    for (let i = 1; i <= 10; i++) await h.gateway.publish('s1', `c${i}`);
    await h.step(100);
    expect(errorCode(bad.frames)).toBe(expected);
    // this client does not close on ERROR: the gateway waits ERROR_LINGER_MS for it to arrive, then closes
    expect(bad.closed()).toBeUndefined();
    await h.step(ERROR_LINGER_MS);
    expect(bad.events).toEqual([`frame ${FrameType.ERROR}`, 'close']);
    expect(seqsOf(good)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await h.close();
  });

  it('rejects a HELLO for another endpoint and a wrong protocol version', async () => {
    const h = harness();
    const other = rawClient(h, 'alice');
    other.hello('mallory');
    const old = rawClient(h, 'bob');
    old.hello('bob', 99);
    await h.step(20);
    expect(errorCode(other.frames)).toBe('MS_UNAUTHORIZED');
    expect(errorCode(old.frames)).toBe('MS_PROTOCOL_VERSION');
    expect(h.gateway.listEndpoints()).toEqual([]);
    await h.close();
  });

  it('rejects frames only the gateway sends, and closes a connection that never says HELLO', async () => {
    const h = harness({ helloTimeoutMs: 1_000 });
    const c = rawClient(h, 'carol');
    c.hello();
    await h.step(10);
    expect(c.frames[0]?.type).toBe(FrameType.WELCOME);
    c.r.send(encodeFrame({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 0, payload: new Uint8Array(1) }), 'data');
    await h.step(10);
    expect(errorCode(c.frames)).toBe('MS_PROTOCOL_STATE');
    const silent = rawClient(h, 'dave');
    await h.step(1_100);
    expect(errorCode(silent.frames)).toBe('MS_HELLO_TIMEOUT');
    await h.step(ERROR_LINGER_MS);
    expect(silent.events).toEqual([`frame ${FrameType.ERROR}`, 'close']);
    await h.close();
  });

  it('a client that closes on the ERROR (as the SDK does) is not kept waiting, and frames after the violation are ignored', async () => {
    const h = harness();
    const c = rawClient(h, 'frank');
    c.r.on('message', () => c.r.close('closing on the error'));
    for (let i = 0; i < 100; i++) c.r.send(new Uint8Array([0xc1]), 'control');
    await h.step(10);
    expect(c.events).toEqual([`frame ${FrameType.ERROR}`, 'close']);
    expect(c.closed()).toBe('closing on the error');
    await h.close();
  });

  it('a connection whose endpoint stays dead is closed after heartbeat.closeDeadAfterMs, so its receiver dials a new one', async () => {
    const h = harness({ heartbeat: { closeDeadAfterMs: 3_000 } });
    const c = rawClient(h, 'dora');
    c.hello();
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['dora'] });
    await h.step(10);
    // it never answers a heartbeat: suspect, then dead
    let waited = 0;
    while (h.gateway.endpointHealth('dora').state !== 'dead' && waited < 30_000) {
      await h.step(50);
      waited += 50;
    }
    expect(h.gateway.endpointHealth('dora').state).toBe('dead');
    await h.step(2_900);
    expect(c.closed()).toBeUndefined();
    await h.step(200);
    expect(c.closed()).toMatch(/no heartbeat answered for 3000 ms/);
    expect(h.gateway.endpointHealth('dora').connected).toBe(false);
    await h.close();
  });

  it('clamps an ack beyond what was sent and ignores acks for unknown streams', async () => {
    const h = harness();
    const c = rawClient(h, 'erin');
    c.hello();
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['erin'] });
    for (let i = 0; i < 5; i++) await h.gateway.publish('s1', 'x');
    await h.step(10);
    c.r.send(encodeFrame({ type: FrameType.ACK, streamId: 's1', seq: 1_000_000 }), 'control');
    c.r.send(encodeFrame({ type: FrameType.ACK, streamId: 'nope', seq: 3 }), 'control');
    await h.step(10);
    expect(h.gateway.getStream('s1').endpoint_list[0]?.last_acked_seq).toBe(5);
    expect(c.closed()).toBeUndefined();
    await h.close();
  });
});
