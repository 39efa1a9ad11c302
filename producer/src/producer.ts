import { randomUUID } from 'node:crypto';
import { MirrorstreamError, RealClock, TypedEmitter, type Clock, type IngestChunk, type TimerHandle } from '@mirrorstream/receiver/protocol';
import { AdminClient } from './admin.js';
import { StreamQueue, toEntry, type Batch, type Pending } from './batches.js';
import { IngestLink, type BatchAnswer, type LinkEvents } from './link.js';

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
  /** Batches in flight at once, over every stream (default 64; each stream has at most one). */
  maxInFlight?: number;
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
 * linger), at most one batch per stream in flight and `maxInFlight` in all; every batch has an
 * idempotency key and is sent again with the same key, on the next gateway instance, after a
 * lost connection, an unanswered batch, a 503-class refusal or GOAWAY, so nothing is stored
 * twice and a stream's order holds across retries. It retries for as long as it is open.
 */
export class Producer extends TypedEmitter<ProducerEvents> {
  readonly #o: Required<Omit<ProducerOptions, 'gatewayUrl' | 'apiKey' | 'clock' | 'random' | 'backoff'>> & { backoff: { initialMs: number; maxMs: number } };
  readonly #urls: readonly string[];
  readonly #apiKey: string;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #streams = new Map<string, StreamQueue>();
  /** Streams with a batch to send, in the order they became ready. */
  readonly #ready = new Set<StreamQueue>();
  /** Batches to send again once a connection is up. */
  readonly #resend: Batch[] = [];
  readonly #inFlight = new Map<number, InFlight>();
  readonly #idleWaiters: (() => void)[] = [];
  #link: IngestLink | undefined;
  #connecting = false;
  #urlIndex = 0;
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
    this.#urls = urls;
    this.#apiKey = options.apiKey;
    this.#clock = options.clock ?? new RealClock();
    this.#random = options.random ?? Math.random;
    this.#o = {
      maxBatchChunks: options.maxBatchChunks ?? 1_000,
      maxBatchBytes: options.maxBatchBytes ?? 512 * 1024,
      lingerMs: options.lingerMs ?? 2,
      maxInFlight: options.maxInFlight ?? 64,
      maxQueuedChunks: options.maxQueuedChunks ?? 10_000,
      answerTimeoutMs: options.answerTimeoutMs ?? 10_000,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      backoff: options.backoff ?? { initialMs: 100, maxMs: 2_000 },
    };
    this.admin = new AdminClient(urls, options.apiKey);
  }

  /** The gateway instance the producer sends to now (undefined while it connects). */
  get gatewayUrl(): string | undefined {
    return this.#link?.url;
  }

  /**
   * Publish one chunk; resolves with its seq once stored. A stream's publish() promises settle in
   * the order they were published (each is settled by its batch's answer, nothing in between).
   */
  publish(streamId: string, payload: Uint8Array | string, options: ChunkOptions = {}): Promise<{ seq: number }> {
    let entry: [IngestChunk, number];
    try {
      this.#checkOpen(streamId);
      entry = toEntry({ payload, key: options.key, layer: options.layer });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#enqueue(this.#queueOf(streamId), entry, (seq) => ({ seq }));
  }

  /** Publish chunks in order; resolves once all are stored (more than maxBatchChunks go in several batches, in order). */
  async publishBatch(streamId: string, chunks: readonly PublishInput[]): Promise<BatchResult> {
    this.#checkOpen(streamId);
    if (chunks.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'publishBatch: at least one chunk');
    const entries = chunks.map(toEntry);
    const sq = this.#queueOf(streamId);
    const all = await Promise.all(entries.map((entry) => this.#enqueue(sq, entry, (seq) => seq)));
    return { stream_id: streamId, first_seq: all[0]!, last_seq: all.at(-1)!, count: all.length };
  }

  #checkOpen(streamId: string): void {
    if (this.#closed) throw new MirrorstreamError('MS_TRANSPORT_CLOSED', 'the producer is closed');
    if (this.#fatal) throw this.#fatal;
    if (typeof streamId !== 'string' || streamId.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'streamId: a non-empty string');
  }

  /**
   * A chunk into its stream's queue; the promise is settled by its batch's answer, so a stream's
   * promises settle in the order they were made. One promise and no array per chunk (a feed
   * calls this per tick). With the queue full, or others waiting for room, it waits its turn:
   * backpressure a caller can feel.
   */
  #enqueue<T>(sq: StreamQueue, [chunk, bytes]: [IngestChunk, number], answer: (seq: number) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      const enqueue = (): void => {
        if (this.#fatal) return reject(this.#fatal);
        if (sq.queue.length >= this.#o.maxQueuedChunks) return void sq.roomWaiters.push(enqueue);
        sq.push({ chunk, bytes, resolve: (seq) => resolve(answer(seq)), reject });
        this.#schedule(sq);
      };
      if (sq.roomWaiters.length > 0) sq.roomWaiters.push(enqueue);
      else enqueue();
    });
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
    this.#link?.close();
    this.#link = undefined;
  }

  // ---- batching -------------------------------------------------------------------------

  /** A stream with chunks and nothing in flight: ready now (a full batch, a flush) or after the linger. */
  #schedule(sq: StreamQueue): void {
    if (sq.inFlight || sq.queue.length === 0) return;
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

  /** Send the ready streams' next batches while the window has room and a connection is up. */
  #drain(): void {
    const link = this.#usableLink();
    if (!link) return;
    for (const batch of this.#resend.splice(0)) this.#send(batch, link);
    for (const sq of this.#ready) {
      if (this.#inFlight.size >= this.#o.maxInFlight) return;
      this.#ready.delete(sq);
      if (sq.inFlight || sq.queue.length === 0) continue;
      const items = sq.take(this.#o.maxBatchChunks, this.#o.maxBatchBytes);
      const batch: Batch = { id: this.#nextId, streamId: sq.streamId, key: `${randomUUID()}`, items, firstSentAt: undefined, attempts: 0 };
      this.#nextId = this.#nextId >= 2 ** 32 - 1 ? 1 : this.#nextId + 1;
      sq.inFlight = batch;
      this.#send(batch, link);
    }
  }

  #send(batch: Batch, link: IngestLink): void {
    if (batch.attempts === 0) this.stats.batches++;
    else this.stats.retries++;
    batch.attempts++;
    batch.firstSentAt ??= this.#clock.now();
    const timer = this.#clock.setTimeout(() => {
      // unanswered: this connection is not working; its close sends what was in flight again
      if (this.#inFlight.get(batch.id)?.link === link) link.close();
    }, this.#o.answerTimeoutMs);
    this.#inFlight.set(batch.id, { batch, link, timer });
    link.send(batch.id, batch.streamId, batch.key, batch.items.map((p) => p.chunk));
  }

  // ---- answers --------------------------------------------------------------------------

  #answer(link: IngestLink, id: number, answer: BatchAnswer): void {
    const entry = this.#inFlight.get(id);
    if (!entry || entry.link !== link) return;
    this.#inFlight.delete(id);
    this.#clock.clearTimeout(entry.timer);
    const { batch } = entry;
    if (answer.ok) {
      batch.items.forEach((p, i) => p.resolve(answer.firstSeq + i));
      return this.#settled(batch);
    }
    if (answer.retryAfterMs === null) {
      // the gateway refused it as it is: not stored
      for (const p of batch.items) p.reject(answer.error);
      return this.#settled(batch);
    }
    // not stored this time (a draining instance, an outage, backpressure): the same batch, the same key, again
    if (answer.retryAfterMs === 0) this.#leave(link);
    this.#clock.setTimeout(() => this.#retry(batch), answer.retryAfterMs);
  }

  /** A batch is answered for good: its stream may send the next one. */
  #settled(batch: Batch): void {
    const sq = this.#streams.get(batch.streamId);
    if (sq?.inFlight === batch) {
      sq.inFlight = undefined;
      if (sq.queue.length > 0) {
        // the chunks that came meanwhile go at once: they have waited a round trip already
        this.#ready.add(sq);
      } else if (sq.idle) this.#streams.delete(sq.streamId);
    }
    this.#drain();
    if (this.#allIdle()) for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  #retry(batch: Batch): void {
    if (this.#fatal) return;
    const link = this.#usableLink();
    if (link) this.#send(batch, link);
    else this.#resend.push(batch);
  }

  #allIdle(): boolean {
    return this.#inFlight.size === 0 && this.#resend.length === 0 && [...this.#streams.values()].every((s) => s.idle);
  }

  // ---- connections ----------------------------------------------------------------------

  /** The connection to send on, or none yet (then one is being opened, and #drain runs when it is up). */
  #usableLink(): IngestLink | undefined {
    if (this.#link?.usable) return this.#link;
    this.#link = undefined;
    if (!this.#closed && !this.#fatal) void this.#connect();
    return undefined;
  }

  /** Stop sending new batches on `link` (GOAWAY, or a closing gateway): the next instance gets them. */
  #leave(link: IngestLink): void {
    if (this.#link === link) {
      this.#link = undefined;
      this.#urlIndex++;
    }
    this.#drain();
  }

  async #connect(): Promise<void> {
    if (this.#connecting) return;
    this.#connecting = true;
    try {
      for (let attempt = 0; !this.#closed; attempt++) {
        const url = this.#urls[this.#urlIndex % this.#urls.length]!;
        try {
          const link = await IngestLink.open(url, this.#apiKey, this.#o.connectTimeoutMs, this.#events());
          this.stats.connects++;
          if (this.#closed) link.close();
          else {
            this.#link = link;
            this.emit('connected', url);
          }
          break;
        } catch (error) {
          const e = error instanceof MirrorstreamError ? error : new MirrorstreamError('MS_TRANSPORT_CLOSED', String(error), { retryable: true });
          if (e.code === 'MS_UNAUTHORIZED') return this.#fail(e);
          this.emit('connectFailed', url, e);
          this.#urlIndex++;
          const { initialMs, maxMs } = this.#o.backoff;
          const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20));
          await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, initialMs / 2 + this.#random() * (ceiling - initialMs / 2)));
        }
      }
    } finally {
      this.#connecting = false;
    }
    this.#drain();
  }

  #events(): LinkEvents {
    return {
      answer: (link, id, answer) => this.#answer(link, id, answer),
      goaway: (link, reason) => {
        if (this.#link === link) this.emit('disconnected', link.url, `GOAWAY: ${reason}`);
        this.#leave(link);
      },
      closed: (link, error) => {
        if (this.#link === link && !this.#closed) this.emit('disconnected', link.url, `${error.code}: ${error.message}`);
        if (this.#link === link) {
          this.#link = undefined;
          this.#urlIndex++;
        }
        // what was in flight there is sent again, same key, on the next connection
        for (const [id, entry] of this.#inFlight) {
          if (entry.link !== link) continue;
          this.#inFlight.delete(id);
          this.#clock.clearTimeout(entry.timer);
          this.#retry(entry.batch);
        }
        this.#drain();
      },
    };
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
    for (const b of this.#resend.splice(0)) rejectAll(b.items);
    for (const sq of this.#streams.values()) {
      rejectAll(sq.queue.splice(0));
      if (sq.inFlight) rejectAll(sq.inFlight.items);
      for (const wake of sq.roomWaiters.splice(0)) wake();
    }
    this.#streams.clear();
    this.#ready.clear();
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }
}
