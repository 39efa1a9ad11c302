import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headers, type Msg, type MsgHdrs, type MsgHdrsImpl, type NatsConnection } from '@nats-io/transport-node';
import { FrozenHeaders, JetStreamPublisher, parseAck, type PublishMessage } from '../../gateway/src/storage/jetstream/publisher.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';

/**
 * The JetStream publisher against a stand-in connection: what it sends and when (bounded,
 * FIFO, a batch's messages in order), how it reads acks, and that every publish gets an
 * answer (an ack, an error ack, a timeout, the connection closing). The real engine is in
 * test/integration/jetstream-publish.test.ts.
 */
const te = new TextEncoder();

function ack(subject: string, body: string, status?: number): Msg {
  const data = te.encode(body);
  const h = status === undefined ? undefined : Object.assign(headers(), { _code: status });
  return { subject, data, headers: h, json: () => JSON.parse(body) as unknown, string: () => body } as unknown as Msg;
}

class FakeConnection {
  readonly sent: { subject: string; reply: string; payload: Uint8Array; headers: Uint8Array | undefined }[] = [];
  #callback: ((err: Error | null, msg: Msg) => void) | undefined;
  #close: ((e?: Error) => void) | undefined;
  readonly #closed = new Promise<void | Error>((r) => (this.#close = r));
  #isClosed = false;
  subscribe(_subject: string, opts: { callback: (err: Error | null, msg: Msg) => void }) {
    this.#callback = opts.callback;
    let closed = false;
    return { isClosed: () => closed, unsubscribe: () => void (closed = true) };
  }
  publish(subject: string, payload: Uint8Array, opts: { reply: string; headers?: MsgHdrs }): void {
    if (this.#isClosed) throw new Error('closed');
    this.sent.push({ subject, reply: opts.reply, payload, headers: (opts.headers as MsgHdrsImpl | undefined)?.encode() });
  }
  closed(): Promise<void | Error> {
    return this.#closed;
  }
  readonly #statuses: ((s: { type: string }) => void)[] = [];
  status(): AsyncIterable<{ type: string }> {
    const queue: { type: string }[] = [];
    let wake: (() => void) | undefined;
    this.#statuses.push((s) => {
      queue.push(s);
      wake?.();
    });
    return (async function* () {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        await new Promise<void>((r) => (wake = r));
      }
    })();
  }
  /** The client lost its server (it reconnects by itself). */
  disconnect(): void {
    for (const tell of this.#statuses) tell({ type: 'disconnect' });
  }
  reconnect(): void {
    for (const tell of this.#statuses) tell({ type: 'reconnect' });
  }
  isClosed(): boolean {
    return this.#isClosed;
  }
  close(): void {
    this.#isClosed = true;
    this.#close?.();
  }
  /** JetStream's answer to the `i`th message sent. */
  answer(i: number, body: string, status?: number): void {
    const m = this.sent[i];
    if (!m) throw new Error(`nothing sent at ${i}`);
    this.#callback?.(null, ack(m.reply, body, status));
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const msgs = (n: number, tag: string): PublishMessage[] => Array.from({ length: n }, (_, i) => ({ payload: te.encode(`${tag}${i}`), headers: undefined }));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('JetStreamPublisher', () => {
  it('sends batches in call order, at most maxInFlight unacked, the rest as acks come in; a batch answers with its seqs', async () => {
    const nc = new FakeConnection();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, new ManualClock(), { timeoutMs: 5_000, maxInFlight: 4 });
    const a = p.publish('s.a', msgs(6, 'a'));
    const b = p.publish('s.b', msgs(3, 'b'));
    expect(nc.sent).toHaveLength(0); // sent after this turn of the loop, together
    await tick();
    expect(nc.sent.map((m) => text(m.payload))).toEqual(['a0', 'a1', 'a2', 'a3']);
    for (let i = 0; i < 9; i++) {
      nc.answer(i, `{"stream":"S","seq":${i + 1}}`);
      expect(p.inFlight).toBeLessThanOrEqual(4);
    }
    expect(nc.sent.map((m) => `${m.subject}:${text(m.payload)}`)).toEqual(['s.a:a0', 's.a:a1', 's.a:a2', 's.a:a3', 's.a:a4', 's.a:a5', 's.b:b0', 's.b:b1', 's.b:b2']);
    expect((await a).map((o) => o.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await b).map((o) => o.seq)).toEqual([7, 8, 9]);
    expect(p.inFlight).toBe(0);
  });

  it('acks out of order land on their own messages; duplicates, error acks and no responders are per message', async () => {
    const nc = new FakeConnection();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, new ManualClock(), { timeoutMs: 5_000 });
    const done = p.publish('s', msgs(4, 'x'));
    await tick();
    nc.answer(3, '', 503);
    nc.answer(1, '{"stream":"S","seq":7,"duplicate":true}');
    nc.answer(2, '{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 5"},"stream":"S","seq":0}');
    nc.answer(0, '{"stream":"S","domain":"hub","seq":6}');
    nc.answer(0, '{"stream":"S","seq":99}'); // a second answer to the same message is ignored
    const [o0, o1, o2, o3] = await done;
    expect(o0).toEqual({ seq: 6, duplicate: false });
    expect(o1).toEqual({ seq: 7, duplicate: true });
    expect(o2?.error?.message).toContain('wrong last sequence');
    expect((o2?.error as { code?: number }).code).toBe(10071);
    expect(o3?.error?.message).toContain('no responders');
  });

  it('a publish not acked within the timeout is an error, also one still waiting in line; late acks are ignored', async () => {
    const nc = new FakeConnection();
    const clock = new ManualClock();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, clock, { timeoutMs: 60, maxInFlight: 2 });
    let outcomes: Awaited<ReturnType<typeof p.publish>> | undefined;
    void p.publish('s', msgs(5, 'x')).then((o) => (outcomes = o));
    await tick();
    clock.advance(59);
    await tick();
    expect(outcomes).toBeUndefined();
    clock.advance(15);
    await tick();
    expect(outcomes?.every((o) => o.error !== undefined)).toBe(true);
    expect(nc.sent).toHaveLength(2);
    nc.answer(0, '{"stream":"S","seq":1}');
    expect(p.inFlight).toBe(0);
    // the publisher goes on: the next batch is sent and acked
    const next = p.publish('s', msgs(1, 'y'));
    await tick();
    nc.answer(nc.sent.length - 1, '{"stream":"S","seq":2}');
    expect(await next).toEqual([{ seq: 2, duplicate: false }]);
  });

  it('the connection closing answers what is open, and every later publish, with an error', async () => {
    const nc = new FakeConnection();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, new ManualClock(), { timeoutMs: 5_000, maxInFlight: 1 });
    const open = p.publish('s', msgs(3, 'x'));
    await tick();
    nc.close();
    expect((await open).map((o) => o.error !== undefined)).toEqual([true, true, true]);
    expect(p.closed).toBe(true);
    expect((await p.publish('s', msgs(2, 'y'))).every((o) => o.error !== undefined)).toBe(true);
  });

  it('shared headers are encoded once and sent with every message', async () => {
    const nc = new FakeConnection();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, new ManualClock(), { timeoutMs: 5_000 });
    const h = new FrozenHeaders();
    h.set('Ms-Ts', '1700000000000.5');
    const done = p.publish('s', [0, 1, 2].map((i) => ({ payload: te.encode(`${i}`), headers: h })));
    await tick();
    expect(nc.sent.map((m) => text(m.headers ?? new Uint8Array()))).toEqual(Array(3).fill('NATS/1.0\r\nMs-Ts: 1700000000000.5\r\n\r\n'));
    expect(nc.sent[0]?.headers).toBe(nc.sent[2]?.headers);
    for (let i = 0; i < 3; i++) nc.answer(i, `{"stream":"S","seq":${i + 1}}`);
    expect((await done).map((o) => o.seq)).toEqual([1, 2, 3]);
  });

  it('a dropped connection fails what was in flight at once (nobody will ack it); nothing is sent until the client is back, then what waited goes out', async () => {
    const nc = new FakeConnection();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, new ManualClock(), { timeoutMs: 5_000, maxInFlight: 2 });
    const first = p.publish('s', msgs(2, 'a'));
    const second = p.publish('s', msgs(1, 'b'));
    await tick();
    expect(nc.sent).toHaveLength(2);
    nc.disconnect();
    expect((await first).every((o) => o.error?.message.includes('dropped'))).toBe(true);
    // nats.js empties its outbound buffer when it dials again: nothing is handed to it meanwhile
    const third = p.publish('s', msgs(1, 'c'));
    await tick();
    expect(nc.sent.map((m) => text(m.payload))).toEqual(['a0', 'a1']);
    nc.reconnect();
    await tick();
    expect(nc.sent.map((m) => text(m.payload))).toEqual(['a0', 'a1', 'b0', 'c0']);
    nc.answer(2, '{"stream":"S","seq":3}');
    nc.answer(3, '{"stream":"S","seq":4}');
    expect(await second).toEqual([{ seq: 3, duplicate: false }]);
    expect(await third).toEqual([{ seq: 4, duplicate: false }]);
  });

  it('while disconnected, what waits in line fails at its deadline if the client is not back by then', async () => {
    const nc = new FakeConnection();
    const clock = new ManualClock();
    const p = new JetStreamPublisher(nc as unknown as NatsConnection, clock, { timeoutMs: 1_000 });
    nc.disconnect();
    await tick();
    const waiting = p.publish('s', msgs(1, 'a'));
    await tick();
    expect(nc.sent).toHaveLength(0);
    clock.advance(1_000);
    expect((await waiting)[0]?.error?.message).toMatch(/not sent within 1000 ms: the NATS connection was down/);
  });

  it('reads an ack the way JSON.parse does', () => {
    const ackBody = fc.record({
      stream: fc.stringMatching(/^[A-Za-z0-9_=-]{1,40}$/),
      domain: fc.option(fc.stringMatching(/^[a-z]{1,8}$/), { nil: undefined }),
      seq: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      duplicate: fc.option(fc.boolean(), { nil: undefined }),
    });
    fc.assert(
      fc.property(ackBody, (a) => {
        const body = JSON.stringify(a);
        expect(parseAck(ack('r', body))).toEqual({ seq: a.seq, duplicate: a.duplicate === true });
      }),
    );
    expect(parseAck(ack('r', '{"stream":"S"}')).error?.message).toContain('without a sequence');
    expect(parseAck(ack('r', 'not json')).error).toBeDefined();
  });
});
