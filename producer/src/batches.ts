import { MirrorstreamError, type IngestChunk } from '@mirrorstream/receiver/protocol';

/** One chunk waiting to be batched, with the promise of its publish. */
export interface Pending {
  chunk: IngestChunk;
  bytes: number;
  resolve(seq: number): void;
  reject(error: unknown): void;
}

/** A sealed batch: sent, and on a failure sent again with the same idempotency key. */
export interface Batch {
  id: number;
  streamId: string;
  key: string;
  items: Pending[];
  /** When it was first sent (the producer's give-up clock starts there). */
  firstSentAt: number | undefined;
  attempts: number;
}

/**
 * The chunks of one stream on their way: a queue to batch from and at most one batch in
 * flight. One batch at a time per stream is what keeps a stream's order across retries: a
 * batch sent again (same key) is stored before anything after it is sent. Batches of different
 * streams go out side by side.
 */
export class StreamQueue {
  readonly streamId: string;
  readonly queue: Pending[] = [];
  queuedBytes = 0;
  inFlight: Batch | undefined;
  lingerTimer: unknown;
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

  /** Take the next batch: up to `maxChunks` chunks and (after the first) `maxBytes` bytes. */
  take(maxChunks: number, maxBytes: number): Pending[] {
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
    // the waiters are woken after this batch is sealed and marked in flight, never inside it (one
    // that enqueues at once must not start another batch of this stream first); until then they
    // stay listed, so a publish arriving meanwhile queues behind them
    if (this.roomWaiters.length > 0 && !this.#wakeScheduled) {
      this.#wakeScheduled = true;
      queueMicrotask(() => {
        this.#wakeScheduled = false;
        for (const wake of this.roomWaiters.splice(0)) wake();
      });
    }
    return items;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight === undefined;
  }
}

/** A chunk as it goes in a frame, and its size; what cannot be a chunk is MS_BAD_REQUEST at once. */
export function toEntry(input: { payload: Uint8Array | string; key?: string | undefined; layer?: number | undefined }): [IngestChunk, number] {
  const { payload, key, layer } = input;
  if (!(payload instanceof Uint8Array) && typeof payload !== 'string') throw new MirrorstreamError('MS_BAD_REQUEST', 'payload: a Uint8Array or a string');
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) throw new MirrorstreamError('MS_BAD_REQUEST', 'key: 1-256 characters');
  if (layer !== undefined && (!Number.isInteger(layer) || layer < 0 || layer > 15)) throw new MirrorstreamError('MS_BAD_REQUEST', 'layer: an integer 0-15');
  const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const chunk: IngestChunk = layer !== undefined ? [payload, key ?? null, layer] : key !== undefined ? [payload, key] : [payload];
  return [chunk, bytes];
}
