/**
 * Instance and node loss with several gateway instances on a 3-node JetStream cluster (R3):
 * test/helpers/ha-scenario.ts's scenario (3 gateway CLI processes, 3 WebRTC receivers on the
 * Node SDK, one failover stream, a producer at 500 chunks/s retrying with its Idempotency-Key on
 * the next instance), a fresh cluster per run, one fault per run:
 * - `owner-sigkill`: the instance that owns the stream, serves the producer and holds the active
 *   receiver is SIGKILLed;
 * - `log-follower-node`: the NATS node holding the log follower (an R1 ordered consumer) of the
 *   instance that holds the active receiver is SIGKILLed (the log's leadership is moved off that
 *   node first if it was there, so no log election is in the figure);
 * - `log-leader-node`: the log stream's leader node is SIGKILLed;
 * - `receiver-kill`: the active receiver e1 (a child process on the SDK) is SIGKILLed, no goodbye:
 *   a receiver fault, held to the fast-failover bound (RECEIVER_FAULT_BOUND_MS, 100 ms).
 * Interruption = the longest time without a new seq delivered by any receiver, from the fault
 * until the producer stopped (≥ 3 s later); beside it, the gateway's own `interruption_ms` of the
 * switch away from e1 (its switch history, on the instance holding the new active endpoint). Per fault: p50 / p99 / max over the runs and how many
 * exceeded their bound, the log's election time (kill → the log stream answers with a leader,
 * from outside) and when the log could be followed again (a consumer can be created on it), how
 * long until every live instance's view agreed again, runs whose delivery was not exact, and the
 * machine's CPU steal (/proc/stat) during each run. Writes bench/results/instance-loss-<date>.{json,md}.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { describeRun, runHaFault, VIEW_BOUND_MS, type FaultKind, type FaultRun } from '../test/helpers/ha-scenario.js';
import { machineShare, machineTicks, percentile } from './stats.js';

export const INSTANCE_LOSS_FAULTS = ['owner-sigkill', 'log-follower-node', 'log-leader-node', 'receiver-kill'] as const satisfies readonly FaultKind[];
export type InstanceLossFault = (typeof INSTANCE_LOSS_FAULTS)[number];

export interface InstanceLossRun {
  interruption_ms: number;
  /** The gateway's `interruption_ms` of the switch away from e1 (null: none recorded with a figure). */
  switch_interruption_ms: number | null;
  /** That switch's reason (`heartbeat-timeout`, `disconnected`, `hedge-commit`, ...; null: none). */
  switch_reason: string | null;
  /** Delivery still stopped when the producer stopped (the interruption ran to the end of the observation). */
  stalled_at_end: boolean;
  election_ms: number | null;
  /** Kill → a consumer can be created on the log again (null: not within 20 s, or no node kill). */
  followable_ms: number | null;
  /** The run's interruption bound (node kills: max(election, followable) + 1 s; SIGKILL: 1 s; receiver kill: 100 ms). */
  interruption_bound_ms: number;
  /** Fault → every live instance's view agreed again (null: not by the end of the observation). */
  view_recovery_ms: number | null;
  /** The run's view bound: VIEW_BOUND_MS + the longest election the kill caused. */
  view_bound_ms: number;
  producer_stall_ms: number;
  acked: number;
  delivery_problems: string[];
  final_view_problems: string[];
  target: string;
  steal_pct: number;
  machine_busy_pct: number;
  /** The run could not be set up or measured (the error); its figures are absent. */
  error?: string;
}

export interface InstanceLossRow {
  fault: InstanceLossFault;
  runs: number;
  /** Runs that produced figures (the rest failed before or during the fault: see `samples[].error`). */
  measured: number;
  interruption_p50_ms: number;
  interruption_p99_ms: number;
  interruption_max_ms: number;
  interruption_min_ms: number;
  /** The switch's own `interruption_ms` over the runs that recorded one (null: none did). */
  switch_interruption_p50_ms: number | null;
  switch_interruption_p99_ms: number | null;
  switch_interruption_max_ms: number | null;
  election_p50_ms: number | null;
  election_max_ms: number | null;
  followable_p50_ms: number | null;
  followable_max_ms: number | null;
  /** Runs whose interruption exceeded their bound. */
  interruption_over_bound: number;
  view_recovery_p50_ms: number | null;
  view_recovery_max_ms: number | null;
  /** Runs whose views had not agreed again by the end of the observation, or later than the bound. */
  views_not_recovered: number;
  /** Runs where the receivers did not deliver exactly the acked seqs, in order, once each. */
  delivery_failures: number;
  steal_pct_p50: number;
  steal_pct_max: number;
  samples: InstanceLossRun[];
}

export interface InstanceLossReport {
  at: string;
  mode: 'quick' | 'full';
  machine: { cpus: number; cpu: string; mem_gib: number; node: string; platform: string };
  plan: { runs: number; faults: InstanceLossFault[]; view_bound_ms: number };
  duration_s: number;
  rows: InstanceLossRow[];
}

