import { describe, expect, it } from 'vitest';
import { ManualClock, MirrorstreamError } from '../../receiver-sdk/src/index.js';
import { Lifecycle, TRANSITIONS, type LifecycleState } from '../../receiver-sdk/src/lifecycle.js';
import { lifecycleRig, turn, unreachable, type LifecycleRig } from '../helpers/lifecycle-rig.js';

/**
 * The receiver's lifecycle state machine on a manual clock: each transition of TRANSITIONS
 * with its effects (which link is left, flushed, closed; which dial starts, with what hint;
 * the backoff timer; the status). Random event sequences: receiver-lifecycle-model.test.ts.
 */

function expectState(t: LifecycleRig, state: LifecycleState): void {
  expect(t.lc.state).toBe(state);
}

/** One test per transition of TRANSITIONS, named `from -event-> to`. */
const cases: Record<string, () => Promise<void>> = {
  'idle -connect-> dialing': async () => {
    const t = lifecycleRig();
    t.connect();
    expectState(t, 'dialing');
    expect(t.dials.map((d) => d.hint)).toEqual([undefined]);
    expect(t.log).toEqual(['connecting: attempt 1']);
    expect(t.lc.connect()).toBe(t.connected()); // every caller gets the same promise
  },
  'idle -close-> closed': async () => {
    const t = lifecycleRig();
    t.lc.close();
    expectState(t, 'closed');
    await expect(t.lc.connect()).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED' });
    expect(t.dials).toEqual([]);
  },
  'dialing -dialed-> handshake': async () => {
    const t = lifecycleRig();
    await t.toHandshake();
    expectState(t, 'handshake');
    expect(t.adopted).toEqual([t.last().link]);
    expect(t.lc.link).toBe(t.last().link);
  },
  'dialing -dialFailed-> backoff': async () => {
    const t = lifecycleRig(100);
    await t.toBackoff();
    expectState(t, 'backoff');
    expect(t.log.at(-1)).toBe('reconnecting: unreachable');
    expect(t.clock.pendingTimers).toBe(1);
  },
  'dialing -dialFailed-> closed': async () => {
    const fatal = lifecycleRig(100);
    fatal.connect();
    await fatal.last().fail(new MirrorstreamError('MS_UNAUTHORIZED', 'token expired'));
    expectState(fatal, 'closed');
    await expect(fatal.connected()).rejects.toMatchObject({ code: 'MS_UNAUTHORIZED' });
    const givesUp = lifecycleRig(null);
    givesUp.connect();
    await givesUp.last().fail();
    expectState(givesUp, 'closed');
    await expect(givesUp.connected()).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED', message: 'unreachable' });
    expect(givesUp.clock.pendingTimers).toBe(0);
  },
  'dialing -close-> closed': async () => {
    const t = lifecycleRig();
    t.connect();
    t.lc.close();
    expectState(t, 'closed');
    await t.last().land(); // a dial that lands after close is closed unused
    expect(t.last().link.closedWith).toBe('receiver closed');
    expect(t.adopted).toEqual([]);
  },
  'backoff -retry-> dialing': async () => {
    const t = lifecycleRig(100);
    await t.toBackoff();
    t.clock.advance(99);
    expect(t.dials).toHaveLength(1);
    t.clock.advance(1);
    expectState(t, 'dialing');
    expect(t.dials.map((d) => d.hint)).toEqual([undefined, undefined]);
    expect(t.log.at(-1)).toBe('reconnecting: attempt 2');
  },
  'backoff -close-> closed': async () => {
    const t = lifecycleRig(100);
    await t.toBackoff();
    t.lc.close();
    expectState(t, 'closed');
    expect(t.clock.pendingTimers).toBe(0);
    t.clock.advance(1_000);
    expect(t.dials).toHaveLength(1);
  },
  'handshake -welcome-> open': async () => {
    const t = lifecycleRig();
    await t.toHandshake();
    t.lc.welcome('session s');
    expectState(t, 'open');
    await expect(t.connected()).resolves.toBeUndefined();
    expect(t.log.at(-1)).toBe('connected: session s');
  },
  'handshake -drop-> dialing': async () => {
    const t = lifecycleRig(60_000);
    await t.toHandshake();
    const old = t.last().link;
    t.lc.drop({ kind: 'goaway', reason: 'draining' });
    expectState(t, 'dialing');
    expect(old.closedWith).toBe('gateway going away: draining');
    expect(t.log).toContain('leave 0 + flush');
    expect(t.dials.map((d) => d.hint)).toEqual([undefined, { nextGateway: true }]); // at once, no backoff
  },
  'handshake -drop-> backoff': async () => {
    const silent = lifecycleRig(100);
    await silent.toHandshake();
    silent.lc.drop({ kind: 'silent', limitMs: 1_000 }); // no WELCOME yet: nothing to keep
    expectState(silent, 'backoff');
    expect(silent.last().link.closedWith).toBe('gateway silent');
    expect(silent.log.slice(-2)).toEqual(['leave 0', 'reconnecting: no frame from the gateway for 1000 ms']);
    const reset = lifecycleRig(100);
    await reset.toHandshake();
    reset.last().link.close('connection reset'); // the transport closed under us
    expectState(reset, 'backoff');
    expect(reset.log.slice(-2)).toEqual(['leave 0', 'reconnecting: connection reset']);
  },
  'handshake -drop-> closed': async () => {
    const t = lifecycleRig(100);
    await t.toHandshake();
    t.lc.drop({ kind: 'failed', error: new MirrorstreamError('MS_PROTOCOL_VERSION', 'another protocol') });
    expectState(t, 'closed');
    expect(t.last().link.closedWith).toBe('MS_PROTOCOL_VERSION');
    await expect(t.connected()).rejects.toMatchObject({ code: 'MS_PROTOCOL_VERSION' });
    expect(t.log.at(-1)).toBe('closed: another protocol');
  },
  'handshake -close-> closed': async () => {
    const t = lifecycleRig();
    await t.toHandshake();
    t.lc.close();
    expectState(t, 'closed');
    expect(t.last().link.closedWith).toBe('receiver closed');
    expect(t.log.slice(-2)).toEqual(['leave 0 + flush', 'closed: closed by application']);
    await expect(t.connected()).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED' });
  },
  'open -welcome-> open': async () => {
    const t = lifecycleRig();
    await t.toOpen();
    const before = t.log.length;
    t.lc.welcome('session s2');
    expectState(t, 'open');
    expect(t.log.length).toBe(before); // still connected: no news
  },
  'open -silent-> replacing': async () => {
    const t = lifecycleRig();
    await t.toOpen();
    t.lc.drop({ kind: 'silent', limitMs: 300 });
    expectState(t, 'replacing');
    expect(t.lc.link).toBe(t.dials[0]?.link); // kept, still heard
    expect(t.dials[0]?.link.isClosed).toBe(false);
    expect(t.last().hint).toEqual({ gatewaySilent: true });
    expect(t.log.at(-1)).toBe('reconnecting: no frame from the gateway for 300 ms');
  },
  'open -drop-> dialing': async () => {
    const goaway = lifecycleRig(60_000);
    await goaway.toOpen();
    goaway.lc.drop({ kind: 'goaway', reason: 'restart' });
    expectState(goaway, 'dialing');
    expect(goaway.log.slice(-3)).toEqual(['leave 0 + flush', 'reconnecting: gateway going away: restart', 'reconnecting: attempt 1']);
    // a replacement no longer needed is still under way: the next drop waits for it instead of backing off
    const stale = lifecycleRig(60_000);
    await stale.toReplacing();
    stale.lc.spoke();
    stale.dials[0]?.link.close('reset');
    expectState(stale, 'dialing');
    expect(stale.clock.pendingTimers).toBe(0);
    await stale.last().land();
    expectState(stale, 'handshake');
    expect(stale.adopted).toEqual([stale.dials[0]?.link, stale.dials[1]?.link]);
  },
  'open -drop-> backoff': async () => {
    const t = lifecycleRig(100);
    await t.toOpen();
    t.dials[0]?.link.close('peer connection failed');
    expectState(t, 'backoff');
    expect(t.log.slice(-2)).toEqual(['leave 0', 'reconnecting: peer connection failed']);
    t.clock.advance(100);
    expect(t.last().hint).toBeUndefined();
  },
  'open -drop-> closed': async () => {
    const t = lifecycleRig(null);
    await t.toOpen();
    t.dials[0]?.link.close('peer connection failed');
    expectState(t, 'closed');
    expect(t.log.at(-1)).toBe('closed: peer connection failed');
  },
  'open -close-> closed': async () => {
    const t = lifecycleRig();
    await t.toOpen();
    t.lc.close();
    expectState(t, 'closed');
    expect(t.dials[0]?.link.closedWith).toBe('receiver closed');
    await expect(t.lc.connect()).rejects.toMatchObject({ code: 'MS_TRANSPORT_CLOSED' });
  },
  'replacing -spoke-> open': async () => {
    const t = lifecycleRig();
    await t.toReplacing();
    expect(t.lc.spoke()).toBe(true);
    expectState(t, 'open');
    expect(t.log.at(-1)).toBe('connected: the gateway spoke again');
    await t.last().land(); // the replacement, no longer needed
    expect(t.last().link.closedWith).toBe('the gateway spoke again');
    expect(t.adopted).toHaveLength(1);
    expect(t.dials[0]?.link.isClosed).toBe(false);
  },
  'replacing -dialed-> handshake': async () => {
    const t = lifecycleRig();
    await t.toReplacing();
    await t.last().land();
    expectState(t, 'handshake');
    expect(t.dials[0]?.link.closedWith).toBe('gateway silent');
    expect(t.log).toContain('leave 0 + flush');
    expect(t.lc.link).toBe(t.last().link);
  },
  'replacing -dialFailed-> backoff': async () => {
    const t = lifecycleRig(100);
    await t.toReplacing();
    await t.last().fail();
    expectState(t, 'backoff');
    expect(t.dials[0]?.link.closedWith).toBe('gateway silent');
    expect(t.lc.link).toBeUndefined();
  },
  'replacing -dialFailed-> closed': async () => {
    const t = lifecycleRig(100);
    await t.toReplacing();
    await t.last().fail(new MirrorstreamError('MS_UNAUTHORIZED', 'token expired'));
    expectState(t, 'closed');
    expect(t.dials[0]?.link.isClosed).toBe(true);
  },
  'replacing -drop-> dialing': async () => {
    const t = lifecycleRig(100);
    await t.toReplacing();
    t.lc.drop({ kind: 'goaway', reason: 'restart' });
    expectState(t, 'dialing');
    expect(t.dials).toHaveLength(2); // one dial at a time: the one under way serves
    expect(t.clock.pendingTimers).toBe(0);
    await t.last().land();
    expectState(t, 'handshake');
  },
  'replacing -drop-> closed': async () => {
    const t = lifecycleRig(100);
    await t.toReplacing();
    t.lc.drop({ kind: 'failed', error: new MirrorstreamError('MS_UNAUTHORIZED', 'revoked') });
    expectState(t, 'closed');
    await t.last().land();
    expect(t.last().link.closedWith).toBe('receiver closed');
  },
  'replacing -close-> closed': async () => {
    const t = lifecycleRig();
    await t.toReplacing();
    t.lc.close();
    expectState(t, 'closed');
    expect(t.dials[0]?.link.closedWith).toBe('receiver closed');
  },
};

