import { describe, expect, it } from 'vitest';
import { MemoryTransport } from '../../gateway/src/index.js';
import {
  decodeFrame,
  encodeFrame,
  FrameType,
  ManualClock,
  PROTOCOL_VERSION,
  Receiver,
  ReceiverCore,
  SDK_VERSION,
  versionAtLeast,
  type Clock,
  type DialHint,
  type Frame,
  type FrameLink,
  type LinkChannel,
  type ReceiverCoreOptions,
  type TimerHandle,
} from '../../receiver-sdk/src/index.js';
import { SilenceWatch, silenceLimitMs } from '../../receiver-sdk/src/silence-watch.js';
import { harness, settle, type TestReceiver } from '../helpers/memory-harness.js';

/**
 * The receiver's watch on a silent gateway follows the cadence the gateway promises in its
 * control HEARTBEATs (4 ×, at least 300 ms, at most 4 × WELCOME's interval), and a silent
 * gateway is replaced make-before-break. Manual clock throughout: no sleeps.
 */

/** A fake gateway end per dial; a dial may be held open (`hold`) to see what happens meanwhile. */
async function fakeGateway(options: Partial<Omit<ReceiverCoreOptions, 'dial'>> = {}) {
  const clock = new ManualClock();
  const links: { gw: MemoryTransport; rx: MemoryTransport; got: Frame[] }[] = [];
  const hints: (DialHint | undefined)[] = [];
  let held: { release: () => void; fail: () => void } | undefined;
  let hold = false;
  const open = (): FrameLink => {
    const [gw, rx] = MemoryTransport.pair();
    const got: Frame[] = [];
    gw.on('message', (b) => {
      const d = decodeFrame(b);
      if (d.ok) got.push(d.frame);
    });
    links.push({ gw, rx, got });
    return rx;
  };
  const rx = new ReceiverCore({
    endpointId: 'rx',
    clock,
    reconnect: { nextRetryDelayMs: () => 50 },
    ...options,
    dial: (hint) => {
      hints.push(hint);
      if (!hold) return Promise.resolve(open());
      return new Promise<FrameLink>((resolve, reject) => {
        held = { release: () => resolve(open()), fail: () => reject(new Error('unreachable')) };
      });
    },
  });
  const statuses: string[] = [];
  rx.on('status', (s, detail) => statuses.push(`${s}: ${detail}`));
  const connected = rx.connect();
  await settle();
  /** Send on the newest link (or `link`). */
  const send = (f: Frame, channel: LinkChannel = 'control', link = links.at(-1)): void => void link?.gw.send(encodeFrame(f), channel);
  const heartbeat = (cadenceMs?: number, channel: LinkChannel = 'control'): void =>
    send({ type: FrameType.HEARTBEAT, nonce: 2, sentAt: clock.now(), ...(cadenceMs === undefined ? {} : { cadenceMs }) }, channel);
  send({ type: FrameType.WELCOME, version: PROTOCOL_VERSION, sessionId: 's', heartbeatIntervalMs: 1_000, maxFrameBytes: 1 << 20 });
  await settle();
  await connected;
  /** Advance `ms` in steps of `stepMs`, letting frames settle after each. */
  const step = async (ms: number, stepMs = 10): Promise<void> => {
    for (let t = 0; t < ms; t += stepMs) {
      clock.advance(Math.min(stepMs, ms - t));
      await settle();
    }
  };
  return {
    clock,
    rx,
    links,
    hints,
    statuses,
    send,
    heartbeat,
    step,
    dials: () => hints.length,
    holdDials: () => void (hold = true),
    held: () => held,
  };
}

