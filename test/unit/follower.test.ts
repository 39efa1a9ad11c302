import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Follower, Followers, type FollowSink } from '../../gateway/src/storage/jetstream/follower.js';
import { hedgedOpen } from '../../gateway/src/storage/jetstream/hedged-open.js';
import { ManualClock, type Clock, type TimerHandle } from '../../receiver-sdk/src/index.js';
import { settle } from '../helpers/memory-harness.js';

const timing = { stallMs: 1_000, retryMs: 100, maxRetryMs: 1_000, hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 1_000 };
const silent = pino({ level: 'silent' });

/**
 * An engine stream of entries at positions 1..n, and the subscriptions a follower opened on
 * it: each starts after the position it was opened at, as an ordered consumer does.
 */
class FakeEngine {
  readonly entries: string[] = [];
  readonly subs: { after: number; next: number; sink: FollowSink<string>; closed: boolean }[] = [];
  /** Opens that fail from now on (the engine has no leader). */
  failing = false;
  /** The next this many opens are never answered (placed on a dead node). */
  hang = 0;
  opens = 0;

  readonly open = async (after: number, sink: FollowSink<string>) => {
    this.opens++;
    if (this.hang > 0) {
      this.hang--;
      return new Promise<never>(() => undefined);
    }
    if (this.failing) throw new Error('no responders');
    const sub = { after, next: after + 1, sink, closed: false };
    this.subs.push(sub);
    return {
      close: () => {
        sub.closed = true;
      },
    };
  };

  append(n: number): void {
    for (let i = 0; i < n; i++) this.entries.push(`e${this.entries.length + 1}`);
  }

  get current() {
    return this.subs[this.subs.length - 1];
  }

  /** Deliver up to `n` entries on a subscription (the current one by default; even a replaced one, as a late message would). */
  deliver(n: number, sub = this.current): void {
    for (let i = 0; i < n && sub && sub.next <= this.entries.length; i++, sub.next++) sub.sink.entry(sub.next, this.entries[sub.next - 1]!);
  }
}

function follow(engine: FakeEngine, clock: ManualClock, health: boolean[] = []) {
  const applied: string[] = [];
  let position = 0;
  /** The owner of the position takes the next entry in itself (a log's own append, acked in order). */
  const own = (): void => {
    const next = engine.entries[position];
    if (next === undefined) return;
    position++;
    applied.push(next);
  };
  const follower = new Follower<string>({
    name: 'log:s',
    open: engine.open,
    position: () => position,
    apply: (at, value) => {
      position = at;
      applied.push(value);
    },
    clock,
    log: silent,
    timing,
    onHealth: (h) => health.push(h),
  });
  return { follower, applied, own };
}

