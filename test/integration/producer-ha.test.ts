import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { Producer } from '../../producer/src/index.js';
import { api, API_KEY, kill, killAll, startGateway } from '../helpers/gateway-process.js';
import { deliveryProblems, ReceiverSet, STREAM } from '../helpers/ha-scenario.js';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { until, withDeadline } from '../helpers/poll.js';
import { SchedulingDelay } from '../helpers/sched.js';

/**
 * @mirrorstream/producer given two gateway instances on one nats-server (the built CLI, child
 * processes): 500 chunks/s (10 every 20 ms) on the streaming ingest, three receivers. The
 * producer's instance is SIGKILLed, or SIGTERMed (a drain: GOAWAY), mid-stream. Every publish
 * that resolved must be delivered exactly once and in order; every one that rejected has a code.
 */
describe('producer client across two gateway instances (JetStream)', () => {
  let nats: NatsServer | undefined;
  let rxs = new ReceiverSet();
  let producer: Producer | undefined;
  afterEach(async () => {
    await producer?.close().catch(() => undefined);
    producer = undefined;
    await rxs.closeAll();
    rxs = new ReceiverSet();
    await killAll();
    await nats?.close();
    nats = undefined;
  });

  for (const fault of ['SIGKILL', 'SIGTERM'] as const) {
    it(`${fault} of the instance the producer sends to: every resolved publish delivered once, in order; rejections coded`, async () => {
      nats = await startNats();
      const a = await startGateway(0, ['--nats', nats.url]);
      const b = await startGateway(0, ['--nats', nats.url]);
      await api(a.url, 'POST', '/v1/streams', STREAM);
      await until(async () => ((await api(b.url, 'GET', '/v1/streams/s').catch(() => undefined)) as { stream_id?: string } | undefined)?.stream_id === 's', 10_000, 'the stream on both instances');
      const { deliveries, perReceiver } = rxs;
      await rxs.connect('e1', [a.url, b.url]);
      await rxs.connect('e2', [b.url, a.url]);
      await rxs.connect('e3', [a.url, b.url]);
      producer = new Producer({ gatewayUrl: [a.url, b.url], apiKey: API_KEY, backoff: { initialMs: 50, maxMs: 500 } });
      const p = producer;
      const left: string[] = [];
      p.on('disconnected', (url, reason) => left.push(`${url} ${reason}`));
      const acked = new Set<number>();
      const ackTimes: number[] = [];
      const rejected: string[] = [];
      let n = 0;
      let stop = false;
      const publishing = (async () => {
        const t0 = performance.now();
        for (let tick = 0; !stop; tick++) {
          for (let i = 0; i < 10; i++) {
            const payload = `c${++n}`;
            p.publish('s', payload).then(
              (r) => {
                acked.add(r.seq);
                ackTimes.push(performance.now());
              },
              (error: { code?: string }) => rejected.push(error.code ?? 'uncoded'),
            );
          }
          const wait = t0 + (tick + 1) * 20 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      })();
      await until(() => acked.size >= 1_000, 15_000, '1 000 chunks acked before the fault', { state: () => acked.size });
      const target = p.gatewayUrl === a.url ? a : b;
      const sched = SchedulingDelay.start();
      const faultAt = performance.now();
      const before = acked.size;
      if (fault === 'SIGKILL') await kill(target);
      else {
        const exited = new Promise<number | null>((r) => target.proc.once('exit', (code) => r(code)));
        target.proc.kill('SIGTERM');
        expect(await withDeadline(exited, 15_000, 'drained and exited')).toBe(0);
      }
      await until(() => acked.size >= before + 1_500, 30_000, '1 500 more chunks acked after the fault', { state: () => acked.size });
      stop = true;
      await publishing;
      await withDeadline(p.flush(), 20_000, 'every publish answered');
      sched.stop();
      await until(() => new Set(deliveries.map((d) => d.seq)).size >= acked.size, 20_000, 'every acked chunk delivered', { state: () => `${new Set(deliveries.map((d) => d.seq)).size} of ${acked.size}` });
      expect(deliveryProblems(acked, deliveries, perReceiver)).toEqual([]);
      // every payload published once appears once (a retried batch stored nothing twice)
      expect(new Set(deliveries.map((d) => d.payload)).size).toBe(new Set(deliveries.map((d) => d.seq)).size);
      expect(rejected).toEqual([]);
      expect(acked.size).toBe(n);
      let stall = 0;
      const after = ackTimes.filter((t) => t >= faultAt);
      for (let i = 1; i < after.length; i++) stall = Math.max(stall, after[i]! - after[i - 1]!);
      stall = Math.max(stall, (after[0] ?? faultAt) - faultAt);
      console.log(
        `[producer, ${fault} of its instance] ${acked.size} publishes resolved, all delivered once in order; ${rejected.length} rejected; longest stall of the producer's acks after the fault ${Math.round(stall)} ms; ` +
          `stats ${JSON.stringify(p.stats)}; now on ${p.gatewayUrl === a.url ? 'A' : 'B'} (${sched.describe()})`,
      );
      expect(p.gatewayUrl).not.toBe(target.url);
      // the producer told it left the instance: GOAWAY from a draining one, a lost connection from a killed one
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(fault === 'SIGTERM' ? new RegExp(`^${target.url} GOAWAY`) : new RegExp(`^${target.url} MS_`));
    }, 120_000);
  }
});
