import { isValidId, MirrorstreamError, TypedEmitter, type Clock } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config.js';
import type { FailoverPolicy } from '../failover/policy.js';
import { newEpoch } from '../storage/memory-log.js';
import {
  addEndpointSchema,
  parseInput,
  policySchema,
  reorderSchema,
  specFromInput,
  streamSpecInputSchema,
  type AddEndpointInput,
  type Listeners,
  type PolicyInput,
  type StreamSpec,
  type StreamSpecInput,
} from '../streams/spec.js';
import type { Stream } from '../streams/stream.js';
import type { StreamLog } from '../streams/stream-log.js';
import type { StreamControl } from '../streams/types.js';
import { andThen, type Backend, type BackendChange, type Maybe, type RestoredStream, type StoredStream } from '../storage/backend.js';
import { buildStream, retentionOf, toOverflow } from './build-stream.js';
import { EndpointDirectory } from './endpoint-directory.js';
import type { EventSink } from './events.js';
import { assertOpen, type Closing } from './lifecycle.js';
import { applySpec, SpecRevisions } from './stored-specs.js';
import { KeyedQueue } from './keyed-queue.js';
import { assertNoListenerConflict } from './listeners.js';
import { StreamMembers } from './stream-members.js';

export interface RegistryOptions {
  config: GatewayConfig;
  clock: Clock;
  log: Logger;
  policy: FailoverPolicy;
  backend: Backend;
  events: EventSink;
  closing: Closing;
  /** Whether the gateway may dial these listening endpoints (dialOut.allow): rejects with MS_DIAL_REFUSED. */
  checkListeners?: (listeners: Listeners) => Promise<void>;
}

/** What the registry tells the rest of the gateway (the scheduler follows each stream from `streamAdded` on). */
export type RegistryEvents = {
  /** A stream is here (created, restored or adopted): told before it first decides. */
  streamAdded: [Stream];
  /** A stream is gone from this gateway. */
  streamRemoved: [Stream];
  /** Another instance took a stream's lease, or this one did: an input of its policy the stream does not see. */
  ownerChanged: [Stream];
};

/**
 * The streams of a gateway and their CRUD, with the endpoint records (EndpointDirectory):
 * streams reach endpoints only through it.
 *
 * Every change returns a promise, which rejects on invalid input as on a storage error.
 *
 * A change is validated against the current state, stored by the backend, then applied.
 * With the memory backend all of it happens before the call returns; with a durable one
 * the change applies once stored, and changes of one stream run one after the other.
 */
export class Registry extends TypedEmitter<RegistryEvents> {
  readonly #o: RegistryOptions;
  readonly #records = new Map<string, StoredStream>();
  readonly #revisions = new SpecRevisions();
  readonly #specEndpoints = { ensure: (id: string) => void this.endpoints.ensure(id), forgetIfUnused: (id: string) => this.endpoints.forgetIfUnused(id) };
  readonly #streams = new Map<string, Stream>();
  readonly #members = new StreamMembers(() => this.#streams.values());
  /** Changes of one stream run one after the other (in-memory ones complete at once anyway). */
  readonly #queue = new KeyedQueue();
  /** Per stream id, with several instances: who decides its roles. */
  readonly #controls = new Map<string, StreamControl>();

  /** The endpoint records, and what the streams see of each endpoint. */
  readonly endpoints: EndpointDirectory;

  constructor(options: RegistryOptions) {
    super();
    this.#o = options;
    this.onListenerError = (err, event) => options.log.error({ err, event }, 'registry event listener threw');
    this.endpoints = new EndpointDirectory({ config: options.config, clock: options.clock, backend: options.backend, streamsOf: (id) => this.streamsOf(id) });
  }

  get streams(): IterableIterator<Stream> {
    return this.#streams.values();
  }

  get streamCount(): number {
    return this.#streams.size;
  }

