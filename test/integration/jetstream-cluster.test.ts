import { connect } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { createGateway, MirrorstreamError } from '../../gateway/src/index.js';
import { range } from '../helpers/memory-harness.js';
import { startNatsCluster } from '../helpers/nats.js';
import { eventually } from '../helpers/poll.js';

/** Retry `f` while it fails with a retryable MirrorstreamError (a refusal while the cluster elects), for at most `ms`. */
const retrying = <T>(f: () => Promise<T>, ms: number, what: string, onRefused?: () => void): Promise<T> =>
  eventually(f, ms, what, { retryIf: (error) => error instanceof MirrorstreamError && error.retryable, ...(onRefused ? { onRetry: onRefused } : {}) });

/**
 * R3 on a 3-node nats-server cluster on loopback: the stream's JetStream leader is killed
 * while a producer publishes through the gateway, retrying refused publishes with their
 * idempotency key. Publishing resumes after the election, and JetStream holds every chunk
 * that was acknowledged, once, in order.
 */
describe('JetStream log, 3-node cluster (R3)', () => {
  it('kill the stream leader mid-stream: publishing resumes, every acked chunk is there once, in order', async () => {
    const cluster = await startNatsCluster(3);
    const gateway = createGateway({ logLevel: 'silent', log: { kind: 'jetstream', nats: { servers: cluster.urls, replicas: 3, prefix: 'r3', requestTimeoutMs: 1_000 } } });
    const nc = await connect({ servers: cluster.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      // the cluster elects its JetStream meta leader first
      await retrying(() => gateway.start(), 30_000, 'gateway start on the cluster');
      await retrying(() => gateway.createStream({ stream_id: 'ticks', endpoint_list: [] }), 15_000, 'create stream');
      const jsm = await jetstreamManager(nc, { timeout: 2_000 });
      const N = 1_500;
      const ackedAt: number[] = [];
      let refused = 0;
      let killed = '';
      for (let i = 1; i <= N; i++) {
        if (i === 500) {
          killed = (await jsm.streams.info('r3_log_ticks')).cluster?.leader ?? '';
          await cluster.kill(killed);
        }
        const seq = await retrying(
          () => gateway.publish('ticks', `tick ${i}`, { idempotencyKey: `tick-${i}` }).then((r) => r.seq),
          30_000,
          `publish ${i}`,
          () => refused++,
        );
        expect(seq).toBe(i);
        ackedAt.push(performance.now());
      }
      const outageMs = Math.max(...ackedAt.slice(1).map((t, i) => t - (ackedAt[i] ?? t)));
      console.log(`[R3] killed stream leader ${killed} at chunk 500: publishing stalled ${outageMs.toFixed(0)} ms at most, ${refused} publishes refused (MS_LOG_UNAVAILABLE) and retried; ${N} acked`);
      expect(killed).toMatch(/^n[123]$/);

      // the killed node comes back; then JetStream itself (read by a client of the test) holds
      // every acked chunk once, dense, in order
      await cluster.restart(killed);
      const info = await eventually(() => jsm.streams.info('r3_log_ticks'), 30_000, 'the log stream info', { everyMs: 250 });
      expect(info.state).toMatchObject({ first_seq: 1, last_seq: N, messages: N });
      const js = jetstream(nc, { timeout: 5_000 });
      const payloads = await eventually(async () => {
        const consumer = await js.consumers.get('r3_log_ticks', { deliver_policy: DeliverPolicy.All });
        const got: string[] = [];
        while (got.length < N) {
          const batch = await consumer.fetch({ max_messages: 500, expires: 5_000 });
          let n = 0;
          for await (const m of batch) {
            got.push(new TextDecoder().decode(m.data));
            n++;
          }
          if (n === 0) throw new Error(`read ${got.length} of ${N}`);
        }
        return got;
      }, 30_000, 'every chunk read back', { everyMs: 250 });
      expect(payloads).toEqual(range(1, N).map((i) => `tick ${i}`));
      expect(gateway.getStream('ticks').last_seq).toBe(N);
    } finally {
      await gateway.close().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await cluster.close();
    }
  }, 120_000);
});
