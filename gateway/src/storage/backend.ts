import { randomBytes } from 'node:crypto';
import type { RetentionConfig } from '../config.js';
import type { EndpointState } from '../health/failure-detector.js';
import type { HealthSnapshot } from '../health/score.js';
import type { StreamSpec } from '../streams/spec.js';
import type { StreamLog } from '../streams/stream-log.js';
import type { EndpointView, StreamControl } from '../streams/types.js';

/** A value now (an in-memory backend) or later (a durable one). */
export type Maybe<T> = T | Promise<T>;

/** Run `f` on `v` now if it is a value, after it resolves if it is a promise (not named `then`: a module exporting `then` is a thenable). */
export function andThen<T, R>(v: Maybe<T>, f: (value: T) => Maybe<R>): Maybe<R> {
  return v instanceof Promise ? v.then(f) : f(v);
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

/** What the instance holding an endpoint's connection tells the others about it. */
export interface SharedEndpointState {
  readonly state: EndpointState;
  readonly degraded: boolean;
  readonly upSince: number | undefined;
  readonly disconnectedAt: number | undefined;
  /** Per stream id: that stream measures the endpoint as degraded (ack lag, delivery ratio). */
  readonly streams: Readonly<Record<string, boolean>>;
  readonly health: HealthSnapshot;
}

/** Endpoint health shared between gateway instances, for the one that decides a stream's roles. */
export interface EndpointBoard {
  /** This instance's view of an endpoint it holds (or just lost); sent when it changed, and now and then. */
  publish(endpointId: string, state: SharedEndpointState): void;
  /** What the other instances say of an endpoint (undefined: none of them has it). */
  view(endpointId: string): EndpointView | undefined;
}

/** A change another gateway instance made to the shared state. */
export type BackendChange =
  | { readonly kind: 'stream'; readonly stream: StoredStream; readonly revision?: number }
  | { readonly kind: 'stream-deleted'; readonly streamId: string }
  | { readonly kind: 'cursor'; readonly streamId: string; readonly endpointId: string; readonly seq: number }
  /** Another instance's view of an endpoint it holds changed state (e.g. it went silent: a hedge may be due). */
  | { readonly kind: 'endpoint'; readonly endpointId: string };

/**
 * Where a gateway keeps what must outlive its process: stream specs with their epochs,
 * the chunks (each stream's StreamLog) and the cursors. The memory backend keeps nothing
 * and answers at once, so the in-memory gateway stays synchronous; the JetStream backend
 * stores everything and answers once NATS has. A backend that cannot reach its engine
 * fails with MS_LOG_UNAVAILABLE (retryable), never with an answer for something not stored.
 */
export interface Backend {
  readonly kind: 'memory' | 'jetstream';
  /** This gateway process among the instances sharing the backend (a new one every start). */
  readonly instanceId: string;
  /** Connect; resolves once the backend can serve (the memory backend at once). */
  start(): Promise<void>;
  /** The streams stored before this instance started. */
  load(): Promise<RestoredStream[]>;
  /** Store a new stream and make its (empty) log; MS_STREAM_EXISTS when its id is taken (by another instance too). */
  createStream(stream: StoredStream, limits: RetentionConfig): Maybe<void>;
  /** Store a changed spec (endpoint list, policy) of an existing stream; a shared backend answers its revision. */
  updateStream(stream: StoredStream): Maybe<number | void>;
  /**
   * A shared backend: the stream as stored now (undefined: deleted), so a change made here
   * starts from what another instance stored a moment ago, not from a view its watch has not
   * brought yet.
   */
  storedStream?(streamId: string): Promise<{ stream: StoredStream; revision: number } | undefined>;
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
  /** Several instances may serve a stream: who decides its roles (see StreamControl). */
  openControl?(streamId: string): Promise<StreamControl>;
  /** Several instances share endpoint health. */
  readonly endpoints?: EndpointBoard | undefined;
  /** A shared backend's subscriptions to its engine: which are not following now (readiness), how many were recreated. */
  readonly followers?: { readonly stale: readonly string[]; readonly restarts: number } | undefined;
  /**
   * Whether the backend can store what comes in now (readiness): the memory backend always;
   * JetStream once started, while connected to NATS and JetStream answers (no leader: not).
   */
  available(): Promise<boolean>;
  close(): Promise<void>;
}

/** A gateway instance's id: random, so a restarted process is a new instance. */
export function newInstanceId(): string {
  return `i-${randomBytes(6).toString('base64url')}`;
}