  async createStream(input: StreamSpecInput): Promise<Stream> {
    assertOpen(this.#o.closing);
    const spec = specFromInput(parseInput(streamSpecInputSchema, input, 'stream spec'));
    const id = spec.stream_id;
    // awaited only with listeners: a memory-backed change otherwise completes before this returns
    const checked = this.#checkListeners(spec.listeners ?? {});
    if (checked) await checked;
    return this.#queue.run(id, () => {
      if (this.#streams.has(id)) throw new MirrorstreamError('MS_STREAM_EXISTS', `stream ${id} already exists`);
      assertNoListenerConflict(this.#records, spec.listeners ?? {}, id);
      const record: StoredStream = { spec, epoch: newEpoch(), createdAt: this.#o.clock.now() };
      const { backend } = this.#o;
      const limits = retentionOf(spec, this.#o.config.retention);
      return andThen(backend.createStream(record, limits), () => andThen(backend.openLog(record, limits), (log) => this.#withControl(record, log, {}, 'created')));
    });
  }

  /**
   * Bring back the streams a durable backend kept, then follow what other instances change
   * (at start, before serving). The watch starts before the load, so nothing changed in
   * between is missed; what came meanwhile is applied once restored.
   */
  async start(): Promise<void> {
    const { backend } = this.#o;
    const early: BackendChange[] = [];
    let live = false;
    await backend.watch?.((change) => (live ? this.applyRemote(change) : early.push(change)));
    await this.#restore(await backend.load());
    live = true;
    for (const change of early) this.applyRemote(change);
  }

  async #restore(restored: readonly RestoredStream[]): Promise<void> {
    for (const { stream: record, cursors } of restored) {
      const log = await this.#o.backend.openLog(record, retentionOf(record.spec, this.#o.config.retention));
      await this.#withControl(record, log, cursors, 'restored');
    }
  }

  /** Delete a stream: its endpoints get END, its retained chunks are dropped. */
  async deleteStream(streamId: string): Promise<void> {
    return this.#queue.run(streamId, () => {
      const stream = this.requireStream(streamId);
      return andThen(this.#o.backend.deleteStream(streamId), () => this.#dropLocal(stream.id));
    });
  }

  async addEndpoint(streamId: string, input: AddEndpointInput): Promise<Stream> {
    const { endpoint_id, priority, url, token } = parseInput(addEndpointSchema, input, 'endpoint');
    const listener: Listeners = url !== undefined && token !== undefined ? { [endpoint_id]: { url, token } } : {};
    const checked = this.#checkListeners(listener);
    if (checked) await checked;
    return this.#queue.run(streamId, () => this.#fresh(streamId, () => {
      const stream = this.requireStream(streamId);
      if (stream.cursor(endpoint_id)) {
        throw new MirrorstreamError('MS_ENDPOINT_EXISTS', `${endpoint_id} is already on stream ${streamId}`);
      }
      assertNoListenerConflict(this.#records, listener, streamId);
      const list = [...stream.endpointList];
      list.splice(priority === undefined ? list.length : Math.min(priority, list.length), 0, endpoint_id);
      const listeners = { ...this.#records.get(streamId)?.spec.listeners, ...listener };
      return this.#change(stream, { endpoint_list: list, ...(Object.keys(listeners).length > 0 ? { listeners } : {}) }, () => {
        this.endpoints.ensure(endpoint_id);
        stream.addEndpoint(endpoint_id, priority, this.#o.clock.now());
      });
    }));
  }

  async removeEndpoint(streamId: string, endpointId: string): Promise<Stream> {
    return this.#queue.run(streamId, () => this.#fresh(streamId, () => {
      const stream = this.requireStream(streamId);
      if (!stream.cursor(endpointId)) {
        throw new MirrorstreamError('MS_ENDPOINT_NOT_FOUND', `${endpointId} is not on stream ${streamId}`);
      }
      const listeners = { ...this.#records.get(streamId)?.spec.listeners };
      delete listeners[endpointId];
      return this.#change(stream, { endpoint_list: stream.endpointList.filter((id) => id !== endpointId), listeners: Object.keys(listeners).length > 0 ? listeners : undefined }, () => {
        stream.removeEndpoint(endpointId, this.#o.clock.now());
        this.endpoints.forgetIfUnused(endpointId);
      });
    }));
  }

  /** Reorder priorities; the list must hold exactly the stream's current endpoints. */
  async reorderEndpoints(streamId: string, endpointList: readonly string[]): Promise<Stream> {
    return this.#queue.run(streamId, () => this.#fresh(streamId, () => {
      const stream = this.requireStream(streamId);
      const { endpoint_list } = parseInput(reorderSchema, { endpoint_list: endpointList }, 'endpoint list');
      const current = new Set(stream.endpointList);
      if (endpoint_list.length !== current.size || !endpoint_list.every((id) => current.has(id))) {
        throw new MirrorstreamError(
          'MS_ENDPOINT_LIST_INVALID',
          'a reorder must list exactly the current endpoints; use POST/DELETE .../endpoints to add or remove',
        );
      }
      return this.#change(stream, { endpoint_list }, () => stream.reorder(endpoint_list, this.#o.clock.now()));
    }));
  }

  /** Change a stream's overflow policy while it runs. */
  async setPolicy(streamId: string, input: PolicyInput): Promise<Stream> {
    return this.#queue.run(streamId, () =>
      this.#fresh(streamId, () => {
        const stream = this.requireStream(streamId);
        const policy = parseInput(policySchema, input, 'policy');
        return this.#change(stream, { policy }, () => {
          stream.setOverflow(toOverflow(policy));
          this.#o.log.info({ stream: streamId, policy: stream.overflow }, 'overflow policy changed');
        });
      }),
    );
  }

  /**
   * What another instance changed (a shared backend): a stream created, changed or deleted
   * there, or a cursor moved. Applied in order with our own changes of the same stream;
   * what we changed ourselves comes back too, and applying it again changes nothing.
   */
  applyRemote(change: BackendChange): void {
    if (change.kind === 'endpoint') {
      // decided now, not at the next tick: a silent active endpoint elsewhere may need a hedge
      const now = this.#o.clock.now();
      for (const s of this.streamsOf(change.endpointId)) s.evaluate(now);
      return;
    }
    if (change.kind === 'cursor') {
      this.#streams.get(change.streamId)?.restoreCursor(change.endpointId, change.seq);
      return;
    }
    const id = change.kind === 'stream' ? change.stream.spec.stream_id : change.streamId;
    const done = this.#queue.run(id, () => {
      if (change.kind !== 'stream') return this.#dropLocal(id);
      // a change this instance has already seen (it read or wrote a newer one) must not take it back
      if (!this.#revisions.newer(id, change.revision)) return undefined;
      return this.#adopt(change.stream);
    });
    if (done instanceof Promise) {
      done.catch((error: unknown) => {
        this.#o.log.error({ stream: id, err: error }, 'a change from another instance could not be applied: trying again');
        this.#catchUp(id, 0);
      });
    }
  }

  /**
   * A change from another instance that could not be applied (the engine was electing, the
   * log did not appear in time) is not lost: the stream is brought to what is stored then, with
   * a back-off (0.5 s doubling to 8 s, 10 tries), unless something newer got there first.
   */
  #catchUp(streamId: string, attempt: number): void {
    const read = this.#o.backend.storedStream;
    if (!read || attempt >= 10) return;
    this.#o.clock.setTimeout(() => {
      const done = this.#queue.run(streamId, async () => {
        const stored = await read.call(this.#o.backend, streamId);
        if (!stored) return this.#dropLocal(streamId);
        const local = this.#streams.get(streamId);
        if (local?.epoch === stored.stream.epoch && !this.#revisions.newer(streamId, stored.revision)) return undefined;
        this.#revisions.newer(streamId, stored.revision);
        return this.#adopt(stored.stream);
      });
      void Promise.resolve(done).catch((error: unknown) => {
        this.#o.log.warn({ stream: streamId, err: error, attempt: attempt + 1 }, 'catching up with a stored stream failed');
        this.#catchUp(streamId, attempt + 1);
      });
    }, Math.min(8_000, 500 * 2 ** attempt));
  }

  /** MS_DIAL_REFUSED from the dial-out check (no check: nothing is dialed here, e.g. an embedder's gateway). */
  #checkListeners(listeners: Listeners): Promise<void> | undefined {
    return Object.keys(listeners).length > 0 ? this.#o.checkListeners?.(listeners) : undefined;
  }

  /** The stored record (spec and epoch) of a stream. */
  record(streamId: string): StoredStream | undefined {
    return this.#records.get(streamId);
  }

  /** The stream, or MS_STREAM_NOT_FOUND. */
  requireStream(streamId: string): Stream {
    const s = this.#streams.get(streamId);
    if (!s) throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `no stream ${JSON.stringify(streamId).slice(0, 140)}`);
    return s;
  }

  /** The stream under this id now, if any. */
  findStream(streamId: string): Stream | undefined {
    return this.#streams.get(streamId);
  }

  streamsOf(endpointId: string): readonly Stream[] {
    return this.#members.of(endpointId);
  }

  /** A stream as another instance stored it: new here, or changed there. */
  #adopt(record: StoredStream): Maybe<void> {
    const id = record.spec.stream_id;
    const stream = this.#streams.get(id);
    if (stream && stream.epoch === record.epoch) {
      applySpec(stream, record.spec, this.#specEndpoints, this.#o.clock.now());
      this.#records.set(id, record);
      return;
    }
    // another epoch: deleted and created again elsewhere
    if (stream) this.#dropLocal(id);
    const limits = retentionOf(record.spec, this.#o.config.retention);
    return andThen(this.#o.backend.openLog(record, limits, true), (log) => andThen(this.#withControl(record, log, {}, 'adopted'), () => undefined));
  }

  /** Forget a stream here (it was deleted elsewhere): its endpoints get END. */
  #dropLocal(streamId: string): void {
    const stream = this.#streams.get(streamId);
    if (!stream) return;
    stream.end('deleted');
    this.emit('streamRemoved', stream);
    this.#streams.delete(streamId);
    this.#members.invalidate();
    this.#records.delete(streamId);
    this.#revisions.forget(streamId);
    void this.#controls.get(streamId)?.close();
    this.#controls.delete(streamId);
    for (const id of stream.endpointList) this.endpoints.forgetIfUnused(id);
    this.#o.log.info({ stream: streamId }, 'stream deleted');
  }

  /** The instance deciding a stream's roles (null: its lease expired, a takeover is due). */
  ownerOf(streamId: string): string | null {
    const control = this.#controls.get(streamId);
    return control ? (control.owner ?? null) : this.#o.backend.instanceId;
  }

  /** Open the stream's control when several instances may serve it, then register it. */
  #withControl(record: StoredStream, log: StreamLog, cursors: Readonly<Record<string, number>>, how: 'created' | 'restored' | 'adopted'): Maybe<Stream> {
    const open = this.#o.backend.openControl;
    if (!open) return this.#register(record, log, cursors, how, undefined);
    return open.call(this.#o.backend, record.spec.stream_id).then((control) => this.#register(record, log, cursors, how, control));
  }

  /**
   * Run a change of a stored spec on the spec as stored now: with several instances, what
   * another one stored a moment ago may not have come through the watch yet (a client that
   * removes on one instance and adds on the next must not be told "already there").
   */
  #fresh<T>(streamId: string, op: () => Maybe<T>): Maybe<T> {
    const read = this.#o.backend.storedStream;
    if (!read || !this.#streams.has(streamId)) return op();
    return read.call(this.#o.backend, streamId).then(async (stored) => {
      if (!stored) this.#dropLocal(streamId);
      else if (this.#revisions.newer(streamId, stored.revision)) await this.#adopt(stored.stream);
      return op();
    });
  }

  /** Store the stream's changed spec, then apply the change to it. */
  #change(stream: Stream, patch: Partial<StreamSpec>, apply: () => void): Maybe<Stream> {
    const record = this.#records.get(stream.id);
    if (!record) throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `no stream ${stream.id}`);
    const next: StoredStream = { ...record, spec: { ...record.spec, ...patch } };
    return andThen(this.#o.backend.updateStream(next), (revision) => {
      if (typeof revision === 'number') this.#revisions.newer(stream.id, revision);
      this.#records.set(stream.id, next);
      apply();
      return stream;
    });
  }

  #register(record: StoredStream, log: StreamLog, cursors: Readonly<Record<string, number>>, how: 'created' | 'restored' | 'adopted', control: StreamControl | undefined): Stream {
    const { spec } = record;
    // a backend's epoch travels in ROLE and RESET, where receivers check it
    if (!isValidId(log.epoch)) throw new MirrorstreamError('MS_CONFIG_INVALID', `the stream log gave stream ${spec.stream_id} an invalid epoch id`);
    const { config, clock, log: logger, policy, events, backend } = this.#o;
    const stream = buildStream(spec, log, {
      config,
      clock,
      log: logger,
      policy,
      events,
      endpoint: (id) => this.endpoints.view(id),
      acked: (streamId, endpointId, seq) => backend.saveCursor(streamId, endpointId, seq),
      control,
    });
    stream.on('listChanged', () => this.#members.invalidate());
    if (control) {
      this.#controls.set(stream.id, control);
      control.onOwnerChange?.(() => this.emit('ownerChanged', stream));
    }
    this.emit('streamAdded', stream);
    this.#records.set(stream.id, record);
    this.#streams.set(stream.id, stream);
    this.#members.invalidate();
    for (const [endpointId, seq] of Object.entries(cursors)) stream.restoreCursor(endpointId, seq);
    const now = clock.now();
    for (const id of spec.endpoint_list) {
      if (this.endpoints.ensure(id).link) stream.endpointConnected(id, undefined, now);
    }
    stream.evaluate(now);
    logger.info({ stream: stream.id, mode: stream.mode, epoch: stream.epoch, endpoints: spec.endpoint_list, lastSeq: log.lastSeq }, `stream ${how}`);
    return stream;
  }
}
