import { describe, expect, it } from 'vitest';
import { runFailover, type Engine } from '../helpers/webrtc-scenario.js';

const strictlyIncreasing = (s: number[]): boolean => s.every((v, i) => i === 0 || v > (s[i - 1] ?? 0));

describe.each<Engine>(['node-datachannel', 'werift'])('real loopback WebRTC failover (%s)', (engine) => {
  it('3 receivers in child processes, 5 000 chunks at 500/s, SIGKILL the active one at chunk 2 000', async () => {
    const run = await runFailover(engine);
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
});
