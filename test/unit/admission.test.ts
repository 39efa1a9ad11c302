import { describe, expect, it } from 'vitest';
import { admissionSchema } from '../../gateway/src/config.js';
import { TimerQueue } from '../../gateway/src/core/timers.js';
import { Admission, type AdmissionKind, type LoopDelaySource } from '../../gateway/src/signaling/admission.js';
import { SessionBudget } from '../../gateway/src/signaling/budget.js';
import { ManualClock, MirrorstreamError } from '../../receiver-sdk/src/protocol/index.js';
import { ExponentialBackoff } from '../../receiver-sdk/src/link.js';
import { mulberry32 } from '../helpers/random.js';

/** A loop-delay source the test sets: the p99 each window will read. */
function fakeLoopDelay(): LoopDelaySource & { next: number; resets: number } {
  const s = { next: 0, resets: 0, p99Ms: () => s.next, reset: () => void s.resets++, stop: () => undefined };
  return s;
}

/** Admission on a manual clock, a fake loop delay, a random source (`random.next`) and a count of sessions open (`setSessions`, 100 at first: past the default minSessions) the test sets. */
function rig(config: Partial<ReturnType<typeof admissionSchema.parse>> = {}) {
  const clock = new ManualClock();
  const loop = fakeLoopDelay();
  const random = { next: 0 };
  let pending = 0;
  let sessions = 100;
  const admission = new Admission({ config: admissionSchema.parse(config), timers: new TimerQueue(clock), loopDelay: loop, pendingHandshakes: () => pending, sessionsOpen: () => sessions, random: () => random.next });
  /** What admit() did: undefined if admitted, else the refusal. */
  const attempt = (kind: AdmissionKind = 'webrtc'): MirrorstreamError | Error | undefined => {
    try {
      admission.admit(kind);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  };
  const refusal = (kind: AdmissionKind = 'webrtc'): string | undefined => {
    const e = attempt(kind);
    return e instanceof MirrorstreamError ? `${e.code} retryable=${e.retryable} retryAfterMs=${e.retryAfterMs}` : e && String(e);
  };
  /** undefined if admitted, else the refusal's Retry-After (ms). */
  const retryAfter = (): number | undefined => {
    const e = attempt();
    return e === undefined ? undefined : e instanceof MirrorstreamError ? e.retryAfterMs : -1;
  };
  return { clock, loop, random, admission, refusal, retryAfter, setPending: (n: number) => (pending = n), setSessions: (n: number) => (sessions = n) };
}

describe('admission control (injected clock, a fake loop delay)', () => {
  it('over the loop budget nothing new is admitted; over it windowsToClose windows in a row the gateway is overloaded (retryAfterS), one late window (a GC pause) asks back in 1 s', () => {
    const { clock, loop, admission, refusal } = rig({ maxLoopDelayMs: 100, windowMs: 1_000, windowsToClose: 2, maxNewPerSecond: 0 });
    loop.next = 400;
    clock.advance(1_000);
    expect(admission.admitting).toBe(true);
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    loop.next = 20;
    clock.advance(1_000); // the streak is broken
    expect(refusal()).toBeUndefined();
    loop.next = 400;
    clock.advance(1_000);
    expect(admission.admitting).toBe(true);
    clock.advance(1_000);
    expect(admission.admitting).toBe(false);
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=5000');
    // back under the budget: admitted again (the admission rate, tested below, is what reopens gradually)
    loop.next = 80;
    clock.advance(1_000);
    expect(admission.admitting).toBe(true);
    expect(refusal()).toBeUndefined();
    expect(admission.snapshot()).toEqual({ admitting: true, loop_delay_p99_ms: 80, admit_rate_per_s: null, webtransport_admit_rate_per_s: null, pending_handshakes: 0, refused: { loop_delay: 2, rate: 0, handshakes: 0 } });
    // each window reads the histogram and empties it
    expect(loop.resets).toBe(5);
  });

  it("admits at maxNewPerSecond × the loop's headroom under admitLoopDelayMs (the worse of two windows), a tenth of a second's worth at once; stops there, below the serving budget", () => {
    const { clock, loop, admission, refusal } = rig({ maxLoopDelayMs: 100, admitLoopDelayMs: 50, windowMs: 1_000, maxNewPerSecond: 100 });
    const admitted = (): number => {
      let n = 0;
      while (refusal() === undefined) n++;
      return n;
    };
    // an idle loop: 100/s, 10 at once; the next one waits for the bucket (1 s Retry-After)
    expect(admitted()).toBe(10);
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    clock.advance(50);
    expect(admitted()).toBe(5);
    // half the admission target used: 50/s
    loop.next = 25;
    clock.advance(950);
    expect(admission.snapshot().admit_rate_per_s).toBe(50);
    clock.advance(100);
    expect(admitted()).toBe(5);
    // at the admission target, under the serving budget: no new endpoint, yet not overloaded (nothing to tell a load balancer)
    loop.next = 50;
    clock.advance(900);
    expect(admission.snapshot().admit_rate_per_s).toBe(0);
    clock.advance(500);
    expect(admitted()).toBe(0);
    expect(admission.admitting).toBe(true);
    // one quiet window does not reopen: the worse of the last two counts
    loop.next = 10;
    clock.advance(500);
    expect(admission.snapshot().admit_rate_per_s).toBe(0);
    expect(admitted()).toBe(0);
    // a second one does: the first one at once, then gradually, not all at once
    clock.advance(1_000);
    expect(admission.snapshot().admit_rate_per_s).toBe(80);
    expect(admitted()).toBe(1);
    clock.advance(1_000);
    expect(admitted()).toBe(8);
    expect(admission.snapshot().refused).toEqual({ loop_delay: 0, rate: 8, handshakes: 0 });
  });

  it('an admission target above the serving budget is taken as the budget', () => {
    const { clock, loop, admission } = rig({ maxLoopDelayMs: 40, admitLoopDelayMs: 80, windowMs: 1_000, maxNewPerSecond: 100 });
    loop.next = 20;
    clock.advance(1_000);
    expect(admission.snapshot().admit_rate_per_s).toBe(50);
  });

  it('a crowd refused in one window is asked back spread evenly over the span the current rate needs for it (1 s to at most 30 s)', () => {
    const { random, clock, loop, retryAfter } = rig({ maxLoopDelayMs: 100, admitLoopDelayMs: 100, windowMs: 1_000, maxNewPerSecond: 100 });
    loop.next = 90; // 10/s from the next window on
    clock.advance(1_000);
    for (let i = 0; i < 50; i++) retryAfter(); // one admitted, 49 refused
    clock.advance(1_000);
    expect(retryAfter()).toBeUndefined(); // the bucket's one admission
    // 49 refused at 10/s need 4.9 s: from 1 s (the first of them) to 5 s (the last), in whole seconds
    random.next = 0;
    expect(retryAfter()).toBe(1_000);
    random.next = 0.5;
    expect(retryAfter()).toBe(3_000);
    random.next = 0.999;
    expect(retryAfter()).toBe(5_000);
    for (let i = 0; i < 1_000; i++) retryAfter();
    clock.advance(1_000);
    expect(retryAfter()).toBeUndefined();
    expect(retryAfter()).toBe(30_000); // a crowd of 1 000 at 10/s: spread over 30 s at most
    // the crowd gone: soon again
    clock.advance(1_000);
    clock.advance(1_000);
    expect(retryAfter()).toBeUndefined();
    expect(retryAfter()).toBe(1_000);
  });

  it('a crowd refused while the rate is none (a connect burst at the admission target) is spread over a tenth of the full rate, not over 1/s', () => {
    const { random, clock, loop, admission, retryAfter } = rig({ maxLoopDelayMs: 100, admitLoopDelayMs: 50, windowMs: 1_000, maxNewPerSecond: 100 });
    random.next = 0.999;
    loop.next = 60; // past the admission target, under the budget: rate 0, not overloaded
    clock.advance(1_000);
    expect(admission.snapshot().admit_rate_per_s).toBe(0);
    for (let i = 0; i < 40; i++) expect(retryAfter()).toBe(1_000);
    clock.advance(1_000);
    // 40 refused at (at least) 10/s: the last of them in 4 s, not in 30 s
    expect(retryAfter()).toBe(4_000);
    random.next = 0;
    expect(retryAfter()).toBe(1_000);
  });

  it('refuses past maxPendingHandshakes and admits again as handshakes complete; 0 means no limit', () => {
    const { refusal, setPending, admission } = rig({ maxPendingHandshakes: 3 });
    setPending(2);
    expect(refusal()).toBeUndefined();
    setPending(3);
    // handshakes complete quickly: come back in a second, not after retryAfterS
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    setPending(1);
    expect(refusal()).toBeUndefined();
    expect(admission.snapshot().refused).toEqual({ loop_delay: 0, rate: 0, handshakes: 1 });
    const unlimited = rig({ maxPendingHandshakes: 0 });
    unlimited.setPending(10_000);
    expect(unlimited.refusal()).toBeUndefined();
  });

  it('below minSessions sessions open the loop budgets hold nothing back (the lateness is not theirs): no refusal, never overloaded, the rate unscaled; from minSessions on they apply', () => {
    const { clock, loop, admission, refusal, setSessions } = rig({ maxLoopDelayMs: 100, admitLoopDelayMs: 50, windowsToClose: 2, maxNewPerSecond: 100, minSessions: 50 });
    setSessions(49);
    loop.next = 400;
    clock.advance(3_000);
    expect(admission.admitting).toBe(true);
    expect(admission.snapshot()).toMatchObject({ loop_delay_p99_ms: 400, admit_rate_per_s: 100 });
    expect(refusal()).toBeUndefined();
    // the rate still holds: 10 at once in all
    for (let i = 1; i < 10; i++) expect(refusal()).toBeUndefined();
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    // one more session open: the loop budget refuses at once, the rate and the overloaded state follow at the windows' ends
    setSessions(50);
    clock.advance(100);
    expect(refusal()).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    clock.advance(900);
    expect(admission.snapshot()).toMatchObject({ admitting: true, admit_rate_per_s: 0 });
    clock.advance(1_000);
    expect(admission.admitting).toBe(false);
    expect(admission.snapshot().refused).toEqual({ loop_delay: 1, rate: 1, handshakes: 0 });
  });

  it('maxLoopDelayMs 0: no loop budget, no window timer', () => {
    const { clock, loop, admission } = rig({ maxLoopDelayMs: 0 });
    loop.next = 10_000;
    clock.advance(10_000);
    expect(admission.admitting).toBe(true);
    expect(loop.resets).toBe(0);
  });

  it('WebTransport sessions stop being admitted at webtransportAdmitLoopDelayMs, WebRTC ones at admitLoopDelayMs; both take from the common rate', () => {
    const { clock, loop, admission, refusal } = rig({ maxLoopDelayMs: 50, admitLoopDelayMs: 40, webtransportAdmitLoopDelayMs: 20, maxNewPerSecond: 100, windowMs: 1_000 });
    // the loop at 30 ms: past the WebTransport target, under the WebRTC one
    loop.next = 30;
    clock.advance(2_000);
    expect(admission.snapshot().admit_rate_per_s).toBeCloseTo(25);
    expect(admission.snapshot().webtransport_admit_rate_per_s).toBe(0);
    expect(refusal('webtransport')).toBe('MS_OVERLOADED retryable=true retryAfterMs=1000');
    expect(refusal('webrtc')).toBeUndefined();
    // at 10 ms: WebTransport at half the rate (1 − 10/20), WebRTC at three quarters (1 − 10/40)
    loop.next = 10;
    clock.advance(2_000);
    expect(admission.snapshot().webtransport_admit_rate_per_s).toBeCloseTo(50);
    expect(admission.snapshot().admit_rate_per_s).toBeCloseTo(75);
    // over 10 s: WebTransport alone gets its 50/s, and each takes from the common 75/s as well
    let webtransport = 0;
    let webrtc = 0;
    for (let t = 0; t < 10_000; t += 10) {
      clock.advance(10);
      loop.next = 10;
      if (refusal('webtransport') === undefined) webtransport++;
      if (refusal('webrtc') === undefined) webrtc++;
    }
    expect(webtransport).toBeGreaterThanOrEqual(490);
    expect(webtransport).toBeLessThanOrEqual(510);
    expect(webtransport + webrtc).toBeGreaterThanOrEqual(740);
    expect(webtransport + webrtc).toBeLessThanOrEqual(760);
    // the refusal names the target that refused
    loop.next = 30;
    clock.advance(2_000);
    try {
      admission.admit('webtransport');
      expect.unreachable();
    } catch (error) {
      expect(String(error)).toContain('admission.webtransportAdmitLoopDelayMs');
    }
  });

  it('webtransportAdmitLoopDelayMs above admitLoopDelayMs is taken as admitLoopDelayMs', () => {
    const { clock, loop, admission } = rig({ maxLoopDelayMs: 50, admitLoopDelayMs: 20, webtransportAdmitLoopDelayMs: 45, maxNewPerSecond: 100 });
    loop.next = 10;
    clock.advance(2_000);
    expect(admission.snapshot().webtransport_admit_rate_per_s).toBeCloseTo(50);
    expect(admission.snapshot().admit_rate_per_s).toBeCloseTo(50);
  });

  it('the session budget asks admission only for an endpoint with no session open (a replacement is served already)', () => {
    let admitting = true;
    const budget = new SessionBudget({ sessionsPerEndpoint: 3, maxSessions: 100 }, () => {
      if (!admitting) throw new MirrorstreamError('MS_OVERLOADED', 'full', { retryable: true });
    });
    const first = budget.take('a', 'webrtc');
    admitting = false;
    expect(() => budget.take('b', 'webrtc')).toThrow(expect.objectContaining({ code: 'MS_OVERLOADED' }));
    const replacement = budget.take('a', 'webrtc');
    replacement();
    first();
    expect(() => budget.take('a', 'webrtc')).toThrow(expect.objectContaining({ code: 'MS_OVERLOADED' }));
    expect(budget.open).toBe(0);
  });
});

describe('the SDK backoff honors Retry-After, spread', () => {
  it('waits at least what the gateway asked, and at most half again, at random; without it, the exponential backoff', () => {
    const backoff = new ExponentialBackoff(100, 5_000, mulberry32(31));
    const overloaded = new MirrorstreamError('MS_OVERLOADED', 'full', { retryable: true, retryAfterMs: 5_000 });
    const waits = Array.from({ length: 1_000 }, (_, i) => backoff.nextRetryDelayMs({ attempt: i % 4, lastError: overloaded }));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(5_000);
    expect(Math.max(...waits)).toBeLessThanOrEqual(7_500);
    // spread over the range, not bunched: each half-second slice of it gets some
    for (let from = 5_000; from < 7_500; from += 500) expect(waits.filter((w) => w >= from && w < from + 500).length).toBeGreaterThan(100);
    expect(backoff.nextRetryDelayMs({ attempt: 0, lastError: new Error('lost') })).toBeLessThanOrEqual(100);
  });
});
