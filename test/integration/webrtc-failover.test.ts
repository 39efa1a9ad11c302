import { describe, expect, it } from 'vitest';
import { frontierStall } from '../../bench/stats.js';
import { deadAfterMs, runFailover, type Engine } from '../helpers/webrtc-scenario.js';

const strictlyIncreasing = (s: number[]): boolean => s.every((v, i) => i === 0 || v > (s[i - 1] ?? 0));

/** The SDK's default ackDelayMs (the child receivers use it): an ack leaves at most this long after a delivery. */
const SDK_ACK_DELAY_MS = 20;

/**
 * Real processes and sockets: the time bounds are the config's nominal figure plus k × the
 * scheduling delay the run measured (test/helpers/sched.ts), k the scheduling hops of the chain.
 */
describe.each<Engine>(['node-datachannel', 'werift'])('real loopback WebRTC failover (%s)', (engine) => {
  it('hedging off: 3 receivers in child processes, 2 000 chunks at 500/s, SIGKILL the active one at chunk 1 000', async () => {
    const run = await runFailover(engine, { total: 2_000, killAt: 1_000, config: { failover: { hedge: false } } });
    // death by the heartbeat detector, decided on the next tick, then the new one's first delivery
    const detect = run.sched.bound(Math.round(deadAfterMs(run.config) + run.config.tickMs), 4);
    // the gateway measures between acks, the receivers between deliveries: an ack delay apart at each end
    const agree = run.sched.bound(2 * SDK_ACK_DELAY_MS, 4);
    const recorded = run.away?.interruption_ms;
    console.log(
      `[${engine}] killed ${run.killed} at chunk ${run.killedAt}, ${run.takeover} took over (${run.away?.reason}); interruption ${run.interruptionMs.toFixed(0)} ms at the receivers (${detect.text}), ` +
        `${recorded} ms in the switch record (|difference| ${Math.abs((recorded ?? Number.NaN) - run.interruptionMs).toFixed(0)} ms, ${agree.text})`,
    );
    expect(run.takeover).toBeDefined();
    expect(run.takeover).not.toBe(run.killed);
    expect(run.away?.reason).toBe('heartbeat-timeout');
    const union = new Set(Object.values(run.perReceiver).flat());
    expect(union.size).toBe(2_000);
    expect(Math.min(...union)).toBe(1);
    expect(Math.max(...union)).toBe(2_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
    expect(run.interruptionMs).toBeGreaterThan(0);
    expect(run.interruptionMs).toBeLessThan(detect.ms);
    expect(Math.abs((recorded ?? Number.POSITIVE_INFINITY) - run.interruptionMs)).toBeLessThan(agree.ms);
  }, 60_000);

  it.each(['kill', 'freeze'] as const)('hedging on: %s the active receiver at chunk 1 000 of 2 000: a standby is hedged within tens of ms, then committed; nothing lost, no duplicate', async (fault) => {
    const run = await runFailover(engine, { total: 2_000, killAt: 1_000, fault, freezeMs: 2_000 });
    const stall = frontierStall(run.timeline, run.killTime);
    // silence: the first unanswered probe (one carrier probe interval) plus the floor, the hedge on the
    // next tick, then its first delivery; hedging off the same stall is the detector's (~0.5 s)
    const { health, tickMs } = run.config;
    const bound = run.sched.bound(health.carrierProbeIntervalMs + health.silenceFloorMs + tickMs, 4);
    console.log(
      `[${engine}] ${fault} of ${run.killed}: ${run.takeover} took over (${run.away?.reason}); frontier stall ${stall.toFixed(0)} ms (${bound.text}); hedges ${JSON.stringify(run.hedges)}; switches ${run.switchReasons.join(', ')}; recorded ${run.away?.interruption_ms} ms`,
    );
    expect(run.takeover).not.toBe(run.killed);
    // the standby that took over was hedged first (a busy machine may add hedges that end, or
    // a switch before the fault: not what this test is about)
    expect(run.away?.reason).toBe('hedge-commit');
    expect(run.hedges.started).toBeGreaterThanOrEqual(1);
    expect(run.hedges.committed).toBeGreaterThanOrEqual(1);
    const union = new Set(Object.values(run.perReceiver).flat());
    expect(union.size).toBe(2_000);
    for (const seqs of Object.values(run.perReceiver)) expect(strictlyIncreasing(seqs)).toBe(true);
    expect(stall).toBeLessThan(bound.ms);
  }, 60_000);
});
