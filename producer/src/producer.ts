import { randomUUID } from 'node:crypto';
import { MirrorstreamError, RealClock, TypedEmitter, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import { AdminClient } from './admin.js';
import { checkChunk, frameChunk, StreamQueue, type Batch, type Pending } from './batches.js';
import { Gateways } from './gateways.js';
import type { BatchAnswer, IngestLink } from './link.js';

export interface ProducerOptions {
  /** One gateway, or several instances of one deployment: a failed or draining one is left for the next. */
  gatewayUrl: string | readonly string[];
  apiKey: string;
  /** A batch holds at most this many chunks (default 1 000)… */
  maxBatchChunks?: number;
  /** …and this many payload bytes (default 512 KiB; one larger chunk goes alone). */
  maxBatchBytes?: number;
  /** How long a stream's first chunk waits for more before its batch goes (default 2 ms). */
  lingerMs?: number;
  /** Batches in flight at once, over every stream (default 64)… */
  maxInFlight?: number;
  /** …and of one stream (default 4; 1 with a gateway that does not take BATCH's `after`). */
  maxInFlightPerStream?: number;
  /** Chunks queued per stream before `publish` waits for room (default 10 000): backpressure. */
  maxQueuedChunks?: number;
  /** A batch unanswered this long counts its connection as broken: it is sent again elsewhere (default 10 s). */
  answerTimeoutMs?: number;
  /** Connecting to a gateway, up to its WELCOME (default 5 s). */
  connectTimeoutMs?: number;
  /** Between failed connects: initialMs doubling to maxMs, full jitter (default 100 ms … 2 s). */
  backoff?: { initialMs: number; maxMs: number };
  clock?: Clock;
  random?: () => number;
}

export interface ChunkOptions {
  /** Conflation key (1-256 characters). */
  key?: string;
  /** Quality layer, 0-15. */
  layer?: number;
}

export interface PublishInput extends ChunkOptions {
  payload: Uint8Array | string;
}

export interface BatchResult {
  stream_id: string;
  first_seq: number;
  last_seq: number;
  count: number;
}

/** What the producer tells about its connections (a CLI or a log shows them; nothing depends on them). */
export interface ProducerEvents {
  [event: string]: unknown[];
  /** A connection to `url` is up (its WELCOME arrived). */
  connected: [url: string];
  /** A connection attempt failed; the next URL is tried after a backoff. */
  connectFailed: [url: string, error: MirrorstreamError];
  /** The connection to `url` is gone, or the gateway there drains (GOAWAY); batches in flight go again elsewhere. */
  disconnected: [url: string, reason: string];
}

interface InFlight {
  batch: Batch;
  link: IngestLink;
  timer: TimerHandle;
}

/**
 * Publishes into a mirrorstream gateway over its streaming ingest. `publish` resolves with the
 * chunk's seq once the gateway (and, with JetStream, the engine) stored it, and rejects only
 * for a chunk that was not stored, with a coded MirrorstreamError (what the gateway refused:
 * a missing stream, a bad chunk, the API key). Chunks are batched per stream (by size and
 * linger), `maxInFlightPerStream` batches of a stream and `maxInFlight` in all in flight; every
 * batch has an idempotency key and is sent again with the same key, on the next gateway
 * instance, after a lost connection, an unanswered batch, a 503-class refusal or GOAWAY, so
 * nothing is stored twice and a stream's order holds across retries (batches.ts: StreamQueue).
 * It retries for as long as it is open.
 */
export class Producer extends TypedEmitter<ProducerEvents> {
  readonly #o: Required<Omit<ProducerOptions, 'gatewayUrl' | 'apiKey' | 'clock' | 'random' | 'backoff'>> & { backoff: { initialMs: number; maxMs: number } };
  readonly #clock: Clock;
  readonly #streams = new Map<string, StreamQueue>();
  /** Streams with a batch to send, in the order they became ready. */
  readonly #ready = new Set<StreamQueue>();
  readonly #inFlight = new Map<number, InFlight>();
  readonly #idleWaiters: (() => void)[] = [];
  readonly #gateways: Gateways;
  #nextId = 1;
  #flushing = 0;
  #closed = false;
  #fatal: MirrorstreamError | undefined;
  /** Stream and endpoint administration, tokens (HTTP, the API key). */
  readonly admin: AdminClient;
  /** Batches sent (first attempts), batches sent again, connections opened. */
  readonly stats = { batches: 0, retries: 0, connects: 0 };

  constructor(options: ProducerOptions) {
    super();
    const urls = typeof options.gatewayUrl === 'string' ? [options.gatewayUrl] : [...options.gatewayUrl];
    if (urls.length === 0 || urls.some((u) => !/^https?:\/\//.test(u))) throw new MirrorstreamError('MS_CONFIG_INVALID', 'gatewayUrl: one or more http(s) URLs');
    if (!options.apiKey) throw new MirrorstreamError('MS_CONFIG_INVALID', 'apiKey is required');
    this.#clock = options.clock ?? new RealClock();
    this.#o = {
      maxBatchChunks: options.maxBatchChunks ?? 1_000,
      maxBatchBytes: options.maxBatchBytes ?? 512 * 1024,
      lingerMs: options.lingerMs ?? 2,
      maxInFlight: options.maxInFlight ?? 64,
      maxInFlightPerStream: options.maxInFlightPerStream ?? 4,
      maxQueuedChunks: options.maxQueuedChunks ?? 10_000,
      answerTimeoutMs: options.answerTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      backoff: options.backoff ?? { initialMs: 100, maxMs: 2_000 },
    };
    this.admin = new AdminClient(urls, options.apiKey);
    const gateways = { urls, apiKey: options.apiKey, connectTimeoutMs: this.#o.connectTimeoutMs, backoff: this.#o.backoff, clock: this.#clock, random: options.random ?? Math.random };
    this.#gateways = new Gateways(gateways, {
      connected: (url) => {
        this.stats.connects++;
        this.emit('connected', url);
      },
      connectFailed: (url, error) => this.emit('connectFailed', url, error),
      unauthorized: (error) => this.#fail(error),
      up: () => this.#drain(),
      answer: (link, id, answer) => this.#answer(link, id, answer),
      goaway: (link, reason) => {
        if (this.#gateways.current(link)) this.emit('disconnected', link.url, `GOAWAY: ${reason}`);
        this.#gateways.leave(link);
        this.#drain();
      },
      closed: (link, error) => this.#lost(link, error),
    });
  }

  /** The gateway instance the producer sends to now (undefined while it connects). */
  get gatewayUrl(): string | undefined {
    return this.#gateways.url;
  }

  /**
   * Publish one chunk; resolves with its seq once stored. A stream's publish() promises settle in
   * the order they were published (each is settled by its batch's answer, nothing in between).
   */
  publish(streamId: string, payload: Uint8Array | string, options?: ChunkOptions): Promise<{ seq: number }> {
    try {
      this.#checkOpen(streamId);
      const key = options?.key;
      const layer = options?.layer;
      return this.#enqueue(this.#queueOf(streamId), payload, key, layer, checkChunk(payload, key, layer));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Publish chunks in order; resolves once all are stored (more than maxBatchChunks go in several batches, in order). */
  async publishBatch(streamId: string, chunks: readonly PublishInput[]): Promise<BatchResult> {
    this.#checkOpen(streamId);
    if (chunks.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'publishBatch: at least one chunk');
    const sizes = chunks.map((c) => checkChunk(c.payload, c.key, c.layer));
    const sq = this.#queueOf(streamId);
    const all = await Promise.all(chunks.map((c, i) => this.#enqueue(sq, c.payload, c.key, c.layer, sizes[i]!)));
    return { stream_id: streamId, first_seq: all[0]!.seq, last_seq: all.at(-1)!.seq, count: all.length };
  }

  #checkOpen(streamId: string): void {
    if (this.#closed) throw new MirrorstreamError('MS_TRANSPORT_CLOSED', 'the producer is closed');
    if (this.#fatal) throw this.#fatal;
    if (typeof streamId !== 'string' || streamId.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'streamId: a non-empty string');
  }

  /**
   * A chunk into its stream's queue; the promise is settled by its batch's answer, so a stream's
   * promises settle in the order they were made. A promise and one object per chunk, nothing
   * more (a feed calls this per tick). With the queue full, or others waiting for room, it
   * waits its turn: backpressure a caller can feel.
   */
  #enqueue(sq: StreamQueue, payload: Uint8Array | string, key: string | undefined, layer: number | undefined, bytes: number): Promise<{ seq: number }> {
    return new Promise((resolve, reject) => {
      const p: Pending = { payload, key, layer, bytes, resolve, reject };
      if (sq.roomWaiters.length > 0) sq.roomWaiters.push(() => this.#admit(sq, p));
      else this.#admit(sq, p);
    });
  }

  #admit(sq: StreamQueue, p: Pending): void {
    if (this.#fatal) return p.reject(this.#fatal);
    if (sq.queue.length >= this.#o.maxQueuedChunks) return void sq.roomWaiters.push(() => this.#admit(sq, p));
    sq.push(p);
    this.#schedule(sq);
  }

  #queueOf(streamId: string): StreamQueue {
    let sq = this.#streams.get(streamId);
    if (!sq) this.#streams.set(streamId, (sq = new StreamQueue(streamId)));
    return sq;
  }

  /** Send what is queued now (no linger) and wait until every chunk published so far is answered. */
  async flush(): Promise<void> {
    this.#flushing++;
    try {
      for (const sq of this.#streams.values()) this.#schedule(sq);
      await new Promise<void>((resolve) => {
        if (this.#allIdle()) return resolve();
        this.#idleWaiters.push(resolve);
      });
    } finally {
      this.#flushing--;
    }
  }

  /** Drain (every chunk published is answered), then close the connection. Publishing after it is refused. */
  async close(): Promise<void> {
    if (!this.#fatal) await this.flush();
    this.#closed = true;
    this.#gateways.close();
  }

  // ---- batching ----------------------------------------------------------------------

  /** A stream with chunks and room in flight: ready now (a full batch, a flush) or after the linger. */
  #schedule(sq: StreamQueue): void {
    if (sq.queue.length === 0 || sq.inFlight.length >= this.#o.maxInFlightPerStream) return;
    const full = sq.queue.length >= this.#o.maxBatchChunks || sq.queuedBytes >= this.#o.maxBatchBytes;
    if (full || this.#flushing > 0 || this.#o.lingerMs === 0) {
      this.#clock.clearTimeout(sq.lingerTimer as TimerHandle | undefined);
      sq.lingerTimer = undefined;
      this.#ready.add(sq);
      this.#drain();
      return;
    }
    sq.lingerTimer ??= this.#clock.setTimeout(() => {
      sq.lingerTimer = undefined;
      this.#ready.add(sq);
      this.#drain();
    }, this.#o.lingerMs);
  }

  /** Send the ready streams' batches while the window has room and a connection is up. */
  #drain(): void {
    if (this.#fatal) return;
    const link = this.#gateways.usable();
    if (!link) return;
    for (const sq of this.#ready) {
      if (this.#inFlight.size >= this.#o.maxInFlight) return;
      this.#ready.delete(sq);
      for (let batch = this.#nextBatch(sq, link); batch; batch = this.#inFlight.size < this.#o.maxInFlight ? this.#nextBatch(sq, link) : undefined) {
        this.#send(batch, sq, link);
      }
    }
  }

  /** The stream's next batch to send on `link` now: one not stored first, then a new one; none past the stream's room. */
  #nextBatch(sq: StreamQueue, link: IngestLink): Batch | undefined {
    const perStream = link.welcome.batch_after === true ? this.#o.maxInFlightPerStream : 1;
    // all of a stream's batches in flight are on one connection: the answers of another come first
    if (sq.inFlight.length >= perStream || (sq.inFlight.length > 0 && sq.inFlight[0]!.sentOn !== link)) return undefined;
    const next = sq.next;
    if (next === 'queue') return sq.seal(this.#o.maxBatchChunks, this.#o.maxBatchBytes, randomUUID());
    if (next !== 'again') return undefined;
    const wait = sq.againAt - this.#clock.now();
    if (wait <= 0) return sq.again.shift();
    sq.againTimer ??= this.#clock.setTimeout(() => {
      sq.againTimer = undefined;
      this.#ready.add(sq);
      this.#drain();
    }, wait);
    return undefined;
  }

  #send(batch: Batch, sq: StreamQueue, link: IngestLink): void {
    if (batch.attempts === 0) this.stats.batches++;
    else this.stats.retries++;
    batch.attempts++;
    batch.firstSentAt ??= this.#clock.now();
    const after = sq.inFlight.at(-1)?.id ?? null;
    batch.id = this.#nextId;
    batch.sentOn = link;
    this.#nextId = this.#nextId >= 2 ** 32 - 1 ? 1 : this.#nextId + 1;
    sq.inFlight.push(batch);
    const timer = this.#clock.setTimeout(() => {
      // unanswered: this connection is not working; its close sends what was in flight again
      if (this.#inFlight.get(batch.id)?.link === link) link.close();
    }, this.#o.answerTimeoutMs);
    this.#inFlight.set(batch.id, { batch, link, timer });
    link.send(batch.id, batch.streamId, batch.key, batch.items.map(frameChunk), after);
  }

  // ---- answers --------------------------------------------------------------------------

  #answer(link: IngestLink, id: number, answer: BatchAnswer): void {
    const entry = this.#inFlight.get(id);
    if (!entry || entry.link !== link) return;
    this.#inFlight.delete(id);
    this.#clock.clearTimeout(entry.timer);
    const { batch } = entry;
    const sq = this.#streams.get(batch.streamId);
    sq?.landed(batch);
    if (answer.ok) {
      for (let i = 0; i < batch.items.length; i++) batch.items[i]!.resolve({ seq: answer.firstSeq + i });
    } else if (answer.retryAfterMs === null) {
      // the gateway refused it as it is: not stored
      for (const p of batch.items) p.reject(answer.error);
    } else {
      // not stored this time (a draining instance, an outage, backpressure, one before it not
      // stored): the same batch, the same key, again, in its place
      if (answer.retryAfterMs === 0 && answer.error.code === 'MS_GATEWAY_CLOSED') this.#gateways.leave(link);
      sq?.sendAgain(batch, this.#clock.now() + answer.retryAfterMs);
    }
    if (sq) this.#landed(sq);
    this.#drain();
  }

  /** A batch of `sq` is out of flight: it may send more; an idle stream is forgotten. */
  #landed(sq: StreamQueue): void {
    if (sq.idle) this.#streams.delete(sq.streamId);
    // what came meanwhile goes at once: it has waited a round trip already
    else if (sq.next !== undefined) this.#ready.add(sq);
    if (this.#allIdle()) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #allIdle(): boolean {
    return this.#inFlight.size === 0 && [...this.#streams.values()].every((s) => s.idle);
  }

  /** The connection is gone: what was in flight there is sent again, same key, in its place, on the next one. */
  #lost(link: IngestLink, error: MirrorstreamError): void {
    if (this.#gateways.current(link) && !this.#closed) this.emit('disconnected', link.url, `${error.code}: ${error.message}`);
    this.#gateways.leave(link);
    const now = this.#clock.now();
    for (const [id, { batch, link: on, timer }] of this.#inFlight) {
      if (on !== link) continue;
      this.#inFlight.delete(id);
      this.#clock.clearTimeout(timer);
      const sq = this.#streams.get(batch.streamId);
      sq?.landed(batch);
      sq?.sendAgain(batch, now);
      if (sq) this.#ready.add(sq);
    }
    this.#drain();
  }

  /** Retrying cannot help (the API key): every chunk not yet stored is rejected with it. */
  #fail(error: MirrorstreamError): void {
    this.#fatal = error;
    const rejectAll = (items: Pending[]): void => items.forEach((p) => p.reject(error));
    for (const { batch, timer } of this.#inFlight.values()) {
      this.#clock.clearTimeout(timer);
      rejectAll(batch.items);
    }
    this.#inFlight.clear();
    for (const sq of this.#streams.values()) {
      rejectAll(sq.queue.splice(0));
      for (const b of sq.again.splice(0)) rejectAll(b.items);
      for (const wake of sq.roomWaiters.splice(0)) wake();
    }
    this.#streams.clear();
    this.#ready.clear();
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
