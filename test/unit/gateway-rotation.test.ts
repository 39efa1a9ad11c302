import { describe, expect, it } from 'vitest';
import { FrameType, ManualClock, MirrorstreamError, PROTOCOL_VERSION, ReceiverCore, type FrameLink, type ReceiverCoreOptions } from '../../receiver-sdk/src/index.js';
import { GatewayRotation } from '../../receiver-sdk/src/gateway-rotation.js';
import { FakeLink, turn } from '../helpers/lifecycle-rig.js';

/**
 * Which gateway and transport the receiver dials next (GatewayRotation), driven by a
 * ReceiverCore on a manual clock: lost connections, GOAWAY, a silent gateway replaced
 * make-before-break, a replacement no longer needed. Each gateway end is played by the test.
 */

/** The gateway's WELCOME and a 10 ms cadence (silent after 300 ms). */
function welcome(link: FakeLink | undefined): void {
  link?.say({ type: FrameType.WELCOME, version: PROTOCOL_VERSION, sessionId: link.route, heartbeatIntervalMs: 1_000, maxFrameBytes: 1 << 20 });
  link?.say({ type: FrameType.HEARTBEAT, nonce: 1, sentAt: 0, cadenceMs: 10 });
}

/** ReceiverCore dialing through a rotation, wired as Receiver wires it. */
class RotatingReceiver extends ReceiverCore {
  constructor(
    options: Omit<ReceiverCoreOptions, 'dial'>,
    readonly rotation: GatewayRotation,
  ) {
    super({ ...options, dial: rotation.dial });
  }
  protected override linkAdopted(link: FrameLink): void {
    this.rotation.adopted(link);
  }
}

async function rotating(urls: string[], transports: string[]) {
  const clock = new ManualClock();
  const attempts: string[] = [];
  const links: FakeLink[] = [];
  const refused = new Set<string>();
  let held: (() => void) | undefined;
  let holding = false;
  const rotation = new GatewayRotation(urls, transports, (url, transport) => async () => {
    const route = `${url}/${transport}`;
    attempts.push(route);
    if (holding) await new Promise<void>((resolve) => (held = resolve));
    if (refused.has(route)) throw new MirrorstreamError('MS_TRANSPORT_CLOSED', `${route} refused`, { retryable: true });
    const link = new FakeLink(route);
    links.push(link);
    return link;
  });
  const rx = new RotatingReceiver({ endpointId: 'rx', clock, reconnect: { nextRetryDelayMs: () => 50 }, reportIntervalMs: 0 }, rotation);
  const connected = rx.connect();
  await turn();
  welcome(links.at(-1));
  await connected;
  const step = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      await turn();
    }
  };
  return {
    rx,
    clock,
    attempts,
    links,
    refused,
    step,
    current: () => `${rotation.current?.url}/${rotation.current?.transport}`,
    last: () => links.at(-1) as FakeLink,
    hold: () => void (holding = true),
    release: async () => {
      holding = false;
      held?.();
      await turn();
    },
    /** The gateway end closes the current link; the retry comes after the 50 ms backoff and is welcomed. */
    async lose(): Promise<void> {
      this.last().close('connection reset');
      await step(50);
      welcome(this.last());
      await turn();
    },
  };
}

