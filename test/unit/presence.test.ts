import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Presence } from '../../gateway/src/storage/jetstream/presence.js';
import { ManualClock } from '../../receiver-sdk/src/index.js';
import { FakeBus } from '../helpers/fake-presence-bus.js';

const timing = { intervalMs: 100, goneMs: 300, selfMs: 200 };
const silent = pino({ level: 'silent' });

describe('Presence: which gateway instances are alive', () => {
  it('an instance that stops beating is gone after goneMs (told once), alive again when heard', () => {
    const clock = new ManualClock();
    const bus = new FakeBus();
    const a = new Presence(bus, 'ms', 'a', clock, silent, timing);
    const b = new Presence(bus, 'ms', 'b', clock, silent, timing);
    const told: string[] = [];
    a.onChange((instance, state) => told.push(`${instance}:${state}`));
    clock.advance(1_000);
    expect(a.state('b')).toBe('alive');
    b.close(); // a crash: no more beats
    const lastHeard = a.lastHeard('b')!;
    clock.advance(timing.goneMs - (clock.now() - lastHeard) - 1);
    expect(a.state('b')).toBe('alive');
    clock.advance(1);
    expect(a.state('b')).toBe('gone');
    // told at the next beat of a's own, within intervalMs of going silent for goneMs
    clock.advance(timing.intervalMs);
    expect(told).toEqual(['b:gone']);
    clock.advance(5_000);
    expect(told).toEqual(['b:gone']);
    const b2 = new Presence(bus, 'ms', 'b', clock, silent, timing); // the same id heard again (a pause, not a restart)
    expect(a.state('b')).toBe('alive');
    expect(told).toEqual(['b:gone', 'b:alive']);
    for (const p of [a, b2]) p.close();
    expect(clock.pendingTimers).toBe(0);
  });

  it('an instance never heard is unknown until this one has listened for goneMs, then gone; it decides only then', () => {
    const clock = new ManualClock();
    const a = new Presence(new FakeBus(), 'ms', 'a', clock, silent, timing);
    expect(a.state('old')).toBe('unknown');
    expect(a.settled).toBe(false);
    clock.advance(timing.goneMs);
    expect(a.state('old')).toBe('gone');
    expect(a.settled).toBe(true);
    a.close();
  });

  it('cut off from NATS, an instance stops deciding (selfMs) before the others call it gone (goneMs)', () => {
    const clock = new ManualClock();
    const bus = new FakeBus();
    const a = new Presence(bus, 'ms', 'a', clock, silent, timing);
    const b = new Presence(bus, 'ms', 'b', clock, silent, timing);
    clock.advance(1_000);
    expect(a.connected).toBe(true);
    bus.cut = true;
    let stoppedAt: number | undefined;
    let goneAt: number | undefined;
    const t0 = clock.now();
    for (let t = 0; t < 1_000; t += 10) {
      clock.advance(10);
      if (stoppedAt === undefined && !a.connected) stoppedAt = clock.now() - t0;
      if (goneAt === undefined && b.state('a') === 'gone') goneAt = clock.now() - t0;
    }
    expect(stoppedAt).toBeDefined();
    expect(goneAt).toBeDefined();
    expect(goneAt! - stoppedAt!).toBeGreaterThanOrEqual(timing.goneMs - timing.selfMs);
    for (const p of [a, b]) p.close();
  });

  it('a subject that is not an instance id is ignored', () => {
    const clock = new ManualClock();
    const bus = new FakeBus();
    const a = new Presence(bus, 'ms', 'a', clock, silent, timing);
    const long = 'x'.repeat(65);
    bus.publish('ms.presence.');
    bus.publish(`ms.presence.${long}`);
    bus.publish('ms.presence.a.b');
    expect(a.state(long)).toBe('unknown');
    expect(a.lastHeard('')).toBeUndefined();
    expect(a.lastHeard(long)).toBeUndefined();
    expect(a.lastHeard('a.b')).toBeUndefined();
    a.close();
  });
});
