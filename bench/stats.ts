import { readdirSync, readFileSync } from 'node:fs';

/** Summaries used by every bench section: a figure is a median with its min and max. */
export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
}

export function summarize(samples: readonly number[]): Summary {
  const s = samples.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, runs: 0 };
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
  return { median, min: s[0] ?? Number.NaN, max: s.at(-1) ?? Number.NaN, runs: s.length };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] ?? Number.NaN;
}

/** `{x, x_min, x_max}` from a summary, rounded for the report. */
export function flat(name: string, s: Summary, digits = 2): Record<string, number> {
  const r = (v: number): number => Number(v.toFixed(digits));
  return { [name]: r(s.median), [`${name}_min`]: r(s.min), [`${name}_max`]: r(s.max) };
}

/** Deliveries per receiver: seq and wall time (ms). */
export type Timeline = Record<string, { seq: number; t: number }[]>;

/** Longest stall of the merged in-order frontier (union of all receivers) that ends at or after `faultAt`. */
export function frontierStall(timeline: Timeline, faultAt: number): number {
  const events = Object.values(timeline)
    .flat()
    .sort((x, y) => x.t - y.t);
  const seen = new Set<number>();
  let frontier = 0;
  let lastAdvance = events[0]?.t ?? 0;
  let worst = 0;
  for (const e of events) {
    seen.add(e.seq);
    const before = frontier;
    while (seen.has(frontier + 1)) frontier++;
    if (frontier === before) continue;
    if (e.t >= faultAt) worst = Math.max(worst, e.t - lastAdvance);
    lastAdvance = e.t;
  }
  return worst;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The machine's CPU time so far (Linux /proc/stat, all CPUs), in ticks: total, idle (+ iowait) and stolen by the hypervisor. */
export function machineTicks(): { total: number; idle: number; steal: number } {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    return { total: cpu.slice(0, 8).reduce((a, b) => a + b, 0), idle: (cpu[3] ?? 0) + (cpu[4] ?? 0), steal: cpu[7] ?? 0 };
  } catch {
    return { total: 0, idle: 0, steal: 0 };
  }
}

/** Between two `machineTicks()`: % of the machine's CPU time stolen, and % busy (neither idle nor stolen). */
export function machineShare(a: ReturnType<typeof machineTicks>, b: ReturnType<typeof machineTicks>): { stealPct: number; busyPct: number } {
  const total = b.total - a.total;
  if (total <= 0) return { stealPct: 0, busyPct: 0 };
  const steal = b.steal - a.steal;
  return { stealPct: (steal / total) * 100, busyPct: ((total - steal - (b.idle - a.idle)) / total) * 100 };
}

/** CPU time (ticks: user + system) of this process's children named `comm` (Linux /proc), e.g. the nats-servers a bench started. */
export function childTicks(comm: string): number {
  let ticks = 0;
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    let stat = '';
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // ended meanwhile
    }
    const close = stat.lastIndexOf(')');
    if (stat.slice(stat.indexOf('(') + 1, close) !== comm) continue;
    const f = stat.slice(close + 2).split(' ');
    // after the name: state ppid ... utime (field 14) stime (15), counted from field 3
    if (Number(f[1]) !== process.pid) continue;
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}
