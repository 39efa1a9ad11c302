import { MirrorstreamError, type IngestChunk } from '@mirrorstream/receiver/protocol';
import type { IngestLink } from './link.js';

/** One chunk waiting to be batched, and how its publish promise settles (one object per chunk: a feed publishes per tick). */
export interface Pending {
  payload: Uint8Array | string;
  key: string | undefined;
  layer: number | undefined;
  bytes: number;
  resolve(result: { seq: number }): void;
  reject(error: unknown): void;
}

/** A sealed batch: sent, and on a failure sent again with the same idempotency key. */
export interface Batch {
  /** This send's id on its connection (a new one each time the batch is sent). */
  id: number;
  streamId: string;
  key: string;
  /** Its place in the stream: batches not stored go again in this order. */
  order: number;
  items: Pending[];
  /** When it was first sent (the producer's give-up clock starts there). */
  firstSentAt: number | undefined;
  attempts: number;
  /** The connection it was last sent on. */
  sentOn: IngestLink | undefined;
}

/**
 * The chunks of one stream on their way: a queue to batch from, the batches in flight (in the
 * order sent, all on one connection, each sent `after` the one before it, so the gateway
 * stores one only once the one before is stored) and the batches not stored, which go again,
 * in their order, before anything newer, once nothing of the stream is in flight any more (the
 * ones sent behind a failed batch come back refused). So a stream keeps its order across
 * failures and retries while several of its batches are in flight.
 */
export class StreamQueue {
  readonly streamId: string;
  readonly queue: Pending[] = [];
  queuedBytes = 0;
  readonly inFlight: Batch[] = [];
  /** Not stored: to send again, in `order`, not before `againAt`. */
  readonly again: Batch[] = [];
  againAt = 0;
  #nextOrder = 0;
  lingerTimer: unknown;
  againTimer: unknown;
  /** Publishers waiting for room in the queue (resolved as it drains). */
  readonly roomWaiters: (() => void)[] = [];
  #wakeScheduled = false;

  constructor(streamId: string) {
    this.streamId = streamId;
  }

  push(p: Pending): void {
    this.queue.push(p);
    this.queuedBytes += p.bytes;
  }

  /** Seal the next batch: up to `maxChunks` chunks and (after the first) `maxBytes` bytes. */
  seal(maxChunks: number, maxBytes: number, key: string): Batch {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < maxChunks) {
      const next = this.queue[n]!.bytes;
      if (n > 0 && bytes + next > maxBytes) break;
      bytes += next;
      n++;
    }
    this.queuedBytes -= bytes;
    const items = this.queue.splice(0, n);
    // the waiters are woken after this batch is sealed and sent, never inside it (one that
    // enqueues at once must not seal another batch of this stream first); until then they
    // stay listed, so a publish arriving meanwhile queues behind them
    if (this.roomWaiters.length > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true;
      queueMicrotask(() => {
        this.#wakeScheduled = false;
        for (const wake of this.roomWaiters.splice(0)) wake();
      });
    }
    return { id: 0, streamId: this.streamId, key, order: this.#nextOrder++, items, firstSentAt: undefined, attempts: 0, sentOn: undefined };
  }

  /** Answered or lost: out of flight. */
  landed(batch: Batch): void {
    const i = this.inFlight.indexOf(batch);
    if (i >= 0) this.inFlight.splice(i, 1);
  }

  /** Not stored: it goes again, in its order, not before `notBefore`. */
  sendAgain(batch: Batch, notBefore: number): void {
    let i = this.again.length;
    while (i > 0 && this.again[i - 1]!.order > batch.order) i--;
    this.again.splice(i, 0, batch);
    this.againAt = Math.max(this.againAt, notBefore);
  }

  /** What to send next, in order: a batch again, or the queue (undefined: nothing, or not yet). */
  get next(): 'again' | 'queue' | undefined {
    if (this.again.length > 0) return this.inFlight.length === 0 ? 'again' : undefined;
    return this.queue.length > 0 ? 'queue' : undefined;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight.length === 0 && this.again.length === 0;
  }
}

/** A chunk's size in bytes; what cannot be a chunk is MS_BAD_REQUEST at once. */
export function checkChunk(payload: Uint8Array | string, key: string | undefined, layer: number | undefined): number {
  if (!(payload instanceof Uint8Array) && typeof payload !== 'string') throw new MirrorstreamError('MS_BAD_REQUEST', 'payload: a Uint8Array or a string');
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) throw new MirrorstreamError('MS_BAD_REQUEST', 'key: 1-256 characters');
  if (layer !== undefined && (!Number.isInteger(layer) || layer < 0 || layer > 15)) throw new MirrorstreamError('MS_BAD_REQUEST', 'layer: an integer 0-15');
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
}

/** A chunk as it goes in a BATCH frame (made when sent, so it does not live as long as the chunk waits). */
export function frameChunk({ payload, key, layer }: Pending): IngestChunk {
  return layer !== undefined ? [payload, key ?? null, layer] : key !== undefined ? [payload, key] : [payload];
}
