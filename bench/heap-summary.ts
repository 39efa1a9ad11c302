/**
 * What a V8 heap snapshot holds, by constructor: count and self size, largest first, with the
 * bytes per "unit" when given (e.g. the number of endpoints in the gateway that wrote it).
 * Usage: npx tsx bench/heap-summary.ts <file.heapsnapshot> [top] [units]
 * FANOUT_HEAP_SNAPSHOT=/tmp/dir npx tsx bench/fanout.ts webrtc 1000 writes one at the idle window.
 */
import { readFile } from 'node:fs/promises';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: (string[] | string)[] } };
  nodes: number[];
  strings: string[];
}

export function summarizeHeap(snap: Snapshot, top = 30): { name: string; count: number; bytes: number }[] {
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0] as string[];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const by = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt] ?? 0] ?? '?';
    const raw = snap.strings[snap.nodes[i + nameAt] ?? 0] ?? '?';
    // objects by constructor; strings, arrays, code and the rest by their kind
    const name = type === 'object' || type === 'closure' || type === 'native' ? `${type === 'closure' ? 'closure ' : ''}${raw}` : `(${type})`;
    const e = by.get(name) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += snap.nodes[i + sizeAt] ?? 0;
    by.set(name, e);
  }
  return [...by].map(([name, e]) => ({ name, ...e })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
}

if (process.argv[1]?.endsWith('heap-summary.ts')) {
  const [file, top = '30', units] = process.argv.slice(2);
  if (!file) throw new Error('usage: heap-summary.ts <file.heapsnapshot> [top] [units]');
  const rows = summarizeHeap(JSON.parse(await readFile(file, 'utf8')) as Snapshot, Number(top));
  const n = units ? Number(units) : undefined;
  console.table(rows.map((r) => ({ name: r.name.slice(0, 60), count: r.count, kib: Number((r.bytes / 1024).toFixed(1)), ...(n ? { per_unit: Number((r.count / n).toFixed(2)), bytes_per_unit: Math.round(r.bytes / n) } : {}) })));
}