describe('the silence limit', () => {
  it('is 4 × the cadence, at least 300 ms and at most 4 × WELCOME (at least 1 s); without a cadence, that ceiling', () => {
    expect(silenceLimitMs(10, 1_000)).toBe(300);
    expect(silenceLimitMs(20, 1_000)).toBe(300);
    expect(silenceLimitMs(250, 1_000)).toBe(1_000);
    expect(silenceLimitMs(1_000, 1_000)).toBe(4_000);
    expect(silenceLimitMs(60_000, 1_000)).toBe(4_000);
    expect(silenceLimitMs(undefined, 1_000)).toBe(4_000);
    expect(silenceLimitMs(undefined, 0)).toBe(1_000);
    expect(silenceLimitMs(10, 100)).toBe(300);
  });

  it('is judged after input that is already here: a timer that comes late (our own stall) does not count it as silence', () => {
    // timers fire only when told: the stall is the gap between the due time and `fire`
    const timers: { id: number; at: number; fn: () => void }[] = [];
    let now = 0;
    let next = 1;
    const clock: Clock = {
      now: () => now,
      setTimeout: (fn, ms) => (timers.push({ id: next, at: now + ms, fn }), { id: next++ }),
      clearTimeout: (h: TimerHandle | undefined) => void (h && timers.splice(timers.findIndex((t) => t.id === h.id) >>> 0, 1)),
      setInterval: () => ({ id: 0 }),
      clearInterval: () => undefined,
    };
    const fire = (): void => {
      timers.sort((a, b) => a.at - b.at);
      const t = timers.shift();
      if (!t) throw new Error('no timer');
      now = Math.max(now, t.at);
      t.fn();
    };
    const silent: number[] = [];
    const watch = new SilenceWatch(clock, (ms) => silent.push(ms));
    watch.start(300);
    now = 500; // the event loop was blocked for 500 ms; a frame waits to be read
    fire(); // the timer runs first (timers before I/O)...
    watch.heard(); // ...then the frame is read
    fire(); // the verdict, one turn later: not silent
    expect(silent).toEqual([]);
    fire(); // 300 ms after that frame, nothing came
    fire();
    expect(silent).toEqual([300]);
    expect(now).toBe(800);
  });
});

