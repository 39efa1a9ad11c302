import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MirrorstreamError } from '../../receiver-sdk/src/index.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';
import { Dialer } from '../../gateway/src/dial-out/dialer.js';
import { assignDialers, dialTargets, type DialCandidate } from '../../gateway/src/dial-out/index.js';
import { MemoryTransport } from '../../gateway/src/transports/memory.js';
import type { ListenerTarget } from '../../gateway/src/dial-out/offer-client.js';
import { mulberry32 } from '../helpers/random.js';

const log = pino({ level: 'silent' });
const target = (n: number): ListenerTarget => ({ url: `http://127.0.0.1:${9000 + n}/`, token: 'listener-token-0123456789' });

/** A dialer on the manual clock whose dials the test answers by hand. */
function rig(backoff = { initialMs: 200, maxMs: 5_000 }) {
  const clock = new ManualClock();
  const dials: { endpointId: string; at: number; resolve: (t: MemoryTransport) => void; reject: (e: unknown) => void }[] = [];
  const accepted: { endpointId: string; transport: MemoryTransport }[] = [];
  const dialer = new Dialer({
    clock,
    log,
    backoff,
    random: mulberry32(29),
    connect: (endpointId) => new Promise((resolve, reject) => dials.push({ endpointId, at: clock.now(), resolve, reject })),
    accept: (transport, auth) => accepted.push({ endpointId: auth.endpointId, transport: transport as MemoryTransport }),
  });
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  /** Answer dial `i` with an open transport (the gateway's side of a memory pair). */
  const open = async (i: number): Promise<MemoryTransport> => {
    const [gw] = MemoryTransport.pair();
    dials[i]!.resolve(gw);
    await settle();
    return gw;
  };
  return { clock, dials, accepted, dialer, settle, open };
}

describe('Dialer: keeps listening endpoints connected', () => {
  it('dials every wanted endpoint at once, in the order given, and hands each open transport to the sessions', async () => {
    const { dials, accepted, dialer, open } = rig();
    dialer.want(new Map([['b', target(2)], ['a', target(1)], ['c', target(3)]]));
    expect(dials.map((d) => d.endpointId)).toEqual(['b', 'a', 'c']);
    expect(dialer.status('a')?.state).toBe('dialing');
    await open(1);
    expect(accepted.map((a) => a.endpointId)).toEqual(['a']);
    expect(dialer.status('a')).toMatchObject({ state: 'connected', failures: 0 });
  });

  it('a failed dial backs off with capped full jitter (seeded), records the coded error, and dials again', async () => {
    const { clock, dials, dialer, settle } = rig({ initialMs: 200, maxMs: 1_000 });
    dialer.want(new Map([['a', target(1)]]));
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      dials.at(-1)!.reject(new MirrorstreamError('MS_DIAL_FAILED', `answered 500 (${i})`, { retryable: true }));
      await settle();
      const s = dialer.status('a')!;
      expect(s).toMatchObject({ state: 'backoff', failures: i + 1, lastError: { code: 'MS_DIAL_FAILED', message: `answered 500 (${i})` } });
      const wait = s.nextAttemptAt! - clock.now();
      waits.push(wait);
      // full jitter between half the first step and min(max, initial × 2^failures)
      expect(wait).toBeGreaterThanOrEqual(100);
      expect(wait).toBeLessThanOrEqual(Math.min(1_000, 200 * 2 ** (i + 1)));
      clock.advance(wait - 1);
      expect(dials).toHaveLength(i + 1);
      clock.advance(1);
      expect(dials).toHaveLength(i + 2);
    }
    // the seeded jitter spreads the waits (not one fixed step)
    expect(new Set(waits).size).toBeGreaterThan(3);
  });

  it('an error that is not coded becomes MS_DIAL_FAILED', async () => {
    const { dials, dialer, settle } = rig();
    dialer.want(new Map([['a', target(1)]]));
    dials[0]!.reject(new Error('ECONNREFUSED'));
    await settle();
    expect(dialer.status('a')?.lastError).toMatchObject({ code: 'MS_DIAL_FAILED', message: 'ECONNREFUSED' });
  });

  it('a connection that closes is re-dialed after a short backoff (the failure count starts over after a connection)', async () => {
    const { clock, dials, dialer, settle, open } = rig({ initialMs: 200, maxMs: 5_000 });
    dialer.want(new Map([['a', target(1)]]));
    dials[0]!.reject(new Error('refused'));
    await settle();
    clock.advance(dialer.status('a')!.nextAttemptAt! - clock.now());
    const gw = await open(1);
    expect(dialer.status('a')).toMatchObject({ state: 'connected', failures: 0 });
    gw.close('listener died');
    await settle();
    const s = dialer.status('a')!;
    expect(s.state).toBe('backoff');
    const wait = s.nextAttemptAt! - clock.now();
    expect(wait).toBeGreaterThanOrEqual(100);
    expect(wait).toBeLessThanOrEqual(200);
    clock.advance(wait);
    expect(dials).toHaveLength(3);
  });

  it('an endpoint judged dead is dialed again at once, its old connection kept until the new one replaces it', async () => {
    const { clock, dials, accepted, dialer, settle, open } = rig();
    dialer.want(new Map([['a', target(1)]]));
    const old = await open(0);
    dialer.endpointDead('a');
    expect(dials).toHaveLength(2);
    expect(old.isClosed).toBe(false);
    expect(dialer.status('a')?.state).toBe('dialing');
    // the listener is gone: the dial fails and backs off; the old connection closing later changes nothing
    dials[1]!.reject(new Error('ECONNREFUSED'));
    await settle();
    old.close('closed after closeDeadAfterMs');
    await settle();
    expect(dialer.status('a')).toMatchObject({ state: 'backoff', failures: 1 });
    clock.advance(dialer.status('a')!.nextAttemptAt! - clock.now());
    const fresh = await open(2);
    expect(accepted.map((a) => a.transport)).toEqual([old, fresh]);
    expect(dialer.status('a')?.state).toBe('connected');
    // dead again while not connected: nothing to do; unknown ids: nothing
    dialer.endpointDead('zz');
    expect(dials).toHaveLength(3);
  });

  it('an endpoint no longer wanted is not re-dialed and its connection closes; a dial that settles late is closed', async () => {
    const { clock, dials, dialer, settle, open } = rig();
    dialer.want(new Map([['a', target(1)], ['b', target(2)]]));
    const gwA = await open(0);
    dialer.want(new Map());
    await settle();
    expect(await gwA.closed).toBe('no longer dialed by this instance');
    const gwB = await open(1);
    expect(await gwB.closed).toBe('no longer dialed');
    clock.advance(60_000);
    expect(dials).toHaveLength(2);
    expect(dialer.status('a')).toBeUndefined();
  });

  it('a changed target (url or token) is dialed anew', async () => {
    const { dials, dialer, open } = rig();
    dialer.want(new Map([['a', target(1)]]));
    const gw = await open(0);
    dialer.want(new Map([['a', target(7)]]));
    expect(await gw.closed).toBe('its target changed');
    expect(dials).toHaveLength(2);
  });

  it('stop() dials no more and leaves open connections to the sessions (they get GOAWAY there)', async () => {
    const { clock, dials, dialer, settle } = rig();
    dialer.want(new Map([['a', target(1)], ['b', target(2)]]));
    const [gw] = MemoryTransport.pair();
    dials[0]!.resolve(gw);
    dials[1]!.reject(new Error('refused'));
    await settle();
    dialer.stop();
    clock.advance(60_000);
    expect(dials).toHaveLength(2);
    expect(gw.isClosed).toBe(false);
    dialer.want(new Map([['c', target(3)]]));
    expect(dials).toHaveLength(2);
  });
});