describe('gateway rotation: where the next dial starts (receiver on a manual clock)', () => {
  it('a lost connection moves to the next pair: the same gateway’s next transport, then the next gateway, around', async () => {
    const t = await rotating(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc']);
    expect(t.current()).toBe('http://gw1/webtransport');
    const seen = [t.current()];
    for (let i = 0; i < 4; i++) {
      await t.lose();
      seen.push(t.current());
    }
    expect(seen).toEqual(['http://gw1/webtransport', 'http://gw1/webrtc', 'http://gw2/webtransport', 'http://gw2/webrtc', 'http://gw1/webtransport']);
    expect(t.rx.status).toBe('connected');
    t.rx.close();
  });

  it('GOAWAY: the next gateway’s first transport, dialed at once; with one gateway, its first transport again', async () => {
    const two = await rotating(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc']);
    await two.lose(); // now on gw1/webrtc
    two.last().say({ type: FrameType.GOAWAY, reason: 'restart' });
    await turn(); // no clock advance: no backoff
    expect(two.attempts.at(-1)).toBe('http://gw2/webtransport');
    two.rx.close();

    const one = await rotating(['http://lb'], ['webtransport', 'webrtc']);
    await one.lose(); // now on lb/webrtc
    one.last().say({ type: FrameType.GOAWAY, reason: 'restart' });
    await turn();
    expect(one.attempts.at(-1)).toBe('http://lb/webtransport'); // a load balancer picks another instance
    one.rx.close();
  });

  it('a silent gateway: the next gateway is dialed at once while the silent link is kept, and left when the next one is up', async () => {
    const t = await rotating(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc']);
    const silent = t.last();
    t.hold();
    await t.step(310);
    expect(t.attempts.at(-1)).toBe('http://gw2/webtransport');
    expect(t.rx.status).toBe('reconnecting');
    expect(silent.isClosed).toBe(false);
    expect(t.current()).toBe('http://gw1/webtransport');
    await t.release();
    expect(silent.closedWith).toBe('gateway silent');
    expect(t.current()).toBe('http://gw2/webtransport');
    expect(t.last().got[0]).toMatchObject({ type: FrameType.HELLO });
    t.rx.close();
  });

  it('one gateway gone silent: its next transport (its other path may still work)', async () => {
    const t = await rotating(['http://gw1'], ['webtransport', 'webrtc']);
    await t.step(310);
    expect(t.attempts.at(-1)).toBe('http://gw1/webrtc');
    t.rx.close();
  });

  it('a replacement no longer needed (the gateway spoke again) does not move the rotation', async () => {
    const t = await rotating(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc']);
    const kept = t.last();
    t.hold();
    await t.step(310);
    kept.say({ type: FrameType.HEARTBEAT, nonce: 2, sentAt: 0 });
    await t.release();
    expect(t.last().route).toBe('http://gw2/webtransport');
    expect(t.last().closedWith).toBe('the gateway spoke again');
    expect(t.current()).toBe('http://gw1/webtransport');
    expect(t.rx.status).toBe('connected');
    kept.close('connection reset'); // lost later: the next pair after it, not after the unused one
    await t.step(50);
    expect(t.attempts.at(-1)).toBe('http://gw1/webrtc');
    expect(t.current()).toBe('http://gw1/webrtc');
    t.rx.close();
  });

  it('a pair that refuses is skipped within the round; a round that fails everywhere backs off and starts over from the first pair', async () => {
    const t = await rotating(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc']);
    for (const r of ['http://gw1/webrtc', 'http://gw2/webtransport', 'http://gw2/webrtc', 'http://gw1/webtransport']) t.refused.add(r);
    t.attempts.length = 0;
    t.last().close('connection reset');
    await t.step(50);
    expect(t.attempts).toEqual(['http://gw1/webrtc', 'http://gw2/webtransport', 'http://gw2/webrtc', 'http://gw1/webtransport']);
    t.refused.clear();
    await t.step(50);
    expect(t.attempts.slice(4)).toEqual(['http://gw1/webtransport']);
    t.rx.close();
  });
});

describe('gateway rotation: a round of dials', () => {
  const failing = (errors: Record<string, Error>) => (url: string, transport: string) => async (): Promise<FrameLink> => {
    throw errors[`${url}/${transport}`] ?? new Error('unreachable');
  };

  it('fails with the last real error; MS_TRANSPORT_UNAVAILABLE (a missing library) only when every transport is like that', async () => {
    const unavailable = new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'no node-datachannel');
    const refused = new MirrorstreamError('MS_TRANSPORT_CLOSED', 'signaling answered 503', { retryable: true });
    const mixed = new GatewayRotation(['http://gw1'], ['webrtc', 'webtransport'], failing({ 'http://gw1/webrtc': unavailable, 'http://gw1/webtransport': refused }));
    await expect(mixed.dial()).rejects.toBe(refused);
    const none = new GatewayRotation(['http://gw1'], ['webrtc'], failing({ 'http://gw1/webrtc': unavailable }));
    await expect(none.dial()).rejects.toBe(unavailable);
  });

  it('a pair that cannot work here (MS_TRANSPORT_UNAVAILABLE) steps aside: never dialed again, told once', async () => {
    const dialed: string[] = [];
    const untrusted = new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'no path this browser can trust');
    const rotation = new GatewayRotation(['http://gw1', 'http://gw2'], ['webtransport', 'webrtc'], (url, transport) => async () => {
      dialed.push(`${url}/${transport}`);
      if (transport === 'webtransport') throw untrusted;
      throw new Error('unreachable');
    });
    await expect(rotation.dial()).rejects.toThrow('unreachable');
    await expect(rotation.dial()).rejects.toThrow('unreachable');
    expect(dialed).toEqual(['http://gw1/webtransport', 'http://gw1/webrtc', 'http://gw2/webtransport', 'http://gw2/webrtc', 'http://gw1/webrtc', 'http://gw2/webrtc']);
    expect(rotation.asideNote()).toBe('webtransport at http://gw1 stepped aside: no path this browser can trust; webtransport at http://gw2 stepped aside: no path this browser can trust');
    expect(rotation.asideNote()).toBeUndefined();
    // every pair aside: the round fails with why, dialing nothing
    const only = new GatewayRotation(['http://gw1'], ['webtransport'], () => () => Promise.reject(untrusted));
    await expect(only.dial()).rejects.toBe(untrusted);
    await expect(only.dial()).rejects.toBe(untrusted);
  });

  it('receivers sharing what they learned: a later one never dials a pair an earlier one saw step aside, and still says so once', async () => {
    const known = new Map<string, MirrorstreamError>();
    const untrusted = new MirrorstreamError('MS_TRANSPORT_UNAVAILABLE', 'no path this browser can trust');
    const dialed: string[] = [];
    const make = (): GatewayRotation =>
      new GatewayRotation(['http://gw1'], ['webtransport', 'webrtc'], (url, transport) => async () => {
        dialed.push(`${url}/${transport}`);
        if (transport === 'webtransport') throw untrusted;
        return new FakeLink(`${url}/${transport}`);
      }, known);
    const first = make();
    await first.dial();
    expect(first.asideNote()).toBe('webtransport at http://gw1 stepped aside: no path this browser can trust');
    const second = make();
    await second.dial();
    await second.dial();
    expect(dialed).toEqual(['http://gw1/webtransport', 'http://gw1/webrtc', 'http://gw1/webrtc', 'http://gw1/webrtc']);
    expect(second.asideNote()).toBe('webtransport at http://gw1 stepped aside (learned earlier here): no path this browser can trust');
    expect(second.asideNote()).toBeUndefined();
    // another gateway URL is learned on its own
    const other = new GatewayRotation(['http://gw2'], ['webtransport', 'webrtc'], (url, transport) => async () => {
      dialed.push(`${url}/${transport}`);
      return new FakeLink(`${url}/${transport}`);
    }, known);
    await other.dial();
    expect(dialed.at(-1)).toBe('http://gw2/webtransport');
  });

  it('needs at least one URL', () => {
    expect(() => new GatewayRotation([], ['webrtc'], failing({}))).toThrowError(TypeError);
  });
});

describe('a round where every gateway refused: the error that says when to come back is the one reported', () => {
  it('an overloaded gateway (Retry-After) outweighs a later plain failure, and the longest Retry-After wins', async () => {
    const errors: Record<string, MirrorstreamError> = {
      'a/webrtc': new MirrorstreamError('MS_OVERLOADED', 'a full', { retryable: true, retryAfterMs: 5_000 }),
      'b/webrtc': new MirrorstreamError('MS_GATEWAY_CLOSED', 'b draining', { retryable: true }),
      'c/webrtc': new MirrorstreamError('MS_OVERLOADED', 'c full', { retryable: true, retryAfterMs: 2_000 }),
    };
    const rotation = new GatewayRotation(['a', 'b', 'c'], ['webrtc'], (url, transport) => () => Promise.reject(errors[`${url}/${transport}`]));
    await expect(rotation.dial()).rejects.toBe(errors['a/webrtc']);
    const plain = new GatewayRotation(['b'], ['webrtc'], () => () => Promise.reject(errors['b/webrtc']));
    await expect(plain.dial()).rejects.toBe(errors['b/webrtc']);
  });
});
