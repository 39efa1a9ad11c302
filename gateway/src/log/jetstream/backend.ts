import { MirrorstreamError, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { NatsConfig, RetentionConfig } from '../../config.js';
import { streamSpecSchema } from '../../streams/spec.js';
import type { StreamControl } from '../../streams/types.js';
import { newInstanceId, type Backend, type BackendChange, type RestoredStream, type StoredStream } from '../backend.js';
import { JetStreamControl } from './control.js';
import { FORGET_RECORD_MS, JetStreamEndpointBoard } from './endpoint-board.js';
import { apiErrorCode, logUnavailable, WRONG_LAST_SEQUENCE } from './errors.js';
import { JetStreamLog, type JetStreamContext } from './jetstream-log.js';
import { escapeId, natsNames, unescapeId } from './names.js';

/** Cursor writes are batched: at most one KV put per cursor per this long. */
const CURSOR_FLUSH_MS = 200;
/** How long an instance waits for the log of a stream another instance is creating. */
const ADOPT_WAIT_MS = 5_000;

/**
 * The durable backend on NATS JetStream. Specs (with their epochs) live in the KV bucket
 * `<prefix>_streams`, cursors in `<prefix>_cursors`, and each stream's chunks in a
 * JetStream stream of its own (JetStreamLog). Every answer comes after NATS answered; a
 * NATS outage is MS_LOG_UNAVAILABLE (retryable). The NATS client reconnects by itself.
 */
/** How long a readiness answer from JetStream is reused. */
const READY_CHECK_TTL_MS = 1_000;

export class JetStreamBackend implements Backend {
  readonly kind = 'jetstream';
  readonly #config: NatsConfig;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #names;
  #nc: NatsConnection | undefined;
  #ctx: JetStreamContext | undefined;
  #specs: KV | undefined;
  #cursors: KV | undefined;
  /** This process among the instances sharing the NATS deployment. */
  readonly instanceId = newInstanceId();
  endpoints: JetStreamEndpointBoard | undefined;
  readonly #logs = new Map<string, JetStreamLog>();
  readonly #controls = new Set<JetStreamControl>();
  /** Cursors acked since the last flush, and what was last written per cursor. */
  readonly #dirty = new Map<string, number>();
  readonly #written = new Map<string, number>();
  #flushTimer: TimerHandle | undefined;
  #flushing: Promise<void> = Promise.resolve();
  /** NATS connection state from the client's status events (it reconnects by itself). */
  #connected = false;
  /** The last JetStream round trip for readiness, reused for a second so probes do not hammer NATS. */
  #checked: { at: number; ok: boolean } | undefined;
  #checking: Promise<boolean> | undefined;

  readonly #idempotencyWindowMs: number;

  constructor(config: NatsConfig, idempotencyWindowMs: number, clock: Clock, log: Logger) {
    this.#config = config;
    this.#idempotencyWindowMs = idempotencyWindowMs;
    this.#clock = clock;
    this.#log = log.child({ module: 'jetstream' });
    this.#names = natsNames(config.prefix);
  }

  async start(): Promise<void> {
    if (this.#specs && this.#cursors) return;
    const nc = this.#nc ?? (this.#nc = await this.#connect());
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const { Kvm } = await import('@nats-io/kv');
    const { requestTimeoutMs: timeout, replicas } = this.#config;
    try {
      const jsm = await jetstreamManager(nc, { timeout });
      this.#ctx = { js: jetstream(nc, { timeout }), jsm, names: this.#names, replicas, idempotencyWindowMs: this.#idempotencyWindowMs, log: this.#log };
      const kvm = new Kvm(nc);
      this.#specs = await kvm.create(this.#names.streamsBucket, { history: 1, replicas });
      this.#cursors = await kvm.create(this.#names.cursorsBucket, { history: 1, replicas });
      // records of instances that died stay until they age out
      const board = await kvm.create(this.#names.endpointsBucket, { history: 1, replicas, ttl: FORGET_RECORD_MS });
      const endpoints = new JetStreamEndpointBoard(board, this.instanceId, this.#clock, this.#log);
      await endpoints.watch();
      this.endpoints = endpoints;
    } catch (error) {
      // JetStream may still be electing its leaders: the caller retries start()
      throw logUnavailable('opening JetStream and the KV buckets', error);
    }
  }

  /** Connect to NATS (loaded here, so a gateway on the memory log never loads the client); it reconnects by itself. */
  async #connect(): Promise<NatsConnection> {
    const { connect } = await import('@nats-io/transport-node');
    const { servers, requestTimeoutMs: timeout } = this.#config;
    this.#log.info({ servers }, 'connecting to NATS');
    const nc = await connect({ servers, name: 'mirrorstream-gateway', timeout, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true });
    this.#connected = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type !== 'disconnect' && s.type !== 'reconnect') continue;
        this.#connected = s.type === 'reconnect';
        this.#checked = undefined;
        this.#log.warn({ status: s.type }, `NATS ${s.type}`);
      }
    })();
    return nc;
  }

  async load(): Promise<RestoredStream[]> {
    const specs = this.#kv('specs');
    const out: RestoredStream[] = [];
    try {
      for await (const key of await specs.keys()) {
        const entry = await specs.get(key);
        if (!entry || entry.operation !== 'PUT') continue;
        const stream = parseRecord(entry.string());
        if (!stream) {
          this.#log.error({ key }, 'stream record in KV is not valid: left alone');
          continue;
        }
        out.push({ stream, cursors: await this.#loadCursors(stream.spec.stream_id) });
      }
    } catch (error) {
      throw logUnavailable('loading the stored streams', error);
    }
    return out;
  }

  async createStream(stream: StoredStream, limits: RetentionConfig): Promise<void> {
    const id = stream.spec.stream_id;
    try {
      // KV create is safe against a concurrent creator (also on nats-server 2.9 at R3)
      await this.#kv('specs').create(escapeId(id), JSON.stringify(stream));
    } catch (error) {
      if (apiErrorCode(error) === WRONG_LAST_SEQUENCE) throw new MirrorstreamError('MS_STREAM_EXISTS', `stream ${id} already exists`);
      throw logUnavailable(`storing stream ${id}`, error);
    }
    // the id is ours now: a JetStream stream left under it by an earlier deleted stream goes
    this.#logs.set(id, await JetStreamLog.create(this.#context(), id, limits, stream.epoch));
  }

  async updateStream(stream: StoredStream): Promise<number> {
    try {
      return await this.#kv('specs').put(escapeId(stream.spec.stream_id), JSON.stringify(stream));
    } catch (error) {
      throw logUnavailable(`storing stream ${stream.spec.stream_id}`, error);
    }
  }

  async storedStream(streamId: string): Promise<{ stream: StoredStream; revision: number } | undefined> {
    let entry;
    try {
      entry = await this.#kv('specs').get(escapeId(streamId));
    } catch (error) {
      throw logUnavailable(`reading stream ${streamId}`, error);
    }
    const stream = entry && entry.operation === 'PUT' ? parseRecord(entry.string()) : undefined;
    return stream && entry ? { stream, revision: entry.revision } : undefined;
  }

  async deleteStream(streamId: string): Promise<void> {
    try {
      await this.#kv('specs').delete(escapeId(streamId));
      await this.#logs.get(streamId)?.destroy();
      this.#logs.delete(streamId);
      await JetStreamControl.destroy(this.#context(), streamId);
      const cursors = this.#kv('cursors');
      for await (const key of await cursors.keys(`${escapeId(streamId)}.>`)) await cursors.purge(key);
    } catch (error) {
      throw logUnavailable(`deleting stream ${streamId}`, error);
    }
  }

  async openLog(stream: StoredStream, limits: RetentionConfig, adopt = false): Promise<JetStreamLog> {
    const id = stream.spec.stream_id;
    const ctx = this.#context();
    const log = this.#logs.get(id) ?? (adopt ? await JetStreamLog.adopt(ctx, id, limits, stream.epoch, ADOPT_WAIT_MS) : await JetStreamLog.open(ctx, id, limits, stream.epoch));
    this.#logs.set(id, log);
    return log;
  }

  async openControl(streamId: string): Promise<StreamControl> {
    const { leaseMs } = this.#config;
    const control = await JetStreamControl.open(this.#context(), streamId, this.instanceId, this.#clock, { leaseMs, marginMs: Math.floor(leaseMs / 8) });
    for (const c of this.#controls) if (c.closed) this.#controls.delete(c);
    this.#controls.add(control);
    return control;
  }

  saveCursor(streamId: string, endpointId: string, seq: number): void {
    const key = this.#names.cursorKey(streamId, endpointId);
    if (seq <= (this.#dirty.get(key) ?? this.#written.get(key) ?? 0)) return;
    this.#dirty.set(key, seq);
    this.#flushTimer ??= this.#clock.setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushing = this.#flushing.then(() => this.#flushCursors());
    }, CURSOR_FLUSH_MS);
  }

  async watch(listener: (change: BackendChange) => void): Promise<void> {
    const { KvWatchInclude } = await import('@nats-io/kv');
    const specs = await this.#kv('specs').watch({ include: KvWatchInclude.UpdatesOnly });
    const cursors = await this.#kv('cursors').watch({ include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of specs) {
        const streamId = unescapeId(e.key);
        if (e.operation !== 'PUT') {
          // deleted elsewhere: its log here is stale
          await this.#logs.get(streamId)?.stop();
          this.#logs.delete(streamId);
          listener({ kind: 'stream-deleted', streamId });
          continue;
        }
        const stream = parseRecord(e.string());
        if (stream) listener({ kind: 'stream', stream, revision: e.revision });
        else this.#log.error({ key: e.key }, 'stream record in KV is not valid: left alone');
      }
    })();
    void (async () => {
      for await (const e of cursors) {
        const dot = e.key.indexOf('.');
        const seq = Number(e.string());
        if (e.operation !== 'PUT' || dot < 0 || !Number.isSafeInteger(seq) || seq < 0) continue;
        listener({ kind: 'cursor', streamId: unescapeId(e.key.slice(0, dot)), endpointId: unescapeId(e.key.slice(dot + 1)), seq });
      }
    })();
    if (this.endpoints) this.endpoints.onChange = (endpointId) => listener({ kind: 'endpoint', endpointId });
  }

  available(): Promise<boolean> {
    const ctx = this.#ctx;
    if (!ctx || !this.#nc || this.#nc.isClosed() || !this.#connected) return Promise.resolve(false);
    if (this.#checked && this.#clock.now() - this.#checked.at < READY_CHECK_TTL_MS) return Promise.resolve(this.#checked.ok);
    this.#checking ??= ctx.jsm
      .getAccountInfo()
      .then(
        () => true,
        () => false,
      )
      .then((ok) => {
        this.#checked = { at: this.#clock.now(), ok };
        this.#checking = undefined;
        return ok;
      });
    return this.#checking;
  }

  async close(): Promise<void> {
    this.endpoints?.close();
    this.#clock.clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#flushing;
    await this.#flushCursors();
    // an owner going away hands its leases back, so another instance decides at once
    await Promise.all([...this.#controls].map((c) => c.close()));
    await Promise.all([...this.#logs.values()].map((l) => l.stop()));
    const nc = this.#nc;
    this.#nc = undefined;
    await nc?.drain().catch(() => undefined);
  }

  /** The JetStream context, or MS_LOG_UNAVAILABLE before start. */
  #context(): JetStreamContext {
    if (!this.#ctx) throw new MirrorstreamError('MS_LOG_UNAVAILABLE', 'the JetStream backend is not started', { retryable: true });
    return this.#ctx;
  }

  #kv(which: 'specs' | 'cursors'): KV {
    const kv = which === 'specs' ? this.#specs : this.#cursors;
    if (!kv) throw new MirrorstreamError('MS_LOG_UNAVAILABLE', 'the JetStream backend is not started', { retryable: true });
    return kv;
  }

  async #loadCursors(streamId: string): Promise<Record<string, number>> {
    const cursors = this.#kv('cursors');
    const out: Record<string, number> = {};
    const prefix = `${escapeId(streamId)}.`;
    for await (const key of await cursors.keys(`${prefix}>`)) {
      const entry = await cursors.get(key);
      const seq = Number(entry?.string());
      if (entry?.operation !== 'PUT' || !Number.isSafeInteger(seq) || seq < 0) continue;
      const endpointId = unescapeId(key.slice(prefix.length));
      out[endpointId] = seq;
      this.#written.set(key, seq);
    }
    return out;
  }

  async #flushCursors(): Promise<void> {
    if (this.#dirty.size === 0 || !this.#cursors) return;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    const cursors = this.#cursors;
    await Promise.all(
      batch.map(async ([key, seq]) => {
        try {
          await cursors.put(key, String(seq));
          this.#written.set(key, Math.max(seq, this.#written.get(key) ?? 0));
        } catch (error) {
          // kept for the next flush: a cursor only matters to resume, and HELLO carries it too
          if (seq > (this.#dirty.get(key) ?? 0)) this.#dirty.set(key, seq);
          this.#log.warn({ key, err: error }, 'cursor not stored; retrying with the next flush');
        }
      }),
    );
  }
}

/** A stored record, checked: a bad one is skipped, never half-loaded. */
function parseRecord(text: string): StoredStream | undefined {
  try {
    const raw = JSON.parse(text) as { spec?: unknown; epoch?: unknown; createdAt?: unknown };
    const spec = streamSpecSchema.safeParse(raw.spec);
    if (!spec.success || typeof raw.epoch !== 'string' || typeof raw.createdAt !== 'number') return undefined;
    return { spec: spec.data, epoch: raw.epoch, createdAt: raw.createdAt };
  } catch {
    return undefined;
  }
}