function toRun(r: FaultRun, share: { stealPct: number; busyPct: number }): InstanceLossRun {
  return {
    interruption_ms: r.interruptionMs,
    switch_interruption_ms: r.switchInterruptionMs ?? null,
    switch_reason: r.switches.find((x) => x.interruptionMs === r.switchInterruptionMs)?.reason ?? r.switches[0]?.reason ?? null,
    stalled_at_end: r.stalledAtEnd,
    election_ms: r.electionMs ?? null,
    followable_ms: r.followableMs ?? null,
    interruption_bound_ms: r.interruptionBoundMs,
    view_recovery_ms: r.viewRecoveryMs ?? null,
    view_bound_ms: r.viewBoundMs,
    producer_stall_ms: r.producerStallMs,
    acked: r.acked,
    delivery_problems: r.deliveryProblems,
    final_view_problems: r.finalViewProblems,
    target: r.target,
    steal_pct: Number(share.stealPct.toFixed(1)),
    machine_busy_pct: Number(share.busyPct.toFixed(1)),
  };
}

function summarizeFault(fault: InstanceLossFault, samples: InstanceLossRun[]): InstanceLossRow {
  const ok = samples.filter((s) => s.error === undefined);
  const pick = (f: (s: InstanceLossRun) => number | null): number[] => ok.map(f).filter((v): v is number => v !== null);
  const interruptions = pick((s) => s.interruption_ms);
  const switchMs = pick((s) => s.switch_interruption_ms);
  const elections = pick((s) => s.election_ms);
  const followable = pick((s) => s.followable_ms);
  const views = pick((s) => s.view_recovery_ms);
  const steal = pick((s) => s.steal_pct);
  const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    fault,
    runs: samples.length,
    measured: ok.length,
    interruption_p50_ms: percentile(interruptions, 50),
    interruption_p99_ms: percentile(interruptions, 99),
    interruption_max_ms: Math.max(...interruptions),
    interruption_min_ms: Math.min(...interruptions),
    switch_interruption_p50_ms: orNull(percentile(switchMs, 50)),
    switch_interruption_p99_ms: orNull(percentile(switchMs, 99)),
    switch_interruption_max_ms: switchMs.length ? Math.max(...switchMs) : null,
    election_p50_ms: orNull(percentile(elections, 50)),
    election_max_ms: elections.length ? Math.max(...elections) : null,
    followable_p50_ms: orNull(percentile(followable, 50)),
    followable_max_ms: followable.length ? Math.max(...followable) : null,
    interruption_over_bound: ok.filter((s) => s.interruption_ms > s.interruption_bound_ms).length,
    view_recovery_p50_ms: orNull(percentile(views, 50)),
    view_recovery_max_ms: views.length ? Math.max(...views) : null,
    views_not_recovered: ok.filter((s) => s.view_recovery_ms === null || s.view_recovery_ms > s.view_bound_ms).length,
    delivery_failures: ok.filter((s) => s.delivery_problems.length > 0).length,
    steal_pct_p50: percentile(steal, 50),
    steal_pct_max: Math.max(...steal),
    samples,
  };
}

/** `runs` runs of each fault, one after the other (a fresh cluster each); progress on stdout. */
export async function instanceLoss(plan: { runs: number; faults: readonly InstanceLossFault[] }, mode: 'quick' | 'full'): Promise<InstanceLossReport> {
  const at = new Date().toISOString();
  const started = performance.now();
  const rows: InstanceLossRow[] = [];
  for (const fault of plan.faults) {
    const samples: InstanceLossRun[] = [];
    for (let i = 1; i <= plan.runs; i++) {
      const t0 = machineTicks();
      try {
        const r = await runHaFault(fault);
        samples.push(toRun(r, machineShare(t0, machineTicks())));
        console.log(`[instance-loss ${fault} ${i}/${plan.runs}] ${describeRun(r)}; steal ${samples.at(-1)!.steal_pct} %`);
      } catch (error) {
        const share = machineShare(t0, machineTicks());
        samples.push({ ...toRun(emptyRun(fault), share), error: String(error) });
        console.log(`[instance-loss ${fault} ${i}/${plan.runs}] run failed: ${String(error)}`);
      }
    }
    rows.push(summarizeFault(fault, samples));
  }
  return { at, mode, machine: machineInfo(), plan: { runs: plan.runs, faults: [...plan.faults], view_bound_ms: VIEW_BOUND_MS }, duration_s: Number(((performance.now() - started) / 1000).toFixed(1)), rows };
}

