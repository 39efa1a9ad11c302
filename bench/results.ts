import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';

export type Row = Record<string, string | number | undefined>;

/** Write `bench/results/<name>.json` and `.md` with the machine it ran on. */
export async function record(name: string, rows: Row[]): Promise<void> {
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version };
  const at = new Date().toISOString();
  await writeFile(new URL(`${name}.json`, dir), `${JSON.stringify({ name, at, machine, rows }, null, 2)}\n`);
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v ?? ''));
  const md = [
    `# ${name}`,
    '',
    `${at} — ${machine.cpus} cores (${machine.cpu}), ${machine.memGiB} GiB, Node ${machine.node}`,
    '',
    `| ${cols.join(' | ')} |`,
    `|${cols.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${cols.map((c) => fmt(r[c])).join(' | ')} |`),
    '',
  ].join('\n');
  await writeFile(new URL(`${name}.md`, dir), md);
}
