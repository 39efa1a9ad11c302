import { describe, expect, it } from 'vitest';
import { PriorityFailoverPolicy, type SelectionCandidate } from '../../gateway/src/failover/policy.js';

const policy = new PriorityFailoverPolicy();
const base = { now: 10_000, failback: { enabled: true, stableMs: 5_000 }, immediate: false };
const c = (id: string, state: SelectionCandidate['state'], active = false, upSince: number | undefined = 0, degraded = false): SelectionCandidate => ({
  id,
  state,
  active,
  degraded,
  upSince: state === 'alive' && !degraded ? upSince : undefined,
});

describe('priority failover policy', () => {
  it('picks the highest-priority alive endpoint initially', () => {
    const sel = policy.select({ ...base, slots: 1, candidates: [c('a', 'disconnected'), c('b', 'alive'), c('c', 'alive')] });
    expect(sel.active).toEqual(['b']);
    expect(sel.promoted).toEqual([{ id: 'b', reason: 'fill', replaces: undefined }]);
  });

  it('keeps a suspect active endpoint (hysteresis) but replaces a dead one', () => {
    expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'suspect', true), c('b', 'alive')] }).active).toEqual(['a']);
    const sel = policy.select({ ...base, slots: 1, candidates: [c('a', 'dead', true), c('b', 'suspect'), c('c', 'alive')] });
    expect(sel.active).toEqual(['c']);
    expect(sel.demoted).toEqual([{ id: 'a', reason: 'heartbeat-timeout' }]);
    expect(sel.promoted).toEqual([{ id: 'c', reason: 'fill', replaces: 'a' }]);
  });

  it('fails back only after the stable period, or at once for operator changes', () => {
    const early = [c('a', 'alive', false, 9_000), c('b', 'alive', true)];
    expect(policy.select({ ...base, slots: 1, candidates: early }).active).toEqual(['b']);
    expect(policy.select({ ...base, slots: 1, candidates: early, immediate: true }).active).toEqual(['a']);
    const stable = [c('a', 'alive', false, 5_000), c('b', 'alive', true)];
    const sel = policy.select({ ...base, slots: 1, candidates: stable });
    expect(sel.active).toEqual(['a']);
    expect(sel.demoted).toEqual([{ id: 'b', reason: 'failback' }]);
    expect(policy.select({ ...base, slots: 1, candidates: stable, failback: { enabled: false, stableMs: 0 } }).active).toEqual(['b']);
  });

  it('mirror: fills all slots by priority and trims to k', () => {
    const cands = [c('a', 'alive'), c('b', 'dead'), c('c', 'alive'), c('d', 'alive')];
    expect(policy.select({ ...base, slots: Infinity, candidates: cands }).active).toEqual(['a', 'c', 'd']);
    expect(policy.select({ ...base, slots: 2, candidates: cands }).active).toEqual(['a', 'c']);
    const over = [c('a', 'alive', true), c('b', 'alive', true), c('c', 'alive', true)];
    const sel = policy.select({ ...base, slots: 2, candidates: over });
    expect(sel.active).toEqual(['a', 'b']);
    expect(sel.demoted).toEqual([{ id: 'c', reason: 'operator' }]);
  });

  it('replaces a degraded active endpoint only when a healthy one is available', () => {
    const sel = policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', true, 0, true), c('b', 'alive', false, 0, true), c('c', 'alive')] });
    expect(sel.active).toEqual(['c']);
    expect(sel.demoted).toEqual([{ id: 'a', reason: 'degraded' }]);
    expect(sel.promoted).toEqual([{ id: 'c', reason: 'fill', replaces: 'a' }]);
    // every alternative is degraded too: keep the active one
    expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', true, 0, true), c('b', 'alive', false, 0, true)] }).active).toEqual(['a']);
    // nobody active and only degraded endpoints: one of them is better than none
    expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'dead'), c('b', 'alive', false, 0, true)] }).active).toEqual(['b']);
    // a degraded endpoint never fails back
    expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', false, 0, true), c('b', 'alive', true)] }).active).toEqual(['b']);
  });

  it('says when time alone would change its choice (wakeAt): a stable period, a reconnect grace, the startup grace; else nothing', () => {
    // a is back since 8 000 but failback waits for 5 000 ms of it: at 13 000
    const failback = policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', false, 8_000), c('b', 'alive', true)] });
    expect(failback.active).toEqual(['b']);
    expect(failback.wakeAt).toBe(13_000);
    // a disconnected at 9 500 keeps its slot for the 2 000 ms grace: at 11 500
    const grace = policy.select({ ...base, slots: 1, reconnectGraceMs: 2_000, candidates: [{ ...c('a', 'disconnected', true), disconnectedAt: 9_500 }, c('b', 'alive')] });
    expect(grace.active).toEqual(['a']);
    expect(grace.wakeAt).toBe(11_500);
    // a new stream waits for its first choice until 10 800
    const startup = policy.select({ ...base, slots: 1, startupUntil: 10_800, candidates: [c('a', 'disconnected'), c('b', 'alive')] });
    expect(startup.active).toEqual([]);
    expect(startup.wakeAt).toBe(10_800);
    // settled: a is active and first; nothing waits on time
    expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', true), c('b', 'alive')] }).wakeAt).toBeUndefined();
    // failback off: a recovered a can wait forever, no wake
    expect(policy.select({ ...base, slots: 1, failback: { enabled: false, stableMs: 5_000 }, candidates: [c('a', 'alive', false, 8_000), c('b', 'alive', true)] }).wakeAt).toBeUndefined();
  });

  it('does nothing when nothing changed', () => {
    const sel = policy.select({ ...base, slots: 1, candidates: [c('a', 'alive', true), c('b', 'alive')] });
    expect(sel).toEqual({ active: ['a'], promoted: [], demoted: [], hedges: [] });
  });

  describe('hedging', () => {
    const h = { ...base, slots: 1, hedge: true };
    const hedging = (cand: SelectionCandidate, forId: string): SelectionCandidate => ({ ...cand, hedging: forId });

    it('puts the best healthy standby beside a suspect active endpoint, and none beside a healthy one', () => {
      const sel = policy.select({ ...h, candidates: [c('a', 'suspect', true), c('b', 'alive', false, 0, true), c('c', 'alive'), c('d', 'alive')] });
      expect(sel.active).toEqual(['a']);
      expect(sel.promoted).toEqual([]);
      expect(sel.hedges).toEqual([{ for: 'a', by: 'c' }]); // b is degraded: not a hedge
      expect(policy.select({ ...h, candidates: [c('a', 'alive', true), c('b', 'alive')] }).hedges).toEqual([]);
      // hedging off: a suspect active endpoint is only kept
      expect(policy.select({ ...base, slots: 1, candidates: [c('a', 'suspect', true), c('b', 'alive')] }).hedges).toEqual([]);
    });

    it('keeps the standby already hedging (no hopping), and hedges an active endpoint in its reconnect grace', () => {
      const sel = policy.select({ ...h, candidates: [c('a', 'suspect', true), c('b', 'alive'), hedging(c('c', 'alive'), 'a')] });
      expect(sel.hedges).toEqual([{ for: 'a', by: 'c' }]);
      const grace = policy.select({ ...h, reconnectGraceMs: 2_000, candidates: [{ ...c('a', 'disconnected', true), disconnectedAt: 9_500 }, c('b', 'alive')] });
      expect(grace.active).toEqual(['a']);
      expect(grace.hedges).toEqual([{ for: 'a', by: 'b' }]);
    });

    it('a dead active endpoint is replaced by the standby hedging for it (the best healthy one)', () => {
      const sel = policy.select({ ...h, candidates: [c('a', 'dead', true), hedging(c('b', 'alive'), 'a'), c('c', 'alive')] });
      expect(sel.active).toEqual(['b']);
      expect(sel.promoted).toEqual([{ id: 'b', reason: 'fill', replaces: 'a' }]);
      expect(sel.hedges).toEqual([]);
    });

    it('no healthy standby: no hedge', () => {
      expect(policy.select({ ...h, candidates: [c('a', 'suspect', true), c('b', 'suspect'), c('c', 'dead')] }).hedges).toEqual([]);
    });
  });
});
