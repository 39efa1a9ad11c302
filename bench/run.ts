/**
 * `npm run bench [-- --quick] [-- --only throughput,failover,fanout,herd,codec,durable,durable-ingest]`
 * Runs every section on loopback and writes bench/results/latest.json and latest.md
 * (keys documented in bench/README.md); a full run of every section also copies the tables
 * into docs/benchmarks.md. --quick: fewer rounds and shorter runs (670 s on 2 cores, 2026-12-05).
 * `--only failover --transports webrtc-listening`: only those transports' process faults (webrtc,
 * webtransport, webrtc-listening), without the standby and degradation runs.
 * `--only instance-loss [--runs N] [--faults owner-sigkill,log-follower-node,log-leader-node,receiver-kill]`:
 * not in the default set (~16 min for 10 runs per fault, --quick 3); writes its own
 * bench/results/instance-loss-<date>.{json,md} (with --out: instance-loss-<out>.*).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { codecBench, type CodecRow } from './codec.js';
import { durable } from './durable.js';
import { durableIngest } from './durable-ingest.js';
import { FAILOVER_TRANSPORTS, failover, type Transport } from './failover.js';
import { fanoutAll, type FanoutPlan, type FanoutResult } from './fanout.js';
import { herd, type HerdFault } from './herd.js';
import { INSTANCE_LOSS_FAULTS, instanceLoss, renderInstanceLoss, writeInstanceLoss, type InstanceLossFault } from './instance-loss.js';
import { copyResultsIntoReadme } from './readme.js';
import { renderMarkdown, type BenchReport } from './report.js';
import { throughput, type ThroughputRow } from './throughput.js';

const DEFAULT_SECTIONS = ['throughput', 'failover', 'fanout', 'herd', 'codec', 'durable', 'durable-ingest'] as const;
// selected by --only: a section of its own (results in its own files)
const SECTIONS = [...DEFAULT_SECTIONS, 'instance-loss'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: 'latest' },
    runs: { type: 'string' },
    faults: { type: 'string' },
    transports: { type: 'string' },
  },
});
const only = (values.only?.split(',') ?? DEFAULT_SECTIONS) as Section[];
for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}; sections: ${SECTIONS.join(', ')}`);
if (!/^[\w.-]+$/.test(values.out)) throw new Error(`--out takes a file name (letters, digits, . _ -), got ${values.out}`);
const quick = values.quick;

// how much each section runs; every figure is a median over these repetitions
const plan = quick
  ? { throughput: { rounds: 2, seconds: 0.75 }, failover: { processFaults: 3, baselineRuns: 2, degradations: 2, total: 3_000, standbyRuns: 2, standbys: 200 }, fanout: { webrtc: [10, 100], webtransport: [100], windows: 2, windowMs: 2_000, receiverProcesses: 2 }, herd: { receivers: 100, runs: 1 }, codec: { runs: 3, sliceMs: 100 }, durable: { acks: 300, seconds: 1 }, durableIngest: { rounds: 3, seconds: 2 } }
  : { throughput: { rounds: 5, seconds: 3 }, failover: { processFaults: 30, baselineRuns: 10, degradations: 10, total: 3_000, standbyRuns: 10, standbys: 1_000 }, fanout: { webrtc: [100, 1_000, 2_000], webtransport: [1_000, 5_000], windows: 3, windowMs: 4_000, receiverProcesses: 4 }, herd: { receivers: 500, runs: 3 }, codec: { runs: 7, sliceMs: 250 }, durable: { acks: 2_000, seconds: 3 }, durableIngest: { rounds: 7, seconds: 3 } };

// --transports (failover): only these transports' process faults, without the standby and degradation runs
const failoverTransports = values.transports?.split(',') as Transport[] | undefined;
for (const t of failoverTransports ?? []) if (!(FAILOVER_TRANSPORTS as readonly string[]).includes(t)) throw new Error(`unknown transport ${t}; transports: ${FAILOVER_TRANSPORTS.join(', ')}`);

const instanceLossPlan = {
  runs: values.runs === undefined ? (quick ? 3 : 10) : Number(values.runs),
  faults: (values.faults?.split(',') ?? INSTANCE_LOSS_FAULTS) as InstanceLossFault[],
};
if (!Number.isInteger(instanceLossPlan.runs) || instanceLossPlan.runs < 1) throw new Error(`--runs takes a whole number ≥ 1, got ${values.runs}`);
for (const f of instanceLossPlan.faults) if (!(INSTANCE_LOSS_FAULTS as readonly string[]).includes(f)) throw new Error(`unknown fault ${f}; faults: ${INSTANCE_LOSS_FAULTS.join(', ')}`);

const t0 = performance.now();
const report: BenchReport = {
  at: new Date().toISOString(),
  mode: quick ? 'quick' : 'full',
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', mem_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` },
  plan,
  duration_s: 0,
};
const dir = new URL('./results/', import.meta.url);
await mkdir(dir, { recursive: true });
// written after every section too, so a section that fails late does not take the others with it
const save = async (): Promise<void> => {
  report.duration_s = Number(((performance.now() - t0) / 1000).toFixed(1));
  await writeFile(new URL(`${values.out}.json`, dir), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(new URL(`${values.out}.md`, dir), renderMarkdown(report));
};
if (only.includes('codec')) report.codec = codecBench(plan.codec.runs, plan.codec.sliceMs) satisfies CodecRow[];
if (only.includes('durable')) {
  report.durable = await durable(plan.durable);
  await save();
}
if (only.includes('durable-ingest')) {
  report.durable_ingest = await durableIngest(plan.durableIngest);
  await save();
}
if (only.includes('throughput')) {
  report.throughput = (await throughput(plan.throughput)) satisfies ThroughputRow[];
  await save();
}
if (only.includes('failover')) {
  report.failover = await failover(failoverTransports ? { ...plan.failover, transports: failoverTransports, standbyRuns: 0, degradations: 0 } : plan.failover);
  await save();
}
if (only.includes('fanout')) {
  const { windows, windowMs, receiverProcesses } = plan.fanout;
  const plans: FanoutPlan[] = [
    { transport: 'webrtc', stages: plan.fanout.webrtc, windows, windowMs, receiverProcesses },
    { transport: 'webtransport', stages: plan.fanout.webtransport, windows, windowMs, receiverProcesses },
  ];
  const f: FanoutResult = await fanoutAll(plans);
  report.fanout = f.rows;
  report.fanout_baseline = f.baseline;
  report.fanout_idle = f.idle;
  report.fanout_stopped = f.stopped;
}
if (only.includes('herd')) {
  const faults = Array.from({ length: plan.herd.runs }, (): HerdFault[] => ['sigterm', 'sigkill']).flat();
  report.herd = await herd({ transport: 'webrtc', receivers: plan.herd.receivers, faults, receiverProcesses: plan.fanout.receiverProcesses, windowMs: plan.fanout.windowMs });
  await save();
}
let instanceLossBroken = false;
if (only.includes('instance-loss')) {
  const il = await instanceLoss(instanceLossPlan, report.mode);
  // --out names its files too (instance-loss-<out>), e.g. to keep a before and an after of one day
  const base = await writeInstanceLoss(il, values.out === 'latest' ? undefined : values.out);
  console.log(`\n${renderInstanceLoss(il)}\nwritten: ${base}.json, ${base}.md`);
  // lost, extra or reordered chunks are failures, not figures (as for failover below)
  for (const row of il.rows) if (row.delivery_failures > 0) console.error(`FAIL: instance-loss ${row.fault}: ${row.delivery_failures} of ${row.measured} runs did not deliver exactly the acked chunks`);
  instanceLossBroken = il.rows.some((row) => row.delivery_failures > 0);
}
// instance-loss alone writes only its own files (latest.* keep the other sections' figures)
if (only.some((s) => s !== 'instance-loss')) {
  await save();
  if (!quick && values.out === 'latest' && DEFAULT_SECTIONS.every((s) => only.includes(s))) await copyResultsIntoReadme();
  console.log(`\n${renderMarkdown(report)}\nwritten: bench/results/${values.out}.json, bench/results/${values.out}.md (${report.duration_s} s)`);
}
// lost chunks or duplicates are failures, not figures: say so and exit non-zero
const broken = report.failover && (report.failover.lost !== 0 || report.failover.duplicates !== 0);
if (broken) console.error(`FAIL: failover lost ${report.failover?.lost} chunks and delivered ${report.failover?.duplicates} duplicates (both must be 0)`);
process.exit(broken || instanceLossBroken ? 1 : 0);
