import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { DeliverPolicy, DiscardPolicy, StorageType, type JetStreamClient, type JetStreamManager, type JsMsg, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { withTimeout, type Clock, type TimerHandle } from '@mirrorstream/receiver/protocol';
import type { Logger } from 'pino';
import type { RetentionConfig } from '../../config.js';
import { MAX_LAYER } from '../../streams/spec.js';
import type { AppendChunk, AppendResult, LogEntry, StreamLog } from '../../streams/stream-log.js';
import { MemoryStreamLog, newEpoch } from '../memory-log.js';
import { apiErrorCode, logUnavailable, STREAM_NOT_FOUND } from './errors.js';
import { followStream } from './follow-stream.js';
import type { Follower, Followers } from './follower.js';
import type { NatsNames } from './names.js';
import { FrozenHeaders, MSG_ID, type JetStreamPublisher, type PublishMessage } from './publisher.js';

const H_TIMESTAMP = 'Ms-Ts';
const H_KEY = 'Ms-Key';
const H_LAYER = 'Ms-Layer';
/** JetStream stream descriptions say which epoch the data belongs to: `mirrorstream epoch <id>`. */
const EPOCH_PREFIX = 'mirrorstream epoch ';
const NANOS_PER_MS = 1_000_000;
/** What this instance stored must reach its window within this long (see #expectFollowed). */
const LAG_MS = 800;
/** How long a re-opening log follower waits for its stream's info (see JetStreamContext.followJs). */
const OPEN_CHECK_MS = 1_000;

export interface JetStreamContext {
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: NatsNames;
  replicas: number;
  idempotencyWindowMs: number;
  log: Logger;
  clock: Clock;
  /** Every subscription to the engine is made and supervised here. */
  followers: Followers;
  /**
   * The client followers open consumers with: a short request timeout (OPEN_TIMEOUT_MS), so an
   * open sent to a dying server fails fast and is retried, instead of holding the follower for
   * the full request timeout after the engine can serve again.
   */
  followJs: JetStreamClient;
  /** Every append of every stream goes through it: bounded, pipelined (see JetStreamPublisher). */
  publisher: JetStreamPublisher;
}

export function logStreamConfig(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string): Partial<StreamConfig> & { name: string } {
  return {
    name: ctx.names.logStream(streamId),
    subjects: [ctx.names.logSubject(streamId)],
    description: `${EPOCH_PREFIX}${epoch}`,
    max_msgs: limits.maxChunks,
    max_bytes: limits.maxBytes,
    max_age: limits.maxAgeMs * NANOS_PER_MS,
    discard: DiscardPolicy.Old,
    storage: StorageType.File,
    num_replicas: ctx.replicas,
    // JetStream refuses a duplicate window longer than the stream's max age
    duplicate_window: Math.min(ctx.idempotencyWindowMs, limits.maxAgeMs) * NANOS_PER_MS,
  };
}

/**
 * A stream's log on JetStream: one JetStream stream per mirrorstream stream, so the
 * JetStream sequence is the seq. Appends are published (with a message id for an
 * idempotent publish) and resolve once JetStream acknowledged them; JetStream orders
 * them, also against other writers. Reads come from a window in memory with the stream's
 * own limits: filled when the log is opened (a restarted gateway replays what JetStream
 * retained), by our own appends as they are acknowledged in order, and by a follower (an
 * ordered consumer) that brings everything else in seq order: chunks other gateway
 * instances appended, and ours whose ack came out of order or was lost.
 */
export class JetStreamLog implements StreamLog {
  readonly #ctx: JetStreamContext;
  readonly #window: MemoryStreamLog;
  readonly #name: string;
  readonly #subject: string;
  readonly #foreign: ((entry: LogEntry) => void)[] = [];
  #follower: Follower<JsMsg> | undefined;
  #lagTimer: TimerHandle | undefined;

  private constructor(ctx: JetStreamContext, window: MemoryStreamLog) {
    this.#ctx = ctx;
    this.#window = window;
    this.#name = ctx.names.logStream(window.streamId);
    this.#subject = ctx.names.logSubject(window.streamId);
  }

  /** Create a new log (the JetStream stream is replaced if one was left behind). */
  static async create(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string): Promise<JetStreamLog> {
    try {
      await ctx.jsm.streams.delete(ctx.names.logStream(streamId)).catch((error: unknown) => {
        if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw error;
      });
      await ctx.jsm.streams.add(logStreamConfig(ctx, streamId, limits, epoch));
    } catch (error) {
      throw logUnavailable(`creating the log of ${streamId}`, error);
    }
    const log = new JetStreamLog(ctx, new MemoryStreamLog(streamId, limits, epoch));
    await log.#follow();
    return log;
  }

  /**
   * Open a stored stream's log and replay what JetStream retained into the window. The
   * epoch is the data's own (its description). When the data is gone, the log starts
   * over under a new epoch, so receivers are told rather than resumed into a new seq space.
   */
  static async open(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, storedEpoch: string): Promise<JetStreamLog> {
    const info = await JetStreamLog.#info(ctx, streamId);
    if (!info) {
      ctx.log.warn({ stream: streamId, epoch: storedEpoch }, 'the stream log is gone from JetStream: starting a new epoch');
      return JetStreamLog.create(ctx, streamId, limits, newEpoch());
    }
    return JetStreamLog.#bind(ctx, streamId, limits, epochOf(info) ?? storedEpoch, info);
  }

  /**
   * Open the log of a stream another instance is creating (its spec reached us through
   * KV): wait, a bounded time, until its JetStream stream exists with the spec's epoch.
   */
  static async adopt(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string, waitMs: number): Promise<JetStreamLog> {
    const deadline = ctx.clock.now() + waitMs;
    for (;;) {
      const info = await JetStreamLog.#info(ctx, streamId);
      if (info && epochOf(info) === epoch) return JetStreamLog.#bind(ctx, streamId, limits, epoch, info);
      if (ctx.clock.now() > deadline) throw logUnavailable(`following ${streamId}`, new Error(`its log (epoch ${epoch}) did not appear in JetStream within ${waitMs} ms`));
      await new Promise<void>((r) => ctx.clock.setTimeout(() => r(), 100));
    }
  }

  static async #info(ctx: JetStreamContext, streamId: string): Promise<StreamInfo | undefined> {
    try {
      return await ctx.jsm.streams.info(ctx.names.logStream(streamId));
    } catch (error) {
      if (apiErrorCode(error) === STREAM_NOT_FOUND) return undefined;
      throw logUnavailable(`opening the log of ${streamId}`, error);
    }
  }

  static async #bind(ctx: JetStreamContext, streamId: string, limits: RetentionConfig, epoch: string, info: StreamInfo): Promise<JetStreamLog> {
    const { first_seq: first, last_seq: last, messages } = info.state;
    const log = new JetStreamLog(ctx, new MemoryStreamLog(streamId, limits, epoch, messages > 0 ? first : last + 1));
    if (messages > 0) await log.#replay(first, last);
    await log.#follow();
    return log;
  }

  get streamId(): string {
    return this.#window.streamId;
  }
  get epoch(): string {
    return this.#window.epoch;
  }
  get limits(): Readonly<RetentionConfig> {
    return this.#window.limits;
  }
  get firstSeq(): number {
    return this.#window.firstSeq;
  }
  get lastSeq(): number {
    return this.#window.lastSeq;
  }
  get size(): number {
    return this.#window.size;
  }
  get bytes(): number {
    return this.#window.bytes;
  }
  get evicted(): number {
    return this.#window.evicted;
  }

  get(seq: number): LogEntry | undefined {
    return this.#window.get(seq);
  }

  frame(seq: number): Uint8Array | undefined {
    return this.#window.frame(seq);
  }

  evictExpired(now: number): void {
    this.#window.evictExpired(now);
  }

  onForeignAppend(listener: (entry: LogEntry) => void): void {
    this.#foreign.push(listener);
  }

  /** Whether this instance follows the log now (false while its subscription is being replaced). */
  get following(): boolean {
    return this.#follower?.following ?? false;
  }

  /** Stop following (the gateway closes). */
  stop(): void {
    this.#ctx.clock.clearTimeout(this.#lagTimer);
    this.#lagTimer = undefined;
    if (this.#follower) this.#ctx.followers.drop(this.#follower);
    this.#follower = undefined;
  }

  /**
   * JetStream stored `seq` for us, and the window has not got there: the follower must bring it
   * within LAG_MS, or it is replaced. A consumer can be alive (heartbeats) and still not deliver:
   * after an election, an R1 consumer on a replica that lags behind the new leader.
   */
  #expectFollowed(seq: number): void {
    if (this.#lagTimer) return;
    this.#lagTimer = this.#ctx.clock.setTimeout(() => {
      this.#lagTimer = undefined;
      const at = this.#window.lastSeq;
      if (at < seq) this.#follower?.restart(`the log is behind what this instance stored: seq ${seq} acked ${LAG_MS} ms ago, the window at ${at}`);
    }, LAG_MS);
  }

  /** Drop the data (the stream was deleted). */
  async destroy(): Promise<void> {
    this.stop();
    await this.#ctx.jsm.streams.delete(this.#name).catch((error: unknown) => {
      if (apiErrorCode(error) !== STREAM_NOT_FOUND) throw logUnavailable(`deleting the log of ${this.streamId}`, error);
    });
  }

  async appendBatch(chunks: readonly AppendChunk[], timestamp: number, key?: string): Promise<AppendResult> {
    // published in order through the connection's publisher (bounded, pipelined): each one acked with its seq
    const results = await this.#ctx.publisher.publish(this.#subject, this.#messages(chunks, timestamp, key));
    const acks: { seq: number }[] = [];
    let failure: unknown;
    for (const r of results) {
      if (r.error) {
        failure ??= r.error;
        continue;
      }
      acks.push(r);
    }
    for (const [i, ack] of results.entries()) {
      const c = chunks[i];
      // in order and next: into the window at once; anything else the follower brings in order
      if (c && !ack.error && !ack.duplicate && ack.seq === this.#window.lastSeq + 1) {
        this.#window.appendAt(ack.seq, c.payload, timestamp, c.key, c.layer);
      }
    }
    const top = acks.reduce((max, a) => Math.max(max, a.seq), 0);
    if (top > this.#window.lastSeq) this.#expectFollowed(top);
    if (failure !== undefined) throw logUnavailable(`publishing to ${this.streamId} (${acks.length} of ${chunks.length} chunks stored)`, failure);
    const seqs = acks.map((a) => a.seq);
    return { firstSeq: seqs[0] ?? this.#window.lastSeq + 1, lastSeq: seqs[seqs.length - 1] ?? this.#window.lastSeq };
  }

  /**
   * A batch as messages: chunk i of a keyed batch is message `<key>:<i>` (JetStream's duplicate
   * window drops a retry of what is stored, per message: a batch may have been stored in part).
   * Chunks with neither key, layer nor message id share one header set (just `Ms-Ts`), encoded once.
   */
  #messages(chunks: readonly AppendChunk[], timestamp: number, batchKey: string | undefined): PublishMessage[] {
    let plain: MsgHdrs | undefined;
    return chunks.map((c, i) => {
      const msgId = batchKey === undefined ? undefined : `${batchKey}:${i}`;
      const own = c.key !== undefined || c.layer !== undefined || msgId !== undefined;
      if (!own && plain) return { payload: c.payload, headers: plain };
      const h = own ? natsHeaders() : new FrozenHeaders();
      h.set(H_TIMESTAMP, String(timestamp));
      if (c.key !== undefined) h.set(H_KEY, encodeURIComponent(c.key));
      if (c.layer !== undefined) h.set(H_LAYER, String(c.layer));
      if (msgId !== undefined) h.set(MSG_ID, msgId);
      if (!own) plain = h;
      return { payload: c.payload, headers: h };
    });
  }

  /**
   * Follow the JetStream stream from past the window for as long as the log lives: a
   * supervised subscription (see Follower) that brings every entry the window lacks once, in
   * seq order, and is recreated from the window's end when its consumer is lost.
   */
  async #follow(): Promise<void> {
    const open = followStream(this.#ctx.followJs, this.#name, { batch: 1_000 });
    let opened = false;
    const follower = this.#ctx.followers.follow<JsMsg>({
      name: `log:${this.streamId}`,
      // a re-open first checks the data is still this epoch's: a stream deleted (and perhaps made
      // again) while the follower was away is not resumed by seq; it stops here, and the stream
      // itself comes again through the specs (a new epoch) or goes
      open: async (after, sink) => {
        if (opened) {
          // bounded like an open: a check sent to a dying server fails fast and is retried
          const info = await withTimeout(this.#ctx.clock, JetStreamLog.#info(this.#ctx, this.streamId), OPEN_CHECK_MS, () => new Error('stream info timed out'));
          if (!info || epochOf(info) !== this.epoch) {
            this.#ctx.log.warn({ stream: this.streamId, epoch: this.epoch }, 'the stream log was deleted or replaced in JetStream: no longer following it');
            queueMicrotask(() => this.stop());
            return { close: () => undefined };
          }
        }
        opened = true;
        return open(after, sink);
      },
      position: () => this.#window.lastSeq,
      apply: (seq, m) => {
        const entry = this.#windowAppend(seq, m.data, m.headers, m.info.timestampNanos);
        for (const listener of this.#foreign) listener(entry);
      },
    });
    try {
      await follower.start();
    } catch (error) {
      this.#ctx.followers.drop(follower);
      throw logUnavailable(`following the log of ${this.streamId}`, error);
    }
    this.#follower = follower;
  }

  /** An entry as read back: a header that does not parse (another writer's) is left out, never trusted. */
  #windowAppend(seq: number, data: Uint8Array, h: MsgHdrs | undefined, timestampNanos: number): LogEntry {
    const ts = Number(h?.get(H_TIMESTAMP));
    const layer = Number(h?.get(H_LAYER) || NaN);
    return this.#window.appendAt(seq, data, Number.isFinite(ts) && ts > 0 ? ts : timestampNanos / NANOS_PER_MS, decodeKey(h?.get(H_KEY)), Number.isInteger(layer) && layer >= 0 && layer <= MAX_LAYER ? layer : undefined);
  }

  /** Replay `from..to` from JetStream into the window (an ordered consumer, in batches). */
  async #replay(from: number, to: number): Promise<void> {
    const consumer = await this.#ctx.js.consumers.get(this.#name, { opt_start_seq: from, deliver_policy: DeliverPolicy.StartSequence });
    let next = from;
    while (next <= to) {
      const batch = await consumer.fetch({ max_messages: Math.min(1_000, to - next + 1), expires: 2_000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (m.seq > to) break;
        this.#windowAppend(m.seq, m.data, m.headers, m.info.timestampNanos);
        next = m.seq + 1;
      }
      if (got === 0) break; // trimmed meanwhile: the window starts where JetStream does
    }
  }
}

function decodeKey(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** The epoch a JetStream stream's description names (`mirrorstream epoch <id>`). */
function epochOf(info: StreamInfo): string | undefined {
  const d = info.config.description;
  return d?.startsWith(EPOCH_PREFIX) ? d.slice(EPOCH_PREFIX.length) : undefined;
}
