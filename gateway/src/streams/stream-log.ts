import type { RetentionConfig } from '../config.js';
import type { ChunkInput } from './spec.js';

/** One published chunk as retained for replay. */
export interface LogEntry {
  readonly seq: number;
  readonly timestamp: number;
  readonly payload: Uint8Array;
  readonly key: string | undefined;
  readonly layer: number | undefined;
  /** The encoded DATA frame, built once and shared by every endpoint (fan-out). */
  frame: Uint8Array | undefined;
}

/** A chunk to append. */
export type AppendChunk = ChunkInput;

export interface AppendResult {
  firstSeq: number;
  lastSeq: number;
}

/**
 * The port between a stream and where its chunks live. Seqs are dense from `firstSeq` to
 * `lastSeq`; the oldest go when the limits (count, bytes, age) are exceeded. `epoch` names
 * the seq space: a log that keeps a stream across restarts keeps its epoch, one that
 * does not (the in-memory log) starts a new epoch, so receivers can tell a restart from
 * a resume. Reads are synchronous over the retained window. An append returns once the
 * chunks are stored: at once for a log in memory (so they go out before the publish call
 * returns), as a promise for a durable log (once its engine acknowledged them). `epoch` must
 * be a valid id (`[A-Za-z0-9._:-]{1,128}`): it travels in ROLE and RESET.
 */
export interface StreamLog {
  readonly streamId: string;
  readonly epoch: string;
  readonly limits: Readonly<RetentionConfig>;
  /** Oldest retained seq (equals `lastSeq + 1` when empty). */
  readonly firstSeq: number;
  /** Newest assigned seq (0 before the first append). */
  readonly lastSeq: number;
  readonly size: number;
  readonly bytes: number;
  /** Chunks evicted since the stream was created. */
  readonly evicted: number;
  /**
   * Append `chunks` in order with one timestamp. With an idempotency `key` the log saw within
   * its idempotency window, a retry of the batch appends only what the first attempt did not
   * store (chunk i is known as `<key>:<i>`), and the seqs it got are reported.
   */
  appendBatch(chunks: readonly AppendChunk[], timestamp: number, key?: string): AppendResult | Promise<AppendResult>;
  get(seq: number): LogEntry | undefined;
  /** The DATA frame for `seq`, encoded on first use. */
  frame(seq: number): Uint8Array | undefined;
  /** Drop entries older than the age limit (called from the gateway tick). */
  evictExpired(now: number): void;
  /**
   * A shared durable log also holds what other writers (other gateway instances) appended:
   * `listener` hears of every entry that reached this log that way, in seq order.
   */
  onForeignAppend?(listener: (entry: LogEntry) => void): void;
}
