import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, FrameType, ManualClock, webtransportDialer, type Frame, type FrameLink, type WebTransportLike } from '../../receiver-sdk/src/index.js';
import { InboundStreams } from '../../receiver-sdk/src/inbound.js';

/** Lets promises and stream queues settle (no time passes on the manual clock). */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A write the control stream's sink holds until the test says it is done (or failed). */
interface HeldWrite {
  bytes: Uint8Array;
  done(): void;
  fail(error: Error): void;
}

/** A WebTransport session whose control stream completes writes only when told. */
class HeldWebTransport implements WebTransportLike {
  static last: HeldWebTransport | undefined;
  readonly writes: HeldWrite[] = [];
  readonly ready = Promise.resolve();
  readonly closed = new Promise<never>(() => undefined);
  readonly incomingUnidirectionalStreams = new ReadableStream<ReadableStream<Uint8Array>>();
  closeCalls = 0;

  constructor() {
    HeldWebTransport.last = this;
  }

  async createBidirectionalStream(): Promise<{ readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }> {
    const writable = new WritableStream<Uint8Array>({
      write: (bytes) => new Promise<void>((done, fail) => void this.writes.push({ bytes, done, fail })),
    });
    return { readable: new ReadableStream<Uint8Array>(), writable };
  }

  close(): void {
    this.closeCalls++;
  }
}

async function dialHeld(): Promise<{ link: FrameLink; wt: HeldWebTransport }> {
  const ticket = { url: 'https://127.0.0.1:4433/v1/wt?ticket=t', backend: 'http2', certificate_hashes: [] };
  const link = await webtransportDialer({
    gatewayUrl: 'http://gw',
    endpointId: 'rx',
    token: 't',
    clock: new ManualClock(),
    WebTransport: HeldWebTransport,
    fetch: (async () => new Response(JSON.stringify(ticket), { status: 201 })) as typeof fetch,
  })();
  return { link, wt: HeldWebTransport.last as HeldWebTransport };
}

/** Resolution state of a promise, read after a turn. */
function watch<T>(p: Promise<T> | T): { settled: boolean; value: T | undefined } {
  const w: { settled: boolean; value: T | undefined } = { settled: false, value: undefined };
  void Promise.resolve(p).then((value) => {
    w.settled = true;
    w.value = value;
  });
  return w;
}

describe('the WebTransport link: send() says true only once the write is done', () => {
  it('resolves true when the control stream completed the write, not before; writes keep their order', async () => {
    const { link, wt } = await dialHeld();
    const ack = encodeFrame({ type: FrameType.ACK, streamId: 's', seq: 16 });
    const first = watch(link.send(ack, 'control'));
    const second = watch(link.send(encodeFrame({ type: FrameType.ACK, streamId: 's', seq: 32 }), 'control'));
    await turn();
    expect(first.settled).toBe(false);
    expect(wt.writes).toHaveLength(1); // the stream hands its sink one write at a time
    const frame = wt.writes[0]?.bytes.subarray(4) ?? new Uint8Array();
    expect(decodeFrame(frame)).toMatchObject({ ok: true, frame: { type: FrameType.ACK, seq: 16 } }); // after its 4-byte length
    wt.writes[0]?.done();
    await turn();
    expect(first).toEqual({ settled: true, value: true });
    expect(second.settled).toBe(false);
    wt.writes[1]?.done();
    await turn();
    expect(second).toEqual({ settled: true, value: true });
    link.close('done');
  });

  it('resolves false when the write fails, and the link closes', async () => {
    const { link, wt } = await dialHeld();
    const closed: string[] = [];
    link.on('close', (reason) => closed.push(reason));
    const sent = watch(link.send(encodeFrame({ type: FrameType.ACK, streamId: 's', seq: 1 }), 'control'));
    await turn();
    wt.writes[0]?.fail(new Error('stream reset'));
    await turn();
    expect(sent).toEqual({ settled: true, value: false });
    expect(closed).toEqual(['control stream write failed']);
    expect(link.isClosed).toBe(true);
    expect(await link.send(new Uint8Array([1]), 'control')).toBe(false);
  });
});

describe('acks: one counts as sent only once the link says its write is done', () => {
  /** InboundStreams over a link whose sends the test settles. */
  function streams() {
    const clock = new ManualClock();
    const acks: { seq: number; written: (ok: boolean) => void }[] = [];
    const inbound = new InboundStreams(
      { clock, ackEveryChunks: 16, ackDelayMs: 20, reorderLimit: 64 },
      {
        chunk: () => undefined,
        gap: () => undefined,
        role: () => undefined,
        reset: () => undefined,
        send: (bytes) => {
          const d = decodeFrame(bytes);
          const f = d.ok ? (d.frame as Frame) : undefined;
          return new Promise<boolean>((written) => void (f?.type === FrameType.ACK && acks.push({ seq: f.seq, written })));
        },
      },
    );
    const deliver = (from: number, to: number): void => {
      for (let seq = from; seq <= to; seq++) inbound.data({ type: FrameType.DATA, streamId: 's', seq, timestamp: 1, payload: new Uint8Array(1) }, false);
    };
    return { clock, inbound, acks, deliver };
  }

  it('while its write is under way no second ACK goes for the same position; a failed write is sent again, a done one is not', async () => {
    const t = streams();
    t.deliver(1, 16);
    expect(t.acks.map((a) => a.seq)).toEqual([16]);
    t.inbound.flushAcks();
    t.clock.advance(100);
    expect(t.acks.map((a) => a.seq)).toEqual([16]); // in flight: not again
    t.acks[0]?.written(false); // the write failed: the gateway never got it
    await turn();
    t.inbound.flushAcks();
    expect(t.acks.map((a) => a.seq)).toEqual([16, 16]);
    t.acks[1]?.written(true);
    await turn();
    t.inbound.flushAcks();
    t.clock.advance(100);
    expect(t.acks.map((a) => a.seq)).toEqual([16, 16]);
  });

  it('the next ACK is due 16 chunks after what is being written, and a late completion of an older one does not count over a newer one', async () => {
    const t = streams();
    t.deliver(1, 16);
    t.deliver(17, 31);
    expect(t.acks.map((a) => a.seq)).toEqual([16]); // 31 is 15 past the ACK under way
    t.deliver(32, 32);
    expect(t.acks.map((a) => a.seq)).toEqual([16, 32]);
    t.acks[0]?.written(true); // 16 done after 32 was sent: 32 is what counts now
    t.acks[1]?.written(false);
    await turn();
    t.inbound.flushAcks();
    expect(t.acks.map((a) => a.seq)).toEqual([16, 32, 32]);
  });
});
