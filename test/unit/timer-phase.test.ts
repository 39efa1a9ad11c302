import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nextDue, phaseOf } from '../../gateway/src/endpoints/timer-phase.js';

/** Runs a connection's timer from `from` for `n` periods, each fire `late(i)` ms after it was due. */
function fires(from: number, intervalMs: number, phase: number, n: number, late: (i: number) => number): number[] {
  const out: number[] = [];
  let due = from;
  for (let i = 0; i < n; i++) {
    const ranAt = due + late(i);
    due = nextDue(ranAt, intervalMs, phase);
    out.push(due);
  }
  return out;
}

describe("a connection's heartbeats and probes keep their own phase", () => {
  it('connections whose timers ran in one turn (a stall) go back to their own slots, where rescheduling from that turn kept them together', () => {
    const phases = ['fan0', 'fan1', 'fan2', 'fan3', 'fan4', 'fan5', 'fan6', 'fan7'].map(phaseOf);
    // every timer fires in the turn after a 2 s stall, at t = 10 000
    const after = phases.map((p) => nextDue(10_000, 250, p));
    expect(new Set(after).size).toBeGreaterThan(4);
    // each on the 20-slot grid of its interval, within half an interval of the 250 ms asked
    for (const t of after) {
      expect(Math.abs(t - 10_250)).toBeLessThanOrEqual(125);
      expect(t % 12.5).toBe(0);
    }
    // the fast probe rates keep an exact interval, at their own phase as well
    expect(new Set(phases.map((p) => nextDue(10_000, 20, p))).size).toBe(phases.length);
  });

  it("once on its phase a timer runs exactly an interval apart, whatever its turns' lateness (under half an interval): late turns do not drift it", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e9 }), fc.constantFrom(10, 20, 250, 1_000), fc.double({ min: 0, max: 0.999, noNaN: true }), fc.array(fc.double({ min: 0, max: 0.49, noNaN: true }), { minLength: 3, maxLength: 30 }), (from, intervalMs, phase, lateness) => {
        const due = fires(from, intervalMs, phase, lateness.length, (i) => (lateness[i] ?? 0) * intervalMs);
        for (let i = 1; i < due.length; i++) expect(due[i]! - due[i - 1]!).toBeCloseTo(intervalMs, 6);
      }),
      { seed: 31, numRuns: 300 },
    );
  });

  it('phases spread over endpoints and stay the same for one', () => {
    const slots = new Set(Array.from({ length: 200 }, (_, i) => Math.floor(phaseOf(`fan${i}`) * 20)));
    expect(slots.size).toBe(20);
    expect(phaseOf('a')).toBe(phaseOf('a'));
    expect(phaseOf('a')).not.toBe(phaseOf('b'));
  });
});
