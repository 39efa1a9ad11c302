import { describe, expect, it } from 'vitest';
import { frontierStall } from '../../bench/stats.js';
import { runFailover, type Engine } from '../helpers/webrtc-scenario.js';

const strictlyIncreasing = (s: number[]): boolean => s.every((v, i) => i === 0 || v > (s[i - 1] ?? 0));

describe.each<Engine>(['node-datachannel', 'werift'])('real loopback WebRTC failover (%s)', (engine) => {
  it('hedging off: 3 receivers in child processes, 5 000 chunks at 500/s, SIGKILL the active one at chunk 2 000', async () => {
    const run = await runFailover(engine, { config: { failover: { hedge: false } } });
    console.log(
      `[${engine}] killed ${run.killed} at chunk ${run.killedAt}, ${run.takeover} took over; interruption ${run.interruptionMs.toFixed(0)} ms at the receivers, ${run.recordedInterruptionMs} ms in the switch record`,
    );
    expect(run.takeover).toBeDefined();
    expect(run.takeover).not.toBe(run.killed);
    const union = new Set(Object.values(run.perReceiver).flat());
    expect(union.size).toBe(5_000);
    expect(Math.min(...union)).toBe(1);
    expect(Math.max(...union)).toBe(5_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
    expect(run.interruptionMs).toBeGreaterThan(0);
    expect(run.interruptionMs).toBeLessThan(1_000);
    // the gateway measures between acks, the receivers between deliveries: the ack delay apart at most
    expect(Math.abs((run.recordedInterruptionMs ?? Infinity) - run.interruptionMs)).toBeLessThan(100);
  }, 60_000);

  it.each(['kill', 'freeze'] as const)('hedging on: %s the active receiver at chunk 1 000 of 3 000: a standby is hedged within tens of ms, then committed; nothing lost, no duplicate', async (fault) => {
    const run = await runFailover(engine, { total: 3_000, killAt: 1_000, fault, freezeMs: 2_000 });
    const stall = frontierStall(run.timeline, run.killTime);
    console.log(`[${engine}] ${fault} of ${run.killed}: ${run.takeover} took over; frontier stall ${stall.toFixed(0)} ms; hedges ${JSON.stringify(run.hedges)}; switches ${run.switchReasons.join(', ')}; recorded ${run.recordedInterruptionMs} ms`);
    expect(run.takeover).not.toBe(run.killed);
    expect(run.hedges.started).toBeGreaterThanOrEqual(1);
    expect(run.hedges.committed).toBe(1);
    expect(run.switchReasons).toEqual(['initial', 'hedge-commit']);
    const union = new Set(Object.values(run.perReceiver).flat());
    expect(union.size).toBe(3_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
    // hedging off this is the ~0.5 s of the heartbeat detector; the bench has the exact figures
    expect(stall).toBeLessThan(250);
  }, 60_000);
});
