import { MirrorstreamError, type Clock } from '@mirrorstream/receiver/protocol';
import type { GatewayConfig } from '../config.js';
import { chunkOptionsSchema, parseInput, type ChunkInput, type ChunkOptions } from '../streams/spec.js';
import { assertOpen, type Closing } from './lifecycle.js';
import type { Stream } from '../streams/stream.js';
import type { Registry } from './registry.js';
import { backpressureTimeout, type AckWaiters } from './waiters.js';

const encoder = new TextEncoder();

export interface PublishResult {
  seq: number;
}

export interface PublishOptions {
  /** Backpressure: wait at most this long (default forever), then MS_BACKPRESSURE. */
  waitMs?: number | undefined;
  /**
   * The same key again within `idempotencyWindowMs` appends nothing that was already
   * appended (HTTP: the `Idempotency-Key` header); the answer names the seqs it got.
   */
  idempotencyKey?: string | undefined;
}

/** 1-128 visible ASCII characters (also the HTTP API's documented rule, http/routes.ts). */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,128}$/;

export interface BatchResult {
  stream_id: string;
  first_seq: number;
  last_seq: number;
  count: number;
}

/**
 * Publishing: a batch is validated whole before any chunk is sequenced, then appended to
 * the stream's log. On a `backpressure` stream a publish first waits while a slow
 * endpoint holds the stream back (at most `waitMs`, default forever; then MS_BACKPRESSURE).
 */
export class Ingest {
  readonly #config: GatewayConfig;
  readonly #clock: Clock;
  readonly #registry: Registry;
  readonly #waiters: AckWaiters;
  readonly #closing: Closing;

  constructor(opts: { config: GatewayConfig; clock: Clock; registry: Registry; waiters: AckWaiters; closing: Closing }) {
    this.#config = opts.config;
    this.#clock = opts.clock;
    this.#registry = opts.registry;
    this.#waiters = opts.waiters;
    this.#closing = opts.closing;
  }

  /** Append one chunk (text is sent as UTF-8); resolves with its seq once it is in the log. */
  async publish(streamId: string, payload: Uint8Array | string, options: ChunkOptions & PublishOptions = {}): Promise<PublishResult> {
    const { waitMs, idempotencyKey, ...chunk } = options;
    const bytes = typeof payload === 'string' ? encoder.encode(payload) : payload;
    return { seq: (await this.publishBatch(streamId, [{ payload: bytes, ...chunk }], { waitMs, idempotencyKey })).first_seq };
  }

  async publishBatch(streamId: string, chunks: readonly ChunkInput[], options: PublishOptions = {}): Promise<BatchResult> {
    assertOpen(this.#closing);
    const stream = this.#registry.requireStream(streamId);
    if (chunks.length === 0) throw new MirrorstreamError('MS_BAD_REQUEST', 'a batch needs at least one chunk');
    const key = options.idempotencyKey;
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw new MirrorstreamError('MS_BAD_REQUEST', 'an idempotency key is 1-128 visible ASCII characters');
    }
    for (const [i, c] of chunks.entries()) {
      if (!(c.payload instanceof Uint8Array)) throw new MirrorstreamError('MS_BAD_REQUEST', `chunk ${i}: payload must be bytes`);
      if (c.payload.byteLength > this.#config.maxChunkBytes) {
        throw new MirrorstreamError('MS_PAYLOAD_TOO_LARGE', `chunk ${i}: ${c.payload.byteLength} bytes > maxChunkBytes ${this.#config.maxChunkBytes}`);
      }
      // (most chunks have neither: nothing to check)
      if (c.key !== undefined || c.layer !== undefined) parseInput(chunkOptionsSchema, { key: c.key, layer: c.layer }, `chunk ${i} options`);
    }
    if (stream.overflow.overflow === 'backpressure' && overloaded(stream, this.#clock.now())) {
      const gone = (): boolean => this.#closing() || this.#registry.findStream(streamId) !== stream;
      const waitMs = options.waitMs;
      await this.#waiters.until(() => gone() || !overloaded(stream, this.#clock.now()), waitMs, () => backpressureTimeout(waitMs ?? 0));
      assertOpen(this.#closing);
      if (this.#registry.findStream(streamId) !== stream) {
        throw new MirrorstreamError('MS_STREAM_NOT_FOUND', `stream ${streamId} was deleted`);
      }
    }
    // with a key, a retry of the batch appends only what is missing
    const { firstSeq, lastSeq } = await stream.append(chunks, this.#clock.now(), key);
    return { stream_id: streamId, first_seq: firstSeq, last_seq: lastSeq, count: chunks.length };
  }

}

/**
 * Backpressure: true while an active, connected endpoint's oldest unacked chunk is older
 * than `maxBacklogMs`, or half the retention is unacked (so eviction never outruns it).
 */
function overloaded(stream: Stream, now: number): boolean {
  const { maxBacklogMs } = stream.overflow;
  for (const id of stream.active) {
    const c = stream.cursor(id);
    if (!c || !stream.isConnected(id)) continue;
    const oldest = stream.log.get(c.lastAcked + 1);
    if (oldest && now - oldest.timestamp > maxBacklogMs) return true;
    if (stream.log.lastSeq - c.lastAcked > stream.retention.maxChunks / 2) return true;
  }
  return false;
}
