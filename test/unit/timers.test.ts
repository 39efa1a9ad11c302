import { ManualClock, pollUntil } from '@mirrorstream/receiver/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerQueue } from '../../gateway/src/core/timers.js';

describe('TimerQueue: one clock timer for all timed work', () => {
  it('runs entries in due order, once each, and keeps one clock timer armed', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const ran: string[] = [];
    const t0 = clock.now();
    for (const [name, ms] of [['c', 30], ['a', 10], ['b', 20]] as const) q.timer(() => ran.push(name)).at(t0 + ms);
    expect(q.size).toBe(3);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(15);
    expect(ran).toEqual(['a']);
    clock.advance(100);
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(q.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
  });

  it('an entry that throws is reported and the others due with it still run; a closed queue takes no more', () => {
    const clock = new ManualClock();
    const errors: unknown[] = [];
    const q = new TimerQueue(clock, (e) => errors.push(e));
    const ran: string[] = [];
    q.timer(() => {
      throw new Error('boom');
    }).after(10);
    q.timer(() => ran.push('after')).after(10);
    clock.advance(20);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    expect(ran).toEqual(['after']);
    q.close();
    q.timer(() => ran.push('late')).after(5);
    expect(q.size).toBe(0);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(50);
    expect(ran).toEqual(['after']);
  });

  it('moves a rescheduled entry and forgets a cancelled one', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const ran: number[] = [];
    const t = q.timer((now) => ran.push(now - clock.now()));
    const u = q.timer(() => ran.push(-1));
    t.after(10);
    u.after(5);
    t.after(50); // a heartbeat answered: the deadline moves out
    u.cancel();
    expect(u.pending).toBe(false);
    clock.advance(20);
    expect(ran).toEqual([]);
    clock.advance(40);
    expect(ran).toEqual([0]);
  });

  it('a periodic entry that reschedules itself keeps its period; what is due at once runs in the same turn', () => {
    const clock = new ManualClock();
    const q = new TimerQueue(clock);
    const at: number[] = [];
    const start = clock.now();
    const beat = q.timer((now) => {
      at.push(now - start);
      beat.at(now + 250);
    });
    beat.after(250);
    clock.advance(1_000);
    expect(at).toEqual([250, 500, 750, 1_000]);
    // entries due at the same time run together, in one clock callback
    const both: string[] = [];
    q.timer(() => both.push('x')).after(10);
    q.timer(() => both.push('y')).after(10);
    expect(clock.pendingTimers).toBe(1);
    clock.advance(10);
    expect(both.sort()).toEqual(['x', 'y']);
  });

  it('matches a sorted list under any mix of schedules, moves and cancels (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.nat(19), ms: fc.integer({ min: 0, max: 1_000 }), cancel: fc.boolean() }), { maxLength: 200 }),
        (ops) => {
          const clock = new ManualClock();
          const q = new TimerQueue(clock);
          const fired: number[] = [];
          const timers = Array.from({ length: 20 }, (_, id) => q.timer(() => fired.push(id)));
          const due = new Map<number, number>();
          for (const op of ops) {
            const t = timers[op.id];
            if (!t) continue;
            if (op.cancel) {
              t.cancel();
              due.delete(op.id);
            } else {
              t.after(op.ms);
              due.set(op.id, op.ms);
            }
          }
          clock.advance(2_000);
          const expected = [...due].sort((a, b) => a[1] - b[1]).map(([id]) => id);
          // equal due times may run in either order: compare the due times of the run order
          expect(fired.map((id) => due.get(id))).toEqual(expected.map((id) => due.get(id)));
          expect(new Set(fired)).toEqual(new Set(expected));
          expect(q.size).toBe(0);
        },
      ),
      // seeded: the same schedules every run
      { seed: 8201 },
    );
  });
});

describe('pollUntil: connect progress of a native engine, looked at instead of called back', () => {
  it('looks every 2 ms for the first 100 ms, then every 20 ms until its timeout', async () => {
    const clock = new ManualClock();
    let looks = 0;
    const start = clock.now();
    const p = pollUntil(clock, () => (looks++, false), 1_000, () => new Error('timed out'));
    const outcome = p.then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    clock.advance(100);
    const early = looks;
    for (let t = 100; t < 1_100; t += 10) clock.advance(10);
    expect(await outcome).toBe('timed out');
    console.log(`looks in the first 100 ms: ${early}; in all ${looks} (${clock.now() - start} ms)`);
    expect(early).toBeGreaterThanOrEqual(50);
    expect(looks - early).toBeLessThanOrEqual(51); // 900 ms at 20 ms
  });

  it('resolves at the first look that finds it done, and rejects with what done() returns', async () => {
    const clock = new ManualClock();
    let ready = false;
    const p = pollUntil(clock, () => ready, 1_000, () => new Error('timed out'));
    clock.advance(10);
    ready = true;
    clock.advance(2);
    await expect(p).resolves.toBeUndefined();
    await expect(pollUntil(clock, () => new Error('peer failed'), 1_000, () => new Error('timed out'))).rejects.toThrow('peer failed');
  });
});
