import { randomBytes } from 'node:crypto';
import { encodeFrame, FrameType } from '@mirrorstream/receiver/protocol';
import type { RetentionConfig } from '../config.js';
import type { ChunkInput } from '../streams/spec.js';
import type { AppendResult, LogEntry, StreamLog, StreamLogFactory } from '../streams/stream-log.js';

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
  #buf: (LogEntry | undefined)[] = new Array<LogEntry | undefined>(64);
  #head = 0; // index of firstSeq
  #size = 0;
  #firstSeq = 1;
  #bytes = 0;
  #evicted = 0;

  constructor(streamId: string, retention: RetentionConfig, epoch: string = newEpoch()) {
    this.streamId = streamId;
    this.#retention = retention;
    this.epoch = epoch;
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

  appendBatch(chunks: readonly ChunkInput[], timestamp: number): AppendResult {
    const firstSeq = this.lastSeq + 1;
    for (const c of chunks) this.append(c.payload, timestamp, c.key, c.layer);
    return { firstSeq, lastSeq: this.lastSeq };
  }

  append(payload: Uint8Array, timestamp: number, key?: string, layer?: number): LogEntry {
    const entry: LogEntry = { seq: this.lastSeq + 1, timestamp, payload, key, layer, frame: undefined };
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

/** The default log factory: every stream in memory. */
export const memoryLogs: StreamLogFactory = (streamId, limits) => new MemoryStreamLog(streamId, limits);
