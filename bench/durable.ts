/**
 * Durable log: the producer's publish-ack latency and producer → receiver throughput with
 * the JetStream log (R1 on one nats-server, R3 on a 3-node cluster on loopback), beside the
 * memory log and raw JetStream publish/consume on the same servers, in one run.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createGateway, type Gateway, type GatewayConfigInput } from '../gateway/src/index.js';
import { memoryReceiverCore } from '../test/helpers/memory-receiver.js';
import { startNats, startNatsCluster } from '../test/helpers/nats.js';
import { percentile, sleep } from './stats.js';

export type DurableCase = 'jetstream/raw' | 'gateway/memory' | 'gateway/jetstream';

export interface DurableRow {
  case: DurableCase;
  /** JetStream replicas (0: no JetStream). */
  replicas: number;
  chunk_bytes: number;
  /** One publish at a time, resolved once stored: latency percentiles over `acks` publishes. */
  acks: number;
  publish_ack_p50_ms: number;
  publish_ack_p99_ms: number;
  /** Batches of 64 published back to back for `seconds`: chunks/s the receiver (raw: a consumer) got. */
  chunks_per_s: number;
  mbps: number;
}

const CHUNK = 1024;
const BATCH = 64;

export async function durable(plan: { acks: number; seconds: number }): Promise<DurableRow[]> {
  const rows: DurableRow[] = [];
  rows.push(await gatewayCase('gateway/memory', 0, { logLevel: 'silent' }, plan));
  const single = await startNats();
  try {
    rows.push(await rawCase([single.url], 1, plan));
    rows.push(await gatewayCase('gateway/jetstream', 1, jetstreamConfig([single.url], 1, 'bench1'), plan));
  } finally {
    await single.close();
  }
  const cluster = await startNatsCluster(3);
  try {
    await waitForJetStream(cluster.urls);
    rows.push(await rawCase(cluster.urls, 3, plan));
    rows.push(await gatewayCase('gateway/jetstream', 3, jetstreamConfig(cluster.urls, 3, 'bench3'), plan));
  } finally {
    await cluster.close();
  }
  return rows;
}

function jetstreamConfig(servers: string[], replicas: number, prefix: string): GatewayConfigInput {
  return { logLevel: 'silent', log: { kind: 'jetstream', nats: { servers, replicas, prefix } }, retention: { maxChunks: 200_000, maxBytes: 512 * 1024 ** 2 } };
}

async function gatewayCase(name: DurableCase, replicas: number, config: GatewayConfigInput, plan: { acks: number; seconds: number }): Promise<DurableRow> {
  const gateway = createGateway(config);
  await gateway.start();
  const payload = new Uint8Array(CHUNK).map((_, i) => i & 255);
  try {
    await gateway.createStream({ stream_id: 'acks', endpoint_list: [] });
    const latencies: number[] = [];
    for (let i = 0; i < plan.acks; i++) {
      const t0 = performance.now();
      await gateway.publish('acks', payload);
      latencies.push(performance.now() - t0);
    }
    const delivered = await producerToReceiver(gateway, payload, plan.seconds);
    return row(name, replicas, latencies, delivered / plan.seconds, plan.acks);
  } finally {
    await gateway.close();
  }
}

/** Batches of 64 back to back for `seconds` on stream `flow`; what one in-process receiver delivered. */
async function producerToReceiver(gateway: Gateway, payload: Uint8Array, seconds: number): Promise<number> {
  await gateway.createStream({ stream_id: 'flow', endpoint_list: ['rx'] });
  let delivered = 0;
  const rx = memoryReceiverCore(gateway, 'rx');
  rx.on('chunk', () => delivered++);
  await rx.connect();
  const batch = Array.from({ length: BATCH }, () => ({ payload }));
  const until = performance.now() + seconds * 1000;
  let published = 0;
  while (performance.now() < until) published += (await gateway.publishBatch('flow', batch)).count;
  const counted = delivered;
  // let the tail arrive, so the next case starts on an idle machine
  for (let i = 0; i < 100 && delivered < published; i++) await sleep(20);
  rx.close();
  return counted;
}

async function rawCase(servers: string[], replicas: number, plan: { acks: number; seconds: number }): Promise<DurableRow> {
  const nc: NatsConnection = await connect({ servers });
  const payload = new Uint8Array(CHUNK).map((_, i) => i & 255);
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await jsm.streams.add({ name: `raw${replicas}`, subjects: [`raw${replicas}`], num_replicas: replicas });
    const latencies: number[] = [];
    for (let i = 0; i < plan.acks; i++) {
      const t0 = performance.now();
      await js.publish(`raw${replicas}`, payload);
      latencies.push(performance.now() - t0);
    }
    // consume while publishing, 64 in flight (what the gateway's batches give JetStream)
    const consumer = await js.consumers.get(`raw${replicas}`, { deliver_policy: DeliverPolicy.New });
    let consumed = 0;
    const messages = await consumer.consume({ max_messages: 1_000 });
    void (async () => {
      for await (const m of messages) if (m.seq > 0) consumed++;
    })();
    const until = performance.now() + plan.seconds * 1000;
    while (performance.now() < until) await Promise.all(Array.from({ length: BATCH }, () => js.publish(`raw${replicas}`, payload)));
    const counted = consumed;
    await messages.close();
    return row('jetstream/raw', replicas, latencies, counted / plan.seconds, plan.acks);
  } finally {
    await nc.close();
  }
}

function row(name: DurableCase, replicas: number, latencies: number[], chunksPerS: number, acks: number): DurableRow {
  const r = (v: number, d = 2): number => Number(v.toFixed(d));
  return {
    case: name,
    replicas,
    chunk_bytes: CHUNK,
    acks,
    publish_ack_p50_ms: r(percentile(latencies, 50), 3),
    publish_ack_p99_ms: r(percentile(latencies, 99), 3),
    chunks_per_s: Math.round(chunksPerS),
    mbps: r((chunksPerS * CHUNK) / 1e6, 1),
  };
}

/** A fresh cluster elects its JetStream meta leader first (bounded wait). */
export async function waitForJetStream(servers: string[]): Promise<void> {
  const nc = await connect({ servers });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await (await jetstreamManager(nc, { timeout: 1_000 })).getAccountInfo();
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  } finally {
    await nc.close();
  }
}
