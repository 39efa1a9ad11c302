import { MirrorstreamError, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV } from '@nats-io/kv';
import type { Logger } from 'pino';
import type { NatsConfig, RetentionConfig } from '../../config.js';
import type { JsMsg } from '@nats-io/jetstream';
import type { StreamControl } from '../../streams/types.js';
import { newInstanceId, type Backend, type BackendChange, type RestoredStream, type StoredStream } from '../backend.js';
import { JetStreamControl } from './control.js';
import { FORGET_RECORD_MS, JetStreamEndpointBoard } from './endpoint-board.js';
import { apiErrorCode, logUnavailable, WRONG_LAST_SEQUENCE } from './errors.js';
import { followBucket, kvChange, type KvChange } from './follow-stream.js';
import { Followers } from './follower.js';
import { JetStreamLog, type JetStreamContext } from './jetstream-log.js';
import { escapeId, natsNames, unescapeId } from './names.js';
import { CursorStore } from './cursor-store.js';
import { Presence } from './presence.js';
import { JetStreamPublisher } from './publisher.js';
import { parseCursor, parseStoredStream } from './records.js';

/** A follower's open (consumer create) waits this long for JetStream, then is retried. */
const OPEN_TIMEOUT_MS = 1_000;
/** Not hearing our own presence this long while connected: reconnect (the server is wedged or cut off). */
const SELF_SILENT_RECONNECT_MS = 1_500;
const SELF_CHECK_MS = 250;
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
  /** Which instances are alive (a heartbeat on core NATS): a dead one is taken over in hundreds of ms. */
  #presence: Presence | undefined;
  #selfCheck: TimerHandle | undefined;
  #reconnecting = false;
  readonly #logs = new Map<string, JetStreamLog>();
  /** Every subscription to the engine (logs, controls, KV watches), supervised alike. */
  readonly followers: Followers;
  readonly #controls = new Set<JetStreamControl>();
  #cursorStore: CursorStore | undefined;
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
    this.followers = new Followers(clock, this.#log);
    // a follower stopped or resumed: streams whose view is stale stop deciding (or start again)
    this.followers.onChange = () => {
      this.#checked = undefined;
      for (const c of this.#controls) c.recheck();
    };
  }

  async start(): Promise<void> {
    if (this.#specs && this.#cursors) return;
    const nc = this.#nc ?? (this.#nc = await this.#connect());
    const { jetstream, jetstreamManager } = await import('@nats-io/jetstream');
    const { Kvm } = await import('@nats-io/kv');
    const { requestTimeoutMs: timeout, replicas } = this.#config;
    try {
      const jsm = await jetstreamManager(nc, { timeout });
      const js = jetstream(nc, { timeout });
      const publisher = this.#ctx?.publisher ?? new JetStreamPublisher(nc, this.#clock, { timeoutMs: timeout });
      const followJs = jetstream(nc, { timeout: Math.min(timeout, OPEN_TIMEOUT_MS) });
      this.#ctx = { js, jsm, names: this.#names, replicas, idempotencyWindowMs: this.#idempotencyWindowMs, log: this.#log, clock: this.#clock, followers: this.followers, publisher, followJs };
      const kvm = new Kvm(nc);
      this.#specs = await kvm.create(this.#names.streamsBucket, { history: 1, replicas });
      this.#cursors = await kvm.create(this.#names.cursorsBucket, { history: 1, replicas });
      this.#cursorStore = new CursorStore(this.#cursors, this.#clock, this.#log);
      // records of instances that died stay until they age out
      const board = await kvm.create(this.#names.endpointsBucket, { history: 1, replicas, ttl: FORGET_RECORD_MS });
      const presence = (this.#presence ??= this.#startPresence(nc));
      const endpoints = new JetStreamEndpointBoard(board, this.instanceId, this.#clock, this.#log, presence);
      await this.#followBucket(this.#names.endpointsBucket, 'current', (change) => endpoints.take(change));
      this.endpoints = endpoints;
    } catch (error) {
      // JetStream may still be electing its leaders: the caller retries start()
      throw logUnavailable('opening JetStream and the KV buckets', error);
    }
  }

  #startPresence(nc: NatsConnection): Presence {
    const presence = new Presence(
      {
        publish: (subject) => nc.publish(subject),
        subscribe: (subject, onMessage) =>
          nc.subscribe(subject, {
            callback: (error, msg) => {
              if (!error) onMessage(msg.subject);
            },
          }),
      },
      this.#config.prefix,
      this.instanceId,
      this.#clock,
      this.#log,
      this.#config.presence,
    );
    // an instance gone or back: claim its leases now (or stop claiming); streams re-decide
    presence.onChange(() => {
      for (const c of this.#controls) c.recheck();
    });
    this.#selfCheck = this.#clock.setInterval(() => this.#checkSelf(nc, presence), SELF_CHECK_MS);
    return presence;
  }

  /**
   * The client says connected but this instance has not heard its own presence for a while:
   * the server it is connected to is wedged or cut off from the cluster. Reconnect (to another
   * server of the list) rather than wait for pings to time out.
   */
  #checkSelf(nc: NatsConnection, presence: Presence): void {
    if (!this.#connected || nc.isClosed() || this.#reconnecting) return;
    const silentMs = presence.selfSilentMs;
    if (silentMs < SELF_SILENT_RECONNECT_MS) return;
    this.#log.warn({ silentMs }, 'not hearing our own presence on NATS: reconnecting');
    this.#reconnecting = true;
    nc.reconnect()
      .catch((error: unknown) => this.#log.warn({ err: error }, 'NATS reconnect failed'))
      .finally(() => (this.#reconnecting = false));
  }

  /** Connect to NATS (loaded here, so a gateway on the memory log never loads the client); it reconnects by itself. */
  async #connect(): Promise<NatsConnection> {
    const { connect } = await import('@nats-io/transport-node');
    const { servers, requestTimeoutMs: timeout } = this.#config;
    this.#log.info({ servers }, 'connecting to NATS');
    // a server that dies without closing its sockets is noticed by pings within about 4 s, and
    // sooner by presence (see #checkSelf)
    const nc = await connect({ servers, name: 'mirrorstream-gateway', timeout, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true, pingInterval: 2_000, maxPingOut: 2 });
    this.#connected = true;
    void this.#watchConnection(nc);
    return nc;
  }

  /** The client's status events: readiness follows the connection; after a reconnect every subscription is recreated. */
  async #watchConnection(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (s.type !== 'disconnect' && s.type !== 'reconnect') continue;
        this.#connected = s.type === 'reconnect';
        this.#checked = undefined;
        // the client checks each consumer after a reconnect: one that lived on the server we lost
        // ends its subscription (consumer not found), and its follower recreates it
        this.#log.warn({ status: s.type }, `NATS ${s.type}`);
      }
    } catch (error) {
      // the iterator ends with the connection; anything else is a bug worth seeing, not a crash
      this.#log.error({ err: error }, 'NATS status events stopped');
    }
  }

  async load(): Promise<RestoredStream[]> {
    const specs = this.#kv('specs');
    const out: RestoredStream[] = [];
    try {
      for await (const key of await specs.keys()) {
        const entry = await specs.get(key);
        if (!entry || entry.operation !== 'PUT') continue;
        const stream = parseStoredStream(entry.string());
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
    const stream = entry && entry.operation === 'PUT' ? parseStoredStream(entry.string()) : undefined;
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
    const cached = this.#logs.get(id);
    // a log of another epoch is one whose deletion this instance did not see: not this stream's
    if (cached && cached.epoch !== stream.epoch) cached.stop();
    const log =
      cached?.epoch === stream.epoch ? cached : adopt ? await JetStreamLog.adopt(ctx, id, limits, stream.epoch, ADOPT_WAIT_MS) : await JetStreamLog.open(ctx, id, limits, stream.epoch);
    this.#logs.set(id, log);
    return log;
  }

  async openControl(streamId: string): Promise<StreamControl> {
    const { leaseMs } = this.#config;
    // a stream is decided here only while this instance follows its log and the shared views
    // a stream is decided here only while this instance hears itself on NATS, has listened long
    // enough to know who else is alive, and follows the stream's log and the endpoint board
    const presence = this.#presence;
    const views = [`log:${streamId}`, `kv:${this.#names.endpointsBucket}`];
    const canDecide = (): boolean => presence !== undefined && presence.settled && presence.connected && !this.followers.stale.some((name) => views.includes(name));
    const holderGone = (instance: string): boolean => presence?.state(instance) === 'gone';
    const control = await JetStreamControl.open(this.#context(), streamId, this.instanceId, this.#clock, { leaseMs, marginMs: Math.floor(leaseMs / 8) }, canDecide, holderGone);
    for (const c of this.#controls) if (c.closed) this.#controls.delete(c);
    this.#controls.add(control);
    return control;
  }

  saveCursor(streamId: string, endpointId: string, seq: number): void {
    this.#cursorStore?.save(this.#names.cursorKey(streamId, endpointId), seq);
  }

  /**
   * Follow what the other instances change in the specs and cursors buckets, from now on
   * (the registry loads what is there after this starts). Supervised like every follower.
   */
  async watch(listener: (change: BackendChange) => void): Promise<void> {
    await this.#followBucket(this.#names.streamsBucket, 'updates', ({ key, operation, value, revision }) => {
      const streamId = unescapeId(key);
      if (operation !== 'PUT') {
        // deleted elsewhere: its log here is stale
        this.#logs.get(streamId)?.stop();
        this.#logs.delete(streamId);
        listener({ kind: 'stream-deleted', streamId });
        return;
      }
      const stream = parseStoredStream(value);
      if (stream) listener({ kind: 'stream', stream, revision });
      else this.#log.error({ key }, 'stream record in KV is not valid: left alone');
    });
    await this.#followBucket(this.#names.cursorsBucket, 'updates', ({ key, operation, value }) => {
      const dot = key.indexOf('.');
      const seq = operation === 'PUT' ? parseCursor(value) : undefined;
      if (dot < 0 || seq === undefined) return;
      this.#cursorStore?.observe(key, seq);
      listener({ kind: 'cursor', streamId: unescapeId(key.slice(0, dot)), endpointId: unescapeId(key.slice(dot + 1)), seq });
    });
    if (this.endpoints) this.endpoints.onChange = (endpointId) => listener({ kind: 'endpoint', endpointId });
  }

  /**
   * Follow a KV bucket, supervised like every follower: `current` brings every key's value
   * first, `updates` only what changes from now on.
   */
  async #followBucket(bucket: string, from: 'current' | 'updates', take: (change: KvChange) => void): Promise<void> {
    const ctx = this.#context();
    let position = 0;
    try {
      if (from === 'updates') position = (await ctx.jsm.streams.info(`KV_${bucket}`)).state.last_seq;
    } catch (error) {
      throw logUnavailable(`following ${bucket}`, error);
    }
    const follower = this.followers.follow<JsMsg>({
      name: `kv:${bucket}`,
      open: followBucket(ctx.followJs, bucket, from === 'current'),
      position: () => position,
      apply: (seq, m) => {
        position = seq;
        const change = kvChange(bucket, m);
        if (change) take(change);
      },
    });
    try {
      await follower.start();
    } catch (error) {
      this.followers.drop(follower);
      throw logUnavailable(`following ${bucket}`, error);
    }
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
    await this.#cursorStore?.close();
    // an owner going away hands its leases back, so another instance decides at once
    await Promise.all([...this.#controls].map((c) => c.close()));
    this.endpoints?.close();
    this.#clock.clearInterval(this.#selfCheck);
    this.#presence?.close();
    for (const l of this.#logs.values()) l.stop();
    this.followers.closeAll();
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
    const stored = await this.#cursorStore?.load(`${escapeId(streamId)}.`);
    return Object.fromEntries([...(stored ?? [])].map(([endpoint, seq]) => [unescapeId(endpoint), seq]));
  }
}
