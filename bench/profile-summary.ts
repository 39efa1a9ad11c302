/**
 * Top functions by self time in a V8 `.cpuprofile` (from `node --cpu-prof`), and the same
 * grouped by package/file so a stage (codec, SCTP, ICE, gateway) stands out.
 * Usage: npx tsx bench/profile-summary.ts <file.cpuprofile> [top]
 */
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  selfMs: number;
  pct: number;
}

export function summarizeProfile(profile: Profile, top = 15): { functions: ProfileLine[]; files: ProfileLine[]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id);
    if (!n) continue;
    totalMs += ms;
    const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '~/').replace(/^.*\/work\/[^/]+\//, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
    fn.set(name, (fn.get(name) ?? 0) + ms);
    const group = url ? (url.startsWith('~/') ? url.split('/').slice(0, url.startsWith('~/@') ? 3 : 2).join('/') : url) : n.callFrame.functionName;
    file.set(group, (file.get(group) ?? 0) + ms);
  }
  const rank = (m: Map<string, number>): ProfileLine[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, selfMs: Number(ms.toFixed(1)), pct: Number(((ms / totalMs) * 100).toFixed(1)) }));
  return { functions: rank(fn), files: rank(file), totalMs };
}

if (process.argv[1]?.endsWith('profile-summary.ts')) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
  const s = summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as Profile, Number(process.argv[3] ?? 20));
  console.log(`total sampled: ${s.totalMs.toFixed(0)} ms\n\nby function (self time):`);
  console.table(s.functions);
  console.log('by file / package:');
  console.table(s.files);
}