describe('receiver: a silent gateway (fake gateway, manual clock)', () => {
  it('an active receiver (cadence 10 ms) finds its gateway silent 300 ms after the last frame and dials the next one at once, leaving the old link only when the new one is up', async () => {
    const t = await fakeGateway();
    t.heartbeat(10);
    for (let i = 0; i < 50; i++) {
      t.heartbeat(undefined, 'data-unreliable'); // probes every 10 ms
      await t.step(10);
    }
    const lastFrameAt = t.clock.now(); // the last probe arrived in the last step
    const old = t.links[0]!;
    t.holdDials();
    while (t.dials() < 2) await t.step(1, 1);
    expect(t.clock.now() - lastFrameAt).toBe(300);
    expect(t.hints.at(-1)).toEqual({ gatewaySilent: true });
    expect(t.rx.status).toBe('reconnecting');
    expect(old.rx.isClosed).toBe(false); // kept while the next one is dialed
    t.held()!.release();
    await settle();
    expect(old.rx.isClosed).toBe(true);
    expect(t.links[1]!.got[0]).toMatchObject({ type: FrameType.HELLO, endpointId: 'rx' });
    t.rx.close();
  });

  it('a standby heartbeated every second (cadence 1 s) and a slowdown told on the control channel are never taken for silence', async () => {
    const t = await fakeGateway();
    t.heartbeat(10);
    await t.step(200);
    t.heartbeat(1_000); // the gateway slows down: the limit is 4 s from here on
    for (let i = 0; i < 10; i++) {
      await t.step(i % 3 === 0 ? 1_150 : 1_050); // batched (+5 %) and sometimes 100 ms late on top
      t.heartbeat(1_000);
    }
    expect(t.dials()).toBe(1);
    expect(t.statuses.filter((s) => s.startsWith('reconnecting'))).toEqual([]);
    t.rx.close();
  });

  it('only the control channel sets the limit: a cadence on a probe (which may overtake or trail the heartbeats) is ignored', async () => {
    const t = await fakeGateway();
    t.heartbeat(undefined, 'control');
    t.heartbeat(10, 'data-unreliable');
    await t.step(3_900);
    expect(t.dials()).toBe(1); // still WELCOME's 4 × 1 s
    await t.step(200);
    expect(t.dials()).toBe(2);
    t.rx.close();
  });

  it('an older gateway that tells no cadence keeps the 4 × WELCOME limit; gatewayTimeoutMs overrides any cadence', async () => {
    const older = await fakeGateway();
    older.heartbeat();
    await older.step(3_990);
    expect(older.dials()).toBe(1);
    await older.step(20);
    expect(older.dials()).toBe(2);
    older.rx.close();

    const own = await fakeGateway({ gatewayTimeoutMs: 2_000 });
    own.heartbeat(10);
    await own.step(1_990);
    expect(own.dials()).toBe(1);
    await own.step(20);
    expect(own.dials()).toBe(2);
    own.rx.close();
  });

  it('before the first WELCOME the gateway has 4 s to answer HELLO (its default heartbeat interval × 4), not 1 s', async () => {
    const clock = new ManualClock();
    let dials = 0;
    const rx = new ReceiverCore({
      endpointId: 'rx',
      clock,
      reconnect: { nextRetryDelayMs: () => 50 },
      dial: () => {
        dials++;
        return Promise.resolve(MemoryTransport.pair()[1]);
      },
    });
    void rx.connect().catch(() => undefined);
    await settle();
    for (let t = 0; t < 3_990; t += 10) {
      clock.advance(10);
      await settle();
    }
    expect(dials).toBe(1);
    // silent at 4 s, then the 50 ms backoff
    for (let t = 0; t < 100; t += 10) {
      clock.advance(10);
      await settle();
    }
    expect(dials).toBe(2);
    rx.close();
  });

  it('a gateway that was only stalled keeps its receiver: it speaks before the new link is up, which is closed unused (no HELLO)', async () => {
    const t = await fakeGateway();
    t.heartbeat(10);
    const old = t.links[0]!;
    t.holdDials();
    await t.step(310);
    expect(t.dials()).toBe(2);
    expect(t.statuses.at(-1)).toBe('reconnecting: no frame from the gateway for 300 ms');
    t.send({ type: FrameType.ROLE, streamId: 's', role: 'active', fromSeq: 1, epoch: 'e1' }, 'data', old);
    t.send({ type: FrameType.DATA, streamId: 's', seq: 1, timestamp: 1, payload: new Uint8Array([1]) }, 'data', old);
    await settle();
    expect(t.statuses.at(-1)).toBe('connected: the gateway spoke again');
    t.held()!.release();
    await settle();
    expect(t.links[1]!.rx.isClosed).toBe(true);
    expect(t.links[1]!.got).toEqual([]);
    expect(old.rx.isClosed).toBe(false);
    await t.step(30);
    expect(old.got.filter((f) => f.type === FrameType.ACK)).toEqual([{ type: FrameType.ACK, streamId: 's', seq: 1 }]);
    t.rx.close();
  });

  it('the dial fails while the gateway stays silent: the old link is left, and retries back off as usual', async () => {
    const t = await fakeGateway();
    t.heartbeat(10);
    const old = t.links[0]!;
    t.holdDials();
    await t.step(310);
    t.held()!.fail();
    await settle();
    expect(old.rx.isClosed).toBe(true);
    expect(t.dials()).toBe(2);
    await t.step(60); // the backoff (50 ms)
    expect(t.dials()).toBe(3);
    t.rx.close();
  });
});