describe('receiver lifecycle: every transition (manual clock)', () => {
  it('each transition of TRANSITIONS has its case here, and no case names one it does not have', () => {
    const table = Object.entries(TRANSITIONS).flatMap(([from, events]) =>
      Object.entries(events).flatMap(([event, targets]) => (targets ?? []).map((to) => `${from} -${event}-> ${to}`)),
    );
    expect(Object.keys(cases).sort()).toEqual(table.sort());
  });

  it.each(Object.keys(cases))('%s', async (name) => {
    await cases[name]?.();
  });

  it('an event a state does not take leaves it as it is', async () => {
    const t = lifecycleRig();
    t.lc.welcome('early');
    expect(t.lc.spoke()).toBe(false);
    t.lc.drop({ kind: 'closed', reason: 'no link' });
    expectState(t, 'idle');
    await t.toOpen();
    expect(t.lc.spoke()).toBe(false);
    expectState(t, 'open');
  });

  it('attempts count from the last WELCOME: the policy sees 0, 1, 2 across failed dials, then 0 again', async () => {
    const attempts: number[] = [];
    const clock = new ManualClock();
    const lc = new Lifecycle(
      { clock, reconnect: { nextRetryDelayMs: ({ attempt }) => (attempts.push(attempt), 10) }, dial: () => Promise.reject(unreachable()) },
      { adopt: () => undefined, leave: () => undefined, status: () => undefined },
    );
    lc.connect().catch(() => undefined);
    for (let i = 0; i < 3; i++) {
      await turn();
      clock.advance(10);
    }
    expect(attempts).toEqual([0, 1, 2]);
    lc.close();
  });
});
