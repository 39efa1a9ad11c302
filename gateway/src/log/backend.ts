import type { RetentionConfig } from '../config.js';
import type { StreamSpec } from '../streams/spec.js';
import type { StreamLog } from '../streams/stream-log.js';

/** A value now (an in-memory backend) or later (a durable one). */
export type Maybe<T> = T | Promise<T>;

/** Run `f` on `v` now if it is a value, after it resolves if it is a promise (not named `then`: a module exporting `then` is a thenable). */
export function andThen<T, R>(v: Maybe<T>, f: (value: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

/** `f(v)` as a promise, whether `v` is a value or a promise. */
export function settle<T, R>(v: Maybe<T>, f: (value: T) => R): Promise<R> {
  return v instanceof Promise ? v.then(f) : Promise.resolve(f(v));
}

/** A stream as stored: its spec and the epoch of its seq space. */
export interface StoredStream {
  readonly spec: StreamSpec;
  readonly epoch: string;
  /** ms since the Unix epoch. */
  readonly createdAt: number;
}

/** A stored stream with the cursors (last acked seq per endpoint) it had. */
export interface RestoredStream {
  readonly stream: StoredStream;
  readonly cursors: Readonly<Record<string, number>>;
}

/** A change another gateway instance made to the shared state. */
export type BackendChange =
  | { readonly kind: 'stream'; readonly stream: StoredStream }
  | { readonly kind: 'stream-deleted'; readonly streamId: string }
  | { readonly kind: 'cursor'; readonly streamId: string; readonly endpointId: string; readonly seq: number };

/**
 * Where a gateway keeps what must outlive its process: stream specs with their epochs,
 * the chunks (each stream's StreamLog) and the cursors. The memory backend keeps nothing
 * and answers at once, so the in-memory gateway stays synchronous; the JetStream backend
 * stores everything and answers once NATS has. A backend that cannot reach its engine
 * fails with MS_LOG_UNAVAILABLE (retryable), never with an answer for something not stored.
 */
export interface Backend {
  readonly kind: 'memory' | 'jetstream';
  /** Connect; resolves once the backend can serve (the memory backend at once). */
  start(): Promise<void>;
  /** The streams stored before this instance started. */
  load(): Promise<RestoredStream[]>;
  /** Store a new stream and make its (empty) log; MS_STREAM_EXISTS when its id is taken (by another instance too). */
  createStream(stream: StoredStream, limits: RetentionConfig): Maybe<void>;
  /** Store a changed spec (endpoint list, policy) of an existing stream. */
  updateStream(stream: StoredStream): Maybe<void>;
  /** Forget a stream: spec, chunks and cursors. */
  deleteStream(streamId: string): Maybe<void>;
  /**
   * The log of a stored stream, with the chunks it retained (its epoch is the data's own).
   * `adopt`: another instance is creating it right now (its spec came through `watch`).
   */
  openLog(stream: StoredStream, limits: RetentionConfig, adopt?: boolean): Maybe<StreamLog>;
  /** An endpoint's cursor moved forward: stored in the background, never backwards. */
  saveCursor(streamId: string, endpointId: string, seq: number): void;
  /**
   * A backend shared by several instances tells each of them what the others changed
   * (specs, deletions, cursors); our own changes may come back too (applying them is a no-op).
   */
  watch?(listener: (change: BackendChange) => void): Promise<void>;
  close(): Promise<void>;
}
