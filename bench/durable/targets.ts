/**
 * The cases of the ingest section (bench/durable-ingest.ts): a gateway in a process of its own
 * and the ways chunks go into it (the HTTP client, the producer client, its own publishBatch),
 * and the NATS client alone as the baseline.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { GatewayConfigInput } from '../../gateway/src/index.js';
import { sleep } from '../stats.js';
import type { FromGatewayChild, ToGatewayChild } from './gateway-child.js';
import type { FromIngestClient, IngestClientKind, ToIngestClient } from './ingest-client.js';

export type IngestCase =
  | 'http/gateway-memory'
  | 'http/gateway-jetstream'
  | 'producer/gateway-memory'
  | 'producer/gateway-memory-rx'
  | 'producer/gateway-jetstream'
  | 'producer-paced/gateway-memory'
  | 'producer-paced/gateway-jetstream'
  | 'inprocess/publish-memory'
  | 'inprocess/publish-memory-rx'
  | 'inprocess/publish-memory-rx-fresh'
  | 'jetstream/raw-async'
  | 'jetstream/raw-async-no-traces';

export const INGEST_CONNECTIONS = 16;
export const INGEST_BATCH = 10;
export const INGEST_CHUNK = 100;
export const RAW_IN_FLIGHT = 256;
/** producer/*: publish() calls unanswered at a time (the client's per-stream queue holds 10 000). */
export const PRODUCER_WINDOW = 10_000;
/** producer-paced/*: the feed rate the publish-ack latency is measured at. */
export const PACED_RATE = 1_000;
/** inprocess/*: chunks per publishBatch call. */
export const INPROCESS_BATCH = 64;
/** The HTTP client (bench/durable/ingest-client.ts): `lean` unless DURABLE_INGEST_CLIENT=node-http. */
export const INGEST_CLIENT: IngestClientKind = process.env.DURABLE_INGEST_CLIENT === 'node-http' ? 'node-http' : 'lean';
export const INGEST_KEY = 'durable-bench-key-0123456789';

export interface IngestRun {
  chunks: number;
  seconds: number;
  errors: number;
  firstError?: string | undefined;
  latenciesMs: number[];
  /** CPU time of the process that did the work (the gateway's, or this one's for raw). */
  cpuUs: number;
  clientCpuUs?: number;
}

export interface IngestTarget {
  case: IngestCase;
  replicas: number;
  label: string;
  run(ms: number): Promise<IngestRun>;
  close(): Promise<void>;
}

/** A gateway in a process of its own (bench/durable/gateway-child.ts), with one stream `ingest` and no endpoints. */
export class GatewayChild {
  private constructor(
    readonly child: Child<ToGatewayChild, FromGatewayChild>,
    readonly url: string,
  ) {}

  static async start(name: string, config: GatewayConfigInput): Promise<GatewayChild> {
    // DURABLE_GATEWAY_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway processes
    const args = process.env.DURABLE_GATEWAY_ARGS?.split(' ').filter(Boolean) ?? [];
    const child = await Child.start<ToGatewayChild, FromGatewayChild>('./gateway-child.ts', [JSON.stringify(config), INGEST_KEY], args);
    const up = await Promise.race([child.next('listening', 60_000), child.next('failed', 60_000)]);
    if (up.ev === 'failed') {
      await child.stop();
      throw new Error(`the ${name} gateway did not start: ${up.error}`);
    }
    return new GatewayChild(child, up.url);
  }