describe('dialTargets: exactly one instance dials each listening endpoint', () => {
  const listeners = { l1: target(1), l2: target(2), l3: target(3) };
  const stream = (streamId: string, owner: string | null, endpointList: string[], active: string[] = []): DialCandidate => ({ streamId, owner, endpointList, active, listeners });

  it('the owner of the stream dials its listening endpoints, active first, then by priority; dial-in ids are not dialed', () => {
    const mine = dialTargets(assignDialers([stream('s1', 'me', ['l1', 'web', 'l3', 'l2'], ['l2'])]), 'me');
    expect([...mine.keys()]).toEqual(['l2', 'l1', 'l3']);
    expect(mine.get('l1')).toEqual(target(1));
    expect(dialTargets(assignDialers([stream('s1', 'other', ['l1', 'l2'])]), 'me').size).toBe(0);
    expect(dialTargets(assignDialers([stream('s1', null, ['l1', 'l2'])]), 'me').size).toBe(0);
  });

  it('an endpoint on several streams is dialed by the owner of the first stream by id, whatever the order seen', () => {
    const a = stream('a', 'x', ['l1']);
    const b = stream('b', 'y', ['l1', 'l2']);
    for (const order of [[a, b], [b, a]]) {
      expect([...dialTargets(assignDialers(order), 'x').keys()]).toEqual(['l1']);
      expect([...dialTargets(assignDialers(order), 'y').keys()]).toEqual(['l2']);
    }
  });

  it('the dialing order takes the best position over every stream that lists the endpoint', () => {
    const a = stream('a', 'me', ['l1', 'l2']);
    const b = stream('b', 'me', ['l2', 'l1'], ['l2']);
    for (const order of [[a, b], [b, a]]) expect([...dialTargets(assignDialers(order), 'me').keys()]).toEqual(['l2', 'l1']);
  });
});
