/**
 * `npm run soak:busy -- [--minutes 10] [--rate 200] [--hogs 2] [--transport webrtc]`: the
 * no-false-switch soak. One gateway (in this process), one failover stream at a steady
 * rate, 3 healthy receivers in child processes on the public Node SDK, and `--hogs`
 * processes spinning at 100 % so both cores stay busy the whole time. Nothing is faulted:
 * every switch is a false one. Hedges may start and end. Reports switches, hedges, time
 * suspect, lost and duplicate chunks; results go to bench/results/soak-busy.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { sleep, spawnReceiver, startGateway, waitFor, withDeadline, type ChildReceiver } from '../test/helpers/webrtc-scenario.js';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a whole number ≥ 1');
  return n;
};
const opts = new Command()
  .option('--minutes <n>', 'how long', int, 10)
  .option('--rate <n>', 'chunks/s', int, 200)
  .option('--hogs <n>', 'CPU-spinning processes', int, cpus().length)
  .addOption(new Option('--transport <t>', 'receiver transport').choices(['webrtc', 'webtransport']).default('webrtc'))
  .parse()
  .opts<{ minutes: number; rate: number; hogs: number; transport: string }>();

const hogs: ChildProcess[] = [];
const rx: ChildReceiver[] = [];
const { gateway, server } = await startGateway('node-datachannel');
const hedges = { started: 0, ended: 0, committed: 0 };
gateway.on('hedged', (e) => hedges[e.kind]++);
try {
  for (const id of ['a', 'b', 'c']) rx.push(await spawnReceiver(gateway, server.url, id, opts.transport));
  await Promise.all(rx.map((r) => r.ready));
  gateway.createStream({ stream_id: 'busy', endpoint_list: ['a', 'b', 'c'] });
  await waitFor(() => gateway.getStream('busy').active[0] === 'a', 5_000, 'a active');
  for (let i = 0; i < opts.hogs; i++) hogs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const start = performance.now();
  const endAt = start + opts.minutes * 60_000;
  let published = 0;
  let nextReport = start + 60_000;
  const load: number[] = [];
  while (performance.now() < endAt) {
    await gateway.publish('busy', new TextEncoder().encode(`busy ${published + 1}`));
    published++;
    const wait = start + (published * 1000) / opts.rate - performance.now();
    if (wait > 1) await sleep(wait);
    if (performance.now() >= nextReport) {
      nextReport += 60_000;
      load.push(loadavg()[0] ?? 0);
      const sw = gateway.streamHealth('busy').switches.length - 1;
      console.log(`[busy soak] ${Math.round((performance.now() - start) / 60_000)} min: ${published} published, switches ${sw}, hedges ${JSON.stringify(hedges)}, load ${load.at(-1)?.toFixed(2)}`);
    }
  }
  for (const h of hogs) h.kill('SIGKILL');
  const union = (): Set<number> => new Set(rx.flatMap((r) => r.chunks.map((c) => c.seq)));
  await waitFor(() => union().size >= published, 30_000, 'every chunk delivered').catch(() => undefined);
  const health = gateway.streamHealth('busy');
  const duplicates = Object.fromEntries(rx.map((r) => [r.id, r.chunks.length - new Set(r.chunks.map((c) => c.seq)).size]));
  const result = {
    at: new Date().toISOString(),
    minutes: opts.minutes,
    rate_per_s: opts.rate,
    transport: opts.transport,
    hogs: opts.hogs,
    cpus: cpus().length,
    load_avg_1m_per_minute: load.map((l) => Number(l.toFixed(2))),
    published,
    delivered_union: union().size,
    lost: published - union().size,
    duplicates_per_receiver: duplicates,
    switches: health.switches.filter((s) => s.reason !== 'initial').map((s) => ({ from: s.from, to: s.to, reason: s.reason, detail: s.detail })),
    hedges,
    suspect_ms_total: Object.fromEntries(health.endpoints.map((e) => [e.endpoint_id, e.suspect_ms_total])),
    active_at_end: health.active,
  };
  await mkdir(new URL('../bench/results/', import.meta.url), { recursive: true });
  await writeFile(new URL('../bench/results/soak-busy.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
  process.exitCode = result.switches.length === 0 && result.lost === 0 && Object.values(duplicates).every((d) => d === 0) ? 0 : 1;
} finally {
  for (const h of hogs) h.kill('SIGKILL');
  for (const r of rx) r.proc.kill('SIGKILL');
  await Promise.all(rx.map((r) => withDeadline(r.exited, 5_000, `${r.id} exit`).catch(() => undefined)));
  await gateway.close();
  await server.close();
}
process.exit(process.exitCode ?? 0);
