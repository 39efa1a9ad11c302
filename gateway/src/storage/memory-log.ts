import { randomBytes } from 'node:crypto';
import { encodeFrame, FrameType } from '@mirrorstream/receiver/protocol';
import type { RetentionConfig } from '../config.js';
import { newInstanceId, type Backend } from './backend.js';
import type { AppendChunk, AppendResult, LogEntry, StreamLog } from '../streams/stream-log.js';

/** A new epoch id: 16 url-safe characters, unique per stream creation. */
export function newEpoch(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * The embedded StreamLog: a retention ring in memory. Seqs are contiguous from
 * `firstSeq` to `lastSeq`; the oldest entries go when count, bytes or age exceed the
 * limits. A growable circular buffer keeps append and evict O(1) and `get(seq)` O(1).
 * Nothing survives the process, so every log is a new epoch.
 */
export class MemoryStreamLog implements StreamLog {
  readonly streamId: string;
  readonly epoch: string;
  readonly #retention: RetentionConfig;
  /** Starts small and doubles as the retention fills (a quiet stream keeps a few entries, not 64). */
  #buf: (LogEntry | undefined)[] = new Array<LogEntry | undefined>(8);
  #head = 0; // index of firstSeq
  #size = 0;
  #firstSeq = 1;
  #bytes = 0;
  #evicted = 0;
  readonly #idempotencyWindowMs: number;
  /**
   * Batch key -> [first seq, last seq, when stored], oldest first (insertion order), pruned past
   * the window. One entry per keyed batch: a batch is stored here whole or not at all.
   */
  #seen: Map<string, [number, number, number]> | undefined;

  /** `nextSeq`: the seq the first append gets (a window over a durable log may start past 1). */
  constructor(streamId: string, retention: RetentionConfig, epoch: string = newEpoch(), nextSeq = 1, idempotencyWindowMs = 120_000) {
    this.streamId = streamId;
    this.#retention = retention;
    this.epoch = epoch;
    this.#firstSeq = nextSeq;
    this.#idempotencyWindowMs = idempotencyWindowMs;
  }

  get limits(): Readonly<RetentionConfig> {
    return this.#retention;
  }

  /** Oldest retained seq (equals `lastSeq + 1` when empty). */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** Newest assigned seq (0 before the first append). */
  get lastSeq(): number {
    return this.#firstSeq + this.#size - 1;
  }

  get size(): number {
    return this.#size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Chunks evicted since the stream was created. */
  get evicted(): number {
    return this.#evicted;
  }

  appendBatch(chunks: readonly AppendChunk[], timestamp: number, key?: string): AppendResult {
    const seen = this.#seen;
    if (seen) {
      for (const [k, [, , at]] of seen) {
        if (timestamp - at <= this.#idempotencyWindowMs) break;
        seen.delete(k);
      }
      // a retry of a stored batch: what it got then
      const known = key === undefined ? undefined : seen.get(key);
      if (known) return { firstSeq: known[0], lastSeq: known[1] };
    }
    const firstSeq = this.lastSeq + 1;
    for (const c of chunks) this.append(c.payload, timestamp, c.key, c.layer);
    if (key !== undefined && chunks.length > 0) (this.#seen ??= new Map()).set(key, [firstSeq, this.lastSeq, timestamp]);
    return { firstSeq, lastSeq: this.lastSeq };
  }

  append(payload: Uint8Array, timestamp: number, key?: string, layer?: number): LogEntry {
    return this.appendAt(this.lastSeq + 1, payload, timestamp, key, layer);
  }

  /**
   * Append with a seq assigned elsewhere (a durable log's). It must follow `lastSeq`; an
   * empty window may jump forward (what the durable log already trimmed is not here).
   */
  appendAt(seq: number, payload: Uint8Array, timestamp: number, key?: string, layer?: number): LogEntry {
    if (seq !== this.lastSeq + 1) {
      if (seq < this.#firstSeq || seq <= this.lastSeq) throw new RangeError(`seq ${seq} does not follow ${this.lastSeq} in the window of ${this.streamId}`);
      // the durable log dropped what lies between (its own retention): so does the window
      this.#evicted += this.#size;
      this.#buf.fill(undefined);
      this.#head = 0;
      this.#size = 0;
      this.#bytes = 0;
      this.#firstSeq = seq;
    }
    const entry: LogEntry = { seq, timestamp, payload, key, layer, frame: undefined };
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) % this.#buf.length] = entry;
    this.#size++;
    this.#bytes += payload.byteLength;
    this.#evictOver(timestamp);
    return entry;
  }

  get(seq: number): LogEntry | undefined {
    if (seq < this.#firstSeq || seq > this.lastSeq) return undefined;
    return this.#buf[(this.#head + (seq - this.#firstSeq)) % this.#buf.length];
  }

  /** The DATA frame for `seq`, encoded on first use. */
  frame(seq: number): Uint8Array | undefined {
    const e = this.get(seq);
    if (!e) return undefined;
    e.frame ??= encodeFrame({
      type: FrameType.DATA,
      streamId: this.streamId,
      seq: e.seq,
      timestamp: e.timestamp,
      payload: e.payload,
      ...(e.key === undefined ? {} : { key: e.key }),
      ...(e.layer === undefined ? {} : { layer: e.layer }),
    });
    return e.frame;
  }

  /** Drop entries older than `maxAgeMs` (called from the gateway tick). */
  evictExpired(now: number): void {
    this.#evictOver(now);
  }

  #evictOver(now: number): void {
    const r = this.#retention;
    while (this.#size > 0) {
      const oldest = this.#buf[this.#head];
      const over =
        this.#size > r.maxChunks ||
        this.#bytes > r.maxBytes ||
        (oldest !== undefined && now - oldest.timestamp > r.maxAgeMs);
      // the newest chunk always stays so it can still be delivered once
      if (!over || this.#size === 1) break;
      this.#bytes -= oldest?.payload.byteLength ?? 0;
      this.#buf[this.#head] = undefined;
      this.#head = (this.#head + 1) % this.#buf.length;
      this.#size--;
      this.#firstSeq++;
      this.#evicted++;
    }
  }

  #grow(): void {
    const next = new Array<LogEntry | undefined>(this.#buf.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = this.#buf[(this.#head + i) % this.#buf.length];
    this.#buf = next;
    this.#head = 0;
  }
}

/** The embedded default: every stream in memory, nothing stored beyond the process. */
export function memoryBackend(idempotencyWindowMs?: number): Backend {
  return {
    kind: 'memory',
    instanceId: newInstanceId(),
    start: () => Promise.resolve(),
    load: () => Promise.resolve([]),
    createStream: () => undefined,
    updateStream: () => undefined,
    deleteStream: () => undefined,
    openLog: (stream, limits) => new MemoryStreamLog(stream.spec.stream_id, limits, stream.epoch, 1, idempotencyWindowMs),
    saveCursor: () => undefined,
    available: () => Promise.resolve(true),
    close: () => Promise.resolve(),
  };
}
