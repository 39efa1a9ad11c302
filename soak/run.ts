/**
 * `npm run soak`: a failover and a mirror stream over five receivers (child processes on
 * the public Node SDK), a producer at a steady rate, and a seeded injector of faults:
 * receiver SIGKILL + respawn, SIGSTOP/SIGCONT, endpoint removed and added back, lists
 * reordered, bursts of generated bad requests, and (with two instances on NATS) a
 * gateway instance SIGKILLed and restarted. Afterwards every acked chunk must have been
 * delivered, each receiver life must have seen strictly increasing seqs, and no payload
 * may sit at two seqs. Results go to bench/results/soak-latest.json.
 *
 *   npm run soak -- [--faults 1000] [--seed 1] [--every-ms 500] [--log nats|memory] [--rate 100]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { until } from '../test/helpers/gateway-process.js';
import { startNats, type NatsServer } from '../test/helpers/nats.js';
import { mulberry32 } from '../test/helpers/random.js';
import { judgeStream, type Delivery, type StreamVerdict } from './check.js';
import { FaultInjector, type FaultKind } from './faults.js';
import { Gateways, ReceiverProcess } from './processes.js';
import { SoakProducer } from './producer.js';

const int = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number ≥ 0');
  return n;
};
const opts = new Command()
  .option('--faults <n>', 'faults to inject', int, 1_000)
  .option('--seed <n>', 'seed of the fault plan', int, 1)
  .option('--every-ms <ms>', 'mean time between fault starts', int, 500)
  .addOption(new Option('--log <log>', 'nats: two gateway instances on one nats-server; memory: one gateway').choices(['nats', 'memory']).default('nats'))
  .option('--rate <n>', 'chunks per second per stream', int, 100)
  .option('--out <file>', 'results file', 'bench/results/soak-latest.json')
  .parse()
  .opts<{ faults: number; seed: number; everyMs: number; log: string; rate: number; out: string }>();

// long names: the bad bursts generate short ids, and must not hit the soak's own streams
const FAILOVER = 'soak-failover-stream';
const MIRROR = 'soak-mirror-stream';
const ENDPOINTS = ['soak-rx-1', 'soak-rx-2', 'soak-rx-3', 'soak-rx-4', 'soak-rx-5'];
const LISTS = new Map([
  [FAILOVER, ENDPOINTS.slice(0, 4)],
  [MIRROR, ENDPOINTS.slice(2)],
]);
const BATCH_EVERY_MS = 50;
const log = (msg: string): void => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}`);

const started = Date.now();
let nats: NatsServer | undefined;
let gateways: Gateways | undefined;
const receivers: ReceiverProcess[] = [];
try {
  if (opts.log === 'nats') nats = await startNats();
  gateways = await Gateways.start(nats ? 2 : 1, nats ? ['--nats', nats.url] : []);
  const gw = gateways;
  log(`${gw.urls.length} gateway instance(s) ${gw.urls.join(' ')}${nats ? ` on NATS ${nats.url}` : ', in-memory log'}`);
  await gw.api('POST', '/v1/streams', { stream_id: FAILOVER, mode: 'failover', endpoint_list: LISTS.get(FAILOVER) });
  await gw.api('POST', '/v1/streams', { stream_id: MIRROR, mode: 'mirror', endpoint_list: LISTS.get(MIRROR) });

  const deliveries = new Map<string, Delivery[]>([...LISTS.keys()].map((s) => [s, []]));
  const order = mulberry32(opts.seed ^ 0x5eed);
  for (const endpoint of ENDPOINTS) {
    const { token } = (await gw.api('POST', `/v1/endpoints/${endpoint}/token`, { ttl_s: 24 * 3600 })) as { token: string };
    // each receiver knows every instance, in its own order
    const urls = order() < 0.5 ? gw.urls : [...gw.urls].reverse();
    const rx = new ReceiverProcess(endpoint, urls, token, deliveries);
    rx.spawn();
    receivers.push(rx);
  }
  const { token } = (await gw.api('POST', `/v1/endpoints/${ENDPOINTS[0]}/token`, {})) as { token: string };
  await until(async () => (await Promise.all([...LISTS.keys()].map(async (s) => ((await gw.api('GET', `/v1/streams/${s}`)) as { active: string[] }).active.length > 0))).every(Boolean), 60_000, 'both streams have an active endpoint');

  const producer = new SoakProducer([...LISTS.keys()], gw.urls, Math.max(1, Math.round((opts.rate * BATCH_EVERY_MS) / 1000)), BATCH_EVERY_MS);
  producer.start();
  await new Promise((r) => setTimeout(r, 2_000));
  const injector = new FaultInjector({ seed: opts.seed, everyMs: opts.everyMs, maxReceiversDown: 2, lists: LISTS, receivers, gateways: gw, token, badAddress: '127.0.0.2' });
  log(`producing ${opts.rate} chunks/s per stream; injecting ${opts.faults} faults, one every ~${opts.everyMs} ms`);
  const progress = setInterval(() => log(`${injector.log.length} faults, ${[...producer.acked.values()].reduce((n, m) => n + m.size, 0)} chunks acked`), 30_000);
  const faultsFrom = Date.now();
  await injector.run(opts.faults);
  const faultsMs = Date.now() - faultsFrom;
  clearInterval(progress);
  // a quiet stretch at the end: everything restored, the stream still flowing
  await new Promise((r) => setTimeout(r, 3_000));
  await producer.stop().catch((error: unknown) => log(String(error)));
  const covered = (): boolean =>
    [...producer.acked].every(([s, acked]) => {
      const seen = new Set(deliveries.get(s)!.map((d) => d.seq));
      return [...acked.keys()].every((seq) => seen.has(seq));
    });
  await until(covered, 60_000, 'every acked chunk delivered').catch((error: unknown) => log(String(error)));

  const verdicts: Record<string, StreamVerdict> = {};
  for (const [s, acked] of producer.acked) verdicts[s] = judgeStream(acked, deliveries.get(s)!);
  const byKind: Partial<Record<FaultKind, number>> = {};
  for (const f of injector.log) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
  // a 5xx, or no answer from an instance that was up, is a defect
  const fiveXX = [...injector.badAnswers].filter(([status]) => Number(status) >= 500 || status === 'no answer').reduce((n, [, c]) => n + c, 0);
  const result = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, node: process.version },
    options: opts,
    setup: {
      instances: gw.urls.length,
      log: opts.log,
      streams: Object.fromEntries([...LISTS].map(([s, l]) => [s, { mode: s === MIRROR ? 'mirror' : 'failover', endpoint_list: l }])),
      note: 'gateway limits at their defaults; bad bursts come from 127.0.0.2, the receivers from 127.0.0.1',
    },
    durationS: Math.round((Date.now() - started) / 1000),
    faultsS: Math.round(faultsMs / 1000),
    faults: { total: injector.log.length, byKind, instanceStartMs: injector.instanceStartMs },
    producer: { client: '@mirrorstream/producer', retries: producer.retries, badAnswers: producer.badAnswers, rejected: producer.rejected, longestAckMs: Math.round(producer.longestAckMs) },
    badRequests: { byStatus: Object.fromEntries([...injector.badAnswers].sort((a, b) => a[0].localeCompare(b[0]))), fiveXXOrNoAnswer: fiveXX },
    receivers: receivers.map((r) => ({ endpoint: r.endpoint, lives: r.life + 1, unexpectedExits: r.unexpectedExits, gaps: r.gaps, resets: r.resets, errors: Object.fromEntries(r.errors) })),
    streams: Object.fromEntries(
      Object.entries(verdicts).map(([s, v]) => [s, { ...v, lost: v.lost.length, lostSeqs: v.lost.slice(0, 20), longestWithNoServingEndpointMs: injector.noServingEndpointMs.get(s) ?? 0 }]),
    ),
    specErrors: injector.specErrors,
    specChangesRetriedAfterLostAnswer: gw.retriedChanges,
    gatewayLog: Object.fromEntries([...gw.warnings].sort((a, b) => b[1] - a[1])),
    faultLog: injector.log,
  };
  const failed =
    Object.values(verdicts).some((v) => v.lost.length > 0 || v.duplicatesPerLife > 0 || v.corrupted > 0 || v.payloadAtTwoSeqs > 0) ||
    producer.badAnswers > 0 ||
    producer.rejected.length > 0 ||
    fiveXX > 0 ||
    injector.specErrors.length > 0 ||
    receivers.some((r) => r.unexpectedExits > 0 || r.gaps.length > 0 || r.resets > 0);
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFile(opts.out, `${JSON.stringify({ ...result, verdict: failed ? 'FAILED' : 'passed' }, null, 2)}\n`);
  for (const [s, v] of Object.entries(verdicts)) {
    log(
      `${s}: ${v.acked} acked, ${v.lost.length} lost, ${v.duplicatesPerLife} duplicates per receiver life, ${v.corrupted} corrupted, ${v.payloadAtTwoSeqs} payloads at two seqs; ` +
        `longest frontier stall ${v.longestFrontierStallMs} ms (longest with no listed endpoint serving ${injector.noServingEndpointMs.get(s) ?? 0} ms); ack → delivery p50 ${v.delayMs.p50} p99 ${v.delayMs.p99} max ${Math.round(v.delayMs.max)} ms`,
    );
  }
  log(`${injector.log.length} faults (${Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(', ')}) in ${Math.round(faultsMs / 1000)} s; bad requests by status ${JSON.stringify(result.badRequests.byStatus)}; producer retries ${producer.retries}`);
  log(`${failed ? 'FAILED' : 'passed'}; results in ${opts.out}`);
  process.exitCode = failed ? 1 : 0;
} finally {
  await Promise.all(receivers.map((r) => r.kill()));
  await gateways?.close();
  await nats?.close();
}