  /** Its CPU time so far (µs) and the chunks its in-process receiver got. */
  async usage(): Promise<{ us: number; delivered: number }> {
    const r = await this.child.ask({ cmd: 'cpu' }, 'cpu', 10_000);
    return { us: r.us, delivered: r.delivered };
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}

/** The HTTP client process posting to the gateway: 16 keep-alive connections × 10 chunks. */
export function httpTarget(g: GatewayChild, name: IngestCase, replicas: number, client: Child<ToIngestClient, FromIngestClient>): IngestTarget {
  return {
    case: name,
    replicas,
    label: `${name.split('/')[1] ?? name}@R${replicas}`,
    async run(ms) {
      const u0 = await g.usage();
      const r = await client.ask({ cmd: 'run', url: g.url, apiKey: INGEST_KEY, streamId: 'ingest', connections: INGEST_CONNECTIONS, chunks: INGEST_BATCH, chunkBytes: INGEST_CHUNK, ms, client: INGEST_CLIENT }, 'ran', ms + 60_000);
      const cpuUs = (await g.usage()).us - u0.us;
      return { chunks: r.chunks, seconds: r.seconds, errors: r.errors, firstError: r.firstError, latenciesMs: r.latenciesMs, cpuUs, clientCpuUs: r.cpuUs };
    },
    close: async () => undefined,
  };
}

/**
 * @mirrorstream/producer in the client process on the streaming ingest: as fast as it goes, or
 * paced at 1 000 chunks/s; `-rx`: into the stream with a receiver, counting what it got.
 */
export function producerTarget(g: GatewayChild, name: IngestCase, replicas: number, client: Child<ToIngestClient, FromIngestClient>): IngestTarget {
  const paced = name.startsWith('producer-paced');
  const rx = name.endsWith('-rx');
  return {
    case: name,
    replicas,
    label: `${name.replace('/', '-')}@R${replicas}`,
    async run(ms) {
      const u0 = await g.usage();
      const r = await client.ask(
        { cmd: 'produce', url: g.url, apiKey: INGEST_KEY, streamId: rx ? 'ingest-rx' : 'ingest', chunkBytes: INGEST_CHUNK, ms, window: PRODUCER_WINDOW, ...(paced ? { ratePerS: PACED_RATE } : {}) },
        'ran',
        ms + 60_000,
      );
      const u1 = await g.usage();
      return { chunks: rx ? u1.delivered - u0.delivered : r.chunks, seconds: r.seconds, errors: r.errors, firstError: r.firstError, latenciesMs: r.latenciesMs, cpuUs: u1.us - u0.us, clientCpuUs: r.cpuUs };
    },
    close: async () => undefined,
  };
}

/**
 * The gateway's own publishBatch in its process (no network): 64 chunks a call, each awaited;
 * `-rx`: into the stream with a receiver, counting what it got; `-fresh`: each chunk with a
 * payload of its own (a copy of the template), as an application's data is, not one shared object.
 */
export function inprocessTarget(g: GatewayChild, name: 'inprocess/publish-memory' | 'inprocess/publish-memory-rx' | 'inprocess/publish-memory-rx-fresh'): IngestTarget {
  const rx = name.includes('-rx');
  const fresh = name.endsWith('-fresh');
  return {
    case: name,
    replicas: 0,
    label: `${name.split('/')[1] ?? name}@R0`,
    async run(ms) {
      const u0 = await g.usage();
      const r = await g.child.ask({ cmd: 'publish', streamId: rx ? 'ingest-rx' : 'ingest', ms, batch: INPROCESS_BATCH, chunkBytes: INGEST_CHUNK, fresh }, 'published', ms + 60_000);
      const u1 = await g.usage();
      return { chunks: rx ? u1.delivered - u0.delivered : r.chunks, seconds: r.seconds, errors: 0, latenciesMs: [], cpuUs: u1.us - u0.us };
    },
    close: async () => undefined,
  };
}

/**
 * The NATS client alone, in this process: 100 B publishes, 256 in flight (each awaited for
 * its ack), to a JetStream stream configured like the gateway's log stream of the same
 * deployment (limits, file storage, duplicate window, replicas). `noAsyncTraces`: the
 * connection option that spares each request its two stack-capturing errors (the client's
 * default captures them; the gateway's own publisher makes no request per message).
 */
export async function rawTarget(servers: string[], replicas: number, prefix: string, options: { noAsyncTraces?: boolean } = {}): Promise<IngestTarget> {
  const noTraces = options.noAsyncTraces === true;
  const nc: NatsConnection = await connect({ servers, noAsyncTraces: noTraces });
  const jsm = await jetstreamManager(nc);
  const js: JetStreamClient = jetstream(nc);
  const like = (await jsm.streams.info(`${prefix}_log_ingest`)).config;
  const name = `${prefix}_raw${noTraces ? '_nt' : ''}`;
  await jsm.streams.add({ ...like, name, subjects: [name], description: 'durable bench: raw publish' });
  const payload = new Uint8Array(INGEST_CHUNK).map((_, i) => i & 255);
  return {
    case: noTraces ? 'jetstream/raw-async-no-traces' : 'jetstream/raw-async',
    replicas,
    label: `${noTraces ? 'raw-async-no-traces' : 'raw-async'}@R${replicas}`,
    async run(ms) {
      let chunks = 0;
      let errors = 0;
      let firstError: string | undefined;
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const until = t0 + ms;
      await Promise.all(
        Array.from({ length: RAW_IN_FLIGHT }, async () => {
          while (performance.now() < until) {
            try {
              await js.publish(name, payload);
              chunks++;
            } catch (error) {
              errors++;
              firstError ??= String(error);
            }
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      return { chunks, seconds, errors, firstError, latenciesMs: [], cpuUs: cpu.user + cpu.system };
    },
    async close() {
      await jsm.streams.delete(name).catch(() => undefined);
      await nc.close();
    },
  };
}

const TSX = fileURLToPath(new URL('../../node_modules/tsx/dist/loader.mjs', import.meta.url));

/** A bench child process (run with tsx) and its IPC messages. */
export class Child<In extends object, Out extends { ev: string }> {
  readonly #proc: ChildProcess;
  private constructor(proc: ChildProcess) {
    this.#proc = proc;
  }
  static async start<In extends object, Out extends { ev: string }>(script: string, args: string[], execArgv: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<Child<In, Out>> {
    const proc = fork(fileURLToPath(new URL(script, import.meta.url)), args, { execArgv: [...execArgv, '--import', TSX], env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Child<In, Out>(proc);
  }
  send(m: In): void {
    this.#proc.send(m);
  }
  async ask<E extends Out['ev']>(m: In, ev: E, timeoutMs: number): Promise<Extract<Out, { ev: E }>> {
    const answer = this.next(ev, timeoutMs);
    this.send(m);
    return answer;
  }
  next<E extends Out['ev']>(ev: E, timeoutMs: number): Promise<Extract<Out, { ev: E }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#proc.off('message', on);
        reject(new Error(`${this.#proc.spawnargs.join(' ').slice(0, 120)} sent no ${ev} within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (m: Out): void => {
        if (m.ev !== ev) return;
        clearTimeout(timer);
        this.#proc.off('message', on);
        resolve(m as Extract<Out, { ev: E }>);
      };
      this.#proc.on('message', on);
    });
  }
  async stop(): Promise<void> {
    const exited = new Promise<void>((r) => (this.#proc.exitCode !== null ? r() : this.#proc.once('exit', () => r())));
    if (this.#proc.connected) this.#proc.disconnect();
    await Promise.race([exited, sleep(10_000)]);
    this.#proc.kill('SIGKILL');
  }
}