describe('Follower: one supervised subscription to the engine', () => {
  it('a stalled subscription is replaced after stallMs, from the last applied position; what the old one still sends is dropped', async () => {
    const clock = new ManualClock();
    const engine = new FakeEngine();
    const health: boolean[] = [];
    const { follower, applied } = follow(engine, clock, health);
    await follower.start();
    engine.append(5);
    engine.deliver(3);
    expect(applied).toEqual(['e1', 'e2', 'e3']);
    // heartbeats keep a quiet subscription alive
    for (let i = 0; i < 5; i++) {
      clock.advance(500);
      engine.current!.sink.alive();
    }
    expect(engine.opens).toBe(1);
    // then silence (its server died): replaced once stallMs passed, starting after e3
    clock.advance(timing.stallMs);
    await settle();
    expect(engine.opens).toBe(2);
    expect(health).toEqual([true, false, true]);
    const [old, fresh] = engine.subs;
    expect(old!.closed).toBe(true);
    expect(fresh!.after).toBe(3);
    engine.deliver(5, old); // a late message of the replaced subscription
    engine.deliver(5, fresh);
    expect(applied).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);
    expect(follower.restarts).toBe(1);
    follower.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('a failed open is retried with a back-off that doubles up to maxRetryMs; not following meanwhile', async () => {
    const clock = new ManualClock();
    const engine = new FakeEngine();
    const { follower } = follow(engine, clock);
    await follower.start();
    engine.failing = true;
    engine.current!.sink.lost('consumer_not_found');
    await settle();
    expect(follower.following).toBe(false);
    const opensAt: number[] = [];
    const t0 = clock.now();
    for (let ms = 0; ms < 5_000; ms += 50) {
      const before = engine.opens;
      clock.advance(50);
      await settle();
      if (engine.opens > before) opensAt.push(clock.now() - t0);
    }
    // 100, +200, +400, +800, +1000, +1000 ...
    const gaps = opensAt.map((t, i) => t - (opensAt[i - 1] ?? 0));
    expect(gaps.slice(0, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(follower.following).toBe(false);
    engine.failing = false;
    clock.advance(1_000);
    await settle();
    expect(follower.following).toBe(true);
    follower.close();
  });

  it('lost() and restart() replace the subscription at once; an entry that cannot be applied is skipped, the rest go on', async () => {
    const clock = new ManualClock();
    const engine = new FakeEngine();
    let position = 0;
    const applied: number[] = [];
    const follower = new Follower<string>({
      name: 'kv:b',
      open: engine.open,
      position: () => position,
      apply: (at) => {
        position = at;
        if (at === 2) throw new Error('bad record');
        applied.push(at);
      },
      clock,
      log: silent,
      timing,
    });
    await follower.start();
    engine.append(4);
    engine.deliver(2);
    engine.current!.sink.lost('consumer_deleted');
    await settle();
    expect(engine.subs[1]!.after).toBe(2);
    follower.restart('NATS reconnected');
    await settle();
    expect(engine.subs[2]!.after).toBe(2);
    engine.deliver(2);
    expect(applied).toEqual([1, 3, 4]);
    follower.close();
  });

  it('Followers: names the ones not following, counts restarts', async () => {
    const clock = new ManualClock();
    const engine = new FakeEngine();
    const followers = new Followers(clock, silent);
    let changes = 0;
    followers.onChange = () => changes++;
    const a = followers.follow<string>({ name: 'log:a', open: engine.open, position: () => 0, apply: () => undefined });
    const b = followers.follow<string>({ name: 'control:a', open: engine.open, position: () => 0, apply: () => undefined });
    await a.start();
    await b.start();
    expect(followers.stale).toEqual([]);
    engine.failing = true;
    a.restart('test');
    b.restart('test');
    await settle();
    expect([...followers.stale].sort()).toEqual(['control:a', 'log:a']);
    expect(followers.restarts).toBe(2);
    followers.drop(b);
    expect(followers.stale).toEqual(['log:a']);
    engine.failing = false;
    clock.advance(200);
    await settle();
    expect(followers.stale).toEqual([]);
    expect(changes).toBeGreaterThanOrEqual(3);
    followers.closeAll();
    expect(clock.pendingTimers).toBe(0);
  });

  it('whatever happens to the subscriptions, every entry is applied once, in order (model check)', async () => {
    type Step = { kind: 'append'; n: number } | { kind: 'own' } | { kind: 'deliver'; n: number } | { kind: 'late'; n: number } | { kind: 'alive' } | { kind: 'wait'; ms: number } | { kind: 'lost' } | { kind: 'fail'; on: boolean };
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.constant({ kind: 'own' as const }),
      fc.record({ kind: fc.constant('deliver' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('late' as const), n: fc.integer({ min: 1, max: 5 }) }),
      fc.constant({ kind: 'alive' as const }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 1, max: 2_500 }) }),
      fc.constant({ kind: 'lost' as const }),
      fc.record({ kind: fc.constant('fail' as const), on: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const clock = new ManualClock();
        const engine = new FakeEngine();
        const { follower, applied, own } = follow(engine, clock);
        await follower.start();
        for (const s of steps) {
          if (s.kind === 'append') engine.append(s.n);
          else if (s.kind === 'own') own();
          else if (s.kind === 'deliver') engine.deliver(s.n);
          else if (s.kind === 'late') engine.deliver(s.n, engine.subs[engine.subs.length - 2]);
          else if (s.kind === 'alive') engine.current?.sink.alive();
          else if (s.kind === 'wait') clock.advance(s.ms);
          else if (s.kind === 'lost') engine.current?.sink.lost('gone');
          else engine.failing = s.on;
          await settle();
        }
        // the engine recovers: within a stall and the longest back-off the follower has it all
        engine.failing = false;
        clock.advance(timing.stallMs + timing.maxRetryMs);
        await settle();
        engine.deliver(engine.entries.length);
        expect(applied).toEqual(engine.entries);
        follower.close();
        expect(clock.pendingTimers).toBe(0);
      }),
      { numRuns: 150, seed: 27 },
    );
  });

  it('a paused process (the watchdog itself ran late) is no stall: the subscription is judged after the pause', async () => {
    const manual = new ManualClock();
    let offset = 0;
    // the process stands still for a while: time moves, no timer ran meanwhile
    const clock: Clock = {
      now: () => manual.now() + offset,
      setTimeout: (fn, ms): TimerHandle => manual.setTimeout(fn, ms),
      setInterval: (fn, ms): TimerHandle => manual.setInterval(fn, ms),
      clearTimeout: (h) => manual.clearTimeout(h),
      clearInterval: (h) => manual.clearInterval(h),
    };
    const engine = new FakeEngine();
    let position = 0;
    const follower = new Follower<string>({ name: 'log:s', open: engine.open, position: () => position, apply: (at) => (position = at), clock, log: silent, timing });
    await follower.start();
    manual.advance(500);
    engine.current!.sink.alive();
    offset += 3_000;
    manual.advance(timing.stallMs / 4);
    await settle();
    expect(engine.opens).toBe(1);
    // its heartbeat, read after the pause, keeps it; without one it is replaced a stall later
    // (time moves in steps the open can answer within, so no hedge is due)
    for (let t = 0; t < timing.stallMs; t += 10) {
      manual.advance(10);
      await settle();
    }
    expect(engine.opens).toBe(2);
    follower.close();
  });

  it('a restart while an open is still under way opens again; the older open, once it answers, is closed unused', async () => {
    const clock = new ManualClock();
    const answers: (() => void)[] = [];
    const subs: { after: number; closed: boolean }[] = [];
    const open = (after: number) =>
      new Promise<{ close(): void }>((resolve) => {
        const sub = { after, closed: false };
        subs.push(sub);
        answers.push(() => resolve({ close: () => (sub.closed = true) }));
      });
    const follower = new Follower<string>({ name: 'log:s', open, position: () => 0, apply: () => undefined, clock, log: silent, timing });
    const started = follower.start();
    follower.restart('NATS reconnected');
    expect(subs).toHaveLength(2);
    answers[1]!();
    answers[0]!();
    await started;
    await settle();
    expect(subs.map((x) => x.closed)).toEqual([true, false]);
    expect(follower.following).toBe(true);
    follower.close();
    expect(subs[1]!.closed).toBe(true);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a hung open is hedged: the consumer placed on a dead node never answers, the next open does; the follower is back a hedge later', async () => {
    const clock = new ManualClock();
    const engine = new FakeEngine();
    const { follower, applied } = follow(engine, clock);
    await follower.start();
    engine.append(3);
    engine.deliver(1);
    // the next create goes to the dead node: it is never answered
    engine.hang = 1;
    engine.current!.sink.lost('heartbeats_missed');
    await settle();
    expect(follower.following).toBe(false);
    clock.advance(timing.hedgeMs);
    await settle();
    expect(follower.following).toBe(true);
    expect(engine.current!.after).toBe(1);
    engine.deliver(2);
    expect(applied).toEqual(['e1', 'e2', 'e3']);
    follower.close();
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('hedgedOpen', () => {
  /** Opens that answer when the test says so. */
  function opens() {
    const runs: { resolve: () => void; reject: (e: Error) => void; closed: boolean }[] = [];
    const open = () =>
      new Promise<{ close(): void }>((resolve, reject) => {
        const run = { resolve: () => resolve({ close: () => (run.closed = true) }), reject, closed: false };
        runs.push(run);
      });
    return { runs, open };
  }

  it('joins an unanswered open every hedgeMs up to maxOpensInFlight; the first success wins, a later one is closed', async () => {
    const clock = new ManualClock();
    const { runs, open } = opens();
    const failures: unknown[] = [];
    const result = hedgedOpen(open, clock, { hedgeMs: 50, maxOpensInFlight: 3, openTimeoutMs: 10_000 }, { onFailure: (e) => failures.push(e) });
    expect(runs).toHaveLength(1);
    clock.advance(49);
    expect(runs).toHaveLength(1);
    clock.advance(1);
    expect(runs).toHaveLength(2);
    clock.advance(200);
    expect(runs).toHaveLength(3); // at most 3 in flight
    runs[0]!.reject(new Error('timeout'));
    await settle();
    expect(failures).toHaveLength(1);
    clock.advance(50);
    expect(runs).toHaveLength(4); // room again
    runs[2]!.resolve();
    const sub = await result;
    runs[1]!.resolve();
    await settle();
    expect(runs.map((r) => r.closed)).toEqual([false, true, false, false]);
    sub.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('fails with the error once every run made has failed and none is in flight (a refusal is not hammered)', async () => {
    const clock = new ManualClock();
    const { runs, open } = opens();
    const result = hedgedOpen(open, clock, { hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 10_000 });
    clock.advance(50);
    runs[0]!.reject(new Error('first'));
    runs[1]!.reject(new Error('stream not found'));
    await expect(result).rejects.toThrow('stream not found');
    expect(clock.pendingTimers).toBe(0);
  });

  it('an engine without a leader (no run is answered): each run fails after openTimeoutMs, new ones keep starting; the first run after it recovers is the answer', async () => {
    const clock = new ManualClock();
    const { runs, open } = opens();
    let recoveredAt = Infinity;
    const startedAt: number[] = [];
    const failures: unknown[] = [];
    const answering = () => {
      startedAt.push(clock.now());
      const p = open();
      if (clock.now() >= recoveredAt) runs[runs.length - 1]!.resolve();
      return p;
    };
    const result = hedgedOpen(answering, clock, { hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 1_000 }, { onFailure: (e) => failures.push(e) });
    for (let t = 0; t < 5_000; t += 10) {
      clock.advance(10);
      await settle();
    }
    expect(String(failures[0])).toMatch(/did not answer the open within 1000 ms/);
    recoveredAt = clock.now();
    let answered = false;
    void result.then(() => (answered = true));
    for (let t = 0; t < 1_000 && !answered; t += 10) {
      clock.advance(10);
      await settle();
    }
    expect(answered).toBe(true);
    // 4 in flight, each given up after 1 s: a run starts every ~250 ms
    expect(startedAt.filter((t) => t < recoveredAt).length).toBeGreaterThanOrEqual(20);
    expect(clock.now() - recoveredAt).toBeLessThanOrEqual(1_000 / 4 + 50);
    // a run that timed out and answers late is closed, not used
    runs[0]!.resolve();
    await settle();
    expect(runs[0]!.closed).toBe(true);
    (await result).close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('given up (the follower was replaced or closed): no more runs start; a success in time is still handed over, to be closed by the caller; with none, it fails after openTimeoutMs', async () => {
    const clock = new ManualClock();
    const { runs, open } = opens();
    let givenUp = false;
    const result = hedgedOpen(open, clock, { hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 1_000 }, { givenUp: () => givenUp });
    clock.advance(50);
    expect(runs).toHaveLength(2);
    givenUp = true;
    clock.advance(500);
    expect(runs).toHaveLength(2);
    runs[1]!.resolve();
    await expect(result).resolves.toBeDefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it('given up with no run answering: fails once the last run times out (no promise left hanging)', async () => {
    const clock = new ManualClock();
    const { open } = opens();
    const result = hedgedOpen(open, clock, { hedgeMs: 50, maxOpensInFlight: 4, openTimeoutMs: 1_000 }, { givenUp: () => true });
    clock.advance(50);
    clock.advance(1_000);
    await expect(result).rejects.toThrow(/within 1000 ms/);
    expect(clock.pendingTimers).toBe(0);
  });
});