function emptyRun(fault: FaultKind): FaultRun {
  return {
    fault,
    roles: { owner: '', active: '', producer: '' },
    target: '',
    interruptionMs: Number.NaN,
    switches: [],
    stalledAtEnd: false,
    producerStallMs: Number.NaN,
    retries: 0,
    acked: 0,
    ackedBeforeFault: 0,
    delivered: 0,
    deliveryProblems: [],
    interruptionBoundMs: Number.NaN,
    viewBoundMs: VIEW_BOUND_MS,
    viewTimeline: [],
    finalViewProblems: [],
    activeTimeline: [],
    gatewayWarnings: [],
    gatewayEvents: [],
    preparation: [],
    observedMs: 0,
  };
}

const n = (v: number | null, d = 0): string => (v !== null && Number.isFinite(v) ? v.toFixed(d) : '–');

export function renderInstanceLoss(r: InstanceLossReport): string {
  const out = [
    '# mirrorstream: instance and node loss (3 gateway instances, 3-node JetStream R3)',
    '',
    `${r.at}, ${r.mode} run (${r.duration_s} s) on ${r.machine.cpus} × ${r.machine.cpu}, ${r.machine.mem_gib} GiB, Node ${r.machine.node}, ${r.machine.platform}.`,
    `${r.plan.runs} runs per fault, a fresh cluster each; 3 WebRTC receivers, 500 chunks/s. Interruption: the longest time without a new seq delivered, from the fault until the producer stopped; its bound per run: node kills the slowest election the kill caused (the log has a leader, a consumer can be created on it, a control stream or bucket the node led has a leader) + 1 s, SIGKILL 1 s, receiver kill 100 ms. Switch's own: the gateway's \`interruption_ms\` of the switch away from e1 (e1's last ack → the new endpoint's first ack), on the instance holding that endpoint. Log leader / followable: kill → the log stream answers with a new leader / a consumer can be created on it (measured from outside). Views: every live instance's log position, owner, active list and endpoint states agree (bound ${r.plan.view_bound_ms} ms + the longest election the kill caused).`,
    '',
    '| fault | runs (measured) | interruption p50 / p99 / max ms | switch\'s own p50 / p99 / max ms | over bound | log leader p50 / max ms | log followable p50 / max ms | views agreed p50 / max ms | views not agreed in bound | delivery not exact | steal % p50 / max |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.rows.map(
      (x) =>
        `| ${x.fault} | ${x.runs} (${x.measured}) | ${n(x.interruption_p50_ms)} / ${n(x.interruption_p99_ms)} / ${n(x.interruption_max_ms)} | ${n(x.switch_interruption_p50_ms)} / ${n(x.switch_interruption_p99_ms)} / ${n(x.switch_interruption_max_ms)} | ${x.interruption_over_bound} | ${n(x.election_p50_ms)} / ${n(x.election_max_ms)} | ${n(x.followable_p50_ms)} / ${n(x.followable_max_ms)} | ${n(x.view_recovery_p50_ms)} / ${n(x.view_recovery_max_ms)} | ${x.views_not_recovered} | ${x.delivery_failures} | ${n(x.steal_pct_p50, 1)} / ${n(x.steal_pct_max, 1)} |`,
    ),
    '',
    '## Runs',
    '',
  ];
  for (const x of r.rows) {
    out.push(`### ${x.fault}`, '');
    x.samples.forEach((s, i) => {
      if (s.error !== undefined) out.push(`${i + 1}. run failed: ${s.error}`);
      else
        out.push(
          `${i + 1}. ${s.target}: interruption ${s.interruption_ms} ms (bound ${s.interruption_bound_ms})${s.stalled_at_end ? ' (still stopped at the end)' : ''}` +
            `${s.switch_reason === null ? '' : `, switch ${s.switch_reason} ${n(s.switch_interruption_ms)} ms`}` +
            `${s.election_ms === null ? '' : `, log leader ${s.election_ms} ms, followable ${n(s.followable_ms)} ms`}, views ${s.view_recovery_ms === null ? 'not agreed' : `agreed after ${s.view_recovery_ms} ms`} (bound ${s.view_bound_ms})` +
            `, producer stall ${s.producer_stall_ms} ms, steal ${s.steal_pct} %${s.delivery_problems.length ? `; delivery: ${s.delivery_problems.join('; ')}` : ''}${s.final_view_problems.length ? `; views at the end: ${s.final_view_problems.join('; ')}` : ''}`,
        );
    });
    out.push('');
  }
  return out.join('\n');
}

/** bench/results/instance-loss-<YYYY-MM-DD>.{json,md} (or instance-loss-<name>); returns the base path. */
export async function writeInstanceLoss(r: InstanceLossReport, name = r.at.slice(0, 10)): Promise<string> {
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const base = `instance-loss-${name}`;
  await writeFile(new URL(`${base}.json`, dir), `${JSON.stringify(r, null, 2)}\n`);
  await writeFile(new URL(`${base}.md`, dir), `${renderInstanceLoss(r)}\n`);
  return `bench/results/${base}`;
}

function machineInfo(): InstanceLossReport['machine'] {
  return { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', mem_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}` };
}
