/**
 * Failover interruption over real loopback WebRTC: 3 receivers in child processes,
 * 5 000 chunks at 500/s, SIGKILL the active one at chunk 2 000; repeated per engine.
 * Interruption = last chunk the killed receiver delivered → first new chunk on the next.
 * Baseline: the bound set by the defaults (heartbeat 250 ms, phi 8 ≈ 530 ms of silence).
 * Usage: npx tsx bench/failover-interruption.ts [runs]
 */
import { runFailover, type Engine } from '../test/helpers/webrtc-scenario.js';
import { record, type Row } from './results.js';

const runs = Number(process.argv[2] ?? 10);
const rows: Row[] = [];
for (const engine of ['node-datachannel', 'werift'] as Engine[]) {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runFailover(engine);
    const union = new Set(Object.values(r.perReceiver).flat());
    if (union.size !== r.total) throw new Error(`run ${i}: union has ${union.size} of ${r.total}`);
    samples.push(r.interruptionMs);
    console.log(`${engine} run ${i + 1}: ${r.interruptionMs.toFixed(0)} ms (${r.killed} → ${r.takeover})`);
  }
  samples.sort((a, b) => a - b);
  const p50 = samples[Math.floor((samples.length - 1) / 2)] ?? NaN;
  rows.push({ engine, runs, p50Ms: p50, maxMs: samples.at(-1), minMs: samples[0], samplesMs: samples.map((s) => s.toFixed(0)).join(' ') });
}
await record('failover-interruption', rows);
console.table(rows);
process.exit(0);