describe('Receiver with several gateway URLs: a silent one', () => {
  /** A Receiver whose WebRTC dials open in-memory links; the test plays each gateway. */
  async function twoGateways() {
    const clock = new ManualClock();
    const dialed: { url: string; gw: MemoryTransport }[] = [];
    let hold: (() => void) | undefined;
    let holding = false;
    const rx = new Receiver({
      gatewayUrl: ['http://gw1', 'http://gw2'],
      endpointId: 'rx',
      token: 't',
      clock,
      reconnect: { nextRetryDelayMs: () => 50 },
      webrtcDialer: (opts) => async () => {
        if (holding) await new Promise<void>((resolve) => (hold = resolve));
        const [gw, r] = MemoryTransport.pair();
        dialed.push({ url: opts.gatewayUrl, gw });
        return r;
      },
    });
    const speak = (gw: MemoryTransport | undefined, f: Frame): void => void gw?.send(encodeFrame(f), 'control');
    const welcome = (gw: MemoryTransport | undefined): void => {
      speak(gw, { type: FrameType.WELCOME, version: PROTOCOL_VERSION, sessionId: 's', heartbeatIntervalMs: 1_000, maxFrameBytes: 1 << 20 });
      speak(gw, { type: FrameType.HEARTBEAT, nonce: 2, sentAt: 0, cadenceMs: 10 });
    };
    const connected = rx.connect();
    await settle();
    welcome(dialed[0]?.gw);
    await connected;
    const step = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 10) {
        clock.advance(10);
        await settle();
      }
    };
    return { rx, dialed, speak, welcome, step, holdDials: () => void (holding = true), release: () => hold?.() };
  }

  it('dials the next gateway at once and moves there', async () => {
    const t = await twoGateways();
    expect(t.rx.gatewayUrl).toBe('http://gw1');
    await t.step(310);
    expect(t.dialed.map((d) => d.url)).toEqual(['http://gw1', 'http://gw2']);
    t.welcome(t.dialed[1]?.gw);
    await settle();
    expect(t.rx.gatewayUrl).toBe('http://gw2');
    expect(t.rx.status).toBe('connected');
    expect(t.dialed[0]?.gw.isClosed).toBe(true);
    t.rx.close();
  });

  it('stays where it is when the first gateway speaks before the next link is up', async () => {
    const t = await twoGateways();
    t.holdDials();
    await t.step(310);
    t.speak(t.dialed[0]?.gw, { type: FrameType.HEARTBEAT, nonce: 4, sentAt: 0 });
    await settle();
    t.release();
    await settle();
    expect(t.dialed.map((d) => d.url)).toEqual(['http://gw1', 'http://gw2']);
    expect(t.dialed[1]?.gw.isClosed).toBe(true); // opened, never used
    expect(t.rx.gatewayUrl).toBe('http://gw1');
    expect(t.rx.status).toBe('connected');
    t.rx.close();
  });
});

/** Cadences the gateway told a harness receiver in its control HEARTBEATs, newest last. */
function cadences(r: TestReceiver): number[] {
  const told: number[] = [];
  r.link()?.on('message', (bytes, channel) => {
    const d = decodeFrame(bytes);
    if (channel === 'control' && d.ok && d.frame.type === FrameType.HEARTBEAT && d.frame.cadenceMs !== undefined) told.push(d.frame.cadenceMs);
  });
  return told;
}

describe('gateway: the cadence it promises (manual clock)', () => {
  it('tells each receiver its cadence: 10 ms carrying a stream, 20 ms next in line, 1 s further down', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    const told = rx.map(cadences);
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.step(2_000);
    expect(told.map((c) => c.at(-1))).toEqual([10, 20, 1_000]);
    await h.close();
  });

  it('an SDK before HEARTBEAT_CADENCE_SINCE gets no cadence (its decoder rejects a 4-element HEARTBEAT)', async () => {
    expect(versionAtLeast('0.2.0', '0.2.1')).toBe(false);
    expect(versionAtLeast('0.2.1-rc.1', '0.2.1')).toBe(true);
    expect(versionAtLeast('0.10.0', '0.2.1')).toBe(true);
    expect(versionAtLeast('1.0.0', '0.2.1')).toBe(true);
    const h = harness();
    const heartbeats: Frame[] = [];
    for (const [id, sdkVersion] of [['old', '0.2.0'], ['new', SDK_VERSION]] as const) {
      const [gatewaySide, receiverSide] = MemoryTransport.pair();
      receiverSide.on('message', (bytes, channel) => {
        const d = decodeFrame(bytes);
        if (channel !== 'control' || !d.ok || d.frame.type !== FrameType.HEARTBEAT) return;
        if (id === 'old') heartbeats.push(d.frame);
        receiverSide.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: d.frame.nonce, sentAt: d.frame.sentAt }), 'control');
      });
      h.gateway.accept(gatewaySide, { endpointId: id });
      receiverSide.send(encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: id, sdkVersion, resume: {}, epochs: {} }), 'control');
    }
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['old', 'new'] });
    await h.step(1_000);
    expect(heartbeats.length).toBeGreaterThan(2);
    expect(heartbeats.every((f) => f.type === FrameType.HEARTBEAT && f.cadenceMs === undefined)).toBe(true);
    await h.close();
  });

  it('slows down only once the receiver heard the slower cadence: probes keep the old rate until the telling heartbeat is echoed', async () => {
    const h = harness();
    const [gatewaySide, receiverSide] = MemoryTransport.pair();
    let echo = true;
    const probes: number[] = [];
    const told: number[] = [];
    receiverSide.on('message', (bytes, channel) => {
      const d = decodeFrame(bytes);
      if (!d.ok || d.frame.type !== FrameType.HEARTBEAT) return;
      if (channel === 'data-unreliable') probes.push(h.clock.now());
      if (d.frame.cadenceMs !== undefined) told.push(d.frame.cadenceMs);
      if (echo) receiverSide.send(encodeFrame({ type: FrameType.HEARTBEAT_ACK, nonce: d.frame.nonce, sentAt: d.frame.sentAt }), channel);
    });
    h.gateway.accept(gatewaySide, { endpointId: 'a' });
    receiverSide.send(encodeFrame({ type: FrameType.HELLO, version: PROTOCOL_VERSION, endpointId: 'a', sdkVersion: SDK_VERSION, resume: {}, epochs: {} }), 'control');
    await h.receiver('b');
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    await h.step(1_000);
    expect(told.at(-1)).toBe(10); // a carries s1, b to fail over to
    const probesOver = (from: number): number => probes.filter((at) => at > from).length;

    echo = false; // a stops echoing: it may still hold us to 10 ms
    await h.gateway.deleteStream('s1'); // a carries nothing now: the standby rate (1 s)
    const deletedAt = h.clock.now();
    await h.step(500);
    expect(told.at(-1)).toBe(1_000); // told at once...
    expect(probesOver(deletedAt)).toBeGreaterThanOrEqual(45); // ...but kept to 10 ms: the echo never came

    echo = true;
    await h.step(2_000); // the next heartbeat (1 s later) is echoed: now the slow rate
    const echoedBy = h.clock.now() - 1_000;
    expect(probesOver(echoedBy)).toBeLessThanOrEqual(2);
    receiverSide.close('done');
    await h.close();
  });

  it('no false alarm in normal operation: idle and busy, roles and rates changing, no receiver ever leaves its link', async () => {
    const h = harness();
    const rx = [await h.receiver('a'), await h.receiver('b'), await h.receiver('c')];
    const left: string[] = [];
    for (const r of rx) r.core.on('status', (s, detail) => void (s !== 'connected' && left.push(`${r.id}: ${detail}`)));
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b', 'c'] });
    await h.step(5_000); // idle: heartbeats and probes only
    for (let i = 0; i < 200; i++) {
      await h.gateway.publish('s1', `chunk ${i}`);
      await h.step(5, 5);
    }
    await h.gateway.reorderEndpoints('s1', ['c', 'a', 'b']); // c carries, a next, b far: every rate changes
    await h.step(3_000);
    await h.gateway.removeEndpoint('s1', 'a');
    await h.step(3_000);
    await h.gateway.addEndpoint('s1', { endpoint_id: 'a' });
    await h.step(3_000);
    await h.gateway.deleteStream('s1'); // everyone to the standby rate
    await h.step(6_000);
    expect(left).toEqual([]);
    await h.close();
  });

  it('an active receiver whose gateway goes silent (a SIGKILLed instance) dials again within 300 ms of the last frame it heard', async () => {
    const h = harness();
    const [a] = [await h.receiver('a'), await h.receiver('b')];
    h.gateway.createStream({ stream_id: 's1', endpoint_list: ['a', 'b'] });
    await h.step(1_000);
    let lastHeardAt = 0;
    a.link()?.on('message', () => void (lastHeardAt = h.clock.now()));
    await h.step(55, 5);
    const statuses: string[] = [];
    a.core.on('status', (s, detail) => statuses.push(`${s}: ${detail}`));
    a.gatewaySide()!.blackhole = true; // nothing from the gateway from here on
    const killedAt = h.clock.now();
    while (!statuses.length && h.clock.now() - killedAt < 5_000) await h.step(1, 1);
    const detectedAt = h.clock.now();
    console.log(`silent gateway: detected ${detectedAt - lastHeardAt} ms after the last frame, ${detectedAt - killedAt} ms after the kill`);
    expect(statuses[0]).toBe('reconnecting: no frame from the gateway for 300 ms');
    expect(detectedAt - lastHeardAt).toBeLessThanOrEqual(301);
    expect(detectedAt - killedAt).toBeLessThanOrEqual(311);
    await h.close();
  });
});
